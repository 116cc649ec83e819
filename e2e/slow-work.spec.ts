import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { screenshot, startServe, watchErrors } from './helpers';

// Slow work that stays honest, against a real `fuse-studio serve` child process: a prompt far
// longer than the run's budget is flagged before collection; while it is being answered the Data
// page shows the request in flight and its growing age; Cancel aborts the request in the page, serve
// sees its client go and stops the prefill within a chunk, and answers a new request within seconds.
// (Before chunked prefill, serve stayed busy with the abandoned prompt for about a minute here.)

const LONG = 'the quick brown fox jumps over the lazy dog and then runs far away '.repeat(270).trim(); // 18,089 characters

let serve: ChildProcess | null = null;
let serveURL = '';
let dir = '';


test.beforeAll(async () => {
  test.setTimeout(180_000);
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-slow-'));
  await writeDemoModel(join(dir, 'source'), { seed: 1 });
  ({ url: serveURL, child: serve } = await startServe(join(dir, 'source'), ['--model-name', 'demo-source']));
});

test.afterAll(async () => {
  serve?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a long prompt is warned before collection, shown in flight with its age, and cancellable; serve answers again within seconds', async ({ page }) => {
  test.setTimeout(300_000);
  const errors = watchErrors(page);
  const nav = page.getByRole('navigation', { name: 'Studio' });

  await page.goto('/sources');
  await page.getByRole('button', { name: /^Add fuse-studio serve/ }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Name', { exact: true }).fill('Local serve');
  await src.getByLabel('Base URL').fill(serveURL);
  await src.getByLabel('Model', { exact: true }).fill('demo-source');
  await src.getByLabel('Max tokens').fill('4');
  await src.getByLabel('Responses per prompt', { exact: true }).fill('1');
  await expect(src.getByLabel('Request timeout (s)')).toHaveValue('120');

  // ---- Import: the long prompt is flagged before anything is sent (no model loaded: an estimate).
  await nav.getByRole('link', { name: 'Data' }).click();
  const rows = [{ id: 'long-one', prompt: LONG }, { id: 'short-1', prompt: 'Say hello.' }, { id: 'short-2', prompt: 'Name a colour.' }];
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n') + '\n') });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('import-count')).toHaveText('3 prompt(s)');
  const warning = page.getByRole('alert', { name: 'Long prompts' });
  await expect(warning).toContainText('1 prompt(s) is too long for this run');
  await expect(warning).toContainText(`Prompt long-one: ≈${Math.ceil(LONG.length / 3.5).toLocaleString('en-US')} tokens, over the long-prompt limit (2,048 tokens`);
  await expect(warning.getByLabel('Leave them out of this run')).not.toBeChecked();

  // ---- Run anyway: the long request shows in flight, its age growing.
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  const inFlight = page.getByTestId('in-flight').filter({ hasText: 'prompt long-one' });
  await expect(inFlight).toContainText('18,089 characters', { timeout: 60_000 });
  await expect(inFlight.getByTestId('in-flight-age')).toHaveText(/^([4-9]|\d\d) s$|min/, { timeout: 60_000 });
  await screenshot(page, 'data-in-flight.png');

  // ---- Cancel: the page stops, and serve is free for a new request within seconds.
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('run-status')).toContainText('Stopped during collect', { timeout: 30_000 });
  const t0 = Date.now();
  const res = await fetch(`${serveURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'demo-source', messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
    signal: AbortSignal.timeout(60_000),
  });
  const waited = Date.now() - t0;
  expect(res.status).toBe(200);
  test.info().annotations.push({ type: 'serve answered after the cancel in', description: `${waited} ms` });
  console.log(`serve answered a new request ${waited} ms after the cancel`);
  expect(waited).toBeLessThan(15_000);

  // ---- Leaving the long prompt out: the run completes without it.
  await warning.getByLabel('Leave them out of this run').check();
  await page.getByRole('button', { name: /Resume run|Run again|Run pipeline/ }).click();
  await expect(page.getByTestId('run-status')).toContainText('Done.', { timeout: 120_000 });
  expect(errors).toEqual([]);
});
