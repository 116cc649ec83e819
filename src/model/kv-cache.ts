// Generation with a KV cache: run the decoder on new tokens only, attending to the keys and
// values of everything before them.
//
//   const cache = createKvCache(model, { batchSize: B, capacity: 512 });
//   appendTokens(model, cache, { ids, mask, tokens: Tp }, { lora });  // prefill: [B, Tp], left-padded
//   const logits = await readLogits(model, cache);                    // [B, V] f32, last position of each row
//   appendTokens(model, cache, { ids: next, tokens: 1 }, { lora });   // decode step: one token per row
//
// Greedy decoding keeps the choice on the GPU (shaders/sampling.wgsl argmax_rows):
//   let ids = await readGreedyIds(model, cache);                        // after the prefill: B ids
//   ids = await appendAndReadGreedy(model, cache, { ids, tokens: 1 });  // a decode step: one submit
//                                                                       // and a 4·B-byte readback
//   ... cache.length positions are filled; cache.release() when done.
//
// Sharing a prefill: prefill P distinct prompts once in a [P, Tp] cache, then copy each row's
// prompt into a wider cache on the GPU (buffer copies, no recompute) and decode there:
//   copyKvRows(model, prefilled, cache, rows);   // cache row r ← prefilled row rows[r]
//   resetKvCache(cache);                         // empty again, to reuse its buffers
//
// - Every row advances by the same number of positions. Prompts must be LEFT-padded (mask 0 on
//   padding) so each row's last position is its newest real token; RoPE positions follow the
//   mask as in Hugging Face (cumsum(mask) - 1), so padding does not shift them.
// - After each append, cache.hidden [B, H] holds the final-norm hidden state of each row's
//   last new position; computeLogits / readLogits turn it into full-vocab logits [B, V]
//   (fine for a handful of rows; sampling belongs on top of this).
// - The adapter (or none) must be the same for every append of one cache: the cached keys and
//   values depend on it. `lora.enabled = false` generates with the base model.
// - Layout per layer: k, v f32 [B, capacity, nKv, headDim]; mask i32 [B, capacity].
// - appendTokens submits once per layer (prefill). appendAndReadGreedy encodes the whole step,
//   the lm_head, the argmax and the copy of the ids into one chain: one submit, split only where
//   it exceeds MAX_DISPATCHES_PER_BATCH (chain.ts; the demo model's step is one submit, a 16-layer
//   1B step a few). The per-token workspace is allocated on the first append with a given token
//   count and kept until one with another count (prefill, then decode steps).
import { encode } from '../gpu/dtype';
import type { Tensor } from '../gpu/tensor';
import { embeddingForward } from '../engine/embedding';
import { rmsnormForward } from '../engine/rmsnorm';
import { argmaxRows } from '../engine/sampling';
import { checkSequenceLength } from './config';
import { layerActivationsFrom, layerActivationSpecs, type LayerActivations } from './activations';
import { BatchChain } from './chain';
import type { ModelConfig } from './config';
import { encodeLayerForward } from './layer';
import { activeAdapter, type DecoderModel } from './decoder';
import { lmHeadLogits } from './lm-head';
import type { LoraAdapters, LoraConfig } from './lora';
import { allocateSpecs, type TensorSpec } from './specs';
import type { WeightLayout } from './weight-layout';

interface StepWorkspace {
  tokens: number;
  rank: number;
  ids: Tensor; // i32 [B·tq]
  positions: Tensor; // i32 [B·tq]
  resid: [Tensor, Tensor]; // f32 [B·tq, H], ping-pong
  layer: LayerActivations;
  last: Tensor; // f32 [B, H]
  release(): void;
}

export interface KvCache {
  batchSize: number;
  capacity: number;
  /** Positions filled so far (the same for every row). */
  length: number;
  k: Tensor[];
  v: Tensor[];
  /** i32 [B, capacity]: 1 real token, 0 padding or not yet written. */
  mask: Tensor;
  /** f32 [B, H]: final-norm hidden state of each row's last appended position. */
  hidden: Tensor;
  /** f32 [B, V]: filled by computeLogits. */
  logits: Tensor;
  /** i32 [B]: the greedy ids of readGreedyIds / appendAndReadGreedy. */
  nextIds: Tensor;
  release(): void;
  /** Host state: the mask as written, and real tokens per row (for positions). */
  hostMask: Int32Array;
  realCount: Int32Array;
  step: StepWorkspace | null;
  // Internal scratch.
  hiddenRstd: Tensor;
  logitsScratch: Tensor | null;
}

export interface KvCacheOptions {
  batchSize: number;
  /** Positions per row: prompt + generated tokens. */
  capacity: number;
}

/** What a cache allocates besides the per-step workspace. */
export function kvCacheSpecs(layout: WeightLayout, o: KvCacheOptions): TensorSpec[] {
  const c = layout.config;
  const B = o.batchSize;
  const kv = [B, o.capacity, c.numKvHeads, c.headDim];
  const specs: TensorSpec[] = [];
  for (let l = 0; l < c.numLayers; l++) specs.push({ name: `k.${l}`, shape: kv, dtype: 'f32' }, { name: `v.${l}`, shape: kv, dtype: 'f32' });
  specs.push(
    { name: 'mask', shape: [B, o.capacity], dtype: 'i32' },
    { name: 'hidden', shape: [B, c.hiddenSize], dtype: 'f32' },
    { name: 'hiddenRstd', shape: [B], dtype: 'f32' },
    { name: 'logits', shape: [B, c.vocabSize], dtype: 'f32' },
    { name: 'nextIds', shape: [B], dtype: 'i32' },
  );
  const lm = layout.lmHeadChunks ?? layout.embedChunks;
  if (lm.length > 1) specs.push({ name: 'logitsScratch', shape: [B * Math.max(...lm.map((ch) => ch.rows))], dtype: 'f32' });
  return specs;
}

/** The per-append workspace for `tokens` new tokens per row. */
export function stepWorkspaceSpecs(c: ModelConfig, batchSize: number, tokens: number, lora: Required<LoraConfig> | null): TensorSpec[] {
  const N = batchSize * tokens;
  return [
    { name: 'ids', shape: [N], dtype: 'i32' },
    { name: 'positions', shape: [N], dtype: 'i32' },
    { name: 'resid.0', shape: [N, c.hiddenSize], dtype: 'f32' },
    { name: 'resid.1', shape: [N, c.hiddenSize], dtype: 'f32' },
    { name: 'last', shape: [batchSize, c.hiddenSize], dtype: 'f32' },
    ...layerActivationSpecs(c, batchSize, tokens, lora, true),
  ];
}

export function createKvCache(model: DecoderModel, o: KvCacheOptions): KvCache {
  checkSequenceLength(model.config, o.capacity, 'a generation cache');
  for (const [k, v] of Object.entries(o)) if (!Number.isInteger(v) || v < 1) throw new Error(`kv cache: ${k} ${v} must be a positive integer`);
  const t = allocateSpecs<string>(model.ctx, kvCacheSpecs(model.layout, o), 'kv cache ');
  const L = model.config.numLayers;
  const batch = model.ctx.batch('kv cache init');
  batch.clear(t.mask!);
  batch.submit();
  const cache: KvCache = {
    batchSize: o.batchSize,
    capacity: o.capacity,
    length: 0,
    k: Array.from({ length: L }, (_, l) => t[`k.${l}`]!),
    v: Array.from({ length: L }, (_, l) => t[`v.${l}`]!),
    mask: t.mask!,
    hidden: t.hidden!,
    logits: t.logits!,
    nextIds: t.nextIds!,
    hostMask: new Int32Array(o.batchSize * o.capacity),
    realCount: new Int32Array(o.batchSize),
    step: null,
    hiddenRstd: t.hiddenRstd!,
    logitsScratch: t.logitsScratch ?? null,
    release() {
      for (const x of Object.values(t)) x.release();
      cache.step?.release();
      cache.step = null;
    },
  };
  return cache;
}

function stepWorkspace(model: DecoderModel, cache: KvCache, tokens: number, lora: LoraAdapters | null): StepWorkspace {
  const rank = lora?.config.rank ?? 0;
  if (cache.step && cache.step.tokens === tokens && (rank === 0 || cache.step.rank === rank)) return cache.step;
  cache.step?.release();
  const loraShape = lora ? { rank, alpha: lora.config.alpha, targets: lora.config.targets } : null;
  const t = allocateSpecs<string>(model.ctx, stepWorkspaceSpecs(model.config, cache.batchSize, tokens, loraShape), 'decode ');
  const layer = layerActivationsFrom(t, loraShape, true);
  cache.step = {
    tokens,
    rank,
    ids: t.ids!,
    positions: t.positions!,
    resid: [t['resid.0']!, t['resid.1']!],
    layer,
    last: t.last!,
    release() {
      for (const x of Object.values(t)) x.release();
    },
  };
  return cache.step;
}

export interface AppendInputs {
  /** [B · tokens] token ids. */
  ids: ArrayLike<number>;
  /** [B · tokens] 1 real, 0 padding; default all real. */
  mask?: ArrayLike<number>;
  /** New tokens per row. */
  tokens: number;
}

/** Empties a cache (length 0, every position masked) so its buffers serve another generation. */
export function resetKvCache(cache: KvCache): void {
  cache.length = 0;
  cache.hostMask.fill(0);
  cache.realCount.fill(0);
}

/**
 * Fills the empty cache `dst` with rows of the prefilled `src` (same model): dst row r gets src
 * row rows[r]'s keys and values of every layer, mask, position count and last hidden state, by
 * GPU buffer copies in one submit. dst then stands where src stands: cache.length = src.length.
 */
export function copyKvRows(model: DecoderModel, src: KvCache, dst: KvCache, rows: ArrayLike<number>): void {
  const c = model.config;
  if (dst.length !== 0) throw new Error(`kv cache: copyKvRows needs an empty destination (it holds ${dst.length} positions; resetKvCache it first)`);
  if (rows.length !== dst.batchSize) throw new Error(`kv cache: copyKvRows got ${rows.length} source rows for a destination of ${dst.batchSize} rows`);
  if (src.length > dst.capacity) throw new Error(`kv cache: ${src.length} prefilled positions exceed the destination's capacity ${dst.capacity}`);
  for (let r = 0; r < rows.length; r++)
    if (!Number.isInteger(rows[r]) || rows[r]! < 0 || rows[r]! >= src.batchSize) throw new Error(`kv cache: copyKvRows row ${r} ← ${rows[r]} is not a row of the source (${src.batchSize} rows)`);
  const T = src.length;
  const pos = c.numKvHeads * c.headDim * 4; // bytes per position of one row
  const H = c.hiddenSize * 4;
  const batch = model.ctx.batch('kv copy');
  for (let r = 0; r < rows.length; r++) {
    const s = rows[r]!;
    if (T > 0)
      for (let l = 0; l < c.numLayers; l++) {
        batch.copy(src.k[l]!.buffer, s * src.capacity * pos, dst.k[l]!.buffer, r * dst.capacity * pos, T * pos);
        batch.copy(src.v[l]!.buffer, s * src.capacity * pos, dst.v[l]!.buffer, r * dst.capacity * pos, T * pos);
      }
    batch.copy(src.hidden.buffer, s * H, dst.hidden.buffer, r * H, H);
    dst.hostMask.set(src.hostMask.subarray(s * src.capacity, s * src.capacity + T), r * dst.capacity);
    dst.realCount[r] = src.realCount[s]!;
  }
  batch.submit();
  model.ctx.writeBytes(dst.mask, encode(dst.hostMask, 'i32'));
  dst.length = T;
}

/** Run the model on `tokens` new positions per row (prefill or a decode step); see the file comment. */
export function appendTokens(model: DecoderModel, cache: KvCache, x: AppendInputs, options: { lora?: LoraAdapters | null } = {}): void {
  const chain = new BatchChain(model.ctx, 'decode');
  encodeAppend(model, cache, x, options, chain, true);
  chain.submit();
}

/** Encodes an append into `chain` (submitting after each layer when `perLayer`); see appendTokens. */
function encodeAppend(model: DecoderModel, cache: KvCache, x: AppendInputs, options: { lora?: LoraAdapters | null }, chain: BatchChain, perLayer: boolean): void {
  const { ctx, config: c, weights } = model;
  const lora = activeAdapter(options.lora);
  const B = cache.batchSize;
  const tq = x.tokens;
  const N = B * tq;
  if (!Number.isInteger(tq) || tq < 1) throw new Error(`kv cache: tokens ${tq} must be a positive integer`);
  if (cache.length + tq > cache.capacity)
    throw new Error(`kv cache: ${cache.length} + ${tq} positions exceed the capacity ${cache.capacity}`);
  if (x.ids.length !== N) throw new Error(`kv cache: ids has ${x.ids.length} values, expected B·tokens = ${B}·${tq}`);
  if (x.mask && x.mask.length !== N) throw new Error(`kv cache: mask has ${x.mask.length} values, expected ${N}`);
  for (let i = 0; i < N; i++)
    if (!Number.isInteger(x.ids[i]) || x.ids[i]! < 0 || x.ids[i]! >= c.vocabSize) throw new Error(`kv cache: ids[${i}] = ${x.ids[i]} is not a token id`);
  const ws = stepWorkspace(model, cache, tq, lora);
  const pastLen = cache.length;

  // Positions continue each row's count of real tokens (cumsum(mask) - 1, clamped at 0).
  const positions = new Int32Array(N);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < tq; t++) {
      const real = x.mask ? (x.mask[b * tq + t] ? 1 : 0) : 1;
      cache.realCount[b]! += real;
      positions[b * tq + t] = Math.max(0, cache.realCount[b]! - 1);
      cache.hostMask[b * cache.capacity + pastLen + t] = real;
    }
  ctx.writeBytes(ws.ids, encode(x.ids, 'i32'));
  ctx.writeBytes(ws.positions, encode(positions, 'i32'));
  ctx.writeBytes(cache.mask, encode(cache.hostMask, 'i32'));

  for (const ch of weights.embed.chunks) embeddingForward(chain.batch, { out: ws.resid[0], ids: ws.ids, table: ch.tensor, rowStart: ch.rowStart });
  let cur = 0;
  for (let l = 0; l < c.numLayers; l++) {
    const pass = {
      model,
      layer: l,
      lora,
      acts: ws.layer,
      batchSize: B,
      tq,
      positions: ws.positions,
      mask: cache.mask,
      cache: { k: cache.k[l]!, v: cache.v[l]!, pastLen, capacity: cache.capacity },
    };
    encodeLayerForward(chain.batch, pass, ws.resid[cur]!, ws.resid[1 - cur]!);
    cur = 1 - cur;
    if (perLayer) chain.submit();
  }
  const H = c.hiddenSize;
  const batch = chain.batch;
  for (let b = 0; b < B; b++) batch.copy(ws.resid[cur]!.buffer, (b * tq + tq - 1) * H * 4, ws.last.buffer, b * H * 4, H * 4);
  rmsnormForward(batch, { y: cache.hidden, rstd: cache.hiddenRstd, x: ws.last, w: weights.finalNorm, eps: c.rmsNormEps });
  cache.length += tq;
}

/** cache.logits [B, V] = cache.hidden · lm_headᵀ (submitted; no readback). */
export function computeLogits(model: DecoderModel, cache: KvCache): void {
  const chain = new BatchChain(model.ctx, 'logits');
  lmHeadLogits(chain, cache.hidden, model.weights.lmHead, cache.logits, cache.logitsScratch);
  chain.submit();
}

/** computeLogits, then read [B · V] f32 back. */
export async function readLogits(model: DecoderModel, cache: KvCache): Promise<Float32Array> {
  computeLogits(model, cache);
  return model.ctx.readF32(cache.logits);
}

/** Encodes lm_head + argmax of the cache's hidden state and the copy of the ids to a mappable buffer. */
function encodeGreedy(model: DecoderModel, cache: KvCache, chain: BatchChain): GPUBuffer {
  lmHeadLogits(chain, cache.hidden, model.weights.lmHead, cache.logits, cache.logitsScratch);
  const batch = chain.batch;
  argmaxRows(batch, { logits: cache.logits, ids: cache.nextIds, rows: cache.batchSize, cols: model.config.vocabSize });
  return batch.copyToReadable(cache.nextIds.buffer, 0, cache.batchSize * 4);
}

/**
 * Waits for the ids copied into `staging`. A row whose logits hold NaN or +Inf comes back as -1:
 * the caller must then fall back to the host sampler (readLogits), which reports the bad value.
 */
async function readIds(model: DecoderModel, staging: GPUBuffer, B: number): Promise<Int32Array> {
  try {
    await staging.mapAsync(GPUMapMode.READ);
    const ids = new Int32Array(staging.getMappedRange(0, B * 4).slice(0));
    staging.unmap();
    return ids;
  } finally {
    staging.destroy();
    await model.ctx.flush();
  }
}

/** Greedy ids [B] of the cache's last positions (lm_head + argmax on the GPU): one submit, 4·B bytes read back. */
export async function readGreedyIds(model: DecoderModel, cache: KvCache): Promise<Int32Array> {
  const chain = new BatchChain(model.ctx, 'greedy');
  const staging = encodeGreedy(model, cache, chain);
  chain.submit();
  return readIds(model, staging, cache.batchSize);
}

/**
 * appendTokens, then readGreedyIds, encoded as one step: a single submit (split only where the
 * step exceeds the uniform arena's dispatches) and a 4·B-byte readback.
 */
export async function appendAndReadGreedy(model: DecoderModel, cache: KvCache, x: AppendInputs, options: { lora?: LoraAdapters | null } = {}): Promise<Int32Array> {
  const chain = new BatchChain(model.ctx, 'decode');
  encodeAppend(model, cache, x, options, chain, false);
  const staging = encodeGreedy(model, cache, chain);
  chain.submit();
  return readIds(model, staging, cache.batchSize);
}
