// Helpers shared by the e2e specs.
import { mkdir } from 'node:fs/promises';
import { test, type Page } from '@playwright/test';

/**
 * Collects page errors and console errors, except those matching `expected` (by default the 404
 * probes for optional model files, which Chromium logs as failed resources).
 */
export function watchErrors(page: Page, expected: RegExp | null = /404|Failed to load resource/): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !(expected && expected.test(m.text()))) errors.push(`console.error: ${m.text()}`);
  });
  return errors;
}

/** A full-page screenshot kept with the test's artifacts, and in docs/screenshots/ when UPDATE_SCREENSHOTS is set. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: test.info().outputPath(name), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) {
    await mkdir('docs/screenshots', { recursive: true });
    await page.screenshot({ path: `docs/screenshots/${name}`, fullPage: true });
  }
}
