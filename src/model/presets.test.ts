import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { FAMILIES } from './families';
import { createDecoderModel } from './decoder';
import { planMemory } from './memory-plan';
import { planScoring, PRESET_PLAN_DEFAULTS, presetPlan } from './preset-plans';
import { downloadSize, PRESETS, presetById, presetModelConfig, presetSpec, weightDTypeOf } from './presets';
import { randomHostWeights, seededRandom, tinyConfig, uploadHostWeights } from './random';
import { scoreRewards } from './reward';
import { parseModelLocation } from './source';
import { DEFAULT_BINDING_BYTES } from './weight-layout';
import { countParameters as parameterCount, releaseWeights } from './weights';

describe('preset table', () => {
  it('every config.json parses as its family and role (reward presets are one-label reward heads)', () => {
    expect(new Set(PRESETS.map((p) => p.id)).size).toBe(PRESETS.length);
    expect(new Set(PRESETS.map((p) => p.repo)).size).toBe(PRESETS.length);
    for (const p of PRESETS) {
      const c = presetModelConfig(p);
      expect(p.id, 'aliases are lower case without slashes').toMatch(/^[a-z0-9][a-z0-9.-]*$/);
      expect(c.family, p.id).toBe(p.family);
      expect(c.head, p.id).toBe(p.role === 'reward' ? 'sequence-classification' : 'causal-lm');
      if (p.role === 'reward') expect(c.numLabels, p.id).toBe(1);
      expect(c.qkvBias, p.id).toBe(FAMILIES[p.family].qkvBias);
      expect(c.slidingWindow, `${p.id}: no sliding window in use`).toBeNull();
      expect(c.dtype, p.id).toBe('bfloat16');
      expect(p.repo, p.id).toMatch(/^[\w.-]+\/[\w.-]+$/);
    }
  });

  it('parameter counts equal the published ones', () => {
    // Published or computed-by-others figures for these exact checkpoints: Llama 3.2 (the memory
    // plan test's counts, Meta: 1.23B / 3.21B), Qwen3-0.6B (596,049,920 as counted by other
    // implementations of its config), SmolLM2-360M (361,821,120 printed by transformers for the
    // base model, which shares the Instruct shapes), SmolLM2-135M (134.5M), Qwen2.5 (0.49B,
    // 1.54B, 3.09B in Qwen's model cards), SmolLM2-1.7B (1.71B), Qwen3-1.7B (its model card: 1.7B,
    // 1.4B without the embedding).
    const want: Record<string, number> = {
      'llama-3.2-1b': 1_235_814_400,
      'llama-3.2-3b': 3_212_749_824,
      'qwen3-0.6b': 596_049_920,
      'smollm2-360m': 361_821_120,
    };
    const approx: Record<string, number> = { 'smollm2-135m': 134.5e6, 'qwen2.5-0.5b': 0.49e9, 'qwen2.5-1.5b': 1.54e9, 'qwen2.5-3b': 3.09e9, 'smollm2-1.7b': 1.71e9, 'qwen3-1.7b': 1.7e9 };
    for (const [id, n] of Object.entries(want)) expect(parameterCount(presetModelConfig(presetById(id)!)), id).toBe(n);
    for (const [id, n] of Object.entries(approx)) expect(Math.abs(parameterCount(presetModelConfig(presetById(id)!)) / n - 1), id).toBeLessThan(0.015);
    const q17 = presetModelConfig(presetById('qwen3-1.7b')!);
    expect(Math.abs((parameterCount(q17) - q17.vocabSize * q17.hiddenSize) / 1.4e9 - 1)).toBeLessThan(0.015);
    // A reward head has no lm_head: its base's decoder plus score.weight [1, H] (and Skywork's [PAD] row).
    const base = parameterCount(presetModelConfig(presetById('qwen3-0.6b')!));
    expect(parameterCount(presetModelConfig(presetById('skywork-reward-v2-qwen3-0.6b')!))).toBe(base + 1024);
  });

  it('download sizes: parameters × 2 bytes (bf16) + tokenizer.json, within a few percent of the Hub listings', () => {
    for (const p of PRESETS) {
      const d = downloadSize(p);
      expect(d.weightBytes, p.id).toBe(d.params * 2);
      expect(d.bytes / (d.params * 2), p.id).toBeGreaterThan(1);
      expect(d.bytes / (d.params * 2), `${p.id}: the tokenizer is a few MB at most`).toBeLessThan(1.1);
      expect(d.basis).toMatch(/^approximate: .* parameters × 2 bytes \(bfloat16\)/);
    }
    // The Hub lists SmolLM2-135M-Instruct in bf16 at 271 MB (its GGUF), SmolLM-360M-Instruct's
    // model.safetensors (same shapes as SmolLM2-360M) at 724 MB, Llama-3.2-1B-Instruct's at 2.47 GB.
    const hub: [string, number][] = [['smollm2-135m', 271e6], ['smollm2-360m', 724e6], ['llama-3.2-1b', 2.47e9]];
    for (const [id, bytes] of hub) expect(Math.abs(downloadSize(presetById(id)!).weightBytes / bytes - 1), id).toBeLessThan(0.02);
  });

  it('plans: training and generation for causal LMs, scoring for reward models, each within the default binding limit', () => {
    const d = PRESET_PLAN_DEFAULTS;
    for (const p of PRESETS) {
      const c = presetModelConfig(p);
      const plan = presetPlan(p);
      expect(plan.largestTensor.bytes, p.id).toBeLessThanOrEqual(DEFAULT_BINDING_BYTES);
      if (p.role === 'reward') {
        expect(plan.training).toBeNull();
        expect(plan.scoring!.bytes).toBe(plan.needed);
        // Weights stay bf16 on the GPU: about 2 bytes a parameter, plus the forward workspace.
        expect(plan.scoring!.weights / (2 * parameterCount(c)), p.id).toBeGreaterThan(0.99);
        expect(plan.scoring!.weights / (2 * parameterCount(c)), p.id).toBeLessThan(1.01);
        expect(plan.needed, p.id).toBeGreaterThan(plan.scoring!.weights);
        continue;
      }
      const want = planMemory(c, { ...d.training, weightDType: weightDTypeOf(c), generation: d.generation });
      expect(plan.training, p.id).toEqual(want);
      expect(plan.generation, p.id).toBe(want.generation);
      expect(plan.needed, p.id).toBe(p.role === 'source' ? want.generation : want.training);
    }
    // Bigger models need more (a sanity check on the table's ordering within a family).
    const need = (id: string) => presetPlan(presetById(id)!).needed;
    expect(need('smollm2-135m')).toBeLessThan(need('smollm2-360m'));
    expect(need('smollm2-360m')).toBeLessThan(need('smollm2-1.7b'));
    expect(need('llama-3.2-1b')).toBeLessThan(need('llama-3.2-3b'));
    expect(need('skywork-reward-v2-qwen3-0.6b')).toBeLessThan(need('skywork-reward-v2-llama-3.2-3b'));
  });

  it('aliases resolve to the Hub repo (case-insensitive); the gated official Llama is offered beside the mirror', () => {
    expect(presetById('Qwen2.5-0.5B')?.repo).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(presetById('nope')).toBeUndefined();
    const llama = presetById('llama-3.2-1b')!;
    expect(presetSpec(llama)).toBe('hf://unsloth/Llama-3.2-1B-Instruct@main');
    expect(presetSpec(llama, { official: true })).toBe('hf://meta-llama/Llama-3.2-1B-Instruct@main');
    expect(() => presetSpec(presetById('qwen3-0.6b')!, { official: true })).toThrow(/no gated official repo/);
    expect(PRESETS.filter((p) => p.gatedOfficial).map((p) => p.id)).toEqual(['llama-3.2-1b', 'llama-3.2-3b']);
    // Wherever a model location is parsed (CLI, studio), an alias is its Hub repo.
    expect(parseModelLocation('smollm2-135m')).toEqual({ kind: 'hf', repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'main' });
    expect(parseModelLocation('Skywork-Reward-V2-Qwen3-0.6B')).toEqual({ kind: 'hf', repo: 'Skywork/Skywork-Reward-V2-Qwen3-0.6B', revision: 'main' });
    expect(parseModelLocation('not-a-preset')).toBeNull();
  });
});

describe('scoring plan vs the pool\'s measured peak', () => {
  it('scoreRewards on a tiny bf16 reward model peaks at the planned bytes', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const config = tinyConfig({ family: 'qwen3', head: 'sequence-classification', hiddenSize: 48, numHeads: 4, numKvHeads: 2, headDim: 12, vocabSize: 250, padTokenId: 0 });
    ctx.pool.trim();
    const before = ctx.pool.stats().allocatedBytes;
    ctx.pool.resetPeak();
    const weights = uploadHostWeights(ctx, randomHostWeights(config, 'bf16', seed));
    const model = createDecoderModel(ctx, weights);
    try {
      // Two sequences of 13 and 10 tokens: scoreRewards pads both to 16 and scores them in one batch.
      const next = seededRandom(seed);
      const seq = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(next() * 249));
      await scoreRewards(model, [seq(13), seq(10)]);
      await ctx.flush();
      const measured = ctx.pool.stats().peakBytes - before;
      const plan = planScoring(config, { batch: 2, seq: 16, weightDType: 'bf16' });
      expect(measured, `seed ${seed}`).toBe(plan.bytes);
    } finally {
      model.release();
      releaseWeights(weights);
    }
  });
});
