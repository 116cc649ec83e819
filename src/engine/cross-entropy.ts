// Vocabulary-chunked cross-entropy: the lm_head + loss of a Llama (vocab 128,256) without ever
// materialising [tokens x vocab] logits, and the per-sequence log-prob sums DPO needs.
//
// Chunk kernels (shaders/cross_entropy.wgsl):
//   ceChunkForward       fold a logits chunk [T, Vc] into the running (max, Σexp, target logit) state
//   ceFinalize           lse = m + log(s), logp = target logit - lse (0 for ignored targets)
//   ceChunkBackward      dlogits = (softmax - onehot(target)) · scale · rowScale[row], recomputed
//                        from the logits chunk and lse (in place or into a separate buffer)
//   sequenceLogProbSums  Σ logp per sequence over counted tokens, with counts; and its backward
//
// Drivers: lmHeadCrossEntropyForward / lmHeadCrossEntropyBackward loop over vocab chunks with
// the shared matmul (logits chunk = hidden · W[v0:v0+Vc]ᵀ, dHidden += dlogits · W[v0:v0+Vc]).
//
// Conventions: targets are i32 [T] with -100 = ignore (any other value must lie in [0, V); an
// out-of-range target gives logp = NaN). The per-token loss is -logp; mean CE over N counted
// tokens is -Σlogp / N (sequenceLogProbSums with B = 1 gives both), and its gradient is the
// backward with scale = 1/N. For a loss L(logp), pass rowScale[t] = -dL/dlogp[t].
import code from '../../shaders/cross_entropy.wgsl?raw';
import { splitGroups, type CommandBatch } from '../gpu/batch';
import type { GpuContext } from '../gpu/context';
import { packParams } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32, expectShape, expectSize } from './checks';
import { MATMUL_B_DTYPES, matmul } from './matmul';

export const IGNORE_INDEX = -100;
/** Floats of per-row state: running max, running Σexp, target logit, target-found flag. */
export const CE_STATE_WIDTH = 4;

const WG = 256;
const kernel = (entryPoint: string) => ({ name: 'cross_entropy', code, entryPoint, constants: { WG } });

function params(rows: number, cols: number, v0 = 0, flag = 0, scale = 1): Uint8Array<ArrayBuffer> {
  return packParams([{ u32: rows }, { u32: cols }, { u32: v0 }, { u32: flag }, { f32: scale }]);
}

function expectAtLeast(op: string, t: Tensor, n: number): void {
  if (t.size < n) throw new Error(`${op}: ${t.label} has ${t.size} elements, needs at least ${n}`);
}

function expectCount(op: string, what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${op}: ${what} must be a positive integer, got ${n}`);
}

// ---------------------------------------------------------------------------------------------
// Chunk kernels

export interface CeChunkForwardArgs {
  /** Logits of vocab ids [v0, v0 + cols): row-major [rows, cols] at the start of the buffer. */
  logits: Tensor;
  /** i32 [T]; -100 = ignore. */
  targets: Tensor;
  /** f32 [T, 4] running state; written (not read) when `first`. */
  state: Tensor;
  /** First vocab id of the chunk. */
  v0: number;
  /** Chunk width (row stride of `logits`); defaults to logits.shape[1]. */
  cols?: number;
  /** True for the first chunk of a pass: overwrite the state instead of merging into it. */
  first: boolean;
}

/** Online log-sum-exp update of the per-row state with one logits chunk. */
export function ceChunkForward(batch: CommandBatch, a: CeChunkForwardArgs): void {
  const op = 'ce_chunk_forward';
  expectF32(op, a.logits, a.state);
  expectDTypes(op, ['i32'], a.targets);
  const T = a.targets.size;
  const cols = a.cols ?? a.logits.shape[1] ?? 0;
  expectCount(op, 'cols', cols);
  expectCount(op, 'T', T);
  if (!Number.isInteger(a.v0) || a.v0 < 0) throw new Error(`${op}: v0 must be a non-negative integer, got ${a.v0}`);
  expectAtLeast(op, a.logits, T * cols);
  expectShape(op, a.state, [T, CE_STATE_WIDTH]);
  batch.dispatch({
    kernel: kernel('ce_chunk_forward'),
    params: params(T, cols, a.v0, a.first ? 1 : 0),
    buffers: [a.targets, a.logits, a.state],
    groups: splitGroups(T),
  });
}

export interface CeFinalizeArgs {
  state: Tensor;
  targets: Tensor;
  /** f32 [T] out: log Σ_v exp(logit), for every row. */
  lse: Tensor;
  /** f32 [T] out: log p(target) (0 for ignored rows, NaN for an out-of-range target). */
  logp: Tensor;
}

export function ceFinalize(batch: CommandBatch, a: CeFinalizeArgs): void {
  const op = 'ce_finalize';
  expectF32(op, a.state, a.lse, a.logp);
  expectDTypes(op, ['i32'], a.targets);
  const T = a.targets.size;
  expectCount(op, 'T', T);
  expectShape(op, a.state, [T, CE_STATE_WIDTH]);
  expectSize(op, a.lse, T);
  expectSize(op, a.logp, T);
  batch.dispatch({
    kernel: kernel('ce_finalize'),
    params: params(T, 0),
    buffers: [a.targets, a.state, a.lse, a.logp],
    groups: splitGroups(Math.ceil(T / WG)),
  });
}

export interface CeChunkBackwardArgs {
  /** Logits chunk [rows, cols] for vocab ids [v0, v0 + cols) (recomputed by the caller). */
  logits: Tensor;
  /** Output [rows, cols]; omit (or pass `logits`) to overwrite the logits in place. */
  dlogits?: Tensor;
  targets: Tensor;
  /** f32 [T] from ceFinalize. */
  lse: Tensor;
  /** Optional f32 [T] per-row weight (e.g. -dL/dlogp for DPO); omitted = all ones. */
  rowScale?: Tensor;
  /** Uniform factor (e.g. 1/numTargetTokens for mean CE); default 1. */
  scale?: number;
  v0: number;
  cols?: number;
}

/** dlogits = (softmax(logits) - onehot(target)) · scale · rowScale[row]; 0 on ignored rows. */
export function ceChunkBackward(batch: CommandBatch, a: CeChunkBackwardArgs): void {
  const op = 'ce_chunk_backward';
  const inPlace = !a.dlogits || a.dlogits === a.logits;
  expectF32(op, a.logits, a.lse, ...(a.dlogits ? [a.dlogits] : []), ...(a.rowScale ? [a.rowScale] : []));
  expectDTypes(op, ['i32'], a.targets);
  const T = a.targets.size;
  const cols = a.cols ?? a.logits.shape[1] ?? 0;
  expectCount(op, 'cols', cols);
  expectCount(op, 'T', T);
  if (!Number.isInteger(a.v0) || a.v0 < 0) throw new Error(`${op}: v0 must be a non-negative integer, got ${a.v0}`);
  expectAtLeast(op, a.logits, T * cols);
  if (a.dlogits) expectAtLeast(op, a.dlogits, T * cols);
  if (!inPlace && a.dlogits!.buffer === a.logits.buffer)
    throw new Error(`${op}: ${a.dlogits!.label} aliases ${a.logits.label}; pass the same tensor for in place`);
  expectSize(op, a.lse, T);
  if (a.rowScale) expectSize(op, a.rowScale, T);
  const entry = `ce_chunk_backward${a.rowScale ? '' : '_uniform'}${inPlace ? '_inplace' : ''}`;
  const buffers: Tensor[] = [a.targets, a.logits, a.lse];
  if (a.rowScale) buffers.push(a.rowScale);
  if (!inPlace) buffers.push(a.dlogits!);
  batch.dispatch({
    kernel: kernel(entry),
    params: params(T, cols, a.v0, 0, a.scale ?? 1),
    buffers,
    groups: splitGroups(Math.ceil((T * cols) / WG)),
  });
}

// ---------------------------------------------------------------------------------------------
// Per-sequence sums (DPO: Σ log π(y|x) over response tokens)

/** 'labels': i32 labels, counted where != -100; 'mask': i32/u32 0/1 mask, counted where != 0. */
export type MaskKind = 'labels' | 'mask';

export interface SequenceLogProbSumsArgs {
  /** f32 [B·T] per-token log-probs (ceFinalize's logp). */
  logp: Tensor;
  /** i32 or u32 [B·T], read according to `kind`. */
  mask: Tensor;
  kind?: MaskKind;
  /** Tokens per sequence T; B = logp.size / T. */
  seqLen: number;
  /** f32 [B] out: Σ logp over counted tokens. */
  sums: Tensor;
  /** f32 [B] out: number of counted tokens. */
  counts: Tensor;
}

export function sequenceLogProbSums(batch: CommandBatch, a: SequenceLogProbSumsArgs): void {
  const op = 'seq_logp_sum';
  expectF32(op, a.logp, a.sums, a.counts);
  expectDTypes(op, ['i32', 'u32'], a.mask);
  const B = seqCount(op, a.logp, a.seqLen);
  expectSize(op, a.mask, a.logp.size);
  expectSize(op, a.sums, B);
  expectSize(op, a.counts, B);
  batch.dispatch({
    kernel: kernel('seq_logp_sum'),
    params: params(B, a.seqLen, 0, maskFlag(a.kind)),
    buffers: [a.mask, a.logp, a.sums, a.counts],
    groups: splitGroups(B),
  });
}

export interface SequenceLogProbSumsBackwardArgs {
  /** f32 [B] upstream gradient dL/dsums. */
  dSums: Tensor;
  mask: Tensor;
  kind?: MaskKind;
  seqLen: number;
  /** f32 [B·T] out: scale · dSums[b] on counted tokens, 0 elsewhere. */
  dLogp: Tensor;
  /** Use -1 to produce the `rowScale` of ceChunkBackward / lmHeadCrossEntropyBackward directly. */
  scale?: number;
}

export function sequenceLogProbSumsBackward(batch: CommandBatch, a: SequenceLogProbSumsBackwardArgs): void {
  const op = 'seq_logp_sum_backward';
  expectF32(op, a.dSums, a.dLogp);
  expectDTypes(op, ['i32', 'u32'], a.mask);
  const B = seqCount(op, a.dLogp, a.seqLen);
  expectSize(op, a.mask, a.dLogp.size);
  expectSize(op, a.dSums, B);
  batch.dispatch({
    kernel: kernel('seq_logp_sum_backward'),
    params: params(B, a.seqLen, 0, maskFlag(a.kind), a.scale ?? 1),
    buffers: [a.mask, a.dSums, a.dLogp],
    groups: splitGroups(Math.ceil((B * a.seqLen) / WG)),
  });
}

function maskFlag(kind: MaskKind = 'labels'): number {
  return kind === 'mask' ? 1 : 0;
}

function seqCount(op: string, t: Tensor, seqLen: number): number {
  expectCount(op, 'seqLen', seqLen);
  if (t.size % seqLen) throw new Error(`${op}: ${t.label} has ${t.size} elements, not a multiple of seqLen ${seqLen}`);
  return t.size / seqLen;
}

// ---------------------------------------------------------------------------------------------
// lm_head + cross-entropy drivers

export interface LmHeadWorkspace {
  tokens: number;
  chunkSize: number;
  /**
   * f32 [tokens · chunkSize], flat: one logits chunk, packed [tokens, Vc] for the chunk's width
   * Vc (the last chunk may be narrower), so it is 1-D and the ops are given their dims.
   */
  logits: Tensor;
  /** f32 [tokens, 4]: online log-sum-exp state. */
  state: Tensor;
  release(): void;
}

/**
 * Scratch for the chunked lm_head: tokens × chunkSize × 4 bytes of logits plus 16 bytes a token.
 * Keep it alive until the batches that use it are submitted.
 */
export function createLmHeadWorkspace(ctx: GpuContext, tokens: number, chunkSize: number): LmHeadWorkspace {
  expectCount('lm_head workspace', 'tokens', tokens);
  expectCount('lm_head workspace', 'chunkSize', chunkSize);
  const logits = ctx.tensor([tokens * chunkSize], 'f32', 'lm_head logits chunk');
  const state = ctx.tensor([tokens, CE_STATE_WIDTH], 'f32', 'lm_head lse state');
  return {
    tokens,
    chunkSize,
    logits,
    state,
    release() {
      logits.release();
      state.release();
    },
  };
}

/**
 * The largest chunk (a multiple of 256, at most the vocab) whose logits fit `maxBytes`, so the
 * workspace stays bounded whatever the token count.
 */
export function chooseChunkSize(tokens: number, vocab: number, maxBytes = 64 * 1024 * 1024): number {
  const fit = Math.floor(maxBytes / (4 * Math.max(1, tokens)));
  const chunk = Math.max(256, Math.floor(fit / 256) * 256);
  return Math.min(chunk, Math.ceil(vocab / 256) * 256);
}

export interface LmHeadCrossEntropyForwardArgs {
  /** f32 [T, H]: final hidden states (after the last norm). */
  hidden: Tensor;
  /** [V, H] lm_head weight: f32, bf16, f16, or quantized int8/int4 (decoded in the matmul). */
  weight: Tensor;
  /** i32 [T]; -100 = ignore. */
  targets: Tensor;
  /** f32 [T] out. */
  lse: Tensor;
  /** f32 [T] out: log p(target); 0 for ignored rows. */
  logp: Tensor;
  workspace: LmHeadWorkspace;
}

interface Dims {
  T: number;
  H: number;
  V: number;
}

function lmHeadDims(op: string, hidden: Tensor, weight: Tensor, targets: Tensor, ws: LmHeadWorkspace): Dims {
  expectF32(op, hidden);
  expectDTypes(op, MATMUL_B_DTYPES.nt, weight);
  expectDTypes(op, ['i32'], targets);
  if (hidden.shape.length !== 2) throw new Error(`${op}: ${hidden.label} has shape [${hidden.shape.join(', ')}], expected [T, H]`);
  const [T, H] = hidden.shape as [number, number];
  if (weight.shape.length !== 2) throw new Error(`${op}: ${weight.label} has shape [${weight.shape.join(', ')}], expected [V, H]`);
  expectShape(op, weight, [null, H]);
  expectSize(op, targets, T);
  if (ws.tokens !== T) throw new Error(`${op}: workspace is for ${ws.tokens} tokens, ${hidden.label} has ${T}`);
  return { T, H, V: weight.shape[0]! };
}

function* chunks(V: number, chunkSize: number): Generator<[number, number]> {
  for (let v0 = 0; v0 < V; v0 += chunkSize) yield [v0, Math.min(chunkSize, V - v0)];
}

/** lse and logp of hidden · weightᵀ, one vocab chunk at a time (2 dispatches + 1 matmul a chunk). */
export function lmHeadCrossEntropyForward(batch: CommandBatch, a: LmHeadCrossEntropyForwardArgs): void {
  const op = 'lm_head cross-entropy forward';
  const { T, H, V } = lmHeadDims(op, a.hidden, a.weight, a.targets, a.workspace);
  const ws = a.workspace;
  for (const [v0, Vc] of chunks(V, ws.chunkSize)) {
    matmul(batch, { a: a.hidden, b: a.weight, out: ws.logits, layout: 'nt', bOffset: v0 * H, m: T, n: Vc, k: H });
    ceChunkForward(batch, { logits: ws.logits, targets: a.targets, state: ws.state, v0, cols: Vc, first: v0 === 0 });
  }
  ceFinalize(batch, { state: ws.state, targets: a.targets, lse: a.lse, logp: a.logp });
}

export interface LmHeadCrossEntropyBackwardArgs {
  hidden: Tensor;
  weight: Tensor;
  targets: Tensor;
  /** f32 [T] from lmHeadCrossEntropyForward. */
  lse: Tensor;
  /** Optional f32 [T] per-row weight; omitted = all ones. */
  rowScale?: Tensor;
  /** Uniform factor, e.g. 1/numTargetTokens for mean CE; default 1. */
  scale?: number;
  /** f32 [T, H] out: dHidden += d/dhidden Σ_t scale·rowScale[t]·(-logp[t]). */
  dHidden: Tensor;
  /** Default true; false overwrites dHidden. */
  accumulate?: boolean;
  workspace: LmHeadWorkspace;
}

/**
 * Gradient of Σ_t scale · rowScale[t] · (-logp[t]) with respect to hidden: per vocab chunk,
 * recompute the logits, turn them into dlogits in place, and accumulate dlogits · W_chunk.
 * The lm_head weight is treated as frozen (no dWeight).
 */
export function lmHeadCrossEntropyBackward(batch: CommandBatch, a: LmHeadCrossEntropyBackwardArgs): void {
  const op = 'lm_head cross-entropy backward';
  const { T, H, V } = lmHeadDims(op, a.hidden, a.weight, a.targets, a.workspace);
  expectF32(op, a.dHidden);
  expectShape(op, a.dHidden, [T, H]);
  const ws = a.workspace;
  for (const [v0, Vc] of chunks(V, ws.chunkSize)) {
    matmul(batch, { a: a.hidden, b: a.weight, out: ws.logits, layout: 'nt', bOffset: v0 * H, m: T, n: Vc, k: H });
    ceChunkBackward(batch, {
      logits: ws.logits,
      targets: a.targets,
      lse: a.lse,
      ...(a.rowScale ? { rowScale: a.rowScale } : {}),
      scale: a.scale ?? 1,
      v0,
      cols: Vc,
    });
    matmul(batch, {
      a: ws.logits,
      b: a.weight,
      out: a.dHidden,
      layout: 'nn',
      bOffset: v0 * H,
      accumulate: (a.accumulate ?? true) || v0 > 0,
      m: T,
      n: Vc,
      k: H,
    });
  }
}
