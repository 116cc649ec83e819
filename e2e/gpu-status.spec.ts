import { expect, test } from '@playwright/test';
import { watchErrors } from './helpers';

// Fail any test whose page throws or logs an error.

test.describe('GPU status page', () => {
  test('shows the SwiftShader adapter, its features and its limits', async ({ page }) => {
    const errors = watchErrors(page, null);
    await page.goto('/gpu');
    await expect(page.getByRole('heading', { level: 1, name: 'GPU status' })).toBeVisible();

    const adapter = page.getByRole('region', { name: 'Adapter' });
    await expect(adapter.getByTestId('adapter-name')).toContainText(/swiftshader/i);
    await expect(adapter).toContainText('CPU fallback');

    const features = page.getByRole('list', { name: 'Features the engine uses' });
    for (const name of ['shader-f16', 'subgroups', 'timestamp-query']) await expect(features).toContainText(name);

    const limits = page.getByRole('table', { name: 'Limits that matter for training' });
    const rows = limits.locator('tbody tr');
    await expect(rows.first()).toContainText('maxStorageBufferBindingSize');
    await expect(rows.nth(1)).toContainText('maxBufferSize');
    await expect(rows.nth(2)).toContainText('maxComputeWorkgroupStorageSize');
    await expect(rows.nth(3)).toContainText('maxComputeInvocationsPerWorkgroup');
    // Byte limits in human units, and the spec default beside them.
    await expect(rows.first()).toContainText(/\d+(\.\d+)? (MiB|GiB)/);
    await expect(rows.first()).toContainText('128 MiB');
    await expect(rows.nth(2)).toContainText(/\d+ KiB/);

    // The attention paths that exist, and which a CPU adapter takes.
    const paths = page.getByRole('table', { name: 'Attention kernel paths' });
    await expect(paths.locator('tbody tr')).toHaveCount(4);
    await expect(paths).toContainText('attention_flash.wgsl');
    await expect(paths.getByTestId('attention-path-status').first()).toHaveText('Forward in use on this CPU adapter.');
    await expect(paths.getByTestId('attention-path-status').nth(2)).toContainText('Not used on a CPU adapter');

    // The matmul paths that exist: the barrier-free kernels in use here, every GPU path not.
    const matmul = page.getByRole('table', { name: 'Matmul kernel paths' });
    const statuses = matmul.getByTestId('matmul-path-status');
    await expect(matmul.locator('tbody tr').last()).toContainText('Barrier-free (vec4, direct, skinny)');
    await expect(statuses.last()).toHaveText('In use on this CPU adapter.');
    await expect(matmul.getByRole('row', { name: /Tiled \(tiled\)/ })).toContainText('Not used on a CPU adapter.');
    await expect(matmul.getByRole('row', { name: /Split-K/ })).toContainText('Not used on a CPU adapter (its barriers cost more there');
    expect(errors).toEqual([]);
  });

  test('fits a laptop and a phone screen without scrolling sideways', async ({ page }) => {
    const errors = watchErrors(page, null);
    for (const [width, height, name] of [
      [1280, 800, 'laptop'],
      [390, 844, 'phone'],
    ] as const) {
      await page.setViewportSize({ width, height });
      await page.goto('/gpu');
      await expect(page.getByRole('table', { name: 'Matmul kernel paths' })).toBeVisible();
      // Nothing may widen the page; if something does, name the innermost block whose removal ends it.
      const wide = await page.evaluate(() => {
        const w = document.documentElement.clientWidth;
        const culprit = (root: Element): string[] => {
          for (const child of root.children) {
            const el = child as HTMLElement;
            const before = el.style.display;
            el.style.display = 'none';
            const fixed = document.documentElement.scrollWidth <= w;
            el.style.display = before;
            if (fixed) return [`${el.tagName.toLowerCase()}${[...el.classList].map((c) => `.${c}`).join('')}`, ...culprit(el)];
          }
          return [];
        };
        const overflow = document.documentElement.scrollWidth - w;
        return { overflow, out: overflow > 0 ? culprit(document.body) : [] };
      });
      expect(wide.overflow, `${name}: the page scrolls sideways: ${wide.out.join(' > ')}`).toBeLessThanOrEqual(0);
      await page.screenshot({ path: test.info().outputPath(`gpu-status-${name}.png`), fullPage: true });
      for (const section of ['Features', 'Attention kernels', 'Matrix-product kernels']) {
        await page.getByRole('heading', { level: 2, name: section }).evaluate((h) => h.scrollIntoView());
        await page.screenshot({ path: test.info().outputPath(`gpu-status-${name}-${section.split(' ')[0]!.toLowerCase()}.png`) });
      }
    }
    expect(errors).toEqual([]);
  });

  test('the GPU self-test passes every kernel in headless Chromium', async ({ page }) => {
    const errors = watchErrors(page, null);
    await page.goto('/gpu');
    await expect(page.getByTestId('adapter-name')).toContainText(/swiftshader/i);

    const panel = page.getByRole('region', { name: 'GPU self-test' });
    await panel.getByRole('button', { name: 'Run GPU self-test' }).click();
    await expect(panel.getByRole('status')).toContainText(/All \d+ kernels passed|kernels failed/, { timeout: 90_000 });

    const rows = panel.getByRole('table', { name: 'Self-test results' }).locator('tbody tr');
    const count = await rows.count();
    expect(count).toBeGreaterThan(0);
    const report: string[] = [];
    for (let i = 0; i < count; i++) report.push((await rows.nth(i).innerText()).replace(/\s+/g, ' '));
    for (const row of report) expect(row, report.join('\n')).toMatch(/ pass | skipped not available: /);
    // SwiftShader lacks chromium-experimental-subgroup-matrix: that case is skipped, with why, not failed.
    expect(report.filter((r) => /subgroup-matrix.* skipped not available: adapter lacks chromium-experimental-subgroup-matrix/.test(r)), report.join('\n')).toHaveLength(1);
    const skipped = report.filter((r) => / skipped not available: /.test(r)).length;
    await expect(panel.getByRole('status')).toHaveText(`All ${count - skipped} kernels passed (${skipped} not available on this GPU).`);
    expect(errors).toEqual([]);

    await page.getByRole('heading', { level: 1 }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: test.info().outputPath('gpu-status.png'), fullPage: true });
    // README screenshots are refreshed on request only, so a test run leaves the tree clean.
    if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/gpu-status.png', fullPage: true });
  });
});

test.describe('without WebGPU', () => {
  test('explains that navigator.gpu is missing and what to use instead', async ({ browser }) => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
    const page = await context.newPage();
    await page.goto('/gpu');
    const alert = page.getByRole('alert');
    await expect(alert.getByRole('heading', { name: 'WebGPU is not available' })).toBeVisible();
    await expect(alert).toContainText('navigator.gpu is missing');
    await expect(alert).toContainText('Chrome');
    await expect(alert).toContainText('fuse-studio');
    await expect(page.getByRole('button', { name: 'Run GPU self-test' })).toHaveCount(0);
    await page.screenshot({ path: test.info().outputPath('no-webgpu.png'), fullPage: true });
    await context.close();
  });

  test('explains when WebGPU exists but gives no adapter', async ({ browser }) => {
    const context = await browser.newContext();
    await context.addInitScript(() => {
      Object.defineProperty(GPU.prototype, 'requestAdapter', { value: async () => null });
    });
    const page = await context.newPage();
    await page.goto('/gpu');
    const alert = page.getByRole('alert');
    await expect(alert.getByRole('heading', { name: 'WebGPU is not available' })).toBeVisible();
    await expect(alert).toContainText('no adapter');
    await context.close();
  });
});
