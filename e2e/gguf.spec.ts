import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { hostWeightsByName, randomHostWeights, tinyConfig } from '../src/model/random';
import { byteLevelTokenizerMetadata, q4kmTypes, writeGgufModel } from '../src/model/testing/gguf-writer';
import { startFileServer, type FileServer } from './file-server';
import { watchErrors } from './helpers';

// A GGUF file in the studio: a generated Q4_K_M-mix Qwen3 .gguf (Q4_K and Q6_K blocks, F32 norms,
// a byte-level tokenizer and chat template in its metadata) loaded on the Model page by its URL
// from a local file server; the card shows the architecture and the block types as stored, the
// memory plan counts them, and a short generation answers.
let server: FileServer;
let dir: string;
const FILE = 'tiny-Q4_K_M.gguf';

test.beforeAll(async () => {
  const config = { ...tinyConfig({ family: 'qwen3', hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 258, numLayers: 2, tieWordEmbeddings: false }), bosTokenId: 256, eosTokenIds: [257] };
  const host = hostWeightsByName(randomHostWeights(config, 'f32', 41));
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-gguf-'));
  await writeFile(join(dir, FILE), writeGgufModel(config, (n) => host.get(n)!, { typeOf: q4kmTypes, metadata: byteLevelTokenizerMetadata('qwen2', { bos: 256, eos: 257, addBos: false }) }));
  server = await startFileServer((path) => (path === `/${FILE}` ? readFile(join(dir, FILE)) : undefined));
});

test.afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a Q4_K_M .gguf by URL: the card shows its architecture and block types, the plan counts them, and a generation answers', async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto('/model');
  await page.getByLabel('Repo id or URL').fill(`${server.base}/${FILE}`);
  await page.getByRole('button', { name: 'Load from URL' }).click();
  const card = page.getByRole('region', { name: 'Model card' });
  await expect(card).toBeVisible({ timeout: 120_000 });
  await expect(card).toContainText('Qwen3ForCausalLM (q/k norm)');
  await expect(card).toContainText(FILE);
  await expect(card).toContainText(/GGUF blocks as stored: \d+ (q4_k|f32|q6_k), .*q6_k/);
  await expect(card).toContainText('q4_k');
  await expect(card).toContainText('4 / 2');
  expect(server.requests.filter((r) => r === `GET /${FILE}`).length).toBeGreaterThan(0);
  await expect(page.getByTestId('plan-verdict')).toContainText('Fits this device');

  const tryIt = page.getByRole('region', { name: 'Try it' });
  await tryIt.getByRole('button', { name: 'Send' }).click();
  await expect(tryIt.getByTestId('generation-status')).toContainText(/\d+ tokens generated\./, { timeout: 90_000 });
  await expect(tryIt.getByTestId('generated')).not.toBeEmpty();
  expect(errors).toEqual([]);
});
