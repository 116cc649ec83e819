// The CLI on every family: a Qwen2.5-architecture demo folder (q/k/v biases, the real Qwen2.5
// tokenizer and ChatML template) through demo-model, generate, logprobs, plan, train and
// export merged, each checked against the library (or the float64 reference) on the same folder.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import type { GpuContext } from '../gpu/context';
import { createDecoderModel } from '../model/decoder';
import { generate } from '../model/generate';
import { loadModel } from '../model/load';
import { scoreSequences } from '../model/score';
import { localFolderSource } from '../model/source-node';
import { releaseWeights } from '../model/weights';
import { loadTokenizer } from '../tokenizer';
import { createAdaptersFromHost } from '../train/peft';
import { loadPeftAdapter } from '../train/peft-node';
import type { ModelConfig } from '../model/config';
import { runCli, type CliRun } from './testing/run-cli';

async function loadPeftAdapterInto(ctx: GpuContext, dir: string, config: ModelConfig) {
  const { adapter } = await loadPeftAdapter(dir, config);
  return createAdaptersFromHost(ctx, config, adapter, { trainable: false });
}

let dir = '';
let model = '';
let ctx: GpuContext;

const ok = (r: CliRun) => {
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-cli-families-'));
  model = join(dir, 'qwen2');
  ok(await runCli(['demo-model', '--family', 'qwen2', '--out', model, '--seed', '7']));
  ctx = await testContext();
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function openLibrary(path: string) {
  const loaded = await loadModel(ctx, localFolderSource(path));
  const tok = loadTokenizer({ ...loaded.tokenizerFiles!, generationConfig: loaded.generationConfig });
  return { loaded, tok, model: createDecoderModel(ctx, loaded.weights), release: () => releaseWeights(loaded.weights) };
}

describe('the CLI on a Qwen2.5-architecture model', () => {
  it('demo-model --family qwen2 writes a Qwen2ForCausalLM folder with the Qwen2.5 tokenizer; a bad family is refused', async () => {
    const config = JSON.parse(await readFile(join(model, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', use_sliding_window: false });
    const tc = JSON.parse(await readFile(join(model, 'tokenizer_config.json'), 'utf8'));
    expect(tc.chat_template).toContain('You are Qwen, created by Alibaba Cloud.');
    const bad = await runCli(['demo-model', '--family', 'gemma', '--out', join(dir, 'x')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--family: "gemma" is not one of llama, mistral, qwen2, qwen3/);
  });

  it('generate --json and logprobs equal the library on the chat-templated text', async () => {
    const lib = await openLibrary(model);
    try {
      const gen = JSON.parse(ok(await runCli(['generate', '--model', model, '--prompt', 'Hi there', '--max-new-tokens', '4', '--temperature', '0', '--json'])));
      const promptIds = lib.tok.encodeChat([{ role: 'user', content: 'Hi there' }], { addGenerationPrompt: true }).ids;
      const want = await generate(lib.model, { promptIds, maxNewTokens: 4, sampling: { temperature: 0 }, eosTokenIds: lib.tok.eosTokenIds });
      expect(gen.ids).toEqual(want.ids);

      const messages = [
        { role: 'user', content: 'What is 2 + 2?' },
        { role: 'assistant', content: 'It is 4.' },
      ];
      await writeFile(join(dir, 'sft.jsonl'), JSON.stringify({ messages }) + '\n');
      const lp = JSON.parse(ok(await runCli(['logprobs', '--model', model, '--data', join(dir, 'sft.jsonl')])).trim());
      const enc = lib.tok.encodeChat(messages);
      const [score] = await scoreSequences(lib.model, [{ ids: enc.ids, labels: enc.ids.map((id, i) => (enc.assistantMask[i] ? id : -100)) }]);
      // The answer and <|im_end|> are scored, nothing else.
      expect(lp.n_tokens).toBe(score!.nTokens);
      expect(lib.tok.decode(enc.ids.filter((_, i) => enc.assistantMask[i]), { skipSpecialTokens: false })).toBe('It is 4.<|im_end|>');
      expect(Math.abs(lp.logprob_sum - score!.logprobSum)).toBeLessThan(1e-4 * Math.abs(score!.logprobSum));
    } finally {
      lib.model.release();
      lib.release();
    }
  });

  it('plan names the architecture; train sft writes a PEFT adapter whose merge equals base + adapter', async () => {
    const plan = ok(await runCli(['plan', '--model', model]));
    expect(plan).toMatch(/model: .* \(Qwen2ForCausalLM, 2 layers, hidden 64, vocab 151936\)/);
    expect(plan).toMatch(/^training +\d+/m);
    const rows = Array.from({ length: 4 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `Say ${i}` }, { role: 'assistant', content: `${i} ${i} ${i}` }] }));
    await writeFile(join(dir, 'train.jsonl'), rows.join('\n') + '\n');
    const adapter = join(dir, 'adapter');
    ok(await runCli(['train', 'sft', '--model', model, '--data', join(dir, 'train.jsonl'), '--out', adapter, '--max-steps', '1', '--warmup-ratio', '0', '--lr', '1e-2', '--batch-size', '2', '--lora-rank', '4'], { timeoutMs: 300_000 }));
    const cfg = JSON.parse(await readFile(join(adapter, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', r: 4 });
    const merged = join(dir, 'merged');
    ok(await runCli(['export', 'merged', '--model', model, '--adapter', adapter, '--out', merged, '--dtype', 'f32'], { timeoutMs: 300_000 }));
    // The merged folder keeps the family (config, q/k/v biases): its log-probs are the base model's
    // with the adapter, and differ from the base model's alone.
    expect(JSON.parse(await readFile(join(merged, 'config.json'), 'utf8')).architectures).toEqual(['Qwen2ForCausalLM']);
    const base = await openLibrary(model);
    const fused = await openLibrary(merged);
    const lora = await loadPeftAdapterInto(ctx, adapter, base.loaded.config);
    try {
      const enc = base.tok.encodeChat([{ role: 'user', content: 'Say 1' }, { role: 'assistant', content: '1 1 1' }]);
      const seq = [{ ids: enc.ids }];
      const [a] = await scoreSequences(base.model, seq, { lora });
      const [b] = await scoreSequences(fused.model, seq);
      const [c] = await scoreSequences(base.model, seq);
      expect(Math.abs(b!.logprobSum - a!.logprobSum)).toBeLessThan(1e-4 * Math.abs(a!.logprobSum));
      expect(Math.abs(c!.logprobSum - a!.logprobSum)).toBeGreaterThan(1e-3);
    } finally {
      lora.release();
      for (const m of [base, fused]) {
        m.model.release();
        m.release();
      }
    }
  });
});
