// lm_head over a row-chunked weight (the vocabulary may span several tensors; tied to the
// embedding or not), without materialising [tokens × vocab]: vocab chunks of at most `chunk`
// rows, each inside one weight tensor, run through the chunk kernels of
// src/engine/cross-entropy.ts. Also full-vocab logits for the few rows generation needs.
import type { Tensor } from '../gpu/tensor';
import { ceChunkBackward, ceChunkForward, ceFinalize } from '../engine/cross-entropy';
import { matmul } from '../engine/matmul';
import type { BatchChain } from './chain';
import type { ChunkRange } from './weight-layout';
import type { RowChunkedTensor } from './weights';

/** A vocab chunk: rows [local, local + cols) of weight part `part`, global ids from v0. */
export interface VocabChunkRange {
  part: number;
  local: number;
  v0: number;
  cols: number;
}

interface VocabChunk extends VocabChunkRange {
  /** The weight tensor holding the chunk (rows from `local`). */
  tensor: Tensor;
}

/**
 * The vocab chunks of a row-chunked weight, in the order the passes below visit them: at most
 * `chunk` rows each, never straddling two weight tensors. Workspaces size kept logits from it.
 */
export function vocabChunkRanges(parts: readonly ChunkRange[], chunk: number): VocabChunkRange[] {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`lm_head: chunk ${chunk} must be a positive integer`);
  const out: VocabChunkRange[] = [];
  for (const [part, c] of parts.entries())
    for (let local = 0; local < c.rows; local += chunk) out.push({ part, local, v0: c.rowStart + local, cols: Math.min(chunk, c.rows - local) });
  return out;
}

function vocabChunks(w: RowChunkedTensor, chunk: number): VocabChunk[] {
  return vocabChunkRanges(w.chunks, chunk).map((r) => ({ ...r, tensor: w.chunks[r.part]!.tensor }));
}

export interface LmHeadPass {
  /** f32 [N, H] final hidden states (after the final norm). */
  hidden: Tensor;
  weight: RowChunkedTensor;
  /** i32 [N]; -100 = ignored. */
  targets: Tensor;
  /** f32, at least N · chunk: one chunk of logits. */
  logits: Tensor;
  /**
   * Logits kept from the forward to the backward (the memory plan's keepLogits): one f32
   * [N · cols] tensor per vocab chunk (vocabChunkRanges order). The forward writes them, the
   * backward turns them into dlogits in place instead of recomputing them; null: one chunk
   * buffer (`logits`), recomputed in the backward.
   */
  kept?: readonly Tensor[] | null;
  /** Vocab rows per chunk. */
  chunk: number;
}

function chunkLogits(p: LmHeadPass, i: number): Tensor {
  if (!p.kept) return p.logits;
  const t = p.kept[i];
  if (!t) throw new Error(`lm_head: no kept logits for vocab chunk ${i} (the workspace keeps ${p.kept.length})`);
  return t;
}

/** lse [N] and logp [N] (0 on ignored rows) of softmax(hidden · Wᵀ), chunk by chunk. */
export function lmHeadForward(chain: BatchChain, p: LmHeadPass & { state: Tensor; lse: Tensor; logp: Tensor }): void {
  const [N, H] = p.hidden.shape as [number, number];
  for (const [i, c] of vocabChunks(p.weight, p.chunk).entries()) {
    const batch = chain.batch;
    const logits = chunkLogits(p, i);
    matmul(batch, { a: p.hidden, b: c.tensor, out: logits, layout: 'nt', bOffset: c.local * H, m: N, n: c.cols, k: H });
    ceChunkForward(batch, { logits, targets: p.targets, state: p.state, v0: c.v0, cols: c.cols, first: c.v0 === 0 });
  }
  ceFinalize(chain.batch, { state: p.state, targets: p.targets, lse: p.lse, logp: p.logp });
}

export interface LmHeadBackwardPass extends LmHeadPass {
  /** f32 [N] from lmHeadForward. */
  lse: Tensor;
  /** Optional f32 [N] per-token weight -dL/dlogp; omitted = all ones. */
  rowScale?: Tensor;
  scale: number;
  /** f32 [N, H], overwritten with dL/dhidden for L = Σ_t scale · rowScale[t] · (-logp[t]). */
  dHidden: Tensor;
  /** Full fine-tuning: the lm_head gradient (chunked like the weight), added to. */
  dWeight?: RowChunkedTensor;
  /** f32 [chunk, H] scratch for gradient slices that do not start a weight tensor. */
  dWChunk?: Tensor | null;
}

/**
 * Per chunk: recompute the logits (unless the forward kept them), turn them into dlogits in
 * place, dHidden += dlogits · W_chunk and, when training lm_head, dW_chunk += dlogitsᵀ · hidden.
 * Kept logits are consumed: a second backward needs a new forward.
 */
export function lmHeadBackward(chain: BatchChain, p: LmHeadBackwardPass): void {
  const [N, H] = p.hidden.shape as [number, number];
  for (const [i, c] of vocabChunks(p.weight, p.chunk).entries()) {
    const batch = chain.batch;
    const logits = chunkLogits(p, i);
    if (!p.kept) matmul(batch, { a: p.hidden, b: c.tensor, out: logits, layout: 'nt', bOffset: c.local * H, m: N, n: c.cols, k: H });
    ceChunkBackward(batch, {
      logits,
      targets: p.targets,
      lse: p.lse,
      ...(p.rowScale ? { rowScale: p.rowScale } : {}),
      scale: p.scale,
      v0: c.v0,
      cols: c.cols,
    });
    matmul(batch, { a: logits, b: c.tensor, out: p.dHidden, layout: 'nn', bOffset: c.local * H, m: N, n: c.cols, k: H, accumulate: c.v0 > 0 });
    if (!p.dWeight) continue;
    const grad = p.dWeight.chunks[c.part]!.tensor;
    const dW = { a: logits, b: p.hidden, layout: 'tn' as const, m: N, n: c.cols, k: H, accumulate: true };
    if (c.local === 0) {
      matmul(batch, { ...dW, out: grad });
    } else {
      // matmul writes from the start of `out`: add through a scratch slice.
      if (!p.dWChunk) throw new Error('lm_head backward: a chunked lm_head gradient needs the dWChunk scratch');
      const bytes = c.cols * H * 4;
      batch.copy(grad.buffer, c.local * H * 4, p.dWChunk.buffer, 0, bytes);
      matmul(batch, { ...dW, out: p.dWChunk });
      batch.copy(p.dWChunk.buffer, 0, grad.buffer, c.local * H * 4, bytes);
    }
  }
}

/**
 * Full-vocab logits out [M, V] = hidden [M, H] · Wᵀ for a few rows (generation). With a
 * chunked weight, each part goes through `scratch` (f32, M · largest part rows) and is copied
 * into its columns row by row.
 */
export function lmHeadLogits(chain: BatchChain, hidden: Tensor, weight: RowChunkedTensor, out: Tensor, scratch: Tensor | null): void {
  const [M, H] = hidden.shape as [number, number];
  const V = weight.rows;
  if (out.size !== M * V) throw new Error(`lm_head logits: ${out.label} has ${out.size} elements, expected ${M}·${V}`);
  for (const c of weight.chunks) {
    const batch = chain.batch;
    if (weight.chunks.length === 1) {
      matmul(batch, { a: hidden, b: c.tensor, out, layout: 'nt', m: M, n: V, k: H });
      continue;
    }
    if (!scratch) throw new Error('lm_head logits: a chunked lm_head needs a scratch buffer');
    matmul(batch, { a: hidden, b: c.tensor, out: scratch, layout: 'nt', m: M, n: c.rows, k: H });
    for (let r = 0; r < M; r++) batch.copy(scratch.buffer, r * c.rows * 4, out.buffer, (r * V + c.rowStart) * 4, c.rows * 4);
  }
}
