// The train / export commands, run in-process on the built-in demo model's architecture (hidden
// 64, 2 layers, GQA, llama3 RoPE, tied embeddings) with a 512-token vocabulary and no tokenizer,
// on pre-tokenized records: the full 128,256-row lm_head runs at ~10 tokens/s on SwiftShader
// (20 s a step), which a unit test cannot afford. Text records go through the same code after
// tokenization (batching.ts and its tests).
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateDemoModel } from '../model/demo';
import { seededRandom } from '../model/random';
import { writeFolderFiles } from '../train/files-node';
import { parseModelConfig } from '../model/config';
import { loadPeftAdapter } from '../train/peft-node';
import { runCommand } from './program';

// The command line parsed as the CLI does (program.ts), the command run in this process.
const trainCommand = (argv: string[]) => runCommand(['train', ...argv]);
const exportCommand = (argv: string[]) => runCommand(['export', ...argv]);

const CHATS: [string, string][] = [
  ['What is the capital of France?', 'Paris.'],
  ['Say hi.', 'Hi there!'],
  ['What is 2+2?', 'It is 4.'],
  ['What color is the sky?', 'Blue.'],
];

const VOCAB = 512;
let root = '';
let model = '';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cli-train-'));
  model = join(root, 'demo');
  await writeFolderFiles(model, generateDemoModel(null, { vocabSize: VOCAB }));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Run a command, capturing what it prints. */
async function capture(f: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    return { code: await f(), out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('fuse-studio train / export', () => {
  it('train sft on a tiny JSONL: a PEFT adapter, metrics.jsonl with TRL names and a falling loss, progress lines', async () => {
    const data = join(root, 'sft.jsonl');
    // Four pre-tokenized "chats": a prompt (labels -100) and an answer to learn.
    const next = seededRandom(5);
    const ids = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(next() * (VOCAB - 1)));
    const lines = [0, 1, 2, 3].map(() => {
      const prompt = ids(6);
      const answer = ids(5);
      return JSON.stringify({ input_ids: [...prompt, ...answer], labels: [...prompt.map(() => -100), ...answer] });
    });
    await writeFile(data, lines.join('\n') + '\n');
    const out = join(root, 'sft-out');
    const t0 = performance.now();
    const r = await capture(() =>
      trainCommand(['sft', '--model', model, '--data', data, '--out', out, '--max-steps', '6', '--lr', '2e-2', '--batch-size', '2', '--grad-accum', '2', '--lora-rank', '4', '--warmup-ratio', '0', '--schedule', 'constant', '--checkpoint-every', '3', '--seed', '1']),
    );
    console.log(`train sft: ${((performance.now() - t0) / 1000).toFixed(1)} s\n${r.out}`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/step 1\/6 {2}loss \d+\.\d{4} {2}lr 0\.02000 {2}\d+ tok\/s {2}ETA \d+:\d\d/);
    // A tiny model's step keeps everything within the default budget (the memory plan says so).
    expect(r.out).toMatch(/step plan: lm_head logits computed once, layer activations kept: .* fits the .* budget/);
    expect((await readdir(out)).sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors', 'checkpoints', 'metrics.jsonl', 'train_config.json']);
    // A folder is not the Hub: base_model_name_or_path stays empty, with a warning and README.md saying what to do.
    expect(r.err).toMatch(/warning: the base model \(.*demo\) was not loaded from the Hugging Face Hub or a mirror of it.*\(--base-model-name\)/);
    expect(await readFile(join(out, 'README.md'), 'utf8')).toMatch(/base_model_name_or_path is empty[\s\S]*--base-model-name OWNER\/NAME/);
    expect((await readdir(join(out, 'checkpoints'))).sort()).toEqual(['checkpoint-3', 'checkpoint-6']);

    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const m of metrics) for (const k of ['loss', 'learning_rate', 'grad_norm', 'epoch', 'num_tokens']) expect(m, k).toHaveProperty(k);
    const loss = metrics.map((m) => m.loss as number);
    expect(loss[5]!, `losses ${loss.join(', ')}`).toBeLessThan(loss[0]! - 0.5);

    const config = parseModelConfig(JSON.parse(await readFile(join(model, 'config.json'), 'utf8')));
    const adapter = await loadPeftAdapter(out, config);
    expect([adapter.adapter.rank, adapter.adapter.alpha, adapter.baseModel]).toEqual([4, 8, null]);
    expect(adapter.adapter.layers[0]!.q_proj!.b.some((x) => x !== 0)).toBe(true);

    // Resuming a finished run continues from checkpoint-6: nothing left to do, the same adapter.
    const again = await capture(() => trainCommand(['sft', '--model', model, '--data', data, '--out', out, '--max-steps', '6', '--lr', '2e-2', '--batch-size', '2', '--grad-accum', '2', '--warmup-ratio', '0', '--schedule', 'constant', '--resume', out, '--seed', '1', '--quiet']));
    expect(again.code).toBe(0);
    expect([...(await loadPeftAdapter(out, config)).adapter.layers[1]!.down_proj!.b]).toEqual([...adapter.adapter.layers[1]!.down_proj!.b]);

    // train dpo --adapter SFT: continues the SFT adapter, which is the reference (step 1: loss log 2).
    const pairs = join(root, 'dpo.jsonl');
    await writeFile(pairs, [0, 1].map(() => JSON.stringify({ prompt_input_ids: ids(4), chosen_input_ids: ids(3), rejected_input_ids: ids(3) })).join('\n'));
    const dpoOut = join(root, 'dpo-out');
    const d = await capture(() =>
      trainCommand(['dpo', '--model', model, '--data', pairs, '--out', dpoOut, '--adapter', out, '--max-steps', '2', '--batch-size', '2', '--grad-accum', '1', '--lr', '1e-2', '--warmup-ratio', '0', '--base-model-name', 'acme/tiny-demo']),
    );
    expect(d.code).toBe(0);
    // Named by the user: written as given, no warning, no README.
    expect((await loadPeftAdapter(dpoOut, config)).baseModel).toBe('acme/tiny-demo');
    expect(d.err).not.toMatch(/warning/);
    expect(await readdir(dpoOut)).not.toContain('README.md');
    expect(d.out).toMatch(/continuing the adapter .*sft-out \(r 4, alpha 8\); it is also the DPO reference policy/);
    const dm = (await readFile(join(dpoOut, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(dm[0].loss).toBeCloseTo(Math.log(2), 5);
    for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) expect(dm[1], k).toHaveProperty(k);
    expect(JSON.parse(await readFile(join(dpoOut, 'train_config.json'), 'utf8'))).toMatchObject({ stage: 'dpo', loss: 'ln-dpo', beta: 10, init: out });

    // export merged: a plain checkpoint (f32 for the check in merge.test.ts; here bf16 and its files).
    const merged = join(root, 'merged');
    const e = await capture(() => exportCommand(['merged', '--model', model, '--adapter', out, '--out', merged]));
    expect(e.code).toBe(0);
    expect((await readdir(merged)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
  });

  it('an adapter of a model served in the Hub\'s layout by any host names the repo, never the URL', async () => {
    const files = generateDemoModel(null, { vocabSize: VOCAB });
    const server = createServer((req, res) => {
      const m = /^\/acme\/tiny-llama\/resolve\/main\/(.+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      const body = m ? files.get(decodeURIComponent(m[1]!)) : undefined;
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const saved = process.env.FUSE_STUDIO_CACHE;
    process.env.FUSE_STUDIO_CACHE = join(root, 'model-cache');
    try {
      const addr = server.address();
      const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/acme/tiny-llama/resolve/main/`;
      const data = join(root, 'mirror.jsonl');
      await writeFile(data, JSON.stringify({ input_ids: [5, 6, 7, 8, 9], labels: [-100, -100, 7, 8, 9] }) + '\n');
      const out = join(root, 'mirror-out');
      const r = await capture(() => trainCommand(['sft', '--model', url, '--data', data, '--out', out, '--max-steps', '1', '--lora-rank', '2', '--quiet']));
      expect(r.code).toBe(0);
      expect(r.err).not.toMatch(/warning/);
      expect(JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe('acme/tiny-llama');
      expect(await readdir(out)).not.toContain('README.md');
      // A URL or a relative path is refused before anything is loaded.
      await expect(trainCommand(['sft', '--model', url, '--data', data, '--out', out, '--base-model-name', url])).rejects.toThrow(/--base-model-name "http:.*" is a URL: give the base model's Hub repo id/);
      await expect(trainCommand(['sft', '--model', model, '--data', data, '--out', out, '--base-model-name', './demo'])).rejects.toThrow(/--base-model-name "\.\/demo" is not a Hub repo id/);
    } finally {
      if (saved === undefined) delete process.env.FUSE_STUDIO_CACHE;
      else process.env.FUSE_STUDIO_CACHE = saved;
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('names malformed lines by number; usage mistakes are UsageErrors', async () => {
    const bad = join(root, 'bad.jsonl');
    await writeFile(bad, [JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] }), '{not json', JSON.stringify({ messages: [{ role: 'user', content: 'only a question' }] }), ''].join('\n'));
    await expect(trainCommand(['sft', '--model', model, '--data', bad, '--out', join(root, 'x')])).rejects.toThrow(/2 malformed SFT records:\n {2}line 2: invalid JSON.*\n {2}line 3: no assistant turn/);
    await expect(trainCommand(['rl', '--model', model, '--data', bad, '--out', 'x'])).rejects.toThrow(/'rl' is invalid for argument 'stage'. Allowed choices are sft, dpo/);
    await expect(trainCommand(['sft', '--model', model, '--out', 'x'])).rejects.toThrow(/required option '--data <FILE.jsonl>' not specified/);
    // Text records on a model without tokenizer.json: named by line, before any weight is loaded.
    const text = join(root, 'text.jsonl');
    await writeFile(text, [JSON.stringify({ input_ids: [1, 2, 3], labels: [-100, 2, 3] }), JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] })].join('\n'));
    await expect(trainCommand(['sft', '--model', model, '--data', text, '--out', join(root, 'x')])).rejects.toThrow(/text\.jsonl line 2: text records need a tokenizer/);
    await expect(trainCommand(['sft', '--model', model, '--data', bad, '--out', 'x', '--loss', 'ln-dpo'])).rejects.toThrow(/--loss is for train dpo/);
    await expect(trainCommand(['sft', '--model', model, '--data', bad, '--out', 'x', '--gpu-memory', '0'])).rejects.toThrow(/--gpu-memory: must be a number of GiB above 0, got 0/);
    await expect(trainCommand(['dpo', '--model', model, '--data', bad, '--out', 'x', '--lora-targets', 'q_proj,lm_head'])).rejects.toThrow(/lm_head/);
  });

  it('export recipe writes the bundle from JSONL files', async () => {
    const sft = join(root, 'r-sft.jsonl');
    const dpo = join(root, 'r-dpo.jsonl');
    await writeFile(sft, CHATS.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n'));
    await writeFile(dpo, JSON.stringify({ prompt: [{ role: 'user', content: 'Hi' }], chosen: [{ role: 'assistant', content: 'Hello!' }], rejected: [{ role: 'assistant', content: 'Go away.' }] }) + '\n');
    const out = join(root, 'recipe');
    const r = await capture(() => exportCommand(['recipe', '--sft', sft, '--dpo', dpo, '--model', 'meta-llama/Llama-3.2-1B-Instruct', '--out', out, '--gpus', '4', '--sft-lr', '1e-4', '--loss', 'dpo', '--beta', '0.05']));
    expect(r.code).toBe(0);
    const recipe = JSON.parse(await readFile(join(out, 'recipe.json'), 'utf8'));
    expect(recipe).toMatchObject({ gpus: 4, counts: { sft: 4, dpo: 1 }, sft: { lr: 1e-4 }, dpo: { beta: 0.05, lossType: 'sigmoid' } });
    expect(await readFile(join(out, 'llamafactory/dpo.yaml'), 'utf8')).toMatch(/pref_beta: 0\.05\npref_loss: sigmoid/);
  });
});
