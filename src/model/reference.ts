// The decoder (every family of families.ts) in float64 on the host, from the same (quantized) weight values the GPU holds:
// the yardstick for the GPU forward, and, through finite differences of its loss, for the
// GPU gradients. Mirrors the GPU's conventions: HF rotate-half RoPE with f32 angles (as
// transformers), padding query rows attend nothing (output 0), -100 targets are ignored.
import { rmsnormForwardRef } from '../engine/reference/rmsnorm';
import { ropeForwardRef } from '../engine/reference/rope';
import { attentionForwardRef } from '../engine/reference/attention';
import { swigluForwardRef } from '../engine/reference/swiglu';
import { crossEntropyForwardRef } from '../engine/reference/cross-entropy';
import { embeddingForwardRef } from '../engine/reference/embedding';
import { ropeInverseFrequencies } from '../engine/rope';
import type { DType } from '../gpu/dtype';
import type { ModelConfig } from './config';
import { positionIdsFromMask } from './inputs';
import type { LoraTarget } from './lora';
import type { LayerWeightName } from './weights';

export type HostLayer = Partial<Record<LayerWeightName, Float64Array>>;

/** Host weights, each value exactly representable in `dtype` (what the GPU stores). */
export interface HostWeights {
  config: ModelConfig;
  dtype: DType;
  embed: Float64Array; // [V, H]
  layers: HostLayer[];
  finalNorm: Float64Array; // [H]
  /** [V, H]; the same array as `embed` when tied (and for reward models). */
  lmHead: Float64Array;
  /** score.weight [numLabels, H] of a reward model, else null. */
  score: Float64Array | null;
}

export interface HostLora {
  rank: number;
  alpha: number;
  layers: Partial<Record<LoraTarget, { a: Float64Array; b: Float64Array }>>[];
}

export interface RefInputs {
  batchSize: number;
  seqLen: number;
  ids: ArrayLike<number>;
  mask: ArrayLike<number>;
  /** Default: all -100. */
  targets?: ArrayLike<number>;
  /** Default: positionIdsFromMask. */
  positions?: ArrayLike<number>;
}

export interface RefForward {
  /** [N, V] full logits. */
  logits: Float64Array;
  logp: Float64Array;
  lse: Float64Array;
  /** [N, H] after the final norm. */
  hidden: Float64Array;
}

/** out[m, n] = alpha · x[m, k] · w[n, k]ᵀ + (c ?? 0), tight loops (finite differences run this a lot). */
function matmulNt(x: Float64Array, w: Float64Array, m: number, n: number, k: number, alpha = 1, c?: Float64Array): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const xi = i * k;
    for (let j = 0; j < n; j++) {
      const wj = j * k;
      let s = 0;
      for (let d = 0; d < k; d++) s += x[xi + d]! * w[wj + d]!;
      out[i * n + j] = alpha * s + (c ? c[i * n + j]! : 0);
    }
  }
  return out;
}

function linear(x: Float64Array, w: Float64Array, m: number, inF: number, outF: number, lora: HostLora | null, layer: number, target: LoraTarget): Float64Array {
  const y = matmulNt(x, w, m, outF, inF);
  const mod = lora?.layers[layer]?.[target];
  if (!mod || !lora) return y;
  const tmp = matmulNt(x, mod.a, m, lora.rank, inF);
  return matmulNt(tmp, mod.b, m, outF, lora.rank, lora.alpha / lora.rank, y);
}

export function referenceForward(w: HostWeights, x: RefInputs, lora: HostLora | null = null): RefForward {
  const c = w.config;
  const B = x.batchSize;
  const T = x.seqLen;
  const N = B * T;
  const H = c.hiddenSize;
  const D = c.headDim;
  const qd = c.numHeads * D;
  const kvd = c.numKvHeads * D;
  const I = c.intermediateSize;
  const positions = x.positions ?? positionIdsFromMask(x.mask, B, T);
  const invFreq = Array.from(ropeInverseFrequencies({ headDim: D, ropeTheta: c.ropeTheta, ropeScaling: c.ropeScaling }), Math.fround);
  let h = embeddingForwardRef(w.embed, x.ids, H);
  for (let l = 0; l < c.numLayers; l++) {
    const lw = w.layers[l]!;
    const xn1 = rmsnormForwardRef(h, lw.inputNorm!, N, H, c.rmsNormEps).y;
    // Qwen2: + bias after the projection; Qwen3: RMSNorm over each head's D values; then RoPE.
    const project = (w: Float64Array, bias: Float64Array | undefined, outF: number, target: LoraTarget) => {
      const y = linear(xn1, w, N, H, outF, lora, l, target);
      if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[i % outF]!;
      return y;
    };
    const headNorm = (v: Float64Array, w: Float64Array | undefined, nHeads: number) => (w ? rmsnormForwardRef(v, w, N * nHeads, D, c.rmsNormEps).y : v);
    const rope = (v: Float64Array, nHeads: number) => ropeForwardRef(v, positions, invFreq, { nHeads, headDim: D, f32Angle: true });
    const q = rope(headNorm(project(lw.q!, lw.qBias, qd, 'q_proj'), lw.qNorm, c.numHeads), c.numHeads);
    const k = rope(headNorm(project(lw.k!, lw.kBias, kvd, 'k_proj'), lw.kNorm, c.numKvHeads), c.numKvHeads);
    const v = project(lw.v!, lw.vBias, kvd, 'v_proj');
    const attn = attentionForwardRef(q, k, v, { B, tq: T, kvCap: T, nHeads: c.numHeads, nKv: c.numKvHeads, D, mask: x.mask, maskStride: T }).out;
    const o = linear(attn, lw.o!, N, qd, H, lora, l, 'o_proj');
    const h1 = h.map((hv, i) => hv + o[i]!);
    const xn2 = rmsnormForwardRef(h1, lw.postNorm!, N, H, c.rmsNormEps).y;
    const gate = linear(xn2, lw.gate!, N, H, I, lora, l, 'gate_proj');
    const up = linear(xn2, lw.up!, N, H, I, lora, l, 'up_proj');
    const down = linear(swigluForwardRef(gate, up), lw.down!, N, I, H, lora, l, 'down_proj');
    h = h1.map((hv, i) => hv + down[i]!);
  }
  const hidden = rmsnormForwardRef(h, w.finalNorm, N, H, c.rmsNormEps).y;
  const logits = matmulNt(hidden, w.lmHead, N, c.vocabSize, H);
  const targets = x.targets ?? new Int32Array(N).fill(-100);
  const { logp, lse } = crossEntropyForwardRef(logits, targets, N, c.vocabSize);
  return { logits, logp, lse, hidden };
}

/** L = scale · Σ_t rowScale[t] · (-logp[t]): the scalar the GPU backward differentiates. */
export function referenceLoss(w: HostWeights, x: RefInputs, lora: HostLora | null, rowScale: ArrayLike<number> | null, scale = 1): number {
  const { logp } = referenceForward(w, x, lora);
  let loss = 0;
  for (let t = 0; t < logp.length; t++) loss -= scale * (rowScale ? rowScale[t]! : 1) * logp[t]!;
  return loss;
}

/**
 * A reward head (*ForSequenceClassification) in float64: score.weight on the final-norm hidden
 * state of each row's last token that is not padding (lastTokenIndex).
 * Returns [B, numLabels].
 */
export function referenceReward(w: HostWeights, x: RefInputs): Float64Array {
  const c = w.config;
  if (!w.score) throw new Error('referenceReward: not a sequence-classification model');
  const { hidden } = referenceForward(w, x);
  const H = c.hiddenSize;
  const out = new Float64Array(x.batchSize * c.numLabels);
  for (let b = 0; b < x.batchSize; b++) {
    const row = lastTokenIndex(x.ids, x.mask, b, x.seqLen, c.padTokenId);
    const h = hidden.subarray((b * x.seqLen + row) * H, (b * x.seqLen + row + 1) * H);
    out.set(matmulNt(h, w.score, 1, c.numLabels, H), b * c.numLabels);
  }
  return out;
}

/**
 * The position a reward head pools: transformers' rule, the last index whose id is not
 * pad_token_id (0 when every id is padding); without a pad token (where transformers accepts
 * only batch size 1), the last position the attention mask marks real.
 */
export function lastTokenIndex(ids: ArrayLike<number>, mask: ArrayLike<number>, row: number, seqLen: number, padTokenId: number | null): number {
  let last = 0;
  for (let t = 0; t < seqLen; t++) {
    const i = row * seqLen + t;
    if (padTokenId === null ? mask[i] !== 0 : ids[i] !== padTokenId) last = t;
  }
  return last;
}
