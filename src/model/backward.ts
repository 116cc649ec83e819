// Backward pass into LoRA gradients (and, for tiny f32 models, every base weight), with
// activation checkpointing: from the saved residual stream, each layer's activations are
// recomputed and back-propagated in one command batch, so memory holds one layer's
// activations at a time. A workspace made with keepActivations / keepLogits (the memory plan's
// choice where the step fits) holds what the forward computed instead: nothing is recomputed,
// and the backward consumes it (each backward then needs its own forward).
//
// The loss is L = scale · Σ_t rowScale[t] · (-logp[t]), so one API serves every objective:
//   SFT mean cross-entropy: scale = 1 / (number of counted targets), rowScale omitted.
//   DPO and friends: rowScale[t] = -dL/dlogp[t] (host values, or written on the GPU into
//   ws.rowScale and passed as 'workspace').
// Call after forward() on the same workspace and inputs (it reads ws.resid and ws.lse).
// Gradients are zeroed first unless `accumulate` (gradient accumulation over micro-batches).
import { encode } from '../gpu/dtype';
import { embeddingBackward } from '../engine/embedding';
import { rmsnormBackward, rmsnormForward } from '../engine/rmsnorm';
import type { TrainWorkspace } from './activations';
import { BatchChain } from './chain';
import { checkWorkspace, trainLayerPass } from './forward';
import { zeroFullGrads, type FullGrads } from './full-grads';
import { encodeLayerBackward, encodeLayerForward } from './layer';
import { activeAdapter, type DecoderModel } from './decoder';
import { lmHeadBackward } from './lm-head';
import { zeroLoraGrads, type LoraAdapters } from './lora';

export interface BackwardOptions {
  /** The adapter of the forward; its dA, dB receive gradients (it must be trainable). */
  lora?: LoraAdapters | null;
  /** Full fine-tuning gradients (f32 base weights). */
  full?: FullGrads | null;
  /** Per-token upstream weights -dL/dlogp [B·T]; 'workspace': already in ws.rowScale; omitted: all ones. */
  rowScale?: ArrayLike<number> | 'workspace';
  /** Uniform factor (default 1). */
  scale?: number;
  /** Add to the gradients instead of zeroing them first (default false). */
  accumulate?: boolean;
}

/** Number of counted (non -100) targets: the N of mean cross-entropy, scale = 1 / N. */
export function countTargets(targets: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] !== -100) n++;
  return n;
}

export function backward(model: DecoderModel, ws: TrainWorkspace, options: BackwardOptions = {}): void {
  const lora = activeAdapter(options.lora);
  const full = options.full ?? null;
  checkWorkspace(model, ws, lora);
  const grads = ws.grads;
  if (!grads) throw new Error('backward: the workspace was made with backward: false');
  if (lora && !lora.params.length) throw new Error('backward: the adapter is not trainable (made with trainable: false)');
  if (full && !ws.dWChunk) throw new Error('backward: full fine-tuning needs a workspace made with fullFineTune: true');
  if (!lora && !full) throw new Error('backward: nothing to differentiate (no enabled adapter, no full gradients)');
  if ((ws.keepActivations || ws.keepLogits) && !ws.fresh)
    throw new Error('backward: this workspace keeps activations or logits from the forward and a backward has consumed them; run forward() again before each backward()');
  const { ctx, config: c, weights } = model;
  if (options.rowScale && options.rowScale !== 'workspace') {
    if (options.rowScale.length !== ws.tokens) throw new Error(`backward: rowScale has ${options.rowScale.length} values, expected ${ws.tokens}`);
    ctx.writeBytes(ws.rowScale, encode(options.rowScale, 'f32'));
  }

  const chain = new BatchChain(ctx, 'backward');
  if (!options.accumulate) {
    if (lora) zeroLoraGrads(chain.batch, lora);
    if (full) zeroFullGrads(chain.batch, full);
  }
  // lm_head + loss, then the final norm (recomputed from the saved residual stream unless kept).
  const L = c.numLayers;
  const final = ws.final.xn;
  if (!ws.kept) rmsnormForward(chain.batch, { y: final, rstd: ws.final.rstd, x: ws.resid[L]!, w: weights.finalNorm, eps: c.rmsNormEps });
  lmHeadBackward(chain, {
    hidden: final,
    weight: weights.lmHead,
    targets: ws.targets,
    logits: ws.logits,
    kept: ws.keptLogits,
    chunk: ws.lmHeadChunk,
    lse: ws.lse,
    ...(options.rowScale ? { rowScale: ws.rowScale } : {}),
    scale: options.scale ?? 1,
    dHidden: grads.dXn,
    ...(full ? { dWeight: full.lmHead, dWChunk: ws.dWChunk } : {}),
  });
  rmsnormBackward(chain.batch, {
    dx: grads.dResid,
    dy: grads.dXn,
    x: ws.resid[L]!,
    w: weights.finalNorm,
    rstd: ws.final.rstd,
    ...(full ? { dw: full.finalNorm, accumulateDw: true } : {}),
  });
  chain.submit();

  // Layers, last to first: recompute the activations (unless kept), then back-propagate (one submit each).
  for (let l = L - 1; l >= 0; l--) {
    const pass = trainLayerPass(model, ws, l, lora);
    const batch = chain.batch;
    if (!ws.kept) encodeLayerForward(batch, pass, ws.resid[l]!, null);
    encodeLayerBackward(batch, pass, ws.resid[l]!, { grads, full: full ? full.layers[l]! : null });
    chain.submit();
  }

  // dResid is now dL/d(embedding output).
  if (full) {
    for (const ch of full.embed.chunks)
      embeddingBackward(chain.batch, { dTable: ch.tensor, dOut: grads.dResid, ids: ws.ids, rowStart: ch.rowStart });
    chain.submit();
  }
  ws.fresh = false;
}
