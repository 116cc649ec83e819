// Self-test cases: causal grouped-query attention (4 query heads on 2 KV heads) with left and
// right padding, forward and backward. Padded rows must come out exactly 0, which the relative
// error sees as any nonzero value there. The flash and split-KV cases prove those GPU paths on
// the device (`proves`), at head dim 64: a GPU takes them by default only after they passed here.
import { ATTENTION_PATHS, attentionBackward, attentionForward, defaultDecodeReduce, splitKvPathName } from '../attention';
import { attentionBackwardRef, attentionForwardRef, type AttentionRefDims } from '../reference/attention';
import type { SelfTestCase, SelfTestTools } from '../selftest';
import { draw, paddingMask, rel, worst } from './common';

const [B, T, N_HEADS, N_KV, HEAD_DIM] = [2, 11, 4, 2, 24];
// The GPU paths are proven at head dim 64 (Llama-3.2-1B, Qwen): each head dim is its own pipeline.
const D_GPU = 64;
// Split-KV decode: one token over 45 cached keys in chunks of 16 (the last one ragged).
const [KV_LEN, KV_CAP, CHUNK] = [45, 48, 16];
const FWD_BOUND = 1e-6;
const BWD_BOUND = 2e-6;

function inputs(t: SelfTestTools, D = HEAD_DIM) {
  const q = draw(t, B * T * N_HEADS * D);
  const k = draw(t, B * T * N_KV * D);
  const v = draw(t, B * T * N_KV * D);
  const mask = paddingMask(B, T, t.next);
  const dims: AttentionRefDims = { B, tq: T, kvCap: T, nHeads: N_HEADS, nKv: N_KV, D, mask, maskStride: T };
  const gpu = {
    batchSize: B,
    nHeads: N_HEADS,
    nKvHeads: N_KV,
    headDim: D,
    q: t.upload(q, [B, T, N_HEADS, D], 'q'),
    k: t.upload(k, [B, T, N_KV, D], 'k'),
    v: t.upload(v, [B, T, N_KV, D], 'v'),
    mask: t.upload(mask, [B, T], 'mask', 'i32'),
    out: t.poisoned([B, T, N_HEADS, D], 'out'),
    lse: t.poisoned([B, N_HEADS, T], 'lse'),
  };
  return { q, k, v, dims, gpu };
}

export const ATTENTION_CASES: readonly SelfTestCase[] = [
  {
    name: 'attention forward, GQA with padding mask',
    run: async (ctx, t) => {
      const { q, k, v, dims, gpu } = inputs(t);
      const batch = ctx.batch('selftest attention forward');
      attentionForward(batch, gpu);
      batch.submit();
      const want = attentionForwardRef(q, k, v, dims);
      return worst(rel(await t.read(gpu.out), want.out, FWD_BOUND), rel(await t.read(gpu.lse), want.lse, FWD_BOUND));
    },
  },
  {
    name: 'attention backward, GQA with padding mask',
    run: async (ctx, t) => {
      const { q, k, v, dims, gpu } = inputs(t);
      const dOut = draw(t, q.length);
      const grads = {
        dOut: t.upload(dOut, [B, T, N_HEADS, HEAD_DIM], 'dOut'),
        dq: t.poisoned([B, T, N_HEADS, HEAD_DIM], 'dq'),
        dk: t.poisoned([B, T, N_KV, HEAD_DIM], 'dk'),
        dv: t.poisoned([B, T, N_KV, HEAD_DIM], 'dv'),
      };
      const batch = ctx.batch('selftest attention backward');
      attentionForward(batch, gpu);
      attentionBackward(batch, { ...gpu, ...grads });
      batch.submit();
      const want = attentionBackwardRef(q, k, v, dOut, dims);
      return worst(
        rel(await t.read(grads.dq), want.dq, BWD_BOUND),
        rel(await t.read(grads.dk), want.dk, BWD_BOUND),
        rel(await t.read(grads.dv), want.dv, BWD_BOUND),
      );
    },
  },
  {
    // Every pass is cut into one dispatch per workgroup (maxDispatchFlops 1), as the GPU watchdog
    // cut does on long sequences, so the device proves the sliced form (wg_first > 0) too.
    name: 'attention flash forward and backward (GPU path), head dim 64, GQA with padding mask, one dispatch per workgroup',
    proves: (ctx) => (ctx.adapter.isFallback ? null : ATTENTION_PATHS.flash),
    run: async (ctx, t) => {
      const { q, k, v, dims, gpu } = inputs(t, D_GPU);
      const dOut = draw(t, q.length);
      const grads = {
        dOut: t.upload(dOut, [B, T, N_HEADS, D_GPU], 'dOut'),
        dq: t.poisoned([B, T, N_HEADS, D_GPU], 'dq'),
        dk: t.poisoned([B, T, N_KV, D_GPU], 'dk'),
        dv: t.poisoned([B, T, N_KV, D_GPU], 'dv'),
      };
      const batch = ctx.batch('selftest attention flash');
      attentionForward(batch, gpu, { path: 'flash', maxDispatchFlops: 1 });
      attentionBackward(batch, { ...gpu, ...grads }, { dqPath: 'flash', maxDispatchFlops: 1 });
      batch.submit();
      const fwd = attentionForwardRef(q, k, v, dims);
      const want = attentionBackwardRef(q, k, v, dOut, dims);
      return worst(
        rel(await t.read(gpu.out), fwd.out, FWD_BOUND),
        rel(await t.read(gpu.lse), fwd.lse, FWD_BOUND),
        rel(await t.read(grads.dq), want.dq, BWD_BOUND),
        rel(await t.read(grads.dk), want.dk, BWD_BOUND),
        rel(await t.read(grads.dv), want.dv, BWD_BOUND),
      );
    },
  },
  {
    name: 'attention split-KV decode (GPU path; subgroup reductions where the adapter has them), head dim 64, ragged last chunk, two chunks per dispatch',
    proves: (ctx) => (ctx.adapter.isFallback ? null : splitKvPathName(defaultDecodeReduce(ctx))),
    run: async (ctx, t) => {
      const q = draw(t, B * N_HEADS * D_GPU);
      const k = draw(t, B * KV_CAP * N_KV * D_GPU);
      const v = draw(t, B * KV_CAP * N_KV * D_GPU);
      const mask = paddingMask(B, KV_CAP, t.next);
      for (let b = 0; b < B; b++) mask[b * KV_CAP + KV_LEN - 1] = 1; // the new token is real
      const pastLen = KV_LEN - 1;
      const out = t.poisoned([B, 1, N_HEADS, D_GPU], 'out');
      const lse = t.poisoned([B, N_HEADS, 1], 'lse');
      const batch = ctx.batch('selftest attention split-KV decode');
      attentionForward(
        batch,
        {
          batchSize: B,
          nHeads: N_HEADS,
          nKvHeads: N_KV,
          headDim: D_GPU,
          pastLen,
          q: t.upload(q, [B, 1, N_HEADS, D_GPU], 'q'),
          k: t.upload(k, [B, KV_CAP, N_KV, D_GPU], 'k'),
          v: t.upload(v, [B, KV_CAP, N_KV, D_GPU], 'v'),
          mask: t.upload(mask, [B, KV_CAP], 'mask', 'i32'),
          out,
          lse,
        },
        // Two chunks' work per dispatch: the partials in 12 dispatches, as the watchdog cut would.
        { path: 'split', chunk: CHUNK, maxDispatchFlops: 2 * CHUNK * 4 * D_GPU },
      );
      batch.submit();
      const want = attentionForwardRef(q, k, v, { B, tq: 1, kvCap: KV_CAP, nHeads: N_HEADS, nKv: N_KV, D: D_GPU, pastLen, mask, maskStride: KV_CAP });
      return worst(rel(await t.read(out), want.out, FWD_BOUND), rel(await t.read(lse), want.lse, FWD_BOUND));
    },
  },
];
