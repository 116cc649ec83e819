import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { writeTinyRewardModel, type TinyRewardModel } from '../src/data/test-reward-model';
import { writeDemoModel } from '../src/model/demo-node';
import { isPlainName, startFileServer, type FileServer } from './file-server';
import { MOCK_MODEL, startOpenAIMock, type MockOpenAI } from './openai-mock';
import { cliRewards, readRun, screenshot, watchErrors } from './helpers';

// A local reward model as the judge, in the browser: the Sources page loads a tiny
// LlamaForSequenceClassification (the real Llama 3 tokenizer and template) over HTTP into the
// engine worker (a causal LM is refused first), the Data page collects answers from a real local
// OpenAI-compatible server and scores them with it on the tab's WebGPU (SwiftShader); the stored
// raw rewards equal what `fuse-studio reward` (Node, Dawn; checked against the float64 reference
// in src/cli/reward.test.ts) gives for the same conversations, each with its run-fitted mapping.

const SEED = 100;
const PROMPTS = ['What is the capital of France?', 'Name three primary colours.', 'Write a haiku about autumn.'];
const N = 2;

let dir = '';
let rmModel: TinyRewardModel;
let files: FileServer;
let base = '';
let mock: MockOpenAI;

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-reward-'));
  // Skywork-like spreads; Llama 3's template (no date line), so the reference needs no clock.
  rmModel = await writeTinyRewardModel(join(dir, 'rm'), { scoreScale: 16, template: 'llama-3' });
  await writeDemoModel(join(dir, 'lm'), { tokenizer: false, vocabSize: 256 });
  // The model folders on 127.0.0.1 with CORS and Range support.
  files = await startFileServer((path) => {
    const m = /^\/(rm|lm)\/(.+)$/.exec(path);
    return m && isPlainName(m[2]!) ? readFile(join(dir, m[1]!, m[2]!)) : undefined;
  });
  base = files.base;
  mock = await startOpenAIMock({ reply: (prompt, seed) => `Answer (sample ${(seed ?? NaN) - SEED}) to: ${prompt}` });
});

test.afterAll(async () => {
  await mock?.close();
  await files?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a local reward model judges in the browser: loaded on the Sources page, rewards of the collected answers equal what fuse-studio reward gives for the same conversations, stored with the run-fitted mapping', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/sources');
  await page.getByRole('button', { name: 'Add vLLM (local)' }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Name', { exact: true }).fill('Mock');
  await src.getByLabel('Base URL').fill(mock.baseURL);
  await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
  await src.getByLabel('Seed').fill(String(SEED));
  await src.getByLabel('Responses per prompt', { exact: true }).fill(String(N));

  // The judge: a causal LM is refused from its config, then the reward model loads.
  await page.getByRole('radio', { name: /A local reward model/ }).check();
  const field = page.getByLabel('Reward model: a Hub repo id or URL');
  const status = page.getByRole('status').filter({ hasText: /reward model|Not loaded|causal/ });
  await field.fill(`${base}/lm`);
  await page.getByRole('button', { name: 'Load reward model' }).click();
  await expect(status).toContainText('is a causal language model (LlamaForCausalLM), not a reward model: scoring needs a *ForSequenceClassification reward model, such as Skywork/Skywork-Reward-V2-Qwen3-0.6B');
  await field.fill(`${base}/rm`);
  await page.getByRole('button', { name: 'Load reward model' }).click();
  await expect(status).toContainText(/Loaded .*: llama reward model, 2 layers, hidden size 32/, { timeout: 60_000 });
  await screenshot(page, 'sources-local-reward.png');

  // Data: import, run; scoring runs in the worker.
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Data' }).click();
  await expect(page.getByText(`local reward model ${base}/rm`)).toBeVisible();
  const jsonl = PROMPTS.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n';
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) });
  await page.getByRole('button', { name: 'Import file' }).click();
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(page.getByTestId('set-counts')).toContainText(`from 3 prompt(s) and ${PROMPTS.length * N} response(s)`, { timeout: 90_000 });

  // The stored scores, read from IndexedDB.
  const rows = await readRun<
    { key: string; promptId: string; content: string },
    { key: string; score: number; judge: { method: string; raw: number; normalize: { kind: string; center: number; scale: number; fit: { n: number } } } }
  >(page);
  expect(rows.responses).toHaveLength(PROMPTS.length * N);
  const byKey = new Map(rows.scores.map((s) => [s.key, s]));
  // The same conversations through the CLI's reward command (the engine on Node's Dawn).
  const conversations = rows.responses.map((r) => [
    { role: 'user', content: PROMPTS.find((p) => r.content.endsWith(p))! },
    { role: 'assistant', content: r.content },
  ]);
  const rewards = await cliRewards(rmModel.dir, conversations, dir);
  expect(rewards).toHaveLength(rows.responses.length);
  for (const [k, r] of rows.responses.entries()) {
    const s = byKey.get(r.key)!;
    const want = rewards[k]!;
    expect(s.judge.method).toBe('reward');
    expect(Math.abs(s.judge.raw - want), `${r.content}: ${s.judge.raw} vs ${want}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
    expect(s.judge.normalize).toMatchObject({ kind: 'sigmoid', fit: { n: PROMPTS.length * N } });
    expect(s.score).toBeCloseTo(1 / (1 + Math.exp(-(s.judge.raw - s.judge.normalize.center) / s.judge.normalize.scale)), 10);
  }
  expect(errors).toEqual([]);
});
