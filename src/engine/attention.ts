// Causal grouped-query attention (flash-attention style), forward and backward, f32, with an
// optional padding mask and a KV-cache form for generation. See shaders/attention.wgsl for the
// tiling; this file picks tile sizes per head dim and checks arguments. On CPU adapters the
// backward's dk/dv and dq passes take barrier-free per-key / per-row kernels (`AttentionDqPath`).
import code from '../../shaders/attention.wgsl?raw';
import { splitGroups, type CommandBatch } from '../gpu/batch';
import { packParams } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32, expectSize } from './checks';

export const MAX_HEAD_DIM = 128;

/** Tile sizes of one pipeline: BQ query rows, BK keys, TC threads per row (head dim <= 8 TC). */
export interface Tiles {
  BQ: number;
  BK: number;
  TC: number;
}

// Per TC (head dim up to 8 TC). Chosen to stay under 16 KiB of workgroup memory and 256
// threads; `attentionTiles` reports the exact figures (checked by the tests). Head dims below
// 32 share the TC = 4 pipelines: each variant costs seconds of shader compilation on
// SwiftShader, and Llama models use 64 or 128.
const FORWARD: Record<number, Omit<Tiles, 'TC'>> = {
  4: { BQ: 32, BK: 16 },
  8: { BQ: 16, BK: 16 },
  16: { BQ: 8, BK: 8 },
};
const BACKWARD_KV: Record<number, Omit<Tiles, 'TC'>> = {
  4: { BQ: 8, BK: 32 },
  8: { BQ: 8, BK: 16 },
  16: { BQ: 4, BK: 8 },
};
const BACKWARD_Q: Record<number, Omit<Tiles, 'TC'>> = {
  4: { BQ: 32, BK: 8 },
  8: { BQ: 16, BK: 8 },
  16: { BQ: 8, BK: 4 },
};

export interface PipelineTiles extends Tiles {
  threads: number;
  workgroupBytes: number;
}

/** Tile sizes, threads and workgroup memory of the three tiled kernels for a head dim. */
export function attentionTiles(headDim: number): { forward: PipelineTiles; backwardKv: PipelineTiles; backwardQ: PipelineTiles } {
  if (!Number.isInteger(headDim) || headDim < 1 || headDim > MAX_HEAD_DIM)
    throw new Error(`attention: headDim ${headDim} must be an integer in [1, ${MAX_HEAD_DIM}]`);
  const TC = [4, 8, 16].find((tc) => 8 * tc >= headDim)!;
  const DS = 8 * TC + 1; // tile row stride in words
  const f = FORWARD[TC]!;
  const kv = BACKWARD_KV[TC]!;
  const dq = BACKWARD_Q[TC]!;
  return {
    forward: { ...f, TC, threads: f.BQ * TC, workgroupBytes: 4 * ((f.BQ + 2 * f.BK) * DS + f.BQ * f.BK) },
    backwardKv: { ...kv, TC, threads: kv.BK * TC, workgroupBytes: 4 * ((2 * kv.BQ + 2 * kv.BK) * DS + 2 * kv.BQ * kv.BK + 3 * kv.BQ) },
    backwardQ: { ...dq, TC, threads: dq.BQ * TC, workgroupBytes: 4 * ((2 * dq.BQ + 2 * dq.BK) * DS + dq.BQ * dq.BK + 3 * dq.BQ) },
  };
}

const kernel = (entryPoint: string, t: Tiles) => ({ name: 'attention', code, entryPoint, constants: { BQ: t.BQ, BK: t.BK, TC: t.TC } });
const DELTA_WG = 256;

export interface AttentionDims {
  /** Sequences in the batch (B). */
  batchSize: number;
  nHeads: number;
  /** Key/value heads; nHeads must be a multiple (head h reads kv head h / (nHeads / nKvHeads)). */
  nKvHeads: number;
  headDim: number;
  /**
   * KV-cache form: keys already in the cache before the first query (default 0). Queries are
   * positions [pastLen, pastLen + tq) and attend keys [0, pastLen + tq) of k/v.
   */
  pastLen?: number;
}

export interface AttentionForwardArgs extends AttentionDims {
  /** f32 [B, tq, nHeads, headDim]. */
  q: Tensor;
  /** f32 [B, kvLen, nKvHeads, headDim], kvLen >= pastLen + tq (training: kvLen = tq; generation: the cache capacity). */
  k: Tensor;
  v: Tensor;
  /** f32, like q. */
  out: Tensor;
  /** f32 [B, nHeads, tq]: per-row log-sum-exp of the scores, for the backward (generation may reuse one scratch). */
  lse: Tensor;
  /** i32/u32 [B, maskLen], maskLen >= pastLen + tq: 1 for a real token at that position, 0 for padding. */
  mask?: Tensor;
}

export interface AttentionBackwardArgs extends AttentionDims {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** The forward's output and log-sum-exp. */
  out: Tensor;
  lse: Tensor;
  mask?: Tensor;
  dOut: Tensor;
  /** f32, like q. Also scratch for the backward's row statistics. */
  dq: Tensor;
  /** f32, like k and v (rows past pastLen + tq get 0). */
  dk: Tensor;
  dv: Tensor;
}

interface Resolved {
  tq: number;
  tkv: number;
  kvCap: number;
  params: Uint8Array<ArrayBuffer>;
  tiles: ReturnType<typeof attentionTiles>;
  mask: Tensor;
}

function resolve(op: string, a: AttentionDims & { q: Tensor; k: Tensor; v: Tensor; mask?: Tensor }): Resolved {
  const { batchSize: B, nHeads, nKvHeads, headDim: D } = a;
  const pastLen = a.pastLen ?? 0;
  for (const [name, x] of [
    ['batchSize', B],
    ['nHeads', nHeads],
    ['nKvHeads', nKvHeads],
  ] as const)
    if (!Number.isInteger(x) || x < 1) throw new Error(`${op}: ${name} ${x} must be a positive integer`);
  if (!Number.isInteger(pastLen) || pastLen < 0) throw new Error(`${op}: pastLen ${pastLen} must be a non-negative integer`);
  if (nHeads % nKvHeads) throw new Error(`${op}: nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
  const tiles = attentionTiles(D);
  expectF32(op, a.q, a.k, a.v);
  const qRow = B * nHeads * D;
  const kvRow = B * nKvHeads * D;
  if (a.q.size % qRow || a.q.size === 0)
    throw new Error(`${op}: ${a.q.label} has ${a.q.size} elements, not a positive multiple of batchSize * nHeads * headDim = ${qRow}`);
  if (a.k.size % kvRow || a.k.size === 0)
    throw new Error(`${op}: ${a.k.label} has ${a.k.size} elements, not a positive multiple of batchSize * nKvHeads * headDim = ${kvRow}`);
  expectSize(op, a.v, a.k.size);
  const tq = a.q.size / qRow;
  const kvCap = a.k.size / kvRow;
  const tkv = pastLen + tq;
  if (tkv > kvCap) throw new Error(`${op}: ${a.k.label} holds ${kvCap} positions per sequence, pastLen + tq = ${tkv}`);
  let maskStride = 0;
  if (a.mask) {
    expectDTypes(op, ['i32', 'u32'], a.mask);
    maskStride = a.mask.size / B;
    if (!Number.isInteger(maskStride) || maskStride < tkv)
      throw new Error(`${op}: ${a.mask.label} has ${a.mask.size} elements, expected [${B}, >= ${tkv}]`);
  }
  const params = packParams([
    { u32: B },
    { u32: tq },
    { u32: tkv },
    { u32: pastLen },
    { u32: kvCap },
    { u32: nHeads },
    { u32: nKvHeads },
    { u32: D },
    { u32: maskStride },
    { f32: 1 / Math.sqrt(D) },
  ]);
  // Without a mask the binding still needs a buffer: q (read-only twice is allowed); the kernel
  // never reads it when mask_stride is 0.
  return { tq, tkv, kvCap, params, tiles, mask: a.mask ?? a.q };
}

/** Each written tensor must have its own buffer (WebGPU forbids a writable alias in a dispatch). */
function distinct(op: string, written: Record<string, Tensor>, read: Record<string, Tensor | undefined>): void {
  const all = Object.entries({ ...read, ...written }).filter((e): e is [string, Tensor] => e[1] !== undefined);
  for (const [wName, w] of Object.entries(written))
    for (const [name, t] of all)
      if (name !== wName && t.buffer === w.buffer) throw new Error(`${op}: ${wName} (${w.label}) and ${name} (${t.label}) share a buffer`);
}

/** out = softmax(scale q k^T + causal/padding mask) v, and the rows' log-sum-exp into lse. */
export function attentionForward(batch: CommandBatch, a: AttentionForwardArgs): void {
  const op = 'attention forward';
  const r = resolve(op, a);
  expectF32(op, a.out, a.lse);
  expectSize(op, a.out, a.q.size);
  expectSize(op, a.lse, a.batchSize * a.nHeads * r.tq);
  distinct(op, { out: a.out, lse: a.lse }, { q: a.q, k: a.k, v: a.v, mask: a.mask });
  const t = r.tiles.forward;
  const rows = r.tq * (a.nHeads / a.nKvHeads);
  batch.dispatch({
    kernel: kernel('attention_forward', t),
    params: r.params,
    buffers: [a.q, a.k, a.v, r.mask, a.out, a.lse],
    groups: splitGroups(a.batchSize * a.nKvHeads * Math.ceil(rows / t.BQ)),
  });
}

/**
 * How the backward's dk/dv and dq passes run: `tiled` (workgroup tiles and barriers) or `rows`
 * (one invocation per key, then per query row; no barriers; head dims multiple of 4).
 */
export type AttentionDqPath = 'tiled' | 'rows';
const ROWS_WG = 64;

/** The passes `attentionBackward` take by default: `rows` on CPU adapters (a barrier costs ~1 ms there) when headDim % 4 == 0. */
export function defaultDqPath(isFallback: boolean, headDim: number): AttentionDqPath {
  return isFallback && headDim % 4 === 0 ? 'rows' : 'tiled';
}

/** dq, dk, dv from dOut, recomputing the probabilities from q, k and lse (three dispatches). */
export function attentionBackward(batch: CommandBatch, a: AttentionBackwardArgs, options: { dqPath?: AttentionDqPath } = {}): void {
  const op = 'attention backward';
  const r = resolve(op, a);
  expectF32(op, a.out, a.lse, a.dOut, a.dq, a.dk, a.dv);
  expectSize(op, a.out, a.q.size);
  expectSize(op, a.dOut, a.q.size);
  expectSize(op, a.dq, a.q.size);
  expectSize(op, a.dk, a.k.size);
  expectSize(op, a.dv, a.k.size);
  const nRows = a.batchSize * a.nHeads * r.tq;
  expectSize(op, a.lse, nRows);
  distinct(op, { dq: a.dq, dk: a.dk, dv: a.dv }, { q: a.q, k: a.k, v: a.v, out: a.out, lse: a.lse, dOut: a.dOut, mask: a.mask });
  // dq holds [delta | lse] (2 * nRows words) until the last pass overwrites it.
  if (a.dq.size < 2 * nRows) throw new Error(`${op}: headDim ${a.headDim} must be at least 2`);
  batch.dispatch({
    kernel: { name: 'attention', code, entryPoint: 'attention_backward_delta', constants: { WG: DELTA_WG } },
    params: r.params,
    buffers: [a.out, a.dOut, a.lse, a.dq],
    groups: splitGroups(Math.ceil(nRows / DELTA_WG)),
  });
  const kv = r.tiles.backwardKv;
  const dqPath = options.dqPath ?? defaultDqPath(batch.ctx.adapter.isFallback, a.headDim);
  if (dqPath === 'rows' && a.headDim % 4) throw new Error(`${op}: the rows passes need headDim a multiple of 4 (headDim ${a.headDim})`);
  batch.dispatch({
    kernel:
      dqPath === 'rows'
        ? { name: 'attention', code, entryPoint: 'attention_backward_kv_rows', constants: { RW: ROWS_WG } }
        : kernel('attention_backward_kv', kv),
    params: r.params,
    buffers: [a.q, a.k, a.v, r.mask, a.dOut, a.dq, a.dk, a.dv],
    groups: splitGroups(dqPath === 'rows' ? Math.ceil((a.batchSize * a.nKvHeads * r.kvCap) / ROWS_WG) : a.batchSize * a.nKvHeads * Math.ceil(r.kvCap / kv.BK)),
  });
  if (dqPath === 'rows') {
    batch.dispatch({
      kernel: { name: 'attention', code, entryPoint: 'attention_backward_q_rows', constants: { RW: ROWS_WG } },
      params: r.params,
      buffers: [a.q, a.k, a.v, r.mask, a.dOut, a.out, a.lse, a.dq],
      groups: splitGroups(Math.ceil(nRows / ROWS_WG)),
    });
    return;
  }
  const dq = r.tiles.backwardQ;
  const rows = r.tq * (a.nHeads / a.nKvHeads);
  batch.dispatch({
    kernel: kernel('attention_backward_q', dq),
    params: r.params,
    buffers: [a.q, a.k, a.v, r.mask, a.dOut, a.out, a.lse, a.dq],
    groups: splitGroups(a.batchSize * a.nKvHeads * Math.ceil(rows / dq.BQ)),
  });
}
