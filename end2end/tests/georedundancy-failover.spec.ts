// A controller failure watched in the browser, against its own three-controller demo
// (GEO_FAILOVER_URL: it changes that demo, so no other test shares it). An admin stops
// sc-dallas from the Controllers page; the Peer groups page, open in another tab, shows its
// groups move to the survivors without a reload; dallas is started again and one group is
// failed back from its page, which records the move in its ownership timeline.
import { test, expect, type Page } from "@playwright/test";

const URL = process.env.GEO_FAILOVER_URL;

test.skip(!URL, "needs GEO_FAILOVER_URL: a `murmur demo` serving three peer controllers");
test.use({ storageState: { cookies: [], origins: [] } });

async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

test("a stopped controller's groups move live and fail back @js", async ({ browser }, info) => {
  test.skip(info.project.name !== "desktop", "runs once: it changes its demo");
  test.setTimeout(120_000);
  const ctx = await browser.newContext();
  const admin = await ctx.newPage();
  await admin.goto(`${URL}/login`);
  await admin.locator("#login-username").fill("admin");
  await admin.locator("#login-password").fill("admin-demo-password");
  await admin.locator("#login-password").press("Enter");
  await expect(admin).toHaveURL(`${URL}/`);

  const watcher = await ctx.newPage();
  await watcher.goto(`${URL}/peer-groups`);
  await hydrated(watcher);
  await watcher.evaluate(() => ((window as unknown as { marker: string }).marker = "kept"));
  const groups = await watcher
    .locator('[data-testid="group-row"][data-owner="sc-dallas"]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute("data-group") ?? ""));
  expect(groups.length).toBeGreaterThan(0);

  await admin.goto(`${URL}/controllers`);
  await hydrated(admin);
  admin.on("dialog", (d) => d.accept());
  const dallas = admin.locator('[data-testid="peer-row"][data-peer="sc-dallas"]');
  await expect(dallas).toHaveAttribute("data-availability", "available");
  await dallas.getByTestId("demo-stop").click();
  await expect(dallas).toHaveAttribute("data-availability", "unavailable", { timeout: 30_000 });

  // The open Peer groups page follows without a reload.
  for (const g of groups) {
    await expect(watcher.locator(`[data-testid="group-row"][data-group="${g}"]`)).not.toHaveAttribute(
      "data-owner",
      "sc-dallas",
      { timeout: 40_000 },
    );
  }
  expect(await watcher.evaluate(() => (window as unknown as { marker: string }).marker)).toBe("kept");

  // Back up: it is available again and owns nothing it lost.
  await dallas.getByTestId("demo-start").click();
  await expect(dallas).toHaveAttribute("data-availability", "available", { timeout: 30_000 });
  for (const g of groups) {
    await expect(watcher.locator(`[data-testid="group-row"][data-group="${g}"]`)).not.toHaveAttribute(
      "data-owner",
      "sc-dallas",
    );
  }

  // Fail one group back from its page.
  await admin.goto(`${URL}/peer-groups/${groups[0]}`);
  await hydrated(admin);
  await admin.getByTestId("fail-back").click();
  await expect(admin.getByTestId("group-head")).toHaveAttribute("data-owner", "sc-dallas", {
    timeout: 20_000,
  });
  await expect(admin.getByTestId("history-row").first()).toContainText("sc-dallas");
  await expect(watcher.locator(`[data-testid="group-row"][data-group="${groups[0]}"]`)).toHaveAttribute(
    "data-owner",
    "sc-dallas",
    { timeout: 20_000 },
  );
  await ctx.close();
});
