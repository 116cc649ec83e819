import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { watchErrors } from './helpers';


// A model server on 127.0.0.1 with CORS and Range support, counting the requests it answers.
let server: Server;
let base: string;
let modelDir: string;
const requests: string[] = [];


test.beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'fuse-e2e-model-'));
  await writeDemoModel(join(modelDir, 'tiny'), { tokenizer: false, vocabSize: 256 });
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Range, Authorization');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    void (async () => {
      let body: Buffer;
      if (path.startsWith('/tiny/') && /^[\w.-]+$/.test(path.slice(6))) {
        try {
          body = await readFile(join(modelDir, 'tiny', path.slice(6)));
        } catch {
          res.writeHead(404).end();
          return;
        }
      } else {
        res.writeHead(404).end();
        return;
      }
      res.setHeader('Accept-Ranges', 'bytes');
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
        if (start >= body.length) {
          res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
          return;
        }
        res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${body.length}` });
        res.end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1));
        return;
      }
      res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (modelDir) await rm(modelDir, { recursive: true, force: true });
});

async function loadUrl(page: Page, url: string): Promise<void> {
  await page.getByLabel('Repo id or URL').fill(url);
  await page.getByRole('button', { name: 'Load from URL' }).click();
}

test.describe('Model page', () => {
  test('loads the built-in demo model, shows its card and streams generated text', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/');
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
    await tryIt.getByRole('button', { name: 'Generate' }).click();
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
    await page.goto('/');
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
    await expect(page.getByRole('region', { name: 'Cached models' })).toContainText('No models cached.');
    expect(errors).toEqual([]);
  });
});
