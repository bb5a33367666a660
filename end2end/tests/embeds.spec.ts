// Portal embeds: admins create and revoke signed links and keep the list of portal origins
// allowed to frame them; a portal page served from another origin shows the embed without any
// session and sees it refresh; a portal not on the list, an expired link and a revoked link
// show nothing of the fleet.
import type { APIRequestContext, Page } from "@playwright/test";
import { test, expect, ready, unique } from "./auth-fixtures";

type Link = { id: number; path: string; state: string };

const grouped = (n: number) => n.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** Creates an embed link through the admin's server function (as the page's form does). */
async function createLink(api: APIRequestContext, kind: string, target: string, seconds = 3600): Promise<Link> {
  const res = await api.post("/ui/embeds/create", {
    form: { kind, target, label: unique("portal"), expires_in: String(seconds), unit: "seconds" },
  });
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

async function allowOrigin(api: APIRequestContext, origin: string) {
  const res = await api.post("/ui/embeds/origin-add", { form: { origin } });
  expect(res.status(), await res.text()).toBe(200);
}

async function disallowOrigin(api: APIRequestContext, origin: string) {
  await api.post("/ui/embeds/origin-remove", { form: { origin } });
}

/** A portal page framing `src`; it marks itself once the frame has loaded (or failed to). */
function portalHtml(src: string): string {
  return `<!doctype html><html lang="en"><head><title>NOC portal</title></head><body>
<h1>NOC portal</h1>
<iframe id="embed" title="Murmuration" width="900" height="700" src="${src}"></iframe>
<script>document.getElementById("embed").addEventListener("load", () => document.body.dataset.framed = "1");</script>
</body></html>`;
}

/** The embed's frame inside the portal page. */
function embedFrame(page: Page) {
  return page.frameLocator("#embed");
}

test.describe("portal embeds", () => {
  test("an admin creates a link, allows a portal origin, and revokes both", async ({ open, baseURL }, info) => {
    const js = !info.project.name.endsWith("nojs");
    const page = await open("admin");
    await page.goto("/embeds");
    await ready(page, js);
    await expect(page.getByRole("heading", { level: 1, name: "Portal embeds" })).toBeVisible();
    const label = unique("Front page");
    await page.getByLabel("View", { exact: true }).selectOption("status");
    await page.getByLabel("What it is for").fill(label);
    await page.getByLabel("Valid for").fill("2");
    await page.getByRole("combobox", { name: "Unit" }).selectOption("hours");
    await page.getByRole("button", { name: "Create link" }).click();
    const row = page.locator("tr", { has: page.getByRole("rowheader", { name: label }) });
    await expect(row).toHaveAttribute("data-state", "active");
    const address = (await row.locator("[data-embed-url]").textContent())!;
    expect(address).toMatch(new RegExp(`^${baseURL}/embed/status\\?t=\\d+\\.[A-Za-z0-9_-]+$`));
    // Valid for about two hours.
    const expires = Date.parse((await row.locator("td").nth(3).textContent())!);
    expect(Math.abs(expires - (Date.now() + 2 * 3600_000))).toBeLessThan(5 * 60_000);

    // The address works without a session.
    const anon = await open("signed-out");
    await anon.goto(address);
    await expect(anon.locator("h1.embed-title")).toHaveText("Fleet status");
    await expect(anon.locator(".verdict")).toBeVisible();

    const origin = `https://${unique("portal").toLowerCase()}.example`;
    await page.getByLabel("Origin", { exact: true }).fill(origin);
    await page.getByRole("button", { name: "Allow" }).click();
    await expect(page.locator(`[data-origin="${origin}"]`)).toBeVisible();
    await page.getByRole("button", { name: `Remove ${origin}` }).click();
    await expect(page.locator(`[data-origin="${origin}"]`)).toHaveCount(0);

    await row.getByRole("button", { name: `Revoke “${label}”` }).click();
    await expect(row).toHaveAttribute("data-state", "revoked");
    await anon.goto(address);
    await expect(anon.locator("[data-embed-refused]")).toContainText("revoked");
    await expect(anon.locator(".verdict")).toHaveCount(0);
  });

  test("bad input on the embeds page is refused with a reason and creates nothing", async ({ open, adminApi }, info) => {
    const js = !info.project.name.endsWith("nojs");
    const page = await open("admin");
    await page.goto("/embeds");
    await ready(page, js);
    const before = (await (await adminApi.get("/ui/embeds/list")).json()).links.length;
    await page.getByLabel("View", { exact: true }).selectOption("peer-group");
    await page.getByLabel("Target").fill("no-such-group");
    await page.getByLabel("What it is for").fill(unique("bad"));
    await page.getByRole("button", { name: "Create link" }).click();
    await expect(page.locator(".form-error", { hasText: "peer group" })).toBeVisible();
    await page.getByLabel("Origin", { exact: true }).fill("portal.example.com/path");
    await page.getByRole("button", { name: "Allow" }).click();
    await expect(page.locator(".form-error", { hasText: "http:// or https://" })).toBeVisible();
    const after = (await (await adminApi.get("/ui/embeds/list")).json()).links.length;
    expect(after).toBe(before);
  });

  test("a portal on an allowed origin shows the embed without a session, and it refreshes @js", async ({ open, adminApi, hostileSite, baseURL }, info) => {
    test.skip(info.project.name !== "desktop", "one browser is enough for the cross-origin path");
    const link = await createLink(adminApi, "status", "");
    const portal = await hostileSite("127.0.0.1", portalHtml(`${baseURL}${link.path}`));
    const portalOrigin = new URL(portal).origin;
    expect(portalOrigin).not.toBe(new URL(baseURL!).origin);
    await allowOrigin(adminApi, portalOrigin);
    try {
      const page = await open("signed-out");
      await page.goto(portal);
      const frame = embedFrame(page);
      await expect(frame.locator("h1.embed-title")).toHaveText("Fleet status");
      await expect(frame.locator(".verdict")).toBeVisible();
      await expect(frame.locator("body")).toHaveAttribute("data-hydrated", "true");
      // Counts equal the dashboard's, and nothing in the frame is a form or a dashboard link.
      const digest = await (await adminApi.get("/ui/status")).json();
      await expect(frame.locator('[data-tile="Sites offline"] .status-tile-value')).toHaveText(grouped(digest.offline));
      await expect(frame.locator('[data-tile="Critical alarms"] .status-tile-value')).toHaveText(grouped(digest.critical_alarms));
      await expect(frame.locator("form")).toHaveCount(0);
      await expect(frame.locator('a[href^="/"]')).toHaveCount(0);
      // Live: the "as of" stamp moves on without the frame reloading.
      const child = page.frames().find((f) => f.url().includes("/embed/status"))!;
      await child.evaluate(() => ((window as any).__noReload = true));
      const stamp = frame.locator("time[data-as-of]");
      const first = await stamp.getAttribute("datetime");
      await expect.poll(() => stamp.getAttribute("datetime"), { timeout: 20_000 }).not.toBe(first);
      expect(await child.evaluate(() => (window as any).__noReload)).toBe(true);
      // No session was made for the portal's visitor.
      expect((await page.context().cookies()).filter((c) => c.name === "murmur_session")).toEqual([]);
    } finally {
      await disallowOrigin(adminApi, portalOrigin);
    }
  });

  test("a portal not on the list, an expired link and a revoked link show nothing @js", async ({ open, adminApi, hostileSite, baseURL }, info) => {
    test.skip(info.project.name !== "desktop", "one browser is enough for the cross-origin path");
    test.setTimeout(120_000);
    const link = await createLink(adminApi, "map", "region=europe");
    const html = portalHtml(`${baseURL}${link.path}`);
    const listed = await hostileSite("127.0.0.1", html);
    const unlisted = await hostileSite("127.0.0.1", html);
    await allowOrigin(adminApi, new URL(listed).origin);
    try {
      // The listed portal shows the map.
      const page = await open("signed-out");
      await page.goto(listed);
      await expect(embedFrame(page).locator("h1.embed-title")).toHaveText("Fleet map");
      await expect(embedFrame(page).locator("svg[role=img]")).toBeVisible();

      // Another origin: the browser refuses to frame it (frame-ancestors). The same address
      // rendered in the listed portal above, so its absence here, once the frame has finished
      // loading (the portal marks its load event), is the refusal.
      const refused = await open("signed-out");
      await refused.goto(unlisted, { waitUntil: "load" });
      await expect(refused.locator("body")).toHaveAttribute("data-framed", "1");
      await expect(embedFrame(refused).locator("h1.embed-title")).toHaveCount(0);
      await expect(embedFrame(refused).locator("svg[role=img]")).toHaveCount(0);

      // Expired: a short-lived link works, then is refused with its expiry. It lives 15 s, so
      // starting a portal and loading it on a busy machine fits well inside; the test then
      // waits for the expiry itself (the link's data refused) rather than a fixed time.
      const short = await createLink(adminApi, "status", "", 15);
      const shortPortal = await hostileSite("127.0.0.1", portalHtml(`${baseURL}${short.path}`));
      await allowOrigin(adminApi, new URL(shortPortal).origin);
      try {
        const p = await open("signed-out");
        await p.goto(shortPortal);
        await expect(embedFrame(p).locator("h1.embed-title")).toHaveText("Fleet status");
        const token = short.path.split("?t=")[1];
        await expect
          .poll(async () => (await fetch(`${baseURL}/ui/embed/status?token=${token}`)).status, { timeout: 60_000, intervals: [500] })
          .not.toBe(200);
        await p.reload();
        await expect(embedFrame(p).locator("[data-embed-refused]")).toContainText("expired");
        await expect(embedFrame(p).locator(".verdict")).toHaveCount(0);
      } finally {
        await disallowOrigin(adminApi, new URL(shortPortal).origin);
      }

      // Revoked: the open frame stops showing the fleet at its next refresh.
      const res = await adminApi.post("/ui/embeds/revoke", { form: { id: String(link.id) } });
      expect(res.status()).toBe(200);
      await expect(embedFrame(page).locator("[data-embed-refused]")).toContainText("revoked", { timeout: 30_000 });
      await expect(embedFrame(page).locator("svg[role=img]")).toHaveCount(0);
    } finally {
      await disallowOrigin(adminApi, new URL(listed).origin);
    }
  });

  test("embeds are read-only and need their own token", async ({ adminApi, baseURL }) => {
    const link = await createLink(adminApi, "status", "");
    const token = link.path.split("?t=")[1];
    const anon = await fetch(`${baseURL}/ui/embed/status?token=${token}`);
    expect(anon.status).toBe(200);
    const post = await fetch(`${baseURL}/ui/embed/status`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `token=${token}`,
    });
    expect(post.status).toBe(405);
    const other = await fetch(`${baseURL}/ui/embed/map?token=${token}`);
    expect(other.status).toBe(403);
    const page = await fetch(`${baseURL}/embed/status?t=${token}`);
    expect(page.headers.get("x-frame-options")).toBeNull();
    expect(page.headers.get("set-cookie")).toBeNull();
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors");
  });
});
