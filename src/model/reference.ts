// The Llama model in float64 on the host, from the same (quantized) weight values the GPU holds:
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

export type HostLayer = Record<LayerWeightName, Float64Array>;

/** Host weights, each value exactly representable in `dtype` (what the GPU stores). */
export interface HostWeights {
  config: ModelConfig;
  dtype: DType;
  embed: Float64Array; // [V, H]
  layers: HostLayer[];
  finalNorm: Float64Array; // [H]
  /** [V, H]; the same array as `embed` when tied. */
  lmHead: Float64Array;
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
    const xn1 = rmsnormForwardRef(h, lw.inputNorm, N, H, c.rmsNormEps).y;
    const rope = (v: Float64Array, nHeads: number) => ropeForwardRef(v, positions, invFreq, { nHeads, headDim: D, f32Angle: true });
    const q = rope(linear(xn1, lw.q, N, H, qd, lora, l, 'q_proj'), c.numHeads);
    const k = rope(linear(xn1, lw.k, N, H, kvd, lora, l, 'k_proj'), c.numKvHeads);
    const v = linear(xn1, lw.v, N, H, kvd, lora, l, 'v_proj');
    const attn = attentionForwardRef(q, k, v, { B, tq: T, kvCap: T, nHeads: c.numHeads, nKv: c.numKvHeads, D, mask: x.mask, maskStride: T }).out;
    const o = linear(attn, lw.o, N, qd, H, lora, l, 'o_proj');
    const h1 = h.map((hv, i) => hv + o[i]!);
    const xn2 = rmsnormForwardRef(h1, lw.postNorm, N, H, c.rmsNormEps).y;
    const gate = linear(xn2, lw.gate, N, H, I, lora, l, 'gate_proj');
    const up = linear(xn2, lw.up, N, H, I, lora, l, 'up_proj');
    const down = linear(swigluForwardRef(gate, up), lw.down, N, I, H, lora, l, 'down_proj');
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
