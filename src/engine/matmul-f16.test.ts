// The f16-input path (path 'f16', ./matmul-f16.ts). SwiftShader has no shader-f16, so the
// emulated variant (the same source over h = f32, with the real variant's f16 roundings done by
// pack2x16float) is forced against float64: exactly (f32-sum error only) against a reference
// that rounds inputs and products to f16 the same way, and within F16_ERROR_BOUND against the
// exact product. Then the real variant's feature check and the path choice.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { quantize as roundTo, type DType } from '../gpu/dtype';
import { defaultMatmulPath, MATMUL_PATHS, matmul } from './matmul';
import { F16_B_DTYPES, F16_ERROR_BOUND, F16_MODULES, matmulF16 } from './matmul-f16';
import { matmulRef } from './reference/matmul';
import { runSelfTest } from './selftest';
import { MATMUL_CASES } from './selftest-cases/matmul';
import { relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import type { NtCase } from './testing/matmul';
import { freshSeed, randn, rng } from './testing/random';

const keep: GPU[] = [];

/** float64 Σ_k f16(a·b): what the kernel computes when a and b are already f16 values. */
function f16ProductRef(c: NtCase, a: ArrayLike<number>, b: ArrayLike<number>, prev?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(c.m * c.n);
  const terms = new Float64Array(c.k);
  for (let i = 0; i < c.m; i++)
    for (let j = 0; j < c.n; j++) {
      for (let d = 0; d < c.k; d++) terms[d] = a[i * c.k + d]! * b[c.bOffset + j * c.k + d]!;
      const rounded = roundTo(terms, 'f16');
      let s = 0;
      for (let d = 0; d < c.k; d++) s += rounded[d]!;
      out[i * c.n + j] = c.alpha * s + (prev ? prev[i * c.n + j]! : 0);
    }
  return out;
}

/**
 * Runs the emulated f16 path; `f16Inputs` draws a and b on f16's grid (then the only rounding left
 * is each product's). Returns the errors against the f16-rounded reference and the exact product.
 */
async function runCase(ctx: GpuContext, c: NtCase, f16Inputs: boolean, maxDispatchFlops?: number) {
  const seed = freshSeed();
  const r = rng(seed);
  const bCount = c.bOffset + c.n * c.k + 5;
  // bf16 values rounded to f16 stay bf16 values (f16 holds every bf16 significand in its range).
  const grid = (v: Float64Array, dtype: DType) => (f16Inputs ? roundTo(roundTo(v, dtype), 'f16') : roundTo(v, dtype));
  const a = grid(randn(c.m * c.k, r), 'f32');
  const b = grid(randn(bCount, r), c.dtype);
  const prev = c.accumulate ? roundTo(randn(c.m * c.n, r), 'f32') : undefined;
  const ta = ctx.upload(a, [c.m, c.k], 'f32', 'a');
  const tb = ctx.upload(b, [bCount], c.dtype, 'W');
  const tout = prev ? ctx.upload(prev, [c.m, c.n], 'f32', 'out') : poisoned(ctx, [c.m, c.n], 'out');
  const batch = ctx.batch();
  const { m, n, k, alpha, accumulate, bOffset } = c;
  if (maxDispatchFlops === undefined) {
    matmul(batch, { a: ta, b: tb, out: tout, layout: 'nt', m, n, k, alpha, accumulate, bOffset }, { path: 'f16', f16Variant: 'emulated', constants: c.constants });
  } else {
    matmulF16(batch, { a: ta, b: tb, out: tout, m, n, k, alpha, accumulate, bOffset }, { variant: 'emulated', maxDispatchFlops });
  }
  batch.submit();
  const got = await ctx.read(tout);
  for (const t of [ta, tb, tout]) t.release();
  return {
    seed,
    got,
    rounded: relError(got, f16ProductRef(c, a, b, prev)),
    exact: relError(got, matmulRef({ layout: 'nt', a, b, m, n, k, alpha, c: prev, bOffset })),
  };
}

// Ragged everything (element-wise loads, K over several TK-deep slices), K and bOffset multiples
// of 8 (16-byte loads) with ragged M and N over several 64×64 tiles, and a single small tile.
const CASES: NtCase[] = [
  { dtype: 'bf16', m: 67, n: 70, k: 37, bOffset: 3, alpha: 1, accumulate: false },
  { dtype: 'f16', m: 130, n: 65, k: 72, bOffset: 8, alpha: -0.75, accumulate: true },
  { dtype: 'f32', m: 9, n: 5, k: 20, bOffset: 1, alpha: 0.5, accumulate: true },
  { dtype: 'bf16', m: 70, n: 129, k: 48, bOffset: 16, alpha: 1, accumulate: false },
  { dtype: 'f32', m: 65, n: 66, k: 40, bOffset: 4, alpha: 1, accumulate: false },
  // The shallowest and deepest slices (1 and 4 staged units a thread).
  { dtype: 'bf16', m: 66, n: 67, k: 88, bOffset: 8, alpha: 1, accumulate: true, constants: { TK: 32 } },
  { dtype: 'f16', m: 3, n: 70, k: 29, bOffset: 5, alpha: 1, accumulate: false, constants: { TK: 8 } },
];

describe('matmul f16 (emulated variant forced on SwiftShader)', () => {
  it('inputs on f16 grid: matches float64 of f16-rounded products summed (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    for (const c of CASES) {
      const { rounded, seed } = await runCase(ctx, c, true);
      expect(rounded, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
    }
  });

  it(`any f32/bf16 inputs: within the f16 bound of the exact product (${F16_ERROR_BOUND.toExponential(2)}), and not as close as f32`, async () => {
    const ctx = await testContext();
    for (const c of CASES) {
      const { exact, seed } = await runCase(ctx, c, false);
      expect(exact, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(F16_ERROR_BOUND);
      // The roundings happen: an f32 product would be within ~1e-7.
      expect(exact, `seed ${seed} ${JSON.stringify(c)}`).toBeGreaterThan(2e-5);
    }
  });

  it('cut into dispatches of bounded FLOPs, matches float64 and counts the product once', async () => {
    const ctx = await testContext();
    const c: NtCase = { dtype: 'bf16', m: 130, n: 70, k: 24, bOffset: 0, alpha: 1, accumulate: false };
    // 2·64·64·24 FLOPs per tile: one tile per dispatch, 6 dispatches.
    const before = ctx.counters.matmulFlops;
    const split = await runCase(ctx, c, true, 2 * 64 * 64 * 24);
    expect(split.rounded, `seed ${split.seed}`).toBeLessThan(1e-5);
    expect(ctx.counters.matmulFlops - before).toBe(2 * c.m * c.n * c.k); // counted once
  });

  it('the real variant needs shader-f16 (absent on SwiftShader): a clear error', async () => {
    const ctx = await testContext();
    expect(ctx.features.has('shader-f16')).toBe(false);
    const b = ctx.batch();
    const args = { a: ctx.tensor([9, 8], 'f32', 'x'), b: ctx.tensor([5, 8], 'bf16', 'W'), out: ctx.tensor([9, 5], 'f32', 'y'), layout: 'nt' as const };
    expect(() => matmul(b, args, { path: 'f16' })).toThrow(/f16.*needs the adapter feature 'shader-f16', which this device lacks/);
    expect(() => matmul(b, { ...args, b: ctx.tensor([5, 8], 'int8', 'Wq') }, { path: 'f16', f16Variant: 'emulated' })).toThrow(/Wq\) is int8; the f16 path takes f32, bf16, f16/);
    expect(() => matmul(b, args, { path: 'f16', f16Variant: 'emulated', constants: { TK: 12 } })).toThrow(/TK = 12 must be 8, 16, 24 or 32/);
  });

  it("the self-test skips the f16 case here with its reason and proves nothing; the gemv-sg case runs (SwiftShader has subgroups)", async () => {
    const ctx = await testContext();
    const cases = MATMUL_CASES.filter((c) => /gemv-sg|f16 inputs/.test(c.name));
    expect(cases.length).toBe(2);
    const results = await runSelfTest(ctx, undefined, { cases });
    const f16 = results.find((r) => /f16 inputs/.test(r.name))!;
    expect(f16.skipped).toBe('not available: adapter lacks shader-f16');
    expect(f16.proved).toBeUndefined();
    const sg = results.find((r) => /gemv-sg/.test(r.name))!;
    expect(sg.skipped).toBeUndefined();
    expect(sg.pass, `${sg.name}: ${sg.error ?? sg.relError}`).toBe(true);
    expect(sg.proved).toBeUndefined(); // a CPU adapter never takes it by default
  });

  // Dawn's null backend offers shader-f16 and runs Tint's full WGSL validation, but executes nothing.
  it('the real variant (enable f16, h = f16) compiles and builds a pipeline for every entry point where shader-f16 exists', async () => {
    const dawn = createRequire(import.meta.url)('webgpu') as { create(flags: string[]): GPU };
    const gpu = dawn.create(['backend=null']);
    keep.push(gpu); // Dawn crashes if an instance is collected while its device lives
    const adapter = await gpu.requestAdapter();
    expect(adapter?.features.has('shader-f16')).toBe(true);
    const device = await adapter!.requestDevice({ requiredFeatures: ['shader-f16'] });
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: F16_MODULES.real.code });
    const info = await module.getCompilationInfo();
    expect(info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)).toEqual([]);
    for (const d of F16_B_DTYPES)
      for (const entryPoint of [`f16_nt_${d}`, `f16_nt_any_${d}`]) device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
    expect((await device.popErrorScope())?.message).toBeUndefined();
    device.destroy();
  });

  it('GPUs take f16 only for inference products in nt, M > 8, once proven (which needs shader-f16)', () => {
    const d = { m: 512, n: 8192, k: 2048 };
    const f16 = (p: string) => p === MATMUL_PATHS.f16;
    expect(defaultMatmulPath(false, 'nt', d, 0, 'bf16', f16, true)).toBe('f16');
    expect(defaultMatmulPath(false, 'nt', d, 0, 'bf16', f16, false)).not.toBe('f16'); // training and scoring
    expect(defaultMatmulPath(false, 'nt', d, 0, 'bf16', () => false, true)).not.toBe('f16'); // feature absent or unproven
    expect(defaultMatmulPath(false, 'nn', d, 0, 'bf16', f16, true)).not.toBe('f16');
    expect(defaultMatmulPath(false, 'nt', d, 0, 'int4', f16, true)).not.toBe('f16');
    expect(defaultMatmulPath(false, 'nt', { ...d, m: 1 }, 0, 'bf16', f16, true)).toBe('gemv'); // decode
    expect(defaultMatmulPath(true, 'nt', d, 0, 'bf16', f16, true)).not.toBe('f16'); // CPU adapters
  });
});
