// The subgroup-matrix matmul path (src/engine/matmul-sgmat.ts) on the Llama-3.2-1B projections,
// x[M,K]·W[N,K]ᵀ (layout nt), M = 2048 tokens (the target: ≥ 70% of the adapter's
// measured f32 FMA peak), beside the path this adapter takes without it and TF.js.
//
// On an adapter with chromium-experimental-subgroup-matrix (Apple M1+ in Chrome) the hardware
// variant, once its self-test case has passed on the device (the bench runs it first):
//   matmul-sgmat.{f32,bf16}.KxN          GFLOP/s; peer: TF.js f32 (f32 row), the default path (bf16)
//   matmul-sgmat.{f32,bf16}.KxN.default  GFLOP/s; peer: the path taken without sgmat (regtile/tiled)
//   matmul-sgmat.{f32,bf16}.KxN.peak     fraction of the measured peak (bench/peak.ts); peer: the default path's
// Elsewhere (SwiftShader: no such feature) only the emulated variant runs, at one small shape, to
// show the row works; its speed says nothing about subgroup matrices:
//   matmul-sgmat.emulated.f32.KxN        GFLOP/s; peer: the adapter's default path
// Each sgmat output is checked against the default path's before it is reported.
import { defaultMatmulPath, MATMUL_PATHS, type MatmulArgs } from '../src/engine/matmul';
import { prepareSubgroupMatrix, sgmatUnavailable } from '../src/engine/matmul-sgmat';
import { isProven } from '../src/engine/proven';
import { relError } from '../src/engine/testing/compare';
import { rng } from '../src/engine/testing/random';
import type { DType } from '../src/gpu/dtype';
import { gflops, result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';
import { matmulSpec, peerMatmul, proveMatmulPath, uniform } from './matmul';
import { measurePeak } from './peak';

const SEED = 20251207;
const MAX_REL_ERROR = 1e-4;
/** Tokens of the hardware rows (the target is stated at M = 2048). */
const HARDWARE_M = 2048;
/** The emulated row: big enough for several 64 × 64 tiles and 32-deep slices, small enough for SwiftShader. */
const EMULATED = { M: 96, K: 160, N: 128 };

export const matmulSgmatBench: Benchmark = {
  name: 'matmul-sgmat',
  description: 'subgroup-matrix matmul (chromium-experimental-subgroup-matrix) on the 1B projections vs the default path and TF.js; emulated at a small size elsewhere',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const unavailable = sgmatUnavailable(gpu);
    const hardware = unavailable === null && !gpu.adapter.isFallback;
    if (hardware) {
      await prepareSubgroupMatrix(gpu);
      await proveMatmulPath(gpu, 'matmul-sgmat', MATMUL_PATHS.sgmat);
    } else {
      ctx.log(`matmul-sgmat: hardware variant ${unavailable ?? 'not used on a CPU adapter'}; timing the emulated variant at a small size only`);
    }
    const next = rng(SEED);
    const peak = hardware ? await measurePeak(ctx) : null;
    const peer = hardware ? await ctx.peer() : null;
    const M = hardware ? HARDWARE_M : EMULATED.M;
    const shapes: [number, number][] = hardware ? options.shapes : [[EMULATED.K, EMULATED.N]];
    const dtypes: DType[] = hardware ? ['f32', 'bf16'] : ['f32'];
    const results: Result[] = [];

    for (const [K, N] of shapes) {
      const flops = 2 * M * N * K;
      const x = uniform(M * K, next, 1);
      const w = uniform(N * K, next, 1 / Math.sqrt(K));
      const tx = gpu.upload(x, [M, K], 'f32', 'bench x');
      for (const dtype of dtypes) {
        const tw = gpu.upload(w, [N, K], dtype, `bench W ${dtype}`);
        const outs = { sgmat: gpu.tensor([M, N], 'f32', 'bench out sgmat'), base: gpu.tensor([M, N], 'f32', 'bench out default') };
        const args = (out: typeof outs.sgmat): MatmulArgs => ({ a: tx, b: tw, out, layout: 'nt' });
        const dims = { m: M, n: N, k: K };
        const basePath = defaultMatmulPath(gpu.adapter.isFallback, 'nt', dims, 0, dtype, (n) => n !== MATMUL_PATHS.sgmat && isProven(gpu, n));
        const specs: Record<string, TimingSpec> = {
          sgmat: matmulSpec(gpu, 'bench matmul-sgmat', args(outs.sgmat), { path: 'sgmat', subgroupMatrix: hardware ? 'hardware' : 'emulated' }),
          base: matmulSpec(gpu, 'bench matmul-sgmat', args(outs.base), { path: basePath }),
        };
        const tfjs = peerMatmul(dtype === 'f32' ? peer : null, x, w, M, K, N);
        if (tfjs.spec) specs.peer = tfjs.spec;
        const shape = `${M}x${K}x${N} on ${gpu.adapter.description || 'unnamed adapter'}${hardware ? '' : ' (emulated sgmat)'}`;
        try {
          const t = await timeInterleaved(specs, options);
          const err = relError(await gpu.read(outs.sgmat), await gpu.read(outs.base));
          if (!(err < MAX_REL_ERROR)) throw new Error(`matmul-sgmat ${dtype} ${shape}: output differs from the ${basePath} path's (rel err ${err.toExponential(2)})`);
          const ours = gflops(flops, t.sgmat!.ms);
          const base = gflops(flops, t.base!.ms);
          const theirs = t.peer ? gflops(flops, t.peer.ms) : null;
          ctx.log(
            `matmul-sgmat ${dtype} ${shape}: sgmat ${t.sgmat!.ms.toFixed(3)} ms (${ours.toFixed(1)} GFLOP/s), ${basePath} ${t.base!.ms.toFixed(3)} ms` +
              (t.peer ? `, ${peer!.name} ${t.peer.ms.toFixed(3)} ms` : ''),
          );
          if (!hardware) {
            results.push(result({ name: `matmul-sgmat.emulated.${dtype}.${K}x${N}`, unit: 'GFLOP/s', ours, peer: base, peerName: `matmul ${basePath}`, shape }));
            continue;
          }
          const peerName = theirs !== null ? `${peer!.name} f32` : `matmul ${basePath}`;
          results.push(result({ name: `matmul-sgmat.${dtype}.${K}x${N}`, unit: 'GFLOP/s', ours, peer: theirs ?? base, peerName, shape }));
          results.push(result({ name: `matmul-sgmat.${dtype}.${K}x${N}.default`, unit: 'GFLOP/s', ours, peer: base, peerName: `matmul ${basePath}`, shape }));
          results.push(
            result({ name: `matmul-sgmat.${dtype}.${K}x${N}.peak`, unit: 'fraction of peak', ours: ours / peak!.gflops, peer: base / peak!.gflops, peerName: `matmul ${basePath}`, shape }),
          );
        } finally {
          for (const t of [tw, outs.sgmat, outs.base]) t.release();
          tfjs.dispose();
        }
      }
      tx.release();
    }
    return results;
  },
};
