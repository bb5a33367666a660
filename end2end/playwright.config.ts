import { defineConfig, devices } from "@playwright/test";

// Offline machines: Debian's Chromium, never a Playwright-downloaded browser.
const launchOptions = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
  ],
};

// Every page is proven three ways: hydrated on a desktop, without JavaScript (progressive
// enhancement), and hydrated on a phone-sized screen. Tests tagged @js need the bundle;
// tests tagged @nojs only make sense without it.
export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  retries: 0,
  workers: 2,
  reporter: [["list"]],
  outputDir: "test-results",
  globalSetup: "./global-setup.ts",
  use: {
    baseURL: process.env.BASE_URL ?? "http://127.0.0.1:3000",
    launchOptions,
    storageState: ".auth/admin.json",
  },
  projects: [
    { name: "desktop", use: { viewport: { width: 1440, height: 900 } }, grepInvert: /@nojs/ },
    {
      name: "desktop-nojs",
      use: { viewport: { width: 1440, height: 900 }, javaScriptEnabled: false },
      grepInvert: /@js/,
    },
    {
      name: "phone",
      use: { ...devices["Pixel 5"], viewport: { width: 390, height: 844 }, launchOptions },
      grepInvert: /@nojs/,
    },
  ],
});
