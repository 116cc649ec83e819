// The Model page's verdict on whether LoRA training fits this device, and what would fit when it
// does not. WebGPU reports buffer limits but not total GPU memory, so the user may state their
// GPU's memory; without it only the limits are checked.

import type { ModelConfig } from '../model/config';
import type { DType } from '../gpu/dtype';
import type { QuantDType } from '../gpu/quant';
import { formatBytes, planMemory, type MemoryPlan } from '../model/memory-plan';
import { PRESET_PLAN_DEFAULTS, planScoring } from '../model/preset-plans';
import { downloadSize, formatDownload, PRESETS, presetModelConfig, weightDTypeOf, type ModelPreset } from '../model/presets';

export interface PlanChoice {
  seq: number;
  rank: number;
}

export interface DeviceLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  /** What the user says their GPU has free, in bytes; null: unknown. */
  memoryBytes: number | null;
}

export const SEQ_CHOICES = [128, 256, 512, 1024, 2048, 4096] as const;
export const RANK_CHOICES = [4, 8, 16, 32, 64] as const;

export interface PlanVerdict {
  plan: MemoryPlan;
  fits: boolean;
  /** Why it does not fit (empty when it fits). */
  problems: string[];
  /** Settings that would fit, nearest first (empty when it fits or nothing does). */
  alternatives: string[];
}

function planFor(config: ModelConfig, dtype: DType, c: PlanChoice, limits: DeviceLimits, quant: QuantDType | null = null, tensorDTypes?: Readonly<Record<string, DType>>): MemoryPlan {
  return planMemory(config, { batch: 1, seq: c.seq, loraRank: c.rank, weightDType: dtype, quant, maxBindingBytes: limits.maxStorageBufferBindingSize, ...(tensorDTypes ? { tensorDTypes } : {}) });
}

/** Why `needed` bytes (the work named by `what`) and its largest tensor do not fit the device. */
function problemsFor(needed: number, largest: { name: string; bytes: number }, what: string, limits: DeviceLimits): string[] {
  const out: string[] = [];
  const bufferLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  if (largest.bytes > bufferLimit)
    out.push(`${largest.name} (${formatBytes(largest.bytes)}) exceeds this device’s buffer limit of ${formatBytes(bufferLimit)}`);
  if (limits.memoryBytes !== null && needed > limits.memoryBytes)
    out.push(`${what} needs ${formatBytes(needed)}, more than the ${formatBytes(limits.memoryBytes)} you said this GPU has`);
  return out;
}

function problemsOf(plan: MemoryPlan, limits: DeviceLimits): string[] {
  return problemsFor(plan.training, plan.largestTensor, 'a training step', limits);
}

/** The plan for `choice`, whether it fits, and if not the nearest settings that would. */
export function planVerdict(config: ModelConfig, dtype: DType, choice: PlanChoice, limits: DeviceLimits, quant: QuantDType | null = null, tensorDTypes?: Readonly<Record<string, DType>>): PlanVerdict {
  const plan = planFor(config, dtype, choice, limits, quant, tensorDTypes);
  const problems = problemsOf(plan, limits);
  if (!problems.length) return { plan, fits: true, problems, alternatives: [] };
  const alternatives: string[] = [];
  const fitsWith = (c: PlanChoice) => problemsOf(planFor(config, dtype, c, limits, quant, tensorDTypes), limits).length === 0;
  // Shorter sequences first (the largest activations scale with it), then smaller ranks, then both.
  const seq = [...SEQ_CHOICES].reverse().find((s) => s < choice.seq && fitsWith({ seq: s, rank: choice.rank }));
  if (seq) alternatives.push(`sequence length ${seq} at rank ${choice.rank} (${formatBytes(planFor(config, dtype, { seq, rank: choice.rank }, limits, quant, tensorDTypes).training)})`);
  const rank = [...RANK_CHOICES].reverse().find((r) => r < choice.rank && fitsWith({ seq: choice.seq, rank: r }));
  if (rank) alternatives.push(`rank ${rank} at sequence length ${choice.seq} (${formatBytes(planFor(config, dtype, { seq: choice.seq, rank }, limits, quant, tensorDTypes).training)})`);
  if (!seq && !rank && fitsWith({ seq: SEQ_CHOICES[0], rank: RANK_CHOICES[0] }))
    alternatives.push(`sequence length ${SEQ_CHOICES[0]} at rank ${RANK_CHOICES[0]}`);
  if (!alternatives.length) alternatives.push(config.hiddenSize >= 3072 ? 'a smaller model: Llama-3.2-1B-Instruct instead of the 3B' : 'a smaller model, or a GPU with more memory');
  return { plan, fits: false, problems, alternatives };
}

// ---- presets: the verdict before anything is downloaded -----------------------------------

export interface PresetVerdict {
  /** What the preset's role needs on the GPU, in bytes. */
  needed: number;
  /** That work, for people: "a training step (batch 1 × 512 tokens, LoRA r16)". */
  what: string;
  fits: boolean;
  problems: string[];
  /** Settings that would fit (targets: shorter sequence, smaller rank). */
  alternatives: string[];
  /** The largest preset of the same role that fits, when this one does not. */
  instead: ModelPreset | null;
}

/**
 * The verdict on a preset for its role, from its config alone: targets train (a LoRA step at the
 * chosen sequence length and rank, batch 1, as planVerdict), sources generate (a KV cache of the
 * default capacity), reward models score (scoreRewards' largest batch).
 */
export function presetVerdict(p: ModelPreset, choice: PlanChoice, limits: DeviceLimits): Omit<PresetVerdict, 'instead'> {
  const c = presetModelConfig(p);
  const dtype = weightDTypeOf(c);
  const maxBindingBytes = limits.maxStorageBufferBindingSize;
  if (p.role === 'target') {
    const v = planVerdict(c, dtype, choice, limits);
    // Settings only: the smaller model to use instead is named from the presets (presetVerdicts).
    const alternatives = v.alternatives.filter((a) => !a.startsWith('a smaller model'));
    return { needed: v.plan.training, what: `a training step (batch 1 × ${choice.seq} tokens, LoRA r${choice.rank})`, fits: v.fits, problems: v.problems, alternatives };
  }
  if (p.role === 'source') {
    const g = PRESET_PLAN_DEFAULTS.generation;
    const plan = planMemory(c, { batch: 1, seq: 1, weightDType: dtype, maxBindingBytes, generation: g });
    const what = `generation (${g.capacity.toLocaleString('en-US')} positions)`;
    const problems = problemsFor(plan.generation, plan.largestTensor, what, limits);
    return { needed: plan.generation, what, fits: problems.length === 0, problems, alternatives: [] };
  }
  const s = PRESET_PLAN_DEFAULTS.scoring;
  const plan = planScoring(c, { ...s, weightDType: dtype, maxBindingBytes });
  const what = `scoring (${s.batch} × ${s.seq.toLocaleString('en-US')} tokens)`;
  const problems = problemsFor(plan.bytes, plan.largestTensor, what, limits);
  return { needed: plan.bytes, what, fits: problems.length === 0, problems, alternatives: [] };
}

/** Every preset's verdict, each non-fitting one with the largest preset of its role that fits. */
export function presetVerdicts(choice: PlanChoice, limits: DeviceLimits, presets: readonly ModelPreset[] = PRESETS): Map<string, PresetVerdict> {
  const base = new Map(presets.map((p) => [p.id, presetVerdict(p, choice, limits)]));
  const out = new Map<string, PresetVerdict>();
  for (const p of presets) {
    const v = base.get(p.id)!;
    let instead: ModelPreset | null = null;
    if (!v.fits)
      for (const q of presets) {
        const w = base.get(q.id)!;
        if (q.role === p.role && w.fits && w.needed < v.needed && (!instead || w.needed > base.get(instead.id)!.needed)) instead = q;
      }
    out.set(p.id, { ...v, instead });
  }
  return out;
}

// ---- weights: bf16, int8 or int4 ----------------------------------------------------------

/** How a target model's base is kept on the GPU: its file's dtype (null) or quantized. */
export type WeightsChoice = QuantDType | null;
export const WEIGHTS_CHOICES: readonly WeightsChoice[] = [null, 'int8', 'int4'];

export interface WeightsOption {
  quant: WeightsChoice;
  /** "bf16", "int8", "int4". */
  label: string;
  /** The training step's plan with this base. */
  needed: number;
  fits: boolean;
  problems: string[];
  /** Bytes downloaded on the first load: always the checkpoint (quantized on load). */
  download: number;
  /** Bytes the quantized cache takes (later loads read only it); 0 for the float base. */
  cache: number;
}

export interface WeightsAdvice {
  options: WeightsOption[];
  /** What the page selects by default: the most precise base that fits. */
  recommended: WeightsChoice;
  /** Why, for people. */
  reason: string;
}

/**
 * bf16 / int8 / int4 for a target model, each with its training plan, download and cache size;
 * the default is the most precise that fits (bf16 when GPU memory is not stated and the buffer
 * limits allow it), and the reason says which ones did not fit and why.
 */
export function weightsAdvice(config: ModelConfig, download: number, choice: PlanChoice, limits: DeviceLimits): WeightsAdvice {
  const dtype = weightDTypeOf(config);
  const options = WEIGHTS_CHOICES.map((quant): WeightsOption => {
    const plan = planFor(config, dtype, choice, limits, quant);
    const problems = problemsOf(plan, limits);
    // The cache file holds the GPU's weight buffers (less the RoPE table) and a small header.
    return { quant, label: quant ?? dtype, needed: plan.training, fits: problems.length === 0, problems, download, cache: quant ? plan.bytes.weights : 0 };
  });
  const first = options.find((o) => o.fits);
  const recommended = first ? first.quant : 'int4';
  const skipped = options.slice(0, first ? options.indexOf(first) : options.length);
  const why = skipped.map((o) => `${o.label} needs ${formatBytes(o.needed)}`).join(', ');
  const memory = limits.memoryBytes === null ? null : formatBytes(limits.memoryBytes);
  let reason: string;
  if (!first) reason = `None fits${memory ? ` the ${memory} you stated` : ''} (${why}); int4 is the smallest.`;
  else if (!skipped.length)
    reason = memory ? `${first.label} fits the ${memory} you stated (${formatBytes(first.needed)}).` : `${first.label}: fits the buffer limits; state this GPU’s free memory to let the plan choose.`;
  else reason = `${first.label} is the most precise that fits the ${memory ?? 'buffer limits'} (${formatBytes(first.needed)}): ${why}.`;
  return { options, recommended, reason };
}

/** weightsAdvice for a preset (download from its config alone). */
export function presetWeightsAdvice(p: ModelPreset, choice: PlanChoice, limits: DeviceLimits): WeightsAdvice {
  return weightsAdvice(presetModelConfig(p), downloadSize(p).bytes, choice, limits);
}

/** "int4: 2.92 GiB to train · downloads 6.4 GB once · 1.87 GiB cache". */
export function describeWeightsOption(o: WeightsOption): string {
  const cache = o.quant ? ` · the first load downloads ${formatDownload(o.download)} and quantizes; later loads read a ${formatBytes(o.cache)} cache` : ` · downloads ${formatDownload(o.download)}`;
  return `${o.label}: ${formatBytes(o.needed)} to train${cache}`;
}
