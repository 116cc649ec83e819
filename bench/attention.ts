// Causal grouped-query attention, forward + backward, with Llama-3.2-1B head shapes: 32 query
// heads, 8 key/value heads, head dim 64, batch 1, `--attn-seq` tokens (32 on CPU fallbacks, 512
// on GPUs).
//   ours: src/engine/attention.ts (flash-attention style: attention_forward, then the backward's
//         delta, dk/dv and dq kernels), f32
//   peer: the same attention written with TF.js ops on the same device: scores = q·kᵀ/√d with
//         k, v repeated over each group of 4 query heads, an additive causal mask, softmax, ·v;
//         the backward is tf.grads of Σ(out · dOut) with respect to q, k and v
// Rows (tokens/s = T / time of one forward + backward):
//   attention.fwd+bwd.h32kv8d64   forward + backward
//   attention.fwd.h32kv8d64       forward only
// Before reporting, both outputs and both dq are checked against each other (rel err < 1e-4).
import { attentionBackward, attentionForward } from '../src/engine/attention';
import { relError } from '../src/engine/testing/compare';
import { randn, rng } from '../src/engine/testing/random';
import type { Tensor } from '../src/gpu/tensor';
import { result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';

const SEED = 20250102;
const H = 32;
const KV = 8;
const D = 64;
const MAX_REL_ERROR = 1e-4;

export const attentionBench: Benchmark = {
  name: 'attention',
  description: 'causal GQA attention forward + backward (32 q / 8 kv heads of 64, Llama-3.2-1B) vs TF.js ops + tf.grads',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const peer = await ctx.peer();
    const B = 1;
    const T = options.attnSeq;
    const next = rng(SEED);
    const q = Float32Array.from(randn(B * T * H * D, next));
    const k = Float32Array.from(randn(B * T * KV * D, next));
    const v = Float32Array.from(randn(B * T * KV * D, next));
    const dOut = Float32Array.from(randn(B * T * H * D, next));
    const dims = { batchSize: B, nHeads: H, nKvHeads: KV, headDim: D };
    const tq = gpu.upload(q, [B, T, H, D], 'f32', 'attn q');
    const tk = gpu.upload(k, [B, T, KV, D], 'f32', 'attn k');
    const tv = gpu.upload(v, [B, T, KV, D], 'f32', 'attn v');
    const tdo = gpu.upload(dOut, [B, T, H, D], 'f32', 'attn dOut');
    const out = gpu.tensor([B, T, H, D], 'f32', 'attn out');
    const lse = gpu.tensor([B, H, T], 'f32', 'attn lse');
    const dq = gpu.tensor([B, T, H, D], 'f32', 'attn dq');
    const dk = gpu.tensor([B, T, KV, D], 'f32', 'attn dk');
    const dv = gpu.tensor([B, T, KV, D], 'f32', 'attn dv');
    const owned: Tensor[] = [tq, tk, tv, tdo, out, lse, dq, dk, dv];

    const ours = (withBackward: boolean): TimingSpec => ({
      step: () => {
        const b = gpu.batch('bench attention');
        attentionForward(b, { ...dims, q: tq, k: tk, v: tv, out, lse });
        if (withBackward) attentionBackward(b, { ...dims, q: tq, k: tk, v: tv, out, lse, dOut: tdo, dq, dk, dv });
        b.submit();
      },
      sync: () => gpu.flush(),
    });
    const specs: Record<string, TimingSpec> = { fwdbwd: ours(true), fwd: ours(false) };

    const tf = peer?.tf;
    type T4 = import('@tensorflow/tfjs-core').Tensor;
    const held: { fwd: T4 | null; grads: T4[] } = { fwd: null, grads: [] };
    const peerTensors: T4[] = [];
    if (peer && tf) {
      const pq = tf.tensor4d(q, [B, T, H, D]);
      const pk = tf.tensor4d(k, [B, T, KV, D]);
      const pv = tf.tensor4d(v, [B, T, KV, D]);
      const pdo = tf.tensor4d(dOut, [B, T, H, D]);
      // Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above.
      const maskValues = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskValues[i * T + j] = -1e9;
      const mask = tf.tensor2d(maskValues, [T, T]);
      peerTensors.push(pq, pk, pv, pdo, mask);
      const G = H / KV;
      // [B, T, KV, D] -> [B, H, T, D], kv head j serving query heads j·G .. j·G + G - 1.
      // (3-D tile: TF.js WebGPU's tile of rank 5 falls back to a CPU path that needs OffscreenCanvas.)
      const repeatKv = (x: T4) => tf.reshape(tf.tile(tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * KV, 1, T * D]), [1, G, 1]), [B, H, T, D]);
      const f = (a: T4, b: T4, c: T4): T4 => {
        const qh = tf.transpose(a, [0, 2, 1, 3]); // [B, H, T, D]
        const scores = tf.add(tf.mul(tf.matMul(qh, repeatKv(b), false, true), 1 / Math.sqrt(D)), mask);
        return tf.transpose(tf.matMul(tf.softmax(scores), repeatKv(c)), [0, 2, 1, 3]); // [B, T, H, D]
      };
      const gradsOf = tf.grads((a: T4, b: T4, c: T4) => tf.sum(tf.mul(f(a, b, c), pdo)));
      const release = () => {
        held.fwd?.dispose();
        for (const g of held.grads) g.dispose();
        held.fwd = null;
        held.grads = [];
      };
      specs.peerFwdbwd = {
        step: () => {
          release();
          held.grads = gradsOf([pq, pk, pv]);
          peer.submit();
        },
        sync: () => peer.sync(),
      };
      specs.peerFwd = {
        step: () => {
          release();
          held.fwd = tf.tidy(() => f(pq, pk, pv));
          peer.submit();
        },
        sync: () => peer.sync(),
      };
    }

    try {
      const timings = await timeInterleaved(specs, options);
      for (const [key, t] of Object.entries(timings)) ctx.log(`attention ${key} T${T}: ${t.ms.toFixed(2)} ms (${t.samples.length}x${t.repsPerSample})`);
      // Ours and the peer compute the same thing: compare the forward output and dq.
      const check = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
        const err = relError(Float64Array.from(a), Float64Array.from(b));
        if (!(err < MAX_REL_ERROR)) throw new Error(`attention: ${what} differs between ours and ${peer?.name} (rel err ${err.toExponential(2)})`);
      };
      const b = gpu.batch('bench attention check');
      attentionForward(b, { ...dims, q: tq, k: tk, v: tv, out, lse });
      attentionBackward(b, { ...dims, q: tq, k: tk, v: tv, out, lse, dOut: tdo, dq, dk, dv });
      b.submit();
      const ourOut = await gpu.readF32(out);
      const ourDq = await gpu.readF32(dq);
      if (!ourOut.every(Number.isFinite) || !ourDq.every(Number.isFinite)) throw new Error('attention: non-finite output');
      if (peer && held.grads.length === 0) specs.peerFwdbwd!.step();
      if (peer && !held.fwd) specs.peerFwd!.step();
      if (held.fwd) check('out', ourOut, await held.fwd.data());
      if (held.grads[0]) check('dq', ourDq, await held.grads[0].data());
      if (held.grads[1]) check('dk', await gpu.readF32(dk), await held.grads[1].data());

      const shape = `B${B}xT${T} h${H}/kv${KV} d${D} causal f32`;
      const peerName = peer ? `${peer.name} ops + tf.grads` : null;
      const tps = (ms: number) => (B * T * 1000) / ms;
      const row = (name: string, key: string, peerKey: string) =>
        result({
          name,
          unit: 'tokens/s',
          ours: tps(timings[key]!.ms),
          peer: timings[peerKey] ? tps(timings[peerKey].ms) : null,
          peerName,
          shape: `${shape}, ${timings[key]!.ms.toFixed(1)} ms`,
        });
      return [row(`attention.fwd+bwd.h${H}kv${KV}d${D}`, 'fwdbwd', 'peerFwdbwd'), row(`attention.fwd.h${H}kv${KV}d${D}`, 'fwd', 'peerFwd')];
    } finally {
      for (const t of owned) t.release();
      held.fwd?.dispose();
      for (const g of held.grads) g.dispose();
      for (const t of peerTensors) t.dispose();
    }
  },
};
