// Live updates end to end: a demo controller with its in-process fleet simulator (LIVE_URL,
// agents reporting every 2 s, offline after 2 missed) and the simulator's control API
// (SIM_CONTROL_URL). A site taken down through the simulator must turn offline on an open
// overview page without a reload, and come back when the site does; the same in a map page
// and in a status embed framed by a portal on another origin.
import { test, expect, type Page } from "@playwright/test";
import http from "node:http";
import type { AddressInfo } from "node:net";

const LIVE = process.env.LIVE_URL;
const SIM = process.env.SIM_CONTROL_URL;
const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

test.use({ storageState: { cookies: [], origins: [] } });
// One test at a time: each takes a site down and counts offline sites exactly.
test.describe.configure({ mode: "serial" });

async function signIn(page: Page, user = "viewer") {
  await page.goto(`${LIVE}/login`);
  await page.locator("#login-username").fill(user);
  await page.locator("#login-password").fill(`${user}-demo-password`);
  await page.locator("#login-password").press("Enter");
  await expect(page).toHaveURL(`${LIVE}/`);
}

/** Waits until the fleet has settled (two overview reads 3 s apart agree); offline sites then. */
async function settledOffline(page: Page): Promise<number> {
  let before = -1;
  await expect
    .poll(async () => {
      const o = await (await page.request.get(`${LIVE}/api/v1/overview`)).json();
      const settled = o.offline === before;
      before = o.offline;
      return settled;
    }, { timeout: 30_000, intervals: [3_000] })
    .toBe(true);
  return before;
}

async function fault(kind: string, site: string) {
  const res = await fetch(`${SIM}/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ fault: { kind }, selector: { sites: [site] } }),
  });
  expect(res.status).toBe(200);
  expect((await res.json()).affected).toBe(1);
}

test("a site taken down through the simulator turns offline on an open overview page @js", async ({ page }, info) => {
  test.skip(!LIVE || !SIM, "needs LIVE_URL and SIM_CONTROL_URL (scripts/test.sh starts them)");
  test.skip(info.project.name !== "desktop", "one browser is enough for a timing path");
  test.setTimeout(90_000);
  await signIn(page);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const offline = page.locator('a.kpi[data-kpi="Offline"] .kpi-value');
  const online = page.locator('a.kpi[data-kpi="Online"] .kpi-value');
  // Wait for the fleet to settle (every simulated site reporting), then take one down.
  const before = await settledOffline(page);
  const list = await (await page.request.get(`${LIVE}/api/v1/subclouds?availability=online&per_page=1`)).json();
  const site: string = list.rows[0].name;
  await expect(offline).toHaveText(grouped(before), { timeout: 15_000 });
  const onlineBefore = Number((await online.textContent())!.replace(/,/g, ""));
  // A marker that a reload would wipe.
  await page.evaluate(() => ((window as any).__noReload = true));
  await fault("down", site);
  await expect(offline).toHaveText(grouped(before + 1), { timeout: 30_000 });
  await expect(online).toHaveText(grouped(onlineBefore - 1));
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await fault("up", site);
  await expect(offline).toHaveText(grouped(before), { timeout: 30_000 });
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("a site taken down through the simulator turns offline on an open map page @js", async ({ page }, info) => {
  test.skip(!LIVE || !SIM, "needs LIVE_URL and SIM_CONTROL_URL (scripts/test.sh starts them)");
  test.skip(info.project.name !== "desktop", "one browser is enough for a timing path");
  test.setTimeout(90_000);
  await signIn(page);
  await page.goto(`${LIVE}/map`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const offline = () => page.locator('.map-legend li[data-status="offline"] .count');
  const count = async () => ((await offline().count()) === 0 ? 0 : Number((await offline().textContent())!.replace(/,/g, "")));
  await settledOffline(page);
  const list = await (await page.request.get(`${LIVE}/api/v1/subclouds?availability=online&management=managed&per_page=1`)).json();
  const site: string = list.rows[0].name;
  // The map counts managed sites that are offline: its own figure is the baseline.
  await page.goto(`${LIVE}/map`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const base = await count();
  await page.evaluate(() => ((window as any).__noReload = true));
  await fault("down", site);
  await expect.poll(count, { timeout: 30_000 }).toBe(base + 1);
  await expect(page.locator('.marks path[data-layer="offline"]')).toHaveAttribute("data-count", String(base + 1));
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
  await fault("up", site);
  await expect.poll(count, { timeout: 30_000 }).toBe(base);
  expect(await page.evaluate(() => (window as any).__noReload)).toBe(true);
});

test("a site taken down through the simulator shows in a portal's status embed @js", async ({ page, browser }, info) => {
  test.skip(!LIVE || !SIM, "needs LIVE_URL and SIM_CONTROL_URL (scripts/test.sh starts them)");
  test.skip(info.project.name !== "desktop", "one browser is enough for a timing path");
  test.setTimeout(90_000);
  await signIn(page, "admin");
  const api = page.request;
  const headers = { Origin: LIVE! };
  const made = await api.post(`${LIVE}/ui/embeds/create`, {
    headers,
    form: { kind: "status", target: "", label: "live portal", expires_in: "1", unit: "hours" },
  });
  expect(made.status(), await made.text()).toBe(200);
  const link = await made.json();
  // The portal: another origin (its own port), allowed to frame embeds.
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html lang="en"><head><title>Portal</title></head><body>
<iframe id="embed" title="Murmuration status" width="900" height="700" src="${LIVE}${link.path}"></iframe></body></html>`);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", () => ok()));
  const portal = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const allowed = await api.post(`${LIVE}/ui/embeds/origin-add`, { headers, form: { origin: portal } });
  expect(allowed.status(), await allowed.text()).toBe(200);
  const visitor = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  try {
    await settledOffline(page);
    // The status summary counts managed sites offline: its own figure is the baseline.
    const before: number = (await (await api.get(`${LIVE}/ui/status`)).json()).offline;
    const list = await (await api.get(`${LIVE}/api/v1/subclouds?availability=online&management=managed&per_page=1`)).json();
    const site: string = list.rows[0].name;
    const portalPage = await visitor.newPage();
    await portalPage.goto(portal);
    const frame = portalPage.frameLocator("#embed");
    const offline = frame.locator('[data-tile="Sites offline"] .status-tile-value');
    await expect(frame.locator("body")).toHaveAttribute("data-hydrated", "true");
    await expect(offline).toHaveText(grouped(before), { timeout: 15_000 });
    const child = portalPage.frames().find((f) => f.url().includes("/embed/status"))!;
    await child.evaluate(() => ((window as any).__noReload = true));
    await fault("down", site);
    await expect(offline).toHaveText(grouped(before + 1), { timeout: 30_000 });
    await fault("up", site);
    await expect(offline).toHaveText(grouped(before), { timeout: 30_000 });
    expect(await child.evaluate(() => (window as any).__noReload)).toBe(true);
  } finally {
    await visitor.close();
    await api.post(`${LIVE}/ui/embeds/origin-remove`, { headers, form: { origin: portal } });
    server.close();
  }
});
