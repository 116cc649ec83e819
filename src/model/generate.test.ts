import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { testContext } from '../engine/testing/gpu';
import { generate, generateBatch } from './generate';
import { createDecoderModel, type DecoderModel } from './decoder';
import { createLoraAdapters, type LoraAdapters } from './lora';
import { randomHostLora, randomHostWeights, seededRandom, setHostLora, tinyConfig, uploadHostWeights } from './random';
import { referenceForward, type HostLora, type HostWeights } from './reference';
import { argmax, createSampler, type SamplingOptions } from './sampling';
import { releaseWeights, type ModelWeights } from './weights';

// A fixed tiny model (bf16, tied, llama3 RoPE, GQA, vocab split into two tensors): fixed seeds, so
// the greedy margins checked below stay what they were when the test was written.
const SEED = 1234;
const CONFIG = tinyConfig({ hiddenSize: 48, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 56, vocabSize: 300, tieWordEmbeddings: true, llama3Rope: true });

let ctx: GpuContext;
let host: HostWeights;
let hostLora: HostLora;
let weights: ModelWeights;
let model: DecoderModel;
let lora: LoraAdapters;

beforeAll(async () => {
  ctx = await testContext();
  host = randomHostWeights(CONFIG, 'bf16', SEED);
  // Large B so the adapter visibly changes the model.
  hostLora = randomHostLora(CONFIG, { rank: 4, alpha: 8 }, SEED + 1, 1.0);
  weights = uploadHostWeights(ctx, host, 160 * 48 * 2);
  model = createDecoderModel(ctx, weights);
  lora = createLoraAdapters(ctx, CONFIG, { rank: 4, alpha: 8 }, { trainable: false });
  setHostLora(ctx, lora, hostLora);
});

afterAll(() => {
  lora?.release();
  model?.release();
  if (weights) releaseWeights(weights);
});

function prompt(n: number, seed: number): number[] {
  const next = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(next() * CONFIG.vocabSize));
}

/** Generation by full float64 recompute: the reference forward over the whole sequence each step. */
function referenceGenerate(p: number[], n: number, sampling: SamplingOptions, ad: HostLora | null, eos: number[] = []): { ids: number[]; minMargin: number } {
  const seq = [...p];
  const ids: number[] = [];
  const sampler = createSampler(sampling);
  let minMargin = Infinity;
  const V = CONFIG.vocabSize;
  for (let step = 0; step < n; step++) {
    const T = seq.length;
    const ref = referenceForward(host, { batchSize: 1, seqLen: T, ids: seq, mask: new Array<number>(T).fill(1) }, ad);
    const logits = ref.logits.subarray((T - 1) * V, T * V);
    const best = argmax(logits);
    let second = -Infinity;
    for (let i = 0; i < V; i++) if (i !== best) second = Math.max(second, logits[i]!);
    minMargin = Math.min(minMargin, logits[best]! - second);
    const id = sampler.next(Float32Array.from(logits), seq);
    ids.push(id);
    seq.push(id);
    if (eos.includes(id)) break;
  }
  return { ids, minMargin };
}

describe('generate', () => {
  it('greedy with the KV cache equals greedy by full float64 recompute, with and without the adapter; they differ', async () => {
    const p = prompt(6, 1);
    const n = 10;
    const streamed: [number, number][] = [];
    lora.enabled = true;
    const withAdapter = await generate(model, { promptIds: p, maxNewTokens: n, sampling: { temperature: 0 }, lora }, (id, step) => {
      streamed.push([id, step]);
    });
    const refWith = referenceGenerate(p, n, { temperature: 0 }, hostLora);
    // A margin far above f32 error makes the argmax comparison meaningful.
    expect(refWith.minMargin).toBeGreaterThan(1e-3);
    expect(withAdapter).toEqual({ ids: refWith.ids, finishReason: 'length' });
    expect(streamed).toEqual(refWith.ids.map((id, i) => [id, i]));

    lora.enabled = false;
    const base = await generate(model, { promptIds: p, maxNewTokens: n, sampling: { temperature: 0 }, lora });
    lora.enabled = true;
    const none = await generate(model, { promptIds: p, maxNewTokens: n, sampling: { temperature: 0 } });
    const refBase = referenceGenerate(p, n, { temperature: 0 }, null);
    expect(refBase.minMargin).toBeGreaterThan(1e-3);
    expect(base.ids).toEqual(refBase.ids);
    expect(none.ids).toEqual(refBase.ids);
    expect(withAdapter.ids).not.toEqual(base.ids);
  });

  it('seeded sampling is reproducible and equals the same sampler over float64 logits; another seed differs', async () => {
    const p = prompt(4, 2);
    const sampling = { temperature: 1.5, topK: 40, topP: 0.95, repetitionPenalty: 1.3, seed: 7 };
    const a = await generate(model, { promptIds: p, maxNewTokens: 8, sampling, lora });
    const b = await generate(model, { promptIds: p, maxNewTokens: 8, sampling, lora });
    expect(b).toEqual(a);
    expect(a.ids).toEqual(referenceGenerate(p, 8, sampling, hostLora).ids);
    const c = await generate(model, { promptIds: p, maxNewTokens: 8, sampling: { ...sampling, seed: 8 }, lora });
    expect(c.ids).not.toEqual(a.ids);
  });

  it('stops at any eos id (kept in the output), at maxNewTokens, or when aborted', async () => {
    const p = prompt(5, 3);
    const full = await generate(model, { promptIds: p, maxNewTokens: 6, sampling: { temperature: 0 } });
    expect(full.ids).toHaveLength(6);
    const stopAt = full.ids.indexOf(full.ids[3]!);
    const r = await generate(model, { promptIds: p, maxNewTokens: 6, sampling: { temperature: 0 }, eosTokenIds: [299, full.ids[3]!] });
    expect(r).toEqual({ ids: full.ids.slice(0, stopAt + 1), finishReason: 'eos' });
    expect(await generate(model, { promptIds: p, maxNewTokens: 0 })).toEqual({ ids: [], finishReason: 'length' });
    expect((await generate(model, { promptIds: p, maxNewTokens: 1, sampling: { temperature: 0 } })).ids).toEqual(full.ids.slice(0, 1));

    const ac = new AbortController();
    const aborted = await generate(model, { promptIds: p, maxNewTokens: 6, sampling: { temperature: 0 }, signal: ac.signal }, (_id, step) => {
      if (step === 1) ac.abort();
    });
    expect(aborted).toEqual({ ids: full.ids.slice(0, 2), finishReason: 'aborted' });
  });

  it('a left-padded batch of prompts generates what each prompt generates alone', async () => {
    const prompts = [prompt(3, 4), prompt(7, 5)];
    const eos = [(await generate(model, { promptIds: prompts[0]!, maxNewTokens: 3, sampling: { temperature: 0 }, lora })).ids[2]!];
    const sampling = { temperature: 0 };
    const alone = [];
    for (const p of prompts) alone.push(await generate(model, { promptIds: p, maxNewTokens: 5, sampling, eosTokenIds: eos, lora }));
    const rows: number[] = [];
    const batch = await generateBatch(model, { prompts, maxNewTokens: 5, sampling, eosTokenIds: eos, lora }, (row) => {
      rows.push(row);
    });
    expect(batch).toEqual(alone);
    expect(batch[0]!.finishReason).toBe('eos');
    expect(rows.filter((r) => r === 0)).toHaveLength(batch[0]!.ids.length);
  });

  it('greedy on the GPU picks what the host sampler picks, with one submit and 4·B bytes read per decode step', async () => {
    const prompts = [prompt(4, 8), prompt(9, 9), prompt(1, 10)];
    const sampling = { temperature: 0 };
    const host = await generateBatch(model, { prompts, maxNewTokens: 6, sampling, lora, gpuSampling: false });
    const queue = ctx.device.queue;
    const submit = queue.submit.bind(queue);
    let submits = 0;
    queue.submit = (cbs: Iterable<GPUCommandBuffer>) => {
      submits++;
      submit(cbs);
    };
    const perStep: number[] = [];
    let gpu;
    try {
      gpu = await generateBatch(model, { prompts, maxNewTokens: 6, sampling, lora }, (row) => {
        if (row === 0) perStep.push(submits);
      });
    } finally {
      queue.submit = submit;
    }
    expect(gpu).toEqual(host);
    // Between the tokens of consecutive steps: exactly one submit (append + lm_head + argmax + copy).
    for (let i = 1; i < perStep.length; i++) expect(perStep[i]! - perStep[i - 1]!).toBe(1);
    expect(perStep).toHaveLength(6);
  });

  it('refuses bad inputs with clear messages', async () => {
    await expect(generate(model, { promptIds: [], maxNewTokens: 2 })).rejects.toThrow(/empty/);
    await expect(generate(model, { promptIds: [1, 300], maxNewTokens: 2 })).rejects.toThrow(/token 1 = 300/);
    await expect(generate(model, { promptIds: [1], maxNewTokens: -1 })).rejects.toThrow(/maxNewTokens/);
    await expect(generate(model, { promptIds: [1], maxNewTokens: 5000 })).rejects.toThrow(/max_position_embeddings/);
    await expect(generate(model, { promptIds: [1], maxNewTokens: 2, sampling: { topP: 2 } })).rejects.toThrow(/top-p/);
  });
});

describe('greedy generation for every family', () => {
  // Fixed seeds: the greedy margins stay well above f32 error (checked).
  it.each([
    { family: 'qwen2' as const, shape: { hiddenSize: 40, numHeads: 5, numKvHeads: 1, headDim: 12, intermediateSize: 53 } },
    { family: 'qwen3' as const, shape: { hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 12, intermediateSize: 45, tieWordEmbeddings: true } },
    { family: 'mistral' as const, shape: { hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 47, slidingWindow: 64 } },
  ])('$family: the KV-cache greedy continuation equals greedy by full float64 recompute', async ({ family, shape }) => {
    const config = tinyConfig({ family, vocabSize: 211, ...shape });
    const h = randomHostWeights(config, 'bf16', 77);
    const w = uploadHostWeights(ctx, h);
    const m = createDecoderModel(ctx, w);
    try {
      const next = seededRandom(5);
      const seq = Array.from({ length: 5 }, () => Math.floor(next() * config.vocabSize));
      const p = [...seq];
      const want: number[] = [];
      let minMargin = Infinity;
      for (let step = 0; step < 8; step++) {
        const T = seq.length;
        const logits = referenceForward(h, { batchSize: 1, seqLen: T, ids: seq, mask: new Array<number>(T).fill(1) }).logits.subarray((T - 1) * 211, T * 211);
        const best = argmax(logits);
        minMargin = Math.min(minMargin, ...Array.from(logits, (v, i) => (i === best ? Infinity : logits[best]! - v)));
        want.push(best);
        seq.push(best);
      }
      expect(minMargin).toBeGreaterThan(1e-4);
      const got = await generate(m, { promptIds: p, maxNewTokens: 8, sampling: { temperature: 0 } });
      expect(got.ids).toEqual(want);
    } finally {
      m.release();
      releaseWeights(w);
    }
  });
});

describe('sliding window', () => {
  it('generation that would reach past a Mistral sliding window is refused, naming the field', async () => {
    const config = tinyConfig({ family: 'mistral', slidingWindow: 8 });
    const w = uploadHostWeights(ctx, randomHostWeights(config, 'f32', 3));
    const m = createDecoderModel(ctx, w);
    try {
      await expect(generate(m, { promptIds: [1, 2, 3, 4, 5], maxNewTokens: 10, sampling: { temperature: 0 } })).rejects.toThrow(/"sliding_window" is 8, and a generation cache of \d+ tokens would use it/);
      expect((await generate(m, { promptIds: [1, 2, 3], maxNewTokens: 4, sampling: { temperature: 0 } })).ids).toHaveLength(4);
    } finally {
      m.release();
      releaseWeights(w);
    }
  });
});
