// Live updates end to end: a demo controller with its in-process fleet simulator (LIVE_URL,
// agents reporting every 2 s, offline after 2 missed) and the simulator's control API
// (SIM_CONTROL_URL). A site taken down through the simulator must turn offline on an open
// overview page without a reload, and come back when the site does.
import { test, expect, type Page } from "@playwright/test";

const LIVE = process.env.LIVE_URL;
const SIM = process.env.SIM_CONTROL_URL;
const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

test.use({ storageState: { cookies: [], origins: [] } });

async function signIn(page: Page) {
  await page.goto(`${LIVE}/login`);
  await page.locator("#login-username").fill("viewer");
  await page.locator("#login-password").fill("viewer-demo-password");
  await page.locator("#login-password").press("Enter");
  await expect(page).toHaveURL(`${LIVE}/`);
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
  let before = -1;
  await expect
    .poll(async () => {
      const o = await (await page.request.get(`${LIVE}/api/v1/overview`)).json();
      const settled = o.offline === before;
      before = o.offline;
      return settled;
    }, { timeout: 30_000, intervals: [3_000] })
    .toBe(true);
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
