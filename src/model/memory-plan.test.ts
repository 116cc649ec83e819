import { describe, expect, it } from 'vitest';
import { LLAMA_3_2_PRESETS } from './config';
import { DEFAULT_MAX_GENERATION_ROWS, formatBytes, generationBatchLayout, generationShape, MEMORY_CATEGORIES, planGenerationBatch, planMemory, type MemoryPlanOptions } from './memory-plan';
import { presetById, presetModelConfig } from './presets';

// The plan against the pool's measured peak runs where the pipelines are already compiled
// (SwiftShader takes seconds per pipeline): training in backward.test.ts, generation in
// kv-cache.test.ts.

describe('memory plan', () => {
  it('Llama-3.2 presets: weights and LoRA sizes match the published parameter counts', () => {
    const rows: string[] = [];
    for (const [name, params, lora16] of [
      ['llama-3.2-1b', 1_235_814_400, 11_272_192],
      ['llama-3.2-3b', 3_212_749_824, 24_313_856],
    ] as const) {
      const config = LLAMA_3_2_PRESETS[name];
      const plan = planMemory(config, { batch: 4, seq: 512, loraRank: 16, weightDType: 'bf16', generation: { batch: 1, capacity: 2048, prefill: 512 } });
      // Weights: 2 bytes a parameter, plus at most 16 bytes of pool rounding per tensor.
      const tensors = 2 + 9 * config.numLayers + 5;
      expect(plan.bytes.weights - 2 * params).toBeGreaterThanOrEqual(0);
      expect(plan.bytes.weights - 2 * params).toBeLessThan(16 * tensors + 4096);
      expect(plan.bytes.adapters).toBe(4 * lora16);
      expect(plan.bytes.adapterGrads).toBe(4 * lora16);
      expect(plan.bytes.optimizerMoments).toBe(8 * lora16);
      rows.push(`${name} (B=4, T=512, r=16, bf16; generation B=1, 2048 positions)`);
      for (const k of MEMORY_CATEGORIES) rows.push(`  ${k.padEnd(20)} ${formatBytes(plan.bytes[k])}`);
      rows.push(`  training ${formatBytes(plan.training)}, generation ${formatBytes(plan.generation)}, total ${formatBytes(plan.total)}`);
    }
    console.log(rows.join('\n'));
  });

  it('categories follow their formulas (Llama-3.2-1B, B=4, T=512, r=16 on all seven targets)', () => {
    const c = LLAMA_3_2_PRESETS['llama-3.2-1b'];
    const plan = planMemory(c, { batch: 4, seq: 512, loraRank: 16, weightDType: 'bf16' });
    const N = 4 * 512;
    const [H, I, qd, kvd] = [c.hiddenSize, c.intermediateSize, c.numHeads * c.headDim, c.numKvHeads * c.headDim];
    expect(plan.bytes.savedLayerInputs).toBe(4 * (c.numLayers + 1) * N * H);
    // xn1, h1, xn2, proj; q, attn; k, v; gate, up, act; rstd1, rstd2; attention lse; x·Aᵀ per target.
    expect(plan.bytes.layerActivations).toBe(4 * (4 * N * H + 2 * N * qd + 2 * N * kvd + 3 * N * I + 2 * N + N * c.numHeads + 7 * N * 16));
    // dResid, dXn; dAct, dUp; dAttn, dq; dk, dv; the LoRA scratch.
    expect(plan.bytes.layerGradients).toBe(4 * (2 * N * H + 2 * N * I + 2 * N * qd + 2 * N * kvd + N * 16));
    // Logits chunk (the watchdog bound, 2^32 FLOPs per lm_head dispatch: 512 rows for 2048 tokens
    // of H 2048, under the 64 MiB bound's 8192), lse state, logp, lse, per-sequence sums and counts.
    expect(plan.lmHeadChunk).toBe(512);
    expect(2 * N * plan.lmHeadChunk * 2048).toBeLessThanOrEqual(2 ** 32);
    expect(plan.bytes.lmHead).toBe(4 * (N * 512 + 4 * N + 2 * N) + 2 * 16);
    expect(plan.bytes.batchInputs).toBe(5 * 4 * N);
    expect(plan.bytes.fullGrads).toBe(0);
    // The bf16 embedding (525 MB) is split into chunks of at most the binding limit.
    expect(plan.largestTensor).toEqual({ name: 'model.embed_tokens.weight', bytes: 128 * 1024 * 1024 });
    expect(planMemory(c, { batch: 4, seq: 512, weightDType: 'bf16', maxBindingBytes: 2 ** 30 }).largestTensor.bytes).toBe(2 * 128256 * 2048);
  });
});

describe('the batch of a generation', () => {
  const smol = presetModelConfig(presetById('smollm2-135m')!);
  const job = { promptTokens: 200, maxNewTokens: 512 };
  const gen = (rows: number, n: number, extra: Partial<MemoryPlanOptions> = {}) =>
    planMemory(smol, { batch: 1, seq: 1, weightDType: 'bf16', generation: generationShape(rows, { ...job, samplesPerPrompt: n }), ...extra });

  it('groups whole prompts per batch when they fit, else samples of one prompt', () => {
    expect(generationBatchLayout(16, 1)).toEqual({ rows: 16, prefillRows: 16 });
    expect(generationBatchLayout(16, 1, 5)).toEqual({ rows: 5, prefillRows: 5 });
    expect(generationBatchLayout(16, 4)).toEqual({ rows: 16, prefillRows: 4 });
    expect(generationBatchLayout(15, 4)).toEqual({ rows: 12, prefillRows: 3 });
    expect(generationBatchLayout(16, 4, 2)).toEqual({ rows: 8, prefillRows: 2 });
    expect(generationBatchLayout(3, 4)).toEqual({ rows: 3, prefillRows: 1 });
    expect(generationShape(16, { ...job, samplesPerPrompt: 4 })).toEqual({ batch: 16, capacity: 711, prefill: 200, prompts: 4 });
  });

  it('shared prompts: a [prompts × prefill] cache and workspace beside the rows’ cache and their one-token step workspace', () => {
    const c = smol;
    const shared = gen(16, 4);
    const inPlace = gen(16, 1);
    // The rows' cache is the same; the shared plan adds 4 prompts' cache and trades the 16-row
    // prefill workspace for a 4-row one plus the 16-row decode step's.
    const kvPerPosition = 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
    expect(shared.bytes.kvCache - inPlace.bytes.kvCache).toBeGreaterThanOrEqual(4 * 200 * kvPerPosition);
    expect(shared.bytes.kvCache - inPlace.bytes.kvCache).toBeLessThan(4 * 200 * kvPerPosition + 4 * (c.hiddenSize + c.vocabSize + 200 + 2) * 4 + 16 * 8);
    expect(shared.bytes.generationWorkspace).toBeLessThan(inPlace.bytes.generationWorkspace / 2);
    expect(shared.generation).toBeLessThan(inPlace.generation);
  });

  it('picks the largest batch whose generation plan fits the memory budget (checked against planMemory)', () => {
    for (const n of [1, 4]) {
      const budget = gen(n === 1 ? 10 : 12, n).generation + 1000;
      const b = planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: budget, ...job, samplesPerPrompt: n, maxRows: 64 });
      expect(b.limitedBy).toBe('memory');
      expect(b.batchSize).toBe(n === 1 ? 10 : 12);
      expect(b.prefillRows).toBe(n === 1 ? 10 : 3);
      expect(b.plan.generation).toBe(gen(b.batchSize, n).generation);
      expect(b.plan.generation).toBeLessThanOrEqual(budget);
      // The next batch generateSamples could form does not fit.
      expect(gen(b.batchSize + n, n).generation).toBeGreaterThan(budget);
    }
    // 3 samples a prompt and room for 2 rows: 2 samples of one prompt a batch.
    const two = planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: gen(2, 3).generation, ...job, samplesPerPrompt: 3 });
    expect([two.batchSize, two.prefillRows]).toEqual([2, 1]);
  });

  it('without a budget: maxRows (default 16), or fewer where a tensor would pass the buffer limit', () => {
    const free = planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: null, ...job, samplesPerPrompt: 4 });
    expect(free).toMatchObject({ batchSize: DEFAULT_MAX_GENERATION_ROWS, prefillRows: 4, limitedBy: 'maxRows' });
    // A 64 MiB buffer limit: each layer's k is [rows, 711, 3, 64] f32 = 546 KB a row, and the
    // [rows × 200] prefill workspace's MLP activations [rows·200, 1536] f32 = 1.2 MB a row.
    const limit = 64 * 1024 * 1024;
    const b = planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: null, ...job, maxRows: 256, maxBindingBytes: limit });
    expect(b.limitedBy).toBe('buffer limit');
    expect(b.plan.largestTensor.bytes).toBeLessThanOrEqual(limit);
    expect(gen(b.batchSize + 1, 1, { maxBindingBytes: limit }).largestTensor.bytes).toBeGreaterThan(limit);
    // maxBufferSize below the binding limit binds too.
    expect(planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: null, ...job, maxRows: 256, maxBufferBytes: limit }).batchSize).toBe(b.batchSize);
  });

  it('refuses a generation whose one row does not fit, saying why', () => {
    expect(() => planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: 100 * 1024 * 1024, ...job })).toThrow(
      /generation of one row \(200 prompt \+ 512 new tokens\) needs [\d.]+ MiB, more than the 100.00 MiB available/,
    );
    expect(() => planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: null, promptTokens: 8000, maxNewTokens: 100, maxBindingBytes: 16 * 1024 * 1024, maxBufferBytes: 16 * 1024 * 1024 })).toThrow(
      /exceeds this device's buffer limit of 16.00 MiB/,
    );
    expect(() => planGenerationBatch(smol, { weightDType: 'bf16', memoryBytes: null, ...job, samplesPerPrompt: 0 })).toThrow(/samplesPerPrompt 0 must be an integer ≥ 1/);
  });
});
