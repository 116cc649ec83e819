// Decode's matrix-vector products: out[1,N] = x[1,K] · W[N,K]ᵀ with a bf16 weight, on the
// Llama-3.2-1B projection shapes (`--shapes`, K×N = in×out), M = 1 (one decoded token).
//   ours:  path 'gemv-sg' (src/engine/matmul-gemv-sg.ts; subgroup reductions, 16-byte loads),
//          forced; only where the adapter has `subgroups`
//   peers: path 'gemv' (the workgroup-tree GEMV a GPU takes without gemv-sg), forced, and TF.js
//          WebGPU tf.matMul(x, w, false, true) with the weight in f32 (TF.js has no bf16)
// Rows per shape:
//   matmul-gemv.bf16.KxN.weight-gbps  GB/s of weight bytes read (N·K·2 bytes a token / time):
//                                     gemv-sg vs gemv. A GEMV is bound by these bytes.
//   matmul-gemv.bf16.KxN.tfjs         GFLOP/s (2·N·K / time): gemv-sg vs TF.js f32
// On CPU adapters (SwiftShader: barriers cost ~1 ms, subgroups are 4 wide) the figures only show
// that the kernels run; they say nothing of a GPU. Every output is checked against float64.
import { decode, encode } from '../src/gpu/dtype';
import type { MatmulPath } from '../src/engine/matmul';
import { relError } from '../src/engine/testing/compare';
import { rng } from '../src/engine/testing/random';
import { gflops, result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';
import { matmulSpec, peerMatmul, referenceRows, uniform } from './matmul';

const SEED = 20251206;
const MAX_REL_ERROR = 1e-4;

export const matmulGemvBench: Benchmark = {
  name: 'matmul-gemv',
  description: 'decode GEMV (M = 1, bf16 weights) on the Llama-3.2-1B shapes: subgroup GEMV vs the workgroup-tree GEMV and TF.js f32',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    if (!gpu.features.has('subgroups')) {
      ctx.log('matmul-gemv: skipped, the adapter lacks subgroups (gemv-sg needs them)');
      return [];
    }
    const peer = await ctx.peer();
    const next = rng(SEED);
    const adapter = gpu.adapter.isFallback ? `${gpu.adapter.description || 'CPU adapter'} (SwiftShader/CPU)` : gpu.adapter.description;
    const results: Result[] = [];
    for (const [K, N] of options.shapes) {
      const shape = `1x${K}x${N} bf16 on ${adapter}`;
      const x = uniform(K, next, 1);
      const w = uniform(N * K, next, 1 / Math.sqrt(K));
      const tx = gpu.upload(x, [1, K], 'f32', 'bench x');
      const tw = gpu.upload(w, [N, K], 'bf16', 'bench W bf16');
      const paths: MatmulPath[] = ['gemv-sg', 'gemv'];
      const outs = new Map(paths.map((p) => [p, gpu.tensor([1, N], 'f32', `bench out ${p}`)]));
      const specs: Record<string, TimingSpec> = {};
      for (const path of paths) specs[path] = matmulSpec(gpu, 'bench matmul-gemv', { a: tx, b: tw, out: outs.get(path)!, layout: 'nt' }, { path });
      const tfjs = peerMatmul(peer, x, w, 1, K, N);
      if (tfjs.spec) specs.peer = tfjs.spec;
      try {
        const t = await timeInterleaved(specs, options);
        const wBf16 = decode(encode(w, 'bf16').buffer, w.length, 'bf16') as Float32Array;
        const want = referenceRows(x, wBf16, [0], K, N);
        for (const path of paths) {
          const err = relError(await gpu.read(outs.get(path)!), want);
          if (!(err < MAX_REL_ERROR)) throw new Error(`matmul-gemv ${path} ${shape}: output differs from float64 (rel err ${err.toExponential(2)})`);
        }
        const y = tfjs.output();
        if (y) {
          const err = relError(await y.data(), referenceRows(x, w, [0], K, N));
          if (!(err < MAX_REL_ERROR)) throw new Error(`matmul-gemv ${peer!.name} ${shape}: output differs from float64 (rel err ${err.toExponential(2)})`);
        }
        const bytes = N * K * 2;
        const gbps = (ms: number) => bytes / (ms * 1e6);
        for (const [k, v] of Object.entries(t)) ctx.log(`matmul-gemv ${k} ${shape}: ${v.ms.toFixed(3)} ms (${v.samples.length}x${v.repsPerSample})`);
        results.push(
          result({ name: `matmul-gemv.bf16.${K}x${N}.weight-gbps`, unit: 'GB/s', ours: gbps(t['gemv-sg']!.ms), peer: gbps(t.gemv!.ms), peerName: 'matmul gemv', shape }),
          result({
            name: `matmul-gemv.bf16.${K}x${N}.tfjs`,
            unit: 'GFLOP/s',
            ours: gflops(2 * N * K, t['gemv-sg']!.ms),
            peer: t.peer ? gflops(2 * N * K, t.peer.ms) : null,
            peerName: peer ? `${peer.name} f32` : null,
            shape,
          }),
        );
      } finally {
        for (const tt of [tx, tw, ...outs.values()]) tt.release();
        tfjs.dispose();
      }
    }
    return results;
  },
};
