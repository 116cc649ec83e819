import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { isPlainName, startFileServer, type FileServer } from './file-server';
import { watchErrors } from './helpers';


// A model server on 127.0.0.1 with CORS and Range support, counting the requests it answers.
let server: FileServer;
let base: string;
let modelDir: string;
let requests: string[] = [];


test.beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'fuse-e2e-model-'));
  await writeDemoModel(join(modelDir, 'tiny'), { tokenizer: false, vocabSize: 256 });
  server = await startFileServer((path) => {
    const name = path.startsWith('/tiny/') ? path.slice(6) : '';
    return isPlainName(name) ? readFile(join(modelDir, 'tiny', name)) : undefined;
  });
  base = server.base;
  requests = server.requests;
});

test.afterAll(async () => {
  await server?.close();
  if (modelDir) await rm(modelDir, { recursive: true, force: true });
});

async function loadUrl(page: Page, url: string): Promise<void> {
  await page.getByLabel('Repo id or URL').fill(url);
  await page.getByRole('button', { name: 'Load from URL' }).click();
}

test.describe('Model page', () => {
  test('loads the built-in demo model, shows its card and streams generated text', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/model');
    await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();
    await page.getByRole('button', { name: 'Load demo model' }).click();

    const card = page.getByRole('region', { name: 'Model card' });
    await expect(card).toBeVisible({ timeout: 60_000 });
    await expect(card).toContainText('built-in demo model');
    await expect(card).toContainText('128,256');
    await expect(card).toContainText('4 / 2');
    await expect(page.getByTestId('plan-verdict')).toContainText('Fits this device');
    // With the GPU's memory stated, a plan that needs more says so and offers what would fit.
    await page.getByLabel('GPU memory free (GiB, optional)').fill('0.001');
    await expect(page.getByTestId('plan-verdict')).toContainText('Does not fit: a training step needs');
    await expect(page.getByTestId('plan-alternatives')).toContainText('a smaller model, or a GPU with more memory');
    await page.getByLabel('GPU memory free (GiB, optional)').fill('');
    await expect(page.getByTestId('plan-verdict')).toContainText('Fits this device');

    const tryIt = page.getByRole('region', { name: 'Try it' });
    await tryIt.getByRole('button', { name: 'Send' }).click();
    // Tokens stream in: the count climbs while the text grows, before generation ends.
    await expect(tryIt.getByTestId('generation-status')).toContainText(/Generating… [1-9]\d* tokens/, { timeout: 60_000 });
    await expect(tryIt.getByTestId('generation-status')).toContainText(/\d+ tokens generated\./, { timeout: 60_000 });
    await expect(tryIt.getByTestId('generated')).not.toBeEmpty();
    expect(errors).toEqual([]);

    await page.screenshot({ path: test.info().outputPath('model.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/model.png', fullPage: true });
  });

  test('downloads a model from a URL once, lists it in the cache, and frees it', async ({ page }) => {
    const errors = watchErrors(page);
    const url = `${base}/tiny/`;
    await page.goto('/model');
    requests.length = 0;
    await loadUrl(page, url);
    await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('progressbar', { name: 'Loaded overall' })).toHaveAttribute('value', '100');
    const weightGets = () => requests.filter((r) => r === 'GET /tiny/model.safetensors').length;
    expect(weightGets()).toBe(1);

    const cache = page.getByRole('list', { name: 'Cached models' });
    const entry = cache.getByRole('listitem').filter({ hasText: 'tiny' });
    await expect(entry).toHaveCount(1);
    await expect(entry).toContainText(/\d+(\.\d+)? (KiB|MiB)/);
    await page.screenshot({ path: test.info().outputPath('model-url.png'), fullPage: true });

    // After a reload the same URL loads from the browser cache: no weight download.
    await page.reload();
    await loadUrl(page, url);
    await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 60_000 });
    expect(weightGets()).toBe(1);
    expect(requests.filter((r) => r.includes('safetensors') && r.startsWith('GET'))).toHaveLength(1);

    await entry.getByRole('button', { name: /^Free / }).click();
    // Freeing asks first, saying what is deleted.
    const dialog = page.getByRole('dialog', { name: /^Free .* from the cache\?$/ });
    await expect(dialog).toContainText('downloaded files are deleted from this browser');
    await dialog.getByRole('button', { name: 'Free', exact: true }).click();
    await expect(page.getByRole('region', { name: 'Cached models' })).toContainText('No models cached.');
    expect(errors).toEqual([]);
  });
});
