// `fuse-studio generate / logprobs / plan / info` as child processes (vite-node on src/cli/main.ts,
// so no build is needed), checked against the library in this process: the demo model (with the
// Llama 3.2 tokenizer) and a random tiny f32 model written as a folder without tokenizer files,
// with a PEFT adapter folder, whose float64 reference gives exact expectations.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { testContext } from '../engine/testing/gpu';
import { LLAMA_3_2_PRESETS, type ModelConfig } from '../model/config';
import { writeDemoModel } from '../model/demo-node';
import { generate } from '../model/generate';
import { createDecoderModel, type DecoderModel } from '../model/decoder';
import { loadModel } from '../model/load';
import { createLoraAdapters, type LoraAdapters } from '../model/lora';
import { formatBytes, planMemory } from '../model/memory-plan';
import { hostWeightsByName, randomHostLora, randomHostWeights, seededRandom, setHostLora, tinyConfig } from '../model/random';
import { referenceForward, type HostLora, type HostWeights } from '../model/reference';
import { writeSafetensors } from '../model/safetensors';
import { argmax } from '../model/sampling';
import { scoreSequences, type LabelledSequence } from '../model/score';
import { localFolderSource } from '../model/source-node';
import { expectedTensors, releaseWeights, type ModelWeights } from '../model/weights';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer';
import { fromHostLora } from '../train/peft';
import { savePeftAdapter } from '../train/peft-node';
import { runCli, type CliRun } from './testing/run-cli';

const DATE = '26 Jul 2024';


function cli(...args: string[]): Promise<CliRun> {
  return runCli(args, { timeoutMs: 60_000 });
}

/** The one JSON value a --json run prints. */
function json(r: CliRun): unknown {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

let dir = '';
let demoDir = '';
let randDir = '';
let adapterDir = '';
let ctx: GpuContext;
let demo: { model: DecoderModel; weights: ModelWeights; tok: LoadedTokenizer; eos: number[] } | null = null;

// The random model: f32, untied, llama3 RoPE, GQA, no tokenizer; eos id 2.
const RAND_CONFIG: ModelConfig = { ...tinyConfig({ vocabSize: 300, llama3Rope: true }), dtype: 'float32' };
let host: HostWeights;
let hostLora: HostLora;

/** config.json as transformers writes it for `c`. */
function configJson(c: ModelConfig): string {
  const rope = c.ropeScaling;
  return JSON.stringify({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: rope && {
      rope_type: 'llama3',
      factor: rope.factor,
      low_freq_factor: rope.lowFreqFactor,
      high_freq_factor: rope.highFreqFactor,
      original_max_position_embeddings: rope.originalMaxPositionEmbeddings,
    },
    tie_word_embeddings: c.tieWordEmbeddings,
    max_position_embeddings: c.maxPositionEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds[0],
    torch_dtype: 'float32',
  });
}

/** model.safetensors of host weights (f32). */
function hostSafetensors(w: HostWeights): Uint8Array {
  const byName = hostWeightsByName(w);
  const tensors = [...expectedTensors(w.config)].map(([name, shape]) => ({
    name,
    dtype: 'F32' as const,
    shape,
    data: new Uint8Array(Float32Array.from(byName.get(name)!).buffer),
  }));
  return writeSafetensors(tensors, { format: 'pt' });
}

function ids(n: number, seed: number, vocab: number): number[] {
  const next = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
}

/** Greedy continuation by full float64 recompute (the reference model). */
function referenceGreedy(prompt: number[], n: number, lora: HostLora | null, eos: number[]): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  const V = RAND_CONFIG.vocabSize;
  for (let i = 0; i < n; i++) {
    const T = seq.length;
    const { logits } = referenceForward(host, { batchSize: 1, seqLen: T, ids: seq, mask: new Array<number>(T).fill(1) }, lora);
    const id = argmax(logits.subarray((T - 1) * V, T * V));
    out.push(id);
    seq.push(id);
    if (eos.includes(id)) break;
  }
  return out;
}

/** Σ log p(labels[t] | ids[<t]) in float64. */
function referenceScore(s: LabelledSequence, lora: HostLora | null): { logprob_sum: number; n_tokens: number } {
  const T = s.ids.length;
  const targets = Array.from({ length: T }, (_, t) => (t + 1 < T ? s.labels![t + 1]! : -100));
  const { logp } = referenceForward(host, { batchSize: 1, seqLen: T, ids: s.ids, mask: new Array<number>(T).fill(1), targets }, lora);
  return { logprob_sum: logp.reduce((a, b) => a + b, 0), n_tokens: targets.filter((y) => y !== -100).length };
}

function expectScore(got: unknown, want: { logprob_sum: number; n_tokens: number }, what: string, rel = 1e-5): void {
  const g = got as { logprob_sum: number; n_tokens: number };
  expect(g.n_tokens, what).toBe(want.n_tokens);
  expect(Math.abs(g.logprob_sum - want.logprob_sum), `${what}: ${g.logprob_sum} vs ${want.logprob_sum}`).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want.logprob_sum)));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-cli-model-'));
  demoDir = join(dir, 'demo');
  randDir = join(dir, 'rand');
  adapterDir = join(dir, 'adapter');
  await writeDemoModel(demoDir);
  host = randomHostWeights(RAND_CONFIG, 'f32', 2024);
  hostLora = randomHostLora(RAND_CONFIG, { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }, 2025, 0.5);
  await mkdir(randDir);
  await writeFile(join(randDir, 'config.json'), configJson(RAND_CONFIG));
  await writeFile(join(randDir, 'model.safetensors'), hostSafetensors(host));
  await savePeftAdapter(adapterDir, fromHostLora(hostLora), { baseModel: randDir });
  ctx = await testContext();
  const loaded = await loadModel(ctx, localFolderSource(demoDir));
  const tok = loadTokenizer({ ...loaded.tokenizerFiles!, generationConfig: loaded.generationConfig });
  demo = { model: createDecoderModel(ctx, loaded.weights), weights: loaded.weights, tok, eos: [...new Set([...tok.eosTokenIds, ...loaded.config.eosTokenIds])] };
});

afterAll(async () => {
  demo?.model.release();
  if (demo) releaseWeights(demo.weights);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fuse-studio generate / logprobs / plan / info (child processes)', () => {
  it('generate --json on the demo model: greedy ids and text equal the library generate() on the chat-templated prompt', async () => {
    const { model, tok, eos } = demo!;
    const run = cli('generate', '--model', demoDir, '--prompt', 'Why?', '--date-string', DATE, '--max-new-tokens', '3', '--temperature', '0', '--json');
    const promptIds = tok.encodeChat([{ role: 'user', content: 'Why?' }], { addGenerationPrompt: true, dateString: DATE }).ids;
    const lib = await generate(model, { promptIds, maxNewTokens: 3, sampling: { temperature: 0 }, eosTokenIds: eos });
    expect(json(await run)).toEqual({ ids: lib.ids, text: tok.decode(lib.ids, { skipSpecialTokens: true }) });
  });

  it('generate on a model without tokenizer: --prompt-ids works (text null, = float64 greedy; seeded sampling with the adapter = library); --prompt fails clearly', async () => {
    const prompt = ids(6, 1, 300);
    const eos = RAND_CONFIG.eosTokenIds;
    const base = json(await cli('generate', '--model', randDir, '--prompt-ids', prompt.join(','), '--max-new-tokens', '6', '--json')) as { ids: number[]; text: null };
    expect(base).toEqual({ ids: referenceGreedy(prompt, 6, null, eos), text: null });

    // Seeded sampling: the same tokens as the library with the same settings; plain output is the ids.
    const sampling = { temperature: 0.9, topK: 30, topP: 0.95, repetitionPenalty: 1.1, seed: 5 };
    const weights = await loadModel(ctx, localFolderSource(randDir));
    const model: DecoderModel = createDecoderModel(ctx, weights.weights);
    const lora: LoraAdapters = createLoraAdapters(ctx, RAND_CONFIG, { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'down_proj'] }, { trainable: false });
    setHostLora(ctx, lora, hostLora);
    try {
      const run = cli(
        ...['generate', '--model', randDir, '--adapter', adapterDir, '--prompt-ids', prompt.join(' '), '--max-new-tokens', '6'],
        ...['--temperature', '0.9', '--top-k', '30', '--top-p', '0.95', '--repetition-penalty', '1.1', '--seed', '5'],
      );
      const lib = await generate(model, { promptIds: prompt, maxNewTokens: 6, sampling, eosTokenIds: eos, lora });
      lora.enabled = false;
      const libBase = await generate(model, { promptIds: prompt, maxNewTokens: 6, sampling, eosTokenIds: eos, lora });
      expect(libBase.ids, 'the adapter changes what is sampled').not.toEqual(lib.ids);
      const r = await run;
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${lib.ids.join(',')}\n`);
    } finally {
      lora.release();
      model.release();
      releaseWeights(weights.weights as ModelWeights);
    }

    const text = await cli('generate', '--model', randDir, '--prompt', 'hello');
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/no tokenizer\.json.*--prompt-ids/);
    const usage = await cli('generate', '--model', randDir);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/exactly one of --prompt, --messages, --prompt-ids/);
  });

  it('logprobs on SFT and DPO text records (chat template, plain text) equals the library per-sequence sums', async () => {
    const { model, tok } = demo!;
    const prompt = [{ role: 'user', content: 'Colour?' }];
    const records = [
      { messages: [...prompt, { role: 'assistant', content: 'Blue.' }] },
      { prompt, chosen: [{ role: 'assistant', content: 'Blue.' }], rejected: [{ role: 'assistant', content: 'Seven.' }] },
      { prompt: 'The sky is', chosen: ' blue', rejected: ' made of cheese' },
    ];
    const data = join(dir, 'demo.jsonl');
    await writeFile(data, records.map((r) => JSON.stringify(r)).join('\n') + '\n\n');
    const run = cli('logprobs', '--model', demoDir, '--data', data, '--date-string', DATE);

    // The expected sequences, built here from the tokenizer directly. The SFT conversation is the
    // DPO record's chosen side: the same tokens and labels.
    const chat = (m: { role: string; content: string }[], gen = false) => tok.encodeChat(m, { dateString: DATE, addGenerationPrompt: gen });
    const side = (c: string): LabelledSequence => {
      const p = chat(prompt, true).ids.length;
      const full = chat([...prompt, { role: 'assistant', content: c }]);
      expect(full.assistantMask.slice(0, p).every((x) => x === 0)).toBe(true);
      return { ids: full.ids, labels: full.ids.map((id, t) => (t >= p && full.assistantMask[t] ? id : -100)) };
    };
    const textSide = (c: string): LabelledSequence => {
      const p = tok.encode('The sky is');
      const s = [...tok.encode(c, { addSpecialTokens: false }), tok.eosTokenIds[0]!];
      return { ids: [...p, ...s], labels: [...p.map(() => -100), ...s] };
    };
    const seqs: LabelledSequence[] = [side('Blue.'), side('Seven.'), textSide(' blue'), textSide(' made of cheese')];
    // What is scored: the assistant reply with its <|eot_id|>; the text + EOS.
    const scored = (s: LabelledSequence) => tok.decode(Array.from(s.ids).filter((_, t) => s.labels![t] !== -100));
    expect(seqs.map(scored)).toEqual(['Blue.<|eot_id|>', 'Seven.<|eot_id|>', ' blue<|eot_id|>', ' made of cheese<|eot_id|>']);
    const lib = (await scoreSequences(model, seqs)).map((s) => ({ logprob_sum: s.logprobSum, n_tokens: s.nTokens }));

    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out).toHaveLength(3);
    expectScore(out[0], lib[0]!, 'sft messages');
    expect(Object.keys(out[1]!)).toEqual(['chosen', 'rejected']);
    expectScore(out[1]!.chosen, lib[0]!, 'dpo messages chosen');
    expectScore(out[1]!.rejected, lib[1]!, 'dpo messages rejected');
    expectScore(out[2]!.chosen, lib[2]!, 'dpo text chosen');
    expectScore(out[2]!.rejected, lib[3]!, 'dpo text rejected');
  });

  it('logprobs on pre-tokenized SFT/DPO records of a tokenizer-less model with an adapter equals the float64 reference; bad lines are named', async () => {
    const a = ids(12, 4, 300);
    const b = ids(7, 5, 300);
    const records = [
      { input_ids: a, labels: a.map((id, t) => (t < 5 ? -100 : id)) },
      { input_ids: b },
      { prompt_input_ids: b.slice(0, 3), chosen_input_ids: a.slice(0, 4), rejected_input_ids: b.slice(3) },
    ];
    const data = join(dir, 'rand.jsonl');
    await writeFile(data, records.map((r) => JSON.stringify(r)).join('\n'));
    const want = (lora: HostLora | null) => [
      referenceScore({ ids: a, labels: records[0]!.labels! }, lora),
      referenceScore({ ids: b, labels: b }, lora),
      {
        chosen: referenceScore({ ids: [...b.slice(0, 3), ...a.slice(0, 4)], labels: [-100, -100, -100, ...a.slice(0, 4)] }, lora),
        rejected: referenceScore({ ids: [...b.slice(0, 3), ...b.slice(3)], labels: [-100, -100, -100, ...b.slice(3)] }, lora),
      },
    ];
    for (const lora of [hostLora]) {
      const r = await cli('logprobs', '--model', randDir, '--data', data, ...(lora ? ['--adapter', adapterDir] : []), '--batch-size', '2');
      expect(r.code, r.stderr).toBe(0);
      const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, never>);
      const w = want(lora);
      expectScore(out[0], w[0] as never, `adapter ${!!lora} sft 0`);
      expectScore(out[1], w[1] as never, `adapter ${!!lora} sft 1 (no labels: every token)`);
      const dpo = w[2] as unknown as Record<'chosen' | 'rejected', { logprob_sum: number; n_tokens: number }>;
      expectScore(out[2]!.chosen, dpo.chosen, `adapter ${!!lora} dpo chosen`);
      expectScore(out[2]!.rejected, dpo.rejected, `adapter ${!!lora} dpo rejected`);
    }

    // Malformed lines are named (before any model is loaded); so are text records without a tokenizer.
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, [JSON.stringify(records[0]), '{"input_ids": [1, 2', JSON.stringify({ input_ids: [1, 2], labels: [1] })].join('\n'));
    const e1 = await cli('logprobs', '--model', randDir, '--data', bad);
    expect(e1.code).toBe(1);
    expect(e1.stderr).toMatch(/bad\.jsonl line 2: invalid JSON.*\(and 1 more bad lines\)/);
    await writeFile(bad, [JSON.stringify(records[0]), JSON.stringify({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] })].join('\n'));
    const e2 = await cli('logprobs', '--model', randDir, '--data', bad);
    expect(e2.code).toBe(1);
    expect(e2.stderr).toMatch(/bad\.jsonl line 2: text records need a tokenizer.*no tokenizer\.json/);
  });

  it('plan prints the Llama-3.2-1B memory plan (table and --json) and a folder plan; info prints the adapter', async () => {
    const want = planMemory(LLAMA_3_2_PRESETS['llama-3.2-1b'], { batch: 4, seq: 512, loraRank: 16, weightDType: 'bf16' });
    expect(formatBytes(want.training)).toBe('3.23 GiB'); // lm_head chunk of 512 rows (the watchdog bound)
    const [table, js, folder, info] = await Promise.all([
      cli('plan', '--model', 'llama-3.2-1b', '--seq', '512', '--batch', '4', '--lora-rank', '16'),
      cli('plan', '--model', 'llama-3.2-1b', '--seq', '512', '--batch', '4', '--lora-rank', '16', '--json'),
      cli('plan', '--model', randDir, '--seq', '8', '--batch', '2', '--lora-rank', '4', '--json'),
      cli('info'),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^training\\s+${want.training}\\s+3\\.23 GiB$`, 'm'));
    expect(table.stdout).toMatch(/^weights\s+\d+\s+2\.30 GiB$/m);
    const plan = json(js) as typeof want;
    expect(plan.training).toBe(want.training);
    expect(plan.bytes).toEqual(want.bytes);
    expect((json(folder) as typeof want).training).toBe(planMemory(RAND_CONFIG, { batch: 2, seq: 8, loraRank: 4, weightDType: 'f32' }).training);
    expect(info.code, info.stderr).toBe(0);
    // SwiftShader here; whatever adapter this process got elsewhere.
    expect(info.stdout).toContain(`adapter:      ${ctx.adapter.description}`);
    if (ctx.adapter.isFallback) expect(info.stdout).toMatch(/^adapter: +SwiftShader.*CPU fallback/m);
    expect(info.stdout).toMatch(/maxStorageBufferBindingSize +\d+/);
  });
});
