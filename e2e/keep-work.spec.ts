// Nothing is destroyed silently (issue 18): a model load that fails keeps the model loaded before,
// usable, and leaves no empty cache entry (a real model server on 127.0.0.1 answering as a failing
// Hub would: 404, a gated repo's 401 without CORS, a bad config, a truncated file, a download too
// slow to wait for); a new SFT run never overwrites an adapter, even an imported one, and DPO's
// name says what it continues; deleting asks first; a bundle that imports in part says what it
// skipped. Real Chromium, real WebGPU on SwiftShader.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { parseModelConfig, type ModelConfig } from '../src/model/config';
import { demoConfigJson } from '../src/model/demo';
import { writeDemoModel } from '../src/model/demo-node';
import { LORA_TARGETS, targetDims } from '../src/model/lora';
import { exportPeftAdapter } from '../src/train/peft';
import { buildBundle, zipFiles } from '../src/studio/bundle';
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
  await tryIt.getByLabel(/^(Message|Prompt)/).fill('Say something.');
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

// ---------------------------------------------------------------------------------------------
// Adapters

/** A random rank-4 LoRA adapter in PEFT files, for the demo model (or one shaped for `config`). */
function peftAdapter(seed: number, config: ModelConfig = parseModelConfig(JSON.parse(demoConfigJson()))): Map<string, Uint8Array> {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5);
  const layers = Array.from({ length: config.numLayers }, () =>
    Object.fromEntries(
      LORA_TARGETS.map((t) => {
        const [inF, outF] = targetDims(config, t);
        return [t, { a: Float32Array.from({ length: 4 * inF }, rand), b: Float32Array.from({ length: outF * 4 }, rand) }];
      }),
    ),
  );
  return exportPeftAdapter({ rank: 4, alpha: 8, targets: [...LORA_TARGETS], layers }, { baseModel: 'fuse-studio/demo-model' });
}

const SFT_JSONL = [
  { messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi there!' }] },
  { messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] },
]
  .map((r) => JSON.stringify(r))
  .join('\n');

async function go(page: Page, name: string): Promise<void> {
  // In-app navigation: a reload would drop the model from the worker.
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
}

async function setNumber(page: Page, label: RegExp, value: number): Promise<void> {
  const input = page.getByLabel(label);
  await input.fill(String(value));
  await expect(input).toHaveValue(String(value));
}

/** The tiny SFT file and settings, `epochs` epochs of its 2 examples (one a step). */
async function tinySft(page: Page, epochs: number): Promise<void> {
  await page.getByLabel('1. SFT').check();
  await page.getByLabel('A JSONL file').check();
  await page.getByLabel('SFT JSONL file').setInputFiles({ name: 'tiny-sft.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(SFT_JSONL) });
  await setNumber(page, /^Max steps/, 0);
  await setNumber(page, /^Epochs/, epochs);
  await setNumber(page, /^Micro-batch size/, 1);
  await setNumber(page, /^Gradient accumulation steps/, 1);
  await setNumber(page, /^Max length/, 32);
}

/** Starts the SFT run set up; resolves when it has completed. */
async function trainSft(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Start SFT training' }).click();
  await expect(page.getByTestId('run-card').getByRole('heading', { level: 2 })).toContainText('completed', { timeout: 240_000 });
}

test('a new SFT run never overwrites an adapter; DPO names what it continues; removing asks first; a partial bundle import says what it skipped', async ({ page }) => {
  test.setTimeout(600_000);
  const errors = watchErrors(page);
  await modelPage(page);
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toContainText('built-in demo model', { timeout: 90_000 });

  // An adapter imported under the name "sft" (as a bundle or a colleague's upload would bring it).
  await go(page, 'Export');
  const importCard = page.getByRole('region', { name: 'Import a PEFT adapter' });
  await importCard.getByLabel('Adapter name').fill('sft');
  const imported = peftAdapter(1);
  await importCard.getByLabel('Adapter files').setInputFiles([...imported].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })));
  await importCard.getByRole('button', { name: 'Import adapter' }).click();
  await expect(importCard.getByTestId('notice-import-adapter')).toContainText('Imported adapter "sft"');
  // Importing again under the same name is refused, not a silent replacement.
  await importCard.getByLabel('Adapter files').setInputFiles([...peftAdapter(2)].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })));
  await importCard.getByRole('button', { name: 'Import adapter' }).click();
  await expect(importCard.getByRole('alert')).toContainText('An adapter named "sft" is already stored for this model');

  // Two SFT runs: each saves a new adapter; the imported "sft" stays as it was. Before each, the
  // page says how many steps it takes and how long (unknown until this device has been timed).
  await go(page, 'Train');
  await page.getByLabel('1. SFT').check();
  await expect(page.getByTestId('save-as')).toContainText('it is saved as “sft-2”');
  await tinySft(page, 2);
  const estimate = page.getByTestId('train-estimate');
  await expect(estimate.getByTestId('planned-steps')).toHaveText('4 steps');
  await expect(estimate).toContainText('2 examples in batches of 1 × 1 accumulated = 2 steps an epoch, × 2 epochs; sequences padded to');
  await expect(estimate.getByTestId('planned-time')).toContainText('Time: unknown. No run of this model has been timed on this device yet');
  // The step's memory: the default budget until the user states theirs on the Model page; the
  // run then plans with the stated memory (src/train/step-budget.ts, as --gpu-memory).
  const memory = estimate.getByTestId('planned-memory');
  await expect(memory).toContainText(/^Each step (keeps|recomputes) .*: [\d.]+ [KM]iB of GPU memory, within the default budget of [\d.]+ [KM]iB/);
  await go(page, 'Model');
  await page.getByLabel('GPU memory free (GiB, optional)').fill('0.0001');
  await go(page, 'Train');
  await expect(memory).toContainText(/^Each step recomputes the layer activations and the lm_head logits in the backward: [\d.]+ [KM]iB of GPU memory, the leanest step, more than the 104.86 KiB you stated \(keeping more needs more memory\)\.$/);
  await go(page, 'Model');
  await page.getByLabel('GPU memory free (GiB, optional)').fill('4');
  await go(page, 'Train');
  await expect(memory).toHaveText(/^Each step keeps the layer activations and the lm_head logits: [\d.]+ [KM]iB of GPU memory, within the 4.00 GiB you stated\.$/);
  await trainSft(page);
  // The run planned its step with that memory: the worker's trainer says what it kept.
  await expect(page.getByTestId('run-card')).toContainText(/each step keeps the layer activations and the lm_head logits \([\d.]+ [KM]iB, 4.00 GiB stated\)/);
  await expect(page.getByTestId('train-progress')).toContainText('Step 4 of 4');
  await expect(page.getByText('Saved the adapter “sft-2”')).toBeVisible();
  await expect(page.getByTestId('save-as')).toContainText('it is saved as “sft-3”');
  await tinySft(page, 1);
  await expect(estimate.getByTestId('planned-steps')).toHaveText('2 steps');
  // Timed now, from the run just made: about 2 × its step time.
  await expect(estimate.getByTestId('planned-time')).toContainText(/^About \d[^:]* on this device: [\d,]+ padded tokens\/s, measured in the SFT run of .* \(median of 3 steps\)\.$/);
  await estimate.scrollIntoViewIfNeeded();
  await screenshot(page, 'train-estimate.png');
  await trainSft(page);
  await expect(page.getByText('Saved the adapter “sft-3”')).toBeVisible();
  const adapters = page.getByRole('list', { name: 'Adapters' });
  await expect(adapters.getByRole('listitem')).toHaveCount(3);
  await expect(adapters.getByRole('listitem').filter({ hasText: /^sft\b/ }).first()).toContainText('imported');
  await expect(adapters.getByRole('listitem').filter({ hasText: /^sft-2\b/ })).toContainText('SFT, 4 of 4 steps');
  await expect(adapters.getByRole('listitem').filter({ hasText: /^sft-3\b/ })).toContainText('SFT, 2 of 2 steps');

  // DPO continues the newest SFT adapter by default, and its name says so; another can be picked.
  await page.getByLabel('2. DPO').check();
  await expect(page.getByLabel('DPO continues')).toHaveValue('sft-3');
  await expect(page.getByTestId('save-as')).toContainText('Continues the “sft-3” adapter');
  await expect(page.getByTestId('save-as')).toContainText('saved as “sft-3+dpo”');
  await page.getByLabel('DPO continues').selectOption('sft-2');
  await expect(page.getByTestId('save-as')).toContainText('saved as “sft-2+dpo”');
  await screenshot(page, 'train-versioned-adapters.png');

  // The stage chosen survives a reload (the model does not: load it again).
  await page.reload();
  await go(page, 'Model');
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toContainText('built-in demo model', { timeout: 90_000 });
  await go(page, 'Train');
  await expect(page.getByLabel('2. DPO')).toBeChecked();
  await page.getByLabel('1. SFT').check();

  // Discarding a run asks first; Cancel keeps it.
  await page.getByRole('button', { name: 'Discard run' }).click();
  const discard = page.getByRole('dialog', { name: /Discard this SFT run\?/ });
  await expect(discard).toBeVisible();
  await expect(discard).toContainText('The adapter it saved (“sft-3”) stays.');
  await discard.getByRole('button', { name: 'Cancel' }).click();
  await expect(discard).toBeHidden();
  await expect(page.getByTestId('run-card')).toBeVisible();

  // Removing an adapter asks first, naming what continues it.
  await go(page, 'Export');
  const table = page.getByRole('table', { name: 'Stored adapters' });
  await table.getByRole('button', { name: 'Remove sft-2' }).click();
  const remove = page.getByRole('dialog', { name: 'Remove the adapter “sft-2”?' });
  await expect(remove).toContainText('download its PEFT zip first');
  await screenshot(page, 'export-remove-confirm.png');
  await remove.getByRole('button', { name: 'Cancel' }).click();
  await expect(table.getByRole('row').filter({ hasText: 'sft-2' })).toHaveCount(1);
  await table.getByRole('button', { name: 'Remove sft-2' }).click();
  await remove.getByRole('button', { name: 'Remove adapter' }).click();
  await expect(table.getByRole('row').filter({ hasText: 'sft-2' })).toHaveCount(0);
  await expect(table).toContainText('sft-3');

  // A bundle with an adapter that fits, one that clashes by name, and one that does not fit this model.
  const wrongShape = parseModelConfig(JSON.parse(demoConfigJson()));
  wrongShape.hiddenSize *= 2;
  const asFiles = (m: Map<string, Uint8Array>) => Object.fromEntries(m);
  const bundle = zipFiles(
    buildBundle({
      model: null,
      sources: [],
      settings: [],
      dataRun: null,
      adapters: [
        { name: 'sft', note: 'SFT, 3 of 3 steps', createdAt: '', files: asFiles(peftAdapter(3)), parent: null, kind: 'sft' },
        { name: 'sft+dpo', note: 'DPO (ln-dpo) continuing "sft"', createdAt: '', files: asFiles(peftAdapter(4)), parent: 'sft', kind: 'dpo' },
        { name: 'wide', note: 'imported', createdAt: '', files: asFiles(peftAdapter(5, wrongShape)) },
      ],
    }),
  );
  await page.getByLabel('Bundle file').setInputFiles({ name: 'partial.zip', mimeType: 'application/zip', buffer: Buffer.from(bundle) });
  await page.getByRole('button', { name: 'Import bundle' }).click();
  const notice = page.getByTestId('notice-bundle');
  await expect(notice).toContainText('Imported partial.zip: 2 adapter(s).');
  // Not "sft-2": the run that saved the adapter removed above still names it.
  await expect(notice).toContainText('adapter "sft" was stored as "sft-4"');
  await expect(notice).toContainText('adapter "sft+dpo" was stored as "sft-4+dpo"');
  await expect(notice).toContainText('Skipped: adapter "wide" not imported: it does not fit the loaded model');
  await expect(notice).toHaveClass(/notice--warn/);
  await expect(notice).toHaveAttribute('role', 'alert');
  // The child keeps pointing at its own parent, under its new name.
  await expect(table.getByRole('row').filter({ hasText: 'sft-4+dpo' }).getByTestId('lineage')).toHaveText(/continues “sft-4”$/);
  await screenshot(page, 'export-partial-bundle.png');
  expect(errors).toEqual([]);
});
