// Accessibility: axe-core (WCAG 2.0 and 2.1, levels A and AA) on every page of the dashboard,
// hydrated, in the light and the dark theme (colour contrast must hold in both), on the
// desktop and on a phone. A serious or critical violation fails the test and is listed with
// the elements it was found on. Tagged @js: the desktop-nojs project skips it (the markup is
// the same server-rendered HTML; hydration only adds behaviour).
import { test, expect } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import type { Result } from "axe-core";
import { PAGES, SIGNED_OUT, forceTheme, hydrated, type Theme } from "./dashboard-pages";

const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
const THEMES: Theme[] = ["light", "dark"];

/** Each violation with its rule, impact, help text and the first few elements it hit. */
function explain(violations: Result[]): string {
  return violations
    .map((v) => {
      const nodes = v.nodes.slice(0, 5).map((n) => {
        const why = (n.failureSummary ?? "").split("\n").slice(1).join(" ").trim();
        return `    ${n.target.join(" ")}${why ? `  — ${why.slice(0, 240)}` : ""}`;
      });
      const more = v.nodes.length > 5 ? [`    … and ${v.nodes.length - 5} more`] : [];
      return [`  ${v.id} (${v.impact}): ${v.help} [${v.helpUrl}]`, ...nodes, ...more].join("\n");
    })
    .join("\n");
}

for (const p of PAGES) {
  test.describe(p.slug, () => {
    if (p.signedOut) test.use({ storageState: SIGNED_OUT });

    for (const theme of THEMES) {
      test(`${p.slug}, ${theme} theme: no serious or critical axe violations @js`, async ({ page, context, baseURL }) => {
        const target = await p.target(page.request);
        await forceTheme(context, baseURL!, theme);
        // The system asks for the other theme: the forced one must win.
        await page.emulateMedia({ colorScheme: theme === "dark" ? "light" : "dark" });

        const res = await page.goto(target.path);
        expect(res?.status(), `${target.path} status`).toBe(p.status);
        await hydrated(page);
        await expect(page.locator("html")).toHaveAttribute("data-theme", theme);
        await expect(page.getByRole("heading", { level: 1 })).toHaveText(target.h1);

        const results = await new AxeBuilder({ page }).withTags(TAGS).analyze();
        const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
        expect(
          serious.map((v) => v.id),
          `axe: serious or critical violations on ${target.path} (${theme} theme):\n${explain(serious)}\n`,
        ).toEqual([]);
      });
    }
  });
}
