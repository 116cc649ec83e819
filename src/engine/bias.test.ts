import { describe, expect, it } from 'vitest';
import { quantize, type DType } from '../gpu/dtype';
import { biasBackward, biasForward } from './bias';
import { biasBackwardRef, biasForwardRef } from './reference/bias';
import { relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { freshSeed, randn, rng } from './testing/random';

describe('bias', () => {
  it('forward adds an f32/bf16/f16 bias to every row; backward sums rows (ragged shapes)', async () => {
    const ctx = await testContext();
    for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
      for (const [n, cols] of [[1, 1], [7, 3], [33, 130], [300, 257]] as const) {
        const seed = freshSeed();
        const r = rng(seed);
        const y0 = Float64Array.from(Float32Array.from(randn(n * cols, r)));
        const b = quantize(randn(cols, r, 0.7), dtype);
        const y = ctx.upload(y0, [n, cols], 'f32', 'y');
        const tb = ctx.upload(b, [cols], dtype, 'b');
        const dy = ctx.upload(y0, [n, cols], 'f32', 'dy');
        const db = poisoned(ctx, [cols], 'db');
        const batch = ctx.batch();
        biasForward(batch, y, tb);
        biasBackward(batch, db, dy);
        biasBackward(batch, db, dy, true); // accumulate: twice the sum
        batch.submit();
        const at = `seed ${seed} ${dtype} [${n}, ${cols}]`;
        expect(relError(await ctx.read(y), biasForwardRef(y0, b)), at).toBeLessThan(1e-6);
        expect(relError(await ctx.read(db), biasBackwardRef(y0, cols).map((v) => 2 * v)), at).toBeLessThan(1e-5);
      }
    }
  });

  it('rejects a bias that does not divide the output', async () => {
    const ctx = await testContext();
    const y = ctx.tensor([10], 'f32', 'y');
    const b = ctx.tensor([3], 'f32', 'b');
    expect(() => biasForward(ctx.batch(), y, b)).toThrow(/bias: y has 10 elements, not a whole number of rows of b \(3\)/);
  });
});
