import { describe, expect, it } from 'vitest';
import { residualAccumulate, residualForward } from './residual';
import { residualForwardRef } from './reference/residual';
import { relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { freshSeed, randn, rng } from './testing/random';

/**
 * Error relative to the operands' size, max|got - want| / max(|a| + |scale·b|): a sum that cancels
 * (n = 1 can draw a ≈ -scale·b) has a tiny result whose f32 rounding of scale·b dominates, so the
 * result's own size is the wrong yardstick.
 */
function errorVsOperands(got: ArrayLike<number>, want: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>, scale: number): number {
  let err = 0;
  let size = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    size = Math.max(size, Math.abs(a[i]!) + Math.abs(scale * b[i]!));
  }
  return err / size;
}

describe('residual', () => {
  it('forward and accumulate match float64 on ragged sizes (error < 1e-6 of the operands)', async () => {
    const ctx = await testContext();
    for (const n of [1, 257, 4099]) {
      const seed = freshSeed();
      const r = rng(seed);
      // The reference sees the f32 values the GPU gets.
      const a = Float64Array.from(Float32Array.from(randn(n, r)));
      const b = Float64Array.from(Float32Array.from(randn(n, r)));
      const scale = 0.5 + r();
      const ta = ctx.upload(a, [n], 'f32', 'a');
      const tb = ctx.upload(b, [n], 'f32', 'b');
      const out = poisoned(ctx, [n], 'out');
      const batch = ctx.batch();
      residualForward(batch, out, ta, tb, scale);
      residualAccumulate(batch, ta, tb, -scale); // a - scale*b
      batch.submit();
      const want = residualForwardRef(a, b, scale);
      expect(errorVsOperands(await ctx.read(out), want, a, b, scale), `seed ${seed} n ${n}`).toBeLessThan(1e-6);
      expect(errorVsOperands(await ctx.read(ta), residualForwardRef(a, b, -scale), a, b, scale), `seed ${seed} n ${n}`).toBeLessThan(1e-6);
      if (n > 1) expect(relError(await ctx.read(out), want), `seed ${seed} n ${n}`).toBeLessThan(1e-6);
    }
  });

  it('rejects mismatched sizes with a message naming the tensors', async () => {
    const ctx = await testContext();
    const a = ctx.tensor([3], 'f32', 'a');
    const b = ctx.tensor([4], 'f32', 'b');
    expect(() => residualForward(ctx.batch(), a, a, b)).toThrow(/residual: b has 4 elements, a has 3/);
  });
});
