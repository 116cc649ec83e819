// Forward pass over a padded batch (training and scoring): embedding, the decoder layers, the
// final norm, and lm_head + cross-entropy chunked over the vocabulary. Leaves per-token
// log p(target) and log-sum-exp in ws.logp / ws.lse, and the residual stream entering each
// layer in ws.resid (all the backward keeps). One submit per layer; no readbacks.
//
//   setBatchInputs(ctx, ws, { ids, mask, targets });   // inputs.ts: [B·T] each, targets already shifted
//   forward(model, ws, { lora });                       // lora null or disabled: base model
//   const logp = await readLogp(model, ws);             // [B·T], 0 on ignored targets
//   const { sums, counts } = await readSequenceLogProbs(model, ws);  // per sequence (DPO)
import type { CommandBatch } from '../gpu/batch';
import type { Tensor } from '../gpu/tensor';
import { embeddingForward } from '../engine/embedding';
import { sequenceLogProbSums } from '../engine/cross-entropy';
import { rmsnormForward } from '../engine/rmsnorm';
import type { TrainWorkspace } from './activations';
import { BatchChain } from './chain';
import { encodeLayerForward, type LayerPass } from './layer';
import { activeAdapter, type DecoderModel } from './decoder';
import { lmHeadForward } from './lm-head';
import type { LoraAdapters } from './lora';

export interface ForwardOptions {
  /** Adapter to apply; null, omitted or `enabled = false`: the base model. */
  lora?: LoraAdapters | null;
}

/** The LayerPass of layer l over a training workspace (its own activations when the workspace keeps them). */
export function trainLayerPass(model: DecoderModel, ws: TrainWorkspace, layer: number, lora: LoraAdapters | null): LayerPass {
  return { model, layer, lora, acts: ws.kept?.[layer] ?? ws.layer, batchSize: ws.batchSize, tq: ws.seqLen, positions: ws.positions, mask: ws.mask };
}

/** Embedding lookup into resid[0], one dispatch per table chunk. */
export function encodeEmbedding(batch: CommandBatch, model: DecoderModel, ws: TrainWorkspace): void {
  for (const c of model.weights.embed.chunks) embeddingForward(batch, { out: ws.resid[0]!, ids: ws.ids, table: c.tensor, rowStart: c.rowStart });
}

export function checkWorkspace(model: DecoderModel, ws: TrainWorkspace, lora: LoraAdapters | null): void {
  if (ws.config !== model.config && JSON.stringify(ws.config) !== JSON.stringify(model.config))
    throw new Error('forward: the workspace was made for another model config');
  if (lora && (!ws.lora || ws.lora.rank !== lora.config.rank || lora.config.targets.some((t) => !ws.lora!.targets.includes(t))))
    throw new Error(`forward: the workspace was made for ${ws.lora ? `LoRA rank ${ws.lora.rank} on ${ws.lora.targets.join(', ')}` : 'no adapter'}, not rank ${lora.config.rank} on ${lora.config.targets.join(', ')}`);
}

/**
 * Embedding, the decoder layers and the final norm into ws.final.xn (returned), encoded on
 * `chain` (one submit per layer). Shared by the LM head below and the reward head (reward.ts).
 */
export function encodeHidden(chain: BatchChain, model: DecoderModel, ws: TrainWorkspace, lora: LoraAdapters | null): Tensor {
  checkWorkspace(model, ws, lora);
  const c = model.config;
  encodeEmbedding(chain.batch, model, ws);
  for (let l = 0; l < c.numLayers; l++) {
    encodeLayerForward(chain.batch, trainLayerPass(model, ws, l, lora), ws.resid[l]!, ws.resid[l + 1]!);
    chain.submit();
  }
  // The final norm's output and rstd reuse the first norm's buffers (the layers are done) unless
  // the workspace keeps every layer's activations.
  const final = ws.final.xn;
  rmsnormForward(chain.batch, { y: final, rstd: ws.final.rstd, x: ws.resid[c.numLayers]!, w: model.weights.finalNorm, eps: c.rmsNormEps });
  ws.fresh = true;
  return final;
}

export function forward(model: DecoderModel, ws: TrainWorkspace, options: ForwardOptions = {}): void {
  const lora = activeAdapter(options.lora);
  if (model.config.head !== 'causal-lm') throw new Error('forward: a reward (sequence-classification) model has no language-model head; score it with rewardForward');
  const chain = new BatchChain(model.ctx, 'forward');
  const final = encodeHidden(chain, model, ws, lora);
  lmHeadForward(chain, {
    hidden: final,
    weight: model.weights.lmHead,
    targets: ws.targets,
    logits: ws.logits,
    kept: ws.keptLogits,
    chunk: ws.lmHeadChunk,
    state: ws.ceState,
    lse: ws.lse,
    logp: ws.logp,
  });
  chain.submit();
}

/** Per-token log p(target) of the last forward, [B·T] (0 where the target is ignored). */
export function readLogp(model: DecoderModel, ws: TrainWorkspace): Promise<Float32Array> {
  return model.ctx.readF32(ws.logp);
}

/** Σ log p(target) per sequence over counted (non -100) targets, and the counts: [B] each. */
export async function readSequenceLogProbs(model: DecoderModel, ws: TrainWorkspace): Promise<{ sums: Float32Array; counts: Float32Array }> {
  const batch = model.ctx.batch('sequence log-probs');
  sequenceLogProbSums(batch, { logp: ws.logp, mask: ws.targets, kind: 'labels', seqLen: ws.seqLen, sums: ws.seqSums, counts: ws.seqCounts });
  batch.submit();
  return { sums: await model.ctx.readF32(ws.seqSums), counts: await model.ctx.readF32(ws.seqCounts) };
}
