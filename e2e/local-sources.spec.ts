import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { TinyRewardModel } from '../src/data/test-reward-model';
import { downloadSize, formatDownload, presetById } from '../src/model/presets';
import type { FileServer } from './file-server';
import { nav } from './flow-steps';
import { cliRewards, readRun, screenshot, watchErrors } from './helpers';
import { serveLocalModels, type LocalModels } from './local-models';

type StoredResponse = { key: string; promptId: string; sourceName: string; servedModel: string; content: string };
type StoredScore = { key: string; judge: { method: string; raw: number } };

// Fusion with no API key, in the tab: two local sources of different architectures (generated
// tiny Llama 3 and Qwen3 models with their real tokenizers and chat templates) generate in the
// engine worker on WebGPU (SwiftShader), one model at a time, into the run's IndexedDB store; a
// generated tiny reward model scores them. The tab is reloaded mid-collection; the resumed run
// generates exactly the items not stored (none twice), the GPU pool's live bytes are back at their
// baseline after each source (shown in the progress line), and the stored rewards equal what
// `fuse-studio reward` gives for the same conversations.

const PROMPTS = ['What is the capital of France?', 'Name three primary colours.', 'Write a haiku about autumn.'];
const N = 2;
const TOTAL = 2 * PROMPTS.length * N;
/** The recipe's bundled starter prompts. */
const STARTER = JSON.parse(readFileSync('src/data/starter-prompts.json', 'utf8')) as unknown[];

let models: LocalModels;
let dir = '';
let files: FileServer;
let rmModel: TinyRewardModel;

test.beforeAll(async () => {
  models = await serveLocalModels(11);
  ({ dir, files, rm: rmModel } = models);
});

test.afterAll(async () => {
  await models?.close();
});


/** Each local source's progress line: state, rows generated in this run, GPU pool before/after. */
function localLines(page: Page) {
  return page.getByTestId('local-progress').evaluateAll((els) =>
    els.map((el) => ({
      state: el.getAttribute('data-state'),
      generated: Number(el.getAttribute('data-generated')),
      baseline: el.getAttribute('data-gpu-baseline'),
      after: el.getAttribute('data-gpu-after'),
    })),
  );
}

test('two local sources of different architectures collect in the tab across a reload, none generated twice, the GPU pool back at its baseline after each', async ({ page }) => {
  test.setTimeout(300_000);
  const errors = watchErrors(page);
  await page.goto('/sources');
  // The recipe card measures this GPU's speed once (kept for later visits): let it finish before
  // the sources' GPU pool baselines are taken.
  await expect(page.getByTestId('nokey-time')).toHaveAttribute('data-state', 'ready', { timeout: 120_000 });
  // Two local models, one by URL and one as a folder chosen on this computer, each with n and few tokens.
  await page.getByLabel('Hub repo or URL').fill(`${files.base}/llama`);
  await page.getByRole('button', { name: 'Add local model' }).click();
  await page.getByLabel(/^Or a model folder on this computer/).setInputFiles(join(dir, 'qwen'));
  for (const [name, path] of [['Llama', 'llama'], ['Qwen', 'qwen']] as const) {
    const card = page.getByRole('group', { name: new RegExp(`^Local source \\d: ${path}$`) });
    await card.getByLabel('Name', { exact: true }).fill(name);
    const named = page.getByRole('group', { name: new RegExp(`^Local source \\d: ${name}$`) });
    await named.getByLabel('Responses per prompt (n)').fill(String(N));
    await named.getByLabel('Max new tokens').fill('6');
  }
  await expect(page.getByRole('group', { name: 'Local source 2: Qwen' }).getByLabel('Model', { exact: true })).toHaveValue('folder:qwen');
  // The judge: the local reward model.
  await page.getByRole('radio', { name: /A local reward model/ }).check();
  await page.getByLabel('Reward model: a Hub repo id or URL').fill(`${files.base}/rm`);
  await page.getByRole('button', { name: 'Load reward model' }).click();
  await expect(page.getByRole('status').filter({ hasText: /Loaded .*reward model/ })).toBeVisible({ timeout: 60_000 });
  await screenshot(page, 'sources-local-models.png');

  await nav(page).getByRole('link', { name: 'Data' }).click();
  const jsonl = PROMPTS.map((p, i) => JSON.stringify({ id: `p${i}`, prompt: p })).join('\n') + '\n';
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('run-plan')).toContainText(`${PROMPTS.length} prompt(s) × 2 source(s) = ${TOTAL} request(s)`);
  await page.getByRole('button', { name: 'Run pipeline' }).click();

  // The first source done and released; reload while the second one loads or generates.
  await expect(page.getByTestId('local-progress').first()).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
  const first = (await localLines(page))[0]!;
  expect(first.generated).toBe(PROMPTS.length * N);
  expect(first.after).toBe(first.baseline);
  await page.reload();
  const before = await readRun<StoredResponse, { key: string }>(page);
  const storedBefore = before.responses.length;
  expect(storedBefore).toBeGreaterThanOrEqual(PROMPTS.length * N);
  expect(storedBefore).toBeLessThan(TOTAL);

  // A reload forgets the chosen folder's files: the Sources page asks for it again, and it is chosen again.
  await nav(page).getByRole('link', { name: 'Sources' }).click();
  const qwen = page.getByRole('group', { name: 'Local source 2: Qwen' });
  await expect(qwen).toContainText('Choose the folder qwen again');
  await page.getByLabel(/^Or a model folder on this computer/).setInputFiles(join(dir, 'qwen'));
  await expect(qwen).not.toContainText('Choose the folder qwen again');
  await expect(page.getByRole('group', { name: /^Local source \d/ })).toHaveCount(2);
  await nav(page).getByRole('link', { name: 'Data' }).click();

  // Resume: only the items not stored are generated.
  await page.getByRole('button', { name: 'Resume run' }).click();
  await expect(page.getByTestId('set-counts')).toContainText(`and ${TOTAL} response(s)`, { timeout: 180_000 });
  const lines = await localLines(page);
  expect(lines.map((l) => l.state)).toEqual(['done', 'done']);
  // The first source had nothing left (not loaded again); the second generated exactly the rest.
  expect(lines[0]!.generated).toBe(0);
  expect(lines[0]!.baseline).toBeNull();
  expect(lines[1]!.generated).toBe(TOTAL - storedBefore);
  expect(lines[1]!.after).toBe(lines[1]!.baseline);
  await screenshot(page, 'data-local-sources.png');

  const after = await readRun<StoredResponse, StoredScore>(page);
  expect(after.responses).toHaveLength(TOTAL);
  expect(new Set(after.responses.map((r) => r.key)).size).toBe(TOTAL);
  // Stored before the reload stays as it was (not generated again).
  const was = new Map(before.responses.map((r) => [r.key, r.content]));
  for (const r of after.responses) if (was.has(r.key)) expect(r.content).toBe(was.get(r.key));
  expect(new Set(after.responses.map((r) => r.sourceName))).toEqual(new Set(['Llama', 'Qwen']));
  // Every answer scored by the local reward model, as `fuse-studio reward` scores the same conversations.
  expect(after.scores).toHaveLength(TOTAL);
  const conversations = after.responses.map((r) => [
    { role: 'user', content: PROMPTS[Number(r.promptId.slice(1))]! },
    { role: 'assistant', content: r.content },
  ]);
  const rewards = await cliRewards(rmModel.dir, conversations, dir);
  const byKey = new Map(after.scores.map((s) => [s.key, s]));
  for (const [k, r] of after.responses.entries()) {
    const s = byKey.get(r.key)!;
    expect(s.judge.method).toBe('reward');
    expect(Math.abs(s.judge.raw - rewards[k]!), `${r.sourceName} ${JSON.stringify(r.content)}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(rewards[k]!)));
  }
  expect(errors).toEqual([]);
});

test('fusion with no API key: the plan (total download, answers to write, the time on this device) shows before it starts; one click sets up two local sources of different families, the local reward judge and the starter prompts', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/sources');
  const ids = ['llama-3.2-1b', 'qwen3-0.6b', 'skywork-reward-v2-qwen3-0.6b', 'smollm2-135m'];
  const total = ids.reduce((s, id) => s + downloadSize(presetById(id)!).bytes, 0);
  await expect(page.getByTestId('nokey-plan')).toContainText(`Total download about ${formatDownload(total)}`);
  await expect(page.getByTestId('nokey-plan')).toContainText(`The sources write ${STARTER.length * 2 * 2} answers`);
  // The time on this device, from the GPU's measured matmul speed, before anything starts.
  const time = page.getByTestId('nokey-time');
  await expect(time).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
  await expect(time).toContainText(/Time on this device: up to about \d+(\.\d)? (s|min|h)/);
  await expect(time).toContainText(/measured on .*GFLOP\/s at 8 rows/);
  expect(Number(await time.getAttribute('data-seconds'))).toBeGreaterThan(0);
  await page.getByRole('button', { name: 'Set up fusion with no API key' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Set up:' })).toContainText('load SmolLM2-135M-Instruct on the Model page');
  const llama = page.getByRole('group', { name: 'Local source 1: Llama-3.2-1B-Instruct' });
  const qwen = page.getByRole('group', { name: 'Local source 2: Qwen3-0.6B' });
  await expect(llama.getByLabel('Model', { exact: true })).toHaveValue('llama-3.2-1b');
  await expect(llama.getByLabel('Temperature')).toHaveValue('0.8');
  await expect(qwen.getByLabel('Model', { exact: true })).toHaveValue('qwen3-0.6b');
  await expect(qwen.getByLabel('Repetition penalty')).toHaveValue('1.05');
  await expect(page.getByRole('radio', { name: /A local reward model/ })).toBeChecked();
  await expect(page.getByLabel('Reward model: a Hub repo id or URL')).toHaveValue('skywork-reward-v2-qwen3-0.6b');
  await screenshot(page, 'sources-no-key-recipe.png');
  // Set up twice: nothing doubles.
  await page.getByRole('button', { name: 'Set up fusion with no API key' }).click();
  await expect(page.getByRole('group', { name: /^Local source \d/ })).toHaveCount(2);
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
  await expect(page.getByTestId('run-plan')).toContainText(`${STARTER.length} prompt(s) × 2 source(s) = ${STARTER.length * 2 * 2} request(s)`);
  expect(errors).toEqual([]);
});
