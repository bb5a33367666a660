// Keyboard only: the main flows done with Tab, Shift+Tab, typing, arrow keys and Enter — no
// mouse, no `click`, no `fill` — on the hydrated desktop: signing in, the skip link, the main
// navigation, filtering the subcloud list and opening a site, the map (zoom, pan, a region,
// an area, a site), and a visible focus indicator at every Tab stop of every page.
import { test, expect, type Page } from "@playwright/test";
import { PAGES, SIGNED_OUT, hydrated } from "./dashboard-pages";

test.beforeEach(async ({}, info) => {
  test.skip(info.project.name !== "desktop", "keyboard flows: the hydrated desktop");
});

const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

async function getJson(page: Page, path: string): Promise<any> {
  const res = await page.request.get(path);
  expect(res.status(), `GET ${path}`).toBe(200);
  return res.json();
}

/** The focused element in words, for messages. */
function focused(page: Page): Promise<string> {
  return page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return "the page itself (nothing focused)";
    const cls = e.getAttribute("class") ? `.${e.getAttribute("class")!.trim().split(/\s+/).join(".")}` : "";
    const text = (e.getAttribute("aria-label") ?? e.textContent ?? "").trim().replace(/\s+/g, " ").slice(0, 40);
    return `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}${cls} "${text}"`;
  });
}

/**
 * Presses `key` (Tab unless told) until the focused element matches `selector`; returns how
 * many presses it took (0: it already had the focus). Focus wraps around the page, so a
 * target anywhere is found within `max` presses.
 */
async function tabTo(page: Page, selector: string, max = 400, key = "Tab"): Promise<number> {
  for (let i = 0; i <= max; i++) {
    if (await page.evaluate((s) => !!document.activeElement?.matches(s), selector)) return i;
    if (i < max) await page.keyboard.press(key);
  }
  throw new Error(`${key} never reached ${selector} in ${max} presses; the focus is on ${await focused(page)}`);
}

test.describe("signed out", () => {
  test.use({ storageState: SIGNED_OUT });

  test("signing in with the keyboard only brings you to the page you asked for @js", async ({ page, baseURL }) => {
    await page.goto("/subclouds");
    await expect(page).toHaveURL(`${baseURL}/login?next=/subclouds`);
    await hydrated(page);
    // The user name field has the focus from the start (autofocus), or is reached with Tab.
    await tabTo(page, "#login-username", 10);
    await page.keyboard.type("admin");
    await page.keyboard.press("Tab");
    await expect(page.locator("#login-password")).toBeFocused();
    await page.keyboard.type("admin-demo-password");
    await page.keyboard.press("Enter");
    await expect(page).toHaveURL(`${baseURL}/subclouds`);
    await expect(page.getByRole("heading", { level: 1 })).toHaveText("Subclouds");
    await expect(page.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "admin");
  });
});

test("the skip link is the first Tab stop and moves the focus to the main content @js", async ({ page, baseURL }) => {
  await page.goto("/subclouds");
  await hydrated(page);
  await page.keyboard.press("Tab");
  const skip = page.locator("a.skip-link");
  await expect(skip, `the first Tab stop is ${await focused(page)}`).toBeFocused();
  await expect(skip).toHaveText("Skip to content");
  await expect(skip).toBeInViewport();
  await page.keyboard.press("Enter");
  await expect(page.locator("main#main")).toBeFocused();
  await expect(page).toHaveURL(`${baseURL}/subclouds#main`);
  // The next Tab goes on from there: into the content, past the header.
  await page.keyboard.press("Tab");
  expect(
    await page.evaluate(() => document.getElementById("main")!.contains(document.activeElement)),
    `after the skip link, Tab went to ${await focused(page)}`,
  ).toBe(true);
});

test("a main navigation link is reached with Tab and followed with Enter @js", async ({ page, baseURL }) => {
  await page.goto("/");
  await hydrated(page);
  const presses = await tabTo(page, 'nav[aria-label="Main"] a[href="/alarms"]', 30);
  // Right after the skip link and the brand: Alarms is the navigation's fifth link.
  expect(presses, "Tab presses from the top of the page to Alarms").toBeLessThanOrEqual(8);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(`${baseURL}/alarms`);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Alarms");
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Alarms" })).toHaveAttribute(
    "aria-current",
    "page",
  );
});

test("on the subcloud list, filters are applied and a site is opened with the keyboard @js", async ({ page, baseURL }) => {
  await page.goto("/subclouds");
  await hydrated(page);
  // A search: type, Enter.
  await tabTo(page, "#filter-q", 40);
  await page.keyboard.type("tokyo");
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/[?&]q=tokyo(&|$)/);
  const tokyo = await getJson(page, "/api/v1/subclouds?q=tokyo");
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(tokyo.matching)} subclouds`);
  // A select: the arrow key picks the next choice, which applies at once.
  await tabTo(page, "#filter-availability", 5);
  await page.keyboard.press("ArrowDown");
  await expect(page.locator("#filter-availability")).toHaveValue("online");
  await expect(page).toHaveURL(/[?&]availability=online(&|$)/);
  const online = await getJson(page, "/api/v1/subclouds?q=tokyo&availability=online");
  expect(online.matching).toBeGreaterThan(0);
  await expect(page.locator("p.result-count")).toContainText(`of ${grouped(online.matching)} subclouds`);
  await expect(page.locator("#filter-availability")).toBeFocused();

  // On to the first site of the list, and into its page.
  const first = online.rows[0].name as string;
  await expect(page.locator("tbody tr[data-subcloud]").first()).toHaveAttribute("data-subcloud", first);
  await tabTo(page, "tbody tr[data-subcloud] th a", 60);
  await expect(page.locator(`tbody tr[data-subcloud="${first}"] th a`)).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(`${baseURL}/subclouds/${first}`);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(first);
});

test("on the map, zoom, pan, a region and an area lead to a site with the keyboard @js", async ({ page, baseURL }) => {
  await page.goto("/map");
  await hydrated(page);
  const svg = page.locator("figure.fleet-map svg");
  await expect(svg).toHaveAttribute("data-zoom", "1");

  await tabTo(page, 'a[data-zoom="in"]', 60);
  await page.keyboard.press("Enter");
  await expect(svg).toHaveAttribute("data-zoom", "2");
  await expect(page).toHaveURL(/[?&]z=2(&|$)/);
  // The map is redrawn in place: the focus stays on the control, ready for another press.
  await expect(page.locator('a[data-zoom="in"]')).toBeFocused();

  const before = page.url();
  await tabTo(page, 'a[data-pan="East"]');
  await page.keyboard.press("Enter");
  await expect(page).not.toHaveURL(before);
  await expect(svg).toHaveAttribute("data-zoom", "2");

  await tabTo(page, 'a[data-region="europe"]');
  await page.keyboard.press("Enter");
  await expect(svg).toHaveAttribute("data-zoom", "4");

  // An area of the map: a link in the drawing, named by its sites.
  await tabTo(page, ".cells a[data-cell]");
  const cell = await page.evaluate(() => document.activeElement!.getAttribute("data-cell"));
  const label = await page.evaluate(() => document.activeElement!.getAttribute("aria-label"));
  expect(label).toMatch(/^\d+ site\(s\) near /);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(new RegExp(`[?&]cell=${cell}(&|$)`));
  const list = page.locator("[data-cell-sites]");
  await expect(list).toBeVisible();

  await tabTo(page, "[data-cell-sites] tbody th a");
  const name = (await page.evaluate(() => document.activeElement!.textContent))!.trim();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(`${baseURL}/subclouds/${name}`);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText(name);
});

/**
 * Tabs through the whole page; at each stop, whether the focused element shows that it has
 * the focus: its own outline or box shadow, a ring around the label it sits in
 * (:focus-within, as the alarm filter chips do), or — for a link drawn in an SVG map — a
 * stroke around its shape. Also that it is on the screen, not somewhere hidden.
 */
async function tabStops(page: Page, max = 600) {
  const stops: { n: number; what: string; how: string | null; onScreen: boolean }[] = [];
  let outside = 0; // presses that left the focus on the document itself (past the last stop)
  for (let i = 0; i < max && outside < 2; i++) {
    await page.keyboard.press("Tab");
    const stop = await page.evaluate((n) => {
      const e = document.activeElement as (HTMLElement | SVGElement) | null;
      if (!e || e === document.body || e === document.documentElement) return null;
      if (e.dataset.tabStop) return { n: -1, what: "", how: null, onScreen: true }; // wrapped around
      e.dataset.tabStop = String(n);
      const clear = (c: string) => c === "transparent" || /rgba\([^)]*,\s*0\)$/.test(c);
      const ring = (s: CSSStyleDeclaration) =>
        (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0 && !clear(s.outlineColor)) ||
        (s.boxShadow !== "none" && s.boxShadow !== "");
      let how: string | null = null;
      const label = e.closest("label");
      if (ring(getComputedStyle(e))) how = "outline";
      else if (label && ring(getComputedStyle(label))) how = "label outline";
      else if (e instanceof SVGElement) {
        const shape = e.querySelector("rect, path, circle, polygon");
        const s = shape && getComputedStyle(shape);
        if (s && s.stroke !== "none" && parseFloat(s.strokeWidth) > 0) how = "svg stroke";
      }
      const r = e.getBoundingClientRect();
      const onScreen =
        r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
      const cls = e.getAttribute("class") ? `.${e.getAttribute("class")!.trim().split(/\s+/).join(".")}` : "";
      const text = (e.getAttribute("aria-label") ?? e.textContent ?? "").trim().replace(/\s+/g, " ").slice(0, 40);
      return { n, what: `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}${cls} "${text}"`, how, onScreen };
    }, i);
    if (!stop) {
      outside++;
      continue;
    }
    if (stop.n < 0) break;
    stops.push(stop);
  }
  return stops;
}

for (const p of PAGES) {
  test.describe(p.slug, () => {
    if (p.signedOut) test.use({ storageState: SIGNED_OUT });

    test(`${p.slug}: every Tab stop shows the focus @js`, async ({ page }) => {
      const target = await p.target(page.request);
      await page.goto(target.path);
      await hydrated(page);
      await expect(page.getByRole("heading", { level: 1 })).toHaveText(target.h1);
      // From the top of the page (or from an autofocused field, round to it again).
      const autofocus = (await page.locator("[autofocus]").count()) > 0;
      const stops = await tabStops(page);
      expect(stops.length, `Tab stops on ${target.path}`).toBeGreaterThan(2);
      if (!autofocus) expect(stops[0].what, "the first Tab stop").toMatch(/^a\.skip-link/);
      expect(stops.map((s) => s.what).filter((w) => w.startsWith("a.skip-link")), "the skip link is a Tab stop").toHaveLength(1);
      const unseen = stops.filter((s) => !s.how).map((s) => `#${s.n} ${s.what}`);
      expect(unseen, `Tab stops on ${target.path} without a visible focus indicator`).toEqual([]);
      const hidden = stops.filter((s) => !s.onScreen).map((s) => `#${s.n} ${s.what}`);
      expect(hidden, `Tab stops on ${target.path} that are not on the screen when focused`).toEqual([]);
    });
  });
}
