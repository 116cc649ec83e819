// The recipe as steps (model → sources → data → train → evaluate → compare → export), each with
// its state, and the one action that moves a newcomer forward. Pure: the facts come from the
// stores (useFlowFacts in components/StepBar.tsx reads them); nothing here touches the GPU or storage.

import { hubRepoOf } from '../train/base-model';

export type StepId = 'model' | 'sources' | 'data' | 'train' | 'evaluate' | 'compare' | 'export';

/** done; active: under way or partly done; todo. */
export type StepState = 'done' | 'active' | 'todo';

export interface FlowFacts {
  model: { state: 'none' | 'loading' | 'loaded' | 'error'; name: string | null; demo: boolean };
  /** usable: enabled sources with every field filled (what a data run would ask). */
  sources: { entries: number; usable: number };
  /** sft / dpo: rows in the built sets, null before a build. */
  data: { prompts: number; responses: number; running: boolean; sft: number | null; dpo: number | null };
  /** Completed runs of the loaded model, by stage; adapters: stored for it (trained or imported). */
  train: { live: boolean; sftRuns: number; dpoRuns: number; adapters: number };
  /** Evaluations of the loaded model: one running in this tab; completed ones stored. */
  evaluate: { running: boolean; completed: number };
  /** compared: an adapter answered beside the base (or a blind vote was cast) in this tab. */
  compare: { running: boolean; compared: boolean };
  /** Something was exported (an adapter, a merged model, datasets, the recipe, a bundle) in this tab. */
  exported: boolean;
}

export interface FlowStep {
  id: StepId;
  label: string;
  path: string;
  state: StepState;
  /** One line on where the step stands. */
  detail: string;
}

export interface NextAction {
  step: StepId;
  path: string;
  /** The button's text. */
  label: string;
  /** Why this is next, in a sentence. */
  why: string;
}

export const STEP_PATHS: Record<StepId, string> = {
  model: '/model',
  sources: '/sources',
  data: '/data',
  train: '/train',
  evaluate: '/evaluate',
  compare: '/compare',
  export: '/export',
};

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function flowSteps(f: FlowFacts): FlowStep[] {
  const step = (id: StepId, label: string, state: StepState, detail: string): FlowStep => ({ id, label, path: STEP_PATHS[id], state, detail });
  const m = f.model;
  const d = f.data;
  const t = f.train;
  const built = d.sft !== null || d.dpo !== null;
  const rows = (d.sft ?? 0) + (d.dpo ?? 0);
  return [
    step(
      'model',
      'Model',
      m.state === 'loaded' ? 'done' : m.state === 'loading' ? 'active' : 'todo',
      m.state === 'loaded' ? `${m.name ?? 'a model'} loaded${m.demo ? ' (random demo: writes noise)' : ''}` : m.state === 'loading' ? 'loading…' : m.state === 'error' ? 'the last load failed' : 'no model loaded',
    ),
    step(
      'sources',
      'Sources',
      f.sources.usable > 0 ? 'done' : f.sources.entries > 0 ? 'active' : 'todo',
      f.sources.usable > 0 ? `${plural(f.sources.usable, 'source')} ready` : f.sources.entries > 0 ? 'a source is missing a field or is switched off' : 'no sources yet',
    ),
    step(
      'data',
      'Data',
      d.running ? 'active' : built && rows > 0 ? 'done' : d.prompts > 0 || d.responses > 0 || built ? 'active' : 'todo',
      d.running
        ? 'collecting and scoring…'
        : built
          ? `${plural(d.sft ?? 0, 'SFT row')}, ${plural(d.dpo ?? 0, 'DPO pair')}`
          : d.prompts > 0
            ? `${plural(d.prompts, 'prompt')}, ${plural(d.responses, 'response')}, sets not built`
            : 'no prompts yet',
    ),
    step(
      'train',
      'Train',
      t.live ? 'active' : t.sftRuns > 0 && t.dpoRuns > 0 ? 'done' : t.sftRuns > 0 || t.dpoRuns > 0 ? 'active' : 'todo',
      t.live
        ? 'a run is under way'
        : t.sftRuns > 0 || t.dpoRuns > 0
          ? `SFT ${t.sftRuns > 0 ? 'trained' : 'not yet'}, DPO ${t.dpoRuns > 0 ? 'trained' : 'not yet'}`
          : t.adapters > 0
            ? `${plural(t.adapters, 'adapter')} imported, none trained here`
            : 'nothing trained yet',
    ),
    step(
      'evaluate',
      'Evaluate',
      f.evaluate.running ? 'active' : f.evaluate.completed > 0 ? 'done' : 'todo',
      f.evaluate.running
        ? 'measuring…'
        : f.evaluate.completed > 0
          ? `${plural(f.evaluate.completed, 'evaluation')} stored`
          : t.adapters > 0
            ? 'base and adapters not measured yet'
            : 'needs a trained adapter',
    ),
    step(
      'compare',
      'Compare',
      f.compare.running ? 'active' : f.compare.compared ? 'done' : 'todo',
      f.compare.running ? 'answering…' : f.compare.compared ? 'compared with the base model' : t.adapters > 0 ? `${plural(t.adapters, 'adapter')} to compare` : 'needs a trained adapter',
    ),
    step('export', 'Export', f.exported ? 'done' : 'todo', f.exported ? 'exported' : 'nothing exported yet'),
  ];
}

/** The first unfinished step's action (the studio's "what now?"), or null when every step is done. */
export function nextAction(f: FlowFacts): NextAction | null {
  const steps = flowSteps(f);
  const first = steps.find((s) => s.state !== 'done');
  if (!first) return null;
  const at = (label: string, why: string): NextAction => ({ step: first.id, path: first.path, label, why });
  const d = f.data;
  switch (first.id) {
    case 'model':
      return f.model.state === 'loading' ? at('See the download', 'The model is loading.') : at('Load a model', 'Everything starts from the model you will fine-tune.');
    case 'sources':
      return f.sources.entries > 0
        ? at('Finish the source', 'A source needs its base URL, model and key (if it asks for one), and must be switched on.')
        : at('Add a source', 'Sources are the stronger models whose answers the small one learns from.');
    case 'data':
      if (d.running) return at('Watch the run', 'Responses are being collected and scored.');
      if (d.prompts === 0) return at('Import prompts', 'The sources answer these prompts; the answers become the training sets.');
      if (d.sft !== null || d.dpo !== null) return at('See why the sets are empty', 'The last build kept no rows: its report says why.');
      return at('Collect and build the sets', `${plural(d.prompts, 'prompt')} imported: ask the sources, score the answers, build SFT and DPO sets.`);
    case 'train':
      if (f.model.state !== 'loaded') return at('Load the model to train', 'Training needs the model loaded in this tab.');
      if (f.train.live) return at('Watch the training run', 'A run is under way.');
      if (f.train.sftRuns === 0) return at('Train SFT', 'The first stage: learn from the best answers.');
      return at('Train DPO', 'The second stage: prefer the better answer of each pair, continuing the SFT adapter.');
    case 'evaluate':
      if (f.evaluate.running) return at('Watch the evaluation', 'The base and tuned models are being measured.');
      return at('Evaluate against the base model', 'Measure on held-out prompts whether the tuned model is better, with 95% intervals.');
    case 'compare':
      return at('Compare with the base model', 'Ask the base and the tuned model the same question.');
    case 'export':
      return at('Export the adapter', 'Take the LoRA adapter (PEFT), the merged model or the datasets with you.');
    default:
      return at(`Open ${first.label}`, first.detail);
  }
}

/** The loaded model as the navigation names it: the Hub repo's name, else where it came from. */
export function modelDisplayName(m: { source: string; modelKey: string }): string {
  if (m.modelKey === 'demo') return 'demo model';
  const repo = hubRepoOf(m.source);
  if (repo) return repo.split('/').pop()!;
  const s = m.source.replace(/\/+$/, '');
  return s.length > 40 ? `…${s.slice(-39)}` : s;
}
