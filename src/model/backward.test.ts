import { describe, expect, it } from 'vitest';
import { finiteDifferences, relError, sampleIndices } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed, randn, rng } from '../engine/testing/random';
import { backward, countTargets } from './backward';
import { forward } from './forward';
import { createFullGrads } from './full-grads';
import { planMemory } from './memory-plan';
import { LORA_TARGETS, type LoraTarget } from './lora';
import { referenceLoss, type HostLora, type HostWeights } from './reference';
import { BF16_TIED, F32_UNTIED, FAMILY_SCENARIOS, poisonAll, QWEN2_BF16, QWEN3_F32, setup, type Scenario } from './testing/fixtures';
import type { LayerWeightName } from './weights';

/** Copy of an adapter where one value may be replaced (finite differences mutate copies). */
function cloneLora(h: HostLora): HostLora {
  return { ...h, layers: h.layers.map((l) => Object.fromEntries(Object.entries(l).map(([t, m]) => [t, { a: m.a.slice(), b: m.b.slice() }]))) };
}

describe('decoder backward', () => {
  it.each([BF16_TIED, ...FAMILY_SCENARIOS])('LoRA gradients (A and B, every target, both layers) match finite differences of the float64 mean CE, $name (rel err < 1e-4)', async (s) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, s, seed);
    try {
      const n = countTargets(m.inputs.targets);
      const t0 = performance.now();
      forward(m.model, m.ws, { lora: m.lora });
      backward(m.model, m.ws, { lora: m.lora, scale: 1 / n });
      await ctx.flush();
      const gpuMs = performance.now() - t0;
      const next = rng(seed + 3);
      const got: number[] = [];
      const want: number[] = [];
      for (let l = 0; l < m.config.numLayers; l++)
        for (const t of LORA_TARGETS)
          for (const which of ['a', 'b'] as const) {
            const mod = m.lora.layers[l]![t]!;
            const grad = await ctx.readF32(which === 'a' ? mod.dA! : mod.dB!);
            const value = m.hostLora.layers[l]![t]![which];
            const idx = sampleIndices(value.length, 2, next);
            const lora = cloneLora(m.hostLora);
            const fd = finiteDifferences((v) => ((lora.layers[l]![t]![which] = v), referenceLoss(m.host, m.inputs, lora, null, 1 / n)), value.slice(), idx);
            got.push(...idx.map((i) => grad[i]!));
            want.push(...fd);
          }
      const err = relError(got, want);
      expect(Math.hypot(...want), `seed ${seed}: gradients too small to test`).toBeGreaterThan(1e-4);
      console.log(`LoRA grads: ${got.length} coords, rel err ${err.toExponential(2)}; GPU forward+backward ${gpuMs.toFixed(0)} ms`);
      expect(err, `seed ${seed}`).toBeLessThan(1e-4);
    } finally {
      m.release();
    }
  });

  it('per-token row weights (DPO-style, signed) and accumulation over two micro-batches: grads match finite differences, f32 untied (rel err < 1e-4)', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, F32_UNTIED, seed);
    try {
      const next = rng(seed + 4);
      const N = m.ws.tokens;
      const r1 = Float64Array.from(randn(N, next, 0.5), Math.fround);
      const r2 = Float64Array.from(randn(N, next, 0.5), Math.fround);
      forward(m.model, m.ws, { lora: m.lora });
      backward(m.model, m.ws, { lora: m.lora, rowScale: r1, scale: 0.7 });
      backward(m.model, m.ws, { lora: m.lora, rowScale: r2, scale: 0.7, accumulate: true });
      const sum = r1.map((x, i) => x + r2[i]!);
      const got: number[] = [];
      const want: number[] = [];
      const targets = F32_UNTIED.lora.targets as LoraTarget[];
      for (let l = 0; l < m.config.numLayers; l++)
        for (const t of targets)
          for (const which of ['a', 'b'] as const) {
            const mod = m.lora.layers[l]![t]!;
            const grad = await ctx.readF32(which === 'a' ? mod.dA! : mod.dB!);
            const value = m.hostLora.layers[l]![t]![which];
            const idx = sampleIndices(value.length, 3, next);
            const lora = cloneLora(m.hostLora);
            const fd = finiteDifferences((v) => ((lora.layers[l]![t]![which] = v), referenceLoss(m.host, m.inputs, lora, sum, 0.7)), value.slice(), idx);
            got.push(...idx.map((i) => grad[i]!));
            want.push(...fd);
          }
      const err = relError(got, want);
      expect(Math.hypot(...want), `seed ${seed}: gradients too small to test`).toBeGreaterThan(1e-4);
      console.log(`row-weighted accumulated LoRA grads: ${got.length} coords, rel err ${err.toExponential(2)}`);
      expect(err, `seed ${seed}`).toBeLessThan(1e-4);
    } finally {
      m.release();
    }
  });

  const FULL_CHUNKED: Scenario = { ...F32_UNTIED, name: 'f32 untied, vocab in 3 tensors, 96-row chunks', maxChunkBytes: 128 * 32 * 4, lmHeadChunk: 96 };
  const FULL_TIED: Scenario = { ...BF16_TIED, name: 'f32 tied (+ LoRA)', dtype: 'f32' };
  const FULL_QWEN2: Scenario = { ...QWEN2_BF16, name: 'qwen2 f32: biases', dtype: 'f32' };
  const FULL_QWEN3: Scenario = { ...QWEN3_F32, name: 'qwen3 f32 (+ LoRA): q/k norms' };
  it.each([
    [FULL_CHUNKED, false],
    [FULL_TIED, true],
    [FULL_QWEN2, false],
    [FULL_QWEN3, true],
  ])('full-parameter gradients of every weight kind match finite differences, $name (rel err < 1e-4)', async (s, withLora) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, s, seed, { fullFineTune: true });
    const full = createFullGrads(ctx, m.model.weights);
    poisonAll(ctx, full.params.map((p) => p.grad)); // the backward zeroes them first
    try {
      const n = countTargets(m.inputs.targets);
      const lora = withLora ? m.lora : null;
      const hostLora = withLora ? m.hostLora : null;
      forward(m.model, m.ws, { lora });
      backward(m.model, m.ws, { lora, full, scale: 1 / n });
      const next = rng(seed + 5);
      const got: number[] = [];
      const want: number[] = [];
      const check = async (grad: Float32Array, value: Float64Array, idx: number[], set: (h: HostWeights, v: Float64Array) => HostWeights) => {
        const fd = finiteDifferences((v) => referenceLoss(set(m.host, v), m.inputs, hostLora, null, 1 / n), value.slice(), idx);
        got.push(...idx.map((i) => grad[i]!));
        want.push(...fd);
      };
      const readChunked = async (c: typeof full.embed) => {
        const out = new Float32Array(c.rows * c.cols);
        for (const ch of c.chunks) out.set(await ctx.readF32(ch.tensor), ch.rowStart * c.cols);
        return out;
      };
      for (let l = 0; l < m.config.numLayers; l++)
        for (const k of Object.keys(full.layers[l]!) as LayerWeightName[]) {
          const value = m.host.layers[l]![k]!;
          await check(await ctx.readF32(full.layers[l]![k]!), value, sampleIndices(value.length, 2, next), (h, v) => ({
            ...h,
            layers: h.layers.map((x, i) => (i === l ? { ...x, [k]: v } : x)),
          }));
        }
      await check(await ctx.readF32(full.finalNorm), m.host.finalNorm, sampleIndices(m.config.hiddenSize, 2, next), (h, v) => ({ ...h, finalNorm: v }));
      const H = m.config.hiddenSize;
      // Embedding rows of tokens in the batch (others have no gradient through the lookup).
      const used = [...new Set(m.inputs.ids)] as number[];
      const embIdx = [0, 1, 2].map(() => used[Math.floor(next() * used.length)]! * H + Math.floor(next() * H));
      const tied = m.config.tieWordEmbeddings;
      await check(await readChunked(full.embed), m.host.embed, embIdx, (h, v) => ({ ...h, embed: v, lmHead: tied ? v : h.lmHead }));
      if (!tied) await check(await readChunked(full.lmHead), m.host.lmHead, sampleIndices(m.host.lmHead.length, 6, next), (h, v) => ({ ...h, lmHead: v }));
      const err = relError(got, want);
      expect(Math.hypot(...want), `seed ${seed}: gradients too small to test`).toBeGreaterThan(1e-4);
      console.log(`${s.name}: full grads ${got.length} coords, rel err ${err.toExponential(2)}`);
      expect(err, `seed ${seed}`).toBeLessThan(1e-4);
    } finally {
      full.release();
      m.release();
    }
  });
});

describe('memory plan vs the pool\'s measured peak (training)', () => {
  it.each([
    ['bf16 tied, LoRA', false, BF16_TIED],
    ['f32 untied chunked, LoRA', true, { ...F32_UNTIED, maxChunkBytes: 128 * 32 * 4, lmHeadChunk: 96 } as Scenario],
    ['qwen2 bf16, LoRA', false, QWEN2_BF16],
    ['qwen3 f32, LoRA', true, QWEN3_F32],
  ] as const)('a forward + backward step peaks within 10% of the plan (%s, full fine-tuning %s; exact today)', async (_name, fullFineTune, s) => {
    const ctx = await testContext();
    const seed = freshSeed();
    ctx.pool.trim();
    const before = ctx.pool.stats().allocatedBytes;
    ctx.pool.resetPeak();
    const m = setup(ctx, s, seed, { fullFineTune });
    const full = fullFineTune ? createFullGrads(ctx, m.model.weights) : null;
    try {
      forward(m.model, m.ws, { lora: m.lora });
      backward(m.model, m.ws, { lora: m.lora, full, scale: 1 / countTargets(m.inputs.targets) });
      await ctx.flush();
      const measured = ctx.pool.stats().peakBytes - before;
      const plan = planMemory(m.config, {
        batch: s.batchSize,
        seq: s.seqLen,
        loraRank: s.lora.rank,
        ...(s.lora.targets ? { targets: s.lora.targets } : {}),
        fullFineTune,
        weightDType: s.dtype,
        ...(s.maxChunkBytes ? { maxBindingBytes: s.maxChunkBytes } : {}),
        ...(s.lmHeadChunk ? { lmHeadChunk: s.lmHeadChunk } : {}),
      });
      console.log(`${s.name} full=${fullFineTune}: measured peak ${measured} B, planned ${plan.training} B`);
      expect(Math.abs(measured - plan.training) / plan.training, `seed ${seed}: measured ${measured}, planned ${plan.training}`).toBeLessThan(0.1);
    } finally {
      full?.release();
      m.release();
    }
  });
});
