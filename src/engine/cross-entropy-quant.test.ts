// The chunked lm_head + cross-entropy over a quantized weight (int8 / int4, the tied table of a
// quantized base): lse, logp and dHidden against float64 of the dequantized weight.
import { describe, expect, it } from 'vitest';
import { quantize } from '../gpu/dtype';
import { createLmHeadWorkspace, IGNORE_INDEX, lmHeadCrossEntropyBackward, lmHeadCrossEntropyForward } from './cross-entropy';
import { lmHeadCrossEntropyBackwardRef, lmHeadCrossEntropyForwardRef } from './reference/cross-entropy';
import { maxAbsError, relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { freshSeed, randInt, randn, rng } from './testing/random';

describe('lm_head + cross-entropy with a quantized weight', () => {
  it.each(['int8', 'int4'] as const)('%s weight, V=700 in chunks of 256, H=48, T=6: lse/logp/dHidden match float64 of the dequantized weight', async (dtype) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const r = rng(seed);
    const [T, H, V, chunk] = [6, 48, 700, 256];
    const hidden = quantize(randn(T * H, r), 'f32');
    const raw = randn(V * H, r, 4 / Math.sqrt(H));
    const weight = quantize(raw, dtype); // what the quantized tensor stands for
    const targets = randInt(T, r, 0, V);
    targets[2] = IGNORE_INDEX;
    const tHidden = ctx.upload(hidden, [T, H], 'f32', 'hidden');
    const tWeight = ctx.upload(raw, [V, H], dtype, 'lm_head');
    const tTargets = ctx.upload(targets, [T], 'i32', 'targets');
    const lse = poisoned(ctx, [T], 'lse');
    const logp = poisoned(ctx, [T], 'logp');
    const dHidden = poisoned(ctx, [T, H], 'dHidden');
    const ws = createLmHeadWorkspace(ctx, T, chunk);
    const batch = ctx.batch();
    lmHeadCrossEntropyForward(batch, { hidden: tHidden, weight: tWeight, targets: tTargets, lse, logp, workspace: ws });
    lmHeadCrossEntropyBackward(batch, { hidden: tHidden, weight: tWeight, targets: tTargets, lse, scale: 0.5, dHidden, accumulate: false, workspace: ws });
    batch.submit();
    const want = lmHeadCrossEntropyForwardRef(hidden, weight, targets, T, H, V);
    const wantD = lmHeadCrossEntropyBackwardRef(hidden, weight, targets, T, H, V, null, 0.5);
    expect(relError(await ctx.readF32(lse), want.lse), `seed ${seed}`).toBeLessThan(1e-6);
    expect(maxAbsError(await ctx.readF32(logp), want.logp), `seed ${seed}`).toBeLessThan(2e-5);
    expect(relError(await ctx.readF32(dHidden), wantD), `seed ${seed}`).toBeLessThan(1e-5);
    // The float weight gives other log-probs: the comparison above sees the quantization.
    expect(maxAbsError(lmHeadCrossEntropyForwardRef(hidden, raw, targets, T, H, V).logp, want.logp)).toBeGreaterThan(dtype === 'int4' ? 1e-2 : 1e-4);
    for (const t of [tHidden, tWeight, tTargets, lse, logp, dHidden]) t.release();
    ws.release();
  });
});
