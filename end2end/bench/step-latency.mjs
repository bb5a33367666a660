// Time from a step's completion at the agent to its appearance in an open browser.
//
// For each sample: a one-site sw-deploy strategy is created and applied over REST; its page is
// open in Chromium (hydrated, on the live event stream). The simulator's control API is polled
// every 10 ms for the site's software version: the moment it changes is the agent finishing the
// step (the simulator sends its report right after). The browser side is a MutationObserver in
// the page that stamps the wall clock when the step's row turns `complete`. Prints JSON.
//
//   BASE_URL=… SIM_CONTROL_URL=… TOKEN=mmt_… SAMPLES=10 node bench/step-latency.mjs
import { chromium } from "@playwright/test";

const base = process.env.BASE_URL;
const control = process.env.SIM_CONTROL_URL;
const token = process.env.TOKEN;
const samples = Number(process.env.SAMPLES ?? 10);
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };

async function api(path, body) {
  const res = await fetch(base + path, body === undefined ? { headers: auth } : { method: "POST", headers: auth, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function siteVersion(site) {
  const res = await fetch(`${control}/sites?site=${encodeURIComponent(site)}`);
  const views = await res.json();
  return views[0]?.software_version;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
await page.goto(`${base}/login`);
await page.locator("#login-username").fill("viewer");
await page.locator("#login-password").fill("viewer-demo-password");
await Promise.all([page.waitForURL((u) => !u.pathname.startsWith("/login")), page.locator("#login-password").press("Enter")]);

const online = await api("/api/v1/subclouds?availability=online&per_page=100&sort=name");
const releases = ["26.03", "25.09"];
const latencies = [];
for (let i = 0; i < samples && i < online.rows.length; i++) {
  const site = online.rows[i].name;
  const from = online.rows[i].software_version;
  const release = releases.find((r) => r !== from);
  const { id } = await api("/api/v1/strategies", { type: "sw-deploy", release, target: { kind: "subcloud", name: site } });
  await page.goto(`${base}/orchestration/${id}`);
  // Hydrated and subscribed before the step can finish.
  await page.waitForSelector("body[data-hydrated]", { timeout: 10_000 });
  await page.evaluate((name) => {
    window.__completeAt = null;
    const seen = () => document.querySelector(`tr[data-step="${name}"][data-step-state="complete"]`);
    new MutationObserver(() => { if (!window.__completeAt && seen()) window.__completeAt = Date.now(); })
      .observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }, site);
  await api(`/api/v1/strategies/${id}/actions`, { action: "apply" });
  let agentAt = null;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if ((await siteVersion(site)) === release) { agentAt = Date.now(); break; }
    await new Promise((r) => setTimeout(r, 10));
  }
  if (agentAt === null) throw new Error(`${site}: the agent never finished`);
  await page.waitForFunction(() => window.__completeAt !== null, null, { timeout: 60_000, polling: 50 });
  const browserAt = await page.evaluate(() => window.__completeAt);
  latencies.push(browserAt - agentAt);
  // The strategy finishes on the same tick; wait so the next one of this type may be created.
  for (let k = 0; k < 100; k++) {
    const d = await api(`/api/v1/strategies/${id}`);
    if (["complete", "failed", "aborted"].includes(d.summary.state)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
}
await browser.close();
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(JSON.stringify({ samples: latencies.length, min: latencies[0], p50: q(0.5), p90: q(0.9), max: latencies[latencies.length - 1], all: latencies }));
