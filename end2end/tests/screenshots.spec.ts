// A full-page screenshot of every page in every project (hydrated desktop, desktop without
// JavaScript, phone), saved as end2end/screenshots/<project>/<page>.png for people to look at
// (an artifact, not committed, not compared). Each page must also be whole: the right status
// and one visible level-1 heading, a title, no console errors, and nothing wider than the
// screen (a phone must never scroll sideways; wide tables scroll inside their own box).
import { test, expect } from "@playwright/test";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConsoleWatch } from "./auth-fixtures";
import { PAGES, SIGNED_OUT, hydrated } from "./dashboard-pages";

const DIR = path.join(__dirname, "..", "screenshots");

for (const p of PAGES) {
  test.describe(p.slug, () => {
    if (p.signedOut) test.use({ storageState: SIGNED_OUT });

    test(`${p.slug}: a whole page, saved as a screenshot`, async ({ page, javaScriptEnabled }, info) => {
      const watch = new ConsoleWatch();
      watch.watch(page);
      const target = await p.target(page.request);
      const url = new URL(target.path, info.project.use.baseURL);
      if (p.status !== 200) watch.allow(p.status, url.pathname);

      const res = await page.goto(target.path);
      expect(res?.status(), `${target.path} status`).toBe(p.status);
      if (javaScriptEnabled) await hydrated(page);
      const h1 = page.getByRole("heading", { level: 1 });
      await expect(h1).toHaveCount(1);
      await expect(h1).toBeVisible();
      await expect(h1).toHaveText(target.h1);
      await expect(page).toHaveTitle(/\S · Murmuration$/);
      await expect(page.locator("main#main")).toBeVisible();

      // No sideways scrolling: the page is no wider than the screen. On failure, name the
      // elements that stick out.
      const width = await page.evaluate(() => {
        const root = document.documentElement;
        const limit = root.clientWidth + 1;
        const wide = [...document.querySelectorAll<HTMLElement>("body *")]
          .filter((e) => {
            const r = e.getBoundingClientRect();
            return r.width > 0 && r.right + window.scrollX > limit;
          })
          .slice(0, 8)
          .map((e) => {
            const cls = typeof e.className === "string" && e.className ? `.${e.className.trim().split(/\s+/).join(".")}` : "";
            return `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ""}${cls} (right edge ${Math.round(e.getBoundingClientRect().right + window.scrollX)})`;
          });
        return { scroll: root.scrollWidth, client: root.clientWidth, wide };
      });
      expect(
        width.scroll,
        `${target.path} is ${width.scroll}px wide on a ${width.client}px screen; sticking out: ${width.wide.join(", ")}`,
      ).toBeLessThanOrEqual(width.client + 1);

      const file = path.join(DIR, info.project.name, `${p.slug}.png`);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      await page.screenshot({ path: file, fullPage: true, animations: "disabled" });
      expect(fs.statSync(file).size, `${file} was written`).toBeGreaterThan(1_000);

      expect(watch.problems, "console errors").toEqual([]);
    });
  });
}
