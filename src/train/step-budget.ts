// The training step's memory budget, one rule for every way a run starts: the CLI's
// `train --gpu-memory GIB` and the studio's "GPU memory free" setting both state the GPU memory in
// GiB, both become the Trainer's `memoryBudgetBytes` here, and the Trainer, the CLI's log line and
// the studio's Train page all get the step's plan from `trainingStepPlanFor` (planTrainingStep:
// keep the layers' activations and the lm_head logits when they fit, else recompute them).
import type { ModelConfig } from '../model/config';
import { defaultStepBudget, planTrainingStep, type TrainingStepPlan } from '../model/memory-plan';
import type { LoraTarget } from '../model/lora';
import type { WeightLayout } from '../model/weight-layout';

const GiB = 2 ** 30;

/**
 * Bytes of the GPU memory a user stated in GiB; undefined when not stated (null, undefined or a
 * blank string), so the Trainer takes its default budget. `field` names the setting in the error
 * ("--gpu-memory", "GPU memory free").
 */
export function statedStepBudget(gib: number | string | null | undefined, field: string): number | undefined {
  if (gib === null || gib === undefined || (typeof gib === 'string' && gib.trim() === '')) return undefined;
  const n = typeof gib === 'number' ? gib : Number(gib);
  if (!Number.isFinite(n) || !(n > 0)) throw new Error(`${field}: must be a number of GiB above 0, got ${String(gib)}`);
  return Math.floor(n * GiB);
}

/** The shape of a training step: rows per micro-batch (DPO: 2 per pair), padded length, adapter. */
export interface StepShape {
  rows: number;
  seqLen: number;
  loraRank: number;
  targets?: readonly LoraTarget[];
}

function planOptions(model: { config: ModelConfig; layout: WeightLayout }, shape: StepShape) {
  return {
    batch: shape.rows,
    seq: shape.seqLen,
    loraRank: shape.loraRank,
    ...(shape.targets ? { targets: shape.targets } : {}),
    weightDType: model.layout.dtype,
    layout: model.layout,
  };
}

/**
 * The budget a step is planned against: the stated bytes; undefined (not stated) takes
 * defaultStepBudget (the leanest step + 25 %, at most + 256 MiB); null keeps nothing.
 */
export function stepBudgetFor(model: { config: ModelConfig; layout: WeightLayout }, shape: StepShape, memoryBudgetBytes?: number | null): number | null {
  return memoryBudgetBytes === undefined ? defaultStepBudget(model.config, planOptions(model, shape)) : memoryBudgetBytes;
}

/**
 * What the step keeps from the forward for a loaded model (its layout: the weights' dtypes as
 * stored) against `stepBudgetFor`'s budget: what the Trainer allocates, and what the pages show.
 */
export function trainingStepPlanFor(model: { config: ModelConfig; layout: WeightLayout }, shape: StepShape, memoryBudgetBytes?: number | null): TrainingStepPlan {
  return planTrainingStep(model.config, planOptions(model, shape), stepBudgetFor(model, shape, memoryBudgetBytes));
}

/** "keeps the layer activations and the lm_head logits" / "recomputes …", for the pages and logs. */
export function describeStepKeeps(p: Pick<TrainingStepPlan, 'keepActivations' | 'keepLogits'>): string {
  const kept = [p.keepActivations && 'the layer activations', p.keepLogits && 'the lm_head logits'].filter(Boolean);
  const recomputed = [!p.keepActivations && 'the layer activations', !p.keepLogits && 'the lm_head logits'].filter(Boolean);
  if (!recomputed.length) return `keeps ${kept.join(' and ')}`;
  if (!kept.length) return `recomputes ${recomputed.join(' and ')} in the backward`;
  return `keeps ${kept.join(' and ')}, recomputes ${recomputed.join(' and ')}`;
}
