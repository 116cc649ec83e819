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
//   layerActivations     one layer's activations (recomputed per layer in the backward), or with
//                        keepActivations every layer's and the final norm's (nothing recomputed)
//   layerGradients       one layer's gradients
//   lmHead               lm_head / cross-entropy workspace (a vocab chunk of logits, lse state, logp, lse);
//                        with keepLogits every chunk's logits ([B·T × V] in all, computed once)
//
// planTrainingStep decides what a training step keeps: the lm_head logits (saves one lm_head
// pass) and the layers' activations (saves recomputing every layer's forward) when the step's
// plan with them fits the memory budget, else the chunked / recomputed path.
//   batchInputs          ids, mask, positions, targets, row weights
//   uniforms             the uniform arena of one command batch
//   kvCache              generation: k and v of every layer, mask, hidden, [B, V] logits; with shared
//                        prompts (generation.prompts < batch) also the prefill cache of those prompts
//   generationWorkspace  generation: the per-append workspace of the prefill, then of decode steps
//                        (the pool keeps the prefill's buffers cached and reuses those of equal size;
//                        with shared prompts the prefill's [prompts × prefill] workspace and the
//                        decode steps' [batch × 1] one are both held)
//
// planGenerationBatch picks the largest batch of rows whose generation plan fits a memory budget
// and the device's buffer limits; generationBatchLayout is how generateSamples (generate.ts)
// groups rows and prompts into such a batch, so the plan and the allocation agree.
import type { DType } from '../gpu/dtype';
import type { QuantDType } from '../gpu/quant';
import { chooseLmHeadChunk, trainWorkspaceSpecs } from './activations';
import { UNIFORM_ARENA_BYTES } from './chain';
import type { ModelConfig } from './config';
import { fullGradSpecs } from './full-grads';
import { kvCacheSpecs, stepWorkspaceSpecs } from './kv-cache';
import { modelSpecs } from './decoder';
import { loraSpecs, resolveLoraConfig, type LoraTarget } from './lora';
import { PoolModel, specBytes } from './specs';
import { DEFAULT_BINDING_BYTES, planWeightLayout, weightSpecs, type WeightLayout } from './weight-layout';

export interface MemoryPlanOptions {
  batch: number;
  seq: number;
  /** LoRA rank; 0 or omitted: no adapter. */
  loraRank?: number;
  /** Default: all seven projections. */
  targets?: readonly LoraTarget[];
  fullFineTune?: boolean;
  weightDType: DType;
  /** A quantized base: projections in this format, embedding / lm_head int8 (weights.ts). */
  quant?: QuantDType | null;
  /** The device's binding limit, which decides how the embedding is split (default 128 MiB). */
  maxBindingBytes?: number;
  /** Per-tensor dtypes by Hugging Face name (a GGUF file's tensor table: ModelMeta.tensorDTypes). */
  tensorDTypes?: Readonly<Record<string, DType>>;
  /** The layout of loaded weights (model.layout), instead of the one planned from the fields above. */
  layout?: WeightLayout;
  /** Vocab rows per lm_head chunk (default: what the workspace picks). */
  lmHeadChunk?: number;
  /** Training keeps every layer's activations / every chunk's logits (planTrainingStep decides; default false). */
  keepActivations?: boolean;
  keepLogits?: boolean;
  /**
   * Generation: sequences (rows), positions per sequence, the prefill length (default capacity),
   * and the distinct prompts prefilled once and copied into the rows that sample from them
   * (generateSamples; default `batch`: each row prefilled in place).
   */
  generation?: GenerationShape;
}

export interface GenerationShape {
  batch: number;
  capacity: number;
  prefill?: number;
  prompts?: number;
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
  /** What the training step keeps (the options it was planned with). */
  keepActivations: boolean;
  keepLogits: boolean;
  /** The largest single tensor: it must fit the device's maxStorageBufferBindingSize. */
  largestTensor: { name: string; bytes: number };
}

export function planMemory(config: ModelConfig, o: MemoryPlanOptions): MemoryPlan {
  if (o.quant && o.fullFineTune) throw new Error('planMemory: full fine-tuning needs a float base; a quantized base trains LoRA adapters only');
  const layout = o.layout ?? planWeightLayout(config, o.weightDType, o.maxBindingBytes ?? DEFAULT_BINDING_BYTES, o.quant ?? null, o.tensorDTypes);
  const lora = o.loraRank ? resolveLoraConfig({ rank: o.loraRank, alpha: o.loraRank, ...(o.targets ? { targets: o.targets } : {}) }) : null;
  const tokens = o.batch * o.seq;
  const lmHeadRows = layout.lmHeadChunks ?? layout.embedChunks;
  const lmHeadChunk = o.lmHeadChunk ?? chooseLmHeadChunk(tokens, lmHeadRows, config.hiddenSize);
  const keepActivations = o.keepActivations ?? false;
  const keepLogits = o.keepLogits ?? false;
  const ws = trainWorkspaceSpecs(config, {
    batchSize: o.batch,
    seqLen: o.seq,
    lora,
    backward: true,
    fullFineTune: o.fullFineTune ?? false,
    lmHeadChunk,
    lmHeadRows,
    keepActivations,
    keepLogits,
  });
  const adapters = lora ? loraSpecs(config, lora, true) : { adapters: [], grads: [], moments: [] };
  const full = o.fullFineTune ? fullGradSpecs(layout) : { grads: [], moments: [] };
  const g = o.generation;
  const gen = g ? generationSpecs(layout, g, lora) : null;
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
    kvCache: gen ? specBytes(gen.caches) : 0,
    generationWorkspace: gen ? gen.workspaceBytes : 0,
  };
  const all = [...weightSpecs(layout), ...Object.values(ws).flat(), ...adapters.adapters, ...full.grads, ...(gen ? [...gen.caches, ...gen.workspaces] : [])];
  const largestTensor = all.reduce((best, t) => {
    const b = specBytes([t]);
    return b > best.bytes ? { name: t.name, bytes: b } : best;
  }, { name: '', bytes: 0 });
  const sum = (cats: readonly MemoryCategory[]) => cats.reduce((s, k) => s + bytes[k], 0);
  const training = sum(MEMORY_CATEGORIES.filter((k) => k !== 'kvCache' && k !== 'generationWorkspace'));
  const generation = sum(['weights', 'adapters', 'kvCache', 'generationWorkspace', 'uniforms']);
  return { bytes, training, generation, total: training + bytes.kvCache + bytes.generationWorkspace, lmHeadChunk, keepActivations, keepLogits, largestTensor };
}

/**
 * Without a stated budget, a step may take this much more than its leanest (checkpointed,
 * chunked) plan — the figure the studio and `fuse-studio plan` show and check against the stated
 * memory — a quarter more, at most 256 MiB, so a step that fit with little to spare still fits.
 */
export const DEFAULT_KEEP_HEADROOM = 0.25;
export const DEFAULT_KEEP_MAX_EXTRA_BYTES = 256 * 2 ** 20;

/** The budget of a step when the caller states none: the leanest plan's bytes plus the default headroom. */
export function defaultStepBudget(config: ModelConfig, o: Omit<MemoryPlanOptions, 'keepActivations' | 'keepLogits'>): number {
  const lean = planMemory(config, { ...o, keepActivations: false, keepLogits: false }).training;
  return lean + Math.min(Math.floor(lean * DEFAULT_KEEP_HEADROOM), DEFAULT_KEEP_MAX_EXTRA_BYTES);
}

export interface TrainingStepPlan {
  keepActivations: boolean;
  keepLogits: boolean;
  /** The plan of the chosen step (its `training` figure is what was checked against the budget). */
  plan: MemoryPlan;
  /** Why, for logs and the studio: what is kept or recomputed and the bytes against the budget. */
  reason: string;
}

/**
 * What a training step keeps instead of recomputing, the first of these whose `training` bytes
 * fit `budgetBytes`: logits and activations; logits only (they save the most FLOPs per byte kept:
 * H/2, i.e. 2·V·H per token for 4·V bytes, against ~750 for a Llama-3.2-1B layer's activations);
 * activations only; neither (the checkpointed, chunked step, planned whatever the budget). A null
 * budget keeps nothing; `defaultStepBudget` is the budget when the caller knows none.
 */
export function planTrainingStep(config: ModelConfig, o: Omit<MemoryPlanOptions, 'keepActivations' | 'keepLogits'>, budgetBytes: number | null): TrainingStepPlan {
  const choices = [
    { keepActivations: true, keepLogits: true },
    { keepActivations: false, keepLogits: true },
    { keepActivations: true, keepLogits: false },
  ];
  const fallback = planMemory(config, { ...o, keepActivations: false, keepLogits: false });
  const what = (k: { keepActivations: boolean; keepLogits: boolean }) =>
    `${k.keepLogits ? 'lm_head logits computed once' : 'lm_head logits recomputed in the backward (chunked)'}, ${k.keepActivations ? 'layer activations kept' : 'layer activations recomputed per layer'}`;
  if (budgetBytes !== null)
    for (const k of choices) {
      const plan = planMemory(config, { ...o, ...k });
      if (plan.training <= budgetBytes) return { ...k, plan, reason: `${what(k)}: ${formatBytes(plan.training)} fits the ${formatBytes(budgetBytes)} budget` };
    }
  const why = budgetBytes === null ? 'no memory budget given' : `keeping more needs more than the ${formatBytes(budgetBytes)} budget`;
  return { keepActivations: false, keepLogits: false, plan: fallback, reason: `${what({ keepActivations: false, keepLogits: false })}: ${why} (${formatBytes(fallback.training)})` };
}

/**
 * What a generation allocates: its cache(s), and the peak of its per-append workspaces.
 * In place (prompts = batch): the prefill's workspace is released when the first decode step
 * allocates its own, and the pool reuses same-size buffers. Shared (prompts < batch): a
 * [prompts, prefill] cache and its prefill workspace, then the [batch, capacity] cache the rows
 * decode in and its [batch, 1] step workspace, all held until the generation ends.
 */
function generationSpecs(layout: WeightLayout, g: GenerationShape, lora: Parameters<typeof stepWorkspaceSpecs>[3]) {
  const config = layout.config;
  const prefill = g.prefill ?? g.capacity;
  const prompts = g.prompts ?? g.batch;
  const caches = kvCacheSpecs(layout, { batchSize: g.batch, capacity: g.capacity });
  if (prompts < g.batch) {
    caches.push(...kvCacheSpecs(layout, { batchSize: prompts, capacity: prefill }));
    const workspaces = [...stepWorkspaceSpecs(config, prompts, prefill, lora), ...stepWorkspaceSpecs(config, g.batch, 1, lora)];
    return { caches, workspaces, workspaceBytes: specBytes(workspaces) };
  }
  const pool = new PoolModel();
  const first = stepWorkspaceSpecs(config, g.batch, prefill, lora);
  pool.acquire(first);
  if (prefill !== 1) {
    pool.release(first);
    pool.acquire(stepWorkspaceSpecs(config, g.batch, 1, lora));
  }
  return { caches, workspaces: first, workspaceBytes: pool.peak };
}

// ---- the batch of a generation ---------------------------------------------------------------

/**
 * How generateSamples groups the rows of `prompts` prompts × `samplesPerPrompt` samples into
 * batches of at most `batchSize` rows: whole prompts (all their samples) per batch when
 * batchSize ≥ samplesPerPrompt, else batchSize samples of one prompt. `rows`: rows per batch;
 * `prefillRows`: prompts prefilled per batch (shared by their samples when < rows).
 */
export function generationBatchLayout(batchSize: number, samplesPerPrompt: number, prompts = Infinity): { rows: number; prefillRows: number } {
  const n = samplesPerPrompt;
  if (n === 1) {
    const rows = Math.min(batchSize, prompts);
    return { rows, prefillRows: rows };
  }
  if (batchSize >= n) {
    const per = Math.min(Math.floor(batchSize / n), prompts);
    return { rows: per * n, prefillRows: per };
  }
  return { rows: batchSize, prefillRows: 1 };
}

export interface GenerationBatchOptions {
  weightDType: DType;
  quant?: QuantDType | null;
  /** Per-tensor dtypes (a GGUF base: model.layout.tensorDTypes). */
  tensorDTypes?: Readonly<Record<string, DType>>;
  /** LoRA rank of the adapter generation runs with; 0 or omitted: none. */
  loraRank?: number;
  targets?: readonly LoraTarget[];
  /** The device's maxStorageBufferBindingSize (default 128 MiB); it also splits the embedding. */
  maxBindingBytes?: number;
  /** The device's maxBufferSize (default: maxBindingBytes). */
  maxBufferBytes?: number;
  /**
   * GPU bytes the generation may use in all (weights, adapter, caches, workspaces: the plan's
   * `generation` figure); null: unknown, only the buffer limits and maxRows bound the batch.
   */
  memoryBytes: number | null;
  /** Tokens of the longest prompt. */
  promptTokens: number;
  maxNewTokens: number;
  /** Default 1. */
  samplesPerPrompt?: number;
  /** At most this many rows (default 16). */
  maxRows?: number;
}

export interface GenerationBatchPlan {
  /** The batchSize to pass to generateSamples: rows decoded together. */
  batchSize: number;
  /** Prompts prefilled per batch. */
  prefillRows: number;
  /** The plan of that batch (its `generation` figure is what was checked against memoryBytes). */
  plan: MemoryPlan;
  /** What stopped it from growing: maxRows, the memory budget, or a buffer limit. */
  limitedBy: 'maxRows' | 'memory' | 'buffer limit';
}

export const DEFAULT_MAX_GENERATION_ROWS = 16;

/** The generation shape of a batch of `rows` rows (see generationBatchLayout) for the planner. */
export function generationShape(rows: number, o: Pick<GenerationBatchOptions, 'promptTokens' | 'maxNewTokens' | 'samplesPerPrompt'>): GenerationShape {
  const l = generationBatchLayout(rows, o.samplesPerPrompt ?? 1);
  return { batch: l.rows, capacity: o.promptTokens + o.maxNewTokens - 1, prefill: o.promptTokens, prompts: l.prefillRows };
}

/**
 * The largest batch (rows decoded together) whose generation plan fits `memoryBytes` and whose
 * largest tensor fits the buffer limits; throws, saying what does not fit, when one row does not.
 */
export function planGenerationBatch(config: ModelConfig, o: GenerationBatchOptions): GenerationBatchPlan {
  const n = o.samplesPerPrompt ?? 1;
  const maxRows = o.maxRows ?? DEFAULT_MAX_GENERATION_ROWS;
  const check = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`planGenerationBatch: ${name} ${v} must be an integer ≥ ${min}`);
  };
  check('promptTokens', o.promptTokens, 1);
  check('maxNewTokens', o.maxNewTokens, 1);
  check('samplesPerPrompt', n, 1);
  check('maxRows', maxRows, 1);
  const bindingBytes = o.maxBindingBytes ?? DEFAULT_BINDING_BYTES;
  const bufferLimit = Math.min(bindingBytes, o.maxBufferBytes ?? bindingBytes);
  const planFor = (rows: number) =>
    planMemory(config, {
      batch: 1,
      seq: 1,
      weightDType: o.weightDType,
      quant: o.quant ?? null,
      maxBindingBytes: bindingBytes,
      ...(o.tensorDTypes ? { tensorDTypes: o.tensorDTypes } : {}),
      ...(o.loraRank ? { loraRank: o.loraRank } : {}),
      ...(o.targets ? { targets: o.targets } : {}),
      generation: generationShape(rows, o),
    });
  const why = (plan: MemoryPlan): 'memory' | 'buffer limit' | null =>
    plan.largestTensor.bytes > bufferLimit ? 'buffer limit' : o.memoryBytes !== null && plan.generation > o.memoryBytes ? 'memory' : null;
  // The batch sizes generateSamples can form (ascending); bytes and the largest tensor grow with
  // rows, so the largest that fits is found by bisection.
  const sizes = [...new Set(Array.from({ length: maxRows }, (_, r) => generationBatchLayout(r + 1, n).rows))].sort((a, b) => a - b);
  const verdict = new Map<number, { plan: MemoryPlan; problem: 'memory' | 'buffer limit' | null }>();
  const at = (k: number) => {
    let v = verdict.get(k);
    if (!v) {
      const plan = planFor(sizes[k]!);
      verdict.set(k, (v = { plan, problem: why(plan) }));
    }
    return v;
  };
  let lo = -1; // largest index known to fit
  let hi = sizes.length; // smallest index known not to fit
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (at(mid).problem) hi = mid;
    else lo = mid;
  }
  if (lo >= 0) {
    const rows = sizes[lo]!;
    const limitedBy = hi < sizes.length ? at(hi).problem! : 'maxRows';
    return { batchSize: rows, prefillRows: generationBatchLayout(rows, n).prefillRows, plan: at(lo).plan, limitedBy };
  }
  const one = planFor(1);
  const what = `generation of one row (${o.promptTokens} prompt + ${o.maxNewTokens} new tokens)`;
  throw new Error(
    why(one) === 'buffer limit'
      ? `${what}: ${one.largestTensor.name} (${formatBytes(one.largestTensor.bytes)}) exceeds this device's buffer limit of ${formatBytes(bufferLimit)}; generate fewer tokens`
      : `${what} needs ${formatBytes(one.generation)}, more than the ${formatBytes(o.memoryBytes!)} available; generate fewer tokens or use a smaller model`,
  );
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
