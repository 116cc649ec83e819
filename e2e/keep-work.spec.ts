// Nothing is destroyed silently (issue 18): a model load that fails keeps the model loaded before,
// usable, and leaves no empty cache entry. Real Chromium, real WebGPU on SwiftShader, a real model
// server on 127.0.0.1 answering as a failing Hub would (404, a gated repo's 401 without CORS, a
// bad config, a truncated file, a download too slow to wait for).

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { screenshot, watchErrors } from './helpers';

let server: Server;
let base: string;
let modelDir: string;

test.beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'fuse-e2e-keep-'));
  await writeDemoModel(join(modelDir, 'tiny'), { tokenizer: false, vocabSize: 256 });
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const [, repo, file] = /^\/([\w-]+)\/([\w.-]+)$/.exec(path) ?? [];
    // A gated Hub repo asked without a token: 401, and no CORS headers (the browser sees only a failure).
    if (repo === 'gated') {
      res.writeHead(401).end('Access to this repo is restricted');
      return;
    }
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Range, Authorization');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges');
    if (req.method === 'OPTIONS') {
      res.writeHead(204).end();
      return;
    }
    void (async () => {
      let body: Buffer;
      try {
        if (!repo || !file || !['badconfig', 'truncated', 'slow'].includes(repo)) throw new Error('absent');
        body = await readFile(join(modelDir, 'tiny', file));
      } catch {
        res.writeHead(404).end();
        return;
      }
      if (repo === 'badconfig' && file === 'config.json') body = Buffer.from('{"architectures": ["LlamaForCausalLM"], "hidden_size": ');
      if (repo === 'truncated' && file === 'model.safetensors') body = body.subarray(0, Math.floor(body.length / 2));
      res.setHeader('Accept-Ranges', 'bytes');
      res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
      if (req.method === 'HEAD') return void res.end();
      if (repo === 'slow' && file === 'model.safetensors') {
        // 1 KiB every 200 ms: minutes for the whole file, so the test cancels it part-way.
        let at = 0;
        const timer = setInterval(() => {
          if (res.destroyed || at >= body.length) {
            clearInterval(timer);
            res.end();
            return;
          }
          res.write(body.subarray(at, at + 1024));
          at += 1024;
        }, 200);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.end(body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  if (modelDir) await rm(modelDir, { recursive: true, force: true });
});

/** The Model page, whatever the first page is. */
async function modelPage(page: Page): Promise<void> {
  await page.goto('/');
  const nav = page.getByRole('navigation', { name: 'Studio' });
  await nav.getByRole('link', { name: 'Model', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();
}

async function loadUrl(page: Page, url: string): Promise<void> {
  await page.getByLabel('Repo id or URL').fill(url);
  await page.getByRole('button', { name: 'Load from URL' }).click();
}

/** The failed load's message, once the load has ended. */
async function loadError(page: Page): Promise<string> {
  await expect(page.getByTestId('load-error')).toBeVisible({ timeout: 60_000 });
  return (await page.getByTestId('load-error').textContent()) ?? '';
}

/** The demo model is still the loaded one and still generates. */
async function demoStillWorks(page: Page): Promise<void> {
  await expect(page.getByTestId('still-loaded')).toContainText('Still loaded: built-in demo model.');
  const card = page.getByRole('region', { name: 'Model card' });
  await expect(card).toContainText('built-in demo model');
  const tryIt = page.getByRole('region', { name: 'Try it' });
  await tryIt.getByRole('button', { name: /^(Generate|Send)$/ }).click();
  await expect(tryIt.getByTestId('generation-status')).toContainText(/\d+ tokens generated\./, { timeout: 90_000 });
}

test('a failed model load keeps the loaded model usable and leaves no empty cache entry', async ({ page }) => {
  test.setTimeout(400_000);
  // The failing requests themselves are logged by Chromium as failed resources.
  const errors = watchErrors(page, /404|401|Failed to load resource|CORS|ERR_/);
  await modelPage(page);
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toContainText('built-in demo model', { timeout: 90_000 });

  // A repo that is not there.
  await loadUrl(page, `${base}/missing/`);
  expect(await loadError(page)).toContain('not found (404)');
  await demoStillWorks(page);

  // A gated repo asked without a token: the browser sees only "Failed to fetch".
  await loadUrl(page, `${base}/gated/`);
  const gated = await loadError(page);
  expect(gated).toContain(`Could not reach ${new URL(base).host}`);
  expect(gated).toContain('offline');
  expect(gated).toContain('paste an access token');
  await screenshot(page, 'model-load-failed.png');
  await expect(page.getByRole('region', { name: 'Model card' })).toContainText('built-in demo model');

  // A server that is not running.
  await loadUrl(page, 'http://127.0.0.1:9/nothing/');
  expect(await loadError(page)).toContain('Could not reach 127.0.0.1:9');
  await expect(page.getByTestId('still-loaded')).toContainText('Still loaded: built-in demo model.');

  // A config.json that is not JSON, and a truncated weights file.
  await loadUrl(page, `${base}/badconfig/`);
  expect(await loadError(page)).toContain('config.json: not valid JSON');
  await loadUrl(page, `${base}/truncated/`);
  expect(await loadError(page)).toContain('truncated');
  await expect(page.getByTestId('still-loaded')).toContainText('Still loaded: built-in demo model.');

  // A download cancelled part-way.
  await loadUrl(page, `${base}/slow/`);
  await expect(page.getByRole('progressbar', { name: 'Download overall' })).toBeVisible({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Cancel' }).click();
  expect(await loadError(page)).toBe('Loading was cancelled.');
  await demoStillWorks(page);

  // No "0 B" entries: the failed repos left nothing; the cancelled one keeps its partial weights to resume.
  const cache = page.getByRole('region', { name: 'Cached models' });
  await expect(cache).not.toContainText('missing');
  await expect(cache).not.toContainText('gated');
  await expect(cache).not.toContainText('badconfig');
  await expect(cache).not.toContainText('truncated');
  await expect(cache).not.toContainText(/\b0 B\b/);
  expect(errors).toEqual([]);
});
