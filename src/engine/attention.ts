// Causal grouped-query attention (flash-attention style), forward and backward, f32, with an
// optional padding mask and a KV-cache form for generation. This file picks a path and its tile
// sizes per head dim and checks arguments. The paths:
//   forward  `tiled` (shaders/attention.wgsl: TC threads per row, scalar tiles; any head dim),
//            `flash` (shaders/attention_flash.wgsl: one query row per invocation in vec4
//            registers, vec4 k/v tiles, one exp per score; head dim a multiple of 4),
//            `split` (shaders/attention_decode.wgsl: split-KV decode for tq = 1, partial
//            softmaxes per KV chunk then a combine; subgroup reductions where the adapter has them)
//   backward `tiled`, `rows` (barrier-free per-key / per-row kernels for CPU adapters), `flash`.
// Defaults: CPU adapters (SwiftShader, lavapipe, WARP) keep `tiled` forward and `rows` backward;
// GPUs take `flash` / `split` once the GPU self-test proved them on the device (./proven.ts),
// else `tiled`. Every path can be forced with an option (the tests force each on SwiftShader).
//
// Watchdog: the work of a pass grows with T^2 (a Llama-3.2-1B forward at T 4096 is 69 GFLOP per
// layer), and one dispatch of it can outlast a browser's GPU timeout on a weak integrated GPU.
// Every pass therefore cuts its linear workgroup grid into consecutive slices of at most
// MAX_DISPATCH_FLOPS (src/gpu/batch.ts: 2^32, ~40-110 ms on an Intel UHD 620, 20-50x under the
// 2 s TDR), each its own dispatch: the kernels number workgroups wg_first + wid.x + wid.y nwg.x
// and stop at wg_end (params), and no workgroup reads what another writes, so the results are
// bit-identical to one dispatch. A workgroup's FLOPs are bounded from the loops it runs
// (`attentionGridCosts`): rows x the keys its causal limit lets it visit, rounded up to tiles.
import code from '../../shaders/attention.wgsl?raw';
import decodeCode from '../../shaders/attention_decode.wgsl?raw';
import flashCode from '../../shaders/attention_flash.wgsl?raw';
import reduceSgCode from '../../shaders/attention_reduce_sg.wgsl?raw';
import reduceWgCode from '../../shaders/attention_reduce_wg.wgsl?raw';
import { MAX_DISPATCH_FLOPS, splitGroups, type CommandBatch, type Dispatch } from '../gpu/batch';
import type { GpuContext } from '../gpu/context';
import { packParams } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32, expectSize } from './checks';
import { isProven } from './proven';

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

// Flash paths (attention_flash.wgsl, attention_decode.wgsl). WG rows per workgroup, one per
// invocation; BT rows of the staged side per tile, as many as fit in 16 KiB next to the kv
// pass's three BT-float arrays (the spec's default limit; then one pipeline per head dim on
// every adapter). head_dim = 4 * D4.
const FLASH_WG = 64;
const FLASH_BYTES = 16384;
const FLASH_MAX_BT = 32;
/** Invocations of a split-KV decode workgroup, and the most keys one chunk may hold. */
export const DECODE_WG = 64;
export const DECODE_CHUNK_MAX = 256;
/** Workgroups a decode step aims for (chunks are cut so that batch * heads * chunks reaches it). */
const DECODE_TARGET_GROUPS = 256;

export interface FlashTiles {
  /** Rows (invocations) per workgroup. */
  WG: number;
  /** Rows of the staged side per tile: keys (forward, dq) or query rows (dk/dv). */
  BT: number;
  D4: number;
  workgroupBytes: number;
}

/** Tiles of the flash kernels for a head dim (a multiple of 4, at most 128). */
export function flashTiles(headDim: number): FlashTiles {
  if (!Number.isInteger(headDim) || headDim < 4 || headDim > MAX_HEAD_DIM || headDim % 4)
    throw new Error(`attention: the flash paths need headDim a multiple of 4 in [4, ${MAX_HEAD_DIM}] (headDim ${headDim}); use path 'tiled'`);
  const D4 = headDim / 4;
  const small = 3 * FLASH_MAX_BT * 4; // t_l, t_delta, t_ok
  const BT = Math.min(FLASH_MAX_BT, Math.floor((FLASH_BYTES - small) / (2 * 16 * D4)));
  return { WG: FLASH_WG, BT, D4, workgroupBytes: 2 * BT * D4 * 16 + small };
}

/** Names the self-test proves (./proven.ts) before a GPU takes these paths by default. */
export const ATTENTION_PATHS = {
  flash: 'attention.flash',
  splitKv: 'attention.split-kv',
  splitKvSubgroups: 'attention.split-kv.subgroups',
} as const;

/** How the split-KV decode reduces within a workgroup. */
export type DecodeReduce = 'subgroups' | 'workgroup';

export function defaultDecodeReduce(ctx: GpuContext): DecodeReduce {
  return ctx.features.has('subgroups') ? 'subgroups' : 'workgroup';
}

export function splitKvPathName(reduce: DecodeReduce): string {
  return reduce === 'subgroups' ? ATTENTION_PATHS.splitKvSubgroups : ATTENTION_PATHS.splitKv;
}

/** Keys per chunk of a split-KV decode: enough chunks for ~256 workgroups, 32 to 256 keys each. */
export function decodeChunk(batchSize: number, nHeads: number, tkv: number): number {
  const want = Math.max(1, Math.ceil(DECODE_TARGET_GROUPS / (batchSize * nHeads)));
  return Math.min(DECODE_CHUNK_MAX, Math.max(32, Math.ceil(Math.ceil(tkv / want) / 32) * 32));
}

export type AttentionForwardPath = 'tiled' | 'flash' | 'split';

/** Paths chosen for one context instead of the defaults (every op that runs attention on it). */
export interface AttentionPathChoice {
  /** Forward of several query tokens (training, prefill); also decode unless `decode` is set. */
  forward?: 'tiled' | 'flash';
  /** Forward of one query token per sequence (KV-cache decode). */
  decode?: AttentionForwardPath;
  backward?: AttentionDqPath;
  /** Keys per split-KV chunk (default `decodeChunk`). */
  chunk?: number;
}

const chosenPaths = new WeakMap<GpuContext, AttentionPathChoice>();

/**
 * Makes every attention op on `ctx` take these paths instead of the defaults (null restores the
 * defaults): how the tests run a whole model through the GPU paths on SwiftShader, and how a
 * comparison can pin a path. Explicit per-call options still win.
 */
export function setAttentionPaths(ctx: GpuContext, choice: AttentionPathChoice | null): void {
  if (choice) chosenPaths.set(ctx, { ...choice });
  else chosenPaths.delete(ctx);
}

/**
 * The forward path taken by default: `tiled` on CPU adapters and for head dims not a multiple
 * of 4; on GPUs `split` for one query token (decode) and `flash` otherwise, each once proven on
 * this context by the self-test, else `tiled`.
 */
export function defaultForwardPath(ctx: GpuContext, headDim: number, tq: number): AttentionForwardPath {
  const chosen = chosenPaths.get(ctx);
  const forced = tq === 1 ? (chosen?.decode ?? chosen?.forward) : chosen?.forward;
  if (forced) return forced;
  if (ctx.adapter.isFallback || headDim % 4) return 'tiled';
  if (tq === 1 && isProven(ctx, splitKvPathName(defaultDecodeReduce(ctx)))) return 'split';
  return isProven(ctx, ATTENTION_PATHS.flash) ? 'flash' : 'tiled';
}

/** Workgroup-memory traffic of one (query row, key) pair in one pass, read off the kernels' loops. */
export interface PairTraffic {
  /** Load instructions from workgroup memory (a vec4 load counts once). */
  loads: number;
  bytes: number;
  /** FMAs executed (dot products and accumulations, padding dims included). */
  fmas: number;
}

/**
 * Workgroup-memory loads, bytes and FMAs per (query row, key) pair of each pass, full tiles
 * (a bench row: it does not depend on the adapter's speed).
 *   tiled (attention.wgsl; TC threads per row, ACC = 8 dims each, DC = 8 TC >= D):
 *     forward  score q.k from two tiles: 2D loads, D FMAs; then each of the row's TC threads
 *              reads the score twice (max, exp) and ACC values of v: TC (2 + ACC) loads,
 *              TC ACC FMAs
 *     dk/dv    q.k and dout.v from tiles: 4D loads, 2D FMAs; each of the key's TC threads reads
 *              p and dS and ACC values each of dout and q: TC (2 + 2 ACC) loads, 2 TC ACC FMAs
 *     dq       4D loads, 2D FMAs; then TC (1 + ACC) loads (dS, k), TC ACC FMAs
 *   flash (attention_flash.wgsl; the invocation's row in registers, D4 = D / 4 vec4 loads):
 *     forward  q.k and p v: 2 D4 vec4 loads, 2D FMAs
 *     dk/dv    q.k, dout.v, dV += p dout, dK += dS q: 4 D4 vec4 loads + the row's lse, delta and
 *              mask flag (3 scalars), 4D FMAs
 *     dq       q.k, dout.v, dQ += dS k: 3 D4 vec4 loads, 3D FMAs
 */
export function attentionTraffic(path: 'tiled' | 'flash', pass: 'forward' | 'backwardKv' | 'backwardQ', headDim: number): PairTraffic {
  const D = headDim;
  if (path === 'flash') {
    const D4 = flashTiles(D).D4;
    if (pass === 'forward') return { loads: 2 * D4, bytes: 32 * D4, fmas: 2 * D };
    if (pass === 'backwardKv') return { loads: 4 * D4 + 3, bytes: 64 * D4 + 12, fmas: 4 * D };
    return { loads: 3 * D4, bytes: 48 * D4, fmas: 3 * D };
  }
  const TC = attentionTiles(D).forward.TC;
  const ACC = 8;
  const t =
    pass === 'forward'
      ? { loads: 2 * D + TC * (2 + ACC), fmas: D + TC * ACC }
      : pass === 'backwardKv'
        ? { loads: 4 * D + TC * (2 + 2 * ACC), fmas: 2 * D + 2 * TC * ACC }
        : { loads: 4 * D + TC * (1 + ACC), fmas: 2 * D + TC * ACC };
  return { ...t, bytes: 4 * t.loads };
}

/** Workgroups of each dispatch of a forward on `path` (decode: tq = 1 over tkv keys). */
export function attentionForwardWorkgroups(
  path: AttentionForwardPath,
  d: { batchSize: number; nHeads: number; nKvHeads: number; headDim: number; tq: number; tkv: number; chunk?: number },
): number[] {
  const rows = d.tq * (d.nHeads / d.nKvHeads);
  if (path === 'tiled') return [d.batchSize * d.nKvHeads * Math.ceil(rows / attentionTiles(d.headDim).forward.BQ)];
  if (path === 'flash') return [d.batchSize * d.nKvHeads * Math.ceil(rows / FLASH_WG)];
  const chunk = d.chunk ?? decodeChunk(d.batchSize, d.nHeads, d.tkv);
  const bh = d.batchSize * d.nHeads;
  return [bh * Math.ceil(d.tkv / chunk), Math.ceil((bh * flashTiles(d.headDim).D4) / DECODE_WG)];
}

const flashKernel = (entryPoint: string, t: FlashTiles) => ({
  name: 'attention_flash',
  code: flashCode,
  entryPoint,
  constants: { WG: t.WG, BT: t.BT, D4: t.D4 },
});

const decodeKernel = (entryPoint: string, reduce: DecodeReduce, D4: number) =>
  reduce === 'subgroups'
    ? { name: 'attention_decode_sg', code: `enable subgroups;\n${decodeCode}\n${reduceSgCode}`, entryPoint, constants: { WD: DECODE_WG, D4 } }
    : { name: 'attention_decode', code: `${decodeCode}\n${reduceWgCode}`, entryPoint, constants: { WD: DECODE_WG, D4 } };

const kernel = (entryPoint: string, t: Tiles) => ({ name: 'attention', code, entryPoint, constants: { BQ: t.BQ, BK: t.BK, TC: t.TC } });
const DELTA_WG = 256;
/** Bytes of the decode Params fields before wg_first (attention_decode.wgsl: chunk, n_chunks). */
const DECODE_RANGE_AT = 48;

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

export interface AttentionForwardOptions {
  /** Force a path (default: `defaultForwardPath`). */
  path?: AttentionForwardPath;
  /** Split-KV decode: keys per chunk (default `decodeChunk`), at most DECODE_CHUNK_MAX. */
  chunk?: number;
  /** Split-KV decode: reduction (default: subgroups where the adapter has them). */
  reduce?: DecodeReduce;
  /** Most FLOPs one dispatch may run (default MAX_DISPATCH_FLOPS; see the file comment). */
  maxDispatchFlops?: number;
}

/** out = softmax(scale q k^T + causal/padding mask) v, and the rows' log-sum-exp into lse. */
export function attentionForward(batch: CommandBatch, a: AttentionForwardArgs, options: AttentionForwardOptions = {}): void {
  const op = 'attention forward';
  const r = resolve(op, a);
  expectF32(op, a.out, a.lse);
  expectSize(op, a.out, a.q.size);
  expectSize(op, a.lse, a.batchSize * a.nHeads * r.tq);
  distinct(op, { out: a.out, lse: a.lse }, { q: a.q, k: a.k, v: a.v, mask: a.mask });
  const path = options.path ?? defaultForwardPath(batch.ctx, a.headDim, r.tq);
  const maxFlops = checkMaxFlops(op, options.maxDispatchFlops);
  if (path === 'split') {
    splitKvForward(batch, a, r, options, maxFlops);
    return;
  }
  const grid = forwardGrid(path, gridDims(a, r));
  const buffers = [a.q, a.k, a.v, r.mask, a.out, a.lse];
  const spec = path === 'flash' ? flashKernel('flash_forward', flashTiles(a.headDim)) : kernel('attention_forward', r.tiles.forward);
  dispatchSliced(batch, { kernel: spec, params: r.params, buffers }, grid.repeats, grid.costs, maxFlops);
}

/** The shape a pass's grid depends on (`attentionDispatchPlan` takes it without tensors). */
export interface AttentionGridDims {
  batchSize: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Query tokens per sequence; keys seen: tkv = pastLen + tq; kvCap: rows of k/v per sequence. */
  tq: number;
  pastLen?: number;
  kvCap?: number;
}

function gridDims(a: AttentionDims, r: Resolved): AttentionGridDims {
  return { batchSize: a.batchSize, nHeads: a.nHeads, nKvHeads: a.nKvHeads, headDim: a.headDim, tq: r.tq, pastLen: a.pastLen ?? 0, kvCap: r.kvCap };
}

/** A pass's linear grid: `repeats * costs.length` workgroups, workgroup w running costs[w % costs.length] FLOPs. */
interface PassGrid {
  repeats: number;
  costs: number[];
}

function shapeOf(d: AttentionGridDims) {
  const g = d.nHeads / d.nKvHeads;
  const pastLen = d.pastLen ?? 0;
  const tkv = pastLen + d.tq;
  return { g, pastLen, tkv, kvCap: d.kvCap ?? tkv, rows: d.tq * g, bkv: d.batchSize * d.nKvHeads, nRows: d.batchSize * d.nHeads * d.tq };
}

function forwardGrid(path: 'tiled' | 'flash', d: AttentionGridDims): PassGrid {
  const { g, pastLen, tkv, rows, bkv } = shapeOf(d);
  const pair = 2 * attentionTraffic(path, 'forward', d.headDim).fmas;
  if (path === 'flash') {
    const t = flashTiles(d.headDim);
    return { repeats: bkv, costs: rowBlockCosts(rows, g, pastLen, tkv, t.WG, t.BT, pair) };
  }
  const t = attentionTiles(d.headDim).forward;
  return { repeats: bkv, costs: rowBlockCosts(rows, g, pastLen, tkv, t.BQ, t.BK, pair) };
}

/** The backward's three passes: delta, dk/dv, dq. */
function backwardGrids(dqPath: AttentionDqPath, d: AttentionGridDims): { delta: PassGrid; kv: PassGrid; q: PassGrid } {
  const { g, pastLen, tkv, kvCap, rows, bkv, nRows } = shapeOf(d);
  const D = d.headDim;
  const pair = (path: 'tiled' | 'flash', pass: 'backwardKv' | 'backwardQ') => 2 * attentionTraffic(path, pass, D).fmas;
  if (dqPath === 'flash') {
    const t = flashTiles(D);
    return {
      delta: { repeats: Math.ceil(nRows / t.WG), costs: [t.WG * 2 * D] },
      kv: { repeats: bkv, costs: keyBlockCosts(kvCap, rows, g, pastLen, tkv, t.WG, t.BT, pair('flash', 'backwardKv')) },
      q: { repeats: bkv, costs: rowBlockCosts(rows, g, pastLen, tkv, t.WG, t.BT, pair('flash', 'backwardQ')) },
    };
  }
  const delta = { repeats: Math.ceil(nRows / DELTA_WG), costs: [DELTA_WG * 2 * D] };
  if (dqPath === 'rows')
    // One invocation per key over every row of its group (4D FMAs a pair), then one per query
    // row over every key (3D): bounded by the whole row / key range.
    return {
      delta,
      kv: { repeats: Math.ceil((bkv * kvCap) / ROWS_WG), costs: [ROWS_WG * rows * 8 * D] },
      q: { repeats: Math.ceil(nRows / ROWS_WG), costs: [ROWS_WG * tkv * 6 * D] },
    };
  const tiles = attentionTiles(D);
  return {
    delta,
    kv: { repeats: bkv, costs: keyBlockCosts(kvCap, rows, g, pastLen, tkv, tiles.backwardKv.BK, tiles.backwardKv.BQ, pair('tiled', 'backwardKv')) },
    q: { repeats: bkv, costs: rowBlockCosts(rows, g, pastLen, tkv, tiles.backwardQ.BQ, tiles.backwardQ.BK, pair('tiled', 'backwardQ')) },
  };
}

/** Dispatches and the largest one's FLOP bound, of a forward and a backward cut at `maxFlops`. */
export interface AttentionDispatchPlan {
  forward: { dispatches: number; maxFlops: number; unsplitFlops: number };
  backward: { dispatches: number; maxFlops: number; unsplitFlops: number };
}

/**
 * How `attentionForward` / `attentionBackward` cut a training-shaped attention (tq query tokens,
 * no split-KV decode) into dispatches, without a GPU: per pass the slices of `sliceGrid`, and
 * the largest pass's FLOPs uncut (what one dispatch of it would run). A bench row.
 */
export function attentionDispatchPlan(d: AttentionGridDims, paths: { forward: 'tiled' | 'flash'; backward: AttentionDqPath }, maxFlops = MAX_DISPATCH_FLOPS): AttentionDispatchPlan {
  const sum = (p: PassGrid) => p.repeats * p.costs.reduce((a, c) => a + c, 0);
  const plan = (grids: PassGrid[]) => {
    const slices = grids.map((p) => sliceGrid(p.repeats, p.costs, maxFlops).filter((x) => x.end > x.first));
    return { dispatches: slices.reduce((n, x) => n + x.length, 0), maxFlops: Math.max(...slices.flat().map((x) => x.flops)), unsplitFlops: Math.max(...grids.map(sum)) };
  };
  const b = backwardGrids(paths.backward, d);
  return { forward: plan([forwardGrid(paths.forward, d)]), backward: plan([b.delta, b.kv, b.q]) };
}

function checkMaxFlops(op: string, maxFlops = MAX_DISPATCH_FLOPS): number {
  if (!(maxFlops >= 1)) throw new Error(`${op}: maxDispatchFlops ${maxFlops} must be at least 1`);
  return maxFlops;
}

/**
 * FLOPs each workgroup of a query-row-block pass runs (forward, dq; tiled or flash), one entry
 * per block of `perWg` rows of a (batch, kv head): the block's rows times every key tile up to
 * its last row's causal limit (rows past their own limit still walk the tile loop).
 */
function rowBlockCosts(rows: number, g: number, pastLen: number, tkv: number, perWg: number, keyTile: number, pairFlops: number): number[] {
  const costs: number[] = [];
  for (let r0 = 0; r0 < rows; r0 += perWg) {
    const kend = Math.min(tkv, pastLen + Math.floor((Math.min(rows, r0 + perWg) - 1) / g) + 1);
    costs.push(perWg * Math.ceil(kend / keyTile) * keyTile * pairFlops);
  }
  return costs;
}

/**
 * FLOPs each workgroup of a key-block pass (dk/dv; tiled or flash) runs, one entry per block of
 * `perWg` keys of a (batch, kv head): the keys times the row tiles from the first row that can
 * see the block's first key.
 */
function keyBlockCosts(kvCap: number, rows: number, g: number, pastLen: number, tkv: number, perWg: number, rowTile: number, pairFlops: number): number[] {
  const costs: number[] = [];
  for (let j0 = 0; j0 < kvCap; j0 += perWg) {
    const begin = j0 < tkv ? Math.max(0, j0 - pastLen) * g : rows;
    costs.push(perWg * Math.ceil((rows - begin) / rowTile) * rowTile * pairFlops);
  }
  return costs;
}

/**
 * Consecutive slices [first, end) of a linear grid of `repeats * costs.length` workgroups, where
 * workgroup w runs costs[w % costs.length] FLOPs: as few slices as keep each at most `maxFlops`
 * (a workgroup over the bound alone gets a slice of its own: a workgroup cannot be split).
 */
export function sliceGrid(repeats: number, costs: readonly number[], maxFlops: number): { first: number; end: number; flops: number }[] {
  const period = costs.length;
  const total = repeats * period;
  const sum = costs.reduce((s, c) => s + c, 0) * repeats;
  if (sum <= maxFlops || total <= 1) return [{ first: 0, end: total, flops: sum }];
  const slices: { first: number; end: number; flops: number }[] = [];
  let first = 0;
  let flops = 0;
  for (let w = 0; w < total; w++) {
    const c = costs[w % period]!;
    if (w > first && flops + c > maxFlops) {
      slices.push({ first, end: w, flops });
      first = w;
      flops = 0;
    }
    flops += c;
  }
  slices.push({ first, end: total, flops });
  return slices;
}

/**
 * Encodes a pass as one dispatch per `sliceGrid` slice. The kernel's params get the slice as two
 * trailing u32 (wg_first, wg_end) after `params`' used words (`rangeAt` bytes); the largest
 * slice's FLOPs go to the context's counters (maxAttentionFlops, for bench/step-accounting.ts).
 */
function dispatchSliced(
  batch: CommandBatch,
  d: Omit<Dispatch, 'groups' | 'params'> & { params: Uint8Array<ArrayBuffer>; rangeAt?: number },
  repeats: number,
  costs: readonly number[],
  maxFlops: number,
): void {
  const at = d.rangeAt ?? RANGE_AT;
  const counters = batch.ctx.counters;
  for (const s of sliceGrid(repeats, costs, maxFlops)) {
    if (s.end === s.first) continue;
    const params = new Uint8Array(Math.max(d.params.byteLength, Math.ceil((at + 8) / 16) * 16));
    params.set(d.params.subarray(0, at));
    const view = new DataView(params.buffer);
    view.setUint32(at, s.first, true);
    view.setUint32(at + 4, s.end, true);
    batch.dispatch({ kernel: d.kernel, params, buffers: d.buffers, groups: splitGroups(s.end - s.first) });
    counters.maxAttentionFlops = Math.max(counters.maxAttentionFlops, s.flops);
  }
}

/** Bytes of the shared Params fields before wg_first (attention.wgsl, attention_flash.wgsl). */
const RANGE_AT = 40;

/**
 * Split-KV decode: batch * heads * chunks workgroups write partial softmaxes into a scratch
 * tensor from the pool (batch * heads * chunks * (headDim + 4) floats), a second dispatch merges
 * them into out and lse. The scratch goes back to the pool once both are encoded: dispatches of
 * one queue run in order, so a later user of the buffer writes it after the combine read it.
 */
function splitKvForward(batch: CommandBatch, a: AttentionForwardArgs, r: Resolved, options: AttentionForwardOptions, maxFlops: number): void {
  const op = 'attention forward (split-KV decode)';
  if (r.tq !== 1) throw new Error(`${op}: path 'split' takes one query token per sequence (tq = 1, got tq ${r.tq}); use 'flash' or 'tiled'`);
  const D4 = flashTiles(a.headDim).D4;
  const chunk = options.chunk ?? chosenPaths.get(batch.ctx)?.chunk ?? decodeChunk(a.batchSize, a.nHeads, r.tkv);
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > DECODE_CHUNK_MAX)
    throw new Error(`${op}: chunk ${chunk} must be an integer in [1, ${DECODE_CHUNK_MAX}]`);
  const reduce = options.reduce ?? defaultDecodeReduce(batch.ctx);
  if (reduce === 'subgroups' && !batch.ctx.features.has('subgroups'))
    throw new Error(`${op}: reduce 'subgroups' needs the adapter feature 'subgroups', which this device lacks; use 'workgroup'`);
  const nChunks = Math.ceil(r.tkv / chunk);
  const rowsBH = a.batchSize * a.nHeads;
  const params = new Uint8Array(64);
  params.set(r.params.subarray(0, 40));
  const view = new DataView(params.buffer);
  view.setUint32(40, chunk, true);
  view.setUint32(44, nChunks, true);
  const part = batch.ctx.tensor([rowsBH * nChunks, D4 + 1, 4], 'f32', 'attention split-KV partials');
  try {
    // A chunk's workgroup: q.k and p v over its keys; a combine invocation: a vec4 FMA per chunk.
    const partial = { kernel: decodeKernel('decode_partial', reduce, D4), params, rangeAt: DECODE_RANGE_AT, buffers: [a.q, a.k, a.v, r.mask, part] };
    dispatchSliced(batch, partial, rowsBH * nChunks, [chunk * 4 * a.headDim], maxFlops);
    const combine = { kernel: decodeKernel('decode_combine', reduce, D4), params, rangeAt: DECODE_RANGE_AT, buffers: [part, a.out, a.lse] };
    dispatchSliced(batch, combine, Math.ceil((rowsBH * D4) / DECODE_WG), [DECODE_WG * nChunks * 8], maxFlops);
  } finally {
    part.release();
  }
}

/**
 * How the backward's dk/dv and dq passes run: `tiled` (workgroup tiles and barriers, any head
 * dim), `rows` (one invocation per key, then per query row; no barriers; for CPU adapters) or
 * `flash` (one key, then one query row, per invocation in vec4 registers, the other side in vec4
 * workgroup tiles; for GPUs). `rows` and `flash` need head dims a multiple of 4.
 */
export type AttentionDqPath = 'tiled' | 'rows' | 'flash';
const ROWS_WG = 64;

/**
 * The passes `attentionBackward` take by default: `rows` on CPU adapters (a barrier costs ~1 ms
 * there), `flash` on GPUs once the self-test proved it on this context, else `tiled`.
 */
export function defaultDqPath(ctx: GpuContext, headDim: number): AttentionDqPath {
  const forced = chosenPaths.get(ctx)?.backward;
  if (forced) return forced;
  if (headDim % 4) return 'tiled';
  if (ctx.adapter.isFallback) return 'rows';
  return isProven(ctx, ATTENTION_PATHS.flash) ? 'flash' : 'tiled';
}

/** dq, dk, dv from dOut, recomputing the probabilities from q, k and lse (three passes, each cut at the watchdog bound). */
export function attentionBackward(batch: CommandBatch, a: AttentionBackwardArgs, options: { dqPath?: AttentionDqPath; maxDispatchFlops?: number } = {}): void {
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
  const dqPath = options.dqPath ?? defaultDqPath(batch.ctx, a.headDim);
  if (dqPath !== 'tiled' && a.headDim % 4) throw new Error(`${op}: the ${dqPath} passes need headDim a multiple of 4 (headDim ${a.headDim}); use dqPath 'tiled'`);
  const maxFlops = checkMaxFlops(op, options.maxDispatchFlops);
  const grids = backwardGrids(dqPath, gridDims(a, r));
  const kvBuffers = [a.q, a.k, a.v, r.mask, a.dOut, a.dq, a.dk, a.dv];
  const qBuffers = [a.q, a.k, a.v, r.mask, a.dOut, a.out, a.lse, a.dq];
  const deltaBuffers = [a.out, a.dOut, a.lse, a.dq];
  // The flash passes sum delta = dout . out in the vec4 order of their dout . v (exact zeros).
  const t = dqPath === 'flash' ? flashTiles(a.headDim) : null;
  const kernels =
    t !== null
      ? { delta: flashKernel('flash_backward_delta', t), kv: flashKernel('flash_backward_kv', t), q: flashKernel('flash_backward_q', t) }
      : {
          delta: { name: 'attention', code, entryPoint: 'attention_backward_delta', constants: { WG: DELTA_WG } },
          kv: dqPath === 'rows' ? { name: 'attention', code, entryPoint: 'attention_backward_kv_rows', constants: { RW: ROWS_WG } } : kernel('attention_backward_kv', r.tiles.backwardKv),
          q: dqPath === 'rows' ? { name: 'attention', code, entryPoint: 'attention_backward_q_rows', constants: { RW: ROWS_WG } } : kernel('attention_backward_q', r.tiles.backwardQ),
        };
  dispatchSliced(batch, { kernel: kernels.delta, params: r.params, buffers: deltaBuffers }, grids.delta.repeats, grids.delta.costs, maxFlops);
  dispatchSliced(batch, { kernel: kernels.kv, params: r.params, buffers: kvBuffers }, grids.kv.repeats, grids.kv.costs, maxFlops);
  dispatchSliced(batch, { kernel: kernels.q, params: r.params, buffers: qBuffers }, grids.q.repeats, grids.q.costs, maxFlops);
}
