// argmaxRows (shaders/sampling.wgsl) against its float64 reference (reference/sampling.ts) and the
// host sampler's argmax (src/model/sampling.ts) on ragged sizes, with ties, -Inf rows and bad values.
import { describe, expect, it } from 'vitest';
import { quantize } from '../gpu/dtype';
import { argmax } from '../model/sampling';
import { argmaxRowsRef } from './reference/sampling';
import { argmaxRows } from './sampling';
import { poisoned, testContext } from './testing/gpu';
import { freshSeed, randInt, randn, rng } from './testing/random';

async function gpuArgmax(logits: Float64Array, rows: number, cols: number): Promise<Int32Array> {
  const ctx = await testContext();
  const tl = ctx.upload(logits, [rows, cols], 'f32', 'logits');
  const ids = poisoned(ctx, [rows], 'ids', 'i32');
  const batch = ctx.batch('test argmax');
  argmaxRows(batch, { logits: tl, ids, rows, cols });
  batch.submit();
  const out = (await ctx.read(ids)) as Int32Array;
  tl.release();
  ids.release();
  return out;
}

function hostArgmax(logits: Float64Array, rows: number, cols: number): Int32Array {
  return Int32Array.from({ length: rows }, (_, r) => argmax(logits.subarray(r * cols, (r + 1) * cols)));
}

describe('argmaxRows', () => {
  const seed = freshSeed();
  for (const [rows, cols] of [
    [1, 1],
    [1, 7],
    [3, 255],
    [2, 256],
    [5, 257],
    [4, 1000],
    [2, 128_256],
  ] as const) {
    it(`matches the host argmax on [${rows}, ${cols}] with ties (seed ${seed})`, async () => {
      const r = rng(seed + rows * 1000 + cols);
      const x = quantize(randn(rows * cols, r, 3), 'f32');
      // Ties: copy each row's maximum to a few other places (earlier and later ones).
      for (let row = 0; row < rows; row++) {
        const at = row * cols;
        const m = argmax(x.subarray(at, at + cols));
        for (const j of randInt(3, r, 0, cols)) x[at + j] = x[at + m]!;
      }
      const want = hostArgmax(x, rows, cols);
      expect(Array.from(argmaxRowsRef(x, rows, cols)), `seed ${seed}`).toEqual(Array.from(want));
      expect(Array.from(await gpuArgmax(x, rows, cols)), `seed ${seed}`).toEqual(Array.from(want));
    });
  }

  it('handles -Inf (an all -Inf row is 0), and flags NaN and +Inf rows with -1', async () => {
    const cols = 600;
    const rows = 5;
    const x = quantize(randn(rows * cols, rng(7)), 'f32');
    for (let c = 0; c < cols; c++) x[c] = -Infinity; // row 0: all -Inf
    for (let c = 0; c < cols; c += 2) x[cols + c] = -Infinity; // row 1: half -Inf
    x[2 * cols + 333] = NaN; // row 2
    x[3 * cols + 599] = Infinity; // row 3
    x[4 * cols + 10] = 1e30; // row 4: a huge but finite maximum
    const got = await gpuArgmax(x, rows, cols);
    expect(Array.from(got)).toEqual([0, argmax(x.subarray(cols, 2 * cols)), -1, -1, 10]);
    expect(Array.from(argmaxRowsRef(x, rows, cols))).toEqual(Array.from(got));
  });

  it('rejects bad arguments', async () => {
    const ctx = await testContext();
    const l = ctx.tensor([2, 4], 'f32', 'l');
    const ids = ctx.tensor([2], 'i32', 'ids');
    const batch = ctx.batch('bad');
    expect(() => argmaxRows(batch, { logits: l, ids, rows: 3, cols: 4 })).toThrow(/needs 3·4/);
    expect(() => argmaxRows(batch, { logits: l, ids: l, rows: 2, cols: 4 })).toThrow(/argmax_rows/);
    expect(() => argmaxRows(batch, { logits: l, ids, rows: 0, cols: 4 })).toThrow(/rows/);
    batch.submit();
    l.release();
    ids.release();
  });
});
