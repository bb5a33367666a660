import {
  test,
  expect,
  PASSWORDS,
  SIGNED_OUT,
  authFile,
  attemptLogin,
  bareClient,
  createUser,
  hydrated,
  newPassword,
  ready,
  sessionCookie,
  signInWithForm,
  unique,
  userList,
} from "./auth-fixtures";

// Signing in and out, sessions, throttling, cross-site refusal, roles, users, API tokens.
// Every test makes its own users and tokens with unique names, so the suite runs again and
// again against the same server. Failed sign-ins that a test does not need to see in the
// browser are sent from spare loopback addresses (see `attemptLogin`): the server also
// throttles per client address, and the browser's 127.0.0.1 must stay usable.

// Collect console errors and uncaught exceptions of every page (the test's own and those of
// extra contexts opened with `open`); a test fails on any. A test that gets an error page on
// purpose names its status and path with `consoleWatch.allow`, since Chromium logs the
// document's own 4xx as a console error.
test.beforeEach(async ({ page, consoleWatch }) => {
  consoleWatch.watch(page);
});
test.afterEach(async ({ consoleWatch }, info) => {
  if (info.status === "passed") expect(consoleWatch.problems, "console errors").toEqual([]);
});

/** The server's encoding of `next` in /login?next=… ('/' stays, the rest is %XX). */
const enc = (s: string) =>
  [...new TextEncoder().encode(s)]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-_.~/]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");

const SHORT = process.env.SHORT_SESSION_URL;

test.describe("signed out", () => {
  test.use({ storageState: SIGNED_OUT });

  for (const path of ["/", "/subclouds?availability=offline&alarm=critical", "/users", "/account", "/audit?action=user."]) {
    test(`${path} sends you to sign in, and signing in brings you back`, async ({ page, baseURL, javaScriptEnabled }) => {
      const redirect = await page.request.get(path, { maxRedirects: 0 });
      expect(redirect.status()).toBe(303);
      expect(redirect.headers()["location"]).toBe(`/login?next=${enc(path)}`);

      const res = await page.goto(path);
      expect(res?.status()).toBe(200);
      await expect(page).toHaveURL(`${baseURL}/login?next=${enc(path)}`);
      await expect(page.locator('input[name="next"]')).toHaveValue(path);
      // Nobody was signed in: no "expired" or "signed out" notice.
      await expect(page.locator(".notice")).toHaveCount(0);
      await expect(page.locator(".user-menu")).toHaveCount(0);

      await signInWithForm(page, javaScriptEnabled, "admin", PASSWORDS.admin);
      await expect(page).toHaveURL(`${baseURL}${path}`);
      await expect(page.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "admin");
      expect(await sessionCookie(page.context())).toBeTruthy();
    });
  }

  test("signing in never sends you to another site", async ({ page, baseURL, javaScriptEnabled }) => {
    for (const next of ["//evil.example/steal", "https://evil.example/", "/\\evil.example"]) {
      await page.goto(`/login?next=${encodeURIComponent(next)}`);
      await expect(page.locator('input[name="next"]')).toHaveValue("/");
      await signInWithForm(page, javaScriptEnabled, "admin", PASSWORDS.admin);
      await expect(page).toHaveURL(`${baseURL}/`);
    }
    // Even a forged form with a hostile `next` lands on our own overview.
    const forged = await page.request.post("/login", {
      form: { username: "admin", password: PASSWORDS.admin, next: "//evil.example/" },
      headers: { Origin: new URL(baseURL!).origin },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(303);
    expect(forged.headers()["location"]).toBe("/");
  });

  test("a wrong password is refused: message, no session, the user name kept", async ({ page, baseURL, javaScriptEnabled, adminApi }) => {
    // A fresh user, never a demo one: five failures would lock its name for 15 minutes.
    const name = unique("wrongpw");
    await createUser(adminApi, name, newPassword(), "viewer");
    await page.goto("/account");
    await signInWithForm(page, javaScriptEnabled, name, "not-the-password-at-all");
    await expect(page).toHaveURL(new RegExp(`/login\\?error=invalid&next=/account&user=${name}$`));
    await expect(page.getByRole("alert")).toHaveText("Wrong user name or password.");
    await expect(page.locator("#login-username")).toHaveValue(name);
    await expect(page.locator("#login-password")).toHaveValue("");
    await expect(page.locator('input[name="next"]')).toHaveValue("/account");
    expect(await sessionCookie(page.context())).toBeUndefined();
    expect((await page.request.get("/account", { maxRedirects: 0 })).status()).toBe(303);

    // An unknown name gets exactly the same answer: the form does not reveal who exists.
    const unknown = await attemptLogin(baseURL!, unique("nobody"), "not-the-password-at-all");
    const known = await attemptLogin(baseURL!, name, "not-the-password-at-all");
    expect(unknown.location.replace(/user=.*$/, "")).toBe(known.location.replace(/user=.*$/, ""));
    expect([unknown.cookie, known.cookie]).toEqual([null, null]);
  });

  test("five failures lock a user name: the sixth sign-in, even with the right password, gets 429", async ({ page, baseURL, javaScriptEnabled, adminApi, consoleWatch }) => {
    const name = unique("throttle");
    const password = newPassword();
    await createUser(adminApi, name, password, "viewer");
    for (let i = 1; i <= 5; i++) {
      const a = await attemptLogin(baseURL!, name, `wrong-guess-number-${i}`);
      expect(a.location, `failure ${i}`).toContain("error=invalid");
    }

    consoleWatch.allow(429, "/login");
    await page.goto("/subclouds");
    const throttled = page.waitForResponse((r) => r.request().method() === "GET" && r.url().includes("error=throttled"));
    // From another address than the failures, and with the right password: still refused.
    await signInWithForm(page, javaScriptEnabled, name, password);
    const res = await throttled;
    expect(res.status()).toBe(429);
    const retry = Number(res.headers()["retry-after"]);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(15 * 60);
    const wait = retry >= 120 ? `${Math.ceil(retry / 60)} minutes` : `${retry} seconds`;
    await expect(page.getByRole("alert")).toHaveText(`Too many failed sign-ins. Try again in ${wait}.`);
    await expect(page.locator("#login-username")).toHaveValue(name);
    await expect(page.locator('input[name="next"]')).toHaveValue("/subclouds");
    expect(await sessionCookie(page.context())).toBeUndefined();

    // The page itself answers 429 with Retry-After to anyone who loads it.
    const again = await page.request.get(page.url());
    expect(again.status()).toBe(429);
    expect(Number(again.headers()["retry-after"])).toBe(retry);
    // And the right password from yet another address is refused too, with Retry-After.
    const sixth = await attemptLogin(baseURL!, name, password);
    expect(sixth.location).toContain("error=throttled");
    expect(Number(sixth.retryAfter)).toBeGreaterThan(0);
    expect(sixth.cookie).toBeNull();
  });

  test("signing out ends the session on the server, not only in the browser", async ({ page, baseURL, javaScriptEnabled }) => {
    await page.goto("/subclouds");
    await signInWithForm(page, javaScriptEnabled, "admin", PASSWORDS.admin);
    await expect(page).toHaveURL(`${baseURL}/subclouds`);
    const old = await sessionCookie(page.context());
    expect(old).toBeTruthy();

    await ready(page, javaScriptEnabled);
    await page.locator(".user-menu").getByRole("button", { name: "Sign out" }).click();
    await expect(page).toHaveURL(`${baseURL}/login?loggedout=1`);
    await expect(page.locator(".notice")).toHaveText("You are signed out.");
    await expect(page.locator(".user-menu")).toHaveCount(0);
    expect(await sessionCookie(page.context())).toBeUndefined();

    // Someone who copied the cookie before cannot use it.
    const replay = await bareClient(baseURL!, { cookie: old });
    expect((await replay.get("/api/v1/overview")).status()).toBe(401);
    const pageRes = await replay.get("/subclouds", { maxRedirects: 0 });
    expect(pageRes.status()).toBe(303);
    expect(pageRes.headers()["location"]).toBe("/login?next=/subclouds&expired=1");
    await replay.dispose();

    await page.goto("/");
    await expect(page).toHaveURL(`${baseURL}/login?next=/`);
  });
});

test.describe("session expiry", () => {
  test.use({ storageState: SIGNED_OUT });
  test.skip(!SHORT, "needs SHORT_SESSION_URL: a demo server started with --session-idle-seconds 3");

  test("an idle session expires: back to sign-in with a message, then on to the page asked for", async ({ page, javaScriptEnabled }) => {
    await page.goto(`${SHORT}/subclouds`);
    await expect(page).toHaveURL(`${SHORT}/login?next=/subclouds`);
    await signInWithForm(page, javaScriptEnabled, "viewer", PASSWORDS.viewer);
    await expect(page).toHaveURL(`${SHORT}/subclouds`);
    await expect(page.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "viewer");

    // Wait for the expiry itself, not a fixed time: ask with live refreshes (which are not
    // user activity, so they do not keep the session) until the server calls it over.
    await expect
      .poll(async () => (await page.request.get(`${SHORT}/ui/fleet/overview?background=true`)).status(), { timeout: 20_000, intervals: [250] })
      .toBe(401);
    await page.goto(`${SHORT}/subclouds?availability=offline`);
    await expect(page).toHaveURL(`${SHORT}/login?next=/subclouds%3Favailability%3Doffline&expired=1`);
    await expect(page.locator(".notice")).toHaveText("Your session has expired. Sign in again.");
    // The server told the browser to drop the dead cookie.
    expect(await sessionCookie(page.context())).toBeUndefined();

    await signInWithForm(page, javaScriptEnabled, "viewer", PASSWORDS.viewer);
    await expect(page).toHaveURL(`${SHORT}/subclouds?availability=offline`);
  });

  test("a session in use does not expire: the idle timer restarts with every request", async ({ javaScriptEnabled, isMobile }) => {
    test.skip(!javaScriptEnabled || isMobile, "HTTP only, no browser involved: the desktop project covers it");
    // Requests every 250 ms for 4.5 s, half again the 3 s idle limit. The server resets a
    // session's idle timer at most every quarter of the limit (0.75 s), so after a request sent
    // at time s the timer was last reset no earlier than s - 0.75 s: a request answered less
    // than 3 - 0.75 = 2.25 s after the previous one was sent must find the session alive. Only
    // a machine stalled for longer makes a 401 the right answer; such a run proves nothing
    // either way and starts over with a new session (three runs at most).
    const IDLE_MS = 3_000;
    const TOUCH_MS = IDLE_MS / 4;
    const stalls: number[] = [];
    for (let run = 1; ; run++) {
      let previousSent = Date.now();
      const login = await attemptLogin(SHORT!, "viewer", PASSWORDS.viewer);
      expect(login.cookie).toBeTruthy();
      const client = await bareClient(SHORT!, { cookie: login.cookie! });
      const start = Date.now();
      let stalled = 0;
      while (Date.now() - start < IDLE_MS * 1.5) {
        await new Promise((r) => setTimeout(r, 250));
        const sent = Date.now();
        const status = (await client.get("/api/v1/overview")).status();
        const gap = Date.now() - previousSent;
        if (status === 401 && gap + TOUCH_MS >= IDLE_MS) {
          stalled = gap;
          break;
        }
        expect(status, `request ${sent - start} ms after sign-in, answered ${gap} ms after the previous one was sent`).toBe(200);
        previousSent = sent;
      }
      await client.dispose();
      if (!stalled) break;
      stalls.push(stalled);
      expect(run, `the machine stalled on every run (${stalls.join(", ")} ms between requests)`).toBeLessThan(3);
    }
  });
});

test.describe("requests from other sites", () => {
  // Each test signs in afresh, so a failure cannot end the shared admin session.
  test.use({ storageState: SIGNED_OUT });

  /**
   * The hostile pages: one on the same host name and another port (same-site, so the browser
   * does send the SameSite=Lax cookie and only the server's origin check stands in the way),
   * and one on another loopback address (cross-site) when the server is on 127.0.0.1.
   */
  const hostileHosts = (baseURL: string) => {
    const host = new URL(baseURL).hostname;
    return host === "127.0.0.1" ? [host, "127.0.0.2"] : [host];
  };

  test("a form on another site cannot create a user with the admin's session", async ({ page, baseURL, javaScriptEnabled, hostileSite, adminApi, consoleWatch }) => {
    await page.goto("/users");
    await signInWithForm(page, javaScriptEnabled, "admin", PASSWORDS.admin);
    await expect(page).toHaveURL(`${baseURL}/users`);
    consoleWatch.allow(403, "/ui/users/create");

    const names: string[] = [];
    for (const host of hostileHosts(baseURL!)) {
      const name = unique("csrf");
      names.push(name);
      const site = await hostileSite(
        host,
        `<!doctype html><title>Prize</title>
         <form method="post" action="${baseURL}/ui/users/create">
           <input type="hidden" name="username" value="${name}">
           <input type="hidden" name="password" value="${newPassword()}">
           <input type="hidden" name="role" value="admin">
           <button type="submit">Claim your prize</button>
         </form>`,
      );
      await page.goto(site);
      const refused = page.waitForResponse(`${baseURL}/ui/users/create`);
      await page.getByRole("button", { name: "Claim your prize" }).click();
      const res = await refused;
      expect(res.status(), `post from ${site}`).toBe(403);
      const sent = await res.request().allHeaders();
      if (host === new URL(baseURL!).hostname) {
        // Same site: the browser attached the admin's cookie; the server refused anyway.
        expect(sent["cookie"] ?? "").toContain("murmur_session=");
        expect(sent["sec-fetch-site"]).toBe("same-site");
      } else {
        expect(sent["sec-fetch-site"]).toBe("cross-site");
      }
      await expect(page.locator("body")).toContainText("request refused");
    }

    const users = (await userList(adminApi)).map((u) => u.name);
    for (const name of names) expect(users).not.toContain(name);
    await page.goto("/users");
    await expect(page.locator('tr[data-user="admin"]')).toHaveCount(1);
    for (const name of names) await expect(page.locator(`tr[data-user="${name}"]`)).toHaveCount(0);
  });

  test("a form on another site cannot sign you out", async ({ page, baseURL, javaScriptEnabled, hostileSite, consoleWatch }) => {
    await page.goto("/");
    await signInWithForm(page, javaScriptEnabled, "admin", PASSWORDS.admin);
    await expect(page).toHaveURL(`${baseURL}/`);
    const cookie = await sessionCookie(page.context());
    consoleWatch.allow(403, "/logout");

    for (const host of hostileHosts(baseURL!)) {
      const site = await hostileSite(
        host,
        `<!doctype html><title>News</title>
         <form method="post" action="${baseURL}/logout"><button type="submit">Read more</button></form>`,
      );
      await page.goto(site);
      const refused = page.waitForResponse(`${baseURL}/logout`);
      await page.getByRole("button", { name: "Read more" }).click();
      expect((await refused).status(), `post from ${site}`).toBe(403);
    }

    expect(await sessionCookie(page.context())).toBe(cookie);
    expect((await page.request.get("/api/v1/overview")).status()).toBe(200);
    await page.goto("/");
    await expect(page).toHaveURL(`${baseURL}/`);
    await expect(page.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "admin");
  });
});

test.describe("viewer", () => {
  test.use({ storageState: authFile("viewer") });

  test("sees no Users or Audit links, and a crafted post is refused", async ({ page, baseURL, adminApi }) => {
    await page.goto("/");
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(nav.getByRole("link", { name: "Subclouds" })).toBeVisible();
    await expect(nav.getByRole("link", { name: "Audit" })).toHaveCount(0);
    await expect(nav.getByRole("link", { name: "Users" })).toHaveCount(0);
    await expect(page.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "viewer");

    // Same origin, the viewer's own session: the role alone must stop these.
    const origin = { Origin: new URL(baseURL!).origin };
    const name = unique("byviewer");
    const create = await page.request.post("/ui/users/create", {
      form: { username: name, password: newPassword(), role: "admin" },
      headers: origin,
    });
    expect(create.status()).toBe(403);
    expect((await create.json()).error.code).toBe("forbidden");
    const promote = await page.request.post("/ui/users/role", { form: { username: "viewer", role: "admin" }, headers: origin });
    expect(promote.status()).toBe(403);
    const disable = await page.request.post("/ui/users/disabled", { form: { username: "admin", disabled: "true" }, headers: origin });
    expect(disable.status()).toBe(403);

    const users = await userList(adminApi);
    expect(users.map((u) => u.name)).not.toContain(name);
    expect(users.find((u) => u.name === "viewer")).toMatchObject({ role: "viewer", disabled: false });
    expect(users.find((u) => u.name === "admin")).toMatchObject({ role: "admin", disabled: false });
  });
});

test.describe("operator", () => {
  test.use({ storageState: authFile("operator") });

  test("sees Audit but not Users", async ({ page, baseURL }) => {
    await page.goto("/");
    const nav = page.getByRole("navigation", { name: "Main" });
    await expect(page.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "operator");
    await expect(nav.getByRole("link", { name: "Users" })).toHaveCount(0);
    await nav.getByRole("link", { name: "Audit" }).click();
    await expect(page).toHaveURL(`${baseURL}/audit`);
    await expect(page.getByRole("heading", { level: 1, name: "Audit log" })).toBeVisible();
    await expect(page.locator("p.result-count")).toHaveText(/^[\d,]+ entries$/);
    await expect(page.locator("tr[data-audit-action]").first()).toBeVisible();
  });
});

test("pages beyond one's role say 'Not allowed' with a 403, not a server error", async ({ open, consoleWatch }) => {
  consoleWatch.allow(403, "/users");
  consoleWatch.allow(403, "/audit");
  const viewer = await open("viewer");
  const operator = await open("operator");
  for (const [who, page, path] of [
    ["viewer", viewer, "/users"],
    ["viewer", viewer, "/audit"],
    ["operator", operator, "/users"],
  ] as const) {
    const res = await page.goto(path);
    await expect(page.locator(".error-panel"), `${who} on ${path}`).toContainText("Not allowed");
    expect(res?.status(), `${who} on ${path}`).toBe(403);
    await expect(page.locator("tr[data-user], tr[data-audit-action]")).toHaveCount(0);
  }
});

test("an operator's crafted user-creation post is refused with 403, not a server error", async ({ open, baseURL, adminApi, javaScriptEnabled, isMobile }) => {
  test.skip(!javaScriptEnabled || isMobile, "HTTP only, no browser involved: the desktop project covers it");
  const operator = await open("operator");
  const name = unique("byoperator");
  const res = await operator.request.post("/ui/users/create", {
    form: { username: name, password: newPassword(), role: "admin" },
    headers: { Origin: new URL(baseURL!).origin },
  });
  expect((await userList(adminApi)).map((u) => u.name)).not.toContain(name);
  expect(res.status(), await res.text()).toBe(403);
});

test("an admin creates a user who signs in; disabled, they are out; the audit log shows it all", async ({ page, baseURL, javaScriptEnabled: js, open }) => {
  const name = unique("new");
  const password = newPassword();

  await page.goto("/users");
  await ready(page, js);
  // With JavaScript the forms update the page in place; a full load would wipe this marker.
  if (js) await page.evaluate(() => ((window as any).__noReload = "still here"));
  const newUser = page.locator("section", { has: page.getByRole("heading", { name: "New user" }) });
  await newUser.getByLabel("User name").fill(name);
  await newUser.getByLabel("Password").fill(password);
  await newUser.getByLabel("Role").selectOption("operator");
  await newUser.getByRole("button", { name: "Create" }).click();
  const row = page.locator(`tr[data-user="${name}"]`);
  await expect(row).toBeVisible();
  await expect(row.locator("td").nth(0)).toHaveText("operator");
  await expect(row.locator("td").nth(1)).toHaveText(/\benabled$/);
  await expect(row.locator("td").nth(2)).toHaveText("never");
  if (js) {
    await expect(newUser.getByRole("status")).toHaveText("User created.");
    expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");
  }

  // The new user signs in with that password and is an operator.
  const them = await open("signed-out");
  await them.goto("/audit");
  await signInWithForm(them, js, name, password);
  await expect(them).toHaveURL(`${baseURL}/audit`);
  await expect(them.locator(".user-menu a.user-name")).toHaveAttribute("data-user-role", "operator");
  await expect(them.locator(".user-menu a.user-name")).toContainText(name);

  // Disabled: their open session ends and the right password no longer works.
  await ready(page, js);
  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row.locator("td").nth(1)).toHaveText(/\bdisabled$/);
  await expect(row.getByRole("button", { name: "Enable" })).toBeVisible();
  if (js) expect(await page.evaluate(() => (window as any).__noReload)).toBe("still here");
  await them.goto("/subclouds");
  await expect(them).toHaveURL(`${baseURL}/login?next=/subclouds&expired=1`);
  const refused = await attemptLogin(baseURL!, name, password);
  expect(refused.location).toContain("error=invalid");
  expect(refused.cookie).toBeNull();

  // The audit log, filtered by this user, tells the story.
  await page.goto("/audit");
  await ready(page, js);
  await page.locator("#audit-target").fill(name);
  await page.getByRole("button", { name: "Apply" }).click();
  await expect(page).toHaveURL(new RegExp(`[?&]target=${name}(&|$)`));
  const created = page.locator('tr[data-audit-action="user.create"]');
  await expect(created).toHaveCount(1);
  await expect(created.locator("td").nth(1)).toHaveText("admin"); // who
  await expect(created.locator("td").nth(4)).toHaveText(name); // whom
  await expect(created.locator("td").nth(5)).toHaveText("created with role operator");
  await expect(created.locator("td").nth(7)).toHaveText("ok");
  await expect(page.locator('tr[data-audit-action="user.disable"]')).toHaveCount(1);
  const logins = page.locator('tr[data-audit-action="auth.login"]');
  await expect(logins).toHaveCount(2);
  await expect(logins.locator("td:nth-child(8)")).toHaveText(["denied", "ok"]); // newest first
});

test.describe("account", () => {
  test.use({ storageState: authFile("viewer") });

  test("an API token is shown once, works on /api/v1 only, and stops when revoked @js", async ({ page, baseURL }) => {
    const tokenName = unique("tok");
    await page.goto("/account");
    await hydrated(page);
    await page.getByLabel("Token name").fill(tokenName);
    await page.getByRole("button", { name: "Create token" }).click();
    const shown = page.locator("code[data-token-secret]");
    await expect(shown).toHaveText(/^mmt_[A-Za-z0-9_-]{20,}$/);
    const secret = (await shown.textContent())!.trim();
    const row = page.locator(`tr[data-token="${tokenName}"]`);
    await expect(row).toBeVisible();
    const prefix = (await row.locator("td code").textContent())!.replace("…", "");
    expect(prefix.length).toBeGreaterThan(4);
    expect(prefix.length).toBeLessThan(secret.length);
    expect(secret.startsWith(prefix)).toBe(true);

    const script = await bareClient(baseURL!, { bearer: secret });
    expect((await script.get("/api/v1/overview")).status()).toBe(200);
    // Not a way into the dashboard: pages and server functions refuse it.
    expect((await script.get("/", { maxRedirects: 0 })).status()).toBe(401);
    expect((await script.get("/account", { maxRedirects: 0 })).status()).toBe(401);
    expect((await script.get("/ui/account/tokens")).status()).toBe(401);

    // Shown once: after a reload the secret is nowhere on the page; the use is recorded.
    await page.reload();
    await hydrated(page);
    await expect(page.locator("code[data-token-secret]")).toHaveCount(0);
    expect(await page.content()).not.toContain(secret);
    await expect(row.locator("td").nth(2)).not.toHaveText("never");

    await row.getByRole("button", { name: "Revoke" }).click();
    await expect(row.locator("td").nth(3)).toHaveText(/^revoked \d{4}-/);
    await expect(page.getByRole("status").filter({ hasText: "Token revoked." })).toBeVisible();
    const after = await script.get("/api/v1/overview");
    expect(after.status()).toBe(401);
    expect((await after.json()).error.code).toBe("unauthenticated");
    await script.dispose();
  });

  test("changing one's password: the old one stops working, the new one works, other sessions end", async ({ adminApi, open, baseURL, javaScriptEnabled: js }) => {
    const name = unique("pwchange");
    const oldPassword = newPassword();
    const password = newPassword();
    await createUser(adminApi, name, oldPassword, "viewer");
    const elsewhere = await attemptLogin(baseURL!, name, oldPassword); // another device
    expect(elsewhere.cookie).toBeTruthy();

    const me = await open("signed-out");
    await me.goto("/account");
    await signInWithForm(me, js, name, oldPassword);
    await expect(me).toHaveURL(`${baseURL}/account`);
    await ready(me, js);
    await me.locator("#pw-current").fill(oldPassword);
    await me.locator("#pw-new").fill(password);
    await me.locator("#pw-confirm").fill(password);
    const posted = me.waitForResponse((r) => r.url().endsWith("/ui/account/password") && r.request().method() === "POST");
    await me.getByRole("button", { name: "Change password" }).click();
    expect((await posted).status()).toBeLessThan(400);
    if (js) {
      const section = me.locator("section", { has: me.getByRole("heading", { name: "Change password" }) });
      await expect(section.getByRole("status")).toHaveText("Password changed; your other sessions were ended.");
    } else {
      await me.waitForLoadState();
    }

    // This session stays; the one elsewhere is over.
    await me.goto("/account");
    await expect(me).toHaveURL(`${baseURL}/account`);
    await expect(me.locator(".user-menu a.user-name")).toContainText(name);
    const other = await bareClient(baseURL!, { cookie: elsewhere.cookie! });
    expect((await other.get("/api/v1/overview")).status()).toBe(401);
    await other.dispose();

    const withOld = await attemptLogin(baseURL!, name, oldPassword);
    expect(withOld.location).toContain("error=invalid");
    expect(withOld.cookie).toBeNull();
    const withNew = await attemptLogin(baseURL!, name, password);
    expect(withNew.status).toBe(303);
    expect(withNew.location).toBe("/");
    expect(withNew.cookie).toBeTruthy();
  });
});
