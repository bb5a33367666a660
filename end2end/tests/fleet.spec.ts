import { test, expect, type Page, type ConsoleMessage } from "@playwright/test";

// Numbers on screen must equal what the REST API says: both come from the same engine query.
async function api(page: Page, path: string): Promise<any> {
  const res = await page.request.get(path);
  expect(res.status(), `${path} status`).toBe(200);
  return res.json();
}

const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

// Collect console errors and uncaught exceptions of every page; a test fails on any.
let problems: string[] = [];
// A test that requests an error page on purpose names its status; Chromium logs the document's
// own 4xx as a console error, which is then expected.
let expectedDocumentStatus: number | null = null;
test.beforeEach(async ({ page }) => {
  problems = [];
  expectedDocumentStatus = null;
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() !== "error") return;
    const own = expectedDocumentStatus !== null &&
      m.text() === `Failed to load resource: the server responded with a status of ${expectedDocumentStatus} (${expectedDocumentStatus === 404 ? "Not Found" : "Bad Request"})` &&
      m.location().url.startsWith(page.url().split("?")[0]);
    if (!own) problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
});
test.afterEach(async ({}, info) => {
  if (info.status === "passed") expect(problems, "console errors").toEqual([]);
});

async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

test("overview shows the fleet's key figures from the server", async ({ page }) => {
  const o = await api(page, "/api/v1/overview");
  const res = await page.goto("/");
  expect(res?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1, name: "Fleet overview" })).toBeVisible();
  const kpi = (label: string) => page.locator(`a.kpi[data-kpi="${label}"] .kpi-value`);
  await expect(kpi("Subclouds")).toHaveText(grouped(o.total));
  await expect(kpi("Online")).toHaveText(grouped(o.online));
  await expect(kpi("Offline")).toHaveText(grouped(o.offline));
  await expect(kpi("Critical alarm")).toHaveText(grouped(o.alarm_critical));
  await expect(kpi("Out of sync")).toHaveText(grouped(o.out_of_sync));
  await expect(kpi("Health unknown")).toHaveText(grouped(o.alarm_unknown));
  expect(o.online + o.offline).toBe(o.total);
  for (const c of o.controllers) {
    await expect(page.locator(`tr[data-controller="${c.name}"] td.num`).first()).toHaveText(grouped(c.subclouds));
  }
  await expect(page.locator('li[data-severity="critical"] .count')).toHaveText(grouped(o.active_alarms.critical));
});

test("the server sends complete HTML, not placeholders", async ({ page }) => {
  const html = await (await page.request.get("/subclouds?availability=offline")).text();
  const rows = html.match(/<tr data-subcloud=/g) ?? [];
  const p = await api(page, "/api/v1/subclouds?availability=offline");
  expect(rows.length).toBe(p.rows.length);
  expect(rows.length).toBeGreaterThan(0);
  expect(html).toContain(`of ${grouped(p.matching)} subclouds`);
});

test("subcloud list pages through the whole fleet", async ({ page }) => {
  const all = await api(page, "/api/v1/subclouds");
  await page.goto("/subclouds");
  await expect(page.locator("p.result-count")).toHaveText(`1–50 of ${grouped(all.matching)} subclouds`);
  await expect(page.locator("tbody tr[data-subcloud]")).toHaveCount(50);
  await expect(page.locator("tbody tr[data-subcloud]").first()).toHaveAttribute("data-subcloud", all.rows[0].name);
  await page.getByRole("link", { name: "Next ›" }).click();
  await expect(page).toHaveURL(/[?&]page=2/);
  const second = await api(page, "/api/v1/subclouds?page=2");
  await expect(page.locator("tbody tr[data-subcloud]").first()).toHaveAttribute("data-subcloud", second.rows[0].name);
});

test("filtering after hydration updates in place, without a reload @js", async ({ page }) => {
  await page.goto("/subclouds");
  await hydrated(page);
  // A full page load would wipe this marker.
  await page.evaluate(() => ((window as any).__noReload = "still here"));
  const offline = await api(page, "/api/v1/subclouds?availability=offline");
  await page.locator("#filter-availability").selectOption("offline");
  await expect(page).toHaveURL(/availability=offline/);
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(offline.matching)} subclouds`);
  const badges = page.locator("tbody tr[data-subcloud] td:nth-child(2) .badge");
  await expect(badges.first()).toHaveText(/offline/);
  expect(await badges.allInnerTexts()).toEqual(offline.rows.map(() => expect.stringContaining("offline")));
  expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");

  // Combine with a second filter and a text search: still no reload, URL carries all three.
  const both = await api(page, "/api/v1/subclouds?availability=offline&alarm=critical");
  await page.locator("#filter-alarm").selectOption("critical");
  await expect(page).toHaveURL(/alarm=critical/);
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(both.matching)} subclouds`);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");

  // Sorting by a column header is also in place.
  await page.getByRole("link", { name: /^Name/ }).click();
  await expect(page).toHaveURL(/dir=desc/);
  const desc = await api(page, "/api/v1/subclouds?availability=offline&alarm=critical&dir=desc");
  await expect(page.locator("tbody tr[data-subcloud]").first()).toHaveAttribute("data-subcloud", desc.rows[0].name);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");
});

test("filters work as a plain form without JavaScript @nojs", async ({ page }) => {
  await page.goto("/subclouds");
  const offline = await api(page, "/api/v1/subclouds?availability=offline&sync=unknown");
  await page.locator("#filter-availability").selectOption("offline");
  await page.locator("#filter-sync").selectOption("unknown");
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(/availability=offline/);
  await expect(page).toHaveURL(/sync=unknown/);
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(offline.matching)} subclouds`);
  await expect(page.locator("#filter-availability")).toHaveValue("offline");
});

test("search by name or city", async ({ page }) => {
  const p = await api(page, "/api/v1/subclouds?q=tokyo");
  expect(p.matching).toBeGreaterThan(0);
  await page.goto("/subclouds?q=tokyo");
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(p.matching)} subclouds`);
  await expect(page.locator("#filter-q")).toHaveValue("tokyo");
});

test("a bad filter value gets a clear message", async ({ page }) => {
  expectedDocumentStatus = 400;
  const res = await page.goto("/subclouds?availability=sideways");
  expect(res?.status()).toBe(400);
  await expect(page.getByRole("alert")).toContainText("not a valid availability");
});

test("subcloud detail shows every field, endpoint sync and alarms", async ({ page }) => {
  const list = await api(page, "/api/v1/subclouds?alarm=critical&per_page=1");
  const name = list.rows[0].name;
  const d = await api(page, `/api/v1/subclouds/${name}`);
  await page.goto("/subclouds?alarm=critical");
  await page.getByRole("link", { name, exact: true }).click();
  await expect(page).toHaveURL(new RegExp(`/subclouds/${name}$`));
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(name);
  await expect(page.locator("tr[data-endpoint]")).toHaveCount(7);
  for (const e of d.endpoints) {
    await expect(page.locator(`tr[data-endpoint="${e.endpoint}"] .badge`)).toContainText(e.status);
  }
  await expect(page.locator("tr[data-alarm]")).toHaveCount(d.alarms.length);
  await expect(page.locator("dl.props")).toContainText(d.summary.controller);
  await expect(page.locator("dl.props")).toContainText(d.location);
});

test("an unknown subcloud is a 404 with a message", async ({ page }) => {
  expectedDocumentStatus = 404;
  const res = await page.goto("/subclouds/nowhere-0001");
  expect(res?.status()).toBe(404);
  await expect(page.getByRole("alert")).toContainText("not found");
});
