// Linear-layer forward throughput: out[M,N] = x[M,K] · W[N,K]ᵀ (layout 'nt', W in HF [out, in]
// layout) on the Llama-3.2-1B projection shapes, M = tokens.
//   ours: src/engine/matmul.ts with f32 weights and with bf16 weights (packed two per u32)
//   peer: TF.js WebGPU tf.matMul(x, w, false, true), f32 (TF.js has no bf16), same device
// Rows per shape (K×N = in×out; shape = M×K×N):
//   matmul.{f32,bf16}.KxN        GFLOP/s = 2·M·N·K / time
//   matmul.{f32,bf16}.KxN.peak   the same as a fraction of the adapter's FMA peak (bench/peak.ts)
//   matmul.{tiled,regtile}.{f32,bf16}.KxN[.peak]  the same with the GPU paths forced: the older
//                                tiled kernel (4×4 per thread) and regtile (8×8 per thread, 16-byte
//                                loads, register prefetch), beside each other and TF.js. On CPU
//                                adapters (barriers ~1 ms there) only for tiny products (≤ 2^24 MACs),
//                                to check they run.
// Every output is checked against a float64 reference on a few rows before it is reported.
import { decode, encode } from '../src/gpu/dtype';
import type { GpuContext } from '../src/gpu/context';
import { matmul, MATMUL_PATHS, type MatmulArgs, type MatmulOptions, type MatmulPath } from '../src/engine/matmul';
import { isProven } from '../src/engine/proven';
import { runSelfTest } from '../src/engine/selftest';
import { MATMUL_CASES } from '../src/engine/selftest-cases/matmul';
import { relError } from '../src/engine/testing/compare';
import { rng } from '../src/engine/testing/random';
import { gflops, result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';
import { measurePeak } from './peak';
import type { TfjsPeer } from './peer-tfjs';

const SEED = 20250101;
const MAX_REL_ERROR = 1e-4;
/** The GPU paths timed forced, beside the adapter's default. */
const FORCED: readonly MatmulPath[] = ['tiled', 'regtile'];
/** Largest M·N·K the forced GPU paths run at on CPU adapters. */
const CPU_FORCED_MAX_MACS = 2 ** 24;
type Variant = 'f32' | 'bf16' | `${'tiled' | 'regtile'}.${'f32' | 'bf16'}`;

/** Uniform values in [-scale, scale): cheap to draw for 16M-element weights. */
export function uniform(n: number, next: () => number, scale: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * next() - 1) * scale;
  return out;
}

/** Rows of x·Wᵀ in float64, for a spot check of the GPU output. */
export function referenceRows(x: Float32Array, w: Float32Array, rows: readonly number[], K: number, N: number): Float64Array {
  const out = new Float64Array(rows.length * N);
  rows.forEach((r, i) => {
    const xr = x.subarray(r * K, (r + 1) * K);
    for (let n = 0; n < N; n++) {
      const wn = w.subarray(n * K, (n + 1) * K);
      let s = 0;
      for (let k = 0; k < K; k++) s += xr[k]! * wn[k]!;
      out[i * N + n] = s;
    }
  });
  return out;
}

/** A timing spec that encodes one matmul a step, in a batch named `label`. */
export function matmulSpec(gpu: GpuContext, label: string, args: MatmulArgs, options: MatmulOptions = {}): TimingSpec {
  return {
    step: () => {
      const b = gpu.batch(label);
      matmul(b, args, options);
      b.submit();
    },
    sync: () => gpu.flush(),
  };
}

/**
 * TF.js's f32 x[M,K]·W[N,K]ᵀ on the same device: its timing spec (undefined where no peer runs),
 * its last output, and `dispose` for everything it holds.
 */
export function peerMatmul(peer: TfjsPeer | null | undefined, x: Float32Array, w: Float32Array, M: number, K: number, N: number) {
  const tf = peer?.tf;
  const px = tf?.tensor2d(x, [M, K]);
  const pw = tf?.tensor2d(w, [N, K]);
  const held: { y: ReturnType<NonNullable<typeof tf>['matMul']> | null } = { y: null };
  const spec: TimingSpec | undefined =
    peer && tf && px && pw
      ? {
          step: () => {
            held.y?.dispose();
            held.y = tf.matMul(px, pw, false, true);
            peer.submit();
          },
          sync: () => peer.sync(),
        }
      : undefined;
  return {
    spec,
    output: () => held.y,
    dispose: () => {
      held.y?.dispose();
      px?.dispose();
      pw?.dispose();
    },
  };
}

/**
 * Runs the self-test case that proves a matmul path on this device and throws unless it passed:
 * the path is taken by default only once proven, and a bench measures what users get.
 */
export async function proveMatmulPath(gpu: GpuContext, bench: string, name: (typeof MATMUL_PATHS)[keyof typeof MATMUL_PATHS]): Promise<void> {
  const proving = MATMUL_CASES.filter((c) => c.proves?.(gpu) === name);
  const [r] = await runSelfTest(gpu, undefined, { cases: proving });
  if (!r?.pass || !isProven(gpu, name))
    throw new Error(`${bench}: the self-test case failed on this device (${r?.error ?? `rel err ${r?.relError}`}); not timing an unproven path`);
}

function pickRows(all: ArrayLike<number>, rows: readonly number[], N: number): Float64Array {
  const out = new Float64Array(rows.length * N);
  rows.forEach((r, i) => {
    for (let n = 0; n < N; n++) out[i * N + n] = all[r * N + n]!;
  });
  return out;
}

function expectClose(what: string, got: ArrayLike<number>, rows: readonly number[], want: Float64Array, N: number): void {
  const err = relError(pickRows(got, rows, N), want);
  if (!(err < MAX_REL_ERROR)) throw new Error(`${what}: output differs from the float64 reference (rel err ${err.toExponential(2)} ≥ ${MAX_REL_ERROR})`);
}

export const matmulBench: Benchmark = {
  name: 'matmul',
  description: 'x·Wᵀ projections of Llama-3.2-1B (f32 and bf16 weights) vs TF.js WebGPU f32',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const peer = await ctx.peer();
    const peak = await measurePeak(ctx);
    const M = options.tokens;
    const next = rng(SEED);
    const results: Result[] = [];
    const checkRows = [...new Set([0, M >> 1, M - 1])];

    for (const [K, N] of options.shapes) {
      const flops = 2 * M * N * K;
      const shape = `${M}x${K}x${N}`;
      const x = uniform(M * K, next, 1);
      const w = uniform(N * K, next, 1 / Math.sqrt(K));
      const tx = gpu.upload(x, [M, K], 'f32', 'bench x');
      const weights = { f32: gpu.upload(w, [N, K], 'f32', 'bench W f32'), bf16: gpu.upload(w, [N, K], 'bf16', 'bench W bf16') };
      const forced = !gpu.adapter.isFallback || M * N * K <= CPU_FORCED_MAX_MACS ? FORCED : [];
      if (!forced.length) ctx.log(`matmul ${shape}: tiled/regtile rows skipped on this CPU adapter (over ${CPU_FORCED_MAX_MACS} MACs)`);
      const variants: { key: Variant; dtype: 'f32' | 'bf16'; path?: MatmulPath }[] = [
        { key: 'f32', dtype: 'f32' },
        { key: 'bf16', dtype: 'bf16' },
        ...forced.flatMap((path) => (['f32', 'bf16'] as const).map((dtype) => ({ key: `${path}.${dtype}` as Variant, dtype, path }))),
      ];
      const outs = new Map(variants.map((v) => [v.key, gpu.tensor([M, N], 'f32', `bench out ${v.key}`)]));
      const specs: Record<string, TimingSpec> = {};
      for (const v of variants) specs[v.key] = matmulSpec(gpu, 'bench matmul', { a: tx, b: weights[v.dtype], out: outs.get(v.key)!, layout: 'nt' }, { path: v.path });
      const tfjs = peerMatmul(peer, x, w, M, K, N);
      if (tfjs.spec) specs.peer = tfjs.spec;

      const ours = {} as Record<Variant, number>;
      let theirs: number | null = null;
      try {
        const timings = await timeInterleaved(specs, options);
        for (const [k, t] of Object.entries(timings)) {
          const rate = gflops(flops, t.ms);
          if (k === 'peer') theirs = rate;
          else ours[k as Variant] = rate;
          const who = k === 'peer' ? `${peer!.name} f32` : `matmul ${k}`;
          ctx.log(`${who} ${shape}: ${t.ms.toFixed(2)} ms (${t.samples.length}x${t.repsPerSample}), ${rate.toFixed(3)} GFLOP/s`);
        }
        // Check each output against float64; the reference sees exactly the weights the GPU saw.
        const wBf16 = decode(encode(w, 'bf16').buffer, w.length, 'bf16') as Float32Array;
        const want = { f32: referenceRows(x, w, checkRows, K, N), bf16: referenceRows(x, wBf16, checkRows, K, N) };
        for (const v of variants) expectClose(`matmul ${v.key} ${shape}`, await gpu.read(outs.get(v.key)!), checkRows, want[v.dtype], N);
        const y = tfjs.output();
        if (y) expectClose(`${peer!.name} matMul ${shape}`, await y.data(), checkRows, referenceRows(x, w, checkRows, K, N), N);
      } finally {
        for (const t of [tx, weights.f32, weights.bf16, ...outs.values()]) t.release();
        tfjs.dispose();
      }

      const peerName = peer ? `${peer.name} f32` : null;
      for (const v of variants) {
        results.push(result({ name: `matmul.${v.key}.${K}x${N}`, unit: 'GFLOP/s', ours: ours[v.key], peer: theirs, peerName, shape }));
      }
      for (const v of variants) {
        results.push(
          result({
            name: `matmul.${v.key}.${K}x${N}.peak`,
            unit: 'fraction of peak',
            ours: ours[v.key] / peak.gflops,
            peer: theirs === null ? null : theirs / peak.gflops,
            peerName,
            shape,
          }),
        );
      }
    }
    return results;
  },
};
