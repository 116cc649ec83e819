// One decoder layer, forward and backward (llm.c style, side by side), for every family of
// families.ts (what a family adds is marked with its config flag):
//
//   xn1 = rmsnorm(x) · w_in
//   q, k, v = xn1·Wqᵀ, xn1·Wkᵀ, xn1·Wvᵀ  (+ LoRA)  (+ bq, bk, bv: qkvBias)
//   q, k = rmsnorm_head(q)·w_qn, rmsnorm_head(k)·w_kn  (qkNorm: over each head's D values)
//   q, k = rope(q, k)
//   attn = softmax(q·kᵀ/√D + causal/padding mask)·v  (GQA)
//   h1 = x + attn·Woᵀ (+ LoRA)
//   xn2 = rmsnorm(h1) · w_post
//   act = silu(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)  (+ LoRA on both)
//   out = h1 + act·Wdᵀ (+ LoRA)
//
// Every Linear is y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with W [out, in] frozen (f32/bf16/f16) and A, B f32.
// The backward expects the layer's activations as the forward left them (the backward pass
// recomputes them from the saved input first, in the same command batch).
import type { CommandBatch } from '../gpu/batch';
import type { Tensor } from '../gpu/tensor';
import { attentionBackward, attentionForward } from '../engine/attention';
import { biasBackward, biasForward } from '../engine/bias';
import { loraBackward, loraForward } from '../engine/lora';
import { matmul } from '../engine/matmul';
import { residualAccumulate, residualForward } from '../engine/residual';
import { rmsnormBackward, rmsnormForward } from '../engine/rmsnorm';
import { ropeBackward, ropeForward } from '../engine/rope';
import { swigluBackward, swigluForward } from '../engine/swiglu';
import type { LayerActivations, LayerGradients } from './activations';
import type { DecoderModel } from './decoder';
import { TARGET_WEIGHT, targetDims, type LoraAdapters, type LoraModule, type LoraTarget } from './lora';
import type { LayerWeightName } from './weights';

export interface LayerPass {
  model: DecoderModel;
  layer: number;
  /** Active adapter or null (base model). */
  lora: LoraAdapters | null;
  acts: LayerActivations;
  /** Sequences B and new tokens per sequence T (the rows of acts are B·T). */
  batchSize: number;
  tq: number;
  /** i32 [B·T] RoPE positions. */
  positions: Tensor;
  /** i32 [B, maskLen]: 1 real, 0 padding (maskLen = T, or the cache capacity). */
  mask: Tensor;
  /** Generation: k/v of the new tokens go to the cache at [pastLen, pastLen + T) and attention reads the cache. */
  cache?: { k: Tensor; v: Tensor; pastLen: number; capacity: number };
}

/** A projection of the layer: its input activation, frozen weight, dims and adapter target. */
interface Projection {
  x: Tensor;
  w: Tensor;
  inF: number;
  outF: number;
  target: LoraTarget;
}

function projection(p: LayerPass, target: LoraTarget): Projection {
  const a = p.acts;
  const inputs: Record<LoraTarget, Tensor> = {
    q_proj: a.xn1,
    k_proj: a.xn1,
    v_proj: a.xn1,
    o_proj: a.attn,
    gate_proj: a.xn2,
    up_proj: a.xn2,
    down_proj: a.act,
  };
  const [inF, outF] = targetDims(p.model.config, target);
  return { x: inputs[target], w: p.model.weights.layers[p.layer]![TARGET_WEIGHT[target]]!, inF, outF, target };
}

function loraModule(p: LayerPass, target: LoraTarget): LoraModule | undefined {
  return p.lora?.layers[p.layer]?.[target];
}

/** out = x·Wᵀ (+ s·(x·Aᵀ)·Bᵀ, keeping x·Aᵀ for the backward). */
function linearForward(batch: CommandBatch, p: LayerPass, target: LoraTarget, out: Tensor): void {
  const l = projection(p, target);
  const m = p.batchSize * p.tq;
  // A pass that writes a KV cache is generation: no gradient flows through it (f16 inputs allowed).
  matmul(batch, { a: l.x, b: l.w, out, layout: 'nt', m, n: l.outF, k: l.inF }, { inference: p.cache !== undefined });
  const mod = loraModule(p, target);
  if (!mod) return;
  const tmp = p.acts.loraTmp[target];
  if (!tmp) throw new Error(`layer ${p.layer}: the workspace has no LoRA scratch for ${target} (made for another adapter shape)`);
  loraForward(batch, { x: l.x, a: mod.a, b: mod.b, out, scale: p.lora!.scale, tmp });
}

/** out = h1 + MLP(rmsnorm(h1)) after h1 = x + Attn(rmsnorm(x)); `out` null skips the last add (recompute). */
export function encodeLayerForward(batch: CommandBatch, p: LayerPass, x: Tensor, out: Tensor | null): void {
  const { model, acts: a } = p;
  const c = model.config;
  const w = model.weights.layers[p.layer]!;
  const eps = c.rmsNormEps;
  rmsnormForward(batch, { y: a.xn1, rstd: a.rstd1, x, w: w.inputNorm, eps });
  // With q/k norm the projections land in qRaw/kRaw and the norm writes q/k.
  const qOut = c.qkNorm ? a.qRaw! : a.q;
  const kOut = c.qkNorm ? a.kRaw! : a.k;
  linearForward(batch, p, 'q_proj', qOut);
  linearForward(batch, p, 'k_proj', kOut);
  linearForward(batch, p, 'v_proj', a.v);
  if (c.qkvBias) {
    biasForward(batch, qOut, w.qBias!);
    biasForward(batch, kOut, w.kBias!);
    biasForward(batch, a.v, w.vBias!);
  }
  if (c.qkNorm) {
    rmsnormForward(batch, { y: a.q, rstd: a.rstdQ!, x: qOut, w: w.qNorm!, eps });
    rmsnormForward(batch, { y: a.k, rstd: a.rstdK!, x: kOut, w: w.kNorm!, eps });
  }
  const rope = { positions: p.positions, invFreq: model.invFreq, headDim: c.headDim };
  ropeForward(batch, { ...rope, x: a.q, nHeads: c.numHeads });
  ropeForward(batch, { ...rope, x: a.k, nHeads: c.numKvHeads });
  const dims = { batchSize: p.batchSize, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: c.headDim };
  if (p.cache) {
    const { k, v, pastLen, capacity } = p.cache;
    const rowBytes = c.numKvHeads * c.headDim * 4;
    for (let b = 0; b < p.batchSize; b++) {
      const dst = (b * capacity + pastLen) * rowBytes;
      batch.copy(a.k.buffer, b * p.tq * rowBytes, k.buffer, dst, p.tq * rowBytes);
      batch.copy(a.v.buffer, b * p.tq * rowBytes, v.buffer, dst, p.tq * rowBytes);
    }
    attentionForward(batch, { ...dims, q: a.q, k, v, out: a.attn, lse: a.attnLse, mask: p.mask, pastLen });
  } else {
    attentionForward(batch, { ...dims, q: a.q, k: a.k, v: a.v, out: a.attn, lse: a.attnLse, mask: p.mask });
  }
  linearForward(batch, p, 'o_proj', a.proj);
  residualForward(batch, a.h1, x, a.proj);
  rmsnormForward(batch, { y: a.xn2, rstd: a.rstd2, x: a.h1, w: w.postNorm, eps });
  linearForward(batch, p, 'gate_proj', a.gate);
  linearForward(batch, p, 'up_proj', a.up);
  swigluForward(batch, a.act, a.gate, a.up);
  linearForward(batch, p, 'down_proj', a.proj);
  if (out) residualForward(batch, out, a.h1, a.proj);
}

export interface LayerBackward {
  grads: LayerGradients;
  /** Base weight gradients of this layer (full fine-tuning), accumulated into; null = frozen. */
  full: Partial<Record<LayerWeightName, Tensor>> | null;
}

/**
 * dx (+)= dy·W, and with full fine-tuning dW += dyᵀ·x; through the adapter dA, dB += and
 * dx +=. `accumulate` false overwrites dx first.
 */
function linearBackward(batch: CommandBatch, p: LayerPass, b: LayerBackward, target: LoraTarget, dy: Tensor, dx: Tensor, accumulate: boolean): void {
  const l = projection(p, target);
  const m = p.batchSize * p.tq;
  matmul(batch, { a: dy, b: l.w, out: dx, layout: 'nn', m, n: l.outF, k: l.inF, accumulate });
  if (b.full) matmul(batch, { a: dy, b: l.x, out: b.full[TARGET_WEIGHT[target]]!, layout: 'tn', m, n: l.outF, k: l.inF, accumulate: true });
  const mod = loraModule(p, target);
  if (!mod) return;
  if (!mod.dA || !mod.dB || !b.grads.loraDTmp)
    throw new Error(`layer ${p.layer} ${target}: backward through an adapter needs a trainable adapter and a workspace made for it`);
  loraBackward(batch, {
    x: l.x,
    a: mod.a,
    b: mod.b,
    dOut: dy,
    tmp: p.acts.loraTmp[target]!,
    dA: mod.dA,
    dB: mod.dB,
    dX: dx,
    dTmp: b.grads.loraDTmp,
    scale: p.lora!.scale,
    accumulate: true,
  });
}

/**
 * Given dResid = dL/d(layer output), leaves dL/d(layer input x) in dResid and adds this layer's
 * parameter gradients. Needs the activations of encodeLayerForward(x).
 */
export function encodeLayerBackward(batch: CommandBatch, p: LayerPass, x: Tensor, b: LayerBackward): void {
  const { model, acts: a } = p;
  const { dResid, dXn, dAct, dUp, dAttn, dq, dk, dv } = b.grads;
  const c = model.config;
  const w = model.weights.layers[p.layer]!;
  const full = b.full;

  // MLP: out = h1 + down(act), so d(down output) = dResid, and dh1 = dResid + the norm path.
  linearBackward(batch, p, b, 'down_proj', dResid, dAct, false);
  const dGate = a.act; // act is not read again
  swigluBackward(batch, { dGate, dUp, dOut: dAct, gate: a.gate, up: a.up });
  linearBackward(batch, p, b, 'gate_proj', dGate, dXn, false);
  linearBackward(batch, p, b, 'up_proj', dUp, dXn, true);
  const dNormIn = a.proj; // the projection output is not read again
  rmsnormBackward(batch, { dx: dNormIn, dy: dXn, x: a.h1, w: w.postNorm, rstd: a.rstd2, ...(full ? { dw: full.postNorm!, accumulateDw: true } : {}) });
  residualAccumulate(batch, dResid, dNormIn); // dResid = dL/dh1

  // Attention: h1 = x + o(attn).
  linearBackward(batch, p, b, 'o_proj', dResid, dAttn, false);
  attentionBackward(batch, {
    batchSize: p.batchSize,
    nHeads: c.numHeads,
    nKvHeads: c.numKvHeads,
    headDim: c.headDim,
    q: a.q,
    k: a.k,
    v: a.v,
    out: a.attn,
    lse: a.attnLse,
    mask: p.mask,
    dOut: dAttn,
    dq,
    dk,
    dv,
  });
  const rope = { positions: p.positions, invFreq: model.invFreq, headDim: c.headDim };
  ropeBackward(batch, { ...rope, x: dq, nHeads: c.numHeads });
  ropeBackward(batch, { ...rope, x: dk, nHeads: c.numKvHeads });
  // v first: then dv is free to hold k's gradient through the k norm (dAttn holds q's).
  if (full && c.qkvBias) biasBackward(batch, full.vBias!, dv, true);
  linearBackward(batch, p, b, 'v_proj', dv, dXn, false);
  let dqIn = dq;
  let dkIn = dk;
  if (c.qkNorm) {
    const dwQ = full ? { dw: full.qNorm!, accumulateDw: true } : {};
    const dwK = full ? { dw: full.kNorm!, accumulateDw: true } : {};
    rmsnormBackward(batch, { dx: (dqIn = dAttn), dy: dq, x: a.qRaw!, w: w.qNorm!, rstd: a.rstdQ!, ...dwQ });
    rmsnormBackward(batch, { dx: (dkIn = dv), dy: dk, x: a.kRaw!, w: w.kNorm!, rstd: a.rstdK!, ...dwK });
  }
  if (full && c.qkvBias) {
    biasBackward(batch, full.qBias!, dqIn, true);
    biasBackward(batch, full.kBias!, dkIn, true);
  }
  linearBackward(batch, p, b, 'q_proj', dqIn, dXn, true);
  linearBackward(batch, p, b, 'k_proj', dkIn, dXn, true);
  rmsnormBackward(batch, { dx: dNormIn, dy: dXn, x, w: w.inputNorm, rstd: a.rstd1, ...(full ? { dw: full.inputNorm!, accumulateDw: true } : {}) });
  residualAccumulate(batch, dResid, dNormIn); // dResid = dL/dx
}
