// Reward heads (*ForSequenceClassification with num_labels 1, e.g. Skywork-Reward-V2): the
// decoder and final norm as in forward.ts, then score.weight on the hidden state of each row's
// last token that is not padding (lastTokenIndex: transformers' rule). The pooled rows are copied
// out on the GPU, so one forward reads back B·numLabels floats.
//
//   const rewards = await scoreRewards(model, [ids0, ids1, …]);   // one number per sequence
//
// scoreRewards batches like scoreSequences (score.ts lengthBatches: longest first) and right-pads
// with pad_token_id (so transformers' rule finds the last real token).
import { matmul } from '../engine/matmul';
import { createTrainWorkspace, type TrainWorkspace } from './activations';
import { BatchChain } from './chain';
import { activeAdapter, type DecoderModel } from './decoder';
import { encodeHidden } from './forward';
import { setBatchInputs } from './inputs';
import type { LoraAdapters } from './lora';
import { lastTokenIndex } from './reference';
import { lengthBatches } from './score';

export interface RewardInputs {
  /** [B·T] token ids. */
  ids: ArrayLike<number>;
  /** [B·T] 1 real, 0 padding (left or right). */
  mask: ArrayLike<number>;
}

function expectRewardModel(model: DecoderModel): void {
  if (model.config.head !== 'sequence-classification' || !model.weights.score)
    throw new Error(
      `this is a ${model.config.family} causal language model, not a reward model: a reward model's config.json names a *ForSequenceClassification architecture and its checkpoint has score.weight`,
    );
}

/** Rewards [B, numLabels] of one padded batch in a scoring workspace (backward: false). */
export async function rewardForward(model: DecoderModel, ws: TrainWorkspace, x: RewardInputs, o: { lora?: LoraAdapters | null } = {}): Promise<Float32Array> {
  expectRewardModel(model);
  const { ctx, config: c } = model;
  const B = ws.batchSize;
  const T = ws.seqLen;
  const H = c.hiddenSize;
  setBatchInputs(ctx, ws, x);
  const pooled = ctx.tensor([B, H], 'f32', 'reward pooled');
  const rewards = ctx.tensor([B, c.numLabels], 'f32', 'rewards');
  try {
    const chain = new BatchChain(ctx, 'reward');
    const hidden = encodeHidden(chain, model, ws, activeAdapter(o.lora));
    const batch = chain.batch;
    for (let b = 0; b < B; b++) {
      const row = b * T + lastTokenIndex(x.ids, x.mask, b, T, c.padTokenId);
      batch.copy(hidden.buffer, row * H * 4, pooled.buffer, b * H * 4, H * 4);
    }
    matmul(batch, { a: pooled, b: model.weights.score!, out: rewards, layout: 'nt', m: B, n: c.numLabels, k: H });
    chain.submit();
    return await ctx.readF32(rewards);
  } finally {
    pooled.release();
    rewards.release();
  }
}

export interface RewardOptions {
  lora?: LoraAdapters | null;
  /** Sequences per forward (default: as many as fit 4096 padded positions, at most 8). */
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** One reward (label 0) per sequence, in input order. */
export async function scoreRewards(model: DecoderModel, seqs: readonly ArrayLike<number>[], o: RewardOptions = {}): Promise<number[]> {
  expectRewardModel(model);
  const c = model.config;
  seqs.forEach((s, i) => {
    if (s.length === 0) throw new Error(`reward: sequence ${i} is empty`);
    if (s.length > c.maxPositionEmbeddings)
      throw new Error(`reward: sequence ${i} has ${s.length} tokens, more than the model's max_position_embeddings ${c.maxPositionEmbeddings}; shorten it`);
  });
  const out = new Array<number>(seqs.length);
  const pad = c.padTokenId ?? 0;
  let ws: TrainWorkspace | null = null;
  let done = 0;
  try {
    for (const { group, seqLen } of lengthBatches(seqs.map((x) => x.length), o.batchSize)) {
      o.signal?.throwIfAborted();
      const T = Math.min(seqLen, c.maxPositionEmbeddings);
      const B = group.length;
      if (!ws || ws.seqLen !== T || ws.batchSize !== B) {
        ws?.release();
        ws = null;
        // lmHeadChunk 1: a reward model never computes vocabulary logits.
        ws = createTrainWorkspace(model, { batchSize: B, seqLen: T, lora: activeAdapter(o.lora)?.config ?? null, backward: false, lmHeadChunk: 1 });
      }
      const ids = new Int32Array(B * T).fill(pad);
      const mask = new Int32Array(B * T);
      group.forEach((i, b) => {
        const s = seqs[i]!;
        for (let t = 0; t < s.length; t++) {
          ids[b * T + t] = s[t]!;
          mask[b * T + t] = 1;
        }
      });
      const r = await rewardForward(model, ws, { ids, mask }, o);
      group.forEach((i, b) => (out[i] = r[b * c.numLabels]!));
      done += group.length;
      o.onProgress?.(done, seqs.length);
    }
  } finally {
    ws?.release();
  }
  return out;
}
