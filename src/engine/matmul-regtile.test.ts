// The regtile GPU path (8×8 register blocks, 16-byte loads, register prefetch) forced on
// SwiftShader against float64, and the watchdog split of every path's grid into bounded dispatches.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import {
  MATMUL_MAX_DISPATCH_FLOPS,
  MATMUL_PATHS,
  MATMUL_REGTILE,
  MATMUL_REGTILE_LARGE,
  REGTILE_MIN_OUT,
  defaultMatmulPath,
  matmul,
  regtileConstants,
  regtileProblem,
  type MatmulLayout,
  type MatmulOptions,
} from './matmul';
import { relError } from './testing/compare';
import { testContext } from './testing/gpu';
import { dimsOf, matmulOperands, type GenericCase } from './testing/matmul';
import { freshSeed, rng } from './testing/random';

/** Runs one product once per option set on the same inputs; returns each output and its relative error against float64. */
async function runCase(ctx: GpuContext, c: GenericCase, ...optionSets: MatmulOptions[]) {
  const seed = freshSeed();
  const r = rng(seed);
  const { m, n, k } = dimsOf(c.layout, c.P, c.Q, c.D);
  const { ta, tb, want, out } = matmulOperands(ctx, { ...c, m, n, k }, r);
  const runs: { got: Float32Array; err: number; dispatches: number; flops: number; maxFlops: number }[] = [];
  for (const options of optionSets) {
    const tout = out();
    const batch = ctx.batch();
    const before = { ...ctx.counters };
    ctx.counters.maxMatmulFlops = 0;
    matmul(batch, { a: ta, b: tb, out: tout, layout: c.layout, alpha: c.alpha, accumulate: c.accumulate, bOffset: c.bOffset, m, n, k }, options);
    const counted = {
      dispatches: ctx.counters.dispatches - before.dispatches,
      flops: ctx.counters.matmulFlops - before.matmulFlops,
      maxFlops: ctx.counters.maxMatmulFlops,
    };
    batch.submit();
    const got = (await ctx.read(tout)) as Float32Array;
    tout.release();
    runs.push({ got, err: relError(got, want), ...counted });
  }
  ta.release();
  tb.release();
  return { seed, runs };
}

const LAYOUTS: [MatmulLayout, DType][] = [
  ['nt', 'f32'],
  ['nt', 'bf16'],
  ['nt', 'f16'],
  ['nn', 'f32'],
  ['nn', 'bf16'],
  ['nn', 'f16'],
  ['tn', 'f32'],
];

describe('matmul regtile', () => {
  it.each(LAYOUTS)('%s with %s b matches float64 on ragged and aligned shapes, with alpha, accumulate, bOffset (rel err < 1e-5)', async (layout, dtype) => {
    const ctx = await testContext();
    // [P, Q, D, bOffset]: ragged everywhere (element-wise loads, odd bOffset for 16-bit word
    // parity); every contiguous dim and bOffset a multiple of 8 with ragged tile edges (16-byte
    // loads inside, zero fill at the edges); one K tile only; D past several K tiles.
    const shapes: [number, number, number, number][] = [
      [37, 29, 45, 3],
      [70, 72, 48, 8],
      [9, 67, 5, 1],
      [68, 40, 136, 0],
    ];
    let i = 0;
    for (const [P, Q, D, bOffset] of shapes) {
      const c: GenericCase = { layout, dtype, P, Q, D, alpha: i % 2 ? -0.75 : 1, accumulate: i % 3 !== 2, bOffset };
      i++;
      const { seed, runs } = await runCase(ctx, c, { path: 'regtile' });
      expect(runs[0]!.err, `seed ${seed} ${JSON.stringify(c)}`).toBeLessThan(1e-5);
    }
    // a smaller workgroup through the override constants: 32×32 tiles, 4 loads per thread and operand
    const c: GenericCase = { layout, dtype, P: 45, Q: 72, D: 40, alpha: 0.5, accumulate: true, bOffset: 0 };
    const { seed, runs } = await runCase(ctx, c, { path: 'regtile', constants: { RX: 4, RY: 4, RK: 8 } });
    expect(runs[0]!.err, `seed ${seed} RX 4 RY 4`).toBeLessThan(1e-5);
    await ctx.flush();
  });
});

describe('matmul regtile, the large tiles', () => {
  // 128×128 tiles of 256 threads, K tiles of 8 and 16 (what regtileConstants picks on big GPUs)
  it('nt bf16 (16-byte loads) and tn f32 (ragged) match float64 (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const cases: [GenericCase, Record<string, number>][] = [
      [{ layout: 'nt', dtype: 'bf16', P: 136, Q: 144, D: 56, alpha: 1, accumulate: true, bOffset: 8 }, { ...MATMUL_REGTILE_LARGE }],
      [{ layout: 'tn', dtype: 'f32', P: 131, Q: 129, D: 37, alpha: -0.5, accumulate: false, bOffset: 0 }, { ...MATMUL_REGTILE_LARGE, RK: 16 }],
    ];
    for (const [c, constants] of cases) {
      const { seed, runs } = await runCase(ctx, c, { path: 'regtile', constants });
      expect(runs[0]!.err, `seed ${seed} ${JSON.stringify(c)} ${JSON.stringify(constants)}`).toBeLessThan(1e-5);
    }
    await ctx.flush();
  });
});

describe('matmul dispatches bounded against the GPU watchdog', () => {
  // Every path with a grid of several workgroups, cut into dispatches of at most a few workgroups
  // by a small maxDispatchFlops: the same bits as one dispatch (accumulate on, so a tile computed
  // twice or skipped would show), the product's FLOPs counted once, each dispatch under the bound.
  // [path, case, options, bound]: the bound is a workgroup's FLOPs (2 · its outputs · D) times 1-2.
  const cases: [string, GenericCase, MatmulOptions, number][] = [
    ['tiled', { layout: 'nt', dtype: 'bf16', P: 37, Q: 29, D: 45, alpha: 0.5, accumulate: true, bOffset: 3 }, { path: 'tiled', constants: { WX: 2, WY: 2, TK: 4 } }, 2 * 2 * 8 * 8 * 45],
    ['regtile', { layout: 'nn', dtype: 'f32', P: 45, Q: 72, D: 40, alpha: 1, accumulate: true, bOffset: 0 }, { path: 'regtile', constants: { RX: 4, RY: 4, RK: 8 } }, 2 * 2 * 32 * 32 * 40],
    ['gemv', { layout: 'nt', dtype: 'f32', P: 3, Q: 29, D: 45, alpha: 1, accumulate: true, bOffset: 0 }, { path: 'gemv' }, 2 * 2 * 4 * 3 * 45],
    ['direct', { layout: 'tn', dtype: 'f32', P: 37, Q: 29, D: 45, alpha: -1, accumulate: true, bOffset: 0 }, { path: 'direct' }, 2 * 32 * 32 * 45],
    ['vec4', { layout: 'nt', dtype: 'f32', P: 130, Q: 70, D: 44, alpha: 1, accumulate: true, bOffset: 4 }, { path: 'vec4' }, 2 * 2 * 64 * 32 * 44],
    ['skinny', { layout: 'nt', dtype: 'f32', P: 2, Q: 600, D: 44, alpha: 1, accumulate: true, bOffset: 0 }, { path: 'skinny' }, 2 * 256 * 2 * 44],
    ['narrow', { layout: 'nt', dtype: 'f32', P: 300, Q: 40, D: 21, alpha: 1, accumulate: true, bOffset: 0 }, { path: 'narrow', constants: { NW: 8 } }, 2 * 2 * 32 * 16 * 21],
    ['splitk', { layout: 'tn', dtype: 'f32', P: 16, Q: 33, D: 300, alpha: 1, accumulate: true, bOffset: 0 }, { path: 'splitk', splits: 4 }, 2 * 16 * 16 * 300],
  ];
  it.each(cases)('%s: the same bits as one dispatch, each dispatch within maxDispatchFlops', async (_name, c, options, bound) => {
    const ctx = await testContext();
    // the cut first, so split-K's scratch partials from the pool hold nothing of a whole run
    const { seed, runs } = await runCase(ctx, c, { ...options, maxDispatchFlops: bound }, options);
    const [cut, one] = [runs[0]!, runs[1]!];
    expect(cut.err, `seed ${seed}`).toBeLessThan(1e-5);
    expect(one.err, `seed ${seed}`).toBeLessThan(1e-5);
    expect(cut.dispatches).toBeGreaterThan(one.dispatches);
    expect(Buffer.from(cut.got.buffer).equals(Buffer.from(one.got.buffer)), `seed ${seed}: split output differs`).toBe(true);
    expect(cut.flops).toBe(2 * c.P * c.Q * c.D);
    expect(one.flops).toBe(2 * c.P * c.Q * c.D);
    expect(cut.maxFlops).toBeLessThanOrEqual(bound);
    await ctx.flush();
  });

  it('bounds the default: a 1B lm_head chunk-sized product is cut at MATMUL_MAX_DISPATCH_FLOPS; small ones stay whole', async () => {
    const ctx = await testContext();
    const [m, n, k] = [1024, 4096, 2048]; // 17 GFLOP: 4 × 2^32
    const a = ctx.tensor([m, k], 'f32', 'x');
    const w = ctx.tensor([n, k], 'bf16', 'W');
    const out = ctx.tensor([m, n], 'f32', 'y');
    for (const path of ['tiled', 'regtile'] as const) {
      const before = ctx.counters.dispatches;
      ctx.counters.maxMatmulFlops = 0;
      const batch = ctx.batch();
      matmul(batch, { a, b: w, out, layout: 'nt' }, { path });
      // encoded only: the counters see the dispatches; nothing is submitted (SwiftShader would take minutes)
      expect(ctx.counters.dispatches - before, path).toBeGreaterThanOrEqual(3);
      expect(ctx.counters.maxMatmulFlops, path).toBeLessThanOrEqual(MATMUL_MAX_DISPATCH_FLOPS);
    }
    const before = ctx.counters.dispatches;
    const batch = ctx.batch();
    matmul(batch, { a: ctx.tensor([64, 64], 'f32', 'x2'), b: ctx.tensor([64, 64], 'f32', 'W2'), out: ctx.tensor([64, 64], 'f32', 'y2'), layout: 'nt' }, { path: 'regtile' });
    expect(ctx.counters.dispatches - before).toBe(1);
    expect(() => matmul(ctx.batch(), { a, b: w, out, layout: 'nt' }, { maxDispatchFlops: 0 })).toThrow(/matmul nt: maxDispatchFlops 0 must be at least 1/);
  });
});

describe('regtile constants, limits and selection', () => {
  const limits = (over: Partial<GPUSupportedLimits> = {}) =>
    ({
      maxComputeWorkgroupSizeX: 256,
      maxComputeWorkgroupSizeY: 256,
      maxComputeInvocationsPerWorkgroup: 256,
      maxComputeWorkgroupStorageSize: 16384,
      ...over,
    }) as GPUSupportedLimits;

  it('picks the 128×128 tile where limits and the grid allow it, deeper K tiles with 32 KiB, else 64×64', () => {
    expect(regtileConstants(limits(), 2048, 2048)).toEqual(MATMUL_REGTILE_LARGE);
    expect(regtileConstants(limits({ maxComputeWorkgroupStorageSize: 32768 }), 2048, 8192)).toEqual({ ...MATMUL_REGTILE_LARGE, RK: 16 });
    expect(regtileConstants(limits(), 512, 2048)).toEqual(MATMUL_REGTILE); // 64 large tiles: too few
    expect(regtileConstants(limits({ maxComputeInvocationsPerWorkgroup: 128 }), 2048, 2048)).toEqual(MATMUL_REGTILE);
    expect(regtileConstants(limits({ maxComputeWorkgroupStorageSize: 8192 }), 2048, 2048)).toEqual(MATMUL_REGTILE);
    expect(regtileProblem(MATMUL_REGTILE, limits({ maxComputeWorkgroupStorageSize: 8192 }))).toBeNull();
  });

  it('names the constant when forced constants do not fit the device', async () => {
    expect(regtileProblem({ RX: 8, RY: 8, RK: 12 }, limits())).toMatch(/RK = 12 must be a multiple of 8/);
    expect(regtileProblem({ RX: 512, RY: 1, RK: 8 }, limits())).toMatch(/RX = 512 exceeds this device's maxComputeWorkgroupSizeX \(256\); pass a smaller RX/);
    expect(regtileProblem({ RX: 1, RY: 300, RK: 8 }, limits())).toMatch(/RY = 300 exceeds this device's maxComputeWorkgroupSizeY/);
    expect(regtileProblem({ RX: 32, RY: 16, RK: 8 }, limits())).toMatch(/RX·RY = 512 threads exceeds this device's maxComputeInvocationsPerWorkgroup \(256\)/);
    expect(regtileProblem({ RX: 16, RY: 16, RK: 16 }, limits())).toMatch(/needs 32768 bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize \(16384\); pass a smaller RK/);
    expect(regtileProblem({ RX: 2, RY: 2, RK: 8 }, limits())).toMatch(/stages 8 16-byte loads per thread, more than 4; pass a smaller RK or more threads/);
    const ctx = await testContext();
    const a = ctx.tensor([8, 64], 'f32', 'x');
    const w = ctx.tensor([16, 64], 'f32', 'W');
    const y = ctx.tensor([8, 16], 'f32', 'y');
    const b = ctx.batch();
    expect(() => matmul(b, { a, b: w, out: y, layout: 'nt' }, { path: 'regtile', constants: { RX: 4096 } })).toThrow(
      /matmul nt: regtile path: RX = 4096 exceeds this device's maxComputeWorkgroupSizeX \(\d+\); pass a smaller RX/,
    );
    expect(() => matmul(b, { a, b: ctx.tensor([16, 64], 'int8', 'Wq'), out: y, layout: 'nt' }, { path: 'regtile' })).toThrow(
      /matmul nt: the regtile path takes b as f32, bf16 or f16 \(b Wq is int8\); use tiled for quantized weights/,
    );
  });

  it('GPUs take it for big enough float products once proven; CPU adapters and quantized b keep their paths', () => {
    const yes = () => true;
    const only = (p: string) => p === MATMUL_PATHS.regtile;
    const proj = { m: 512, n: 2048, k: 2048 };
    expect(defaultMatmulPath(false, 'nt', proj, 0, 'bf16', only)).toBe('regtile');
    expect(defaultMatmulPath(false, 'nt', proj, 0, 'bf16')).toBe('tiled');
    expect(defaultMatmulPath(false, 'nn', proj, 0, 'f16', only)).toBe('regtile');
    expect(defaultMatmulPath(false, 'tn', proj, 0, 'f32', only)).toBe('regtile');
    expect(defaultMatmulPath(false, 'nt', proj, 0, 'int4', yes)).toBe('tiled');
    expect(defaultMatmulPath(true, 'nt', proj, 0, 'bf16', yes)).toBe('vec4');
    // small outputs: tiled (a few 64×64 tiles would leave a GPU idle either way)
    expect(defaultMatmulPath(false, 'nt', { m: 60, n: 64, k: 2048 }, 0, 'f32', only)).toBe('tiled');
    expect(64 * 64 * 16).toBe(REGTILE_MIN_OUT);
    // narrow, split-K and gemv keep their shapes when proven
    expect(defaultMatmulPath(false, 'nt', { m: 8192, n: 16, k: 2048 }, 0, 'bf16', yes)).toBe('narrow');
    expect(defaultMatmulPath(false, 'tn', { m: 2048, n: 16, k: 2048 }, 0, 'f32', yes)).toBe('splitk');
    expect(defaultMatmulPath(false, 'nt', { m: 1, n: 2048, k: 2048 }, 0, 'f32', only)).toBe('gemv');
  });
});
