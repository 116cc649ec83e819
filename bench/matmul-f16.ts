// The f16-input, f32-sum path (src/engine/matmul-f16.ts), which generation's prefill takes on
// adapters with shader-f16, on the Llama-3.2-1B projections x[M,K]·W[N,K]ᵀ with bf16 weights,
// M = `--tokens`, beside the path the same product takes without it and TF.js.
//
// On an adapter with shader-f16 (not a CPU one) the real variant, once its self-test case has
// passed on the device (the bench runs it first):
//   matmul-f16.bf16.KxN          GFLOP/s; peer: the path taken without f16 (training's, scoring's)
//   matmul-f16.bf16.KxN.tfjs     GFLOP/s; peer: TF.js f32
//   matmul-f16.bf16.KxN.peak     fraction of the measured f32 FMA peak (bench/peak.ts)
// Elsewhere (SwiftShader: no shader-f16) only the emulated variant runs, at one small shape, to
// show the row works; its speed says nothing about f16:
//   matmul-f16.emulated.bf16.KxN GFLOP/s; peer: the adapter's default path
// Each f16 output is checked against the other path's within the f16 bound (F16_ERROR_BOUND).
import { defaultMatmulPath, MATMUL_PATHS } from '../src/engine/matmul';
import { F16_ERROR_BOUND } from '../src/engine/matmul-f16';
import { isProven } from '../src/engine/proven';
import { relError } from '../src/engine/testing/compare';
import { rng } from '../src/engine/testing/random';
import { gflops, result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';
import { matmulSpec, peerMatmul, proveMatmulPath, uniform } from './matmul';
import { measurePeak } from './peak';

const SEED = 20251208;
/** The emulated row: several 64×64 tiles and slices, small enough for SwiftShader. */
const EMULATED = { M: 96, K: 160, N: 128 };

export const matmulF16Bench: Benchmark = {
  name: 'matmul-f16',
  description: 'f16-input, f32-sum matmul (shader-f16; generation only) on the 1B projections vs the f32 path and TF.js; emulated at a small size elsewhere',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const hardware = gpu.features.has('shader-f16') && !gpu.adapter.isFallback;
    if (hardware) {
      await proveMatmulPath(gpu, 'matmul-f16', MATMUL_PATHS.f16);
    } else {
      ctx.log(`matmul-f16: ${gpu.features.has('shader-f16') ? 'a CPU adapter' : 'the adapter lacks shader-f16'}; timing the emulated variant at a small size only`);
    }
    const next = rng(SEED);
    const peak = hardware ? await measurePeak(ctx) : null;
    const peer = hardware ? await ctx.peer() : null;
    const M = hardware ? options.tokens : EMULATED.M;
    const shapes: [number, number][] = hardware ? options.shapes : [[EMULATED.K, EMULATED.N]];
    const results: Result[] = [];
    for (const [K, N] of shapes) {
      const flops = 2 * M * N * K;
      const x = uniform(M * K, next, 1);
      const w = uniform(N * K, next, 1 / Math.sqrt(K));
      const tx = gpu.upload(x, [M, K], 'f32', 'bench x');
      const tw = gpu.upload(w, [N, K], 'bf16', 'bench W bf16');
      const outs = { f16: gpu.tensor([M, N], 'f32', 'bench out f16'), base: gpu.tensor([M, N], 'f32', 'bench out base') };
      // What the same product takes where no f16 is allowed (training and scoring).
      const basePath = defaultMatmulPath(gpu.adapter.isFallback, 'nt', { m: M, n: N, k: K }, 0, 'bf16', (n) => isProven(gpu, n), false);
      const specs: Record<string, TimingSpec> = {
        f16: matmulSpec(gpu, 'bench matmul-f16', { a: tx, b: tw, out: outs.f16, layout: 'nt' }, { path: 'f16', f16Variant: hardware ? 'real' : 'emulated' }),
        base: matmulSpec(gpu, 'bench matmul-f16', { a: tx, b: tw, out: outs.base, layout: 'nt' }, { path: basePath }),
      };
      const tfjs = peerMatmul(peer, x, w, M, K, N);
      if (tfjs.spec) specs.peer = tfjs.spec;
      const shape = `${M}x${K}x${N} bf16 on ${gpu.adapter.description || 'unnamed adapter'}${hardware ? '' : ' (emulated f16)'}`;
      try {
        const t = await timeInterleaved(specs, options);
        const err = relError(await gpu.read(outs.f16), await gpu.read(outs.base));
        if (!(err < F16_ERROR_BOUND)) throw new Error(`matmul-f16 ${shape}: output differs from the ${basePath} path's by more than the f16 bound (rel err ${err.toExponential(2)})`);
        const ours = gflops(flops, t.f16!.ms);
        const base = gflops(flops, t.base!.ms);
        ctx.log(`matmul-f16 ${shape}: f16 ${t.f16!.ms.toFixed(3)} ms, ${basePath} ${t.base!.ms.toFixed(3)} ms${t.peer ? `, ${peer!.name} ${t.peer.ms.toFixed(3)} ms` : ''} (rel err ${err.toExponential(2)})`);
        if (!hardware) {
          results.push(result({ name: `matmul-f16.emulated.bf16.${K}x${N}`, unit: 'GFLOP/s', ours, peer: base, peerName: `matmul ${basePath}`, shape }));
          continue;
        }
        results.push(result({ name: `matmul-f16.bf16.${K}x${N}`, unit: 'GFLOP/s', ours, peer: base, peerName: `matmul ${basePath}`, shape }));
        if (t.peer) results.push(result({ name: `matmul-f16.bf16.${K}x${N}.tfjs`, unit: 'GFLOP/s', ours, peer: gflops(flops, t.peer.ms), peerName: `${peer!.name} f32`, shape }));
        results.push(result({ name: `matmul-f16.bf16.${K}x${N}.peak`, unit: 'fraction of peak', ours: ours / peak!.gflops, peer: base / peak!.gflops, peerName: `matmul ${basePath}`, shape }));
      } finally {
        for (const tt of [tx, tw, outs.f16, outs.base]) tt.release();
        tfjs.dispose();
      }
    }
    return results;
  },
};
