// The Model page's verdict on whether LoRA training fits this device, and what would fit when it
// does not. WebGPU reports buffer limits but not total GPU memory, so the user may state their
// GPU's memory; without it only the limits are checked.

import type { ModelConfig } from '../model/config';
import type { DType } from '../gpu/dtype';
import { formatBytes, planMemory, type MemoryPlan } from '../model/memory-plan';
import { PRESET_PLAN_DEFAULTS, planScoring } from '../model/preset-plans';
import { PRESETS, presetModelConfig, weightDTypeOf, type ModelPreset } from '../model/presets';

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

function planFor(config: ModelConfig, dtype: DType, c: PlanChoice, limits: DeviceLimits): MemoryPlan {
  return planMemory(config, { batch: 1, seq: c.seq, loraRank: c.rank, weightDType: dtype, maxBindingBytes: limits.maxStorageBufferBindingSize });
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
export function planVerdict(config: ModelConfig, dtype: DType, choice: PlanChoice, limits: DeviceLimits): PlanVerdict {
  const plan = planFor(config, dtype, choice, limits);
  const problems = problemsOf(plan, limits);
  if (!problems.length) return { plan, fits: true, problems, alternatives: [] };
  const alternatives: string[] = [];
  const fitsWith = (c: PlanChoice) => problemsOf(planFor(config, dtype, c, limits), limits).length === 0;
  // Shorter sequences first (the largest activations scale with it), then smaller ranks, then both.
  const seq = [...SEQ_CHOICES].reverse().find((s) => s < choice.seq && fitsWith({ seq: s, rank: choice.rank }));
  if (seq) alternatives.push(`sequence length ${seq} at rank ${choice.rank} (${formatBytes(planFor(config, dtype, { seq, rank: choice.rank }, limits).training)})`);
  const rank = [...RANK_CHOICES].reverse().find((r) => r < choice.rank && fitsWith({ seq: choice.seq, rank: r }));
  if (rank) alternatives.push(`rank ${rank} at sequence length ${choice.seq} (${formatBytes(planFor(config, dtype, { seq: choice.seq, rank }, limits).training)})`);
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
