// Training objectives on top of the GPU's per-token log-probabilities.
//
// SFT: mean cross-entropy over the counted targets, L = −Σ_t logp[t] / N. The GPU backward
// differentiates scale · Σ_t rowScale[t] · (−logp[t]), so SFT is scale = 1/N, no rowScale
// (with gradient accumulation N counts the targets of every micro-batch of the step).
//
// DPO: each pair's policy sums πc = Σ log πθ(y_w|x), πr = Σ log πθ(y_l|x) come back from the GPU
// (B floats), and everything else is float64 on the host:
//   sigmoid  z = β · [(πc − rc) − (πr − rr)]
//   ln       z = β · [(πc − rc)/|y_w| − (πr − rr)/|y_l|]       (FuseChat-3.0's length-normalised DPO)
//   loss = −log σ(z) = softplus(−z),  dloss/dπc = −σ(−z)·β/|y_w|,  dloss/dπr = +σ(−z)·β/|y_l|
// (|y| = 1 for sigmoid), with rc, rr the reference sums and |y| the counted response tokens. The
// step loss is the mean over its pairs, so the gradient of a sequence's sum is dloss/dπ / P, and
// the backward gets rowScale[t] = −dL/dπ(row of t) on that row's counted tokens.
//
// Metrics, TRL's DPOTrainer names and definitions (means over the pairs):
//   rewards/chosen    β·(πc − rc)            ln: β·(πc − rc)/|y_w| (the normalised implicit reward
//   rewards/rejected  β·(πr − rr)            ln: β·(πr − rr)/|y_l|  the ln loss actually compares)
//   rewards/margins   chosen − rejected (= z), rewards/accuracies: fraction with chosen > rejected
//   logps/chosen, logps/rejected: the policy's summed log-probs πc, πr (not normalised, as TRL)
//
// Reference log-probs are computed once per pair before training (precomputeReferenceLogps) by
// the same GPU forward with the reference adapter: none (the adapter switched off, i.e. the base
// model) or a frozen adapter, e.g. the SFT one or the policy adapter before its first update.
// No second copy of the weights is ever made.
import type { TrainWorkspace } from '../model/activations';
import { createTrainWorkspace } from '../model/activations';
import { forward, readSequenceLogProbs } from '../model/forward';
import { setBatchInputs } from '../model/inputs';
import type { DecoderModel } from '../model/decoder';
import type { LoraAdapters } from '../model/lora';
import { IGNORE_INDEX } from '../engine/cross-entropy';
import { collateDpo, dpoSeqLen, type DpoPair, type ReferenceLogps } from './batching';
import type { DpoLossType } from './defaults';

export interface DpoLossOptions {
  beta: number;
  lossType: DpoLossType;
}

/** One pair's numbers: policy and reference sums and counted response tokens. */
export interface DpoPairLogps {
  policyChosen: number;
  policyRejected: number;
  refChosen: number;
  refRejected: number;
  chosenCount: number;
  rejectedCount: number;
}

export interface DpoPairLoss {
  /** softplus(−z). */
  loss: number;
  /** z = rewardChosen − rewardRejected. */
  z: number;
  rewardChosen: number;
  rewardRejected: number;
  /** dloss/dπc and dloss/dπr of this pair's loss (not divided by the number of pairs). */
  dPolicyChosen: number;
  dPolicyRejected: number;
}

/** log(1 + e^x) without overflow. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** 1 / (1 + e^−x) without overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

export function dpoPairLoss(x: DpoPairLogps, o: DpoLossOptions): DpoPairLoss {
  const ln = o.lossType === 'ln';
  if (ln && (!(x.chosenCount > 0) || !(x.rejectedCount > 0))) throw new Error('ln-dpo: a response has no counted tokens');
  const wc = ln ? o.beta / x.chosenCount : o.beta;
  const wr = ln ? o.beta / x.rejectedCount : o.beta;
  const rewardChosen = wc * (x.policyChosen - x.refChosen);
  const rewardRejected = wr * (x.policyRejected - x.refRejected);
  const z = rewardChosen - rewardRejected;
  const g = sigmoid(-z); // −dloss/dz
  return { loss: softplus(-z), z, rewardChosen, rewardRejected, dPolicyChosen: -g * wc, dPolicyRejected: g * wr };
}

export type DpoMetrics = Record<
  'loss' | 'rewards/chosen' | 'rewards/rejected' | 'rewards/margins' | 'rewards/accuracies' | 'logps/chosen' | 'logps/rejected',
  number
>;

/** Running sums of the DPO metrics over pairs; `mean()` gives TRL's logged values. */
export class DpoMetricSums {
  private n = 0;
  private s = { loss: 0, chosen: 0, rejected: 0, margin: 0, correct: 0, lpc: 0, lpr: 0 };

  add(x: DpoPairLogps, r: DpoPairLoss): void {
    this.n++;
    this.s.loss += r.loss;
    this.s.chosen += r.rewardChosen;
    this.s.rejected += r.rewardRejected;
    this.s.margin += r.z;
    this.s.correct += r.rewardChosen > r.rewardRejected ? 1 : 0;
    this.s.lpc += x.policyChosen;
    this.s.lpr += x.policyRejected;
  }

  get count(): number {
    return this.n;
  }

  mean(): DpoMetrics {
    const n = Math.max(1, this.n);
    return {
      loss: this.s.loss / n,
      'rewards/chosen': this.s.chosen / n,
      'rewards/rejected': this.s.rejected / n,
      'rewards/margins': this.s.margin / n,
      'rewards/accuracies': this.s.correct / n,
      'logps/chosen': this.s.lpc / n,
      'logps/rejected': this.s.lpr / n,
    };
  }
}

/**
 * rowScale for the backward: on row b's counted targets (targets != -100), −dL/dπ_b; 0 elsewhere.
 * `rowGrad[b]` = dL/d(Σ logp of row b).
 */
export function rowScaleFromSequenceGrads(targets: ArrayLike<number>, seqLen: number, rowGrad: ArrayLike<number>): Float32Array {
  const out = new Float32Array(targets.length);
  for (let i = 0; i < targets.length; i++) if (targets[i] !== IGNORE_INDEX) out[i] = -rowGrad[Math.floor(i / seqLen)]!;
  return out;
}

export interface ReferenceOptions {
  /** The reference policy: 'base' (no adapter: the adapter switched off) or a frozen adapter to score with. */
  reference: 'base' | LoraAdapters;
  /** Pairs per forward (2 rows each). */
  pairsPerBatch: number;
  /** A workspace of [2·pairsPerBatch, seqLen] to reuse (e.g. the trainer's); default: one made and released here. */
  workspace?: TrainWorkspace;
  padId?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Score every pair once with the reference policy; returns the pairs with `reference` set (new objects). */
export async function precomputeReferenceLogps(model: DecoderModel, pairs: readonly DpoPair[], o: ReferenceOptions): Promise<DpoPair[]> {
  const P = o.pairsPerBatch;
  if (!Number.isInteger(P) || P < 1) throw new Error(`reference log-probs: pairsPerBatch ${P} must be a positive integer`);
  const lora = o.reference === 'base' ? null : o.reference;
  const ws =
    o.workspace ??
    createTrainWorkspace(model, { batchSize: 2 * P, seqLen: dpoSeqLen(pairs), lora: lora ? lora.config : null, backward: false });
  if (ws.batchSize !== 2 * P) throw new Error(`reference log-probs: the workspace has ${ws.batchSize} rows, expected 2·${P}`);
  const out: DpoPair[] = [];
  try {
    for (let i = 0; i < pairs.length; i += P) {
      const group = pairs.slice(i, i + P);
      const b = collateDpo(group, P, ws.seqLen, o.padId);
      setBatchInputs(model.ctx, ws, b);
      // An adapter made for inference only is fine: the forward never needs gradients.
      forward(model, ws, { lora: lora ? { ...lora, enabled: true } : null });
      const { sums } = await readSequenceLogProbs(model, ws);
      group.forEach((p, k) => {
        const reference: ReferenceLogps = { chosen: sums[k]!, rejected: sums[P + k]! };
        out.push({ ...p, reference });
      });
      o.onProgress?.(out.length, pairs.length);
    }
  } finally {
    if (!o.workspace) ws.release();
  }
  return out;
}
