import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import { writeDemoModel } from '../src/model/demo-node';
import { startOpenAIMock, type MockOpenAI } from './openai-mock';
import { watchErrors, screenshot } from './helpers';

// The whole studio flow on the demo model, as a user walks it: load the model; add a local
// `fuse-studio serve` (the real CLI, serving a differently seeded demo model) as the source;
// import prompts; collect, judge, build SFT and DPO sets; train SFT, then DPO from it; compare
// base, SFT and SFT+DPO; export the adapter and check the PEFT files.
//
// The judge is a scripted OpenAI-compatible server: it scores each response from its length
// (8.0–8.4 out of 10), so two different responses of one prompt differ by 0.01–0.04 and the
// recipe's DPO gap window [0.01, 0.1] keeps a pair whenever their lengths differ mod 5.

const CLI = 'bin/fuse-studio.js';
const PROMPTS = ['Say hello.', 'Name a colour.', 'Count to three.', 'Describe the sea.', 'What is rain?'];

let serve: ChildProcess | null = null;
let serveURL = '';
let judge: MockOpenAI;
let dir = '';



/** Starts `fuse-studio serve` on a free port; resolves with its base URL once it listens. */
async function startServe(modelDir: string): Promise<string> {
  if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run `npm run build` before the e2e tests');
  const child = spawn(process.execPath, [CLI, 'serve', '--model', modelDir, '--port', '0', '--model-name', 'demo-source', '--date-string', '25 Nov 2026'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serve = child;
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fuse-studio serve did not start in 120 s:\n${log}`)), 120_000);
    const onData = (b: Buffer) => {
      log += b.toString();
      const m = /serving "[^"]+" at (http:\/\/\S+\/v1)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`fuse-studio serve exited with ${code}:\n${log}`));
    });
  });
}

test.beforeAll(async () => {
  test.setTimeout(180_000);
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-flow-'));
  await writeDemoModel(join(dir, 'source'), { seed: 1 });
  serveURL = await startServe(join(dir, 'source'));
  judge = await startOpenAIMock({
    reply: () => 'unused',
    judge: (rubric) => `Judged.\nScore: ${(8 + (rubric.length % 5) / 10).toFixed(1)}/10`,
  });
});

test.afterAll(async () => {
  serve?.kill('SIGTERM');
  await judge?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the whole flow: model, source, data, SFT, DPO, compare, export', async ({ page }) => {
  test.setTimeout(900_000);
  const errors = watchErrors(page);
  const nav = page.getByRole('navigation', { name: 'Studio' });

  // ---- Model
  await page.goto('/model');
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 120_000 });

  // ---- Sources: the local fuse-studio serve, and the judge (not used for collection)
  await nav.getByRole('link', { name: 'Sources' }).click();
  await page.getByRole('button', { name: /^Add fuse-studio serve/ }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Name', { exact: true }).fill('Local serve');
  await src.getByLabel('Base URL').fill(serveURL);
  await src.getByRole('button', { name: 'List models' }).click();
  await expect(src.getByText('1 model(s) on this server')).toBeVisible({ timeout: 30_000 });
  await src.getByLabel('Model', { exact: true }).fill('demo-source');
  await src.getByLabel('Temperature').fill('1');
  await src.getByLabel('Max tokens').fill('6');
  await src.getByLabel('Seed').fill('7');
  await src.getByLabel('Responses per prompt', { exact: true }).fill('3');
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('status', { name: 'Connection test of Local serve' })).toContainText('Connected', { timeout: 60_000 });

  await page.getByRole('button', { name: 'Add a custom endpoint' }).click();
  const judgeCard = page.getByRole('region', { name: /^Source 2:/ });
  await judgeCard.getByLabel('Name', { exact: true }).fill('Judge');
  await judgeCard.getByLabel('Base URL').fill(judge.baseURL);
  await judgeCard.getByLabel('Model', { exact: true }).fill('mock-model');
  await judgeCard.getByLabel('Use in the data run').uncheck();
  await page.getByRole('radio', { name: /A source as rubric judge/ }).check();
  await page.getByLabel('Judge source').selectOption({ label: 'Judge — mock-model' });

  // ---- Data: import, collect from fuse-studio serve, judge, build
  await nav.getByRole('link', { name: 'Data' }).click();
  const jsonl = PROMPTS.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n';
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('import-count')).toHaveText(`${PROMPTS.length} prompt(s)`);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(page.getByTestId('set-counts')).toContainText(/[1-9]\d* SFT row\(s\) and [1-9]\d* DPO pair\(s\)/, { timeout: 300_000 });
  await screenshot(page, 'flow-data.png');

  // ---- Train: SFT on the Data page's set, then DPO continuing it
  await nav.getByRole('link', { name: 'Train' }).click();
  const runHeading = page.getByTestId('run-card').getByRole('heading', { level: 2 });
  const train = async (stage: 'SFT' | 'DPO', steps: number) => {
    await page.getByLabel(stage === 'SFT' ? '1. SFT' : '2. DPO').check();
    await page.getByRole('radio', { name: new RegExp(`^The Data page’s ${stage} set`) }).check();
    await expect(page.getByRole('radio', { name: new RegExp(`^The Data page’s ${stage} set`) })).toHaveAccessibleName(/\(\d+ records\)/);
    for (const [label, value] of [[/^Max steps/, steps], [/^Micro-batch size/, 1], [/^Gradient accumulation steps/, 1], [/^Max length/, 48], [/^Warmup ratio/, 0]] as const) {
      await page.getByLabel(label).fill(String(value));
      await expect(page.getByLabel(label)).toHaveValue(String(value));
    }
    await page.getByRole('button', { name: `Start ${stage} training` }).click();
    await expect(runHeading).toContainText(`${stage} run`);
    await expect(runHeading).toContainText('completed', { timeout: 300_000 });
    await expect(page.getByTestId('train-progress')).toContainText(`Step ${steps} of ${steps}`);
  };
  await train('SFT', 2);
  await expect(page.getByRole('figure', { name: 'Loss chart' }).locator('.recharts-line-dot').first()).toBeAttached();
  await train('DPO', 2);
  await expect(page.getByRole('figure', { name: 'Rewards chart' }).locator('.recharts-line-dot').first()).toBeAttached();
  const adapters = page.getByRole('list', { name: 'Adapters' });
  await expect(adapters.getByRole('listitem').filter({ hasText: /^sft(?!\+dpo)/ })).toBeVisible();
  await expect(adapters.getByRole('listitem').filter({ hasText: 'sft+dpo' })).toBeVisible();
  await screenshot(page, 'flow-train.png');

  // ---- Compare: base, SFT and SFT+DPO on the same prompt and seed
  await nav.getByRole('link', { name: 'Compare' }).click();
  const columns = ['__base__', 'sft', 'sft+dpo'].map((k) => page.getByTestId(`column-${k}`));
  for (const c of columns) await expect(c).toBeVisible();
  await page.getByLabel('Temperature').fill('1');
  await page.getByLabel('Seed').fill('7');
  await page.getByLabel('Max new tokens').fill('8');
  await page.getByRole('button', { name: 'Compare' }).click();
  for (const c of columns) await expect(c.getByTestId('answer-status')).toContainText(/^\d+ tokens · [\d.]+ tokens\/s$/, { timeout: 120_000 });
  const texts = await Promise.all(columns.map(async (c) => (await c.getByTestId('answer').innerText()).trim()));
  for (const t of texts) expect(t.length).toBeGreaterThan(0);
  await screenshot(page, 'flow-compare.png');

  // ---- Export the SFT+DPO adapter in PEFT format
  await nav.getByRole('link', { name: 'Export' }).click();
  const pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download sft+dpo PEFT adapter' }).click();
  const download = await pending;
  const files = unzipSync(new Uint8Array(await readFile((await download.path())!)));
  const folder = download.suggestedFilename().replace(/\.zip$/, '');
  const cfg = JSON.parse(new TextDecoder().decode(files[`${folder}/adapter_config.json`])) as Record<string, unknown>;
  expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM' });
  const st = files[`${folder}/adapter_model.safetensors`]!;
  const headerLen = Number(new DataView(st.buffer, st.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + headerLen))) as Record<string, { shape: number[] }>;
  const r = cfg.r as number;
  expect(header['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight']?.shape).toEqual([r, 64]);
  expect(header['base_model.model.model.layers.1.mlp.down_proj.lora_B.weight']?.shape).toEqual([64, r]);

  expect(errors).toEqual([]);
});
