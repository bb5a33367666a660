// Kiosk (wall screen) mode: `?kiosk` on any page hides the navigation, enlarges the figures,
// shows when the data was last updated, and with a playlist moves on by itself (a meta
// refresh, so without JavaScript too). Runs in every project.
import { test, expect } from "@playwright/test";

const px = (v: string) => Number(v.replace("px", ""));

test("kiosk mode hides the navigation, shows large figures and a last-updated stamp", async ({ page }) => {
  await page.goto("/");
  const kpi = page.locator('a.kpi[data-kpi="Subclouds"] .kpi-value');
  const normal = px(await kpi.evaluate((e) => getComputedStyle(e).fontSize));
  await expect(page.getByRole("navigation", { name: "Main" })).toBeVisible();

  await page.goto("/?kiosk");
  await expect(page.getByRole("navigation", { name: "Main" })).toBeHidden();
  await expect(page.locator("[data-kiosk]")).toBeVisible();
  await expect(page.locator("[data-updated]")).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  const large = px(await kpi.evaluate((e) => getComputedStyle(e).fontSize));
  expect(large).toBeGreaterThan(normal);
  // Nothing to operate: no filter forms on a wall screen.
  await page.goto("/subclouds?kiosk");
  await expect(page.locator("form.filters")).toBeHidden();
  await expect(page.locator("table tbody tr").first()).toBeVisible();
});

test("a kiosk playlist rotates through its views by itself", async ({ page }) => {
  test.setTimeout(60_000);
  await page.goto("/?kiosk&playlist=/,/map,/alarms&every=2");
  await expect(page.locator("[data-kiosk-next]")).toContainText("Next view in 2 s");
  await expect(page).toHaveURL(/\/map\?kiosk&playlist=.*&every=2$/, { timeout: 15_000 });
  await expect(page.getByRole("heading", { level: 1, name: "Fleet map" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" })).toBeHidden();
  await expect(page).toHaveURL(/\/alarms\?kiosk&/, { timeout: 15_000 });
  await expect(page).toHaveURL(/\/\?kiosk&/, { timeout: 15_000 });
});

test("a bad kiosk setting is shown on the screen and nothing rotates", async ({ page }) => {
  await page.goto("/?kiosk&playlist=/,https://elsewhere.example&every=5");
  await expect(page.locator("[data-kiosk-problem]")).toContainText("is not a path on this server");
  await page.goto("/?kiosk&playlist=/,/map&every=1");
  await expect(page.locator("[data-kiosk-problem]")).toContainText("every must be");
  expect(await page.locator('meta[http-equiv="refresh"]').count()).toBe(0);
  await page.waitForTimeout(3_000);
  await expect(page).toHaveURL(/\/\?kiosk&playlist=/);
});
