// Compare and Export on the built studio with the demo model: an adapter made here in Node
// (random, nonzero, PEFT format) is imported through the Export page, compared side by side with
// the base model and in a blind A/B vote, exported again as a PEFT zip and in a project bundle
// (which must not carry the API key of a configured source).

import { readFile } from 'node:fs/promises';
import { expect, test, type Download, type Page } from '@playwright/test';
import { unzipSync } from 'fflate';
import { parseModelConfig } from '../src/model/config';
import { demoConfigJson } from '../src/model/demo';
import { LORA_TARGETS, targetDims } from '../src/model/lora';
import { exportPeftAdapter, type HostAdapter } from '../src/train/peft';
import { watchErrors } from './helpers';

const RANK = 4;
const API_KEY = 'sk-e2e-secret-key-0123456789';
const REWARD_KEY = 'rm-e2e-reward-key-9876543210';

/** A random rank-4 LoRA adapter for the demo model, large enough to change what it says. */
function demoAdapter(): Map<string, Uint8Array> {
  const config = parseModelConfig(JSON.parse(demoConfigJson()));
  let s = 12345;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const fill = (n: number) => Float32Array.from({ length: n }, rand);
  const host: HostAdapter = {
    rank: RANK,
    alpha: 2 * RANK,
    targets: [...LORA_TARGETS],
    layers: Array.from({ length: config.numLayers }, () =>
      Object.fromEntries(
        LORA_TARGETS.map((t) => {
          const [inF, outF] = targetDims(config, t);
          return [t, { a: fill(RANK * inF), b: fill(outF * RANK) }];
        }),
      ),
    ),
  };
  return exportPeftAdapter(host, { baseModel: 'fuse-studio/demo-model' });
}


async function go(page: Page, name: string): Promise<void> {
  // In-app navigation: a reload would drop the model from the worker.
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
}

async function unzipDownload(d: Download): Promise<Map<string, Uint8Array>> {
  const path = await d.path();
  return new Map(Object.entries(unzipSync(new Uint8Array(await readFile(path)))));
}

function safetensorsHeader(bytes: Uint8Array): Record<string, { dtype: string; shape: number[] }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; shape: number[] }>;
  delete h.__metadata__;
  return h;
}

/** Puts a source with an API key and a judge with a reward key into the studio's IndexedDB. */
async function addSecretSource(page: Page): Promise<void> {
  await page.evaluate(
    async ({ apiKey, rewardKey }) => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        // Dexie's version(1) is IndexedDB version 10.
        const req = indexedDB.open('fuse-studio-studio', 10);
        req.onupgradeneeded = () => {
          const d = req.result;
          if (!d.objectStoreNames.contains('sources')) d.createObjectStore('sources', { keyPath: 'id' }).createIndex('createdAt', 'createdAt');
          if (!d.objectStoreNames.contains('settings')) d.createObjectStore('settings', { keyPath: 'key' });
          if (!d.objectStoreNames.contains('dataRuns')) d.createObjectStore('dataRuns', { keyPath: 'runId' });
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const tx = db.transaction(['sources', 'settings'], 'readwrite');
      tx.objectStore('sources').put({
        id: 'e2e-source',
        name: 'OpenRouter (e2e)',
        baseURL: 'https://openrouter.ai/api/v1',
        apiKey,
        model: 'meta-llama/llama-3.1-70b-instruct',
        temperature: 0.8,
        top_p: 0.95,
        max_tokens: 1024,
        n: 5,
        concurrency: 4,
        headers: { Authorization: `Bearer ${apiKey}` },
        presetId: 'openrouter',
        enabled: true,
        createdAt: new Date().toISOString(),
      });
      tx.objectStore('settings').put({ key: 'judge', value: { kind: 'reward', reward: { baseURL: 'http://127.0.0.1:9', apiKey: rewardKey, model: 'armo' } } });
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
      db.close();
    },
    { apiKey: API_KEY, rewardKey: REWARD_KEY },
  );
}

const SFT_JSONL = [
  { messages: [{ role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: '4' }] },
  { messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] },
].map((r) => JSON.stringify(r)).join('\n') + '\n';
const DPO_JSONL = JSON.stringify({ prompt: [{ role: 'user', content: 'Say hi.' }], chosen: [{ role: 'assistant', content: 'Hi!' }], rejected: [{ role: 'assistant', content: 'No.' }] }) + '\n';

/** Writes built sets into the Data page's run (the page must have opened its run first). */
async function addDatasets(page: Page): Promise<void> {
  await page.waitForFunction(async () => Boolean(localStorage.getItem('fuse-studio.dataRun')) && (await indexedDB.databases()).some((d) => d.name === 'fuse-studio-collect'));
  await page.evaluate(
    async ({ sft, dpo }) => {
      const runId = localStorage.getItem('fuse-studio.dataRun')!;
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open('fuse-studio-collect');
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      const tx = db.transaction('artifacts', 'readwrite');
      const at = new Date().toISOString();
      for (const [name, text] of [['sft.jsonl', sft], ['dpo.jsonl', dpo], ['report.json', '{"counts":{"sft":2,"dpo":1}}\n']])
        tx.objectStore('artifacts').put({ runId, name, text, updatedAt: at });
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
      db.close();
    },
    { sft: SFT_JSONL, dpo: DPO_JSONL },
  );
}

test('compare base and an imported adapter, vote blind, export the adapter and a keyless bundle', async ({ page }) => {
  test.setTimeout(240_000);
  const errors = watchErrors(page);
  await page.goto('/model');
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 90_000 });

  // Import: first a bad adapter (a clear error), then the real one under the name "sft".
  await go(page, 'Export');
  const importCard = page.getByRole('region', { name: 'Import a PEFT adapter' });
  const adapter = demoAdapter();
  const badConfig = JSON.parse(new TextDecoder().decode(adapter.get('adapter_config.json'))) as Record<string, unknown>;
  badConfig.use_dora = true;
  await importCard.getByLabel('Adapter name').fill('sft');
  await importCard.getByLabel('Adapter files').setInputFiles([
    { name: 'adapter_config.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(badConfig)) },
    { name: 'adapter_model.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from(adapter.get('adapter_model.safetensors')!) },
  ]);
  await importCard.getByRole('button', { name: 'Import adapter' }).click();
  await expect(importCard.getByRole('alert')).toContainText(/not imported: .*use_dora/);
  await importCard.getByLabel('Adapter files').setInputFiles(
    [...adapter].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })),
  );
  await importCard.getByRole('button', { name: 'Import adapter' }).click();
  await expect(importCard.getByTestId('notice-import-adapter')).toContainText(`Imported adapter "sft" (rank ${RANK}`);
  await expect(page.getByRole('table', { name: 'Stored adapters' })).toContainText('sft');

  // Side by side: base and SFT, same sampling and seed, 12 tokens, streamed one after the other.
  // (The demo model is random: greedy decoding may repeat one whitespace token, so sample.)
  await go(page, 'Compare');
  const base = page.getByTestId(`column-__base__`);
  const sft = page.getByTestId('column-sft');
  await expect(base).toBeVisible();
  await expect(sft).toBeVisible();
  await page.getByLabel('Temperature').fill('1');
  await page.getByLabel('Seed').fill('7');
  await page.getByLabel('Max new tokens').fill('12');
  await page.getByRole('button', { name: 'Compare' }).click();
  await expect(page.getByTestId('compare-running')).toContainText('Running: Base');
  await expect(base.getByTestId('answer-status')).toContainText(/Generating… \d+ tokens/, { timeout: 60_000 });
  await expect(sft.getByTestId('answer-status')).toContainText('Waiting for the GPU');
  await expect(base.getByTestId('answer-status')).toContainText(/^\d+ tokens · [\d.]+ tokens\/s$/, { timeout: 60_000 });
  await expect(sft.getByTestId('answer-status')).toContainText(/^\d+ tokens · [\d.]+ tokens\/s$/, { timeout: 60_000 });
  const baseText = (await base.getByTestId('answer').innerText()).trim();
  const sftText = (await sft.getByTestId('answer').innerText()).trim();
  expect(baseText.length).toBeGreaterThan(0);
  expect(sftText.length).toBeGreaterThan(0);
  expect(sftText).not.toBe(baseText);
  await page.screenshot({ path: test.info().outputPath('compare.png'), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/compare.png', fullPage: true });

  // Stop: ends the running answer and skips the queued one.
  await page.getByLabel('Max new tokens').fill('400');
  await page.getByRole('button', { name: 'Compare' }).click();
  await expect(base.getByTestId('answer-status')).toContainText(/Generating… [1-9]\d* tokens/, { timeout: 60_000 });
  await page.getByRole('button', { name: 'Stop', exact: true }).first().click();
  await expect(base.getByTestId('answer-status')).toContainText(/Stopped after \d+ tokens/);
  await expect(sft.getByTestId('answer-status')).toHaveText('Stopped');
  await expect(page.getByRole('button', { name: 'Compare' })).toBeEnabled();

  // Blind A/B: two rounds, then the tally.
  const blind = page.getByRole('region', { name: 'Blind A/B vote' });
  await expect(blind.getByLabel('First model')).toHaveValue('__base__');
  await expect(blind.getByLabel('Second model')).toHaveValue('sft');
  await page.getByLabel('Max new tokens').fill('6');
  for (const choice of ['A is better', 'Tie']) {
    await blind.getByRole('button', { name: 'Start round' }).click();
    await expect(blind.getByRole('button', { name: choice })).toBeEnabled({ timeout: 60_000 });
    await blind.getByRole('button', { name: choice }).click();
    await expect(blind.getByTestId('last-vote')).toContainText('Vote recorded');
  }
  await expect(blind.getByTestId('vote-count')).toHaveText('2 votes');
  await blind.getByRole('button', { name: 'Reveal tally' }).click();
  const tallyTable = blind.getByRole('table', { name: 'Blind tally' });
  const rows = tallyTable.locator('tbody tr');
  await expect(rows).toHaveCount(2);
  const cells = async (name: string) => (await tallyTable.locator('tbody tr').filter({ has: page.getByRole('rowheader', { name, exact: true }) }).locator('td').allInnerTexts()).map((t) => t.trim());
  const b = await cells('Base');
  const s = await cells('SFT');
  // wins, losses, ties, rounds: one decided round and one tie.
  expect(b[3]).toBe('2');
  expect(s[3]).toBe('2');
  expect(b[2]).toBe('1');
  expect(s[2]).toBe('1');
  expect(Number(b[0]) + Number(s[0])).toBe(1);
  expect(Number(b[1]) + Number(s[1])).toBe(1);
  await expect(blind.getByTestId('last-vote')).toContainText(/A was (Base|SFT), B was (Base|SFT)/);
  await page.screenshot({ path: test.info().outputPath('compare-blind.png'), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/compare-blind.png', fullPage: true });

  // Export the PEFT adapter and check its files.
  const config = parseModelConfig(JSON.parse(demoConfigJson()));
  await go(page, 'Export');
  let pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download sft PEFT adapter' }).click();
  let download = await pending;
  expect(download.suggestedFilename()).toBe('sft-peft.zip');
  const peft = await unzipDownload(download);
  const cfg = JSON.parse(new TextDecoder().decode(peft.get('sft-peft/adapter_config.json'))) as Record<string, unknown>;
  expect(cfg).toMatchObject({ peft_type: 'LORA', r: RANK, lora_alpha: 2 * RANK, task_type: 'CAUSAL_LM', target_modules: [...LORA_TARGETS] });
  // The demo model is not from the Hub: its name is unknown, the page warns, the zip says what to fill in.
  expect(cfg.base_model_name_or_path).toBe('');
  await expect(page.getByTestId('base-model-status')).toContainText('did not come from the Hugging Face Hub');
  await expect(page.getByTestId('notice-adapters')).toContainText('base_model_name_or_path is empty');
  expect(new TextDecoder().decode(peft.get('sft-peft/README.md'))).toContain('base_model_name_or_path is empty');
  const header = safetensorsHeader(peft.get('sft-peft/adapter_model.safetensors')!);
  expect(Object.keys(header)).toHaveLength(config.numLayers * LORA_TARGETS.length * 2);
  for (let i = 0; i < config.numLayers; i++)
    for (const t of LORA_TARGETS) {
      const block = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(t) ? 'self_attn' : 'mlp';
      const [inF, outF] = targetDims(config, t);
      expect(header[`base_model.model.model.layers.${i}.${block}.${t}.lora_A.weight`]?.shape).toEqual([RANK, inF]);
      expect(header[`base_model.model.model.layers.${i}.${block}.${t}.lora_B.weight`]?.shape).toEqual([outF, RANK]);
    }

  // Named by the user: written as it is, and the warning goes.
  await page.getByLabel('Base model name (written as base_model_name_or_path)').fill('fuse-studio/demo-model');
  await expect(page.getByTestId('base-model-status')).toHaveCount(0);
  pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download sft PEFT adapter' }).click();
  const named = await unzipDownload(await pending);
  expect(JSON.parse(new TextDecoder().decode(named.get('sft-peft/adapter_config.json'))).base_model_name_or_path).toBe('fuse-studio/demo-model');
  expect(named.has('sft-peft/README.md')).toBe(false);

  // The merged model: a bf16 checkpoint folder with the tokenizer.
  pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download sft merged model' }).click();
  download = await pending;
  const merged = await unzipDownload(download);
  const folder = download.suggestedFilename().replace(/\.zip$/, '');
  expect(folder).toBe('fuse-studio-demo-model-sft-merged');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) expect(merged.has(`${folder}/${f}`), f).toBe(true);
  const mergedHeader = safetensorsHeader(merged.get(`${folder}/model.safetensors`)!);
  expect(mergedHeader['model.layers.0.self_attn.q_proj.weight']).toMatchObject({ dtype: 'BF16', shape: [config.numHeads * config.headDim, config.hiddenSize] });

  // Datasets and the recipe, from the Data page's run.
  await go(page, 'Data');
  await addDatasets(page);
  await go(page, 'Export');
  await expect(page.getByRole('region', { name: 'Datasets and scale-out recipe' })).toContainText('sft.jsonl');
  pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Datasets (.zip)' }).click();
  const datasets = await unzipDownload(await pending);
  expect(new TextDecoder().decode(datasets.get('fuse-datasets/sft.jsonl'))).toBe(SFT_JSONL);
  expect(datasets.has('fuse-datasets/dpo.jsonl')).toBe(true);
  pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Scale-out recipe (.zip)' }).click();
  const recipe = await unzipDownload(await pending);
  for (const f of ['recipe.json', 'README.md', 'trl/train.py', 'llamafactory/sft.yaml', 'data/sft.jsonl', 'data/dpo.jsonl']) expect(recipe.has(`fuse-recipe/${f}`), f).toBe(true);
  expect(JSON.stringify(JSON.parse(new TextDecoder().decode(recipe.get('fuse-recipe/recipe.json'))))).toContain('fuse-studio/demo-model');

  // A project bundle: the source's API key and the judge's key must not be in it.
  await addSecretSource(page);
  pending = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download project bundle' }).click();
  download = await pending;
  expect(download.suggestedFilename()).toBe('fuse-project.zip');
  const bundleBytes = await readFile(await download.path());
  const bundle = await unzipDownload(download);
  expect([...bundle.keys()].sort()).toEqual(expect.arrayContaining(['project.json', 'datasets/sft.jsonl', 'datasets/dpo.jsonl', 'adapters/sft/adapter_config.json', 'adapters/sft/adapter_model.safetensors']));
  for (const [path, bytes] of bundle) {
    const text = Buffer.from(bytes).toString('latin1');
    expect(text.includes(API_KEY), path).toBe(false);
    expect(text.includes(REWARD_KEY), path).toBe(false);
  }
  const project = JSON.parse(new TextDecoder().decode(bundle.get('project.json'))) as { sources: { id: string; apiKey: string }[]; model: { key: string } };
  expect(project.model.key).toBe('demo');
  expect(project.sources.find((x) => x.id === 'e2e-source')?.apiKey).toBe('');
  await expect(page.getByTestId('notice-bundle')).toContainText('1 adapter(s)');

  // Importing the bundle restores the adapter and the source (without its key).
  await page.getByLabel('Bundle file').setInputFiles({ name: 'fuse-project.zip', mimeType: 'application/zip', buffer: bundleBytes });
  await page.getByRole('button', { name: 'Import bundle' }).click();
  await expect(page.getByTestId('notice-bundle')).toContainText(/Imported fuse-project\.zip: 1 source\(s\), 3 dataset file\(s\), 1 adapter\(s\)/);
  await page.screenshot({ path: test.info().outputPath('export.png'), fullPage: true });
  if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/export.png', fullPage: true });
  expect(errors).toEqual([]);
});
