// The step-accounting helpers count what really happens: dispatches, submits and readbacks of a
// known batch, weight bytes of a real model's tensors, and the FLOP ratio's two terms.
import { describe, expect, it } from 'vitest';
import { matmul } from '../src/engine/matmul';
import { testContext } from '../src/engine/testing/gpu';
import { LLAMA_3_2_PRESETS } from '../src/model/config';
import { countGpuWork, modelFlops, modelMatmulFlops, weightBytesPerToken } from './step-accounting';
import { loadDemoModel } from './demo-model';
import { stepFlops } from './model-step';

const FILL = `
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn fill() { out[0] = 7u; }`;

describe('step accounting', () => {
  it('counts dispatches (skipping empty grids), submits and readbacks of a known batch, and restores what it wrapped', async () => {
    const ctx = await testContext();
    const t = ctx.tensor([4], 'u32', 't');
    const kernel = { name: 'step-accounting-test', code: FILL, entryPoint: 'fill' };
    const work = await countGpuWork(ctx, async (mark) => {
      const b = ctx.batch();
      b.dispatch({ kernel, buffers: [t], groups: [1] });
      b.dispatch({ kernel, buffers: [t], groups: [1] });
      b.dispatch({ kernel, buffers: [t], groups: [0] });
      b.submit();
      expect((await ctx.read(t))[0]).toBe(7);
      return mark();
    });
    expect(work).toEqual({ dispatches: 2, maxMatmulFlops: 0, maxAttentionFlops: 0, bindGroups: work.bindGroups, submits: 2, readbacks: 1, readBytes: 16, matmulFlops: 0 });
    // The second dispatch binds what the first did: one bind group at most (none if an earlier test made it).
    expect(work.bindGroups).toBeLessThanOrEqual(1);
    const after = await countGpuWork(ctx, async (mark) => mark());
    expect(after).toEqual({ dispatches: 0, maxMatmulFlops: 0, maxAttentionFlops: 0, bindGroups: 0, submits: 0, readbacks: 0, readBytes: 0, matmulFlops: 0 });
    t.release();
  });

  it('counts 2·M·N·K for each matmul dispatch, whatever its layout', async () => {
    const ctx = await testContext();
    const [M, N, K] = [5, 7, 9];
    const a = ctx.upload(Array.from({ length: M * K }, (_, i) => i % 3), [M, K], 'f32', 'a');
    const b = ctx.upload(Array.from({ length: N * K }, (_, i) => i % 5), [N, K], 'f32', 'b');
    const out = ctx.tensor([M, N], 'f32', 'out');
    const dA = ctx.tensor([M, K], 'f32', 'dA');
    const work = await countGpuWork(ctx, async (mark) => {
      const batch = ctx.batch();
      matmul(batch, { a, b, out, layout: 'nt' }); // [M,K]·[N,K]ᵀ
      matmul(batch, { a: out, b, out: dA, layout: 'nn' }); // [M,N]·[N,K]
      batch.submit();
      await ctx.flush();
      return mark();
    });
    expect(work.matmulFlops).toBe(2 * (2 * M * N * K));
    expect(work.maxMatmulFlops).toBe(2 * M * N * K);
    expect(work.dispatches).toBe(2);
    for (const x of [a, b, out, dA]) x.release();
  });

  it('weight bytes per token: every layer tensor, the norm and the lm_head once, one row of an untied embedding', async () => {
    const ctx = await testContext();
    const demo = await loadDemoModel(ctx);
    try {
      const w = demo.loaded.weights;
      let layers = 0;
      for (const l of w.layers) for (const x of Object.values(l)) layers += x.byteLength;
      const table = (r: typeof w.embed) => r.chunks.reduce((s, c) => s + c.tensor.byteLength, 0);
      const want = layers + w.finalNorm.byteLength + table(w.lmHead) + (w.lmHead === w.embed ? 0 : table(w.embed) / w.config.vocabSize);
      expect(weightBytesPerToken(w)).toBe(want);
      expect(want).toBeGreaterThan(table(w.lmHead));
    } finally {
      demo.release();
    }
  });

  it('a checkpointed 1B LoRA step executes more than the model FLOPs: one layer forward and one lm_head pass more', () => {
    const c = LLAMA_3_2_PRESETS['llama-3.2-1b']!;
    const lora = { rank: 16, alpha: 32 };
    const ratio = stepFlops(c, 1, 512, lora) / modelFlops(c, 1, 512, lora);
    // Projections 3 vs 2 passes, lm_head 3 vs 2 dominate: close to 1.5.
    expect(ratio).toBeGreaterThan(1.4);
    expect(ratio).toBeLessThan(1.55);
  });

  it('a step that keeps activations and logits executes exactly the model FLOPs', () => {
    const c = LLAMA_3_2_PRESETS['llama-3.2-1b']!;
    const lora = { rank: 16, alpha: 32 };
    const kept = stepFlops(c, 1, 512, lora, { keepActivations: true, keepLogits: true });
    expect(kept / modelFlops(c, 1, 512, lora)).toBeCloseTo(1, 12);
    const logitsOnly = stepFlops(c, 1, 512, lora, { keepLogits: true });
    expect(stepFlops(c, 1, 512, lora) - logitsOnly).toBe(2 * 512 * c.vocabSize * c.hiddenSize);
  });

  it('model matmul FLOPs: forward, input gradient and 3x the LoRA forward, nothing recomputed', () => {
    const c = LLAMA_3_2_PRESETS['llama-3.2-1b']!;
    const lora = { rank: 16, alpha: 32 };
    // 2·params·tokens forward for 1.24B parameters (the tied lm_head counts as a matmul), twice.
    const perToken = modelMatmulFlops(c, 1, 512, lora) / 512;
    const params = c.numLayers * (c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize) + c.vocabSize * c.hiddenSize;
    expect(perToken).toBeGreaterThan(4 * params);
    expect(perToken).toBeLessThan(4 * params * 1.02);
  });
});
