// Fixtures and helpers of auth.spec.ts: extra signed-in (or signed-out) browser contexts that
// keep the project's settings (JS off, phone screen), an admin API client, a hostile web site
// on another port, and raw sign-in attempts that do not count against this machine's address.
import {
  test as base,
  expect,
  request as apiRequest,
  type APIRequestContext,
  type BrowserContext,
  type ConsoleMessage,
  type Page,
} from "@playwright/test";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";

export { expect };

export const PASSWORDS = {
  admin: "admin-demo-password",
  operator: "operator-demo-password",
  viewer: "viewer-demo-password",
} as const;
export type Role = keyof typeof PASSWORDS;

/** Saved sessions of the demo users (written by global-setup.ts). */
export const authFile = (role: Role) => path.join(__dirname, "..", ".auth", `${role}.json`);
export const SIGNED_OUT = { cookies: [], origins: [] };

/** A name no earlier run used: user names allow letters, digits, '.', '_' and '-'. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}
export const newPassword = () => `pw-${Math.random().toString(36).slice(2)}-long-enough`;

// ---- console discipline ------------------------------------------------------------------

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  429: "Too Many Requests",
};

/**
 * Collects console errors and uncaught exceptions of every page it watches. Chromium logs a
 * document's own 4xx as a console error; a test that requests an error page on purpose says
 * so with `allow(status, pathname)`, and only that message is then accepted.
 */
export class ConsoleWatch {
  problems: string[] = [];
  private allowed: { status: number; path: string }[] = [];

  allow(status: number, pathname: string) {
    this.allowed.push({ status, path: pathname });
  }

  watch(page: Page) {
    page.on("console", (m: ConsoleMessage) => {
      if (m.type() !== "error") return;
      const own = this.allowed.some(
        (a) =>
          m.text() ===
            `Failed to load resource: the server responded with a status of ${a.status} (${STATUS_TEXT[a.status]})` &&
          pathOf(m.location().url) === a.path,
      );
      if (!own) this.problems.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on("pageerror", (e) => this.problems.push(`pageerror: ${e.message}`));
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
}

// ---- page helpers ---------------------------------------------------------------------------

export async function hydrated(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Waits until the page is interactive: hydrated with JavaScript, at once without. */
export async function ready(page: Page, js: boolean) {
  if (js) await hydrated(page);
}

/** Fills and submits the sign-in form of the page (which must be /login). */
export async function signInWithForm(page: Page, js: boolean, username: string, password: string) {
  await expect(page.getByRole("heading", { level: 1, name: "Sign in to Murmuration" })).toBeVisible();
  await ready(page, js);
  await page.locator("#login-username").fill(username);
  await page.locator("#login-password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

export async function sessionCookie(context: BrowserContext): Promise<string | undefined> {
  return (await context.cookies()).find((c) => c.name === "murmur_session")?.value;
}

// ---- raw HTTP -----------------------------------------------------------------------------

/**
 * A random loopback source address (127.x.y.z, never 127.0.0.1) when the server is on this
 * machine's loopback, else undefined. The server throttles failed sign-ins per client address
 * (20 in 10 min) as well as per user name; failures sent from a fresh address cost nothing
 * against the browser's 127.0.0.1, so the suite can run again and again.
 */
export function spareAddress(baseURL: string): string | undefined {
  if (!/^127\.\d+\.\d+\.\d+$/.test(new URL(baseURL).hostname)) return undefined;
  const r = (n: number) => Math.floor(Math.random() * n);
  return `127.${1 + r(254)}.${r(256)}.${2 + r(253)}`;
}

export type Attempt = { status: number; location: string; cookie: string | null; retryAfter?: string };

/** POST /login like the form does, from `localAddress` when given. Does not follow the redirect. */
export function attemptLogin(
  baseURL: string,
  username: string,
  password: string,
  localAddress = spareAddress(baseURL),
): Promise<Attempt> {
  const url = new URL("/login", baseURL);
  const body = new URLSearchParams({ username, password, next: "/" }).toString();
  const lib = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        localAddress,
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          "Content-Length": Buffer.byteLength(body),
          Origin: url.origin,
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          const set = ([] as string[]).concat(res.headers["set-cookie"] ?? []);
          const cookie = set
            .map((c) => /^murmur_session=([^;]+)/.exec(c)?.[1])
            .find((v): v is string => !!v) ?? null;
          resolve({
            status: res.statusCode ?? 0,
            location: String(res.headers.location ?? ""),
            cookie,
            retryAfter: res.headers["retry-after"] as string | undefined,
          });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A client holding only the given session cookie (or bearer token), no browser involved. */
export async function bareClient(
  baseURL: string,
  auth: { cookie?: string; bearer?: string },
): Promise<APIRequestContext> {
  const headers: Record<string, string> = {};
  if (auth.cookie) headers.Cookie = `murmur_session=${auth.cookie}`;
  if (auth.bearer) headers.Authorization = `Bearer ${auth.bearer}`;
  return apiRequest.newContext({ baseURL, extraHTTPHeaders: headers });
}

/** The users the admin sees, from the users page's own server function. */
export async function userList(admin: APIRequestContext): Promise<{ name: string; role: string; disabled: boolean }[]> {
  const res = await admin.get("/ui/users/list");
  expect(res.status(), "GET /ui/users/list as admin").toBe(200);
  return res.json();
}

export async function createUser(admin: APIRequestContext, name: string, password: string, role: Role) {
  const res = await admin.post("/ui/users/create", { form: { username: name, password, role } });
  expect(res.status(), `creating ${name}: ${await res.text()}`).toBe(200);
}

// ---- fixtures -----------------------------------------------------------------------------

type Fixtures = {
  /** Console errors of the test's page and of every page opened with `open`. */
  consoleWatch: ConsoleWatch;
  /** The demo admin's session as an API client (same-origin Origin header set). */
  adminApi: APIRequestContext;
  /**
   * A new browser context with this project's settings (JS on or off, screen), signed in as
   * a demo role or signed out, and a watched page in it.
   */
  open: (as: Role | "signed-out") => Promise<Page>;
  /** Serves `html` at http://HOST:random-port/ for the test's duration; returns its URL. */
  hostileSite: (host: string, html: string) => Promise<string>;
};

export const test = base.extend<Fixtures>({
  consoleWatch: async ({}, use) => {
    await use(new ConsoleWatch());
  },

  adminApi: async ({ baseURL }, use) => {
    const ctx = await apiRequest.newContext({
      baseURL,
      storageState: authFile("admin"),
      extraHTTPHeaders: { Origin: new URL(baseURL!).origin },
    });
    await use(ctx);
    await ctx.dispose();
  },

  open: async (
    { browser, baseURL, javaScriptEnabled, viewport, isMobile, hasTouch, userAgent, deviceScaleFactor, consoleWatch },
    use,
  ) => {
    const made: BrowserContext[] = [];
    await use(async (as) => {
      const context = await browser.newContext({
        baseURL,
        javaScriptEnabled,
        viewport,
        isMobile,
        hasTouch,
        userAgent,
        deviceScaleFactor,
        storageState: as === "signed-out" ? SIGNED_OUT : authFile(as),
      });
      made.push(context);
      const page = await context.newPage();
      consoleWatch.watch(page);
      return page;
    });
    for (const c of made) await c.close();
  },

  hostileSite: async ({}, use) => {
    const servers: http.Server[] = [];
    await use(async (host, html) => {
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
        res.end(html);
      });
      servers.push(server);
      await new Promise<void>((ok, fail) => {
        server.once("error", fail);
        server.listen(0, host, () => ok());
      });
      const { port } = server.address() as AddressInfo;
      return `http://${host}:${port}/`;
    });
    for (const s of servers) await new Promise((ok) => s.close(ok));
  },
});
