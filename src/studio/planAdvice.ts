// The Model page's verdict on whether LoRA training fits this device, and what would fit when it
// does not. WebGPU reports buffer limits but not total GPU memory, so the user may state their
// GPU's memory; without it only the limits are checked.

import type { ModelConfig } from '../model/config';
import type { DType } from '../gpu/dtype';
import { formatBytes, planMemory, type MemoryPlan } from '../model/memory-plan';

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

function problemsOf(plan: MemoryPlan, limits: DeviceLimits): string[] {
  const out: string[] = [];
  const bufferLimit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  if (plan.largestTensor.bytes > bufferLimit)
    out.push(`${plan.largestTensor.name} (${formatBytes(plan.largestTensor.bytes)}) exceeds this device’s buffer limit of ${formatBytes(bufferLimit)}`);
  if (limits.memoryBytes !== null && plan.training > limits.memoryBytes)
    out.push(`a training step needs ${formatBytes(plan.training)}, more than the ${formatBytes(limits.memoryBytes)} you said this GPU has`);
  return out;
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
