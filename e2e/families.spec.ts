// The model families in the browser: a Qwen3-architecture checkpoint (generated, with the real
// Qwen3 tokenizer and chat template) loads from a local HTTP server and generates; a Mistral
// checkpoint whose sliding window a generation would use, a rope type the engine does not
// implement and an unknown architecture are each refused with the field named.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { startFileServer, type FileServer } from './file-server';
import { screenshot, watchErrors } from './helpers';

let server: FileServer;
let base: string;
let tmp: string;
const folders = new Map<string, Map<string, Buffer>>();

async function readFolder(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of await readdir(dir)) files.set(name, await readFile(join(dir, name)));
  return files;
}

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

test.beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'fuse-e2e-families-'));
  await writeDemoModel(join(tmp, 'qwen3'), { family: 'qwen3', normJitter: 0.3 });
  folders.set('qwen3', await readFolder(join(tmp, 'qwen3')));
  // Mistral-7B-v0.1-style: a 16-token sliding window, which the studio's generation would pass.
  await writeDemoModel(join(tmp, 'mistral'), { family: 'mistral' });
  const mistral = await readFolder(join(tmp, 'mistral'));
  mistral.set('config.json', json({ ...JSON.parse(mistral.get('config.json')!.toString()), sliding_window: 16 }));
  folders.set('mistral-window', mistral);
  const qwenConfig = JSON.parse(folders.get('qwen3')!.get('config.json')!.toString());
  folders.set('yarn', new Map([['config.json', json({ ...qwenConfig, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } })]]));
  folders.set('gemma', new Map([['config.json', json({ ...qwenConfig, architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2' })]]));

  server = await startFileServer((path) => {
    const [, folder, file] = path.split('/');
    return folders.get(folder ?? '')?.get(file ?? '');
  });
  base = server.base;
});

test.afterAll(async () => {
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function loadUrl(page: Page, url: string): Promise<void> {
  await page.getByLabel('Repo id or URL').fill(url);
  await page.getByRole('button', { name: 'Load from URL' }).click();
}

test.describe('model families in the browser', () => {
  test('a Qwen3-architecture checkpoint loads from a URL and generates text through its tokenizer', async ({ page }) => {
    const errors = watchErrors(page);
    await page.goto('/model');
    await loadUrl(page, `${base}/qwen3/`);
    const card = page.getByRole('region', { name: 'Model card' });
    await expect(card).toBeVisible({ timeout: 90_000 });
    await expect(card).toContainText('Qwen3ForCausalLM (q/k norm)');
    await expect(card).toContainText('151,936');
    const tryIt = page.getByRole('region', { name: 'Try it' });
    await tryIt.getByLabel('Message').fill('Hello');
    await tryIt.getByRole('button', { name: 'Send' }).click();
    await expect(tryIt.getByTestId('generation-status')).toContainText(/\d+ tokens generated\./, { timeout: 90_000 });
    await expect(tryIt.getByTestId('generated')).not.toBeEmpty();
    await expect(tryIt.getByRole('alert')).toHaveCount(0);
    expect(errors).toEqual([]);
    await screenshot(page, 'model-qwen3.png');
  });

  test('a sliding window the generation would use is refused, naming sliding_window', async ({ page }) => {
    await page.goto('/model');
    await loadUrl(page, `${base}/mistral-window/`);
    const card = page.getByRole('region', { name: 'Model card' });
    await expect(card).toContainText('MistralForCausalLM (sliding window 16)', { timeout: 90_000 });
    const tryIt = page.getByRole('region', { name: 'Try it' });
    await tryIt.getByRole('button', { name: 'Send' }).click();
    await expect(tryIt.getByRole('alert')).toContainText('"sliding_window" is 16', { timeout: 60_000 });
    await screenshot(page, 'model-sliding-window.png');
  });

  test('an unknown rope type and an unknown architecture are refused before any weight is fetched, naming the field', async ({ page }) => {
    await page.goto('/model');
    await loadUrl(page, `${base}/yarn/`);
    const alert = page.getByRole('alert');
    await expect(alert).toContainText('could not be loaded');
    await expect(alert).toContainText('rope_scaling.rope_type "yarn" is not supported');
    await loadUrl(page, `${base}/gemma/`);
    await expect(alert).toContainText('"architectures" is ["Gemma2ForCausalLM"]');
    await expect(alert).toContainText('Qwen3ForCausalLM');
    await screenshot(page, 'model-unknown-architecture.png');
  });
});
