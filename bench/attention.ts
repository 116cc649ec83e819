// Causal grouped-query attention, forward + backward, with Llama-3.2-1B head shapes: 32 query
// heads, 8 key/value heads, head dim 64, batch 1, `--attn-seq` tokens (32 on CPU fallbacks, 512
// on GPUs).
//   ours: src/engine/attention.ts (flash-attention style: attention_forward, then the backward's
//         delta, dk/dv and dq kernels), f32
//   peer: the same attention written with TF.js ops on the same device: scores = q·kᵀ/√d with
//         k, v repeated over each group of 4 query heads, an additive causal mask, softmax, ·v;
//         the backward is tf.grads of Σ(out · dOut) with respect to q, k and v
// Rows (tokens/s = T / time of one forward + backward):
//   attention.fwd+bwd.h32kv8d64   forward + backward, the adapter's default paths (after the
//                                 self-test's proof, as model loading does)
//   attention.fwd.h32kv8d64       forward only, default path
//   attention.flash.fwd+bwd.h32kv8d64, attention.flash.fwd.h32kv8d64
//                                 the flash paths (issue 15's GPU kernels) forced, vs TF.js
//   attention.flash-vs-tiled.fwd+bwd.h32kv8d64
//                                 flash forward + backward vs the tiled ones (the GPU paths before)
//   attention.decode.split-vs-tiled.h32kv8d64
//                                 one decode step (B 1, one token over 4·T cached keys, steps/s):
//                                 split-KV decode vs the tiled forward
// Rows that do not depend on the adapter's speed (unit count, lower is better, peer = tiled):
//   attention.wgmem-loads-per-fma.d64   workgroup-memory load instructions per FMA, forward +
//                                       backward, per (row, key) pair (attentionTraffic formulas)
//   attention.wgmem-bytes-per-fma.d64   the same in bytes
//   attention.decode.dispatches-per-token.h32kv8d64x16
//                                       attention dispatches per decoded token of the 16-layer 1B
//                                       model, counted from the encoded batches
// Before reporting, both outputs and both dq are checked against each other (rel err < 1e-4),
// and the flash and split-KV outputs against the default path's.
import {
  attentionBackward,
  attentionForward,
  attentionForwardWorkgroups,
  attentionTiles,
  attentionTraffic,
  type AttentionDqPath,
  type AttentionForwardPath,
} from '../src/engine/attention';
import { proveKernelPaths } from '../src/engine/selftest';
import { relError } from '../src/engine/testing/compare';
import { randn, rng } from '../src/engine/testing/random';
import type { Tensor } from '../src/gpu/tensor';
import { result, timeInterleaved, type BenchContext, type Benchmark, type Result, type TimingSpec } from './harness';

const SEED = 20250102;
const H = 32;
const KV = 8;
const D = 64;
const MAX_REL_ERROR = 1e-4;
/** Layers of Llama-3.2-1B: a decoded token runs attention once per layer. */
const LAYERS_1B = 16;

/** Loads and bytes per FMA of forward + backward on a path (the three passes, per (row, key) pair). */
function trafficPerFma(path: 'tiled' | 'flash'): { loads: number; bytes: number } {
  const passes = (['forward', 'backwardKv', 'backwardQ'] as const).map((pass) => attentionTraffic(path, pass, D));
  const sum = (f: (t: (typeof passes)[number]) => number) => passes.reduce((a, t) => a + f(t), 0);
  return { loads: sum((t) => t.loads) / sum((t) => t.fmas), bytes: sum((t) => t.bytes) / sum((t) => t.fmas) };
}

export const attentionBench: Benchmark = {
  name: 'attention',
  description: 'causal GQA attention forward + backward (32 q / 8 kv heads of 64, Llama-3.2-1B) vs TF.js ops + tf.grads',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    // The default rows measure what a user's model gets: on a GPU the flash / split-KV paths once
    // the self-test proved them here (model loading does the same); on CPU adapters nothing runs.
    await proveKernelPaths(gpu);
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

    const ours = (withBackward: boolean, path?: AttentionForwardPath, dqPath?: AttentionDqPath): TimingSpec => ({
      step: () => {
        const b = gpu.batch('bench attention');
        attentionForward(b, { ...dims, q: tq, k: tk, v: tv, out, lse }, { path });
        if (withBackward) attentionBackward(b, { ...dims, q: tq, k: tk, v: tv, out, lse, dOut: tdo, dq, dk, dv }, { dqPath });
        b.submit();
      },
      sync: () => gpu.flush(),
    });
    const specs: Record<string, TimingSpec> = {
      fwdbwd: ours(true),
      fwd: ours(false),
      flashFwdbwd: ours(true, 'flash', 'flash'),
      flashFwd: ours(false, 'flash'),
      tiledFwdbwd: ours(true, 'tiled', 'tiled'),
    };

    // Decode: one token (B 1) over a cache of KV = 4 T keys, the new token last.
    const KVL = 4 * T;
    const dq1 = Float32Array.from(randn(H * D, next));
    const dk1 = Float32Array.from(randn(KVL * KV * D, next));
    const dv1 = Float32Array.from(randn(KVL * KV * D, next));
    const decodeIn = {
      ...dims,
      pastLen: KVL - 1,
      q: gpu.upload(dq1, [1, 1, H, D], 'f32', 'decode q'),
      k: gpu.upload(dk1, [1, KVL, KV, D], 'f32', 'decode k'),
      v: gpu.upload(dv1, [1, KVL, KV, D], 'f32', 'decode v'),
      out: gpu.tensor([1, 1, H, D], 'f32', 'decode out'),
      lse: gpu.tensor([1, H, 1], 'f32', 'decode lse'),
    };
    owned.push(decodeIn.q, decodeIn.k, decodeIn.v, decodeIn.out, decodeIn.lse);
    const decodeDispatches: Record<string, number> = {};
    const decode = (path: AttentionForwardPath): TimingSpec => ({
      step: () => {
        const b = gpu.batch('bench attention decode');
        attentionForward(b, decodeIn, { path });
        decodeDispatches[path] = b.dispatches;
        b.submit();
      },
      sync: () => gpu.flush(),
    });
    specs.decodeSplit = decode('split');
    specs.decodeTiled = decode('tiled');

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
      // The flash paths and the split-KV decode compute what the default paths compute.
      const vs = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
        const err = relError(Float64Array.from(a), Float64Array.from(b));
        if (!(err < MAX_REL_ERROR)) throw new Error(`attention: ${what} (rel err ${err.toExponential(2)})`);
      };
      const fb = gpu.batch('bench attention flash check');
      attentionForward(fb, { ...dims, q: tq, k: tk, v: tv, out, lse }, { path: 'flash' });
      attentionBackward(fb, { ...dims, q: tq, k: tk, v: tv, out, lse, dOut: tdo, dq, dk, dv }, { dqPath: 'flash' });
      fb.submit();
      vs('flash out differs from the default path', await gpu.readF32(out), ourOut);
      vs('flash dq differs from the default path', await gpu.readF32(dq), ourDq);
      const decodeOut: Record<string, Float32Array> = {};
      for (const path of ['split', 'tiled'] as const) {
        const db = gpu.batch('bench attention decode check');
        attentionForward(db, decodeIn, { path });
        db.submit();
        decodeOut[path] = await gpu.readF32(decodeIn.out);
      }
      vs('split-KV decode differs from the tiled forward', decodeOut.split!, decodeOut.tiled!);

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
      const flash = trafficPerFma('flash');
      const tiled = trafficPerFma('tiled');
      const per = (path: 'tiled' | 'flash') =>
        (['forward', 'backwardKv', 'backwardQ'] as const)
          .map((pass) => attentionTraffic(path, pass, D))
          .map((t) => (t.loads / t.fmas).toFixed(2))
          .join('/');
      const decodeShape = (path: AttentionForwardPath) =>
        attentionForwardWorkgroups(path, { ...dims, tq: 1, tkv: KVL }).join(' + ');
      const label = gpu.adapter.isFallback ? `, on a CPU adapter (${gpu.adapter.description})` : '';
      return [
        row(`attention.fwd+bwd.h${H}kv${KV}d${D}`, 'fwdbwd', 'peerFwdbwd'),
        row(`attention.fwd.h${H}kv${KV}d${D}`, 'fwd', 'peerFwd'),
        row(`attention.flash.fwd+bwd.h${H}kv${KV}d${D}`, 'flashFwdbwd', 'peerFwdbwd'),
        row(`attention.flash.fwd.h${H}kv${KV}d${D}`, 'flashFwd', 'peerFwd'),
        result({
          name: `attention.flash-vs-tiled.fwd+bwd.h${H}kv${KV}d${D}`,
          unit: 'tokens/s',
          ours: tps(timings.flashFwdbwd!.ms),
          peer: tps(timings.tiledFwdbwd!.ms),
          peerName: 'ours, tiled forward + backward (the GPU paths before issue 15)',
          shape: `${shape}${label}, ${timings.flashFwdbwd!.ms.toFixed(1)} vs ${timings.tiledFwdbwd!.ms.toFixed(1)} ms`,
        }),
        result({
          name: `attention.decode.split-vs-tiled.h${H}kv${KV}d${D}`,
          unit: 'tokens/s',
          ours: 1000 / timings.decodeSplit!.ms,
          peer: 1000 / timings.decodeTiled!.ms,
          peerName: 'ours, tiled forward (B·kv_heads workgroups)',
          shape: `B1 one token over KV ${KVL}${label}; workgroups split ${decodeShape('split')} vs tiled ${decodeShape('tiled')}; ${timings.decodeSplit!.ms.toFixed(2)} vs ${timings.decodeTiled!.ms.toFixed(2)} ms`,
        }),
        result({
          name: `attention.wgmem-loads-per-fma.d${D}`,
          unit: 'count',
          ours: flash.loads,
          peer: tiled.loads,
          peerName: 'ours, tiled (attention.wgsl)',
          shape: `flash vs tiled, fwd+bwd per (row, key) pair, full tiles; per pass fwd/dkdv/dq flash ${per('flash')}, tiled ${per('tiled')}; exps per score: flash 1, tiled forward ${attentionTiles(D).forward.TC}`,
        }),
        result({
          name: `attention.wgmem-bytes-per-fma.d${D}`,
          unit: 'count',
          ours: flash.bytes,
          peer: tiled.bytes,
          peerName: 'ours, tiled (attention.wgsl)',
          shape: 'flash vs tiled, fwd+bwd: flash loads 16-byte vec4s, tiled 4-byte words',
        }),
        result({
          name: `attention.decode.dispatches-per-token.h${H}kv${KV}d${D}x${LAYERS_1B}`,
          unit: 'count',
          ours: decodeDispatches.split! * LAYERS_1B,
          peer: decodeDispatches.tiled! * LAYERS_1B,
          peerName: 'ours, tiled forward',
          shape: `split-KV vs tiled, ${LAYERS_1B} layers, counted from the encoded batch; per layer at KV ${KVL}: split ${decodeShape('split')} workgroups, tiled ${decodeShape('tiled')}`,
        }),
      ];
    } finally {
      for (const t of owned) t.release();
      held.fwd?.dispose();
      for (const g of held.grads) g.dispose();
      for (const t of peerTensors) t.dispose();
    }
  },
};
