// The fleet map end to end, on the main demo (2,000 sites, state held still) in every project
// (hydrated desktop, no JavaScript, phone), and its first paint with 5,000 sites (MAP_URL).
import { test, expect, request, type Page, type ConsoleMessage } from "@playwright/test";
import * as fs from "fs";

async function api(page: Page, path: string): Promise<any> {
  const res = await page.request.get(path);
  expect(res.status(), `${path} status`).toBe(200);
  return res.json();
}

const num = (s: string | null) => Number((s ?? "").replace(/,/g, ""));

let problems: string[] = [];
test.beforeEach(async ({ page }) => {
  problems = [];
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() === "error") problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
});
test.afterEach(async ({}, info) => {
  if (info.status === "passed") expect(problems, "console errors").toEqual([]);
});

/** Sum of the legend's counts, and of the drawn layers' counts. */
async function counts(page: Page) {
  const legend = await page.locator(".map-legend li .count").allTextContents();
  const layers = await page.locator(".marks path").evaluateAll((ps) =>
    ps.map((p) => Number(p.getAttribute("data-count"))),
  );
  return {
    legend: legend.map(num).reduce((a, b) => a + b, 0),
    drawn: layers.reduce((a, b) => a + b, 0),
  };
}

test("the map draws every site once, by status, with a legend that adds up", async ({ page }) => {
  const o = await api(page, "/api/v1/overview");
  const res = await page.goto("/map");
  expect(res?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1, name: "Fleet map" })).toBeVisible();
  const c = await counts(page);
  expect(c.legend).toBe(o.total);
  // The whole world is in view: every site is drawn, each in one layer.
  expect(c.drawn).toBe(o.total);
  await expect(page.locator("[data-map-summary]")).toContainText(`of ${o.total.toLocaleString("en-US")} matching sites`);
  // Shape as well as colour: each status layer has its own class, and the world is an image.
  await expect(page.locator('figure.fleet-map image[href="/map/world.svg"]')).toHaveCount(1);
  const world = await page.request.get("/map/world.svg");
  expect(world.status()).toBe(200);
  expect(world.headers()["content-type"]).toContain("image/svg+xml");
  expect(world.headers()["cache-control"]).toContain("max-age");
  expect(await world.text()).toContain('data-name="France"');
  // Controllers are drawn with the peer groups they own.
  expect(await page.locator(".controllers g[data-controller]").count()).toBeGreaterThan(0);
});

test("zoom, pan and region presets are links that keep the view in the URL", async ({ page }) => {
  await page.goto("/map");
  const svg = page.locator("figure.fleet-map svg");
  const world = await svg.getAttribute("viewBox");
  await page.locator('a[data-region="europe"]').click();
  await expect(page).toHaveURL(/z=4/);
  await expect(svg).toHaveAttribute("data-zoom", "4");
  const europe = await svg.getAttribute("viewBox");
  expect(europe).not.toBe(world);
  const before = await counts(page);
  expect(before.drawn).toBeLessThan(before.legend);
  await page.locator('a[data-zoom="in"]').click();
  await expect(page).toHaveURL(/z=8/);
  await expect(svg).toHaveAttribute("data-zoom", "8");
  const zoomed = page.url();
  await page.locator('a[data-pan="East"]').click();
  await expect(page).not.toHaveURL(zoomed);
  // The shared URL reproduces the view.
  const url = page.url();
  const again = await page.context().newPage();
  await again.goto(url);
  await expect(again.locator("figure.fleet-map svg")).toHaveAttribute("viewBox", (await svg.getAttribute("viewBox"))!);
  await again.close();
});

test("an area lists its sites with links to their pages", async ({ page }) => {
  await page.goto("/map?region=europe");
  const cell = page.locator(".cells a").first();
  const label = await cell.getAttribute("aria-label");
  const n = Number(label!.split(" ")[0]);
  expect(n).toBeGreaterThan(0);
  await cell.click();
  await expect(page).toHaveURL(/cell=\d+,\d+/);
  const list = page.locator("[data-cell-sites]");
  await expect(list).toBeVisible();
  await expect(list.locator("tbody tr")).toHaveCount(Math.min(n, 500));
  const first = list.locator("tbody tr th a").first();
  const name = await first.textContent();
  await first.click();
  await expect(page).toHaveURL(new RegExp(`/subclouds/${name}$`));
  await expect(page.getByRole("heading", { level: 1 })).toContainText(name!);
});

test("filters narrow the map and its legend", async ({ page }) => {
  const all = await api(page, "/api/v1/overview");
  await page.goto("/map?status=offline");
  const legend = page.locator(".map-legend li");
  await expect(legend).toHaveCount(1);
  await expect(legend).toHaveAttribute("data-status", "offline");
  const layers = page.locator(".marks path");
  await expect(layers).toHaveCount(1);
  await expect(layers).toHaveAttribute("data-layer", "offline");
  const c = await counts(page);
  expect(c.legend).toBeGreaterThan(0);
  expect(c.legend).toBeLessThanOrEqual(all.offline);
  // A peer group filter: every listed site of an area belongs to it.
  const groups = await api(page, "/api/v1/peer-groups");
  const g = groups[0].name;
  await page.goto(`/map?peer_group=${encodeURIComponent(g)}`);
  await page.locator(".cells a").first().click();
  const cells = page.locator("[data-cell-sites] tbody tr td:nth-child(4)");
  await expect(cells.first()).toBeVisible();
  for (const t of await cells.allTextContents()) expect(t).toBe(g);
  // A bad parameter is a bad request with the field named, not an empty map.
  const bad = await page.request.get("/map?z=3");
  expect(bad.status()).toBe(400);
  expect(await bad.text()).toContain("z");
});

test("the table view shows the same areas for keyboard and screen-reader users", async ({ page }) => {
  await page.goto("/map?region=europe");
  const cells = await page.locator(".cells a").count();
  await page.locator("a[data-view-switch]").click();
  await expect(page).toHaveURL(/view=table/);
  const rows = page.locator("table[data-area-table] tbody tr");
  await expect(rows).toHaveCount(cells);
  await expect(page.locator("figure.fleet-map")).toHaveCount(0);
  // Sites per row add up to the sites in view.
  const sites = (await rows.locator("td.num:nth-of-type(1)").allTextContents()).map(num);
  const inView = num((await page.locator("[data-map-summary]").textContent())!.split(" of ")[0]);
  expect(sites.reduce((a, b) => a + b, 0)).toBe(inView);
  await rows.first().locator("th a").click();
  await expect(page).toHaveURL(/cell=\d+,\d+.*view=table/);
  await expect(page.locator("[data-cell-sites] tbody tr").first()).toBeVisible();
});

// First paint with 5,000 sites (MAP_URL: a single-controller demo without simulator). Timing
// is measured and written for BENCHMARKS.md, not asserted (the machine is shared with the
// suite); what is asserted is that all 5,000 sites were drawn.
test.describe("with 5,000 sites", () => {
// Its own session on MAP_URL: cookies ignore ports, so the main demo's must not ride along.
test.use({ storageState: { cookies: [], origins: [] } });
test("first paint of the map with 5,000 sites is measured @js", async ({ page }, info) => {
  const MAP = process.env.MAP_URL;
  test.skip(!MAP, "needs MAP_URL (scripts/test.sh starts a 5,000-site demo)");
  test.skip(info.project.name !== "desktop", "measured once, on the desktop");
  const ctx = await request.newContext({ baseURL: MAP, extraHTTPHeaders: { Origin: MAP! } });
  const login = await ctx.post("/login", {
    form: { username: "viewer", password: "viewer-demo-password", next: "/" },
    maxRedirects: 0,
  });
  expect(login.status()).toBe(303);
  const state = await ctx.storageState();
  await page.context().addCookies(state.cookies);
  // Warm the world image cache the way a returning operator has it, then measure a cold page.
  const runs: { fcp: number; html: number; world: number; layers: number }[] = [];
  for (let i = 0; i < 3; i++) {
    // A fresh document each time (the same URL twice may be treated as a reload).
    await page.goto(`${MAP}/map?x=500&y=243&z=1&run=${i}`);
    const m = await page.evaluate(async () => {
      // The paint entry may be queued after the load event: wait for it (buffered).
      const fcp = await new Promise<number>((resolve) => {
        const seen = performance.getEntriesByName("first-contentful-paint")[0];
        if (seen) return resolve(seen.startTime);
        new PerformanceObserver((list) => {
          const e = list.getEntriesByName("first-contentful-paint")[0];
          if (e) resolve(e.startTime);
        }).observe({ type: "paint", buffered: true });
        setTimeout(() => resolve(-1), 10_000);
      });
      const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      const world = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/map/world.svg")) as PerformanceResourceTiming | undefined;
      const layers = [...document.querySelectorAll(".marks path")].reduce((n, p) => n + (p.getAttribute("d") ?? "").length, 0);
      return { fcp, html: nav.encodedBodySize, world: world?.encodedBodySize ?? 0, layers };
    });
    runs.push(m);
  }
  const c = await counts(page);
  expect(c.legend).toBe(5000);
  expect(c.drawn).toBe(5000);
  const fcps = runs.map((r) => r.fcp).sort((a, b) => a - b);
  const report = {
    sites: 5000,
    first_contentful_paint_ms: { runs: runs.map((r) => Math.round(r.fcp)), median: Math.round(fcps[1]) },
    html_bytes_compressed: runs[0].html,
    world_svg_bytes_compressed: runs[0].world,
    site_paths_chars: runs[0].layers,
  };
  console.log(`map first paint: ${JSON.stringify(report)}`);
  fs.mkdirSync("test-results", { recursive: true });
  fs.writeFileSync("test-results/map-first-paint.json", JSON.stringify(report, null, 2));
  expect(fcps[1]).toBeGreaterThan(0);
});
});
