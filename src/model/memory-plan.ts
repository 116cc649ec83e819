// Memory plan: the GPU bytes a configuration needs, computed without a GPU by summing the very
// TensorSpec lists the code allocates from (weights as uploadWeights splits them, adapters,
// workspaces, KV cache), each rounded as the buffer pool rounds. The measured figure is
// ctx.pool.stats().peakBytes; memory-plan.test.ts checks the two agree.
//
// Categories:
//   weights              base weights (embedding/lm_head in row chunks) + RoPE inverse frequencies
//   adapters             LoRA A and B
//   adapterGrads         their gradients
//   optimizerMoments     AdamW m and v of every trainable tensor (adapters, or all weights)
//   fullGrads            gradients of every base weight (full fine-tuning)
//   savedLayerInputs     the residual stream entering each layer + the final norm input, [B·T, H] × (L + 1)
//   layerActivations     one layer's activations (recomputed per layer in the backward)
//   layerGradients       one layer's gradients
//   lmHead               lm_head / cross-entropy workspace (a vocab chunk of logits, lse state, logp, lse)
//   batchInputs          ids, mask, positions, targets, row weights
//   uniforms             the uniform arena of one command batch
//   kvCache              generation: k and v of every layer, mask, hidden, [B, V] logits
//   generationWorkspace  generation: the per-append workspace of the prefill, then of decode steps
//                        (the pool keeps the prefill's buffers cached and reuses those of equal size)
import type { DType } from '../gpu/dtype';
import { chooseLmHeadChunk, trainWorkspaceSpecs } from './activations';
import { UNIFORM_ARENA_BYTES } from './chain';
import type { ModelConfig } from './config';
import { fullGradSpecs } from './full-grads';
import { kvCacheSpecs, stepWorkspaceSpecs } from './kv-cache';
import { modelSpecs } from './decoder';
import { loraSpecs, resolveLoraConfig, type LoraTarget } from './lora';
import { PoolModel, specBytes } from './specs';
import { DEFAULT_BINDING_BYTES, planWeightLayout, weightSpecs } from './weight-layout';

export interface MemoryPlanOptions {
  batch: number;
  seq: number;
  /** LoRA rank; 0 or omitted: no adapter. */
  loraRank?: number;
  /** Default: all seven projections. */
  targets?: readonly LoraTarget[];
  fullFineTune?: boolean;
  weightDType: DType;
  /** The device's binding limit, which decides how the embedding is split (default 128 MiB). */
  maxBindingBytes?: number;
  /** Vocab rows per lm_head chunk (default: what the workspace picks). */
  lmHeadChunk?: number;
  /** Generation: sequences, positions per sequence, and the prefill length (default capacity). */
  generation?: { batch: number; capacity: number; prefill?: number };
}

export const MEMORY_CATEGORIES = [
  'weights',
  'adapters',
  'adapterGrads',
  'optimizerMoments',
  'fullGrads',
  'savedLayerInputs',
  'layerActivations',
  'layerGradients',
  'lmHead',
  'batchInputs',
  'uniforms',
  'kvCache',
  'generationWorkspace',
] as const;
export type MemoryCategory = (typeof MEMORY_CATEGORIES)[number];

export interface MemoryPlan {
  bytes: Record<MemoryCategory, number>;
  /** Peak of a training step: everything but generation. */
  training: number;
  /** Generation alone: weights, adapters (values), KV cache, its workspace, uniforms. */
  generation: number;
  /** Training and generation state held at once. */
  total: number;
  lmHeadChunk: number;
  /** The largest single tensor: it must fit the device's maxStorageBufferBindingSize. */
  largestTensor: { name: string; bytes: number };
}

export function planMemory(config: ModelConfig, o: MemoryPlanOptions): MemoryPlan {
  const layout = planWeightLayout(config, o.weightDType, o.maxBindingBytes ?? DEFAULT_BINDING_BYTES);
  const lora = o.loraRank ? resolveLoraConfig({ rank: o.loraRank, alpha: o.loraRank, ...(o.targets ? { targets: o.targets } : {}) }) : null;
  const tokens = o.batch * o.seq;
  const lmHeadChunk = o.lmHeadChunk ?? chooseLmHeadChunk(tokens, layout.lmHeadChunks ?? layout.embedChunks);
  const ws = trainWorkspaceSpecs(config, { batchSize: o.batch, seqLen: o.seq, lora, backward: true, fullFineTune: o.fullFineTune ?? false, lmHeadChunk });
  const adapters = lora ? loraSpecs(config, lora, true) : { adapters: [], grads: [], moments: [] };
  const full = o.fullFineTune ? fullGradSpecs(layout) : { grads: [], moments: [] };
  const g = o.generation;
  const bytes: Record<MemoryCategory, number> = {
    weights: specBytes(weightSpecs(layout)) + specBytes(modelSpecs(config)),
    adapters: specBytes(adapters.adapters),
    adapterGrads: specBytes(adapters.grads),
    optimizerMoments: specBytes(adapters.moments) + specBytes(full.moments),
    fullGrads: specBytes(full.grads),
    savedLayerInputs: specBytes(ws.saved),
    layerActivations: specBytes(ws.layer),
    layerGradients: specBytes(ws.backward),
    lmHead: specBytes(ws.lmHead),
    batchInputs: specBytes(ws.inputs),
    // Every batch holds at most MAX_DISPATCHES_PER_BATCH dispatches: one arena (see chain.ts).
    uniforms: UNIFORM_ARENA_BYTES,
    kvCache: g ? specBytes(kvCacheSpecs(layout, { batchSize: g.batch, capacity: g.capacity })) : 0,
    generationWorkspace: g ? generationWorkspaceBytes(config, g.batch, g.prefill ?? g.capacity, lora) : 0,
  };
  const all = [...weightSpecs(layout), ...Object.values(ws).flat(), ...adapters.adapters, ...full.grads];
  if (g) all.push(...kvCacheSpecs(layout, { batchSize: g.batch, capacity: g.capacity }), ...stepWorkspaceSpecs(config, g.batch, g.prefill ?? g.capacity, lora));
  const largestTensor = all.reduce((best, t) => {
    const b = specBytes([t]);
    return b > best.bytes ? { name: t.name, bytes: b } : best;
  }, { name: '', bytes: 0 });
  const sum = (cats: readonly MemoryCategory[]) => cats.reduce((s, k) => s + bytes[k], 0);
  const training = sum(MEMORY_CATEGORIES.filter((k) => k !== 'kvCache' && k !== 'generationWorkspace'));
  const generation = sum(['weights', 'adapters', 'kvCache', 'generationWorkspace', 'uniforms']);
  return { bytes, training, generation, total: training + bytes.kvCache + bytes.generationWorkspace, lmHeadChunk, largestTensor };
}

/** The prefill's workspace is released when the first decode step allocates its own; the pool reuses same-size buffers. */
function generationWorkspaceBytes(config: ModelConfig, batch: number, prefill: number, lora: Parameters<typeof stepWorkspaceSpecs>[3]): number {
  const pool = new PoolModel();
  const first = stepWorkspaceSpecs(config, batch, prefill, lora);
  pool.acquire(first);
  if (prefill !== 1) {
    pool.release(first);
    pool.acquire(stepWorkspaceSpecs(config, batch, 1, lora));
  }
  return pool.peak;
}

/** "1.23 GiB"-style figure for reports. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 2 : 0)} ${units[i]}`;
}
