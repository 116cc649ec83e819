// Per-sequence log-probabilities: Σ log p(label_t | tokens < t) over the labelled positions of
// each sequence, on the GPU (forward + readSequenceLogProbs), in padded batches. What
// `fuse-studio logprobs` prints and what DPO reference log-probs are.
//
//   const scores = await scoreSequences(model, [{ ids, labels }, …], { lora });
//   scores[i].logprobSum, scores[i].nTokens
//
// Labels follow Hugging Face: aligned to `ids` (labels[t] is ids[t] or -100), the model shifts
// them, so position t's label is predicted from the tokens before t and labels[0] never counts.
// Sequences are batched longest first (so a batch holds similar lengths) and right-padded to the
// batch's longest, rounded up to a multiple of 16; padding contributes nothing. Results come back
// in input order.
import { IGNORE_INDEX } from '../engine/cross-entropy';
import { createTrainWorkspace, type TrainWorkspace } from './activations';
import { forward, readSequenceLogProbs } from './forward';
import { setBatchInputs } from './inputs';
import { activeAdapter, type DecoderModel } from './decoder';
import type { LoraAdapters } from './lora';

export interface LabelledSequence {
  ids: ArrayLike<number>;
  /** Aligned to ids; -100 = not scored. Default: every position from 1 on. */
  labels?: ArrayLike<number>;
}

export interface SequenceScore {
  /** Σ log p over the scored positions (natural log). */
  logprobSum: number;
  /** Number of scored positions. */
  nTokens: number;
}

export interface ScoreOptions {
  /** Adapter to apply; null, omitted or `enabled = false`: the base model. */
  lora?: LoraAdapters | null;
  /** Sequences per forward (default: as many as fit 4096 padded positions, at most 8). */
  batchSize?: number;
  signal?: AbortSignal;
  /** Called after each batch with the number of sequences scored so far. */
  onProgress?: (done: number, total: number) => void;
}

const ROUND = 16;
const TOKEN_BUDGET = 4096;
const MAX_BATCH = 8;

export async function scoreSequences(model: DecoderModel, seqs: readonly LabelledSequence[], o: ScoreOptions = {}): Promise<SequenceScore[]> {
  const V = model.config.vocabSize;
  const maxPos = model.config.maxPositionEmbeddings;
  seqs.forEach((s, i) => {
    if (s.ids.length === 0) throw new Error(`score: sequence ${i} is empty`);
    if (s.ids.length > maxPos) throw new Error(`score: sequence ${i} has ${s.ids.length} tokens, more than max_position_embeddings ${maxPos}`);
    if (s.labels && s.labels.length !== s.ids.length) throw new Error(`score: sequence ${i} has ${s.ids.length} ids but ${s.labels.length} labels`);
    for (let t = 0; t < s.ids.length; t++) {
      const id = s.ids[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`score: sequence ${i} token ${t} = ${id} is not a token id in [0, ${V})`);
      const y = s.labels?.[t];
      if (y !== undefined && y !== IGNORE_INDEX && !(Number.isInteger(y) && y >= 0 && y < V))
        throw new Error(`score: sequence ${i} label ${t} = ${y} is neither -100 nor a token id in [0, ${V})`);
    }
  });
  const out = new Array<SequenceScore>(seqs.length);
  if (seqs.length === 0) return out;
  const lora = activeAdapter(o.lora);
  let ws: TrainWorkspace | null = null;
  let done = 0;
  try {
    for (const { group, seqLen: T } of lengthBatches(seqs.map((x) => x.ids.length), o.batchSize)) {
      o.signal?.throwIfAborted();
      const B = group.length;
      if (!ws || ws.seqLen !== T || ws.batchSize !== B) {
        ws?.release();
        ws = null;
        ws = createTrainWorkspace(model, { batchSize: B, seqLen: T, lora: lora ? lora.config : null, backward: false });
      }
      const ids = new Int32Array(B * T);
      const mask = new Int32Array(B * T);
      const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
      group.forEach((i, b) => {
        const s = seqs[i]!;
        const n = s.ids.length;
        for (let t = 0; t < n; t++) {
          ids[b * T + t] = s.ids[t]!;
          mask[b * T + t] = 1;
          if (t + 1 < n) targets[b * T + t] = s.labels ? s.labels[t + 1]! : s.ids[t + 1]!;
        }
      });
      setBatchInputs(model.ctx, ws, { ids, mask, targets });
      forward(model, ws, { lora });
      const { sums, counts } = await readSequenceLogProbs(model, ws);
      group.forEach((i, b) => (out[i] = { logprobSum: sums[b]!, nTokens: Math.round(counts[b]!) }));
      done += group.length;
      o.onProgress?.(done, seqs.length);
    }
  } finally {
    ws?.release();
  }
  return out;
}

function roundUp(n: number): number {
  return Math.ceil(n / ROUND) * ROUND;
}

/**
 * Batches of sequence indices for padded forwards, longest first so each batch holds similar
 * lengths (results go back in input order by index). A batch takes up to `batchSize` sequences;
 * by default as many as fit the token budget while each needs more than half of the batch's
 * padded length (so padding stays under half of the batch). seqLen: the longest, rounded up to 16.
 */
export function lengthBatches(lengths: readonly number[], batchSize?: number): { group: number[]; seqLen: number }[] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const out: { group: number[]; seqLen: number }[] = [];
  for (let start = 0; start < order.length; ) {
    const T = roundUp(lengths[order[start]!]!);
    const maxB = batchSize ?? Math.max(1, Math.min(MAX_BATCH, Math.floor(TOKEN_BUDGET / T)));
    let B = 1;
    while (B < maxB && start + B < order.length && (batchSize !== undefined || 2 * roundUp(lengths[order[start + B]!]!) > T)) B++;
    out.push({ group: order.slice(start, start + B), seqLen: T });
    start += B;
  }
  return out;
}
