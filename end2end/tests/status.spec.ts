// The status page: "is anything wrong, where, since when" at a glance, on the main demo
// (seeded state held still), in every project; its figures equal the REST API's.
import { test, expect, type Page } from "@playwright/test";

const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

async function api(page: Page, path: string): Promise<any> {
  const res = await page.request.get(path);
  expect(res.status(), path).toBe(200);
  return res.json();
}

test("the status page says what is wrong, where and since when", async ({ page }) => {
  const o = await api(page, "/api/v1/overview");
  const offline = await api(page, "/api/v1/subclouds?availability=offline&management=managed&per_page=1");
  await page.goto("/status");
  const verdict = page.locator("section.verdict");
  const clear = o.active_alarms.critical === 0 && o.active_alarms.major === 0 && offline.matching === 0;
  if (!clear) {
    await expect(verdict).toHaveAttribute("data-all-clear", "false");
    await expect(verdict).toContainText("Attention needed");
  }
  const tile = (label: string) => page.locator(`a[data-tile="${label}"] .status-tile-value`);
  await expect(tile("Sites offline")).toHaveText(grouped(offline.matching));
  await expect(tile("Critical alarms")).toHaveText(grouped(o.active_alarms.critical));
  await expect(tile("Major alarms")).toHaveText(grouped(o.active_alarms.major));
  // Worst first: no critical problem after a major one; each says where and for how long.
  const problems = page.locator("li.problem");
  const n = await problems.count();
  expect(n).toBeGreaterThan(0);
  const severities = await problems.evaluateAll((ls) => ls.map((l) => l.getAttribute("data-severity")));
  const firstMajor = severities.indexOf("major");
  if (firstMajor >= 0) expect(severities.slice(firstMajor)).not.toContain("critical");
  await expect(problems.first().locator(".problem-since")).toContainText(/for .+\(since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)/);
  const place = problems.first().locator("a.problem-place");
  const href = await place.getAttribute("href");
  await place.click();
  await expect(page).toHaveURL(new RegExp(`${href!.replace(/[?]/g, "\\?")}$`));
});

test("the status page fits a phone screen without sideways scrolling", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/status");
  await expect(page.locator("section.verdict")).toBeVisible();
  // The verdict and the counts are on the first screen.
  const tiles = await page.locator(".status-tiles").boundingBox();
  expect(tiles!.y).toBeLessThan(844);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test("the header fits a phone screen while live updates are reconnecting @js", async ({ browser, baseURL }) => {
  // The longest role label, and the longest indicator text ("offline"): the event stream is
  // unreachable, so the header says it is reconnecting.
  const context = await browser.newContext({ baseURL, viewport: { width: 390, height: 844 }, storageState: ".auth/operator.json" });
  const page = await context.newPage();
  await page.route("**/api/v1/events", (route) => route.abort());
  for (const path of ["/", "/status", "/orchestration", "/map"]) {
    await page.goto(path);
    await expect(page.locator(".live-indicator")).toHaveAttribute("data-state", "disconnected");
    await expect(page.locator(".live-indicator .live-text")).toHaveText("offline");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, `${path} overflows by ${overflow}px`).toBeLessThanOrEqual(0);
  }
  await context.close();
});

test("nothing moves when the browser takes over or live updates connect and drop, on a phone @js", async ({ browser, baseURL }, info) => {
  test.skip(info.project.name !== "phone", "the phone's header is the one that wraps");
  // Where the page's heading sits: server-rendered without JavaScript, then hydrated with the
  // stream live, then hydrated with the stream unreachable. A tap aimed before the browser
  // took over must land on the same thing after.
  const open = async (js: boolean, events: boolean) => {
    const context = await browser.newContext({
      baseURL, viewport: { width: 390, height: 844 }, javaScriptEnabled: js, storageState: ".auth/operator.json",
    });
    const page = await context.newPage();
    if (!events) await page.route("**/api/v1/events", (route) => route.abort());
    return { context, page };
  };
  const plain = await open(false, true);
  const live = await open(true, true);
  const cut = await open(true, false);
  const top = (page: Page) => page.getByRole("heading", { level: 1 }).evaluate((h) => Math.round(h.getBoundingClientRect().top));
  for (const path of ["/", "/status", "/map", "/orchestration"]) {
    await plain.page.goto(path);
    const before = await top(plain.page);
    await live.page.goto(path);
    await expect(live.page.locator(".live-indicator")).toHaveAttribute("data-state", "connected");
    expect(await top(live.page), `${path}: the heading moved once live updates connected`).toBe(before);
    await cut.page.goto(path);
    await expect(cut.page.locator(".live-indicator")).toHaveAttribute("data-state", "disconnected");
    expect(await top(cut.page), `${path}: the heading moved once live updates dropped`).toBe(before);
  }
  for (const c of [plain, live, cut]) await c.context.close();
});
