// Orchestration end to end, against the live demo controller (LIVE_URL: 300 simulated sites
// reporting every 2 s, the orchestrator running) and its simulator's control API
// (SIM_CONTROL_URL), whose `POST /steps` makes simulated steps take seconds instead of minutes.
//
// One active strategy per type is allowed and the projects run in parallel against one server,
// so each test owns a type (and its own sites) and aborts what an earlier run left active:
//   sw-deploy           the JavaScript flow: live preview, create, apply, watched to complete
//   kube-rootca-update  the viewer (no actions) and the operator (actions)
//   firmware            the form without JavaScript: preview, refusals, create, actions
import { test, expect, request, type APIRequestContext, type Page, type TestInfo } from "@playwright/test";

const LIVE = process.env.LIVE_URL;
const SIM = process.env.SIM_CONTROL_URL;
const PASSWORDS = {
  admin: "admin-demo-password",
  operator: "operator-demo-password",
  viewer: "viewer-demo-password",
} as const;
type Role = keyof typeof PASSWORDS;
const TERMINAL = ["complete", "aborted", "failed"];

type Summary = { id: number; strategy_type: string; state: string; total: number };
type Site = { name: string; availability: string };

test.use({ storageState: { cookies: [], origins: [] } });

let problems: string[] = [];
test.beforeEach(async ({ page }) => {
  test.skip(!LIVE || !SIM, "needs LIVE_URL and SIM_CONTROL_URL (scripts/test.sh starts them)");
  problems = [];
  watch(page);
});
test.afterEach(async ({}, info) => {
  if (info.status === "passed") expect(problems, "console errors").toEqual([]);
});

/** Console errors and uncaught exceptions fail the test. */
function watch(page: Page) {
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
}

async function signIn(page: Page, role: Role) {
  await page.goto(`${LIVE}/login`);
  await page.locator("#login-username").fill(role);
  await page.locator("#login-password").fill(PASSWORDS[role]);
  await page.locator("#login-password").press("Enter");
  await expect(page).toHaveURL(`${LIVE}/`);
}

/** A signed-in client of the dashboard's own server functions. */
async function api(role: Role): Promise<APIRequestContext> {
  const ctx = await request.newContext({ baseURL: LIVE, extraHTTPHeaders: { Origin: LIVE! } });
  const res = await ctx.post("/login", {
    form: { username: role, password: PASSWORDS[role], next: "/" },
    maxRedirects: 0,
  });
  expect(res.status(), `sign in ${role}`).toBe(303);
  return ctx;
}

async function strategies(ctx: APIRequestContext): Promise<Summary[]> {
  const res = await ctx.get("/ui/orchestration/strategies?page=1&per_page=200");
  expect(res.status(), await res.text()).toBe(200);
  return (await res.json()).items;
}

async function act(ctx: APIRequestContext, id: number, action: string) {
  return ctx.post("/ui/orchestration/action", { form: { id: String(id), action } });
}

/** Aborts every active strategy of `type` (left by an earlier run) and waits until none is. */
async function clearType(ctx: APIRequestContext, type: string) {
  await expect
    .poll(
      async () => {
        const active = (await strategies(ctx)).filter((s) => s.strategy_type === type && !TERMINAL.includes(s.state));
        for (const s of active) {
          if (s.state !== "abort requested" && s.state !== "aborting") await act(ctx, s.id, "abort");
        }
        return active.length;
      },
      { timeout: 200_000, intervals: [1_000, 2_000, 5_000] },
    )
    .toBe(0);
}

async function create(ctx: APIRequestContext, fields: Record<string, string>): Promise<number> {
  const res = await ctx.post("/ui/orchestration/create", { form: fields });
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

/**
 * Small targets: name prefixes (`lyon` of `lyon-0003`) whose `q` filter matches only that
 * prefix's sites, 2 to 4 of them, all in the wanted availability. The site the live-update
 * test takes down (the first online one by name) is never among them.
 */
async function smallTargets(ctx: APIRequestContext, availability: "online" | "offline"): Promise<{ query: string; sites: string[] }[]> {
  const all: Site[] = (await (await ctx.get("/api/v1/subclouds?per_page=500&sort=name")).json()).rows;
  const firstOnline = all.find((s) => s.availability === "online")?.name ?? "";
  const byPrefix = new Map<string, Site[]>();
  for (const s of all) {
    const p = s.name.replace(/-\d+$/, "");
    byPrefix.set(p, [...(byPrefix.get(p) ?? []), s]);
  }
  const out: { query: string; sites: string[] }[] = [];
  for (const [prefix, sites] of [...byPrefix.entries()].sort()) {
    const wanted = sites.filter((s) => s.availability === availability);
    if (wanted.length < 2 || wanted.length > 4 || sites.some((s) => s.name === firstOnline)) continue;
    const query = `availability=${availability}&q=${prefix}`;
    const m = await (await ctx.get(`/api/v1/subclouds?${query}&per_page=50`)).json();
    if (m.matching === wanted.length && m.rows.every((r: Site) => r.name.startsWith(`${prefix}-`))) {
      out.push({ query, sites: wanted.map((s) => s.name) });
    }
    if (out.length >= 3) break;
  }
  expect(out.length, `small ${availability} targets`).toBeGreaterThan(0);
  return out;
}

async function noHorizontalOverflow(page: Page, what: string) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${what} overflows horizontally by ${overflow}px`).toBeLessThanOrEqual(0);
}

/** Unfolds the create form's rollout settings (folded unless the URL sets one). */
async function openSettings(page: Page) {
  const details = page.locator("details.more-settings");
  if ((await details.getAttribute("open")) === null) await details.locator("summary").click();
  await expect(details).toHaveAttribute("open", "");
}

function desktopOnly(info: TestInfo) {
  test.skip(info.project.name !== "desktop", "one browser runs each flow: the strategy types are shared");
}

test("an operator previews live, creates, applies and watches a sw-deploy strategy complete without a reload @js", async ({ page }, info) => {
  desktopOnly(info);
  test.setTimeout(300_000);
  const operator = await api("operator");
  await clearType(operator, "sw-deploy");
  const [target] = await smallTargets(operator, "online");
  const n = target.sites.length;
  // Seconds per step instead of minutes, and no chance failures; restored at the end.
  const before = await (await fetch(`${SIM}/steps`)).json();
  const set = await fetch(`${SIM}/steps`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ failure_rate: 0, mean_seconds: { software_deploy: 4 / before.scale } }),
  });
  expect(set.status, await set.text()).toBe(200);
  try {
    await signIn(page, "operator");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Orchestration" }).click();
    await expect(page).toHaveURL(`${LIVE}/orchestration`);
    await expect(page.getByRole("heading", { level: 1, name: "Orchestration" })).toBeVisible();
    await page.getByRole("link", { name: "New strategy" }).click();
    await expect(page).toHaveURL(`${LIVE}/orchestration/new`);
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
    await page.evaluate(() => ((window as any).__noReload = "still here"));

    // Fields that do not apply are hidden with JavaScript.
    await expect(page.locator("#f-to_version")).toBeHidden();
    await expect(page.locator("#f-target_query")).toBeHidden();
    await page.locator("#f-type").selectOption("sw-deploy");
    await page.locator("#f-release").selectOption("26.03");
    await page.locator("#f-target").selectOption("filter");
    await expect(page.locator("#f-target_query")).toBeVisible();
    await page.locator("#f-target_query").fill(target.query);
    await openSettings(page);
    await page.locator("#f-offline_policy").selectOption("skip");

    // The preview follows the form, in place, and the URL with it.
    const summary = page.locator(".preview-summary");
    await expect(summary).toHaveAttribute("data-sites", String(n));
    await expect(page).toHaveURL(/[?&]type=sw-deploy(&|$)/);
    await expect(page).toHaveURL(/[?&]release=26\.03(&|$)/);
    await expect(summary).toContainText(`${n} site`);
    await expect(summary).toContainText(/about \d/);
    const waves = page.locator("table.preview-waves tbody tr[data-wave]");
    expect(await waves.count()).toBeGreaterThan(0);
    const listed = (await page.locator("table.preview-waves td.first-sites").allInnerTexts()).join(", ");
    for (const s of target.sites) expect(listed).toContain(s);
    await expect(waves.first().locator("td.eta")).toHaveText(/\d+ (s|min|h)/);
    await expect(page.locator("[data-total-eta]")).toHaveText(/\d+ (s|min|h)/);
    await expect(page.locator("[data-estimate-from]")).toHaveText(/average of [\d,]+ recorded steps?|default estimate/);
    await expect(page.locator("[data-offline]")).toHaveAttribute("data-offline", "0");
    await expect(page.locator("[data-outside-window]")).toHaveAttribute("data-outside-window", "0");

    // A refusal is shown next to the form, naming the field; fixing it brings the preview back.
    await page.locator("#f-max_parallel").fill("0");
    await expect(page.locator('.field-error[data-field="max_parallel"]')).toContainText("Max parallel");
    await page.locator("#f-max_parallel").fill("");
    await expect(summary).toHaveAttribute("data-sites", String(n));

    await page.getByRole("button", { name: "Create strategy" }).click();
    await expect(page).toHaveURL(/\/orchestration\/\d+$/);
    const id = Number(page.url().split("/").pop());
    const head = page.locator(".strategy-head");
    await expect(head).toHaveAttribute("data-state", "initial");
    await expect(page.getByRole("heading", { level: 1 })).toContainText(`Strategy #${id}`);
    const progress = head.locator(".progress");
    await expect(progress).toHaveAttribute("data-total", String(n));
    await expect(progress).toHaveAttribute("data-done", "0");
    await expect(progress.locator(".progress-done")).toHaveText(`0 of ${n} done`);
    await expect(head.locator("[data-eta]")).toContainText("once applied");
    await expect(page.locator("tr[data-step]")).toHaveCount(n);

    await head.locator('button[data-action="apply"]').click();
    await expect(head).toHaveAttribute("data-state", /applying|complete/);
    // Live: the page follows the run to its end by itself.
    await expect(head).toHaveAttribute("data-state", "complete", { timeout: 180_000 });
    await expect(progress).toHaveAttribute("data-percent", "100");
    await expect(progress).toHaveAttribute("data-done", String(n));
    await expect(progress).toHaveAttribute("aria-valuenow", String(n));
    await expect(progress.locator(".progress-done")).toHaveText(`${n} of ${n} done`);
    await expect(progress.locator(".progress-percent")).toHaveText("100 %");
    await expect(head.locator('li[data-step-state="complete"] .count')).toHaveText(String(n));
    await expect(page.locator('tr[data-step][data-step-state="complete"]')).toHaveCount(n);
    await expect(head.locator("button[data-action]")).toHaveCount(0);
    await expect(page.locator("table.waves tbody tr[data-wave-state='complete']")).toHaveCount(await page.locator("table.waves tbody tr").count());
    expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");

    // The strategy list, the site's page and the overview tell the same story.
    await page.getByRole("link", { name: "Orchestration", exact: true }).first().click();
    const row = page.locator(`tr[data-strategy="${id}"]`);
    await expect(row).toHaveAttribute("data-state", "complete");
    await expect(row.locator(".progress")).toHaveAttribute("data-percent", "100");
    await page.goto(`${LIVE}/subclouds/${target.sites[0]}`);
    const step = page.locator(`table.site-steps tr[data-strategy="${id}"]`);
    await expect(step).toHaveAttribute("data-step-state", "complete");
    await expect(step.getByRole("link", { name: `#${id}` })).toHaveAttribute("href", `/orchestration/${id}`);
    await page.goto(`${LIVE}/`);
    await expect(page.locator("section.deployments")).toBeVisible();
    await expect(page.locator('section.deployments tr[data-version="26.03"]')).toBeVisible();
  } finally {
    await fetch(`${SIM}/steps`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ failure_rate: before.failure_rate, mean_seconds: before.mean_seconds }),
    });
  }
});

test("a viewer sees a strategy and previews, but gets no action buttons; an operator does", async ({ page, browser }, info) => {
  desktopOnly(info);
  test.setTimeout(240_000);
  const operator = await api("operator");
  await clearType(operator, "kube-rootca-update");
  const targets = await smallTargets(operator, "online");
  const target = targets[targets.length > 1 ? 1 : 0];
  const id = await create(operator, {
    type: "kube-rootca-update",
    target: "filter",
    target_query: target.query,
    expiry_date: "2031-01-31",
  });
  try {
    await signIn(page, "viewer");
    await page.goto(`${LIVE}/orchestration`);
    await expect(page.locator(`tr[data-strategy="${id}"]`)).toHaveAttribute("data-state", "initial");
    await expect(page.getByRole("link", { name: "New strategy" })).toHaveCount(0);
    await page.goto(`${LIVE}/orchestration/${id}`);
    await expect(page.locator(".strategy-head")).toHaveAttribute("data-state", "initial");
    await expect(page.locator(".strategy-head .progress")).toHaveAttribute("data-total", String(target.sites.length));
    await expect(page.locator("form.strategy-actions")).toHaveCount(0);
    await expect(page.locator("button[data-action]")).toHaveCount(0);
    // Viewers may preview, not create.
    await page.goto(`${LIVE}/orchestration/new?type=kube-rootca-update&target=filter&target_query=${encodeURIComponent(target.query)}`);
    await expect(page.locator(".preview-summary")).toHaveAttribute("data-sites", String(target.sites.length));
    await expect(page.getByRole("button", { name: "Create strategy" })).toHaveCount(0);
    // A crafted post is refused (the gate refuses viewer posts).
    const viewer = await api("viewer");
    const res = await act(viewer, id, "apply");
    expect(res.status()).toBe(403);

    const other = await browser.newContext();
    const op = await other.newPage();
    watch(op);
    await signIn(op, "operator");
    await op.goto(`${LIVE}/orchestration/${id}`);
    await expect(op.locator('button[data-action="apply"]')).toBeVisible();
    await expect(op.locator('button[data-action="abort"]')).toBeVisible();
    await expect(op.locator('button[data-action="pause"]')).toHaveCount(0);
    // Abort asks first (JavaScript): dismissed, nothing happens; accepted, it is aborted.
    await expect(op.locator("body")).toHaveAttribute("data-hydrated", "true");
    const asked: string[] = [];
    op.once("dialog", (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await op.locator('button[data-action="abort"]').click();
    await expect.poll(() => asked.length).toBe(1);
    expect(asked[0]).toContain(`Abort strategy #${id}?`);
    await expect(op.locator(".strategy-head")).toHaveAttribute("data-state", "initial");
    op.once("dialog", (d) => void d.accept());
    await op.locator('button[data-action="abort"]').click();
    await expect(op.locator(".strategy-head")).toHaveAttribute("data-state", "aborted");
    await expect(op.locator(".strategy-head .form-status")).toContainText("now aborted");
    await expect(op.locator("button[data-action]")).toHaveCount(0);
    await other.close();
  } finally {
    await act(operator, id, "abort");
  }
});

test("without JavaScript: the form previews on the server, refusals name the field, create and the actions post @nojs", async ({ page, javaScriptEnabled }, info) => {
  test.skip(javaScriptEnabled || info.project.name !== "desktop-nojs", "the desktop no-JavaScript project runs it");
  test.setTimeout(240_000);
  const operator = await api("operator");
  await clearType(operator, "firmware");
  // Seeded-offline sites: their steps wait (offline policy "wait"), so nothing runs and the
  // strategy can be paused and aborted at once.
  const [target] = await smallTargets(operator, "offline");
  const n = target.sites.length;
  await signIn(page, "operator");
  await page.goto(`${LIVE}/orchestration/new`);
  await page.locator("#f-type").selectOption("firmware");
  await page.locator("#f-target").selectOption("filter");
  await page.locator("#f-target_query").fill(target.query);
  await page.getByRole("button", { name: "Preview" }).click();
  await expect(page).toHaveURL(/\/orchestration\/new\?.*type=firmware/);
  const summary = page.locator(".preview-summary");
  await expect(summary).toHaveAttribute("data-sites", String(n));
  await expect(page.locator("table.preview-waves tbody tr[data-wave]").first()).toBeVisible();
  await expect(page.locator("[data-total-eta]")).toHaveText(/\d+ (s|min|h)/);
  await expect(page.locator("[data-offline]")).toHaveAttribute("data-offline", String(n));
  await expect(page.locator("[data-estimate-from]")).toHaveText(/average of|default estimate/);
  // The form keeps its values.
  await expect(page.locator("#f-type")).toHaveValue("firmware");
  await expect(page.locator("#f-target_query")).toHaveValue(target.query);

  // A refusal names its field next to the form.
  await page.locator("#f-target").selectOption("subcloud");
  await page.locator("#f-target_name").fill("nowhere-9999");
  await page.getByRole("button", { name: "Preview" }).click();
  const refusal = page.locator('.field-error[data-field="target_name"]');
  await expect(refusal).toContainText("Target name");
  await expect(refusal).toContainText("nowhere-9999");
  await expect(summary).toHaveCount(0);

  // Create posts the form; a refusal comes back with the fields filled in.
  await page.locator("#f-target").selectOption("filter");
  await page.locator("#f-target_query").fill(target.query);
  await openSettings(page);
  await page.locator("#f-window").fill("25:00-01:00");
  await page.getByRole("button", { name: "Create strategy" }).click();
  await expect(page).toHaveURL(/\/orchestration\/new\?/);
  await expect(page.locator('.field-error[data-field="window"]')).toContainText("Maintenance window");
  await expect(page.locator("p.create-refusal")).toContainText("not created");
  await expect(page.locator("#f-target_query")).toHaveValue(target.query);
  await expect(page.locator("details.more-settings")).toHaveAttribute("open", "");
  await page.locator("#f-window").fill("");
  await page.getByRole("button", { name: "Create strategy" }).click();
  await expect(page).toHaveURL(/\/orchestration\/\d+$/);
  const id = Number(page.url().split("/").pop());
  const head = page.locator(".strategy-head");
  await expect(head).toHaveAttribute("data-state", "initial");

  // A button of a page that is out of date: the refusal is shown clearly.
  const applied = await act(operator, id, "apply");
  expect(applied.status(), await applied.text()).toBe(200);
  await head.locator('button[data-action="apply"]').click();
  await expect(page).toHaveURL(new RegExp(`/orchestration/${id}(\\?|$)`));
  await expect(head.locator(".error-panel")).toContainText("Not possible");
  await expect(head.locator(".error-panel")).toContainText("cannot apply a strategy that is applying");
  await expect(head).toHaveAttribute("data-state", "applying");

  await head.locator('button[data-action="pause"]').click();
  await expect(head).toHaveAttribute("data-state", "paused");
  await expect(head.locator("[data-reason]")).toContainText("paused by operator");
  await expect(head.locator(".error-panel")).toHaveCount(0);
  await head.locator('button[data-action="abort"]').click();
  await expect(head).toHaveAttribute("data-state", /abort requested|aborting|aborted/);
  await expect(head.locator('button[data-action="abort"]')).toHaveCount(0);
  // The step filter is a plain GET form.
  await page.locator("#filter-step-state").selectOption("initial");
  await page.locator("form.step-filters").getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(new RegExp(`/orchestration/${id}\\?state=initial`));
});

test("the orchestration pages fit a phone screen", async ({ page }, info) => {
  test.skip(info.project.name !== "phone", "the phone project checks the layout");
  const operator = await api("operator");
  const [target] = await smallTargets(operator, "online");
  await signIn(page, "operator");
  await page.goto(`${LIVE}/orchestration`);
  await expect(page.getByRole("heading", { level: 1, name: "Orchestration" })).toBeVisible();
  await noHorizontalOverflow(page, "/orchestration");
  await page.goto(`${LIVE}/orchestration/new?type=sw-deploy&release=26.03&target=filter&target_query=${encodeURIComponent(target.query)}`);
  await expect(page.locator(".preview-summary")).toBeVisible();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await noHorizontalOverflow(page, "/orchestration/new");
  const latest = (await strategies(operator))[0];
  if (latest) {
    await page.goto(`${LIVE}/orchestration/${latest.id}`);
    await expect(page.locator(".strategy-head")).toBeVisible();
    await noHorizontalOverflow(page, `/orchestration/${latest.id}`);
  }
  await page.goto(`${LIVE}/`);
  await expect(page.locator("section.deployments")).toBeVisible();
  await noHorizontalOverflow(page, "/");
});
