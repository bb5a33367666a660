// Geo-redundancy pages end to end, against the three-controller demo (GEO_URL: `murmur demo`
// without --single-controller; the controller it serves plays sc-amsterdam, its two peers run
// in the same process and take over each other's peer groups).
//
// Read only: nothing here migrates, fails back, pauses takeover or stops a controller (the
// migrate preview is opened, never confirmed), so it can share the demo with other tests. Runs
// in every project: hydrated on a desktop, without JavaScript, and on a phone (390x844).
import { test, expect, request, type APIRequestContext, type Page, type TestInfo } from "@playwright/test";

const GEO = process.env.GEO_URL;
const PASSWORDS = {
  admin: "admin-demo-password",
  operator: "operator-demo-password",
  viewer: "viewer-demo-password",
} as const;
type Role = keyof typeof PASSWORDS;

type Group = { name: string; owner: string; home: string; epoch: string };

test.skip(!GEO, "needs GEO_URL: a `murmur demo` serving three peer controllers");
test.use({ storageState: { cookies: [], origins: [] } });

let problems: string[] = [];
test.beforeEach(async ({ page }) => {
  problems = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
});
test.afterEach(async ({}, info) => {
  if (info.status === "passed") expect(problems, "console errors").toEqual([]);
});

async function signIn(page: Page, role: Role) {
  await page.goto(`${GEO}/login`);
  await page.locator("#login-username").fill(role);
  await page.locator("#login-password").fill(PASSWORDS[role]);
  await page.locator("#login-password").press("Enter");
  await expect(page).toHaveURL(`${GEO}/`);
}

/** A signed-in client of the dashboard's own server functions. */
async function api(role: Role): Promise<APIRequestContext> {
  const ctx = await request.newContext({ baseURL: GEO, extraHTTPHeaders: { Origin: GEO! } });
  const res = await ctx.post("/login", {
    form: { username: role, password: PASSWORDS[role], next: "/" },
    maxRedirects: 0,
  });
  expect(res.status(), `sign in ${role}`).toBe(303);
  return ctx;
}

/** Waits until the page is interactive: hydrated with JavaScript, at once without. */
async function ready(page: Page, js: boolean) {
  if (js) await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

async function noHorizontalOverflow(page: Page, info: TestInfo, what: string) {
  if (info.project.name !== "phone") return;
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${what} overflows horizontally by ${overflow}px`).toBeLessThanOrEqual(0);
}

/** The peer groups as the list page shows them. */
async function groups(page: Page): Promise<Group[]> {
  await page.goto(`${GEO}/peer-groups`);
  const rows = page.getByTestId("group-row");
  await expect(rows.first()).toBeVisible();
  const out: Group[] = [];
  for (const row of await rows.all()) {
    out.push({
      name: (await row.getAttribute("data-group")) ?? "",
      owner: (await row.getAttribute("data-owner")) ?? "",
      home: (await row.getAttribute("data-home")) ?? "",
      epoch: (await row.getAttribute("data-epoch")) ?? "",
    });
  }
  return out;
}

test("the controllers page lists the three controllers, all available", async ({ page, javaScriptEnabled }, info) => {
  await signIn(page, "admin");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Controllers" }).click();
  await expect(page).toHaveURL(`${GEO}/controllers`);
  await expect(page.getByRole("heading", { level: 1, name: "System controllers" })).toBeVisible();
  await ready(page, javaScriptEnabled);
  const rows = page.getByTestId("peer-row");
  await expect(rows).toHaveCount(3);
  // Right after the demo starts a peer may still be `created`: with JavaScript the page follows
  // by itself; without, it is read again.
  await expect(async () => {
    if (!javaScriptEnabled) await page.reload();
    for (const row of await rows.all()) await expect(row).toHaveAttribute("data-availability", "available", { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByTestId("controllers-available")).toContainText("3 of 3");
  await expect(rows.filter({ has: page.locator(".badge", { hasText: "this controller" }) })).toHaveCount(1);
  await expect(page.locator('[data-testid="peer-row"][data-self="true"]')).toHaveCount(1);
  for (const row of await rows.all()) {
    const name = (await row.getAttribute("data-peer")) ?? "";
    expect(name).toMatch(/^sc-/);
    // State in words and shape, not colour alone; load as numbers; the drill one click away.
    await expect(row.locator(".badge", { hasText: "available" })).toContainText("●");
    await expect(row.locator(".capacity-text")).toContainText(/[\d,]+ managed of [\d,]+ · [\d,]+ reserved · [\d,]+ free/);
    await expect(row.getByRole("link", { name: /What if it fails\?/ })).toHaveAttribute("href", `/drill?controller=${name}`);
  }
  // Peers (not this controller) have been heard from recently.
  await expect(page.locator('[data-testid="peer-row"][data-self="false"] .heartbeat').first()).toContainText(/last seen/);
  // Admins and operators may pause automatic takeover; the demo's stop and start are for admins.
  await expect(page.getByTestId("maintenance")).toHaveAttribute("data-paused", "false");
  await expect(page.getByTestId("pause-takeover")).toBeVisible();
  await expect(page.getByTestId("demo-note")).toContainText("simulates its failure");
  await expect(page.getByTestId("demo-stop")).toHaveCount(3);
  await noHorizontalOverflow(page, info, "/controllers");
});

test("the peer groups page lists groups with their owners, and a group shows its detail", async ({ page, javaScriptEnabled }, info) => {
  await signIn(page, "admin");
  const all = await groups(page);
  expect(all.length).toBeGreaterThan(0);
  const controllers = ["sc-amsterdam", "sc-dallas", "sc-singapore"];
  for (const g of all) {
    expect(controllers, `owner of ${g.name}`).toContain(g.owner);
    expect(controllers, `home of ${g.name}`).toContain(g.home);
    expect(g.epoch, `epoch of ${g.name}`).toMatch(/^\d+$/);
  }
  const row = page.locator(`[data-testid="group-row"][data-group="${all[0].name}"]`);
  await expect(row.locator("td[data-label='Owner']")).toContainText(all[0].owner);
  await expect(row.locator("td[data-label='Associations'] .badge")).toContainText(/\d+\/\d+ in sync/);
  await noHorizontalOverflow(page, info, "/peer-groups");

  const g = all[0];
  await row.getByRole("link", { name: g.name }).click();
  await expect(page).toHaveURL(`${GEO}/peer-groups/${g.name}`);
  await expect(page.getByRole("heading", { level: 1, name: `Peer group ${g.name}` })).toBeVisible();
  await ready(page, javaScriptEnabled);
  const head = page.getByTestId("group-head");
  await expect(head).toHaveAttribute("data-owner", g.owner);
  await expect(head).toHaveAttribute("data-epoch", /^\d+$/);
  await expect(page.getByTestId("association-row").first()).toBeVisible();
  await expect(page.getByTestId("candidate-row").first().locator(".capacity")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Ownership history" })).toBeVisible();
  await noHorizontalOverflow(page, info, `/peer-groups/${g.name}`);

  // Migrate, step one: choosing a controller previews (a GET form); nothing changes.
  const select = page.locator("#migrate-to");
  await expect(select).toBeVisible();
  const target = await select.locator("option:not([value=''])").first().getAttribute("value");
  expect(target).toBeTruthy();
  await select.selectOption(target!);
  if (!javaScriptEnabled) await page.getByTestId("migrate-preview-button").click();
  await expect(page).toHaveURL(`${GEO}/peer-groups/${g.name}?to=${target}`);
  const preview = page.getByTestId("migrate-preview");
  await expect(preview).toBeVisible();
  await expect(preview).toHaveAttribute("data-from", g.owner);
  await expect(preview).toHaveAttribute("data-to", target!);
  await expect(preview).toContainText(`from ${g.owner} to ${target}`);
  if ((await preview.getAttribute("data-allowed")) === "true") {
    await expect(page.getByTestId("migrate-confirm")).toHaveText(`Migrate ${g.name} to ${target}`);
  } else {
    await expect(page.getByTestId("migrate-refused")).toBeVisible();
  }
  await noHorizontalOverflow(page, info, `/peer-groups/${g.name}?to=${target}`);
  // Only the preview: the group has not moved.
  await expect(head).toHaveAttribute("data-owner", g.owner);
});

test("the drill shows where a controller's groups would go, and that nothing was changed", async ({ page, javaScriptEnabled }, info) => {
  await signIn(page, "admin");
  const before = await groups(page);
  // A controller that owns groups now.
  const failed = before[0].owner;
  const owned = before.filter((g) => g.owner === failed).map((g) => g.name).sort();

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Drill" }).click();
  await expect(page).toHaveURL(`${GEO}/drill`);
  await expect(page.getByTestId("drill-empty")).toBeVisible();
  await ready(page, javaScriptEnabled);
  await page.getByTestId("drill-controller").selectOption(failed);
  if (!javaScriptEnabled) await page.getByRole("button", { name: "Run the drill" }).click();
  await expect(page).toHaveURL(`${GEO}/drill?controller=${failed}`);

  await expect(page.getByTestId("nothing-changed")).toContainText("Nothing was changed.");
  await expect(page.getByTestId("nothing-changed")).toContainText(`if ${failed} failed now`);
  const plan = page.getByTestId("drill-plan");
  await expect(plan).toHaveAttribute("data-failed", failed);
  await expect(plan).toHaveAttribute("data-policy", /^(alarm|rehome|delegate)$/);
  await expect(page.getByTestId("drill-detection")).toContainText(/\d+(\.\d)? s/);
  // Every group the controller owns is placed on a survivor, or waits for capacity.
  const rows = page.getByTestId("plan-row");
  await expect(rows).toHaveCount(owned.length);
  const placed: string[] = [];
  for (const row of await rows.all()) {
    const group = (await row.getAttribute("data-group")) ?? "";
    placed.push(group);
    const to = (await row.getAttribute("data-to")) ?? "";
    if (to === "") {
      await expect(row).toContainText("waits: shortfall");
      await expect(page.getByTestId("shortfall")).toContainText(group);
    } else {
      expect(to).not.toBe(failed);
      await expect(row.locator("td[data-label='Goes to']")).toHaveText(to);
    }
  }
  expect(placed.sort()).toEqual(owned);
  // The survivors' capacity before and after.
  await expect(page.getByTestId("capacity-row")).toHaveCount(2);
  await expect(page.locator(`[data-testid="capacity-row"][data-controller="${failed}"]`)).toHaveCount(0);
  await expect(page.getByTestId("unprotected-sites")).toHaveAttribute("data-count", /^\d+$/);
  await noHorizontalOverflow(page, info, `/drill?controller=${failed}`);

  // Nothing moved.
  const after = await groups(page);
  expect(after.map((g) => [g.name, g.owner, g.epoch])).toEqual(before.map((g) => [g.name, g.owner, g.epoch]));
});

test("a viewer sees the geo-redundancy pages but no controls", async ({ page }, info) => {
  await signIn(page, "viewer");
  await page.goto(`${GEO}/controllers`);
  await expect(page.getByTestId("peer-row")).toHaveCount(3);
  await expect(page.getByTestId("pause-takeover")).toHaveCount(0);
  await expect(page.getByTestId("resume-takeover")).toHaveCount(0);
  await expect(page.getByTestId("demo-stop")).toHaveCount(0);
  await expect(page.locator("main form")).toHaveCount(0);
  await noHorizontalOverflow(page, info, "/controllers (viewer)");

  const [g] = await groups(page);
  const other = ["sc-amsterdam", "sc-dallas", "sc-singapore"].find((c) => c !== g.owner)!;
  await page.goto(`${GEO}/peer-groups/${g.name}`);
  await expect(page.getByTestId("group-head")).toHaveAttribute("data-owner", g.owner);
  await expect(page.getByTestId("group-actions")).toHaveCount(0);
  await expect(page.locator("#migrate-to")).toHaveCount(0);
  await expect(page.getByTestId("fail-back")).toHaveCount(0);
  // Even with a preview's address: no preview, no confirm.
  await page.goto(`${GEO}/peer-groups/${g.name}?to=${other}`);
  await expect(page.getByTestId("group-head")).toBeVisible();
  await expect(page.getByTestId("migrate-preview")).toHaveCount(0);
  await expect(page.getByTestId("migrate-confirm")).toHaveCount(0);
  await expect(page.locator("main form")).toHaveCount(0);
  // The drill is for everyone: it changes nothing.
  await page.goto(`${GEO}/drill?controller=${g.owner}`);
  await expect(page.getByTestId("nothing-changed")).toBeVisible();

  // A crafted post is refused (the server's gate refuses viewer posts).
  const viewer = await api("viewer");
  const res = await viewer.post("/ui/geo/migrate", { form: { group: g.name, to: other } });
  expect(res.status()).toBe(403);
  const paused = await viewer.post("/ui/geo/takeover-paused", { form: { paused: "true" } });
  expect(paused.status()).toBe(403);
  await viewer.dispose();
});
