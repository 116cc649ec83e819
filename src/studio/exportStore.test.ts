import { describe, expect, it } from 'vitest';
import { buildRecipe } from '../train/recipe';
import { baseModelStatus, defaultBaseModel, fileSafe, mergedFolderName, recipeHyperFromTrain } from './exportStore';
import type { ModelSummary } from './worker/model-service';

const summary = (modelKey: string, source: string) => ({ modelKey, source }) as ModelSummary;

describe('export helpers', () => {
  it('names the base model and export folders', () => {
    expect(defaultBaseModel(null)).toBe('');
    // The Hub (as the worker describes a Hub source), a Hub page, a mirror: the repo id.
    expect(defaultBaseModel(summary('hf:x', 'hf://meta-llama/Llama-3.2-1B-Instruct@main'))).toBe('meta-llama/Llama-3.2-1B-Instruct');
    expect(defaultBaseModel(summary('hf:x', 'https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct'))).toBe('meta-llama/Llama-3.2-3B-Instruct');
    expect(defaultBaseModel(summary('url:x', 'http://127.0.0.1:5000/Qwen/Qwen3-0.6B/resolve/main/'))).toBe('Qwen/Qwen3-0.6B');
    // Not from the Hub: unknown, the user names it (the page warns).
    expect(defaultBaseModel(summary('demo', 'built-in demo model'))).toBe('');
    expect(defaultBaseModel(summary('folder:x', 'my-llama'))).toBe('');
    expect(defaultBaseModel(summary('url:y', 'http://127.0.0.1:5000/models/m/'))).toBe('');
    const demo = summary('demo', 'built-in demo model');
    expect(baseModelStatus('', demo)).toMatchObject({ kind: 'warn', text: expect.stringMatching(/^This model \(built-in demo model\) did not come from the Hugging Face Hub/) });
    expect(baseModelStatus('me/demo-base', demo)).toBeNull();
    expect(baseModelStatus('https://example.com/m', demo)).toMatchObject({ kind: 'error', text: expect.stringMatching(/^The base model name "https:\/\/example\.com\/m" is a URL/) });
    expect(baseModelStatus('', summary('hf:x', 'hf://org/m@main'))).toBeNull();
    expect(fileSafe('meta-llama/Llama 3.2')).toBe('meta-llama-Llama-3.2');
    expect(mergedFolderName('fuse-studio/demo-model', 'sft+dpo')).toBe('fuse-studio-demo-model-sft+dpo-merged');
  });

  it('takes the recipe hyperparameters from the Train page settings', () => {
    const h = recipeHyperFromTrain({ sft: { lr: 1e-4, epochs: 2, loraRank: 8, loraAlpha: 16, checkpointEvery: 5 }, dpo: { lr: 5e-6, beta: 2.5, loss: 'dpo' } });
    expect(h.sftHyper).toEqual({ lr: 1e-4, epochs: 2, loraRank: 8, loraAlpha: 16 });
    expect(h.dpoHyper).toEqual({ lr: 5e-6, beta: 2.5, lossType: 'sigmoid' });
    expect(recipeHyperFromTrain(null)).toEqual({ sftHyper: {}, dpoHyper: {} });
    const files = buildRecipe({
      model: 'meta-llama/Llama-3.2-1B-Instruct',
      sft: [{ kind: 'sft-messages', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }],
      dpo: [],
      ...h,
    });
    const recipe = JSON.parse(files.get('recipe.json')!) as { sft: { lr: number; loraRank: number } };
    expect(JSON.stringify(recipe)).toContain('0.0001');
  });
});
