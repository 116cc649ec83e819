// Workspaces: every GPU tensor a forward/backward pass or a generation step uses besides the
// weights and adapters, allocated once per shape and reused (nothing is allocated while a
// step runs). Described as TensorSpec lists, which the memory plan sums.
//
// Training workspace for a padded batch [B, T] (N = B·T tokens):
//   inputs     ids, mask [B, T], positions, targets [N] (i32), rowScale [N] (f32)
//   saved      resid.0 … resid.L [N, H]: the residual stream entering each layer, and the
//              final norm's input (activation checkpointing keeps only these)
//   layer      one layer's activations, rewritten by every layer and recomputed in the backward;
//              with keepActivations, every layer's own (layer.<l>.*) plus the final norm's
//              output (final.xn, final.rstd), written by the forward and read by the backward
//              without recomputing anything
//   backward   one layer's gradients (dResid carries dL/dresid from layer to layer)
//   lmHead     a vocab chunk of logits [N·chunk], the online log-sum-exp state, logp and lse [N],
//              per-sequence sums [B]; with full fine-tuning a [chunk, H] lm_head gradient slice;
//              with keepLogits, instead of the one chunk, every chunk's logits (logits.<i>,
//              [N·cols]: all [N × V] of them), computed once in the forward
// Which of the two to keep is the memory plan's choice (memory-plan.ts, planTrainingStep): keep
// where the step fits the memory budget, else recompute. Kept tensors are consumed by the
// backward (it reuses them as scratch), so each backward needs its own forward.
import { MAX_DISPATCH_FLOPS } from '../gpu/batch';
import type { Tensor } from '../gpu/tensor';
import { CE_STATE_WIDTH, chooseChunkSize } from '../engine/cross-entropy';
import { checkSequenceLength, type ModelConfig } from './config';
import type { DecoderModel } from './decoder';
import { vocabChunkRanges } from './lm-head';
import { LORA_TARGETS, resolveLoraConfig, type LoraConfig, type LoraTarget } from './lora';
import { allocateSpecs, type TensorSpec } from './specs';
import type { ChunkRange } from './weight-layout';

export interface LayerActivations {
  xn1: Tensor; // [N, H] input_layernorm output
  rstd1: Tensor; // [N]
  q: Tensor; // [N, nHeads·D], after RoPE
  k: Tensor; // [N, nKv·D], after RoPE
  v: Tensor; // [N, nKv·D]
  attn: Tensor; // [N, nHeads·D] attention output
  attnLse: Tensor; // [B, nHeads, T]
  h1: Tensor; // [N, H] residual after attention
  xn2: Tensor; // [N, H] post_attention_layernorm output
  rstd2: Tensor; // [N]
  gate: Tensor; // [N, I]
  up: Tensor; // [N, I]
  act: Tensor; // [N, I] silu(gate)·up; reused for dGate in the backward
  proj: Tensor; // [N, H] o_proj / down_proj output; reused for RMSNorm input gradients in the backward
  /** q/k norm (Qwen3): the projections before their per-head RMSNorm, and its 1/rms per head row. */
  qRaw?: Tensor; // [N, nHeads·D]
  kRaw?: Tensor; // [N, nKv·D]
  rstdQ?: Tensor; // [N·nHeads]
  rstdK?: Tensor; // [N·nKv]
  /** x·Aᵀ [N, r] of each adapted projection (the backward needs them; generation shares one). */
  loraTmp: Partial<Record<LoraTarget, Tensor>>;
}

export interface LayerGradients {
  dResid: Tensor; // [N, H] dL/d(residual stream), carried across layers
  dXn: Tensor; // [N, H] gradient of a norm output (summed over the projections reading it)
  dAct: Tensor; // [N, I]
  dUp: Tensor; // [N, I]
  dAttn: Tensor; // [N, nHeads·D]
  dq: Tensor; // [N, nHeads·D]
  dk: Tensor; // [N, nKv·D]
  dv: Tensor; // [N, nKv·D]
  loraDTmp: Tensor | null; // [N, r] scratch
}

export interface TrainWorkspace {
  config: ModelConfig;
  batchSize: number;
  seqLen: number;
  tokens: number;
  lora: Required<LoraConfig> | null;
  lmHeadChunk: number;
  /** Every layer's activations are kept from the forward (`kept`), none recomputed. */
  keepActivations: boolean;
  /** The lm_head logits are kept from the forward (`keptLogits`), computed once. */
  keepLogits: boolean;
  ids: Tensor; // i32 [B, T]
  mask: Tensor; // i32 [B, T]
  positions: Tensor; // i32 [N]
  targets: Tensor; // i32 [N], -100 = ignored
  rowScale: Tensor; // f32 [N], upstream weight -dL/dlogp per token
  resid: Tensor[]; // L + 1 of [N, H]
  /** The one layer's activations (recompute), or layer 0's when every layer keeps its own. */
  layer: LayerActivations;
  /** keepActivations: layer l's activations at [l]; null: every layer uses `layer`, recomputed. */
  kept: LayerActivations[] | null;
  /** The final norm's output [N, H] and 1/rms [N] (ws.layer.xn1/rstd1 unless activations are kept). */
  final: { xn: Tensor; rstd: Tensor };
  grads: LayerGradients | null;
  logits: Tensor; // f32 [N · lmHeadChunk] (keepLogits: the first chunk's kept logits)
  /** keepLogits: one f32 [N · cols] per vocab chunk (vocabChunkRanges); null otherwise. */
  keptLogits: Tensor[] | null;
  /** True between a forward and the backward that consumes kept tensors. */
  fresh: boolean;
  ceState: Tensor; // f32 [N, 4]
  logp: Tensor; // f32 [N]
  lse: Tensor; // f32 [N]
  seqSums: Tensor; // f32 [B]
  seqCounts: Tensor; // f32 [B]
  /** f32 [lmHeadChunk, H]: a slice of the lm_head gradient (full fine-tuning). */
  dWChunk: Tensor | null;
  release(): void;
}

export interface WorkspaceOptions {
  batchSize: number;
  seqLen: number;
  /** Adapter shape the workspace serves (its rank and targets), or null for the base model only. */
  lora: LoraConfig | null;
  /** Allocate the backward's tensors (default true). */
  backward?: boolean;
  fullFineTune?: boolean;
  /** Vocab rows per lm_head chunk; default chooseLmHeadChunk. */
  lmHeadChunk?: number;
  /** Keep every layer's activations instead of recomputing them (default false; see the file comment). */
  keepActivations?: boolean;
  /** Keep every vocab chunk's logits instead of recomputing them (default false). */
  keepLogits?: boolean;
}

/**
 * GPU watchdog bound: at most this many FLOPs (2·M·N·K) in one lm_head matmul dispatch, the
 * bound every kernel shares (MAX_DISPATCH_FLOPS, src/gpu/batch.ts: about 40 ms on a weak
 * integrated GPU at 100 GFLOP/s, 50× under Windows' 2 s TDR). The lm_head was the largest
 * dispatch of a step (Llama-3.2-1B at T 512 with the 64 MiB chunk alone: 2·512·32768·2048 = 69
 * GFLOP in one matmul); bounding its vocab chunk bounds it, down to the 256-row minimum (and the
 * matmul cuts any chunk still above it).
 */
export const LM_HEAD_MAX_DISPATCH_FLOPS = MAX_DISPATCH_FLOPS;

/**
 * Vocab rows per lm_head chunk: chooseChunkSize's bound (64 MiB of logits), at most
 * LM_HEAD_MAX_DISPATCH_FLOPS per chunk matmul (a multiple of 256, at least 256), capped at the
 * largest weight chunk, since a chunk never straddles two weight tensors.
 */
export function chooseLmHeadChunk(tokens: number, lmHeadChunks: readonly ChunkRange[], hidden: number): number {
  const vocab = lmHeadChunks.reduce((s, c) => s + c.rows, 0);
  const byFlops = Math.max(256, Math.floor(LM_HEAD_MAX_DISPATCH_FLOPS / (2 * Math.max(1, tokens) * hidden) / 256) * 256);
  return Math.min(chooseChunkSize(tokens, vocab), byFlops, Math.max(...lmHeadChunks.map((c) => c.rows)));
}

const LAYER_NAMES = ['xn1', 'rstd1', 'q', 'k', 'v', 'attn', 'attnLse', 'h1', 'xn2', 'rstd2', 'gate', 'up', 'act', 'proj'] as const;
const QK_NORM_NAMES = ['qRaw', 'kRaw', 'rstdQ', 'rstdK'] as const;

/** One layer's activations for B sequences of T tokens; LoRA scratch per target, or one shared. */
export function layerActivationSpecs(c: ModelConfig, B: number, T: number, lora: Required<LoraConfig> | null, sharedTmp: boolean): TensorSpec[] {
  const N = B * T;
  const H = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const shapes: Record<(typeof LAYER_NAMES)[number], number[]> = {
    xn1: [N, H],
    rstd1: [N],
    q: [N, qd],
    k: [N, kvd],
    v: [N, kvd],
    attn: [N, qd],
    attnLse: [B, c.numHeads, T],
    h1: [N, H],
    xn2: [N, H],
    rstd2: [N],
    gate: [N, I],
    up: [N, I],
    act: [N, I],
    proj: [N, H],
  };
  const specs: TensorSpec[] = LAYER_NAMES.map((name) => ({ name, shape: shapes[name], dtype: 'f32' }));
  if (c.qkNorm) {
    const qk: Record<(typeof QK_NORM_NAMES)[number], number[]> = { qRaw: [N, qd], kRaw: [N, kvd], rstdQ: [N * c.numHeads], rstdK: [N * c.numKvHeads] };
    for (const name of QK_NORM_NAMES) specs.push({ name, shape: qk[name], dtype: 'f32' });
  }
  if (lora) {
    const names = sharedTmp ? ['loraTmp'] : lora.targets.map((t) => `loraTmp.${t}`);
    for (const name of names) specs.push({ name, shape: [N, lora.rank], dtype: 'f32' });
  }
  return specs;
}

export type WorkspaceCategory = 'inputs' | 'saved' | 'layer' | 'backward' | 'lmHead';

/** The training workspace's tensors by category (see the file comment); kept logits need the lm_head's row chunks. */
export function trainWorkspaceSpecs(
  c: ModelConfig,
  o: WorkspaceOptions & { lmHeadChunk: number; lmHeadRows?: readonly ChunkRange[] },
): Record<WorkspaceCategory, TensorSpec[]> {
  const B = o.batchSize;
  const T = o.seqLen;
  const N = B * T;
  const H = c.hiddenSize;
  const lora = o.lora ? resolveLoraConfig(o.lora) : null;
  const backward = o.backward ?? true;
  const f32 = (name: string, shape: number[]): TensorSpec => ({ name, shape, dtype: 'f32' });
  const i32 = (name: string, shape: number[]): TensorSpec => ({ name, shape, dtype: 'i32' });
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const keepLogits = o.keepLogits ?? false;
  if (keepLogits && !o.lmHeadRows) throw new Error('trainWorkspaceSpecs: keepLogits needs lmHeadRows (the lm_head row chunks)');
  const logits = keepLogits
    ? vocabChunkRanges(o.lmHeadRows!, o.lmHeadChunk).map((r, i) => f32(`logits.${i}`, [N * r.cols]))
    : [f32('logits', [N * o.lmHeadChunk])];
  const layer = o.keepActivations
    ? [
        ...Array.from({ length: c.numLayers }, (_, l) => layerActivationSpecs(c, B, T, lora, false).map((s) => ({ ...s, name: `layer.${l}.${s.name}` }))).flat(),
        f32('final.xn', [N, H]),
        f32('final.rstd', [N]),
      ]
    : layerActivationSpecs(c, B, T, lora, false);
  return {
    inputs: [i32('ids', [B, T]), i32('mask', [B, T]), i32('positions', [N]), i32('targets', [N]), f32('rowScale', [N])],
    saved: Array.from({ length: c.numLayers + 1 }, (_, l) => f32(`resid.${l}`, [N, H])),
    layer,
    backward: backward
      ? [
          f32('dResid', [N, H]),
          f32('dXn', [N, H]),
          f32('dAct', [N, I]),
          f32('dUp', [N, I]),
          f32('dAttn', [N, qd]),
          f32('dq', [N, qd]),
          f32('dk', [N, kvd]),
          f32('dv', [N, kvd]),
          ...(lora ? [f32('loraDTmp', [N, lora.rank])] : []),
        ]
      : [],
    lmHead: [
      ...logits,
      f32('ceState', [N, CE_STATE_WIDTH]),
      f32('logp', [N]),
      f32('lse', [N]),
      f32('seqSums', [B]),
      f32('seqCounts', [B]),
      ...(backward && o.fullFineTune ? [f32('dWChunk', [o.lmHeadChunk, H])] : []),
    ],
  };
}

/** LayerActivations over tensors allocated from layerActivationSpecs (a shared scratch serves every target). */
export function layerActivationsFrom(t: Record<string, Tensor>, lora: Required<LoraConfig> | null, shared: boolean): LayerActivations {
  const loraTmp: Partial<Record<LoraTarget, Tensor>> = {};
  if (lora) for (const target of shared ? LORA_TARGETS : lora.targets) loraTmp[target] = shared ? t.loraTmp! : t[`loraTmp.${target}`]!;
  const l = { loraTmp } as LayerActivations;
  for (const name of LAYER_NAMES) l[name] = t[name]!;
  for (const name of QK_NORM_NAMES) if (t[name]) l[name] = t[name];
  return l;
}

/** Allocate a training (or scoring, with backward: false) workspace for [B, T] batches. */
export function createTrainWorkspace(model: DecoderModel, o: WorkspaceOptions): TrainWorkspace {
  const { ctx, config: c, layout } = model;
  checkSequenceLength(c, o.seqLen, 'a training or scoring batch');
  if ((o.backward ?? true) && c.head !== 'causal-lm')
    throw new Error('this is a reward (sequence-classification) model: it scores text, Fuse Studio does not train it');
  const lmHeadRows = layout.lmHeadChunks ?? layout.embedChunks;
  const lmHeadChunk = o.lmHeadChunk ?? chooseLmHeadChunk(o.batchSize * o.seqLen, lmHeadRows, c.hiddenSize);
  const specs = trainWorkspaceSpecs(c, { ...o, lmHeadChunk, lmHeadRows });
  const all = Object.values(specs).flat();
  const t = allocateSpecs<string>(ctx, all);
  const lora = o.lora ? resolveLoraConfig(o.lora) : null;
  const backward = o.backward ?? true;
  const keepActivations = o.keepActivations ?? false;
  const keepLogits = o.keepLogits ?? false;
  const prefixed = (prefix: string) => Object.fromEntries(Object.entries(t).flatMap(([k, v]) => (k.startsWith(prefix) ? [[k.slice(prefix.length), v]] : [])));
  const kept = keepActivations ? Array.from({ length: c.numLayers }, (_, l) => layerActivationsFrom(prefixed(`layer.${l}.`), lora, false)) : null;
  const layer = kept ? kept[0]! : layerActivationsFrom(t, lora, false);
  const keptLogits = keepLogits ? specs.lmHead.filter((s) => s.name.startsWith('logits.')).map((s) => t[s.name]!) : null;
  return {
    config: c,
    batchSize: o.batchSize,
    seqLen: o.seqLen,
    tokens: o.batchSize * o.seqLen,
    lora,
    lmHeadChunk,
    keepActivations,
    keepLogits,
    ids: t.ids!,
    mask: t.mask!,
    positions: t.positions!,
    targets: t.targets!,
    rowScale: t.rowScale!,
    resid: specs.saved.map((s) => t[s.name]!),
    layer,
    kept,
    final: kept ? { xn: t['final.xn']!, rstd: t['final.rstd']! } : { xn: layer.xn1, rstd: layer.rstd1 },
    grads: backward
      ? {
          dResid: t.dResid!,
          dXn: t.dXn!,
          dAct: t.dAct!,
          dUp: t.dUp!,
          dAttn: t.dAttn!,
          dq: t.dq!,
          dk: t.dk!,
          dv: t.dv!,
          loraDTmp: t.loraDTmp ?? null,
        }
      : null,
    logits: keptLogits ? keptLogits[0]! : t.logits!,
    keptLogits,
    fresh: false,
    ceState: t.ceState!,
    logp: t.logp!,
    lse: t.lse!,
    seqSums: t.seqSums!,
    seqCounts: t.seqCounts!,
    dWChunk: t.dWChunk ?? null,
    release() {
      for (const x of Object.values(t)) x.release();
    },
  };
}
