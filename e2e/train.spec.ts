// The Train page end to end on the built-in demo model (real 128k Llama 3 vocabulary) in real
// Chromium with WebGPU on SwiftShader: SFT from an uploaded JSONL with live charts and checkpoints,
// a reload mid-run and a resume from the last checkpoint (the step numbers continue), the 'sft'
// adapter saved, then DPO continuing it with the reward metrics shown. SwiftShader is slow (one SFT
// step of the demo model takes ~10–16 s), so the runs are tiny: max length 32, batch 1.
import { expect, test, type Page } from '@playwright/test';
import { watchErrors } from './helpers';

const SFT_JSONL = [
  { messages: [{ role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi there!' }] },
  { messages: [{ role: 'user', content: 'What is 2+2?' }, { role: 'assistant', content: 'It is 4.' }] },
  { messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] },
]
  .map((r) => JSON.stringify(r))
  .join('\n');

const DPO_JSONL = [
  { prompt: [{ role: 'user', content: 'Say hi.' }], chosen: [{ role: 'assistant', content: 'Hi there!' }], rejected: [{ role: 'assistant', content: 'No.' }] },
  { prompt: [{ role: 'user', content: 'What is 2+2?' }], chosen: [{ role: 'assistant', content: 'It is 4.' }], rejected: [{ role: 'assistant', content: 'Five.' }] },
]
  .map((r) => JSON.stringify(r))
  .join('\n');


async function loadDemoModel(page: Page): Promise<void> {
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Model' }).click();
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 90_000 });
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name: 'Train' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Train' })).toBeVisible();
}

async function setNumber(page: Page, label: RegExp, value: number): Promise<void> {
  const input = page.getByLabel(label);
  await input.fill(String(value));
  await expect(input).toHaveValue(String(value));
}

async function tinySettings(page: Page, maxSteps: number): Promise<void> {
  await setNumber(page, /^Max steps/, maxSteps);
  await setNumber(page, /^Micro-batch size/, 1);
  await setNumber(page, /^Gradient accumulation steps/, 1);
  await setNumber(page, /^Max length/, 32);
  await setNumber(page, /^Checkpoint every/, 1);
}

/** The losses of the step log table, as shown (4 decimals), in order. */
async function loggedLosses(page: Page): Promise<string[]> {
  return page.getByRole('table', { name: 'Step log' }).locator('tbody tr td:first-of-type').allTextContents();
}

/** The step numbers of the step log table, in order. */
async function loggedSteps(page: Page): Promise<number[]> {
  const cells = await page.getByRole('table', { name: 'Step log' }).locator('tbody th').allTextContents();
  return cells.map(Number);
}

const runHeading = (page: Page) => page.getByTestId('run-card').getByRole('heading', { level: 2 });

test.describe('Train page', () => {
  test('trains SFT with charts, resumes it after a reload from its checkpoint, then DPO continuing it', async ({ page }, testInfo) => {
    test.setTimeout(600_000);
    const errors = watchErrors(page);
    const started = Date.now();
    await page.goto('/train');
    await expect(page.getByTestId('no-model')).toContainText('load one on the Model page');
    await loadDemoModel(page);

    // ---- SFT from an uploaded file, a few steps, a checkpoint every step ----
    await page.getByLabel('A JSONL file').check();
    // A malformed file is refused with its bad lines named.
    await page.getByLabel('SFT JSONL file').setInputFiles({ name: 'bad.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(`${SFT_JSONL}\n{oops\n{"prompt":"x"}\n`) });
    await expect(page.getByRole('alert').filter({ hasText: 'bad.jsonl' })).toContainText('2 malformed SFT records: line 4: invalid JSON');
    await expect(page.getByRole('alert').filter({ hasText: 'bad.jsonl' })).toContainText('line 5:');
    await expect(page.getByRole('button', { name: 'Start SFT training' })).toBeDisabled();
    await page.getByLabel('SFT JSONL file').setInputFiles({ name: 'tiny-sft.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(SFT_JSONL) });
    await expect(page.getByTestId('dataset-status')).toContainText('tiny-sft.jsonl: 3 examples.');
    // The documented defaults are shown with their source.
    await expect(page.getByLabel(/^Learning rate/)).toHaveValue('0.0002');
    await expect(page.getByText('QLoRA Table 9', { exact: false })).toBeAttached();
    await tinySettings(page, 4);
    await page.getByRole('button', { name: 'Start SFT training' }).click();

    const progress = page.getByTestId('train-progress');
    await expect(progress).toContainText('of 4', { timeout: 60_000 });
    const checkpoints = page.getByRole('list', { name: 'Checkpoints' });
    await expect(checkpoints.getByRole('listitem').first()).toBeVisible({ timeout: 120_000 });
    // Charts have points and the loss is shown.
    await expect(page.getByRole('figure', { name: 'Loss chart' }).locator('.recharts-line-dot').first()).toBeAttached();
    await expect(page.getByRole('figure', { name: 'Learning rate chart' }).locator('.recharts-line-dot').first()).toBeAttached();
    await expect(page.getByRole('figure', { name: 'Gradient norm chart' }).locator('.recharts-line-dot').first()).toBeAttached();
    await expect(page.getByTestId('latest-Loss')).toContainText(/\d+\.\d+ at step \d/);
    await expect(progress).toContainText(/Step [1-3] of 4 · ETA \d/);
    await page.screenshot({ path: testInfo.outputPath('train-sft-running.png'), fullPage: true });

    // ---- reload mid-run: the run is shown interrupted; resume continues from its checkpoint ----
    await page.reload();
    const interrupted = page.getByTestId('interrupted');
    await expect(interrupted).toContainText('interrupted at step');
    const match = /last checkpoint is step (\d+)/.exec((await interrupted.textContent()) ?? '');
    expect(match).not.toBeNull();
    const k = Number(match![1]);
    expect(k).toBeGreaterThanOrEqual(1);
    expect(k).toBeLessThan(4);
    await expect(runHeading(page)).toContainText('interrupted');
    // The metrics survived the reload.
    await expect(page.getByRole('figure', { name: 'Loss chart' }).locator('.recharts-line-dot').first()).toBeAttached();
    await expect(page.getByRole('button', { name: `Resume from step ${k}` })).toBeDisabled();

    await loadDemoModel(page);
    await page.getByRole('button', { name: `Resume from step ${k}` }).click();
    await expect(page.getByTestId('train-phase')).toContainText(`Resumed from the checkpoint at step ${k}.`);
    await expect(runHeading(page)).toContainText('completed', { timeout: 240_000 });
    await expect(progress).toContainText('Step 4 of 4');
    // Steps continue from the checkpoint: each step once, none restarted from 1.
    expect(await loggedSteps(page)).toEqual([1, 2, 3, 4]);
    const resumedLosses = await loggedLosses(page);
    await expect(checkpoints).toContainText('step 4');
    const adapters = page.getByRole('list', { name: 'Adapters' });
    await expect(adapters.getByRole('listitem').filter({ hasText: /^sft\b/ })).toContainText('SFT, 4 of 4 steps');
    await page.screenshot({ path: testInfo.outputPath('train-sft.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/train.png', fullPage: true });

    // ---- DPO continuing the SFT adapter ----
    await page.getByLabel('2. DPO').check();
    await expect(page.getByText('Continues the “sft” adapter')).toBeVisible();
    await expect(page.getByLabel(/^DPO beta/)).toHaveValue('10');
    await page.getByLabel('A JSONL file').check();
    await page.getByLabel('DPO JSONL file').setInputFiles({ name: 'tiny-dpo.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(DPO_JSONL) });
    await expect(page.getByTestId('dataset-status')).toContainText('tiny-dpo.jsonl: 2 pairs.');
    await tinySettings(page, 2);
    // No warmup: the first update moves the policy, so the second step's rewards are not all 0.
    await setNumber(page, /^Warmup ratio/, 0);
    await page.getByRole('button', { name: 'Start DPO training' }).click();
    await expect(runHeading(page)).toContainText('DPO run');
    await expect(runHeading(page)).toContainText('completed', { timeout: 300_000 });
    await expect(page.getByRole('figure', { name: 'Rewards chart' }).locator('.recharts-line-dot').first()).toBeAttached();
    await expect(page.getByTestId('latest-Rewards')).toContainText(/chosen -?\d.*rejected -?\d.*margins -?\d/);
    await expect(page.getByTestId('latest-Reward accuracy')).toContainText(/\d/);
    expect(await loggedSteps(page)).toEqual([1, 2]);
    await expect(page.getByTestId('latest-Rewards')).not.toContainText('chosen 0,');
    await expect(adapters.getByRole('listitem').filter({ hasText: 'sft+dpo' })).toContainText('continuing "sft"');
    await page.screenshot({ path: testInfo.outputPath('train-dpo.png'), fullPage: true });
    if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: 'docs/screenshots/train-dpo.png', fullPage: true });

    // ---- the same SFT run uninterrupted (settings kept across the reload), paused and continued once:
    // the same losses as the interrupted and resumed run ----
    await page.getByLabel('1. SFT').check();
    await expect(page.getByLabel(/^Max steps/)).toHaveValue('4');
    await page.getByLabel('A JSONL file').check();
    await page.getByLabel('SFT JSONL file').setInputFiles({ name: 'tiny-sft.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(SFT_JSONL) });
    await page.getByRole('button', { name: 'Start SFT training' }).click();
    await expect(runHeading(page)).toContainText('SFT run');
    await expect(progress).toContainText(/Step [1-3] of 4/, { timeout: 120_000 });
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect(runHeading(page)).toContainText('paused');
    await expect(progress).toContainText('paused after the current step');
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(runHeading(page)).toContainText('completed', { timeout: 240_000 });
    expect(await loggedSteps(page)).toEqual([1, 2, 3, 4]);
    expect(await loggedLosses(page)).toEqual(resumedLosses);
    expect(errors).toEqual([]);
    console.log(`train e2e: ${((Date.now() - started) / 1000).toFixed(0)} s; losses ${resumedLosses.join(', ')}`);
  });
});
