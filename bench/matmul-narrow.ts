// LoRA rank-16 products on the Llama-3.2-1B hidden size (in = out = 2048), M = `--tokens`: the
// narrow and split-K paths (src/engine/matmul.ts) forced, against the path this adapter takes
// without them (the peer: tiled on GPUs; vec4/direct on CPU adapters such as SwiftShader, which
// keep that path by default). Rows (GFLOP/s, 2·P·Q·D / time; the shape names the adapter):
//   matmul-narrow.r16.x-At.narrow    nt  x[M,2048]·A[16,2048]ᵀ → [M,16]     LoRA forward
//   matmul-narrow.r16.dout-B.narrow  nn  dOut[M,2048]·B[2048,16] → [M,16]  dTmp
//   matmul-narrow.r16.dA.splitk      tn  dTmp[M,16]ᵀ·x[M,2048] → [16,2048]  A gradient, over tokens
//   matmul-narrow.r16.dB.splitk      tn  dOut[M,2048]ᵀ·tmp[M,16] → [2048,16] B gradient, over tokens
//   matmul-narrow.r16.dB.narrow      the same with the narrow path
// Each new path's output is checked against the old path's before it is reported.
import { defaultMatmulPath, matmul, matmulDims, type MatmulArgs, type MatmulLayout, type MatmulPath } from '../src/engine/matmul';
import { relError } from '../src/engine/testing/compare';
import { randn, rng } from '../src/engine/testing/random';
import { gflops, result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';

const SEED = 20251206;
const HIDDEN = 2048;
const RANK = 16;
const MAX_REL_ERROR = 1e-4;

interface Row {
  name: string;
  layout: MatmulLayout;
  path: MatmulPath;
  /** [rows, cols] of a, b and out for M tokens. */
  shapes: (M: number) => { a: [number, number]; b: [number, number]; out: [number, number] };
}

const ROWS: readonly Row[] = [
  { name: 'x-At.narrow', layout: 'nt', path: 'narrow', shapes: (M) => ({ a: [M, HIDDEN], b: [RANK, HIDDEN], out: [M, RANK] }) },
  { name: 'dout-B.narrow', layout: 'nn', path: 'narrow', shapes: (M) => ({ a: [M, HIDDEN], b: [HIDDEN, RANK], out: [M, RANK] }) },
  { name: 'dA.splitk', layout: 'tn', path: 'splitk', shapes: (M) => ({ a: [M, RANK], b: [M, HIDDEN], out: [RANK, HIDDEN] }) },
  { name: 'dB.splitk', layout: 'tn', path: 'splitk', shapes: (M) => ({ a: [M, HIDDEN], b: [M, RANK], out: [HIDDEN, RANK] }) },
  { name: 'dB.narrow', layout: 'tn', path: 'narrow', shapes: (M) => ({ a: [M, HIDDEN], b: [M, RANK], out: [HIDDEN, RANK] }) },
];

export const matmulNarrowBench: Benchmark = {
  name: 'matmul-narrow',
  description: 'LoRA r16 products: narrow and split-K paths vs the path the adapter takes without them',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const M = options.tokens;
    const next = rng(SEED);
    const adapter = gpu.adapter.isFallback ? `${gpu.adapter.description || 'CPU adapter'} (SwiftShader/CPU)` : gpu.adapter.description;
    const results: Result[] = [];
    for (const row of ROWS) {
      const s = row.shapes(M);
      const ta = gpu.upload(randn(s.a[0] * s.a[1], next), s.a, 'f32', 'bench a');
      const tb = gpu.upload(randn(s.b[0] * s.b[1], next), s.b, 'f32', 'bench b');
      const outs = { ours: gpu.tensor(s.out, 'f32', 'bench out new'), old: gpu.tensor(s.out, 'f32', 'bench out old') };
      const args = (out: typeof outs.ours): MatmulArgs => ({ a: ta, b: tb, out, layout: row.layout });
      const dims = matmulDims(args(outs.ours));
      const oldPath = defaultMatmulPath(gpu.adapter.isFallback, row.layout, dims); // nothing proven: today's default
      const spec = (out: typeof outs.ours, path: MatmulPath): TimingSpec => ({
        step: () => {
          const b = gpu.batch('bench matmul-narrow');
          matmul(b, args(out), { path });
          b.submit();
        },
        sync: () => gpu.flush(),
      });
      const flops = 2 * dims.m * dims.n * dims.k;
      const shape = `${dims.m}x${dims.n}x${dims.k} ${row.layout} on ${adapter}`;
      try {
        const t = await timeInterleaved({ ours: spec(outs.ours, row.path), old: spec(outs.old, oldPath) }, options);
        const err = relError(await gpu.read(outs.ours), await gpu.read(outs.old));
        if (!(err < MAX_REL_ERROR))
          throw new Error(`matmul-narrow ${row.name}: the ${row.path} output differs from the ${oldPath} path's (rel err ${err.toExponential(2)})`);
        const ours = gflops(flops, t.ours.ms);
        const old = gflops(flops, t.old.ms);
        ctx.log(`matmul-narrow ${row.name} ${shape}: ${row.path} ${t.ours.ms.toFixed(3)} ms, ${oldPath} ${t.old.ms.toFixed(3)} ms`);
        results.push(result({ name: `matmul-narrow.r${RANK}.${row.name}`, unit: 'GFLOP/s', ours, peer: old, peerName: `matmul ${oldPath}`, shape }));
      } finally {
        for (const x of [ta, tb, outs.ours, outs.old]) x.release();
      }
    }
    return results;
  },
};
