// The TF.js peer of a LoRA SFT step: a Llama forward written with TF.js ops on frozen f32 weights
// (TF.js has no bf16), LoRA (A [r, in], B [out, r], scale alpha/r) on all seven projections as
// tf.variables, causal GQA attention as in bench/attention.ts, RoPE (rotate-half, plain
// rope_theta frequencies: the FLOPs of llama3 scaling are the same), RMSNorm, SwiGLU, a tied
// lm_head and the mean token cross-entropy; the step is tf.train.adam(...).minimize over the
// LoRA variables (tf.variableGrads + Adam; Adam's update costs what AdamW's does).
// The weights are random (a fast integer PRNG): the work, not the model, is what is compared.
import type * as TfCore from '@tensorflow/tfjs-core';
import type { ModelConfig } from '../src/model/config';
import { LORA_TARGETS, targetDims, type LoraConfig } from '../src/model/lora';

type Tf = typeof TfCore;
type T = TfCore.Tensor;

/** Uniform values in [-scale, scale) from a 32-bit LCG: fast enough for a billion-element table. */
function uniform(n: number, seed: number, scale: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const k = (2 * scale) / 4294967296;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s * k - scale;
  }
  return out;
}

export interface TfLlamaStep {
  /** Encodes one forward + backward + Adam update (no waiting). */
  step(): void;
  /** Loss of the last step. */
  lastLoss(): Promise<number>;
  dispose(): void;
}

export function createTfLlamaStep(tf: Tf, c: ModelConfig, o: { batch: number; seq: number; lora: Required<Pick<LoraConfig, 'rank' | 'alpha'>>; seed: number; ids: Int32Array; targets: Int32Array }): TfLlamaStep {
  const { batch: B, seq: S } = o;
  const N = B * S;
  const H = c.hiddenSize;
  const D = c.headDim;
  const nH = c.numHeads;
  const nKv = c.numKvHeads;
  const G = nH / nKv;
  const r = o.lora.rank;
  const scale = o.lora.alpha / r;
  let seed = o.seed;
  const frozen: T[] = [];
  const keep = <X extends T>(x: X): X => {
    frozen.push(x);
    return x;
  };
  const weight = (rows: number, cols: number, s: number) => keep(tf.tensor2d(uniform(rows * cols, seed++, s), [rows, cols]));
  const ones = (n: number) => keep(tf.ones([n]));
  const embed = weight(c.vocabSize, H, 0.02);
  const vars: TfCore.Variable[] = [];
  const layers = Array.from({ length: c.numLayers }, (_, l) => {
    const proj: Record<string, { w: T; a: TfCore.Variable; b: TfCore.Variable }> = {};
    for (const t of LORA_TARGETS) {
      const [din, dout] = targetDims(c, t);
      const a = tf.variable(tf.tensor2d(uniform(r * din, seed++, 1 / Math.sqrt(din)), [r, din]), true, `l${l}.${t}.A`);
      const b = tf.variable(tf.tensor2d(uniform(dout * r, seed++, 0.01), [dout, r]), true, `l${l}.${t}.B`);
      vars.push(a, b);
      proj[t] = { w: weight(dout, din, 1 / Math.sqrt(din)), a, b };
    }
    return { proj, inNorm: ones(H), postNorm: ones(H) };
  });
  const finalNorm = ones(H);
  // RoPE tables [1, S, 1, D/2].
  const half = D / 2;
  const cosV = new Float32Array(S * half);
  const sinV = new Float32Array(S * half);
  for (let t = 0; t < S; t++)
    for (let i = 0; i < half; i++) {
      const a = t / Math.pow(c.ropeTheta, (2 * i) / D);
      cosV[t * half + i] = Math.cos(a);
      sinV[t * half + i] = Math.sin(a);
    }
  const cos = keep(tf.tensor4d(cosV, [1, S, 1, half]));
  const sin = keep(tf.tensor4d(sinV, [1, S, 1, half]));
  const maskV = new Float32Array(S * S);
  for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) maskV[i * S + j] = -1e9;
  const causal = keep(tf.tensor2d(maskV, [S, S]));
  const ids = keep(tf.tensor1d(o.ids, 'int32'));
  const onehot = keep(tf.oneHot(tf.tensor1d(o.targets, 'int32'), c.vocabSize)); // -100 rows: all zeros
  const count = o.targets.reduce((s, y) => s + (y >= 0 ? 1 : 0), 0);

  const rms = (x: T, w: T) => tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), c.rmsNormEps))), w);
  const lin = (x: T, p: { w: T; a: T; b: T }) =>
    tf.add(tf.matMul(x, p.w, false, true), tf.mul(tf.matMul(tf.matMul(x, p.a, false, true), p.b, false, true), scale));
  const rope = (x: T) => {
    const [x1, x2] = tf.split(x, 2, 3);
    return tf.concat([tf.sub(tf.mul(x1!, cos), tf.mul(x2!, sin)), tf.add(tf.mul(x2!, cos), tf.mul(x1!, sin))], 3);
  };
  const repeatKv = (x: T) => tf.reshape(tf.tile(tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * nKv, 1, S * D]), [1, G, 1]), [B, nH, S, D]);
  const lossFn = (): TfCore.Scalar => {
    let x: T = tf.gather(embed, ids);
    for (const L of layers) {
      const h = rms(x, L.inNorm);
      const q = rope(tf.reshape(lin(h, L.proj.q_proj!), [B, S, nH, D]));
      const k = rope(tf.reshape(lin(h, L.proj.k_proj!), [B, S, nKv, D]));
      const v = tf.reshape(lin(h, L.proj.v_proj!), [B, S, nKv, D]);
      const scores = tf.add(tf.mul(tf.matMul(tf.transpose(q, [0, 2, 1, 3]), repeatKv(k), false, true), 1 / Math.sqrt(D)), causal);
      const att = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), repeatKv(v)), [0, 2, 1, 3]), [N, nH * D]);
      x = tf.add(x, lin(att, L.proj.o_proj!));
      const h2 = rms(x, L.postNorm);
      const g = lin(h2, L.proj.gate_proj!);
      x = tf.add(x, lin(tf.mul(tf.mul(g, tf.sigmoid(g)), lin(h2, L.proj.up_proj!)), L.proj.down_proj!));
    }
    const logits = tf.matMul(rms(x, finalNorm), embed, false, true); // [N, V]
    return tf.div(tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)))), count) as TfCore.Scalar;
  };
  const opt = tf.train.adam(1e-4);
  let loss: TfCore.Scalar | null = null;
  return {
    step() {
      loss?.dispose();
      loss = opt.minimize(lossFn, true, vars);
    },
    async lastLoss() {
      return loss ? (await loss.data())[0]! : NaN;
    },
    dispose() {
      loss?.dispose();
      opt.dispose();
      for (const v of vars) v.dispose();
      for (const t of frozen) t.dispose();
    },
  };
}
