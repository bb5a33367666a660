// The colour theme: follows the system until chosen; the header's toggle (a plain form post)
// cycles dark → light → system, keeps the page, and the choice holds on every page. Runs in
// every project (hydrated, without JavaScript, phone).
import { test, expect, type Page } from "@playwright/test";

// After the page (and its stylesheet) has loaded: a toggle is a full page load.
async function background(page: Page) {
  await page.waitForLoadState("load");
  return page.evaluate(() => getComputedStyle(document.body).backgroundColor);
}

test("the theme toggle forces dark, then light, then follows the system again", async ({ page }) => {
  await page.emulateMedia({ colorScheme: "light" });
  await page.goto("/subclouds?availability=online");
  const html = page.locator("html");
  await expect(html).not.toHaveAttribute("data-theme", /./);
  const systemLight = await background(page);
  const toggle = page.locator("button.theme-toggle");

  await expect(toggle).toHaveAttribute("data-theme-next", "dark");
  await toggle.click();
  await expect(html).toHaveAttribute("data-theme", "dark");
  await expect(page).toHaveURL(/\/subclouds\?availability=online$/);
  const dark = await background(page);
  expect(dark).not.toBe(systemLight);
  // The choice holds on another page, rendered by the server with it (no flash).
  const served = await (await page.request.get("/alarms")).text();
  expect(served).toMatch(/<html[^>]*data-theme="dark"/);

  await expect(toggle).toHaveAttribute("data-theme-next", "light");
  await toggle.click();
  await expect(html).toHaveAttribute("data-theme", "light");
  // Forced light wins over a dark system preference.
  await page.emulateMedia({ colorScheme: "dark" });
  expect(await background(page)).toBe(systemLight);

  await expect(toggle).toHaveAttribute("data-theme-next", "system");
  await toggle.click();
  await expect(html).not.toHaveAttribute("data-theme", /./);
  // Following the (dark) system again.
  expect(await background(page)).toBe(dark);
});

test("a bad theme is refused and changes nothing", async ({ page }, info) => {
  const base = info.project.use.baseURL!;
  const res = await page.request.post("/theme", {
    form: { theme: "neon", back: "/" },
    headers: { Origin: new URL(base).origin },
    maxRedirects: 0,
  });
  expect(res.status()).toBe(400);
  expect(await res.text()).toContain("system, light or dark");
  expect(res.headers()["set-cookie"] ?? "").not.toContain("murmur_theme");
});
