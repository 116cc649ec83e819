// The subgroup GEMV (path 'gemv-sg') forced on SwiftShader, whose subgroups are 4 wide, against
// float64: M = 1..8, ragged N and K (the element-wise entry points) and K, bOffset multiples of 8
// (16-byte loads), f32/bf16/f16 and quantized b, alpha/accumulate, row slices by bOffset; then
// the path choice in defaultMatmulPath.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { quantize as roundTo, type DType } from '../gpu/dtype';
import { dequantize as dequantizeBlocks, FORMAT_OF_DTYPE, GGML_DTYPES } from '../gpu/ggml';
import { dequantize, quantize, type QuantDType } from '../gpu/quant';
import { defaultMatmulPath, MATMUL_PATHS, matmul } from './matmul';
import { gemvSgAligned, MATMUL_GEMV_SG } from './matmul-gemv-sg';
import { matmulRef } from './reference/matmul';
import { relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import type { NtCase } from './testing/matmul';
import { randomBlocks } from './testing/ggml';
import { groupedWeights } from './testing/quant';
import { freshSeed, randn, rng } from './testing/random';

async function runCase(ctx: GpuContext, c: NtCase): Promise<{ err: number; seed: number }> {
  const seed = freshSeed();
  const r = rng(seed);
  const bCount = c.bOffset + c.n * c.k + 5; // rows before bOffset and trailing elements must be ignored
  const a = roundTo(randn(c.m * c.k, r), 'f32');
  let b: Float64Array;
  let tb;
  if (c.dtype === 'int8' || c.dtype === 'int4') {
    const bytes = quantize(groupedWeights(bCount, r), c.dtype as QuantDType);
    b = dequantize(bytes, bCount, c.dtype as QuantDType);
    tb = ctx.tensor([bCount], c.dtype, 'Wq');
    ctx.writeBytes(tb, bytes);
  } else {
    b = roundTo(randn(bCount, r), c.dtype);
    tb = ctx.upload(b, [bCount], c.dtype, 'W');
  }
  const prev = c.accumulate ? roundTo(randn(c.m * c.n, r), 'f32') : undefined;
  const ta = ctx.upload(a, [c.m, c.k], 'f32', 'a');
  const tout = prev ? ctx.upload(prev, [c.m, c.n], 'f32', 'out') : poisoned(ctx, [c.m, c.n], 'out');
  const batch = ctx.batch();
  const { m, n, k, alpha, accumulate, bOffset } = c;
  matmul(batch, { a: ta, b: tb, out: tout, layout: 'nt', m, n, k, alpha, accumulate, bOffset }, { path: 'gemv-sg', constants: c.constants });
  batch.submit();
  const got = await ctx.read(tout);
  const want = matmulRef({ layout: 'nt', a, b, m, n, k, alpha, c: prev, bOffset });
  for (const t of [ta, tb, tout]) t.release();
  return { err: relError(got, want), seed };
}

describe('matmul gemv-sg (subgroup reductions; SwiftShader subgroups are 4 wide)', () => {
  it('M = 1..8, f32/bf16/f16 b, ragged and 16-byte-aligned K, bOffset, alpha/accumulate match float64 (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    expect(ctx.features.has('subgroups')).toBe(true);
    const dtypes: DType[] = ['f32', 'bf16', 'f16'];
    let i = 0;
    for (let m = 1; m <= 8; m++) {
      // [N, K, bOffset]: ragged (odd K, odd bOffset: the element-wise entry point with a tail),
      // then aligned (K, bOffset multiples of 8) with N not a multiple of COLS.
      const shapes: [number, number, number][] = [
        [13 + m, 37 + 2 * m, 3 * (m % 2)],
        [2 * MATMUL_GEMV_SG.COLS + 3, 8 * (m + 5), 8 * m],
      ];
      for (const [n, k, bOffset] of shapes) {
        const dtype = dtypes[i % 3]!;
        const c: NtCase = { dtype, m, n, k, bOffset, alpha: i % 4 < 2 ? 1 : -0.75, accumulate: i % 2 === 1 };
        i++;
        expect(gemvSgAligned(k, bOffset)).toBe(k % 8 === 0 && bOffset % 8 === 0);
        const { err, seed } = await runCase(ctx, c);
        expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
      }
    }
    await ctx.flush();
  });

  it('every b dtype on both entry points, K shorter than a subgroup stride and longer than many (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const cases: NtCase[] = [];
    for (const dtype of ['f32', 'bf16', 'f16'] as DType[]) {
      cases.push({ dtype, m: 3, n: 5, k: 3, bOffset: 1, alpha: 1, accumulate: false });
      cases.push({ dtype, m: 2, n: 9, k: 520, bOffset: 16, alpha: 0.5, accumulate: true });
    }
    // Quantized b: groups of 32 spanning rows (K = 48) and aligned rows (K = 96).
    for (const dtype of ['int8', 'int4'] as DType[]) {
      cases.push({ dtype, m: 1, n: 7, k: 48, bOffset: 0, alpha: 1, accumulate: false });
      cases.push({ dtype, m: 5, n: 11, k: 96, bOffset: 96 * 3, alpha: -1, accumulate: true });
      cases.push({ dtype, m: 4, n: 6, k: 45, bOffset: 3, alpha: 1, accumulate: false });
    }
    // One workgroup of a single column, and workgroups wider than their columns need.
    cases.push({ dtype: 'bf16', m: 8, n: 10, k: 64, bOffset: 0, alpha: 1, accumulate: false, constants: { WG: 4, COLS: 1 } });
    cases.push({ dtype: 'bf16', m: 1, n: 33, k: 24, bOffset: 8, alpha: 1, accumulate: true, constants: { WG: 128, COLS: 8 } });
    for (const c of cases) {
      const { err, seed } = await runCase(ctx, c);
      expect(err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
    }
  });

  it('GGUF block weights (q8_0, q4_0, q4_k, q6_k), a row slice at M = 2 and 5 (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    for (const [i, dtype] of GGML_DTYPES.entries()) {
      const seed = freshSeed();
      const r = rng(seed);
      const [rows, k, m] = [9, 256, i % 2 ? 5 : 2];
      const bytes = randomBlocks(FORMAT_OF_DTYPE[dtype], rows, k, r);
      const b = dequantizeBlocks(FORMAT_OF_DTYPE[dtype], bytes, rows * k);
      const tb = ctx.tensor([rows, k], dtype, `W ${dtype}`);
      const padded = new Uint8Array(tb.buffer.size);
      padded.set(bytes);
      ctx.writeBytes(tb, padded);
      const a = roundTo(randn(m * k, r), 'f32');
      const ta = ctx.upload(a, [m, k], 'f32', 'a');
      const [first, n] = [2, 6];
      const out = poisoned(ctx, [m, n], 'out');
      const batch = ctx.batch();
      matmul(batch, { a: ta, b: tb, out, layout: 'nt', m, n, k, bOffset: first * k }, { path: 'gemv-sg' });
      batch.submit();
      const err = relError(await ctx.read(out), matmulRef({ layout: 'nt', a, b, m, n, k, bOffset: first * k }));
      expect(err, `seed ${seed} ${dtype}`).toBeLessThan(1e-5);
      for (const t of [ta, tb, out]) t.release();
    }
  });

  it('splits grids above 65,535 workgroups (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const c: NtCase = { dtype: 'bf16', m: 1, n: 65_536 + 3, k: 8, bOffset: 0, alpha: 1, accumulate: false, constants: { WG: 4, COLS: 1 } };
    const { err, seed } = await runCase(ctx, c);
    expect(err, `seed ${seed}`).toBeLessThan(1e-5);
  });

  it('cut into dispatches of bounded FLOPs (the watchdog bound), counted once in the counters (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const [m, n, k] = [3, 37, 40];
    const r = rng(freshSeed());
    const a = roundTo(randn(m * k, r), 'f32');
    const b = roundTo(randn(n * k, r), 'bf16');
    const ta = ctx.upload(a, [m, k], 'f32', 'a');
    const tb = ctx.upload(b, [n, k], 'bf16', 'W');
    const out = poisoned(ctx, [m, n], 'out');
    const before = { ...ctx.counters };
    const batch = ctx.batch();
    // 2·3·4·40 FLOPs per workgroup of 4 columns: 2 workgroups per dispatch, 5 dispatches.
    matmul(batch, { a: ta, b: tb, out, layout: 'nt' }, { path: 'gemv-sg', maxDispatchFlops: 2 * 2 * m * 4 * k });
    expect(batch.dispatches).toBe(5);
    batch.submit();
    expect(ctx.counters.matmulFlops - before.matmulFlops).toBe(2 * m * n * k);
    expect(relError(await ctx.read(out), matmulRef({ layout: 'nt', a, b, m, n, k }))).toBeLessThan(1e-5);
  });

  it('GPUs take gemv-sg for decode only where the self-test proved it (subgroups present); else gemv', () => {
    const d = { m: 1, n: 8192, k: 2048 };
    const none = () => false;
    const sg = (p: string) => p === MATMUL_PATHS.gemvSg;
    expect(defaultMatmulPath(false, 'nt', d, 0, 'bf16', none)).toBe('gemv');
    expect(defaultMatmulPath(false, 'nt', d, 0, 'bf16', sg)).toBe('gemv-sg');
    expect(defaultMatmulPath(false, 'nt', { ...d, m: 8 }, 0, 'int4', sg)).toBe('gemv-sg');
    expect(defaultMatmulPath(false, 'nt', { ...d, m: 9 }, 0, 'bf16', sg)).not.toBe('gemv-sg');
    expect(defaultMatmulPath(false, 'nn', d, 0, 'bf16', sg)).not.toBe('gemv-sg');
    // CPU adapters keep their barrier-free skinny path.
    expect(defaultMatmulPath(true, 'nt', d, 0, 'bf16', sg)).toBe('skinny');
  });

  it('rejects M > 8 and other layouts with a message naming the path', async () => {
    const ctx = await testContext();
    const b = ctx.batch();
    const w = ctx.tensor([5, 8], 'bf16', 'W');
    expect(() => matmul(b, { a: ctx.tensor([9, 8], 'f32', 'x9'), b: w, out: ctx.tensor([9, 5], 'f32', 'y9'), layout: 'nt' }, { path: 'gemv-sg' })).toThrow(
      /gemv-sg.*M ≤ 8 \(M = 9\)/,
    );
    expect(() => matmul(b, { a: ctx.tensor([2, 5], 'f32', 'x'), b: w, out: ctx.tensor([2, 8], 'f32', 'y'), layout: 'nn' }, { path: 'gemv-sg' })).toThrow(
      /gemv-sg.*layout nt/,
    );
  });
});
