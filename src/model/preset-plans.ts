// Memory plans of the presets (presets.ts) for their roles, from their config.json fields alone:
// a LoRA training step and generation for causal LMs, scoring for reward models.
import type { DType } from '../gpu/dtype';
import { trainWorkspaceSpecs } from './activations';
import { UNIFORM_ARENA_BYTES } from './chain';
import type { ModelConfig } from './config';
import { modelSpecs } from './decoder';
import { planMemory, type MemoryPlan } from './memory-plan';
import { presetModelConfig, weightDTypeOf, type ModelPreset } from './presets';
import { specBytes, type TensorSpec } from './specs';
import { DEFAULT_BINDING_BYTES, planWeightLayout, weightSpecs } from './weight-layout';

export interface PresetPlanOptions {
  /** LoRA training step: sequences × tokens at rank r (the `plan` command's defaults). */
  training: { batch: number; seq: number; loraRank: number };
  /** Generation: sequences × KV-cache positions, prefill length. */
  generation: { batch: number; capacity: number; prefill: number };
  /** Reward scoring: one forward of batch × seq tokens (scoreRewards batches up to 4096 padded tokens). */
  scoring: { batch: number; seq: number };
  /** The device's maxStorageBufferBindingSize (how the embedding is split). */
  maxBindingBytes?: number;
}

export const PRESET_PLAN_DEFAULTS: PresetPlanOptions = {
  training: { batch: 4, seq: 512, loraRank: 16 },
  generation: { batch: 1, capacity: 2048, prefill: 512 },
  scoring: { batch: 2, seq: 2048 },
};

export interface ScoringPlan {
  /** Weights + the scoring workspace + the pooled rows + uniforms. */
  bytes: number;
  weights: number;
  largestTensor: { name: string; bytes: number };
}

/**
 * GPU bytes of scoring a [batch, seq] padded batch with a reward head: what scoreRewards (reward.ts)
 * allocates, a forward-only workspace (no backward, lm_head chunk 1) and the pooled rows.
 */
export function planScoring(config: ModelConfig, o: { batch: number; seq: number; weightDType: DType; maxBindingBytes?: number }): ScoringPlan {
  const layout = planWeightLayout(config, o.weightDType, o.maxBindingBytes ?? DEFAULT_BINDING_BYTES);
  const ws = trainWorkspaceSpecs(config, { batchSize: o.batch, seqLen: o.seq, lora: null, backward: false, lmHeadChunk: 1 });
  const pooled: TensorSpec[] = [
    { name: 'reward pooled', shape: [o.batch, config.hiddenSize], dtype: 'f32' },
    { name: 'rewards', shape: [o.batch, Math.max(1, config.numLabels)], dtype: 'f32' },
  ];
  const weights = specBytes(weightSpecs(layout)) + specBytes(modelSpecs(config));
  const all = [...weightSpecs(layout), ...Object.values(ws).flat(), ...pooled];
  const largestTensor = all.reduce((best, t) => {
    const b = specBytes([t]);
    return b > best.bytes ? { name: t.name, bytes: b } : best;
  }, { name: '', bytes: 0 });
  return { bytes: weights + specBytes(Object.values(ws).flat()) + specBytes(pooled) + UNIFORM_ARENA_BYTES, weights, largestTensor };
}

export interface PresetPlan {
  /** LoRA training step (causal LMs); null for reward models, which are not trained here. */
  training: MemoryPlan | null;
  /** Generation alone, in bytes (causal LMs); null for reward models. */
  generation: number | null;
  /** Scoring (reward models); null for causal LMs. */
  scoring: ScoringPlan | null;
  /** What the preset's role needs: training for targets, generation for sources, scoring for rewards. */
  needed: number;
  /** The largest single tensor of that work (it must fit one buffer binding). */
  largestTensor: { name: string; bytes: number };
}

/** The memory plan of a preset for its role, from its config alone. */
export function presetPlan(p: ModelPreset, o: PresetPlanOptions = PRESET_PLAN_DEFAULTS): PresetPlan {
  const c = presetModelConfig(p);
  const weightDType = weightDTypeOf(c);
  if (c.head === 'sequence-classification') {
    const scoring = planScoring(c, { ...o.scoring, weightDType, maxBindingBytes: o.maxBindingBytes });
    return { training: null, generation: null, scoring, needed: scoring.bytes, largestTensor: scoring.largestTensor };
  }
  const training = planMemory(c, { ...o.training, weightDType, maxBindingBytes: o.maxBindingBytes, generation: o.generation });
  const needed = p.role === 'source' ? training.generation : training.training;
  return { training, generation: training.generation, scoring: null, needed, largestTensor: training.largestTensor };
}
