// The stated GPU memory reaches the training step the same way from the CLI (--gpu-memory) and
// the studio (the Model page's "GPU memory free", carried by the worker's train job): the bytes
// become the Trainer's budget, and the step it plans and allocates keeps the activations and
// logits when they fit that budget, and recomputes them when they do not.
import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { createLoraAdapters } from '../model/lora';
import { defaultStepBudget, planMemory } from '../model/memory-plan';
import { seededRandom } from '../model/random';
import { stepKeepsFor } from '../studio/worker/train-service';
import type { SftExample } from './batching';
import { describeStepKeeps, statedStepBudget, stepBudgetFor, trainingStepPlanFor } from './step-budget';
import { randomModel } from './testing/fixtures';
import { Trainer } from './trainer';

const GiB = 2 ** 30;
const SHAPE = { hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 44, vocabSize: 200 };

describe('step budget', () => {
  it('stated GiB become bytes; not stated is undefined (the default budget); bad values name the field', () => {
    expect(statedStepBudget(8, '--gpu-memory')).toBe(8 * GiB);
    expect(statedStepBudget('0.5', 'GPU memory free')).toBe(GiB / 2);
    expect(statedStepBudget(undefined, '--gpu-memory')).toBeUndefined();
    expect(statedStepBudget(null, '--gpu-memory')).toBeUndefined();
    expect(statedStepBudget('  ', 'GPU memory free')).toBeUndefined();
    expect(() => statedStepBudget(0, '--gpu-memory')).toThrow(/--gpu-memory: must be a number of GiB above 0, got 0/);
    expect(() => statedStepBudget('lots', 'GPU memory free')).toThrow(/GPU memory free: must be a number of GiB above 0, got lots/);
    expect(describeStepKeeps({ keepActivations: true, keepLogits: true })).toBe('keeps the layer activations and the lm_head logits');
    expect(describeStepKeeps({ keepActivations: false, keepLogits: true })).toBe('keeps the lm_head logits, recomputes the layer activations');
    expect(describeStepKeeps({ keepActivations: false, keepLogits: false })).toBe('recomputes the layer activations and the lm_head logits in the backward');
  });

  it('the stated memory in, the Trainer keeps the activations and logits when they fit and recomputes them when not; the worker reports the same plan', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = randomModel(ctx, { ...SHAPE, numLayers: 2 }, seed);
    const next = seededRandom(seed);
    const T = 12;
    const ids = () => Array.from({ length: T }, () => Math.floor(next() * SHAPE.vocabSize));
    const train: SftExample[] = Array.from({ length: 4 }, () => {
      const inputIds = ids();
      return { inputIds, labels: [...inputIds], truncated: false };
    });
    const lora = createLoraAdapters(ctx, m.config, { rank: 4, alpha: 8 }, { seed });
    const hyper = { microBatchSize: 2, gradientAccumulationSteps: 1, maxSteps: 1, lr: 1e-3 };
    const o = { batch: 2, seq: T, loraRank: 4, targets: lora.config.targets, weightDType: m.model.layout.dtype, layout: m.model.layout };
    const lean = planMemory(m.config, { ...o, keepActivations: false, keepLogits: false }).training;
    const full = planMemory(m.config, { ...o, keepActivations: true, keepLogits: true }).training;
    expect(full).toBeGreaterThan(lean);
    // The user states, in GiB, just enough for everything kept, then just the leanest step.
    const cases = [
      { gib: String((full + 1024) / GiB), keeps: { keepActivations: true, keepLogits: true } },
      // (At this size the kept logits cost no more than the chunked ones: only the activations go.)
      { gib: String(lean / GiB), keeps: { keepActivations: false } },
    ];
    try {
      for (const c of cases) {
        const budget = statedStepBudget(c.gib, 'GPU memory free');
        const t = new Trainer({ model: m.model, lora, task: { kind: 'sft', train }, hyper, ...(budget !== undefined ? { memoryBudgetBytes: budget } : {}) });
        try {
          expect(t.stepPlan, `${c.gib} GiB: ${t.stepPlan.reason}`).toMatchObject(c.keeps);
          // The step runs with what the plan kept.
          const r = await t.step();
          expect(Number.isFinite(r.metrics.loss)).toBe(true);
          const shape = { rows: t.rows, seqLen: t.seqLen, loraRank: 4, targets: lora.config.targets };
          expect(trainingStepPlanFor(m.model, shape, budget)).toMatchObject(c.keeps);
          // What the studio's worker reports for the job (the Train page's line): the same plan, the stated budget.
          const keeps = stepKeepsFor({ model: m.model }, shape, budget, t.stepPlan);
          expect(keeps).toMatchObject({ ...c.keeps, stated: true, budgetBytes: budget, trainingBytes: t.stepPlan.plan.training });
          expect(stepKeepsFor({ model: m.model }, shape, budget)).toEqual(keeps);
        } finally {
          t.release();
        }
      }
      // Not stated: the default budget, said to be the default.
      const shape = { rows: 2, seqLen: T, loraRank: 4, targets: lora.config.targets };
      const unstated = stepKeepsFor({ model: m.model }, shape, null);
      expect(unstated.stated).toBe(false);
      expect(unstated.budgetBytes).toBe(defaultStepBudget(m.config, o));
      expect(stepBudgetFor(m.model, shape)).toBe(defaultStepBudget(m.config, o));
      expect(() => stepKeepsFor({ model: m.model }, shape, -5)).toThrow(/GPU memory free: must be above 0 GiB/);
    } finally {
      lora.release();
      m.release();
    }
  });
});
