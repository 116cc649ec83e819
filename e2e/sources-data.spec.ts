import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { MOCK_MODEL, startOpenAIMock, type MockOpenAI } from './openai-mock';
import { watchErrors, screenshot } from './helpers';
import { loadDemoModel } from './flow-steps';

// The Sources and Data pages end to end, against a real OpenAI-compatible server on 127.0.0.1:
// add a source from a preset (key masked), test the connection (401, unreachable, CORS, then
// OK), import prompts (a malformed line reported by number), collect with a reload in the
// middle and resume, score with a rubric judge, browse, build, edit and exclude by hand,
// rebuild, and download the sets and the report.

const SEED = 100;
const PROMPTS = ['What is the capital of France?', 'Name three primary colours.', 'Write a haiku about autumn.'];
const N = 2;



/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The (prompt, sample) of every response stored in the page's current run, read from IndexedDB. */
async function storedItems(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const runId = localStorage.getItem('fuse-studio.dataRun');
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('fuse-studio-collect');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const rows = await new Promise<{ content: string }[]>((resolve, reject) => {
      const req = db.transaction('responses', 'readonly').objectStore('responses').index('runId').getAll(runId);
      req.onsuccess = () => resolve(req.result as { content: string }[]);
      req.onerror = () => reject(req.error);
    });
    db.close();
    return rows.map((r) => {
      const m = /^Answer \(sample (\d+)\) to: (.*)$/s.exec(r.content);
      return m ? `${m[2]}#${m[1]}` : `?${r.content}`;
    });
  });
}

const itemOf = (prompt: string, seed: number | undefined) => `${prompt}#${(seed ?? NaN) - SEED}`;

let mock: MockOpenAI;

test.beforeAll(async () => {
  mock = await startOpenAIMock({
    delayMs: 700,
    reply: (prompt, seed) => `Answer (sample ${(seed ?? NaN) - SEED}) to: ${prompt}`,
    // Sample 0 rates 9/10, sample 1 rates 7/10: two points apart, inside a judge's default DPO window (1 to 3 points).
    judge: (rubric) => (/\(sample 0\)/.test(rubric) ? 'Score: 9/10\nReason: Clear and correct.' : 'Score: 7/10\nReason: Fine, a little thin.'),
  });
});

test.afterAll(async () => {
  await mock?.close();
});

test('sources and data: preset, key, connection test, import, collect across a reload, build, edit, exclude, export', async ({ page }) => {
  const errors = watchErrors(page, /Failed to load resource|net::ERR|CORS|Access-Control/);

  // ---- Sources
  await page.goto('/sources');
  await expect(page.getByRole('heading', { name: 'Sources', level: 1 })).toBeVisible();
  await page.getByRole('button', { name: 'Add vLLM (local)' }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await expect(src.getByLabel('Base URL')).toHaveValue('http://127.0.0.1:8000/v1');
  await src.getByLabel('Name', { exact: true }).fill('Mock');
  const base = src.getByLabel('Base URL');
  const key = src.getByLabel('API key', { exact: true });
  const status = page.getByRole('status', { name: 'Connection test of Mock' });

  // Unreachable, then blocked by CORS, then a refused key.
  await base.fill(`http://127.0.0.1:${await closedPort()}/v1`);
  await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(status).toContainText('Unreachable');
  await base.fill(mock.baseURL.replace('/v1', '/nocors/v1'));
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(status).toContainText('Blocked by CORS');
  await base.fill(mock.baseURL);
  await key.fill('wrong-key');
  await expect(key).toHaveAttribute('type', 'password');
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(status).toContainText('401 Unauthorized');
  await expect(status).not.toContainText('wrong-key');

  // The key is masked unless revealed.
  await key.fill('sk-good-key-123456');
  await src.getByRole('button', { name: 'Show key' }).click();
  await expect(key).toHaveAttribute('type', 'text');
  await src.getByRole('button', { name: 'Hide key' }).click();
  await expect(key).toHaveAttribute('type', 'password');

  await src.getByLabel('Model', { exact: true }).fill('');
  await src.getByRole('button', { name: 'List models' }).click();
  await expect(src.getByText('1 model(s) on this server')).toBeVisible();
  await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
  await src.getByRole('button', { name: /Gemma \/ Mistral \/ Llama/ }).click();
  await expect(src.getByLabel('Temperature')).toHaveValue('0.8');
  await src.getByLabel('Seed').fill(String(SEED));
  await src.getByLabel('Responses per prompt', { exact: true }).fill(String(N));
  await src.getByLabel('Concurrency', { exact: true }).fill('1');
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(status).toContainText(`Connected: ${MOCK_MODEL} answered`);

  // The judge: the same source with the default rubric.
  await page.getByRole('radio', { name: /A source as rubric judge/ }).check();
  await page.getByLabel('Judge source').selectOption({ label: `Mock — ${MOCK_MODEL}` });
  await screenshot(page, 'sources.png');

  // Settings survive a reload (IndexedDB), the key still masked.
  await page.reload();
  await expect(page.getByRole('region', { name: /^Source 1: Mock/ }).getByLabel('API key', { exact: true })).toHaveValue('sk-good-key-123456');
  await expect(page.getByRole('region', { name: /^Source 1: Mock/ }).getByLabel('API key', { exact: true })).toHaveAttribute('type', 'password');

  // ---- Data: import (line 3 is malformed)
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
  await expect(page.getByRole('heading', { name: 'Data', level: 1 })).toBeVisible();
  const jsonl = [JSON.stringify({ prompt: PROMPTS[0] }), JSON.stringify({ prompt: PROMPTS[1] }), '{"prompt": "broken', JSON.stringify({ prompt: PROMPTS[2] })].join('\n') + '\n';
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('import-count')).toHaveText('3 prompt(s)');
  await expect(page.getByRole('list', { name: 'Bad rows in prompts.jsonl' })).toContainText('Line 3');

  // ---- Collect, reload in the middle
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(page.getByText(/Responses from Mock — [2-4] \/ 6/)).toBeVisible({ timeout: 20_000 });
  const runId = await page.evaluate(() => localStorage.getItem('fuse-studio.dataRun'));
  await page.reload();
  await expect(page.getByRole('button', { name: 'Resume run' })).toBeVisible();
  expect(await page.evaluate(() => localStorage.getItem('fuse-studio.dataRun'))).toBe(runId);
  const before = new Set(await storedItems(page));
  const requestsBefore = mock.chats.filter((c) => c.kind === 'collect').length;
  expect(before.size).toBeGreaterThanOrEqual(2);
  expect(before.size).toBeLessThan(PROMPTS.length * N);
  await page.getByRole('button', { name: 'Resume run' }).click();
  await expect(page.getByTestId('set-counts')).toContainText('1 SFT row(s) and 2 DPO pair(s)', { timeout: 30_000 });

  // Every item stored exactly once; nothing stored before the reload was requested again.
  const after = await storedItems(page);
  const all = PROMPTS.flatMap((p) => Array.from({ length: N }, (_, i) => `${p}#${i}`));
  expect([...after].sort()).toEqual([...all].sort());
  const resumed = mock.chats.filter((c) => c.kind === 'collect').slice(requestsBefore).map((c) => itemOf(c.prompt, c.seed));
  for (const item of resumed) expect(before.has(item), `${item} was stored before the reload but requested again`).toBe(false);
  expect([...resumed].sort()).toEqual(all.filter((i) => !before.has(i)).sort());
  await expect(page.getByTestId('run-status')).toContainText(`${all.length - before.size} response(s) collected, ${before.size} already stored`);

  // ---- Report
  const table = page.getByRole('table', { name: 'Kept and dropped by domain' });
  await expect(table).toContainText('dropped: DPO side of the 4:6 split');
  await expect(table).toContainText('dropped: SFT side of the 4:6 split');

  const download = async (name: string) => {
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: `Download ${name}` }).click()]);
    expect(dl.suggestedFilename()).toBe(name);
    return readFile((await dl.path())!, 'utf8');
  };
  const sft = (await download('sft.jsonl')).trim().split('\n').map((l) => JSON.parse(l) as { messages: { role: string; content: string }[] });
  expect(sft).toHaveLength(1);
  expect(sft[0]!.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  expect(sft[0]!.messages[1]!.content).toMatch(/^Answer \(sample 0\) to: /);

  // ---- Browse: the SFT prompt's responses side by side with their scores
  const prompts = page.getByRole('table', { name: 'Prompts' });
  const sftRow = prompts.getByRole('row').filter({ hasText: 'SFT side of the 4:6 split' });
  await expect(sftRow).toHaveCount(1);
  await sftRow.getByRole('button', { name: /^Open prompt/ }).click();
  const detail = page.getByRole('article', { name: 'Selected prompt' });
  const column = detail.getByRole('group', { name: 'Responses from Mock' });
  await expect(column.getByRole('article')).toHaveCount(2);
  await expect(column.getByTestId('verdict').first()).toContainText('score 0.90');
  await expect(column.getByTestId('verdict').nth(1)).toContainText('score 0.70');
  await expect(detail.getByTestId('sft-outcome')).toHaveText('kept');

  // ---- Exclude that SFT row
  await detail.getByRole('button', { name: 'Exclude SFT row' }).click();
  await expect(detail.getByRole('list', { name: 'Manual changes' })).toContainText('SFT row excluded');

  // ---- Edit the chosen response of a DPO prompt by hand
  const dpoRow = prompts.getByRole('row').filter({ hasText: 'dropped: DPO side' }).first();
  await dpoRow.getByRole('button', { name: /^Open prompt/ }).click();
  const chosen = detail.getByRole('article', { name: /sample 1$/ });
  await chosen.getByRole('button', { name: 'Edit' }).click();
  await chosen.getByLabel('Edited response').fill('An answer **edited by hand**.');
  await chosen.getByRole('button', { name: 'Save edit' }).click();
  await expect(chosen.getByText('edited', { exact: true })).toBeVisible();

  const requestsBeforeRebuild = mock.chats.length;
  await detail.getByRole('button', { name: 'Rebuild sets' }).click();
  await expect(page.getByTestId('set-counts')).toContainText('0 SFT row(s) and 2 DPO pair(s)', { timeout: 20_000 });
  await expect(table).toContainText('dropped: excluded by hand');
  expect(mock.chats.length, 'a rebuild requests nothing').toBe(requestsBeforeRebuild);
  await screenshot(page, 'data.png');

  // ---- Export
  const dpo = (await download('dpo.jsonl')).trim().split('\n').map((l) => JSON.parse(l) as { prompt: unknown; chosen: { content: string }[]; rejected: unknown });
  expect(dpo).toHaveLength(2);
  expect(dpo.some((r) => r.chosen[0]!.content === 'An answer **edited by hand**.')).toBe(true);
  const fusechat = (await download('fusechat_dpo.jsonl')).trim().split('\n');
  expect(fusechat).toHaveLength(2);
  const reportText = await download('report.json');
  const report = JSON.parse(reportText) as { counts: Record<string, number> };
  expect(report.counts['dpo.kept']).toBe(2);
  expect(report.counts['sft.dropped.excluded']).toBe(1);
  expect(reportText).not.toContain('sk-good-key');

  expect(errors).toEqual([]);
});

/**
 * A local source answering a code prompt with `good` code for sample 0 and `bad` for sample 1:
 * added on the Sources page (`tuneSource` may set more), the prompt imported on the Data page by
 * `importPrompt`, the pipeline run; sample 0 must pass the prompt's tests and sample 1 fail them.
 */
async function checkCodeVerdicts(
  page: Page,
  o: { good: string; bad: string; tuneSource?: (src: Locator) => Promise<void>; importPrompt: () => Promise<void>; timeout: number },
): Promise<void> {
  const errors = watchErrors(page, /Failed to load resource|net::ERR|CORS|Access-Control/);
  const code = await startOpenAIMock({ reply: (_prompt, seed) => `Here:\n\n${seed === SEED ? o.good : o.bad}` });
  try {
    await page.goto('/sources');
    await page.getByRole('button', { name: 'Add llama.cpp server (local)' }).click();
    const src = page.getByRole('region', { name: /^Source 1:/ });
    await expect(src.getByLabel('Base URL')).toHaveValue('http://127.0.0.1:8080/v1');
    await src.getByLabel('Base URL').fill(code.baseURL);
    await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
    await src.getByLabel('Seed').fill(String(SEED));
    await o.tuneSource?.(src);
    await src.getByLabel('Responses per prompt', { exact: true }).fill('2');

    await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
    await page.getByLabel('Domain for this import').selectOption('code');
    await o.importPrompt();
    await expect(page.getByTestId('import-count')).toHaveText('1 prompt(s)');
    await expect(page.getByLabel(/Run code prompts’ tests in a browser sandbox/)).toBeChecked();
    await page.getByRole('button', { name: 'Run pipeline' }).click();
    await expect(page.getByTestId('set-counts')).toContainText('1 SFT row(s) and 1 DPO pair(s)', { timeout: o.timeout });
    await page.getByRole('button', { name: /^Open prompt: Write add/ }).click();
    const verdicts = page.getByRole('article', { name: 'Selected prompt' }).getByTestId('verdict');
    await expect(verdicts.nth(0)).toContainText('tests passed');
    await expect(verdicts.nth(1)).toContainText('tests failed');
    expect(errors).toEqual([]);
  } finally {
    await code.close();
  }
}

test('code prompts are checked against their tests in the browser sandbox', async ({ page }) => {
  await checkCodeVerdicts(page, {
    good: '```js\nfunction add(a, b) { return a + b; }\n```',
    bad: '```js\nfunction add(a, b) { return a - b; }\n```',
    tuneSource: async (src) => {
      await src.getByRole('button', { name: 'code: 8 per prompt' }).click();
      await expect(src.getByLabel('Responses per prompt', { exact: true })).toHaveValue('8');
    },
    importPrompt: async () => {
      const row = { question: 'Write add(a, b) in JavaScript.', checks: ['assert.strictEqual(add(2, 3), 5);'] };
      await page.getByText('Column mapping').click();
      await page.getByLabel('Prompt column').fill('question');
      await page.getByLabel('Tests column').fill('checks');
      await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'code.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify([row])) });
      await page.getByRole('button', { name: 'Import file' }).click();
    },
    timeout: 30_000,
  });
});

test('Python code prompts run in Pyodide, served by the studio at /pyodide/', async ({ page }) => {
  test.setTimeout(180_000);
  await checkCodeVerdicts(page, {
    good: '```python\ndef add(a, b):\n    return a + b\n```',
    bad: '```python\ndef add(a, b):\n    return a * b\n```',
    importPrompt: async () => {
      const row = { prompt: 'Write add(a, b) in Python.', tests: ['assert add(2, 3) == 5', 'assert add(0, 0) == 0'] };
      await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'py.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(JSON.stringify(row) + '\n') });
      await page.getByRole('button', { name: 'Import file' }).click();
    },
    timeout: 150_000,
  });
});

test('held-out prompts: under 20 none by default (and why), then 10% of 40 math prompts kept out of the sets and offered on the Evaluate page', async ({ page }) => {
  test.setTimeout(150_000);
  const errors = watchErrors(page);
  const server = await startOpenAIMock({ reply: () => 'The answer is 4.' });
  try {
    await page.goto('/sources');
    await page.getByRole('button', { name: 'Add llama.cpp server (local)' }).click();
    const src = page.getByRole('region', { name: /^Source 1:/ });
    await src.getByLabel('Base URL').fill(server.baseURL);
    await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
    await src.getByLabel('Responses per prompt', { exact: true }).fill('1');

    await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
    await page.getByLabel('Domain for this import').selectOption('math');
    const importRows = async (name: string, from: number, n: number) => {
      const rows = Array.from({ length: n }, (_, i) => JSON.stringify({ prompt: `What is ${from + i} + 2?`, gold: String(from + i + 2) }));
      await page.getByLabel(/^Prompt file/).setInputFiles({ name, mimeType: 'application/x-ndjson', buffer: Buffer.from(rows.join('\n') + '\n') });
      await page.getByRole('button', { name: 'Import file' }).click();
    };
    await importRows('few.jsonl', 0, 5);
    const field = page.getByLabel('Hold out for evaluation (% of prompts, never trained on)');
    const count = page.getByTestId('held-out-count');
    await expect(field).toHaveValue('0');
    await expect(count).toContainText('Nothing held out: with fewer than 20 prompts');
    await importRows('more.jsonl', 5, 35);
    await expect(field).toHaveValue('10');
    await field.fill('80');
    await expect(page.getByRole('alert').filter({ hasText: 'not a percent from 0 to 50' })).toContainText('the run keeps 10%');
    await field.fill('10');
    await expect(count).toContainText(/^\d+ of 40 prompt\(s\) held out \(\d+ with a gold answer or tests\): they never enter the SFT or DPO sets/);
    const held = Number(/^(\d+) of/.exec(await count.innerText())![1]);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(40);
    await page.locator('.hold-out').screenshot({ path: test.info().outputPath('hold-out.png') });

    await page.getByRole('button', { name: 'Run pipeline' }).click();
    await expect(page.getByTestId('run-status')).toContainText('Done.', { timeout: 60_000 });
    // The held-out prompts, with their gold answers, are the Evaluate page's default data.
    await loadDemoModel(page);
    await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Evaluate' }).click();
    const heldOut = page.getByRole('region', { name: 'What to evaluate' }).getByRole('radio', { name: /held-out split/ });
    await expect(heldOut).toHaveAccessibleName(new RegExp(`\\(${held} prompts, \\d+ SFT rows, \\d+ DPO pairs\\)`));
    await expect(heldOut).toBeChecked();
    expect(errors).toEqual([]);
  } finally {
    await server.close();
  }
});
