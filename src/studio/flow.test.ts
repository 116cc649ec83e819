import { describe, expect, it } from 'vitest';
import { flowSteps, modelDisplayName, nextAction, type FlowFacts } from './flow';

const FRESH: FlowFacts = {
  model: { state: 'none', name: null, demo: false },
  sources: { entries: 0, usable: 0 },
  data: { prompts: 0, responses: 0, running: false, sft: null, dpo: null },
  train: { live: false, sftRuns: 0, dpoRuns: 0, adapters: 0 },
  evaluate: { running: false, completed: 0 },
  compare: { running: false, compared: false },
  exported: false,
};

const states = (f: FlowFacts) => Object.fromEntries(flowSteps(f).map((s) => [s.id, s.state]));

describe('the recipe steps', () => {
  it('start with everything to do and "Load a model" next', () => {
    expect(states(FRESH)).toEqual({ model: 'todo', sources: 'todo', data: 'todo', train: 'todo', evaluate: 'todo', compare: 'todo', export: 'todo' });
    expect(nextAction(FRESH)).toMatchObject({ step: 'model', path: '/model', label: 'Load a model' });
  });

  it('walk forward as the facts fill in', () => {
    let f: FlowFacts = { ...FRESH, model: { state: 'loaded', name: 'SmolLM2-135M-Instruct', demo: false } };
    expect(nextAction(f)).toMatchObject({ step: 'sources', label: 'Add a source' });
    f = { ...f, sources: { entries: 1, usable: 0 } };
    expect(states(f).sources).toBe('active');
    expect(nextAction(f)?.label).toBe('Finish the source');
    f = { ...f, sources: { entries: 1, usable: 1 } };
    expect(nextAction(f)).toMatchObject({ step: 'data', label: 'Import prompts' });
    f = { ...f, data: { ...f.data, prompts: 4 } };
    expect(states(f).data).toBe('active');
    expect(nextAction(f)?.label).toBe('Collect and build the sets');
    f = { ...f, data: { ...f.data, running: true } };
    expect(nextAction(f)?.label).toBe('Watch the run');
    // A build that kept nothing is not done: the report says why.
    f = { ...f, data: { ...f.data, running: false, responses: 12, sft: 0, dpo: 0 } };
    expect(states(f).data).toBe('active');
    expect(nextAction(f)?.label).toBe('See why the sets are empty');
    f = { ...f, data: { ...f.data, sft: 4, dpo: 3 } };
    expect(states(f).data).toBe('done');
    expect(nextAction(f)).toMatchObject({ step: 'train', path: '/train', label: 'Train SFT' });
    f = { ...f, train: { live: false, sftRuns: 1, dpoRuns: 0, adapters: 1 } };
    expect(states(f).train).toBe('active');
    expect(nextAction(f)?.label).toBe('Train DPO');
    f = { ...f, train: { live: false, sftRuns: 1, dpoRuns: 1, adapters: 2 } };
    expect(nextAction(f)).toMatchObject({ step: 'evaluate', path: '/evaluate', label: 'Evaluate against the base model' });
    expect(flowSteps(f).find((s) => s.id === 'evaluate')?.detail).toBe('base and adapters not measured yet');
    f = { ...f, evaluate: { running: true, completed: 0 } };
    expect(states(f).evaluate).toBe('active');
    expect(nextAction(f)?.label).toBe('Watch the evaluation');
    f = { ...f, evaluate: { running: false, completed: 1 } };
    expect(states(f).evaluate).toBe('done');
    expect(nextAction(f)).toMatchObject({ step: 'compare', path: '/compare' });
    f = { ...f, compare: { running: false, compared: true } };
    expect(nextAction(f)).toMatchObject({ step: 'export', label: 'Export the adapter' });
    f = { ...f, exported: true };
    expect(nextAction(f)).toBeNull();
    expect(states(f)).toEqual({ model: 'done', sources: 'done', data: 'done', train: 'done', evaluate: 'done', compare: 'done', export: 'done' });
  });

  it('sends an earlier unfinished step first (a reload drops the model, the sets stay)', () => {
    const f: FlowFacts = { ...FRESH, sources: { entries: 2, usable: 2 }, data: { prompts: 3, responses: 9, running: false, sft: 3, dpo: 2 } };
    expect(nextAction(f)).toMatchObject({ step: 'model', label: 'Load a model' });
  });

  it('says what each step holds', () => {
    const f: FlowFacts = {
      ...FRESH,
      model: { state: 'loaded', name: 'built-in demo model', demo: true },
      data: { prompts: 2, responses: 6, running: false, sft: 1, dpo: 0 },
      train: { live: true, sftRuns: 0, dpoRuns: 0, adapters: 0 },
    };
    const d = Object.fromEntries(flowSteps(f).map((s) => [s.id, s.detail]));
    expect(d.model).toBe('built-in demo model loaded (random demo: writes noise)');
    expect(d.data).toBe('1 SFT row, 0 DPO pairs');
    expect(d.train).toBe('a run is under way');
    expect(states(f).train).toBe('active');
  });
});

describe('modelDisplayName', () => {
  it('names the Hub repo, the demo, or where the model came from', () => {
    expect(modelDisplayName({ modelKey: 'demo', source: 'built-in demo model' })).toBe('demo model');
    expect(modelDisplayName({ modelKey: 'x', source: 'hf://HuggingFaceTB/SmolLM2-135M-Instruct@main' })).toBe('SmolLM2-135M-Instruct');
    expect(modelDisplayName({ modelKey: 'x', source: 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/' })).toBe('Qwen2.5-0.5B-Instruct');
    expect(modelDisplayName({ modelKey: 'folder:tiny', source: 'tiny' })).toBe('tiny');
  });
});
