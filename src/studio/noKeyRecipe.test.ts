import { describe, expect, it } from 'vitest';
import { downloadSize, presetById } from '../model/presets';
import { presetModelConfig } from '../model/presets';
import type { DeviceSpeed } from '../model/speed';
import { estimateSequences, TRAIN_FORWARDS } from '../model/time-estimate';
import { estimateNoKeyRecipe, NO_KEY_RECIPE, planNoKeyRecipe, STARTER_PROMPT_COUNT, STARTER_PROMPT_TOKENS } from './noKeyRecipe';

describe('the no-API-key recipe', () => {
  it('plans two sources of different families, a reward model and a target, with the total download and the work', () => {
    const plan = planNoKeyRecipe();
    expect(plan.models.map((m) => m.role)).toEqual(['source', 'source', 'reward', 'target']);
    const [a, b] = plan.models.map((m) => m.preset);
    expect(a!.family).not.toBe(b!.family);
    expect(plan.models.find((m) => m.role === 'reward')!.preset.role).toBe('reward');
    const ids = [...NO_KEY_RECIPE.sources, NO_KEY_RECIPE.reward, NO_KEY_RECIPE.target];
    expect(plan.downloadBytes).toBe(ids.reduce((s, id) => s + downloadSize(presetById(id)!).bytes, 0));
    expect(plan.prompts).toBe(STARTER_PROMPT_COUNT);
    expect(plan.responses).toBe(STARTER_PROMPT_COUNT * NO_KEY_RECIPE.n * 2);
    expect(plan.maxNewTokens).toBe(plan.responses * NO_KEY_RECIPE.maxTokens);
  });

  it('refuses sources of one family, and a name that is not a preset', () => {
    expect(() => planNoKeyRecipe({ ...NO_KEY_RECIPE, sources: ['qwen3-0.6b', 'qwen3-1.7b'] })).toThrow(/two families/);
    expect(() => planNoKeyRecipe({ ...NO_KEY_RECIPE, reward: 'nope' })).toThrow(/"nope", which is not a preset/);
  });

  it('estimates the time on a device from its measured speed: each source, the scoring, SFT and DPO, every answer at its token limit', () => {
    const speed: DeviceSpeed = { decodeGflops: 50, decodeRows: 8, prefillGflops: 400, prefillRows: 128, shape: [2048, 2048] };
    const est = estimateNoKeyRecipe(speed);
    expect(est.phases.map((p) => p.phase)).toEqual(['Llama-3.2-1B-Instruct answers', 'Qwen3-0.6B answers', 'Reward model scores', 'SFT', 'DPO']);
    expect(est.seconds).toBeCloseTo(est.phases.reduce((a, p) => a + p.seconds, 0), 9);
    // SFT: one example per starter prompt, 3 epochs, prompt + a full answer, 3 forwards a step.
    const target = presetModelConfig(presetById(NO_KEY_RECIPE.target)!);
    const seq = STARTER_PROMPT_TOKENS + NO_KEY_RECIPE.maxTokens;
    expect(est.phases[3]).toEqual(estimateSequences('SFT', { config: target, sequences: 3 * STARTER_PROMPT_COUNT, tokens: seq }, 'lm', TRAIN_FORWARDS, speed));
    // The bigger source takes longer; a device twice as fast takes half the time.
    expect(est.phases[0]!.seconds).toBeGreaterThan(est.phases[1]!.seconds);
    const twice = estimateNoKeyRecipe({ ...speed, decodeGflops: 100, prefillGflops: 800 });
    expect(twice.seconds).toBeCloseTo(est.seconds / 2, 9);
    // Generation is decode-bound: it barely changes when only the prefill rate doubles.
    const prefillOnly = estimateNoKeyRecipe({ ...speed, prefillGflops: 800 });
    expect(prefillOnly.phases[0]!.seconds / est.phases[0]!.seconds).toBeGreaterThan(0.9);
    expect(STARTER_PROMPT_TOKENS).toBeGreaterThan(32);
  });
});
