import { request, type FullConfig } from "@playwright/test";

// Signs in once per demo role and saves the session cookies; tests pick a role with
// `test.use({ storageState: ... })` (admin by default).
export const DEMO_USERS = {
  admin: "admin-demo-password",
  operator: "operator-demo-password",
  viewer: "viewer-demo-password",
} as const;

export default async function globalSetup(config: FullConfig) {
  const baseURL = config.projects[0].use.baseURL as string;
  for (const [user, password] of Object.entries(DEMO_USERS)) {
    const ctx = await request.newContext({ baseURL });
    const res = await ctx.post("/login", {
      form: { username: user, password, next: "/" },
      headers: { Origin: new URL(baseURL).origin },
      maxRedirects: 0,
    });
    if (res.status() !== 303 || !(res.headers()["set-cookie"] ?? "").includes("murmur_session=")) {
      throw new Error(`could not sign in as ${user}: ${res.status()} ${await res.text()}`);
    }
    await ctx.storageState({ path: `.auth/${user}.json` });
    await ctx.dispose();
  }
}
