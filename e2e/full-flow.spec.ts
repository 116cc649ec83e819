import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { unzipSync } from 'fflate';
import { writeDemoModel } from '../src/model/demo-node';
import { startOpenAIMock, type MockOpenAI } from './openai-mock';
import { screenshot, startServe, watchErrors } from './helpers';
import { buildSets, compareAll, importPrompts, loadDemoModel, nav, trainBoth } from './flow-steps';

// The newcomer's path on the demo model, with the studio's defaults and no hand-picking: load the
// model; add a local `fuse-studio serve` (the real CLI, serving a differently seeded demo model) as
// the source; choose a judge; import prompts; run the pipeline; the default normalisation, gap
// windows and rubric must give non-empty SFT and DPO sets; train SFT, then DPO continuing it;
// compare base, SFT and SFT+DPO; export. Walked twice:
//
// 1. with serve's /pooling likelihood reward as the judge (the run-fitted mapping and the σ-unit
//    window are the defaults). Before that, serve is tried as a rubric judge with "Test judge": its
//    demo model is random and writes noise, so the page must show the raw verdict and why no
//    score was read (the empty verdict panel).
// 2. with a rubric judge: a scripted OpenAI-compatible server standing in for a chat model (the demo
//    model cannot judge). It grades by a fixed rule — one point per distinct word of three or more
//    letters in the response, 1 to 10 — and writes each verdict in one of several real models'
//    styles (the default rubric's "Score: N/10", Markdown bold, MT-Bench's [[N]], JSON, a <think>
//    block first). What this proves: the studio's default rubric, verdict parser and judge gap
//    window turn such verdicts into sets; not that a real small model follows the rubric.
//
// The only settings changed from the defaults keep SwiftShader's time down: few tokens per answer,
// a seed (so the run is the same every time), few training steps.

const PROMPTS = ['Say hello.', 'Name a colour.', 'Count to three.', 'Describe the sea.', 'What is rain?', 'Give me a fruit.'];

let serve: ChildProcess | null = null;
let serveURL = '';
let judge: MockOpenAI;
let dir = '';


/** The scripted judge's verdict for a rubric prompt: a fixed grading rule, written in one of several models' styles. */
function scriptedVerdict(rubric: string): string {
  const response = /\[Start of assistant response\]\n([\s\S]*?)\n\[End of assistant response\]/.exec(rubric)?.[1] ?? '';
  const words = new Set(response.toLowerCase().match(/[a-z]{3,}/g) ?? []);
  const n = Math.max(1, Math.min(10, 1 + words.size));
  const styles = [
    `Score: ${n}/10\nReason: The response has ${words.size} recognisable word(s).`,
    `**Score:** ${n}\n\n**Reason:** Judged on the words it uses.`,
    `The assistant's answer was read in full. Rating: [[${n}]]`,
    `{"score": ${n}, "reason": "word count"}`,
    `<think>\nCounting words: ${words.size}. Maybe ${Math.max(1, n - 1)}/10? No: ${n}.\n</think>\n\nScore: ${n}/10\nReason: as counted.`,
  ];
  return styles[response.length % styles.length]!;
}

test.beforeAll(async () => {
  test.setTimeout(180_000);
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-flow-'));
  await writeDemoModel(join(dir, 'source'), { seed: 1 });
  ({ url: serveURL, child: serve } = await startServe(join(dir, 'source'), ['--model-name', 'demo-source', '--date-string', '25 Nov 2026']));
  judge = await startOpenAIMock({ reply: () => 'unused', judge: scriptedVerdict });
});

test.afterAll(async () => {
  serve?.kill('SIGTERM');
  await judge?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The local fuse-studio serve as the source: its preset, the URL, the model from the list; defaults otherwise. */
async function addServeSource(page: Page) {
  await nav(page).getByRole('link', { name: 'Sources' }).click();
  await page.getByRole('button', { name: /^Add fuse-studio serve/ }).click();
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Name', { exact: true }).fill('Local serve');
  await src.getByLabel('Base URL').fill(serveURL);
  await src.getByRole('button', { name: 'List models' }).click();
  await expect(src.getByText('1 model(s) on this server')).toBeVisible({ timeout: 30_000 });
  await src.getByLabel('Model', { exact: true }).fill('demo-source');
  // SwiftShader's time: short answers; a seed so the run is reproducible. Sampling and responses per prompt stay the defaults.
  await src.getByLabel('Max tokens').fill('8');
  await src.getByLabel('Seed').fill('7');
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('status', { name: 'Connection test of Local serve' })).toContainText('Connected', { timeout: 60_000 });
}

test('the newcomer path with serve’s /pooling reward as judge: default sets, SFT, DPO, compare', async ({ page }) => {
  test.setTimeout(1_200_000);
  const errors = watchErrors(page);
  await loadDemoModel(page);
  await addServeSource(page);

  // The setup first: serve as a rubric judge. Its random model writes noise, so "Test judge"
  // must show the reply as it came and why no score was read (the verdict is short: its max tokens).
  await page.getByRole('radio', { name: /A source as rubric judge/ }).check();
  await page.getByLabel('Judge source').selectOption({ label: 'Local serve — demo-source' });
  await page.getByLabel('Judge max tokens').fill('16');
  await page.getByRole('button', { name: 'Test judge' }).click();
  const judgeTest = page.getByRole('status', { name: 'Judge test' });
  await expect(judgeTest.getByTestId('judge-test-result')).toContainText(/^No score read: (the verdict is (empty|only whitespace)|no score in the verdict|the verdict was cut)/, { timeout: 120_000 });
  await expect(judgeTest.getByLabel('Raw verdict')).toBeVisible();
  await screenshot(page, 'flow-judge-test-noise.png');

  // And a run with it, as the issue ran it: no set, and the page says why — the real cause, each
  // verdict as it came — instead of "no score (no judge?)" beside an empty verdict panel.
  await importPrompts(page, PROMPTS);
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(page.getByTestId('set-counts')).toContainText(/^0 SFT row\(s\) and 0 DPO pair\(s\)/, { timeout: 420_000 });
  await expect(page.getByRole('list', { name: 'Warnings' })).toContainText(`the judge answered ${5 * PROMPTS.length} of ${5 * PROMPTS.length} response(s) without a readable score`);
  await expect(page.getByText('dropped: no score could be read from the judge’s verdicts').first()).toBeVisible();
  await page.getByRole('button', { name: `Open prompt: ${PROMPTS[0]}` }).click();
  const first = page.getByTestId('prompt-detail').getByRole('article').first();
  await expect(first.getByText('Judge’s verdict: no score read')).toBeVisible();
  await expect(first.getByLabel('Judge’s verdict, as it came')).toBeVisible();
  await screenshot(page, 'flow-data-unreadable.png');

  // Back on the Sources page for a judge that scores.
  await nav(page).getByRole('link', { name: 'Sources' }).click();

  // The reward model: serve's /pooling, filled from the source; path, score path and mapping are the defaults.
  await page.getByRole('radio', { name: /A reward-model endpoint/ }).check();
  await page.getByRole('group', { name: 'Reward endpoint from a source' }).getByRole('button', { name: 'Local serve' }).click();
  await expect(page.getByLabel('Reward base URL')).toHaveValue(serveURL);
  await page.getByRole('button', { name: 'Test reward model' }).click();
  await expect(judgeTest.getByTestId('judge-test-result')).toContainText(/^Reward: -\d+(\.\d+)? \(its raw reward/, { timeout: 60_000 });

  // The same run again: nothing is asked of the source again, every response is scored by the reward model.
  const counts = await buildSets(page, PROMPTS, true);
  await expect(page.getByTestId('run-status')).toContainText('0 response(s) collected');
  test.info().annotations.push({ type: 'sets (/pooling)', description: counts });
  await screenshot(page, 'flow-data-reward.png');
  await trainBoth(page);
  await compareAll(page);
  expect(errors).toEqual([]);
});

test('the newcomer path with a rubric judge: default rubric, parser and window give sets; SFT, DPO, compare, export', async ({ page }) => {
  test.setTimeout(1_200_000);
  const errors = watchErrors(page);
  await loadDemoModel(page);
  await addServeSource(page);

  await page.getByRole('button', { name: 'Add a custom endpoint' }).click();
  const judgeCard = page.getByRole('region', { name: /^Source 2:/ });
  await judgeCard.getByLabel('Name', { exact: true }).fill('Judge');
  await judgeCard.getByLabel('Base URL').fill(judge.baseURL);
  await judgeCard.getByLabel('Model', { exact: true }).fill('mock-model');
  await judgeCard.getByLabel('Use in the data run').uncheck();
  await page.getByRole('radio', { name: /A source as rubric judge/ }).check();
  await page.getByLabel('Judge source').selectOption({ label: 'Judge — mock-model' });
  await page.getByRole('button', { name: 'Test judge' }).click();
  await expect(page.getByRole('status', { name: 'Judge test' }).getByTestId('judge-test-result')).toContainText(/^Score read: \d+\/10 \(\w+\) → /, {
    timeout: 60_000,
  });
  await screenshot(page, 'flow-sources.png');

  const counts = await buildSets(page, PROMPTS);
  test.info().annotations.push({ type: 'sets (rubric judge)', description: counts });
  // Every verdict style was read: no response is left unscored by an unreadable verdict.
  expect(judge.chats.filter((c) => c.kind === 'judge').length).toBeGreaterThan(0);
  await expect(page.getByText(/without a readable score/)).toHaveCount(0);
  await screenshot(page, 'flow-data.png');
  await trainBoth(page);
  await screenshot(page, 'flow-train.png');
  await compareAll(page);
  await screenshot(page, 'flow-compare.png');

  // ---- Export the SFT+DPO adapter in PEFT format
  await nav(page).getByRole('link', { name: 'Export' }).click();
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
