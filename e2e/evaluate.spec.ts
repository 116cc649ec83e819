// The Evaluate page end to end on the built-in demo model in real Chromium (WebGPU on SwiftShader):
// a tiny SFT run then DPO continuing it on the Train page; a real `fuse-studio serve` (the CLI,
// serving a differently seeded demo model) as the Sources page's chat judge; then base vs SFT vs
// SFT+DPO on an uploaded EVAL.jsonl (math rows with gold answers, a code row with tests, a plain
// prompt, an SFT record, a DPO pair) and a multiple-choice file; a reload mid-run, the model loaded again and the evaluation
// resumed with every finished result kept, cancelled and resumed again; the table with intervals and "not significant", the
// answers side by side with the judge's verdicts, the JSON and Markdown exports; the same prompts
// judged again by serve's /pooling reward (readable verdicts: a win rate with its interval); screenshots at a
// laptop's and a phone's size. The demo model is random: it writes noise, so its math is wrong and
// the judge's verdicts unreadable — what this proves is the path, the persistence and the honesty
// of the page about thin evidence, not that tuning helped. SwiftShader is slow: few items, 4 tokens.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test, type Page } from '@playwright/test';
import { screenshot, startServe, watchErrors } from './helpers';

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

const SFT_JSONL = jsonl([
  { messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi there!' }] },
  { messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] },
]);
const DPO_JSONL = jsonl([{ prompt: [{ role: 'user', content: 'Say hi.' }], chosen: [{ role: 'assistant', content: 'Hi there!' }], rejected: [{ role: 'assistant', content: 'No.' }] }]);

const EVAL_JSONL = jsonl([
  { prompt: 'What is 2+3?', domain: 'math', gold: '5' },
  { prompt: 'What is 10-4?', domain: 'math', gold: '6' },
  // Run against its tests in the browser's sandbox (a worker the engine worker starts).
  { prompt: 'Write a JavaScript function `add(a, b)` that returns a + b, in a ```javascript block.', domain: 'code', tests: ['assert.strictEqual(add(1, 2), 3);'] },
  // Repeats a training prompt: flagged.
  { prompt: 'Say hi.' },
  { messages: [{ role: 'user', content: 'Name a fruit.' }, { role: 'assistant', content: 'An apple.' }] },
  { prompt: [{ role: 'user', content: 'What is 1+1?' }], chosen: [{ role: 'assistant', content: 'It is 2.' }], rejected: [{ role: 'assistant', content: 'Eleven.' }] },
]);
const CHOICES_JSONL = jsonl([
  { prompt: 'Which planet is closest to the Sun?', choices: ['Mercury', 'Mars'], answer: 0 },
  { prompt: 'What is 7 × 8?', choices: ['54', '56'], answer: 1 },
]);

let serve: ChildProcess | null = null;
let serveURL = '';
let dir = '';

test.beforeAll(async () => {
  test.setTimeout(180_000);
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-eval-'));
  // Written by the CLI (as a user would), not by importing the model code into the test runner.
  await promisify(execFile)(process.execPath, ['bin/fuse-studio.js', 'demo-model', '--out', join(dir, 'judge'), '--seed', '3']);
  ({ url: serveURL, child: serve } = await startServe(join(dir, 'judge'), ['--model-name', 'demo-judge', '--date-string', '25 Nov 2026']));
});

test.afterAll(async () => {
  serve?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

const nav = (page: Page) => page.getByRole('navigation', { name: 'Studio' });

async function go(page: Page, name: string) {
  // In-app navigation: a reload would drop the model from the worker.
  await nav(page).getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
}

async function loadDemoModel(page: Page) {
  await go(page, 'Model');
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 120_000 });
}

async function train(page: Page, stage: 'SFT' | 'DPO', file: string, steps: number) {
  await page.getByLabel(stage === 'SFT' ? '1. SFT' : '2. DPO').check();
  await page.getByLabel('A JSONL file').check();
  await page.getByLabel(`${stage} JSONL file`).setInputFiles({ name: `tiny-${stage.toLowerCase()}.jsonl`, mimeType: 'application/jsonl', buffer: Buffer.from(file) });
  for (const [label, value] of [[/^Max steps/, steps], [/^Micro-batch size/, 1], [/^Gradient accumulation steps/, 1], [/^Max length/, 32], [/^Warmup ratio/, 0]] as const) {
    await page.getByLabel(label).fill(String(value));
    await expect(page.getByLabel(label)).toHaveValue(String(value));
  }
  await page.getByRole('button', { name: `Start ${stage} training` }).click();
  const heading = page.getByTestId('run-card').getByRole('heading', { level: 2 });
  await expect(heading).toContainText(`${stage} run`);
  await expect(heading).toContainText('completed', { timeout: 300_000 });
}

/** Per-item results stored for the evaluation on screen (the page's IndexedDB). */
function storedResults(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const r = indexedDB.open('fuse-studio-eval-results');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const n = await new Promise<number>((resolve, reject) => {
      const req = db.transaction('results', 'readonly').objectStore('results').count();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    db.close();
    return n;
  });
}

test('base vs SFT vs SFT+DPO against a fuse-studio serve judge, resumed after a reload, with intervals and exports', async ({ page }) => {
  test.setTimeout(1_500_000);
  const errors = watchErrors(page);
  const started = Date.now();
  await page.setViewportSize({ width: 1366, height: 860 });
  await page.goto('/evaluate');
  await expect(page.getByTestId('eval-no-model')).toContainText('Load a model on the');
  await loadDemoModel(page);

  // ---- a tiny SFT, then DPO continuing it ----
  await go(page, 'Train');
  await train(page, 'SFT', SFT_JSONL, 2);
  await train(page, 'DPO', DPO_JSONL, 1);
  await expect(page.getByRole('list', { name: 'Adapters' }).getByRole('listitem').filter({ hasText: 'sft+dpo' })).toBeVisible();

  // ---- the judge: fuse-studio serve as a chat judge on the Sources page ----
  await go(page, 'Sources');
  await page.getByRole('button', { name: /^Add fuse-studio serve/ }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Name', { exact: true }).fill('Judge serve');
  await src.getByLabel('Base URL').fill(serveURL);
  await src.getByLabel('Model', { exact: true }).fill('demo-judge');
  await page.getByRole('radio', { name: /A source as rubric judge/ }).check();
  await page.getByLabel('Judge source').selectOption({ label: 'Judge serve — demo-judge' });
  await page.getByLabel('Judge max tokens').fill('8');

  // ---- Evaluate: the form ----
  await go(page, 'Evaluate');
  const setup = page.getByRole('region', { name: 'What to evaluate' });
  for (const name of [/^Base/, /^SFT \(SFT\)/, /^SFT\+DPO/]) await setup.getByRole('checkbox', { name }).check();
  await expect(setup.getByTestId('eval-judge')).toContainText(`Judge: demo-judge at ${serveURL} (chat judge: each pair in both orders).`);
  // The Data page set nothing aside: an EVAL.jsonl instead (a bad one first: its line is named).
  await expect(setup.getByRole('radio', { name: /held-out split/ })).toHaveAccessibleName(/none set aside/);
  await setup.getByRole('radio', { name: 'An EVAL.jsonl file' }).check();
  await setup.getByLabel('EVAL.jsonl file', { exact: true }).setInputFiles({ name: 'bad-eval.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(`${EVAL_JSONL}{"prompt": "Q", "choices": ["a"], "answer": 3}\n`) });
  await setup.getByRole('radio', { name: 'A multiple-choice JSONL file' }).check();
  await setup.getByLabel('Multiple-choice file', { exact: true }).setInputFiles({ name: 'choices.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(CHOICES_JSONL) });
  await setup.getByLabel('Max new tokens', { exact: true }).fill('4');
  await setup.getByLabel('Seed', { exact: true }).fill('7');
  await setup.getByRole('button', { name: 'Start evaluation' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'bad-eval.jsonl' })).toContainText('line 7:');
  await setup.getByLabel('EVAL.jsonl file', { exact: true }).setInputFiles({ name: 'eval.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(EVAL_JSONL) });
  await expect(setup.getByText('Chosen: eval.jsonl.')).toBeVisible();
  await setup.getByRole('button', { name: 'Start evaluation' }).click();

  // ---- progress, then a reload once the likelihood phase is stored and answers are being written ----
  const run = page.getByTestId('eval-run');
  await expect(run.getByRole('heading', { level: 2 })).toContainText('Base, SFT, SFT+DPO — running');
  await expect(run.getByTestId('eval-progress')).toContainText(/Scoring the held-out rows|Answering/, { timeout: 120_000 });
  await expect(run.getByTestId('eval-progress')).toContainText('Answering the held-out prompts', { timeout: 600_000 });
  await expect(run.getByTestId('eval-progress')).toContainText(/ETA/);
  await page.screenshot({ path: test.info().outputPath('evaluate-running.png'), fullPage: true });
  await page.reload();

  await expect(run.getByRole('heading', { level: 2 })).toContainText('interrupted');
  await expect(run.getByTestId('eval-interrupted')).toContainText('Load the model “demo” first.');
  const kept = await storedResults(page);
  // 1 SFT record, 1 DPO pair and 2 multiple-choice rows for each of 3 models, at least.
  expect(kept).toBeGreaterThanOrEqual(12);
  await loadDemoModel(page);
  await go(page, 'Evaluate');
  await run.getByRole('button', { name: 'Resume evaluation' }).click();
  await expect(run.getByRole('heading', { level: 2 })).toContainText('running');
  await expect(run.getByTestId('eval-reused')).toContainText(`${kept} finished results were found stored and kept`);
  // Cancelled, then resumed again: still nothing finished is redone.
  await run.getByRole('button', { name: 'Cancel' }).click();
  await expect(run.getByRole('heading', { level: 2 })).toContainText('cancelled', { timeout: 120_000 });
  const keptAgain = await storedResults(page);
  expect(keptAgain).toBeGreaterThanOrEqual(kept);
  await run.getByRole('button', { name: 'Resume evaluation' }).click();
  await expect(run.getByRole('heading', { level: 2 })).toContainText('completed', { timeout: 900_000 });
  await expect(run.getByTestId('eval-reused')).toContainText(`${keptAgain} finished results were found stored and kept`);
  // 3 models × (4 likelihood items + 4 answers) + 3 pairs × 4 judged prompts.
  expect(await storedResults(page)).toBe(3 * 8 + 3 * 4);
  await expect(run.getByRole('list', { name: 'Warnings' })).toContainText('repeat training prompts');

  // ---- the report ----
  const report = page.getByTestId('eval-report');
  const table = report.getByRole('table', { name: 'Evaluation results' });
  await expect(table.getByRole('rowheader')).toHaveText(['Base', 'SFT', 'SFT+DPO']);
  for (const col of ['SFT loss', 'Perplexity', 'Pref. accuracy', 'Math', 'Code pass@1', 'Judge win rate', 'Multiple choice', 'Mean length'])
    await expect(table.getByRole('columnheader', { name: col, exact: true })).toBeVisible();
  await expect(table).toContainText('95% CI [');
  await expect(table).toContainText('of 2 items');
  await expect(table.getByText('not significant vs Base').first()).toBeVisible();
  await expect(report.getByRole('list', { name: 'Why significant or not' })).toContainText('McNemar');
  await expect(report.getByTestId('eval-thin').first()).toContainText('The evidence is too thin to call any model better');
  await expect(report.getByRole('list', { name: 'Pairwise comparisons' })).toContainText('SFT+DPO vs SFT');
  await expect(report.getByRole('figure', { name: 'Math accuracy chart' })).toBeVisible();
  await expect(report.getByRole('figure', { name: 'Multiple-choice accuracy chart' }).locator('.recharts-errorBar')).toHaveCount(3);

  // ---- answers side by side, each pair's verdict from the real judge ----
  const items = page.getByTestId('eval-items');
  await expect(items.getByRole('listitem', { name: 'Item 1' })).toBeVisible();
  // The code answers were run against their tests (not "tests not run").
  await expect(items.getByRole('listitem', { name: 'Item 3' }).getByTestId(/^answer-.*-base$/)).toContainText(/tests (pass|fail)/);
  await expect(items.getByRole('listitem', { name: 'Item 4' })).toContainText('repeats a training prompt');
  const verdicts = items.getByRole('list', { name: 'Verdicts of line 1' }).getByRole('listitem');
  await expect(verdicts).toHaveCount(3);
  await verdicts.first().getByText('The judge’s replies').click();
  await expect(verdicts.first()).toContainText('shown first as A');

  // ---- exports ----
  const json = page.waitForEvent('download');
  await report.getByRole('button', { name: 'Export JSON' }).click();
  const exported = JSON.parse(await readFile((await (await json).path())!, 'utf8')) as {
    models: string[];
    results: Record<string, { math?: { n: number; ci95: number[] }; choice_accuracy?: { n: number } }>;
    pairwise: { a: string; b: string; math?: { significant: boolean } }[];
  };
  expect(exported.models).toEqual(['base', 'sft', 'sft+dpo']);
  expect(exported.results.sft!.math!.n).toBe(2);
  expect(exported.results.sft!.math!.ci95).toHaveLength(2);
  expect(exported.results.base!.choice_accuracy!.n).toBe(2);
  expect(exported.pairwise.map((p) => `${p.a}/${p.b}`)).toEqual(['base/sft', 'base/sft+dpo', 'sft/sft+dpo']);
  expect(exported.pairwise.every((p) => p.math?.significant === false)).toBe(true);
  const md = page.waitForEvent('download');
  await report.getByRole('button', { name: 'Export Markdown' }).click();
  const markdown = await readFile((await (await md).path())!, 'utf8');
  expect(markdown).toContain('not significant');

  // ---- the same prompts judged by serve's /pooling reward (a reward endpoint: the higher reward
  // wins): readable verdicts, so the judge's win rate has a number and an interval ----
  await go(page, 'Sources');
  await page.getByRole('radio', { name: /A reward-model endpoint/ }).check();
  await page.getByRole('group', { name: 'Reward endpoint from a source' }).getByRole('button', { name: 'Judge serve' }).click();
  await go(page, 'Evaluate');
  await expect(setup.getByTestId('eval-judge')).toContainText('(reward model: the higher reward wins)');
  await setup.getByRole('checkbox', { name: 'Losses and preference accuracy' }).uncheck();
  await setup.getByRole('checkbox', { name: 'Forgetting guard (multiple choice)' }).uncheck();
  // The file chosen before the mid-run reload is gone with the tab: the page says so.
  await setup.getByRole('button', { name: 'Start evaluation' }).click();
  await expect(page.getByRole('alert')).toContainText('Choose an EVAL.jsonl file first.');
  await setup.getByLabel('EVAL.jsonl file', { exact: true }).setInputFiles({ name: 'eval.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(EVAL_JSONL) });
  await setup.getByRole('button', { name: 'Start evaluation' }).click();
  await expect(run.getByRole('heading', { level: 2 })).toContainText('running');
  await expect(run.getByRole('heading', { level: 2 })).toContainText('completed', { timeout: 600_000 });
  const judged = page.getByTestId('eval-report').getByRole('table', { name: 'Evaluation results' });
  await expect(judged.getByRole('columnheader', { name: 'SFT loss' })).toHaveCount(0);
  await expect(judged.getByRole('row', { name: /^SFT\+DPO/ })).toContainText(/\d+%95% CI \[\d+%, \d+%\] vs Base · 4 items/);
  await expect(page.getByTestId('eval-items').getByRole('list', { name: 'Verdicts of line 1' })).toContainText(/wins \(reward|tie \(reward/);
  await expect(page.getByRole('figure', { name: 'Judge win rate vs Base chart' }).locator('.recharts-errorBar')).toHaveCount(2);

  // ---- at a phone's width, with the form and its file pickers shown: nothing scrolls sideways ----
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByLabel('EVAL.jsonl file', { exact: true })).toBeVisible();
  // The models picked before the mid-run reload are still picked.
  await expect(page.getByRole('checkbox', { name: /^SFT\+DPO/ })).toBeChecked();
  expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
  await page.screenshot({ path: test.info().outputPath('evaluate-phone-form.png'), fullPage: true });
  await page.setViewportSize({ width: 1366, height: 860 });

  // ---- the results survive a reload (no model needed to read them) ----
  await page.reload();
  await expect(page.getByRole('table', { name: 'Evaluation results' }).getByRole('rowheader')).toHaveText(['Base', 'SFT', 'SFT+DPO']);
  await expect(page.getByTestId('eval-run').getByRole('heading', { level: 2 })).toContainText('completed');
  await screenshot(page, 'evaluate-desktop.png');
  await page.getByTestId('eval-report').getByRole('figure', { name: 'Math accuracy chart' }).screenshot({ path: test.info().outputPath('evaluate-chart.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByRole('table', { name: 'Evaluation results' })).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
  await screenshot(page, 'evaluate-phone.png');
  expect(errors).toEqual([]);
  console.log(`evaluate e2e: ${((Date.now() - started) / 1000).toFixed(0)} s`);
});
