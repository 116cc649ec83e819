import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { quantize, type DType } from '../gpu/dtype';
import { GEMV_MAX_M, MATMUL_DIRECT, MATMUL_TILE, defaultMatmulPath, matmul, skinnyAligned, vec4Aligned, type MatmulLayout, type MatmulPath } from './matmul';
import { matmulRef } from './reference/matmul';
import { relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { matmulOperands } from './testing/matmul';
import { freshSeed, randn, rng } from './testing/random';

interface Case {
  layout: MatmulLayout;
  dtype: DType;
  m: number;
  n: number;
  k: number;
  alpha: number;
  accumulate: boolean;
  bOffset?: number;
  path?: MatmulPath;
  constants?: Record<string, number>;
}

/** Runs one product on fresh inputs and returns its relative error against float64. */
async function runCase(ctx: GpuContext, c: Case): Promise<{ err: number; seed: number }> {
  const seed = freshSeed();
  const r = rng(seed);
  const bOffset = c.bOffset ?? 0;
  const { ta, tb, want, out } = matmulOperands(ctx, { ...c, bOffset }, r);
  const tout = out();
  const batch = ctx.batch();
  const args = { a: ta, b: tb, out: tout, layout: c.layout, alpha: c.alpha, accumulate: c.accumulate, bOffset, m: c.m, n: c.n, k: c.k };
  matmul(batch, args, { path: c.path, constants: c.constants });
  batch.submit();
  const got = await ctx.read(tout);
  for (const t of [ta, tb, tout]) t.release();
  return { err: relError(got, want), seed };
}

// [M, N, K, bOffset]: GEMV sizes (M ≤ 8), a tile and a bit, odd K and odd bOffset for 16-bit
// word parity, and two shapes whose contiguous dims and bOffset are multiples of 4 (the vec4 path)
// with ragged rows.
const SHAPES: [number, number, number, number][] = [
  [1, 37, 71, 0],
  [7, 130, 33, 3],
  [GEMV_MAX_M + 1, 67, 19, 5],
  [4 * MATMUL_TILE.WY + 3, 4 * MATMUL_TILE.WX + 5, 2 * MATMUL_TILE.TK + 7, 0],
  [31, 9, 130, 1],
  [13, 36, 72, 8],
  [8 * MATMUL_DIRECT.CY + 6, 44, 20, 0],
  // M = 1..3 with K and bOffset multiples of 8 (the skinny path for every dtype), and one with
  // K and bOffset ≡ 4 mod 8 (skinny for f32 only; 16-bit b falls back).
  [1, 45, 72, 0],
  [2, 29, 40, 8],
  [3, 70, 24, 16],
  [1, 21, 20, 4],
];

/** Every path that can compute this product. */
function pathsFor(layout: MatmulLayout, dtype: DType, m: number, n: number, k: number, bOffset: number): MatmulPath[] {
  const paths: MatmulPath[] = ['tiled', 'direct'];
  if (layout === 'nt' && m <= GEMV_MAX_M) paths.push('gemv');
  if (vec4Aligned(layout, { m, n, k }, bOffset)) paths.push('vec4');
  if (skinnyAligned(layout, { m, n, k }, dtype, bOffset)) paths.push('skinny');
  return paths;
}

const CASES: [MatmulLayout, DType][] = [
  ['nt', 'f32'],
  ['nt', 'bf16'],
  ['nt', 'f16'],
  ['nn', 'f32'],
  ['nn', 'bf16'],
  ['nn', 'f16'],
  ['tn', 'f32'],
];

describe('matmul', () => {
  it.each(CASES)(
    '%s with %s b, every path, matches float64 on ragged shapes with alpha, accumulate, bOffset (rel err < 1e-5)',
    async (layout, dtype) => {
      const ctx = await testContext();
      let i = 0;
      for (const [m, n, k, bOffset] of SHAPES) {
        for (const path of [undefined, ...pathsFor(layout, dtype, m, n, k, bOffset)]) {
          const c: Case = { layout, dtype, m, n, k, accumulate: i % 2 === 1, alpha: i % 4 < 2 ? 1 : -0.75, bOffset, path };
          i++;
          const { err, seed } = await runCase(ctx, c);
          expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
        }
      }
      await ctx.flush();
    },
  );

  it('bOffset row slices of a bf16 weight, with a 3-D activation viewed as [B·T, K] (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const r = rng(seed);
    const [B, T, K, V, chunk] = [2, 5, 27, 50, 16];
    const x = quantize(randn(B * T * K, r), 'f32');
    const w = quantize(randn(V * K, r), 'bf16');
    const tx = ctx.upload(x, [B, T, K], 'f32', 'x');
    const tw = ctx.upload(w, [V, K], 'bf16', 'lm_head');
    const outs: { t: ReturnType<typeof ctx.tensor>; v0: number; rows: number }[] = [];
    const batch = ctx.batch();
    for (let v0 = 0; v0 < V; v0 += chunk) {
      const rows = Math.min(chunk, V - v0);
      const t = poisoned(ctx, [B * T, rows], `logits ${v0}`);
      matmul(batch, { a: tx, b: tw, out: t, layout: 'nt', m: B * T, bOffset: v0 * K });
      outs.push({ t, v0, rows });
    }
    batch.submit();
    for (const { t, v0, rows } of outs) {
      const want = matmulRef({ layout: 'nt', a: x, b: w, m: B * T, n: rows, k: K, bOffset: v0 * K });
      expect(relError(await ctx.read(t), want), `seed ${seed} chunk ${v0}`).toBeLessThan(1e-5);
    }
  });

  // Small-workgroup specialisations keep these grids cheap on SwiftShader (a barrier there costs
  // about a millisecond per workgroup); the grid arithmetic is the same for every tile size.
  it('splits grids above 65,535 workgroups on every path (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const over = 65_536 + 1;
    const cases: Case[] = [
      { layout: 'nt', dtype: 'f32', m: 4 * over - 2, n: 1, k: 3, alpha: 1, accumulate: false, path: 'tiled', constants: { WX: 1, WY: 1, TK: 4 } },
      { layout: 'nt', dtype: 'bf16', m: 2, n: over, k: 5, alpha: 0.5, accumulate: true, path: 'gemv', constants: { GV_LANES: 8, GV_ROWS: 1 } },
      { layout: 'tn', dtype: 'f32', m: 3, n: 4 * over - 1, k: 1, alpha: 1, accumulate: false, path: 'direct', constants: { CX: 1, CY: 1 } },
      { layout: 'nn', dtype: 'f16', m: 8 * over - 5, n: 4, k: 4, alpha: 2, accumulate: false, path: 'vec4', constants: { CX: 1, CY: 1 } },
      { layout: 'nt', dtype: 'f32', m: 1, n: 4 * over + 1, k: 4, alpha: 1, accumulate: true, path: 'skinny', constants: { SW: 1 } },
      // The default tile sizes: a tall, thin product on this adapter's default path.
      { layout: 'nt', dtype: 'f32', m: 4 * MATMUL_DIRECT.CY * over, n: 1, k: 1, alpha: 1, accumulate: false },
    ];
    for (const c of cases) {
      const { err, seed } = await runCase(ctx, c);
      expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
    }
  });

  it('picks skinny on CPU adapters for nt with M ≤ 4 and aligned K, vec4 or direct otherwise, gemv/tiled on GPUs', () => {
    const d = (m: number, k: number) => ({ m, n: 128256, k });
    expect(defaultMatmulPath(true, 'nt', d(1, 2048), 0, 'bf16')).toBe('skinny');
    expect(defaultMatmulPath(true, 'nt', d(4, 64), 64 * 16, 'f16')).toBe('skinny');
    expect(defaultMatmulPath(true, 'nt', d(5, 2048), 0, 'bf16')).toBe('vec4');
    expect(defaultMatmulPath(true, 'nt', d(1, 20), 0, 'bf16')).toBe('vec4');
    expect(defaultMatmulPath(true, 'nt', d(1, 20), 0, 'f32')).toBe('skinny');
    expect(defaultMatmulPath(true, 'nn', d(1, 2048), 0, 'f32')).toBe('vec4');
    expect(defaultMatmulPath(true, 'nt', d(1, 7), 0, 'f32')).toBe('direct');
    expect(defaultMatmulPath(false, 'nt', d(1, 2048), 0, 'bf16')).toBe('gemv');
  });

  it('rejects bad arguments with messages naming the op and tensor', async () => {
    const ctx = await testContext();
    const a = ctx.tensor([4, 6], 'f32', 'x');
    const w = ctx.tensor([5, 6], 'bf16', 'W');
    const out = ctx.tensor([4, 5], 'f32', 'y');
    const b = ctx.batch();
    expect(() => matmul(b, { a, b: w, out: ctx.tensor([3, 5], 'f32', 'y2'), layout: 'nt' })).toThrow(
      /matmul nt: out \(y2\) has shape \[3, 5\], expected \[M=4, N=5\]/,
    );
    expect(() => matmul(b, { a, b: w, out, layout: 'nn' })).toThrow(/matmul nn: b \(W\) has shape \[5, 6\], expected \[N=6, K=5\]/);
    expect(() => matmul(b, { a, b: w, out, layout: 'nt' }, { path: 'gemv' })).not.toThrow();
    expect(() => matmul(b, { a: ctx.tensor([9, 6], 'f32', 'x9'), b: w, out: ctx.tensor([9, 5], 'f32', 'y9'), layout: 'nt' }, { path: 'gemv' })).toThrow(
      /matmul nt: the gemv path needs layout nt and M ≤ 8/,
    );
    expect(() => matmul(b, { a, b: w, out, layout: 'nt' }, { path: 'skinny' })).toThrow(
      /matmul nt: the skinny path needs layout nt, M ≤ 4 \(M = 4\), and K and bOffset multiples of 8/,
    );
    expect(() => matmul(b, { a, b: w, out, layout: 'nt', bOffset: 7 })).toThrow(
      /matmul nt: b \(W\) has 30 elements, needs bOffset 7 \+ 5·6 = 37/,
    );
    expect(() => matmul(b, { a: ctx.tensor([2, 2, 6], 'f32', 'x3'), b: w, out, layout: 'nt', m: 5 })).toThrow(
      /matmul nt: a \(x3\) has 24 elements, needs 5·6 = 30/,
    );
    expect(() => matmul(b, { a: ctx.tensor([2, 2, 6], 'f32', 'x3'), b: ctx.tensor([30], 'f32', 'flat'), out: ctx.tensor([20], 'f32', 'o'), layout: 'nt' })).toThrow(
      /matmul nt: cannot infer M .* pass m/,
    );
    expect(() => matmul(b, { a: out, b: w, out: a, layout: 'tn' })).toThrow(/matmul tn: W has dtype bf16, expected f32/);
    expect(() => matmul(b, { a, b: ctx.tensor([6, 6], 'f32', 'W'), out: a, layout: 'nn' })).toThrow(/must not share a buffer with a \(x\)/);
  });
});
