// The GPU attention paths end to end through the model, forced on SwiftShader (where the CPU
// paths are the defaults): a LoRA training step with the flash forward and backward, and KV-cache
// generation with the flash prefill and the split-KV decode, against float64 and the default paths.
import { afterEach, describe, expect, it } from 'vitest';
import { setAttentionPaths } from '../engine/attention';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed, rng } from '../engine/testing/random';
import { backward, countTargets } from './backward';
import { forward, readLogp } from './forward';
import { setBatchInputs } from './inputs';
import { appendTokens, createKvCache, readLogits } from './kv-cache';
import { LORA_TARGETS } from './lora';
import { referenceForward, referenceLoss } from './reference';
import { BF16_TIED, poisonAll, QWEN2_BF16, setup, type Setup } from './testing/fixtures';

afterEach(async () => setAttentionPaths(await testContext(), null));

/** Loss and every LoRA gradient of one forward + backward on the paths now chosen. */
async function step(m: Setup): Promise<{ loss: number; grads: Float32Array[] }> {
  const ctx = await testContext();
  const scale = 1 / countTargets(m.inputs.targets);
  forward(m.model, m.ws, { lora: m.lora });
  backward(m.model, m.ws, { lora: m.lora, scale });
  const logp = await readLogp(m.model, m.ws);
  const grads: Float32Array[] = [];
  for (const layer of m.lora.layers)
    for (const t of LORA_TARGETS) {
      const mod = layer[t];
      if (mod) grads.push(await ctx.readF32(mod.dA!), await ctx.readF32(mod.dB!));
    }
  return { loss: -logp.reduce((s, x) => s + x, 0) * scale, grads };
}

const flat = (xs: Float32Array[]) => Float64Array.from(xs.flatMap((x) => [...x]));

describe('attention GPU paths through the model', () => {
  it.each([BF16_TIED, QWEN2_BF16])('LoRA step on the flash forward and backward: loss matches float64, gradients match the default paths, $name (rel err < 1e-5)', async (s) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, s, seed);
    try {
      const base = await step(m);
      setAttentionPaths(ctx, { forward: 'flash', backward: 'flash' });
      poisonAll(ctx, m.ws); // nothing left from the default paths' step can pass for the flash one
      setBatchInputs(ctx, m.ws, m.inputs);
      const flash = await step(m);
      const want = referenceLoss(m.host, m.inputs, m.hostLora, null, 1 / countTargets(m.inputs.targets));
      expect(Math.abs(flash.loss - want) / Math.abs(want), `seed ${seed} loss`).toBeLessThan(1e-5);
      expect(relError(flat(flash.grads), flat(base.grads)), `seed ${seed} grads`).toBeLessThan(1e-5);
    } finally {
      m.release();
    }
  });

  it.each([BF16_TIED, QWEN2_BF16])('KV-cache generation on the flash prefill and split-KV decode equals float64 logits, $name (rel err < 1e-5)', async (s) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, s, seed);
    const next = rng(seed + 7);
    const B = s.batchSize;
    const Tp = s.seqLen;
    const steps = [1, 1, 2, 1];
    const total = Tp + steps.reduce((a, b) => a + b, 0);
    const ids = new Int32Array(B * total);
    const mask = new Int32Array(B * total).fill(1);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < total; t++) {
        ids[b * total + t] = t < Tp ? m.inputs.ids[b * Tp + t]! : Math.floor(next() * m.config.vocabSize);
        mask[b * total + t] = t < Tp ? m.inputs.mask[b * Tp + t]! : 1;
      }
    const slice = (a: Int32Array, t0: number, t1: number) => Int32Array.from({ length: B * (t1 - t0) }, (_, i) => a[Math.floor(i / (t1 - t0)) * total + t0 + (i % (t1 - t0))]!);
    setAttentionPaths(ctx, { forward: 'flash', decode: 'split', chunk: 4 }); // 3 to 4 chunks, the last ragged
    const cache = createKvCache(m.model, { batchSize: B, capacity: total + 3 });
    poisonAll(ctx, [cache.k, cache.v]); // unwritten rows are NaN: nothing past them may be read
    try {
      let t = 0;
      for (const n of [Tp, ...steps]) {
        appendTokens(m.model, cache, { ids: slice(ids, t, t + n), mask: slice(mask, t, t + n), tokens: n }, { lora: m.lora });
        t += n;
        const logits = await readLogits(m.model, cache);
        const ref = referenceForward(m.host, { batchSize: B, seqLen: t, ids: slice(ids, 0, t), mask: slice(mask, 0, t) }, m.hostLora);
        const V = m.config.vocabSize;
        const want = new Float64Array(B * V);
        for (let b = 0; b < B; b++) want.set(ref.logits.subarray((b * t + t - 1) * V, (b * t + t) * V), b * V);
        expect(relError(logits, want), `seed ${seed} after ${t} positions`).toBeLessThan(1e-5);
      }
    } finally {
      cache.release();
      m.release();
    }
  });
});
