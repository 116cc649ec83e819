// Which matmul paths a model takes on a hardware GPU once the self-test proved them, checked on
// SwiftShader's device seen as a GPU (an AdapterSummary with isFallback false, so the defaults
// are the GPU paths): decode's projections take the subgroup GEMV (SwiftShader has subgroups) and
// the logits still match float64; generation's prefill takes the f16-input path where it is
// proven (here the real variant then stops at the missing shader-f16, which shows the route),
// while the training forward on the same context never does.
import { describe, expect, it } from 'vitest';
import { MATMUL_PATHS } from '../engine/matmul';
import { markProven } from '../engine/proven';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { GpuContext } from '../gpu/context';
import { forward } from './forward';
import { appendTokens, createKvCache, readLogits } from './kv-cache';
import { referenceForward } from './reference';
import { BF16_TIED, setup } from './testing/fixtures';

/**
 * A second context on the test device that takes the GPU paths (the device is shared, never
 * destroyed here), and the kernel entry points its dispatches used, as "<module>.<entry point>".
 */
async function gpuLikeContext(): Promise<{ ctx: GpuContext; used: Set<string> }> {
  const base = await testContext();
  const ctx = new GpuContext(base.device, { ...base.adapter, isFallback: false });
  const used = new Set<string>();
  const pipeline = ctx.kernels.pipeline.bind(ctx.kernels);
  ctx.kernels.pipeline = (spec) => (used.add(`${spec.name}.${spec.entryPoint}`), pipeline(spec));
  return { ctx, used };
}

describe('generation on a GPU with proven paths', () => {
  it('decode steps take gemv-sg once proven and match float64 logits (rel err < 1e-5)', async () => {
    const { ctx, used } = await gpuLikeContext();
    markProven(ctx, MATMUL_PATHS.gemvSg);
    const seed = freshSeed();
    const s = BF16_TIED;
    const m = setup(ctx, s, seed);
    const B = s.batchSize;
    const T = s.seqLen;
    const cache = createKvCache(m.model, { batchSize: B, capacity: T });
    const slice = (a: Int32Array, t1: number) => Int32Array.from({ length: B * t1 }, (_, i) => a[Math.floor(i / t1) * T + (i % t1)]!);
    try {
      const prompt = T - 2;
      appendTokens(m.model, cache, { ids: slice(m.inputs.ids, prompt), mask: slice(m.inputs.mask, prompt), tokens: prompt }, { lora: m.lora });
      for (let t = prompt; t < T; t++) {
        const one = (a: Int32Array) => Int32Array.from({ length: B }, (_, b) => a[b * T + t]!);
        used.clear();
        appendTokens(m.model, cache, { ids: one(m.inputs.ids), mask: one(m.inputs.mask), tokens: 1 }, { lora: m.lora });
        // Every projection (K = 48 or 56: 16-byte loads) by the subgroup GEMV, none by the old one.
        expect([...used].filter((k) => k.startsWith('matmul.'))).toEqual([]);
        expect(used.has('matmul_gemv_sg.gemv_sg_bf16')).toBe(true);
        const ref = referenceForward(m.host, { batchSize: B, seqLen: t + 1, ids: slice(m.inputs.ids, t + 1), mask: slice(m.inputs.mask, t + 1) }, m.hostLora);
        const V = m.config.vocabSize;
        const want = new Float64Array(B * V);
        for (let b = 0; b < B; b++) want.set(ref.logits.subarray((b * (t + 1) + t) * V, (b * (t + 1) + t + 1) * V), b * V);
        expect(relError(await readLogits(m.model, cache), want), `seed ${seed} after ${t + 1} positions`).toBeLessThan(1e-5);
      }
    } finally {
      cache.release();
      m.release();
    }
  });

  it("prefill takes the f16 path once proven (the real variant, so it stops here at the missing shader-f16); training's forward does not", async () => {
    const { ctx, used } = await gpuLikeContext();
    markProven(ctx, MATMUL_PATHS.f16);
    const seed = freshSeed();
    const s = BF16_TIED;
    const m = setup(ctx, s, seed);
    const cache = createKvCache(m.model, { batchSize: s.batchSize, capacity: s.seqLen });
    try {
      forward(m.model, m.ws, { lora: m.lora });
      await ctx.flush();
      expect([...used].filter((k) => k.startsWith('matmul_f16'))).toEqual([]);
      expect([...used].some((k) => k.startsWith('matmul.') && k.includes('_nt_'))).toBe(true); // training's projections: the f32 paths
      expect(() => appendTokens(m.model, cache, { ids: m.inputs.ids, mask: m.inputs.mask, tokens: s.seqLen }, { lora: m.lora })).toThrow(
        /matmul nt \(f16\): needs the adapter feature 'shader-f16'/,
      );
    } finally {
      cache.release();
      m.release();
    }
  });
});
