// The steps of the newcomer's path through the studio, shared by the specs that walk it whole
// (full-flow: remote sources and judges; no-key-flow: local sources and a local reward model).
import { expect, type Page } from '@playwright/test';

export const nav = (page: Page) => page.getByRole('navigation', { name: 'Studio' });

export async function loadDemoModel(page: Page) {
  await page.goto('/model');
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 120_000 });
}

/** Imports the prompts on the Data page. */
export async function importPrompts(page: Page, prompts: readonly string[]) {
  await nav(page).getByRole('link', { name: 'Data' }).click();
  const jsonl = prompts.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n';
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('import-count')).toHaveText(`${prompts.length} prompt(s)`);
  await expect(page.getByRole('alert', { name: 'Long prompts' })).toHaveCount(0);
}

/** Imports the prompts (unless they are) and runs the pipeline; the sets must both be non-empty. Returns the counts line. */
export async function buildSets(page: Page, prompts: readonly string[], imported = false): Promise<string> {
  if (imported) await nav(page).getByRole('link', { name: 'Data' }).click();
  else await importPrompts(page, prompts);
  await page.getByRole('button', { name: /^(Run pipeline|Run again)$/ }).click();
  const counts = page.getByTestId('set-counts');
  await expect(counts).toContainText(/[1-9]\d* SFT row\(s\) and [1-9]\d* DPO pair\(s\)/, { timeout: 420_000 });
  return (await counts.innerText()).trim();
}

/** SFT on the Data page's set, then DPO continuing it; both adapters listed. */
export async function trainBoth(page: Page) {
  await nav(page).getByRole('link', { name: 'Train' }).click();
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
}

/** Base, SFT and SFT+DPO on the same prompt and seed: each answers. */
export async function compareAll(page: Page) {
  await nav(page).getByRole('link', { name: 'Compare' }).click();
  const columns = ['__base__', 'sft', 'sft+dpo'].map((k) => page.getByTestId(`column-${k}`));
  for (const c of columns) await expect(c).toBeVisible();
  await page.getByLabel('Temperature').fill('1');
  await page.getByLabel('Seed').fill('7');
  await page.getByLabel('Max new tokens').fill('8');
  await page.getByRole('button', { name: 'Compare' }).click();
  for (const c of columns) await expect(c.getByTestId('answer-status')).toContainText(/^\d+ tokens · [\d.]+ tokens\/s$/, { timeout: 120_000 });
  const texts = await Promise.all(columns.map(async (c) => (await c.getByTestId('answer').innerText()).trim()));
  for (const t of texts) expect(t.length).toBeGreaterThan(0);
}
