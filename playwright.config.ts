import { defineConfig } from '@playwright/test';

// End-to-end tests drive the built studio (`vite build` first; `npm run test:e2e` does both)
// in the system Chromium with WebGPU on. Without a GPU, Chromium's WebGPU runs on SwiftShader,
// its bundled CPU Vulkan driver; `--use-webgpu-adapter=swiftshader` pins that adapter so the
// results do not depend on the machine's GPU or drivers.
// `npx playwright install` is not needed: we never use Playwright's downloaded browsers.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// E2E_PORT: a second checkout (a git worktree) can run its e2e beside this one's.
const PORT = Number(process.env.E2E_PORT ?? 4173);

export const CHROMIUM_WEBGPU_ARGS = [
  '--no-sandbox', // CI containers run as root
  '--enable-unsafe-webgpu', // WebGPU is off by default in Chromium on Linux
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results',
  workers: 1,
  fullyParallel: false,
  forbidOnly: Boolean(process.env.CI),
  retries: 0,
  // SwiftShader compiles and runs every kernel on the CPU: allow for slow CI machines.
  timeout: 120_000,
  expect: { timeout: 30_000 },
  reporter: process.env.CI ? [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]] : 'list',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: { executablePath: CHROMIUM, args: CHROMIUM_WEBGPU_ARGS },
  },
  projects: [{ name: 'chromium' }],
  webServer: {
    // Serves dist/studio (the production build). 127.0.0.1 is a secure context, so WebGPU is exposed.
    command: `node node_modules/vite/bin/vite.js preview --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
