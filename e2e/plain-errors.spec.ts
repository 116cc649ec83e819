// Plain-language errors and sources that fail their test (issue 18), in real Chromium against real
// servers on 127.0.0.1: a malformed base URL is named (not called a CORS block); removing a source
// or an import asks first; an empty file, a file without a recognised prompt column and a mapped
// column that is not there each say what to do; a partial import is a warning; the Hub example
// has a split that exists, and offline says offline; a source that fails its connection test is
// not asked (no retries on a dead host) unless the user insists; the counts agree.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test, type Page } from '@playwright/test';
import { MOCK_MODEL, startOpenAIMock, type MockOpenAI } from './openai-mock';
import { screenshot, watchErrors } from './helpers';

let mock: MockOpenAI;
/** An OpenAI-compatible server that is down in its own way: every request gets a 503 (with CORS). */
let broken: Server;
let brokenURL = '';
let brokenRequests = 0;

test.beforeAll(async () => {
  mock = await startOpenAIMock({ delayMs: 20, reply: (prompt, seed) => `Answer ${seed ?? 0} to: ${prompt}` });
  broken = createServer((req, res) => {
    if (req.method !== 'OPTIONS') brokenRequests++;
    res.writeHead(req.method === 'OPTIONS' ? 204 : 503, {
      'content-type': 'application/json',
      'access-control-allow-origin': '*',
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '*',
    });
    res.end(req.method === 'OPTIONS' ? undefined : '{"error":{"message":"the model is not loaded"}}');
  });
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
  brokenURL = `http://127.0.0.1:${(broken.address() as AddressInfo).port}/v1`;
});

test.afterAll(async () => {
  await mock?.close();
  broken?.closeAllConnections();
  await new Promise((r) => broken?.close(r));
});

async function addSource(page: Page, k: number, name: string, baseURL: string, n: number): Promise<void> {
  await page.getByRole('button', { name: 'Add a custom endpoint' }).click();
  const src = page.getByRole('region', { name: new RegExp(`^Source ${k}:`) });
  await src.getByLabel('Name', { exact: true }).fill(name);
  await src.getByLabel('Base URL').fill(baseURL);
  await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
  await src.getByLabel('Responses per prompt', { exact: true }).fill(String(n));
  await src.getByLabel('Concurrency', { exact: true }).fill('2');
}

async function importFile(page: Page, name: string, text: string): Promise<void> {
  await page.getByLabel(/^Prompt file/).setInputFiles({ name, mimeType: 'text/plain', buffer: Buffer.from(text) });
  await page.getByRole('button', { name: 'Import file' }).click();
}

const PROMPTS = ['What is the capital of France?', 'Name three primary colours.', 'Write a haiku about autumn.'];

test('plain errors on Sources and Data; a source that fails its test is skipped unless insisted on; counts agree', async ({ page, context }) => {
  test.setTimeout(240_000);
  const errors = watchErrors(page, /Failed to load resource|net::ERR|503|CORS/);
  await page.goto('/sources');
  await expect(page.getByRole('heading', { name: 'Sources', level: 1 })).toBeVisible();

  // ---- A base URL without its scheme: named before any request, not reported as CORS.
  await addSource(page, 1, 'Mock', mock.baseURL.replace('http://', ''), 2);
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await expect(src).toContainText('has no http:// or https:// at the start: write http://127.0.0.1');
  const status = page.getByRole('status', { name: 'Connection test of Mock' });
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(status).toContainText('Not sent: the base URL');
  await expect(status).not.toContainText('CORS');
  await screenshot(page, 'sources-bad-url.png');
  await src.getByLabel('Base URL').fill(mock.baseURL);
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(status).toContainText(`Connected: ${MOCK_MODEL} answered`);

  // ---- A source whose server is broken, and one that is removed (it had a key): asked first.
  await addSource(page, 2, 'Broken', brokenURL, 1);
  await addSource(page, 3, 'Temporary', mock.baseURL, 1);
  await page.getByRole('region', { name: /^Source 3:/ }).getByLabel('API key', { exact: true }).fill('sk-temporary-123');
  await page.getByRole('button', { name: 'Remove Temporary' }).click();
  const removeDialog = page.getByRole('dialog', { name: 'Remove the source “Temporary”?' });
  await expect(removeDialog).toContainText('Its settings and its API key are deleted from this browser');
  await removeDialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('region', { name: /^Source 3: Temporary/ })).toBeVisible();
  await page.getByRole('button', { name: 'Remove Temporary' }).click();
  await removeDialog.getByRole('button', { name: 'Remove source' }).click();
  await expect(page.getByRole('region', { name: /Temporary/ })).toHaveCount(0);

  // ---- Data: imports that fail say why and what to do.
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
  await expect(page.getByRole('heading', { name: 'Data', level: 1 })).toBeVisible();
  const importError = page.getByTestId('import-error');
  await importFile(page, 'empty.jsonl', '\n\n');
  await expect(importError).toHaveText('empty.jsonl has no rows: the file is empty, or holds only blank lines.');
  const csv = ['key,body,tag', ...PROMPTS.map((p, i) => `q${i},"${p}",x`)].join('\n');
  await importFile(page, 'questions.csv', csv);
  await expect(importError).toContainText('questions.csv has no column the importer recognises as the prompt. Its columns are “key”, “body”, “tag”.');
  await expect(importError).toContainText('under “Prompt column” (probably “body”');
  await expect(importError).not.toContainText('mapping.prompt');
  await page.getByText('Column mapping', { exact: true }).click();
  await page.getByLabel('Prompt column').fill('question');
  await importFile(page, 'questions.csv', csv);
  await expect(importError).toContainText('questions.csv has no column “question”, which is set as the Prompt column.');
  await page.getByLabel('Prompt column').fill('body');
  await importFile(page, 'questions.csv', csv);
  await expect(page.getByRole('group', { name: 'Import questions.csv' }).getByTestId('import-count')).toHaveText('3 prompt(s)');
  await expect(page.getByRole('group', { name: 'Import questions.csv' }).getByTestId('import-summary')).toHaveText('3 row(s) read, 3 prompt(s) added.');
  await page.getByLabel('Prompt column').fill('');

  // A file with a bad line and a repeated prompt: imported in part, and it says so (a warning).
  const jsonl = [JSON.stringify({ prompt: 'Count to three.' }), '{"prompt": "broken', JSON.stringify({ prompt: 'Count to three.' }), JSON.stringify({ prompt: PROMPTS[0] })].join('\n');
  await importFile(page, 'more.jsonl', jsonl);
  const more = page.getByRole('group', { name: 'Import more.jsonl' });
  await expect(more.getByTestId('import-summary')).toHaveText('4 row(s) read, 1 prompt(s) added; left out: 1 bad row(s), listed below, 1 repeating an earlier row, 1 already imported.');
  await expect(more.getByTestId('import-summary')).toHaveClass(/notice--warn/);

  // The Hub example names a split the dataset has; offline, the import says offline.
  await page.getByRole('button', { name: /^Use the example HuggingFaceH4\/ultrafeedback_binarized/ }).click();
  await expect(page.getByLabel('Dataset id')).toHaveValue('HuggingFaceH4/ultrafeedback_binarized');
  await expect(page.getByRole('textbox', { name: 'Split', exact: true })).toHaveValue('train_prefs');
  await context.setOffline(true);
  await page.getByRole('button', { name: 'Import from the Hub' }).click();
  await expect(importError).toContainText('Could not reach datasets-server.huggingface.co', { timeout: 60_000 });
  await expect(importError).toContainText('this device may be offline');
  await context.setOffline(false);

  // ---- The run: 4 prompts × (Mock 2 + Broken 1) = 12 requests; Broken fails its test and is not asked.
  const plan = page.getByTestId('run-plan');
  await expect(plan).toContainText('4 prompt(s) × 2 source(s) = 12 request(s)');
  brokenRequests = 0;
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  const skipped = page.getByTestId('skipped-sources');
  await expect(skipped).toContainText('One source was not asked, because it failed the connection test');
  await expect(skipped).toContainText('Broken: 503 Server error');
  await expect(page.getByTestId('run-status')).toContainText('Done. 8 response(s) collected', { timeout: 60_000 });
  // The broken server got the connection test only (/models and one chat): no collection, no retries.
  expect(brokenRequests).toBeGreaterThan(0);
  expect(brokenRequests).toBeLessThanOrEqual(2);
  await expect(plan).toContainText('12 request(s), 8 of them already answered');
  await screenshot(page, 'data-skipped-source.png');

  // Insisting asks it (then the run is stopped: its retries would take a while).
  await skipped.getByRole('button', { name: 'Run anyway with Broken' }).click();
  await expect.poll(() => brokenRequests, { timeout: 30_000 }).toBeGreaterThan(1);
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await expect(page.getByTestId('run-status')).toContainText('Stopped', { timeout: 60_000 });

  // ---- Removing an import asks first; its responses then count as outside the run.
  await page.getByRole('button', { name: 'Remove import more.jsonl' }).click();
  const dialog = page.getByRole('dialog', { name: 'Remove the import “more.jsonl”?' });
  await expect(dialog).toContainText('Its 1 prompt(s) leave the run');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('group', { name: 'Import more.jsonl' })).toBeVisible();
  await page.getByRole('button', { name: 'Remove import more.jsonl' }).click();
  await dialog.getByRole('button', { name: 'Remove import' }).click();
  await expect(page.getByRole('group', { name: 'Import more.jsonl' })).toHaveCount(0);
  await expect(plan).toContainText('3 prompt(s) × 2 source(s) = 9 request(s), 6 of them already answered');
  await expect(plan).toContainText('2 more response(s) stored from sources or prompts no longer in the run, not used');
  await expect(page.getByText(/^6 response\(s\), \d+ score\(s\), \d+ failed request\(s\) in this run/)).toBeVisible();
  expect(errors).toEqual([]);
});
