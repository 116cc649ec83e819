import { describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed, rng } from '../engine/testing/random';
import { appendTokens, createKvCache, readLogits } from './kv-cache';
import { createDecoderModel } from './decoder';
import { createLoraAdapters } from './lora';
import { planMemory } from './memory-plan';
import { randomHostWeights, tinyConfig, uploadHostWeights } from './random';
import { releaseWeights } from './weights';
import { referenceForward } from './reference';
import { BF16_TIED, F32_UNTIED, FAMILY_SCENARIOS, poisonAll, setup } from './testing/fixtures';

describe('kv-cache generation', () => {
  it.each([BF16_TIED, F32_UNTIED, ...FAMILY_SCENARIOS])(
    'prefill + decode steps + a 2-token append equal the full recompute and float64 logits, with and without the adapter, $name (rel err < 1e-5)',
    async (s) => {
      const ctx = await testContext();
      const seed = freshSeed();
      const m = setup(ctx, s, seed);
      const next = rng(seed + 7);
      const B = s.batchSize;
      const Tp = s.seqLen;
      const steps = [1, 2, 1];
      const total = Tp + steps.reduce((a, b) => a + b, 0);
      // The whole sequences: the left-padded prompt, then random continuation tokens.
      const ids = new Int32Array(B * total);
      const mask = new Int32Array(B * total).fill(1);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < total; t++) {
          ids[b * total + t] = t < Tp ? m.inputs.ids[b * Tp + t]! : Math.floor(next() * m.config.vocabSize);
          mask[b * total + t] = t < Tp ? m.inputs.mask[b * Tp + t]! : 1;
        }
      const slice = (a: Int32Array, t0: number, t1: number) => Int32Array.from({ length: B * (t1 - t0) }, (_, i) => a[Math.floor(i / (t1 - t0)) * total + t0 + (i % (t1 - t0))]!);
      try {
        for (const enabled of [true, false]) {
          m.lora.enabled = enabled;
          const hostLora = enabled ? m.hostLora : null;
          const cache = createKvCache(m.model, { batchSize: B, capacity: total + 2 });
          const fresh = createKvCache(m.model, { batchSize: B, capacity: total });
          // Unwritten cache rows hold NaN: nothing past the filled positions may be read.
          poisonAll(ctx, [cache.k, cache.v, fresh.k, fresh.v]);
          try {
            let t = 0;
            let logits: Float32Array = new Float32Array();
            for (const n of [Tp, ...steps]) {
              appendTokens(m.model, cache, { ids: slice(ids, t, t + n), mask: slice(mask, t, t + n), tokens: n }, { lora: m.lora });
              t += n;
              logits = await readLogits(m.model, cache);
              const ref = referenceForward(m.host, { batchSize: B, seqLen: t, ids: slice(ids, 0, t), mask: slice(mask, 0, t) }, hostLora);
              const V = m.config.vocabSize;
              const want = new Float64Array(B * V);
              for (let b = 0; b < B; b++) want.set(ref.logits.subarray((b * t + t - 1) * V, (b * t + t) * V), b * V);
              expect(relError(logits, want), `seed ${seed} adapter ${enabled} after ${t} positions`).toBeLessThan(1e-5);
            }
            expect(cache.length).toBe(total);
            appendTokens(m.model, fresh, { ids, mask, tokens: total }, { lora: m.lora });
            expect(relError(await readLogits(m.model, fresh), logits), `seed ${seed} adapter ${enabled}: full recompute`).toBeLessThan(1e-5);
          } finally {
            cache.release();
            fresh.release();
          }
        }
      } finally {
        m.release();
      }
    },
  );

  it('generation (prefill then decode steps) peaks within 10% of the plan', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const config = tinyConfig(BF16_TIED.config);
    ctx.pool.trim();
    const before = ctx.pool.stats().allocatedBytes;
    ctx.pool.resetPeak();
    const weights = uploadHostWeights(ctx, randomHostWeights(config, 'bf16', seed), BF16_TIED.maxChunkBytes);
    const model = createDecoderModel(ctx, weights);
    const lora = createLoraAdapters(ctx, config, { rank: 4, alpha: 8 }, { seed, trainable: false });
    const cache = createKvCache(model, { batchSize: 2, capacity: 12 });
    try {
      appendTokens(model, cache, { ids: new Int32Array(16).fill(5), tokens: 8 }, { lora });
      for (let i = 0; i < 3; i++) {
        await readLogits(model, cache);
        appendTokens(model, cache, { ids: [7, 9], tokens: 1 }, { lora });
      }
      await ctx.flush();
      const measured = ctx.pool.stats().peakBytes - before;
      const plan = planMemory(config, {
        batch: 2,
        seq: 8,
        loraRank: 4,
        weightDType: 'bf16',
        maxBindingBytes: BF16_TIED.maxChunkBytes!,
        generation: { batch: 2, capacity: 12, prefill: 8 },
      });
      console.log(`generation: measured peak ${measured} B, planned ${plan.generation} B`);
      expect(Math.abs(measured - plan.generation) / plan.generation, `seed ${seed}: measured ${measured}, planned ${plan.generation}`).toBeLessThan(0.1);
    } finally {
      cache.release();
      lora.release();
      model.release();
      releaseWeights(weights);
    }
  });
});
