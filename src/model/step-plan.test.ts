// The memory plan's step choices — keep the lm_head logits of a micro-batch (computed once) and
// keep every layer's activations (no recompute) — change what is computed, not the result:
// each choice's LoRA gradients and log-probs are bit-identical to the checkpointed, chunked
// step's (the same kernels run on the same inputs in the same order; only whether a value is
// recomputed or read back from where the forward left it differs), the pool's measured peak
// equals the plan's, and the counted matmul FLOPs drop by exactly the recomputed passes.
import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { backward, countTargets } from './backward';
import { LLAMA_3_2_PRESETS } from './config';
import { forward } from './forward';
import { defaultStepBudget, planMemory, planTrainingStep } from './memory-plan';
import { BF16_TIED, F32_UNTIED, QWEN3_F32, setup, type Scenario } from './testing/fixtures';
import type { LoraTarget } from './lora';

const CHOICES = [
  { keepActivations: false, keepLogits: false },
  { keepActivations: false, keepLogits: true },
  { keepActivations: true, keepLogits: false },
  { keepActivations: true, keepLogits: true },
] as const;

/** Forward + backward with one choice: every LoRA gradient, the log-probs, the measured peak, counted matmul FLOPs. */
async function run(s: Scenario, seed: number, keep: (typeof CHOICES)[number]) {
  const ctx = await testContext();
  ctx.pool.trim();
  const before = ctx.pool.stats().allocatedBytes;
  ctx.pool.resetPeak();
  const m = setup(ctx, s, seed, keep);
  try {
    const flops0 = ctx.counters.matmulFlops;
    forward(m.model, m.ws, { lora: m.lora });
    backward(m.model, m.ws, { lora: m.lora, scale: 1 / countTargets(m.inputs.targets) });
    await ctx.flush();
    const flops = ctx.counters.matmulFlops - flops0;
    const peak = ctx.pool.stats().peakBytes - before;
    const grads: Float32Array[] = [];
    for (const p of m.lora.params) grads.push(await ctx.readF32(p.grad));
    const logp = await ctx.readF32(m.ws.logp);
    const plan = planMemory(m.config, {
      batch: s.batchSize,
      seq: s.seqLen,
      loraRank: s.lora.rank,
      ...(s.lora.targets ? { targets: s.lora.targets as LoraTarget[] } : {}),
      weightDType: s.dtype,
      ...(s.maxChunkBytes ? { maxBindingBytes: s.maxChunkBytes } : {}),
      ...(s.lmHeadChunk ? { lmHeadChunk: s.lmHeadChunk } : {}),
      ...keep,
    });
    // A second backward would read what the first consumed: refused when anything is kept.
    if (keep.keepActivations || keep.keepLogits) expect(() => backward(m.model, m.ws, { lora: m.lora, accumulate: true })).toThrow(/run forward\(\) again/);
    return { grads, logp, peak, plan: plan.training, flops, config: m.config };
  } finally {
    m.release();
  }
}

describe('training step: keep or recompute (memory plan choices)', () => {
  it.each([
    ['bf16 tied, 3 weight parts, 5 vocab chunks', BF16_TIED],
    ['f32 untied, LoRA on 4 targets', { ...F32_UNTIED, lmHeadChunk: 96 } as Scenario],
    ['qwen3 (q/k norm) f32', QWEN3_F32],
  ] as const)('%s: gradients and log-probs bit-identical for every choice, peak = plan, matmul FLOPs drop by the recomputed passes', async (_name, s) => {
    const seed = freshSeed();
    const results = [];
    for (const keep of CHOICES) results.push({ keep, ...(await run(s, seed, keep)) });
    const base = results[0]!;
    for (const r of results) {
      const label = `seed ${seed}, ${JSON.stringify(r.keep)}`;
      expect(r.peak, `${label}: measured peak vs plan`).toBe(r.plan);
      expect(r.logp, label).toEqual(base.logp);
      r.grads.forEach((g, i) => expect(g, `${label}: gradient ${i}`).toEqual(base.grads[i]));
      expect(r.grads.some((g) => g.some((x) => x !== 0)), label).toBe(true);
    }
    // What each choice saves: the lm_head's logits matmul (2·N·V·H), the layers' forward matmuls.
    const c = base.config;
    const N = s.batchSize * s.seqLen;
    const lmHead = 2 * N * c.vocabSize * c.hiddenSize;
    const [none, logits, acts, both] = results;
    expect(none!.flops - logits!.flops).toBe(lmHead);
    expect(acts!.flops - both!.flops).toBe(lmHead);
    const layers = none!.flops - acts!.flops;
    expect(layers).toBeGreaterThan(0);
    expect(logits!.flops - both!.flops).toBe(layers);
    // Kept memory costs what the plan says.
    expect(both!.plan).toBeGreaterThan(none!.plan);
  });
});

describe('planTrainingStep', () => {
  const c = LLAMA_3_2_PRESETS['llama-3.2-1b']!;
  const o = { batch: 1, seq: 512, loraRank: 16, weightDType: 'bf16' as const };
  const plans = {
    none: planMemory(c, o).training,
    logits: planMemory(c, { ...o, keepLogits: true }).training,
    acts: planMemory(c, { ...o, keepActivations: true }).training,
    both: planMemory(c, { ...o, keepLogits: true, keepActivations: true }).training,
  };

  it('Llama-3.2-1B T512: keeping logits costs the [T × V] f32 logits instead of one chunk, keeping activations 15 more layers and the final norm', () => {
    const chunk = planMemory(c, o).lmHeadChunk;
    expect(plans.logits - plans.none).toBe(512 * c.vocabSize * 4 - 512 * chunk * 4);
    const oneLayer = planMemory(c, o).bytes.layerActivations;
    expect(plans.acts - plans.none).toBe((c.numLayers - 1) * oneLayer + 512 * c.hiddenSize * 4 + 512 * 4);
  });

  it('keeps the most that fits the budget, logits before activations, and nothing without a budget', () => {
    expect(planTrainingStep(c, o, plans.both)).toMatchObject({ keepLogits: true, keepActivations: true });
    expect(planTrainingStep(c, o, plans.both - 1)).toMatchObject({ keepLogits: true, keepActivations: false });
    expect(planTrainingStep(c, o, plans.logits - 1)).toMatchObject({ keepLogits: false, keepActivations: plans.acts <= plans.logits - 1 });
    const tight = planTrainingStep(c, o, plans.none);
    expect(tight).toMatchObject({ keepLogits: false, keepActivations: false });
    expect(tight.plan.training).toBe(plans.none);
    expect(tight.reason).toMatch(/recomputed.*budget/);
    expect(planTrainingStep(c, o, null)).toMatchObject({ keepLogits: false, keepActivations: false, reason: expect.stringMatching(/no memory budget/) });
  });

  it('without a stated budget: at most 256 MiB over the leanest plan (1B at T512 keeps its 247 MiB of logits, at T1024 not)', () => {
    expect(defaultStepBudget(c, o) - plans.none).toBe(256 * 2 ** 20);
    expect(planTrainingStep(c, o, defaultStepBudget(c, o))).toMatchObject({ keepLogits: true, keepActivations: false });
    const long = { ...o, seq: 1024 };
    expect(planTrainingStep(c, long, defaultStepBudget(c, long))).toMatchObject({ keepLogits: false, keepActivations: false });
    const tiny = { ...o, seq: 8 };
    expect(planTrainingStep(c, tiny, defaultStepBudget(c, tiny))).toMatchObject({ keepLogits: true });
  });
});
