// The Model page's presets: every one listed by role with its download size and a verdict against
// this device before anything is downloaded (a local Hub mirror counts every request), a preset too
// large for the stated memory says so and offers one that fits, Meta's gated repo asks for a token,
// and a preset loads from the Hub address the page is given (HF_ENDPOINT-style mirror).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { downloadSize, formatDownload, PRESETS, ROLE_LABELS } from '../src/model/presets';
import { isPlainName, startFileServer, type FileServer } from './file-server';
import { screenshot, watchErrors } from './helpers';

let server: FileServer;
let hub: string;
let modelDir: string;
let requests: string[] = [];
// The mirror serves a tiny model under SmolLM2-135M-Instruct's repo path, as a Hub mirror would serve the real one.
const MIRRORED = '/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/';

test.beforeAll(async () => {
  modelDir = await mkdtemp(join(tmpdir(), 'fuse-e2e-presets-'));
  await writeDemoModel(modelDir, { tokenizer: false, vocabSize: 256 });
  server = await startFileServer((path) => {
    const name = path.startsWith(MIRRORED) ? path.slice(MIRRORED.length) : '';
    return isPlainName(name) ? readFile(join(modelDir, name)) : undefined;
  });
  hub = server.base;
  requests = server.requests;
});

test.afterAll(async () => {
  await server?.close();
  if (modelDir) await rm(modelDir, { recursive: true, force: true });
});

const card = (page: Page, name: string) => page.getByRole('listitem', { name, exact: true });

async function open(page: Page): Promise<void> {
  await page.goto('/model');
  await expect(page.getByRole('heading', { level: 2, name: 'Presets: no token needed' })).toBeVisible();
  // The verdicts use the worker's adapter limits once it reports them.
  await expect(page.getByTestId('device-line')).toContainText('GPU:', { timeout: 60_000 });
}

async function useMirror(page: Page): Promise<void> {
  const field = page.getByLabel('Download from (Hub address)');
  await field.fill(hub);
  await field.press('Enter');
  await expect(page.locator('#hub-hint')).toContainText(`download from ${hub}`);
}

test.describe('Model page presets', () => {
  test('lists every preset by role with its download size and a verdict, downloading nothing', async ({ page }) => {
    const errors = watchErrors(page);
    await page.setViewportSize({ width: 1366, height: 860 });
    requests.length = 0;
    await open(page);
    await useMirror(page);
    for (const role of ['target', 'source', 'reward'] as const) {
      const group = page.getByRole('list', { name: ROLE_LABELS[role] });
      await expect(group.getByRole('listitem')).toHaveCount(PRESETS.filter((p) => p.role === role).length);
    }
    for (const p of PRESETS) {
      const c = card(page, p.name);
      await expect(c).toBeVisible();
      await expect(c.getByTestId('preset-size')).toHaveText(`≈ ${formatDownload(downloadSize(p).bytes)}`);
      await expect(c.getByTestId('preset-needs')).toHaveText(/^\d+(\.\d+)? (MiB|GiB)$/);
      await expect(c.getByTestId('preset-verdict')).toHaveText(/^(Fits this device’s buffer limits\.|Does not fit: )/);
      await expect(c).toContainText('No token needed');
    }
    // The real sizes people see: SmolLM2-135M is a few hundred MB, the 3B Llama several GB.
    await expect(card(page, 'SmolLM2-135M-Instruct').getByTestId('preset-size')).toHaveText(/^≈ 2\d\d MB$/);
    await expect(card(page, 'Llama-3.2-3B-Instruct').getByTestId('preset-size')).toHaveText(/^≈ 6\.\d GB$/);
    expect(requests, 'listing presets downloads nothing').toEqual([]);
    expect(errors).toEqual([]);
    await screenshot(page, 'model-presets.png');
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(card(page, 'Qwen3-0.6B')).toBeVisible();
    await screenshot(page, 'model-presets-mobile.png');
  });

  test('a preset too large for the stated GPU memory says so before any download, and its button names one that fits', async ({ page }) => {
    const errors = watchErrors(page);
    requests.length = 0;
    await open(page);
    await useMirror(page);
    await page.getByLabel('GPU memory free (GiB, optional)').fill('3');
    const llama3b = card(page, 'Llama-3.2-3B-Instruct');
    // By default the 3B is planned with the most precise weights that fit: int4 here (issue 14).
    await expect(llama3b.getByTestId('preset-weights-reason')).toContainText('Default int4');
    await expect(llama3b.getByTestId('preset-verdict')).toContainText('Fits');
    // In bf16 it does not fit.
    await llama3b.getByTestId('preset-weights').locator('summary').click();
    await llama3b.getByTestId('preset-weights').getByLabel(/^bf16/).check();
    await expect(llama3b.getByTestId('preset-verdict')).toContainText(/Does not fit: a training step needs \d+\.\d\d GiB, more than the 3\.00 GiB you said this GPU has/);
    const instead = llama3b.getByRole('button', { name: /^Load .+ instead \(fits\)$/ });
    await expect(instead).toBeVisible();
    const name = /^Load (.+) instead \(fits\)$/.exec((await instead.textContent()) ?? '')![1]!;
    // The one it names fits the same device, and is a target like the 3B.
    await expect(page.getByRole('list', { name: ROLE_LABELS.target }).getByRole('listitem', { name, exact: true }).getByTestId('preset-verdict')).toHaveText(/^Fits: a training step/);
    await expect(llama3b.getByTestId('preset-alternatives')).toContainText(name);
    await expect(llama3b.getByRole('button', { name: 'Load Llama-3.2-3B-Instruct anyway' })).toBeVisible();
    // A reward model is checked for scoring, and a small one still fits.
    await expect(card(page, 'Skywork-Reward-V2-Llama-3.2-3B').getByTestId('preset-verdict')).toContainText('Does not fit: scoring (2 × 2,048 tokens) needs');
    await expect(card(page, 'Skywork-Reward-V2-Qwen3-0.6B').getByTestId('preset-verdict')).toContainText('Fits: scoring');
    // Everything above came from config.json fields in the page: not one request reached the Hub.
    expect(requests).toEqual([]);
    expect(errors).toEqual([]);
    await screenshot(page, 'model-presets-too-large.png');
    // The stated memory outlives a reload (it is also the training step's budget), until cleared.
    await page.reload();
    await expect(page.getByLabel('GPU memory free (GiB, optional)')).toHaveValue('3');
    await page.getByLabel('GPU memory free (GiB, optional)').fill('');
    await page.reload();
    await expect(page.getByLabel('GPU memory free (GiB, optional)')).toHaveValue('');
  });

  test('Meta’s gated repo asks for a token; a preset loads from the Hub address given', async ({ page }) => {
    const errors = watchErrors(page);
    requests.length = 0;
    await open(page);
    const llama1b = card(page, 'Llama-3.2-1B-Instruct');
    await expect(llama1b).toContainText('unsloth/Llama-3.2-1B-Instruct (mirror, no token)');
    await expect(llama1b.getByLabel('Hugging Face token for meta-llama/Llama-3.2-1B-Instruct')).toHaveCount(0);
    await llama1b.getByRole('radio', { name: /meta-llama\/Llama-3\.2-1B-Instruct \(official, gated\)/ }).check();
    await expect(llama1b).toContainText('Gated: token');
    const load = llama1b.getByRole('button', { name: 'Load Llama-3.2-1B-Instruct from meta-llama/Llama-3.2-1B-Instruct' });
    await expect(load).toBeDisabled();
    await llama1b.getByLabel('Hugging Face token for meta-llama/Llama-3.2-1B-Instruct').fill('hf_test');
    await expect(load).toBeEnabled();
    await llama1b.getByRole('radio', { name: /unsloth\/Llama-3\.2-1B-Instruct/ }).check();
    await expect(llama1b.getByRole('button', { name: 'Load Llama-3.2-1B-Instruct from unsloth/Llama-3.2-1B-Instruct' })).toBeEnabled();
    expect(requests).toEqual([]);

    await useMirror(page);
    await card(page, 'SmolLM2-135M-Instruct').getByRole('button', { name: 'Load SmolLM2-135M-Instruct from HuggingFaceTB/SmolLM2-135M-Instruct' }).click();
    await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('region', { name: 'Model card' })).toContainText('hf://HuggingFaceTB/SmolLM2-135M-Instruct@main');
    // Every request went to the preset's repo path on the mirror, the weights once.
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) expect(r).toMatch(/^(GET|HEAD) \/HuggingFaceTB\/SmolLM2-135M-Instruct\/resolve\/main\//);
    expect(requests.filter((r) => r === `GET ${MIRRORED}model.safetensors`)).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});
