// GPU self-test: runs every kernel family once, forward and backward, on small random inputs
// (ragged sizes, outputs poisoned with NaN) and compares with its float64 reference by relative
// error. The studio's GPU status page runs it in the browser; selftest.test.ts runs it in Node
// (Dawn) and `fuse-studio selftest` from the command line.
//
// The cases live in selftest-cases/<family>.ts; this file is the runner. Adding an op is one
// entry in its family's list:
//   {
//     name: 'rmsnorm forward, bf16 weight',
//     run: async (ctx, t) => {
//       const x = draw(t, rows * dim);                 // seeded, rounded to what the GPU stores
//       const out = t.poisoned([rows, dim], 'out');
//       const batch = ctx.batch('selftest rmsnorm forward');
//       rmsnormForward(batch, { y: out, x: t.upload(x, [rows, dim], 'x'), ... });
//       batch.submit();
//       return rel(await t.read(out), rmsnormForwardRef(x, ...).y, 2e-6); // the bound of the op's test
//     },
//   },
// A case with several outputs returns `worst(rel(...), rel(...))`. Keep shapes small and ragged
// and reuse the pipelines other cases compile: on SwiftShader each new pipeline costs seconds,
// and the whole run should stay well under 30 s.
//
// This module runs in pages and workers too: neither it nor the cases may import Node-only
// helpers (testing/gpu.ts, freshSeed in testing/random.ts read the file system or process.env).

import type { GpuContext } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import type { Tensor } from '../gpu/tensor';
import { ADAMW_CASES } from './selftest-cases/adamw';
import { ATTENTION_CASES } from './selftest-cases/attention';
import { CROSS_ENTROPY_CASES } from './selftest-cases/cross-entropy';
import { EMBEDDING_CASES } from './selftest-cases/embedding';
import { MATMUL_CASES } from './selftest-cases/matmul';
import { BIAS_CASES } from './selftest-cases/bias';
import { RESIDUAL_CASES } from './selftest-cases/residual';
import { RMSNORM_CASES } from './selftest-cases/rmsnorm';
import { ROPE_CASES } from './selftest-cases/rope';
import { SAMPLING_CASES } from './selftest-cases/sampling';
import { SWIGLU_CASES } from './selftest-cases/swiglu';
import { isProven, markProven } from './proven';
import { randn, rng } from './testing/random';

export interface SelfTestCheck {
  /** Relative L2 error of the GPU result against the float64 reference. */
  relError: number;
  /** The largest relative error that passes. */
  bound: number;
}

/** Helpers handed to each case; every tensor made through them is released after the case. */
export interface SelfTestTools {
  /** Seeded uniform draws in [0, 1). */
  next: () => number;
  /** Seeded standard normal draws (never zero), scaled. */
  randn(n: number, scale?: number): Float64Array;
  /** A tensor holding `values`. */
  upload(values: ArrayLike<number>, shape: readonly number[], label: string, dtype?: DType): Tensor;
  /** A tensor filled with NaN (0xFF bytes) until a kernel writes it. */
  poisoned(shape: readonly number[], label: string, dtype?: DType): Tensor;
  /** Read a tensor back, widened to f32. Waits for submitted work. */
  read(t: Tensor): Promise<Float32Array>;
}

export interface SelfTestCase {
  name: string;
  run(ctx: GpuContext, tools: SelfTestTools): Promise<SelfTestCheck>;
  /**
   * The kernel path this case proves on the device (./proven.ts), or null where it proves none
   * there (a CPU adapter, which never takes the path by default). A pass marks it proven.
   */
  proves?: (ctx: GpuContext) => string | null;
  /**
   * Why the case cannot run on this device (e.g. "not available: adapter lacks shader-f16"), or
   * null to run it. A skipped case proves nothing and counts as neither pass nor failure.
   */
  skip?: (ctx: GpuContext) => string | null;
}

export interface SelfTestResult {
  name: string;
  relError: number;
  bound: number;
  pass: boolean;
  /** Wall time of the case in milliseconds, including pipeline compilation on first use. */
  ms: number;
  /** Seed of the run: `runSelfTest(ctx, undefined, { seed })` draws the same inputs again. */
  seed: number;
  /** Set when the case threw (argument check, WGSL compile or validation error, device loss). */
  error?: string;
  /** The kernel path this run proved on the device (the case passed). */
  proved?: string;
  /** Set when the case did not run on this device (SelfTestCase.skip): why. `pass` is then true, relError NaN. */
  skipped?: string;
}

export interface SelfTestProgress {
  done: number;
  total: number;
  /** Name of the case now running, or null when all are done. */
  running: string | null;
  results: readonly SelfTestResult[];
}

export interface SelfTestOptions {
  /** Seed of the whole run (each case derives its own); random when omitted. */
  seed?: number;
  /** The cases to run; SELF_TEST_CASES when omitted. */
  cases?: readonly SelfTestCase[];
}

/** Every kernel family, forward and backward, grouped by family. */
export const SELF_TEST_CASES: readonly SelfTestCase[] = [
  ...RESIDUAL_CASES,
  ...BIAS_CASES,
  ...MATMUL_CASES,
  ...RMSNORM_CASES,
  ...ROPE_CASES,
  ...ATTENTION_CASES,
  ...SWIGLU_CASES,
  ...SAMPLING_CASES,
  ...EMBEDDING_CASES,
  ...CROSS_ENTROPY_CASES,
  ...ADAMW_CASES,
];

/** Runs each case in turn; a case that throws is reported as failed and the run goes on. */
export async function runSelfTest(
  ctx: GpuContext,
  onProgress?: (progress: SelfTestProgress) => void,
  options: SelfTestOptions = {},
): Promise<SelfTestResult[]> {
  const cases = options.cases ?? SELF_TEST_CASES;
  const runSeed = (options.seed ?? Math.floor(Math.random() * 2 ** 31)) >>> 0;
  const results: SelfTestResult[] = [];
  for (const [i, c] of cases.entries()) {
    onProgress?.({ done: i, total: cases.length, running: c.name, results: [...results] });
    results.push(await runCase(ctx, c, runSeed));
  }
  onProgress?.({ done: cases.length, total: cases.length, running: null, results: [...results] });
  return results;
}

/**
 * Runs the cases that prove a kernel path (`proves`) and are not yet proven on this context, so
 * that the path is taken by default from then on. Model loading calls it; on CPU adapters the
 * cases prove nothing (those paths are not their defaults) and none runs.
 */
export async function proveKernelPaths(ctx: GpuContext, options: SelfTestOptions = {}): Promise<SelfTestResult[]> {
  const cases = (options.cases ?? SELF_TEST_CASES).filter((c) => {
    if (c.skip?.(ctx)) return false;
    const path = c.proves?.(ctx);
    return path && !isProven(ctx, path);
  });
  return cases.length ? runSelfTest(ctx, undefined, { ...options, cases }) : [];
}

/** Each case draws from its own stream, derived from the run seed and its name (FNV-1a). */
function caseSeed(runSeed: number, name: string): number {
  let h = 0x811c9dc5 ^ runSeed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

async function runCase(ctx: GpuContext, c: SelfTestCase, seed: number): Promise<SelfTestResult> {
  const skipped = c.skip?.(ctx);
  if (skipped) return { name: c.name, relError: NaN, bound: NaN, pass: true, ms: 0, seed, skipped };
  const next = rng(caseSeed(seed, c.name));
  const owned: Tensor[] = [];
  const own = (t: Tensor): Tensor => (owned.push(t), t);
  const tools: SelfTestTools = {
    next,
    randn: (n, scale = 1) => randn(n, next, scale),
    upload: (values, shape, label, dtype = 'f32') => own(ctx.upload(values, shape, dtype, label)),
    poisoned: (shape, label, dtype = 'f32') => {
      const t = own(ctx.tensor(shape, dtype, label));
      ctx.writeBytes(t, new Uint8Array(t.buffer.size).fill(0xff));
      return t;
    },
    read: (t) => ctx.readF32(t),
  };
  const start = performance.now();
  let result: SelfTestResult;
  try {
    const { relError, bound } = await c.run(ctx, tools);
    await ctx.flush(); // surfaces validation errors raised by the case's dispatches
    result = { name: c.name, relError, bound, pass: Number.isFinite(relError) && relError <= bound, ms: 0, seed };
    const path = result.pass ? (c.proves?.(ctx) ?? null) : null;
    if (path) {
      markProven(ctx, path);
      result.proved = path;
    }
  } catch (e) {
    await ctx.flush().catch(() => undefined); // drop errors that belong to this failed case
    result = { name: c.name, relError: NaN, bound: NaN, pass: false, ms: 0, seed, error: errorMessage(e) };
  } finally {
    for (const t of owned) if (!t.isReleased) t.release();
  }
  result.ms = performance.now() - start;
  return result;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
