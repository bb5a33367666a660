// Every page of the dashboard, for the checks that visit them all (a11y.spec.ts,
// keyboard.spec.ts, screenshots.spec.ts). Pages about one thing (a site, a strategy, a peer
// group) take a real one from the REST API of the demo under test; a demo without one fails
// the check (it never skips): the main demo (`murmur demo --no-simulator`) has all three.
import { expect, type APIRequestContext, type BrowserContext, type Page } from "@playwright/test";

export const SIGNED_OUT = { cookies: [], origins: [] };

export type Target = { path: string; h1: string | RegExp };

export type DashboardPage = {
  /** Names the test and the screenshot file. */
  slug: string;
  /** The page and its heading. Fails when the demo has nothing of the kind to show. */
  target: (api: APIRequestContext) => Promise<Target>;
  /** The document's HTTP status. */
  status: number;
  /** Visited without a session (the sign-in page). */
  signedOut?: boolean;
};

async function getJson(api: APIRequestContext, path: string): Promise<any> {
  const res = await api.get(path);
  expect(res.status(), `GET ${path}`).toBe(200);
  return res.json();
}

const fixed =
  (path: string, h1: string | RegExp) =>
  async (): Promise<Target> => ({ path, h1 });

export const PAGES: DashboardPage[] = [
  { slug: "overview", status: 200, target: fixed("/", "Fleet overview") },
  { slug: "status", status: 200, target: fixed("/status", "Status") },
  { slug: "subclouds", status: 200, target: fixed("/subclouds", "Subclouds") },
  {
    slug: "subcloud",
    status: 200,
    target: async (api) => {
      const list = await getJson(api, "/api/v1/subclouds?per_page=1");
      const name: string = list.rows[0].name;
      expect(typeof name, "GET /api/v1/subclouds?per_page=1 .rows[0].name").toBe("string");
      return { path: `/subclouds/${encodeURIComponent(name)}`, h1: name };
    },
  },
  { slug: "map", status: 200, target: fixed("/map", "Fleet map") },
  { slug: "map-table", status: 200, target: fixed("/map?view=table", "Fleet map") },
  { slug: "alarms", status: 200, target: fixed("/alarms", "Alarms") },
  { slug: "orchestration", status: 200, target: fixed("/orchestration", "Orchestration") },
  { slug: "orchestration-new", status: 200, target: fixed("/orchestration/new", "New strategy") },
  {
    slug: "strategy",
    status: 200,
    target: async (api) => {
      const page = await getJson(api, "/api/v1/strategies?per_page=1");
      expect(Array.isArray(page.items), "GET /api/v1/strategies .items").toBe(true);
      // `murmur demo --no-simulator` seeds one finished strategy.
      expect(page.items.length, "GET /api/v1/strategies: the demo under test has a strategy").toBeGreaterThan(0);
      const id = page.items[0].id;
      expect(typeof id, "GET /api/v1/strategies .items[0].id").toBe("number");
      return { path: `/orchestration/${id}`, h1: new RegExp(`^Strategy #${id}: `) };
    },
  },
  { slug: "controllers", status: 200, target: fixed("/controllers", "System controllers") },
  { slug: "peer-groups", status: 200, target: fixed("/peer-groups", "Peer groups") },
  {
    slug: "peer-group",
    status: 200,
    target: async (api) => {
      // A plain array of peer groups, each with its name.
      const groups = await getJson(api, "/api/v1/peer-groups");
      expect(Array.isArray(groups), "GET /api/v1/peer-groups is an array").toBe(true);
      expect(groups.length, "GET /api/v1/peer-groups: the demo under test has a peer group").toBeGreaterThan(0);
      const name: string = groups[0].name;
      expect(typeof name, "GET /api/v1/peer-groups [0].name").toBe("string");
      return { path: `/peer-groups/${encodeURIComponent(name)}`, h1: `Peer group ${name}` };
    },
  },
  { slug: "drill", status: 200, target: fixed("/drill", "What if a controller fails now?") },
  { slug: "users", status: 200, target: fixed("/users", "Users") },
  { slug: "account", status: 200, target: fixed("/account", "Your account") },
  { slug: "audit", status: 200, target: fixed("/audit", "Audit log") },
  { slug: "embeds", status: 200, target: fixed("/embeds", "Portal embeds") },
  { slug: "login", status: 200, signedOut: true, target: fixed("/login", "Sign in to Murmuration") },
  { slug: "not-found", status: 404, target: fixed("/no-such-page", "Page not found") },
];

export type Theme = "light" | "dark";

/** Forces the colour theme the way the header's toggle does: the `murmur_theme` cookie. */
export async function forceTheme(context: BrowserContext, baseURL: string, theme: Theme) {
  await context.addCookies([{ name: "murmur_theme", value: theme, url: baseURL }]);
}

export async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}
