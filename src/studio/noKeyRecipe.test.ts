import { describe, expect, it } from 'vitest';
import { downloadSize, presetById } from '../model/presets';
import { NO_KEY_RECIPE, planNoKeyRecipe, STARTER_PROMPT_COUNT } from './noKeyRecipe';

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
});
