// The GPU paths for LoRA's rank-r products, forced on SwiftShader: narrow (≤ 64 output columns)
// and split-K (small output, long reduction, deterministic partial sums), against float64.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import { defaultMatmulPath, matmul, MATMUL_PATHS, splitKCount, type MatmulLayout, type MatmulOptions } from './matmul';
import { relError } from './testing/compare';
import { testContext } from './testing/gpu';
import { dimsOf, matmulOperands, type GenericCase } from './testing/matmul';
import { freshSeed, rng } from './testing/random';

/** Runs one product on fresh inputs; returns the output, its relative error against float64, and a rerun's output. */
async function runCase(ctx: GpuContext, c: GenericCase, options: MatmulOptions, rerun = false) {
  const seed = freshSeed();
  const r = rng(seed);
  const { m, n, k } = dimsOf(c.layout, c.P, c.Q, c.D);
  const { ta, tb, want, out } = matmulOperands(ctx, { ...c, m, n, k }, r);
  const once = async () => {
    const tout = out();
    const batch = ctx.batch();
    matmul(batch, { a: ta, b: tb, out: tout, layout: c.layout, alpha: c.alpha, accumulate: c.accumulate, bOffset: c.bOffset, m, n, k }, options);
    batch.submit();
    const got = await ctx.read(tout);
    tout.release();
    return got;
  };
  const got = await once();
  const again = rerun ? await once() : undefined;
  ta.release();
  tb.release();
  return { err: relError(got, want), seed, got, again };
}

const LAYOUTS: [MatmulLayout, DType][] = [
  ['nt', 'f32'],
  ['nt', 'bf16'],
  ['nn', 'f32'],
  ['nn', 'bf16'],
  ['tn', 'f32'],
];
const COLUMNS = [1, 3, 16, 33, 64];

describe('matmul narrow (≤ 64 output columns)', () => {
  it.each(LAYOUTS)('%s with %s b matches float64 for N = 1, 3, 16, 33, 64 on ragged M, K (rel err < 1e-5)', async (layout, dtype) => {
    const ctx = await testContext();
    let i = 0;
    for (const Q of COLUMNS) {
      // P past one (4·NW)-row tile and under one; D odd; bOffset odd for 16-bit word parity
      for (const [P, D] of [[5, 37], [4 * 64 + 7, 19]] as const) {
        const c: GenericCase = { layout, dtype, P, Q, D, alpha: i % 2 ? -0.75 : 1, accumulate: i % 3 === 1, bOffset: i % 2 ? 3 : 0 };
        i++;
        const { err, seed } = await runCase(ctx, c, { path: 'narrow' });
        expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
      }
    }
    // K and bOffset multiples of 4: nt reads 16 bytes at a time (narrow4); the others the same as above
    for (const Q of COLUMNS) {
      const c: GenericCase = { layout, dtype, P: 4 * 64 + 9, Q, D: 44, alpha: 0.5, accumulate: Q % 2 === 1, bOffset: Q % 2 ? 4 : 0 };
      const { err, seed } = await runCase(ctx, c, { path: 'narrow' });
      expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
    }
    // a smaller workgroup through the override constant
    const c: GenericCase = { layout, dtype, P: 77, Q: 16, D: 21, alpha: 1, accumulate: false, bOffset: 0 };
    const { err, seed } = await runCase(ctx, c, { path: 'narrow', constants: { NW: 8 } });
    expect(err, `seed ${seed} NW 8`).toBeLessThan(1e-5);
    await ctx.flush();
  });
});

describe('matmul split-K', () => {
  it.each(LAYOUTS)('%s with %s b matches float64 for N = 1, 3, 16, 33, 64 with K split unevenly (rel err < 1e-5)', async (layout, dtype) => {
    const ctx = await testContext();
    let i = 0;
    for (const Q of COLUMNS) {
      // forced split counts that do not divide D (and more splits than a short D has), and the default
      for (const [P, D, splits] of [[3, 301, 7], [17, 45, 64], [6, 1500, undefined]] as const) {
        const c: GenericCase = { layout, dtype, P, Q, D, alpha: i % 2 ? 0.5 : 1, accumulate: i % 3 !== 1, bOffset: i % 2 ? 5 : 0 };
        i++;
        const { err, seed } = await runCase(ctx, c, { path: 'splitk', splits });
        expect(err, `seed ${seed} ${JSON.stringify(c)} splits ${splits}`).toBeLessThan(1e-5);
      }
    }
    await ctx.flush();
  });

  it('is deterministic: the same inputs give the same bits every run', async () => {
    const ctx = await testContext();
    const c: GenericCase = { layout: 'tn', dtype: 'f32', P: 16, Q: 33, D: 2000, alpha: 1, accumulate: true, bOffset: 0 };
    const { got, again, err } = await runCase(ctx, c, { path: 'splitk' }, true);
    expect(err).toBeLessThan(1e-5);
    expect(splitKCount(16, 33, 2000)).toBeGreaterThan(1);
    expect(Buffer.from(again!.buffer).equals(Buffer.from(got.buffer))).toBe(true);
    await ctx.flush();
  });

  it('returns its scratch partials to the pool', async () => {
    const ctx = await testContext();
    const live = ctx.pool.stats().liveBytes;
    await runCase(ctx, { layout: 'nt', dtype: 'f32', P: 4, Q: 8, D: 600, alpha: 1, accumulate: false, bOffset: 0 }, { path: 'splitk', splits: 5 });
    expect(ctx.pool.stats().liveBytes).toBe(live);
  });
});

describe('narrow and split-K selection and refusals', () => {
  it('GPUs take them only once proven; CPU adapters keep their paths', () => {
    const yes = () => true;
    const loraA = { m: 2048, n: 16, k: 2048 }; // x·Aᵀ over 2048 tokens
    const gradA = { m: 2048, n: 16, k: 2048 }; // tn: dTmpᵀ·x, r × in summed over tokens
    expect(defaultMatmulPath(false, 'tn', gradA, 0, 'f32', yes)).toBe('splitk');
    expect(defaultMatmulPath(false, 'tn', gradA, 0, 'f32')).toBe('tiled');
    expect(defaultMatmulPath(false, 'tn', gradA, 0, 'f32', (p) => p === MATMUL_PATHS.narrow)).toBe('tiled'); // Q = 2048
    expect(defaultMatmulPath(false, 'nt', { ...loraA, m: 8192 }, 0, 'bf16', yes)).toBe('narrow');
    // aligned nt runs the 16-byte-load kernel, which its own self-test case proves
    expect(defaultMatmulPath(false, 'nt', { ...loraA, m: 8192 }, 0, 'bf16', (p) => p !== MATMUL_PATHS.narrow4 && p !== MATMUL_PATHS.regtile)).toBe('tiled');
    expect(defaultMatmulPath(false, 'nt', { ...loraA, m: 8192 }, 0, 'bf16', (p) => p !== MATMUL_PATHS.narrow4)).toBe('regtile'); // past narrow, a big output
    expect(defaultMatmulPath(false, 'nt', { ...loraA, m: 8192, k: 2047 }, 0, 'bf16', (p) => p !== MATMUL_PATHS.narrow4)).toBe('narrow');
    expect(defaultMatmulPath(false, 'nt', { ...loraA, m: 8192 }, 0, 'bf16')).toBe('tiled');
    expect(defaultMatmulPath(false, 'nt', { ...loraA, m: 8192 }, 0, 'int8', yes)).toBe('tiled');
    expect(defaultMatmulPath(true, 'nt', { ...loraA, m: 8192 }, 0, 'bf16', yes)).toBe('vec4');
    expect(defaultMatmulPath(true, 'tn', gradA, 0, 'f32', yes)).toBe('vec4');
    expect(defaultMatmulPath(false, 'nt', { m: 4, n: 16, k: 2048 }, 0, 'f32', yes)).toBe('gemv-sg');
  });

  it('refuses quantized b, wide outputs and workgroups past the device limits, naming the fix', async () => {
    const ctx = await testContext();
    const a = ctx.tensor([8, 64], 'f32', 'x');
    const out = ctx.tensor([8, 65], 'f32', 'y');
    const b = ctx.batch();
    const q = ctx.tensor([16, 64], 'int8', 'Wq');
    expect(() => matmul(b, { a, b: q, out: ctx.tensor([8, 16], 'f32', 'y16'), layout: 'nt' }, { path: 'narrow' })).toThrow(
      /matmul nt: the narrow path takes b as f32, bf16 or f16 \(b Wq is int8\); use tiled/,
    );
    expect(() => matmul(b, { a, b: q, out: ctx.tensor([8, 16], 'f32', 'y16'), layout: 'nt' }, { path: 'splitk' })).toThrow(/the splitk path takes b as f32/);
    expect(() => matmul(b, { a, b: ctx.tensor([65, 64], 'f32', 'W'), out, layout: 'nt' }, { path: 'narrow' })).toThrow(
      /matmul nt: the narrow path needs at most 64 output columns \(65 here\); use tiled/,
    );
    const w = ctx.tensor([16, 64], 'f32', 'W16');
    const y = ctx.tensor([8, 16], 'f32', 'y16b');
    expect(() => matmul(b, { a, b: w, out: y, layout: 'nt' }, { path: 'narrow', constants: { NW: 4096 } })).toThrow(
      /matmul nt: NW = 4096 threads exceeds this device's workgroup limit \(\d+\); pass a smaller NW/,
    );
    expect(() => matmul(b, { a, b: w, out: y, layout: 'nt' }, { path: 'splitk', constants: { SKW: 4096 } })).toThrow(/SKW = 4096 threads exceeds/);
    expect(() => matmul(b, { a, b: w, out: y, layout: 'nt' }, { path: 'splitk', splits: 0 })).toThrow(/matmul nt: splits = 0 must be a positive integer/);
  });
});
