// The newcomer's guide, in real Chromium with WebGPU on SwiftShader: the first page (what the
// studio does, what this device runs, where to start: a real small model from a Hub mirror, or
// the demo with its warning), the step bar's states and "next" action walking the whole recipe
// (against a local OpenAI-compatible server as source and judge), Try it as a chat through the
// model's template, the Data page's selected prompt brought into view and its pressed toggles,
// chart ticks that differ, and every page at a laptop's and a phone's size (no sideways scroll).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { downloadSize, formatDownload, presetById } from '../src/model/presets';
import { isPlainName, startFileServer, type FileServer } from './file-server';
import { screenshot, watchErrors } from './helpers';
import { MOCK_MODEL, startOpenAIMock, type MockOpenAI } from './openai-mock';

const SEED = 100;
const PROMPTS = [
  'What is the capital of France?',
  'Name three primary colours.',
  'Write a haiku about autumn.',
  'Explain what a noun is.',
  'Give one tip for sleeping well.',
  'Why is the sky blue?',
];

let mock: MockOpenAI;
let hubServer: FileServer;
let hub: string;
let modelDir: string;
// The mirror serves a tiny model under SmolLM2-135M-Instruct's repo path, as a Hub mirror serves the real one.
const MIRRORED = '/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/';

test.beforeAll(async () => {
  mock = await startOpenAIMock({
    delayMs: 50,
    reply: (prompt, seed) => `Answer (sample ${(seed ?? NaN) - SEED}) to: ${prompt}`,
    // Sample 0 rates 9/10, sample 1 rates 7/10: one source's best and worst make a DPO pair.
    judge: (rubric) => (/\(sample 0\)/.test(rubric) ? 'Score: 9/10\nClear and correct.' : 'Score: 7/10\nFine, a little thin.'),
  });
  modelDir = await mkdtemp(join(tmpdir(), 'fuse-e2e-guide-'));
  await writeDemoModel(modelDir, { tokenizer: false, vocabSize: 256 });
  hubServer = await startFileServer((path) => {
    const name = path.startsWith(MIRRORED) ? path.slice(MIRRORED.length) : '';
    return isPlainName(name) ? readFile(join(modelDir, name)) : undefined;
  });
  hub = hubServer.base;
});

test.afterAll(async () => {
  await mock?.close();
  await hubServer?.close();
  if (modelDir) await rm(modelDir, { recursive: true, force: true });
});

const nav = (page: Page) => page.getByRole('navigation', { name: 'Studio' });
const step = (page: Page, id: string) => nav(page).locator(`li[data-step="${id}"]`);
const next = (page: Page) => page.getByRole('region', { name: 'Next step' });

async function expectStates(page: Page, states: Record<string, string>): Promise<void> {
  for (const [id, state] of Object.entries(states)) await expect(step(page, id), id).toHaveAttribute('data-state', state);
}

/** In-app navigation (a reload would drop the model from the worker). */
async function go(page: Page, link: string, heading: string): Promise<void> {
  if (link === 'Fuse Studio') await page.getByRole('link', { name: 'Fuse Studio', exact: true }).click();
  else await nav(page).getByRole('link', { name: link, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: heading, exact: true })).toBeVisible();
}

async function setNumber(scope: Page | Locator, label: RegExp | string, value: number): Promise<void> {
  const input = scope.getByLabel(label);
  await input.fill(String(value));
  await expect(input).toHaveValue(String(value));
}

test('the first page: what the studio does, what this device can run, and a start on the demo that says it writes noise', async ({ page }) => {
  test.setTimeout(240_000);
  const errors = watchErrors(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Make a small model better, in this tab' })).toBeVisible();
  const how = page.getByRole('region', { name: 'How it works' });
  for (const word of ['Model.', 'Sources.', 'Data.', 'Train.', 'SFT', 'DPO', 'LoRA', 'FuseChat-3.0']) await expect(how).toContainText(word);

  // Nothing done yet: every step to do, the next action loads a model.
  await expectStates(page, { model: 'todo', sources: 'todo', data: 'todo', train: 'todo', evaluate: 'todo', compare: 'todo', export: 'todo' });
  await expect(nav(page).getByRole('link', { name: 'Model', exact: true })).toHaveAccessibleDescription('Step 1, to do: no model loaded');
  await expect(nav(page).getByRole('link', { name: 'Evaluate', exact: true })).toHaveAccessibleDescription('Step 5, to do: needs a trained adapter');
  await expect(page.getByTestId('loaded-model')).toHaveText('No model loaded');
  await expect(next(page).getByRole('link', { name: 'Load a model →' })).toHaveAttribute('href', '/model');

  // What this device can run: the worker's adapter, and every preset's plan against its limits.
  await expect(page.getByTestId('home-device')).toContainText('GPU:', { timeout: 60_000 });
  const fits = page.getByRole('table', { name: 'Models on this device' });
  const row = (id: string) => fits.locator(`tr[data-preset="${id}"]`);
  await expect(row('smollm2-135m').getByTestId('fit-verdict')).toHaveText('fits');
  for (const v of await fits.getByTestId('fit-verdict').allTextContents()) expect(v).toMatch(/^(fits|does not fit.+)$/);
  // The verdicts are the memory plan's: with 3 GiB stated (on the Model page), the 3B no longer fits, and the page says why.
  await go(page, 'Model', 'Model');
  await page.getByLabel('GPU memory free (GiB, optional)').fill('3');
  await go(page, 'Fuse Studio', 'Make a small model better, in this tab');
  await expect(page.getByTestId('home-device')).toContainText('3 GiB of GPU memory stated');
  await expect(row('llama-3.2-3b').getByTestId('fit-verdict')).toContainText(/does not fit.*a training step needs \d+\.\d\d GiB, more than the 3\.00 GiB you said this GPU has/);
  await expect(row('smollm2-135m').getByTestId('fit-verdict')).toHaveText('fits');
  await expect(row('smollm2-135m')).toContainText(formatDownload(downloadSize(presetById('smollm2-135m')!).bytes));

  // The starts: real small models with their download size, and the demo with its warning.
  const start = page.getByRole('region', { name: 'Start here' });
  await expect(start.getByRole('button', { name: /^Start with SmolLM2-135M-Instruct \(2\d\d MB download\)$/ })).toBeVisible();
  await expect(start.getByRole('button', { name: /^Start with Qwen2\.5-0\.5B-Instruct \(\d+ MB download\)$/ })).toBeVisible();
  await expect(page.getByTestId('demo-warning')).toContainText('The demo model is random: it writes noise.');
  await page.screenshot({ path: test.info().outputPath('home-start.png'), fullPage: true });
  await start.getByRole('button', { name: 'Start with the demo model (no download)' }).click();
  await expect(page).toHaveURL(/\/model$/);
  await expect(page.getByRole('region', { name: 'Model card' })).toContainText('built-in demo model', { timeout: 90_000 });
  await expect(page.getByTestId('loaded-model')).toContainText('Model: demo model');
  await expect(page.getByTestId('loaded-model')).toContainText('random');
  await expect(step(page, 'model')).toHaveAttribute('data-state', 'done');
  await expect(nav(page).getByRole('link', { name: 'Model', exact: true })).toHaveAccessibleDescription('Step 1, done: demo model loaded (random demo: writes noise)');
  await expect(next(page).getByRole('link', { name: 'Add a source →' })).toBeVisible();

  // Try it is a chat through the model's chat template: the prompt the worker generated from is
  // the Llama 3 rendering of the conversation ending in the assistant's header, and the reply
  // comes back without special tokens (and without runs of '?' or replacement characters: the
  // random demo may write a lone byte of a character, never a run of them).
  const tryIt = page.getByRole('region', { name: 'Try it' });
  await tryIt.getByLabel('Message').fill('Say hello.');
  await tryIt.getByRole('button', { name: 'Send' }).click();
  await expect(tryIt.getByTestId('generation-status')).toContainText(/\d+ tokens generated\. The prompt, through the chat template, was \d+ tokens\./, { timeout: 90_000 });
  await tryIt.getByText('The prompt as the model read it').click();
  const templated = tryIt.getByTestId('templated-prompt');
  await expect(templated).toContainText('<|begin_of_text|>');
  await expect(templated).toContainText('<|start_header_id|>user<|end_header_id|>\n\nSay hello.<|eot_id|>');
  expect(await templated.textContent()).toMatch(/<\|start_header_id\|>assistant<\|end_header_id\|>\s*$/);
  const reply = (await tryIt.getByTestId('generated').textContent()) ?? '';
  expect(reply.trim().length).toBeGreaterThan(0);
  expect(reply).not.toMatch(/<\|[a-z_]+\|>|\?{3,}|\uFFFD{2,}/);
  // A second turn carries the first: both user turns and the model's first reply are in the prompt.
  await tryIt.getByLabel('Message').fill('And goodbye?');
  await tryIt.getByRole('button', { name: 'Send' }).click();
  await expect(tryIt.getByRole('list', { name: 'Conversation' }).getByRole('listitem')).toHaveCount(2);
  await expect(tryIt.getByTestId('generation-status')).toContainText('tokens generated.', { timeout: 90_000 });
  await tryIt.getByText('The prompt as the model read it').click();
  await expect(templated).toContainText('Say hello.<|eot_id|><|start_header_id|>assistant<|end_header_id|>');
  await expect(templated).toContainText('<|start_header_id|>user<|end_header_id|>\n\nAnd goodbye?<|eot_id|>');
  await screenshot(page, 'model-try-it.png');
  expect(errors).toEqual([]);
});

test('the first page starts a newcomer on a real small model from the Hub address, its size shown', async ({ page }) => {
  test.setTimeout(120_000);
  const errors = watchErrors(page);
  await page.addInitScript((address) => localStorage.setItem('fuse-studio.hubEndpoint', address), hub);
  hubServer.requests.length = 0;
  await page.goto('/');
  const start = page.getByRole('region', { name: 'Start here' });
  await expect(start).toContainText(`Downloaded once from ${hub}`);
  await start.getByRole('button', { name: /^Start with SmolLM2-135M-Instruct \(/ }).click();
  await expect(page).toHaveURL(/\/model$/);
  await expect(page.getByRole('region', { name: 'Model card' })).toContainText('hf://HuggingFaceTB/SmolLM2-135M-Instruct@main', { timeout: 60_000 });
  await expect(page.getByTestId('loaded-model')).toHaveText('Model: SmolLM2-135M-Instruct');
  expect(hubServer.requests.length).toBeGreaterThan(0);
  for (const r of hubServer.requests) expect(r).toMatch(/^(GET|HEAD) \/HuggingFaceTB\/SmolLM2-135M-Instruct\/resolve\/main\//);
  expect(errors).toEqual([]);
});

const PAGES: [link: string, heading: string, name: string][] = [
  ['Fuse Studio', 'Make a small model better, in this tab', 'home'],
  ['Model', 'Model', 'model'],
  ['Sources', 'Sources', 'sources'],
  ['Data', 'Data', 'data'],
  ['Train', 'Train', 'train'],
  ['Evaluate', 'Evaluate', 'evaluate'],
  ['Compare', 'Compare', 'compare'],
  ['Export', 'Export', 'export'],
  ['GPU status', 'GPU status', 'gpu-status'],
];

test('the step bar walks the recipe with its next action, and every page reads at a laptop’s and a phone’s size', async ({ page }) => {
  test.setTimeout(900_000);
  const errors = watchErrors(page);
  await page.setViewportSize({ width: 1366, height: 860 });
  await page.goto('/');
  await next(page).getByRole('link', { name: 'Load a model →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Model' })).toBeVisible();
  await page.getByRole('button', { name: 'Load demo model' }).click();
  await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible({ timeout: 90_000 });

  // ---- Sources: a local OpenAI-compatible server, also the rubric judge.
  await next(page).getByRole('link', { name: 'Add a source →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Sources' })).toBeVisible();
  await page.getByRole('button', { name: 'Add vLLM (local)' }).click();
  await expect(step(page, 'sources')).toHaveAttribute('data-state', /active|done/);
  const src = page.getByRole('region', { name: /^Source 1:/ });
  await src.getByLabel('Name', { exact: true }).fill('Local');
  await src.getByLabel('Base URL').fill(mock.baseURL);
  await src.getByLabel('Model', { exact: true }).fill(MOCK_MODEL);
  await src.getByLabel('Seed').fill(String(SEED));
  await src.getByLabel('Responses per prompt', { exact: true }).fill('2');
  await src.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.getByRole('status', { name: 'Connection test of Local' })).toContainText('Connected', { timeout: 30_000 });
  await page.getByRole('radio', { name: /A source as rubric judge/ }).check();
  await page.getByLabel('Judge source').selectOption({ label: `Local — ${MOCK_MODEL}` });
  await expectStates(page, { model: 'done', sources: 'done', data: 'todo' });

  // ---- Data: import, then the next action is to collect and build.
  await next(page).getByRole('link', { name: 'Import prompts →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Data' })).toBeVisible();
  await expect(next(page)).toContainText('Next, on this page: Import prompts.');
  // The sets' section is there before any build (no jump from 2 to 4).
  await expect(page.getByRole('heading', { level: 2 })).toHaveText(['1. Prompts', '2. Collect, score, build', '3. The sets']);
  const jsonl = PROMPTS.map((p) => JSON.stringify({ prompt: p })).join('\n') + '\n';
  await page.getByLabel(/^Prompt file/).setInputFiles({ name: 'prompts.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(jsonl) });
  await page.getByRole('button', { name: 'Import file' }).click();
  await expect(page.getByTestId('import-count')).toHaveText(`${PROMPTS.length} prompt(s)`);
  await expect(step(page, 'data')).toHaveAttribute('data-state', 'active');
  await expect(next(page)).toContainText('Next, on this page: Collect and build the sets.');
  await page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(page.getByTestId('set-counts')).toContainText(/[1-9]\d* SFT row\(s\) and [1-9]\d* DPO pair\(s\)/, { timeout: 120_000 });
  await expect(step(page, 'data')).toHaveAttribute('data-state', 'done');
  await expect(page.getByRole('heading', { level: 2 })).toHaveText(['1. Prompts', '2. Collect, score, build', '3. The sets', '4. Browse the responses']);

  // The selected prompt's detail comes into view, focused; hand choices show their pressed state.
  await page.evaluate(() => window.scrollTo(0, 0));
  const rows = page.getByRole('table', { name: 'Prompts' }).getByRole('button', { name: /^Open prompt/ });
  await rows.last().click();
  const detail = page.getByRole('article', { name: 'Selected prompt' });
  await expect(detail).toBeFocused();
  await expect(detail.getByRole('heading', { level: 3 })).toBeInViewport();
  await expect(rows.last()).toHaveAttribute('aria-pressed', 'true');
  const chosen = detail.getByRole('article').first().getByRole('button', { name: 'Chosen', exact: true });
  await expect(chosen).toHaveAttribute('aria-pressed', 'false');
  await chosen.click();
  await expect(chosen).toHaveAttribute('aria-pressed', 'true');
  await expect(detail.getByRole('list', { name: 'Manual changes' })).toContainText('used as chosen');
  // Pressed looks pressed: not the unpressed button's colours.
  const looks = (b: Locator) => b.evaluate((el) => [getComputedStyle(el).backgroundColor, getComputedStyle(el).color].join());
  const pressedLook = await looks(chosen);
  await chosen.click();
  await expect(chosen).toHaveAttribute('aria-pressed', 'false');
  expect(await looks(chosen)).not.toBe(pressedLook);
  await expect(detail.getByRole('list', { name: 'Manual changes' })).toHaveCount(0);

  // ---- Train: SFT, then DPO, each from the next action.
  await expect(next(page).getByRole('link', { name: 'Train SFT →' })).toHaveAttribute('href', '/train');
  await next(page).getByRole('link', { name: 'Train SFT →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Train' })).toBeVisible();
  const runHeading = page.getByTestId('run-card').getByRole('heading', { level: 2 });
  const train = async (stage: 'SFT' | 'DPO', steps: number) => {
    await page.getByLabel(stage === 'SFT' ? '1. SFT' : '2. DPO').check();
    await page.getByRole('radio', { name: new RegExp(`^The Data page’s ${stage} set`) }).check();
    await setNumber(page, /^Max steps/, steps);
    await setNumber(page, /^Micro-batch size/, 1);
    await setNumber(page, /^Gradient accumulation steps/, 1);
    await setNumber(page, /^Max length/, 32);
    await setNumber(page, /^Warmup ratio/, 0);
    await page.getByRole('button', { name: `Start ${stage} training` }).click();
    await expect(runHeading).toContainText(`${stage} run`);
    await expect(step(page, 'train')).toHaveAttribute('data-state', 'active');
    await expect(runHeading).toContainText('completed', { timeout: 300_000 });
  };
  await train('SFT', 3);
  await expect(step(page, 'train')).toHaveAttribute('data-state', 'active');
  await expect(next(page)).toContainText('Next, on this page: Train DPO.');
  // The loss chart's y ticks differ from each other, and every axis has a title.
  const loss = page.getByRole('figure', { name: 'Loss chart' });
  const yTicks = loss.locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value');
  await expect(yTicks.first()).toBeVisible();
  const ticks = await yTicks.allTextContents();
  expect(ticks.length).toBeGreaterThanOrEqual(3);
  expect(new Set(ticks).size).toBe(ticks.length);
  expect((await loss.locator('.recharts-label').allTextContents()).sort()).toEqual(['loss', 'step']);
  await train('DPO', 2);
  await expect(step(page, 'train')).toHaveAttribute('data-state', 'done');
  // The memory chart's labels sit inside its figure (none clipped at the left edge).
  const memory = page.getByRole('figure', { name: 'GPU memory peak chart' });
  await expect(memory.locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value').first()).toBeVisible();
  const box = (await memory.boundingBox())!;
  for (const label of await memory.locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value').all()) {
    const b = (await label.boundingBox())!;
    expect(b.x).toBeGreaterThanOrEqual(box.x);
    expect(await label.textContent()).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB)$/);
  }

  // ---- Evaluate, the next action after training: a tiny evaluation (one math prompt, no judge) makes the step done.
  await expect(step(page, 'evaluate')).toHaveAttribute('data-state', 'todo');
  await next(page).getByRole('link', { name: 'Evaluate against the base model →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Evaluate' })).toBeVisible();
  const setup = page.getByRole('region', { name: 'What to evaluate' });
  for (const name of [/^Base/, /^SFT \(SFT\)/, /^SFT\+DPO/]) await setup.getByRole('checkbox', { name }).check();
  await setup.getByRole('checkbox', { name: 'Pairwise judge' }).uncheck();
  await setup.getByRole('checkbox', { name: 'Forgetting guard (multiple choice)' }).uncheck();
  await setup.getByRole('radio', { name: 'An EVAL.jsonl file' }).check();
  await setup.getByLabel('EVAL.jsonl file', { exact: true }).setInputFiles({ name: 'eval.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{"prompt": "What is 2+3?", "domain": "math", "gold": "5"}\n') });
  await setNumber(setup, 'Max new tokens', 4);
  await setup.getByRole('button', { name: 'Start evaluation' }).click();
  await expect(page.getByTestId('eval-run').getByRole('heading', { level: 2 })).toContainText('completed', { timeout: 300_000 });
  await expect(step(page, 'evaluate')).toHaveAttribute('data-state', 'done');
  await expect(next(page).getByRole('link', { name: 'Compare with the base model →' })).toBeVisible();
  await next(page).getByRole('link', { name: 'Compare with the base model →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Compare' })).toBeVisible();
  await setNumber(page, 'Temperature', 1);
  await setNumber(page, 'Max new tokens', 8);
  await page.getByRole('button', { name: 'Compare' }).click();
  const columns = page.locator('[data-testid^="column-"]');
  await expect(columns).toHaveCount(3);
  for (const c of await columns.all()) await expect(c.getByTestId('answer-status')).toContainText(/^\d+ tokens/, { timeout: 120_000 });
  await expect(step(page, 'compare')).toHaveAttribute('data-state', 'done');

  // ---- Export the adapter: every step done.
  await next(page).getByRole('link', { name: 'Export the adapter →' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Export' })).toBeVisible();
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: /^Download .+ PEFT adapter$/ }).first().click();
  await download;
  await expect(step(page, 'export')).toHaveAttribute('data-state', 'done');
  await expect(next(page)).toContainText('Every step is done.');
  await expectStates(page, { model: 'done', sources: 'done', data: 'done', train: 'done', evaluate: 'done', compare: 'done', export: 'done' });

  // ---- Every page, at 1366×860 and at 390×844: nothing wider than the screen.
  for (const [width, height, suffix] of [
    [1366, 860, 'desktop'],
    [390, 844, 'phone'],
  ] as const) {
    await page.setViewportSize({ width, height });
    for (const [link, heading, name] of PAGES) {
      await go(page, link, heading);
      if (name === 'data') await page.getByRole('table', { name: 'Prompts' }).getByRole('button', { name: /^Open prompt/ }).first().click();
      if (name === 'model') await expect(page.getByRole('region', { name: 'Model card' })).toBeVisible();
      if (name === 'gpu-status') await expect(page.getByRole('region', { name: 'Adapter' })).toBeVisible({ timeout: 60_000 });
      await page.evaluate(() => window.scrollTo(0, 0));
      // Nothing may widen the page (it would scroll sideways); if something does, name the block
      // whose removal ends it, descending to the element.
      const wide = await page.evaluate(() => {
        const w = document.documentElement.clientWidth;
        const culprit = (root: Element): string[] => {
          for (const child of root.children) {
            const el = child as HTMLElement;
            const before = el.style.display;
            el.style.display = 'none';
            const fixed = document.documentElement.scrollWidth <= w;
            el.style.display = before;
            if (fixed) return [`${el.tagName.toLowerCase()}${[...el.classList].map((c) => `.${c}`).join('')}`, ...culprit(el)];
          }
          return [];
        };
        const overflow = document.documentElement.scrollWidth - w;
        return { overflow, out: overflow > 0 ? culprit(document.body) : [] };
      });
      expect(wide.overflow, `${name} at ${width}px scrolls sideways: ${wide.out.join(' > ')}`).toBeLessThanOrEqual(0);
      await screenshot(page, `pages/${name}-${suffix}.png`);
    }
  }
  expect(errors).toEqual([]);
});
