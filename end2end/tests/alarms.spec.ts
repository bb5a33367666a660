import { test, expect, hydrated, ready, type Role } from "./auth-fixtures";
import type { Page, TestInfo } from "@playwright/test";

// The fleet alarm list (/alarms): filters in the URL (in place with JavaScript, a plain GET
// form without), acknowledging (operators and admins; a server-function form that works with
// and without JavaScript), and the subcloud detail's availability timeline and agent sections.
// Acknowledging changes the demo store: each project works on its own severity so that the
// projects, which run in parallel, never pick the same alarm, and the suite can run again and
// again against the same server.

test.beforeEach(async ({ page, consoleWatch }) => {
  consoleWatch.watch(page);
});
test.afterEach(async ({ consoleWatch }, info) => {
  if (info.status === "passed") expect(consoleWatch.problems, "console errors").toEqual([]);
});

type AlarmRow = {
  id: number;
  subcloud: string;
  alarm_id: string;
  severity: string;
  cleared_at: number | null;
  acknowledged: boolean;
  acknowledged_by: string | null;
};
type AlarmPage = {
  rows: AlarmRow[];
  matching: number;
  active: { critical: number; major: number; minor: number; warnings: number };
};

const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** A page of alarms from the page's own server function (what the table shows). */
async function alarms(
  page: Page,
  q: { severities?: string[]; state?: string; subcloud?: string; acknowledged?: boolean; per_page?: number } = {},
): Promise<AlarmPage> {
  const p = new URLSearchParams();
  (q.severities ?? []).forEach((s, i) => p.append(`severities[${i}]`, s));
  p.append("state", q.state ?? "active");
  if (q.subcloud) p.append("subcloud", q.subcloud);
  if (q.acknowledged !== undefined) p.append("acknowledged", String(q.acknowledged));
  p.append("page", "1");
  p.append("per_page", String(q.per_page ?? 50));
  const res = await page.request.get(`/ui/alarms/page?${p}`);
  expect(res.status(), `alarm page ${p}: ${await res.text()}`).toBe(200);
  return res.json();
}

/** The severity this project acknowledges (projects run in parallel on one server). */
function ownSeverity(info: TestInfo): string {
  return ({ desktop: "minor", "desktop-nojs": "warning", phone: "major" } as Record<string, string>)[info.project.name] ?? "minor";
}

const rows = (page: Page) => page.locator("tbody tr[data-alarm-row]");

/**
 * The page's count of matching alarms equals the server's. The main demo has no simulator, so
 * no alarm is raised or cleared while the suite runs, but the projects run in parallel against
 * it and acknowledge alarms (each of its own severity), which moves every count filtered by
 * acknowledgement. So the two are compared again (after a reload without JavaScript; with it,
 * the live update an acknowledgement publishes refreshes the page) until they were taken at
 * the same moment.
 */
async function matchesServer(page: Page, js: boolean, q: Parameters<typeof alarms>[1]) {
  await expect(async () => {
    if (!js) await page.reload();
    const want = await alarms(page, q);
    const shown = Number(await page.locator("p.result-count").getAttribute("data-matching"));
    expect(shown).toBe(want.matching);
  }).toPass({ timeout: 20_000 });
}

test("the alarm list shows the filters of its URL, and the severity filter filters", async ({ page, javaScriptEnabled: js }) => {
  const res = await page.goto("/alarms?severity=critical&severity=major&state=all");
  expect(res?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1, name: "Alarms" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Alarms", exact: true })).toHaveAttribute("aria-current", "page");
  // The form shows the URL's filters.
  await expect(page.locator("#filter-severity-critical")).toBeChecked();
  await expect(page.locator("#filter-severity-major")).toBeChecked();
  await expect(page.locator("#filter-severity-minor")).not.toBeChecked();
  await expect(page.locator("#filter-severity-warning")).not.toBeChecked();
  await expect(page.locator("#filter-state")).toHaveValue("all");
  await ready(page, js);
  // Every row has one of the chosen severities, and the count is the server's.
  await matchesServer(page, js, { severities: ["critical", "major"], state: "all" });
  const matching = Number(await page.locator("p.result-count").getAttribute("data-matching"));
  expect(matching).toBeGreaterThan(0);
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(matching)} alarms`);
  const severities = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-severity")));
  expect(severities.length).toBe(Math.min(50, matching));
  expect(severities.every((s) => s === "critical" || s === "major")).toBe(true);
  expect(severities).toContain("critical");
  // The chips count the fleet's active alarms, whatever the filter.
  await expect(async () => {
    if (!js) await page.reload();
    const { active } = await alarms(page);
    const want = { critical: active.critical, major: active.major, minor: active.minor, warning: active.warnings };
    for (const [sev, n] of Object.entries(want)) {
      expect(await page.locator(`label.chip[data-severity="${sev}"] .chip-count`).innerText(), sev).toContain(grouped(n));
    }
  }).toPass({ timeout: 20_000 });
  // Each row names its alarm and links to its subcloud.
  const first = rows(page).first();
  const subcloud = await first.locator("td.subcloud a").innerText();
  await expect(first.locator("td.subcloud a")).toHaveAttribute("href", `/subclouds/${subcloud}`);
  await expect(first.locator("td.alarm-id")).toHaveText(/^\d{3}\.\d{3}$/);
  await expect(first.locator("td.raised")).toHaveText(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  // Only warnings: every row is a warning.
  await page.goto("/alarms?severity=warning");
  await ready(page, js);
  await matchesServer(page, js, { severities: ["warning"] });
  const only = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-severity")));
  expect(only.length).toBeGreaterThan(0);
  expect(only.every((s) => s === "warning")).toBe(true);
});

test("filters apply in place after hydration and land in the URL @js", async ({ page }) => {
  await page.goto("/alarms");
  await hydrated(page);
  await page.evaluate(() => ((window as any).__noReload = "still here"));
  await page.locator("#filter-severity-critical").check();
  await expect(page).toHaveURL(/[?&]severity=critical(&|$)/);
  await expect(rows(page).first()).toHaveAttribute("data-severity", "critical");
  await matchesServer(page, true, { severities: ["critical"] });
  expect(await rows(page).evaluateAll((trs) => trs.every((tr) => tr.getAttribute("data-severity") === "critical"))).toBe(true);

  await page.locator("#filter-state").selectOption("all");
  await expect(page).toHaveURL(/[?&]state=all(&|$)/);
  await expect(page).toHaveURL(/[?&]severity=critical(&|$)/);
  await matchesServer(page, true, { severities: ["critical"], state: "all" });
  await page.locator("#filter-ack").selectOption("no");
  await expect(page).toHaveURL(/[?&]ack=no(&|$)/);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");

  // The URL round-trips: reloading it shows the same filters.
  await page.reload();
  await hydrated(page);
  await expect(page.locator("#filter-severity-critical")).toBeChecked();
  await expect(page.locator("#filter-state")).toHaveValue("all");
  await expect(page.locator("#filter-ack")).toHaveValue("no");
});

test("the filter form works without JavaScript @nojs", async ({ page }) => {
  await page.goto("/alarms");
  await page.locator("#filter-severity-major").check();
  await page.locator("#filter-severity-minor").check();
  await page.locator("#filter-ack").selectOption("no");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/[?&]severity=major&severity=minor(&|$)/);
  await expect(page).toHaveURL(/[?&]ack=no(&|$)/);
  const want = await alarms(page, { severities: ["major", "minor"], acknowledged: false });
  await matchesServer(page, false, { severities: ["major", "minor"], acknowledged: false });
  const seen = await rows(page).evaluateAll((trs) => trs.map((tr) => [tr.getAttribute("data-severity"), tr.getAttribute("data-acknowledged")]));
  expect(seen.length).toBeGreaterThan(0);
  for (const [sev, acked] of seen) {
    expect(["major", "minor"]).toContain(sev);
    expect(acked).toBe("false");
  }
  await expect(page.locator("#filter-severity-major")).toBeChecked();
  await expect(page.locator("#filter-ack")).toHaveValue("no");
  // Paging keeps the filters.
  if (want.matching > 50) {
    await page.getByRole("link", { name: "Next ›" }).click();
    await expect(page).toHaveURL(/[?&]page=2(&|$)/);
    await expect(page).toHaveURL(/severity=major/);
  }
});

test("an unknown subcloud has no alarms: an empty state, not an error", async ({ page }) => {
  const res = await page.goto("/alarms?subcloud=nowhere-0001&state=all");
  expect(res?.status()).toBe(200);
  await expect(page.locator("p.empty")).toHaveText("No alarms match these filters.");
  await expect(page.locator("#filter-subcloud")).toHaveValue("nowhere-0001");
});

test("a bad filter is a 400 with the field named", async ({ page, consoleWatch }) => {
  for (const [q, field] of [
    ["state=sideways", "state"],
    ["ack=maybe", "ack"],
    ["severity=fatal", "severity"],
    ["per_page=0", "per_page"],
  ]) {
    consoleWatch.allow(400, "/alarms");
    const res = await page.goto(`/alarms?${q}`);
    expect(res?.status(), q).toBe(400);
    await expect(page.getByRole("alert")).toContainText("Invalid request");
    await expect(page.getByRole("alert")).toContainText(`${field}:`);
  }
});

/** Opens /alarms as `role` showing exactly `alarm` (and its subcloud's others of that severity). */
async function openRowOf(page: Page, js: boolean, a: AlarmRow) {
  await page.goto(`/alarms?severity=${a.severity}&subcloud=${a.subcloud}`);
  await ready(page, js);
  return page.locator(`tr[data-alarm-row="${a.id}"]`);
}

test("an operator acknowledges one alarm with its row's button; the audit log records it", async ({ open, javaScriptEnabled: js }, info) => {
  const page = await open("operator");
  const severity = ownSeverity(info);
  await page.goto("/alarms");
  const candidates = await alarms(page, { severities: [severity], acknowledged: false });
  expect(candidates.rows.length, `an unacknowledged ${severity} alarm to work on`).toBeGreaterThan(0);
  const a = candidates.rows[0];

  const row = await openRowOf(page, js, a);
  await expect(row).toHaveAttribute("data-acknowledged", "false");
  if (js) await page.evaluate(() => ((window as any).__noReload = "still here"));
  await row.getByRole("button", { name: /^Acknowledge/ }).click();
  await expect(page.getByRole("status").filter({ hasText: "Acknowledged 1 alarm." })).toBeVisible();
  await expect(row).toHaveAttribute("data-acknowledged", "true");
  await expect(row.locator("td.acked")).toContainText("by operator");
  await expect(row.getByRole("button", { name: /^Acknowledge/ })).toHaveCount(0);
  await expect(row.locator('input[name="ids[]"]')).toHaveCount(0);
  if (js) {
    expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");
  } else {
    // Back on the same filtered list, with the count in the URL.
    await expect(page).toHaveURL(new RegExp(`/alarms\\?severity=${severity}&subcloud=${a.subcloud}&acknowledged=1$`));
  }
  const after = await alarms(page, { severities: [severity], subcloud: a.subcloud, state: "all" });
  const stored = after.rows.find((r) => r.id === a.id)!;
  expect(stored.acknowledged).toBe(true);
  expect(stored.acknowledged_by).toBe("operator");

  // The audit log lists it.
  await page.goto(`/audit?action=alarm.acknowledged&actor=operator&target=${encodeURIComponent(`alarms:${a.id}`)}`);
  await ready(page, js);
  const audited = page.locator('tr[data-audit-action="alarm.acknowledged"]');
  await expect(audited.first()).toBeVisible();
  await expect(audited.first().locator("td").nth(1)).toHaveText("operator");
  await expect(audited.first().locator("td").nth(4)).toContainText(`alarms:${a.id}`);
  await expect(audited.first().locator("td").nth(7)).toHaveText("ok");
});

test("an operator acknowledges the checked alarms at once", async ({ open, javaScriptEnabled: js }, info) => {
  const page = await open("operator");
  const severity = ownSeverity(info);
  await page.goto(`/alarms?severity=${severity}&ack=no`);
  await ready(page, js);
  const boxes = page.locator('tbody input[name="ids[]"]');
  expect(await boxes.count(), `two unacknowledged ${severity} alarms`).toBeGreaterThan(1);
  const ids = [await boxes.nth(0).getAttribute("value"), await boxes.nth(1).getAttribute("value")];
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.getByRole("button", { name: "Acknowledge selected" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Acknowledged 2 alarms." })).toBeVisible();
  // The list only shows unacknowledged alarms: both are gone from it.
  for (const id of ids) await expect(page.locator(`tr[data-alarm-row="${id}"]`)).toHaveCount(0);
  await expect(page).toHaveURL(/[?&]ack=no/);
  const acked = await alarms(page, { severities: [severity], acknowledged: true, per_page: 500 });
  for (const id of ids) {
    const r = acked.rows.find((x) => String(x.id) === id);
    expect(r?.acknowledged_by, `alarm ${id}`).toBe("operator");
  }
});

test("acknowledging nothing says so", async ({ open, javaScriptEnabled: js, consoleWatch }, info) => {
  const page = await open("operator");
  // With JavaScript the refusal is the server function's 400, which Chromium logs.
  consoleWatch.allow(400, "/ui/alarms/acknowledge");
  await page.goto(`/alarms?severity=${ownSeverity(info)}&ack=no`);
  await ready(page, js);
  await page.getByRole("button", { name: "Acknowledge selected" }).click();
  await expect(page.locator(".form-status .form-error")).toContainText("choose at least one alarm");
});

for (const role of ["viewer"] as Role[]) {
  test(`a ${role} sees the alarms but no acknowledge controls`, async ({ open, javaScriptEnabled: js }) => {
    const page = await open(role);
    await page.goto("/alarms?ack=no");
    await ready(page, js);
    await expect(page.getByRole("link", { name: "Alarms", exact: true })).toBeVisible();
    expect(await rows(page).count()).toBeGreaterThan(0);
    await expect(page.locator('input[name="ids[]"]')).toHaveCount(0);
    await expect(page.getByRole("button", { name: /^Acknowledge/ })).toHaveCount(0);
    await expect(page.locator("form.ack-form")).toHaveCount(0);
    // And the server refuses a crafted post.
    const id = await rows(page).first().getAttribute("data-alarm-row");
    const res = await page.request.post("/ui/alarms/acknowledge", {
      form: { "ids[]": id!, back: "" },
      headers: { Origin: new URL(page.url()).origin },
    });
    expect(res.status()).toBe(403);
  });
}

test("the subcloud detail shows 24 h of availability and the agent", async ({ page }) => {
  const list = await (await page.request.get("/api/v1/subclouds?alarm=critical&per_page=1")).json();
  const name = list.rows[0].name;
  const res = await page.request.get(`/ui/fleet/subcloud?name=${name}`);
  expect(res.status()).toBe(200);
  const d = await res.json();
  await page.goto(`/subclouds/${name}`);
  const availability = page.locator("section", { has: page.getByRole("heading", { name: "Availability, last 24 h" }) });
  await expect(availability).toBeVisible();
  const segs = availability.locator("svg.timeline rect.seg");
  await expect(segs).toHaveCount(d.timeline.spans.length);
  // Widths (basis points) add up to the whole bar; each segment says what and when.
  const widths = await segs.evaluateAll((rs) => rs.map((r) => Number(r.getAttribute("data-width"))));
  expect(widths.reduce((a, b) => a + b, 0)).toBe(10000);
  for (let i = 0; i < d.timeline.spans.length; i++) {
    const s = d.timeline.spans[i];
    const state = s.availability ?? "unknown";
    await expect(segs.nth(i)).toHaveAttribute("data-state", state);
    await expect(segs.nth(i).locator("title")).toContainText(`${state}: `);
  }
  await expect(availability.locator("[data-transitions]")).toHaveText(
    d.timeline.transitions === 1 ? "1 transition" : `${d.timeline.transitions} transitions`,
  );
  await expect(availability.locator("strong")).toHaveText(/(\d+\.\d% online|no availability data)/);
  await expect(availability.locator("svg.timeline text.tick-label").first()).toHaveText(/^\d\d:00$/);

  const agent = page.locator("section", { has: page.getByRole("heading", { name: "Agent", exact: true }) });
  await expect(agent).toBeVisible();
  if (d.agent === null) {
    await expect(agent).toContainText("No agent enrolled.");
  } else {
    await expect(agent.locator("dl.agent-props")).toContainText("Last report");
    await expect(agent.locator("dl.agent-props")).toContainText(String(d.agent.highest_epoch));
    await expect(agent.locator("tr[data-controller]")).toHaveCount(d.agent.reachability.length);
  }
});
