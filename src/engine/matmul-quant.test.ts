// matmul with a quantized b (int8/int4): every path, forward (nt) and input-gradient (nn) layouts,
// against a float64 product with the DEQUANTIZED weights (so the only error allowed is f32
// accumulation). Groups get wildly different magnitudes, so a kernel reading a neighbouring
// group's scale fails by orders of magnitude.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { quantize as roundTo } from '../gpu/dtype';
import { dequantize, quantize, type QuantDType } from '../gpu/quant';
import { GEMV_MAX_M, MATMUL_TILE, matmul, skinnyAligned, vec4Aligned, type MatmulLayout, type MatmulPath } from './matmul';
import { matmulRef } from './reference/matmul';
import { relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { groupedWeights } from './testing/quant';
import { freshSeed, randn, rng } from './testing/random';

interface Case {
  layout: MatmulLayout;
  dtype: QuantDType;
  m: number;
  n: number;
  k: number;
  bOffset: number;
  path?: MatmulPath;
  alpha: number;
  accumulate: boolean;
}

async function runCase(ctx: GpuContext, c: Case): Promise<{ err: number; seed: number }> {
  const seed = freshSeed();
  const r = rng(seed);
  const [aRows, aCols] = c.layout === 'nt' ? [c.m, c.k] : [c.m, c.n];
  const [oRows, oCols] = c.layout === 'nt' ? [c.m, c.n] : [c.m, c.k];
  const bCount = c.bOffset + c.n * c.k + 5; // trailing elements must be ignored
  const a = roundTo(randn(aRows * aCols, r), 'f32');
  const bytes = quantize(groupedWeights(bCount, r), c.dtype);
  const b = dequantize(bytes, bCount, c.dtype);
  const prev = c.accumulate ? roundTo(randn(oRows * oCols, r), 'f32') : undefined;
  const ta = ctx.upload(a, [aRows, aCols], 'f32', 'a');
  const tb = ctx.tensor([bCount], c.dtype, 'Wq');
  ctx.writeBytes(tb, bytes);
  const tout = prev ? ctx.upload(prev, [oRows, oCols], 'f32', 'out') : poisoned(ctx, [oRows, oCols], 'out');
  const batch = ctx.batch();
  matmul(
    batch,
    { a: ta, b: tb, out: tout, layout: c.layout, alpha: c.alpha, accumulate: c.accumulate, bOffset: c.bOffset, m: c.m, n: c.n, k: c.k },
    { path: c.path },
  );
  batch.submit();
  const got = await ctx.read(tout);
  const want = matmulRef({ layout: c.layout, a, b, m: c.m, n: c.n, k: c.k, alpha: c.alpha, c: prev, bOffset: c.bOffset });
  for (const t of [ta, tb, tout]) t.release();
  return { err: relError(got, want), seed };
}

// [M, N, K, bOffset]: K = one group, K over a tile and straddling groups (K % 32 ≠ 0: groups span
// rows), lm_head-like row slices (bOffset a whole number of rows), ragged M and N everywhere.
const SHAPES: [number, number, number, number][] = [
  [1, 37, 32, 0],
  [3, 21, 64, 64 * 5],
  [2, 45, 96, 8],
  [GEMV_MAX_M + 1, 19, 40, 0],
  [4 * MATMUL_TILE.WY + 3, 4 * MATMUL_TILE.WX + 5, 2 * MATMUL_TILE.TK + 32, 0],
  [13, 36, 72, 4],
  [5, 9, 33, 3],
];

function pathsFor(layout: MatmulLayout, dtype: QuantDType, m: number, n: number, k: number, bOffset: number): MatmulPath[] {
  const paths: MatmulPath[] = ['tiled', 'direct'];
  if (layout === 'nt' && m <= GEMV_MAX_M) paths.push('gemv');
  if (vec4Aligned(layout, { m, n, k }, bOffset)) paths.push('vec4');
  if (skinnyAligned(layout, { m, n, k }, dtype, bOffset)) paths.push('skinny');
  return paths;
}

describe('matmul with quantized weights', () => {
  const cases: [MatmulLayout, QuantDType][] = [
    ['nt', 'int8'],
    ['nt', 'int4'],
    ['nn', 'int8'],
    ['nn', 'int4'],
  ];
  it.each(cases)('%s with %s b, every path, matches float64 of the dequantized weights (rel err < 1e-5)', async (layout, dtype) => {
    const ctx = await testContext();
    let i = 0;
    const seen = new Set<MatmulPath>();
    for (const [m, n, k, bOffset] of SHAPES)
      for (const path of [undefined, ...pathsFor(layout, dtype, m, n, k, bOffset)]) {
        if (path) seen.add(path);
        const c: Case = { layout, dtype, m, n, k, bOffset, path, accumulate: i % 2 === 1, alpha: i % 4 < 2 ? 1 : -0.5 };
        i++;
        const { err, seed } = await runCase(ctx, c);
        expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
      }
    expect([...seen].sort()).toEqual(layout === 'nt' ? ['direct', 'gemv', 'skinny', 'tiled', 'vec4'] : ['direct', 'tiled', 'vec4']);
  });

  it('refuses a quantized b in the weight-gradient layout', async () => {
    const ctx = await testContext();
    const a = ctx.tensor([4, 6], 'f32', 'dy');
    const w = ctx.tensor([4, 32], 'int4', 'Wq');
    const out = ctx.tensor([6, 32], 'f32', 'dW');
    expect(() => matmul(ctx.batch(), { a, b: w, out, layout: 'tn' })).toThrow(/matmul tn: Wq has dtype int4, expected f32/);
    for (const t of [a, w, out]) t.release();
  });
});
