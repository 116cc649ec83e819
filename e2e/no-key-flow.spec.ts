import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { buildSets, compareAll, loadDemoModel, nav, trainBoth } from './flow-steps';
import { readRun, screenshot, watchErrors } from './helpers';
import { serveLocalModels, type LocalModels } from './local-models';

// "Fusion with no API key", offline, start to finish in the tab: the one-click recipe sets up its
// starter prompts, two local sources of different families and the local reward model as the
// judge; the project's generated models stand in for the downloads (a tiny Llama 3 and a tiny
// Qwen3 with their real tokenizers and chat templates, a tiny reward model, the demo model as the
// target), each put in place of the preset's name in the field the recipe filled. Then the usual
// pages: the Data page builds the SFT and DPO sets, SFT then DPO continuing it on the Train page,
// and base / SFT / SFT+DPO answer on the Compare page. No key, no server but the file host.

const STARTER = JSON.parse(readFileSync('src/data/starter-prompts.json', 'utf8')) as { prompt: string }[];
const N = 2;

let models: LocalModels;

test.beforeAll(async () => {
  models = await serveLocalModels(21);
});

test.afterAll(async () => {
  await models?.close();
});

test('fusion with no API key, offline: the one-click recipe with generated models in place of the downloads builds sets, trains SFT then DPO, and compares', async ({ page }) => {
  test.setTimeout(1_200_000);
  const errors = watchErrors(page);
  await loadDemoModel(page);
  await nav(page).getByRole('link', { name: 'Sources' }).click();
  await expect(page.getByTestId('nokey-time')).toHaveAttribute('data-state', 'ready', { timeout: 60_000 });
  await page.getByRole('button', { name: 'Set up fusion with no API key' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Set up:' })).toBeVisible();

  // The generated models in place of the downloads; SwiftShader's time: few tokens per answer.
  for (const [name, path] of [['Llama-3.2-1B-Instruct', 'llama'], ['Qwen3-0.6B', 'qwen']] as const) {
    const card = page.getByRole('group', { name: new RegExp(`^Local source \\d: ${name}$`) });
    await card.getByLabel('Model', { exact: true }).fill(`${models.files.base}/${path}`);
    await card.getByLabel('Responses per prompt (n)').fill(String(N));
    await card.getByLabel('Max new tokens').fill('6');
  }
  await expect(page.getByRole('radio', { name: /A local reward model/ })).toBeChecked();
  await page.getByLabel('Reward model: a Hub repo id or URL').fill(`${models.files.base}/rm`);
  await page.getByRole('button', { name: 'Load reward model' }).click();
  await expect(page.getByRole('status').filter({ hasText: /Loaded .*reward model/ })).toBeVisible({ timeout: 60_000 });

  // The Data page has the starter prompts already; build the sets.
  const counts = await buildSets(page, [], true);
  test.info().annotations.push({ type: 'sets (no API key)', description: counts });
  const run = await readRun<{ sourceName: string }, { judge: { method: string } }>(page);
  expect(run.responses).toHaveLength(STARTER.length * 2 * N);
  expect(new Set(run.responses.map((r) => r.sourceName))).toEqual(new Set(['Llama-3.2-1B-Instruct', 'Qwen3-0.6B']));
  expect(run.scores.every((s) => s.judge.method !== 'judge')).toBe(true);
  await screenshot(page, 'nokey-data.png');

  await trainBoth(page);
  await compareAll(page);
  await screenshot(page, 'nokey-compare.png');
  expect(errors).toEqual([]);
});
