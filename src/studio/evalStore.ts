// The Evaluate page's state: what to evaluate (models, tiers, the eval set, the multiple-choice
// guard, decoding), the evaluations stored in IndexedDB with the one on screen (its progress, its
// report and per-item answers), and the start / cancel / resume of a run. The evaluation itself runs
// in the engine worker (worker/eval-service.ts, through src/eval/run.ts's runEvaluation); nothing
// here touches the GPU.

import { create } from 'zustand';
import { ARTIFACTS } from '../data/pipeline';
import { DexieRunStore } from '../data/store-dexie';
import exampleChoices from '../eval/example-choices.jsonl?raw';
import { trainingPrompts, type PromptText } from '../eval/items';
import { activeDataRunId } from './dataStore';
import { callback, engine, errorMessage } from './engine';
import { buildJudgeSpec, useSourcesStore } from './sourcesStore';
import { chatDateString, parseDataset } from './trainConfig';
import type { AdapterInfo } from './worker/adapter-store';
import type { EvalItemView } from './evalView';
import type { EvalJudgeChoice, EvalEvent } from './worker/eval-service';
import type { EvalSettings, EvalSummary, EvalTiers } from './worker/eval-runs';

export const EVAL_FORM_KEY = 'fuse-studio.evalForm';

/** The built-in multiple-choice example (src/eval/example-choices.jsonl): shows the format. */
export const EXAMPLE_CHOICES = exampleChoices;

export type DataChoice = 'heldout' | 'file';
export type ChoicesChoice = 'builtin' | 'file';

export interface EvalForm {
  /** 'base' and adapter names picked. */
  models: string[];
  tiers: EvalTiers;
  maxNewTokens: number;
  seed: number;
  data: DataChoice;
  choices: ChoicesChoice;
  /** The pairwise judge prompt (null: the default). */
  judgePrompt: string | null;
}

export interface FileText {
  name: string;
  text: string;
}

/** The Data page's held-out split, as one EVAL.jsonl: its prompts, SFT rows and DPO pairs. */
export interface HeldOut {
  text: string;
  prompts: number;
  sft: number;
  dpo: number;
}

export const DEFAULT_FORM: EvalForm = {
  models: ['base'],
  tiers: { losses: true, checkable: true, judge: true, choices: true },
  maxNewTokens: 128,
  seed: 0,
  data: 'heldout',
  choices: 'builtin',
  judgePrompt: null,
};

interface EvalStore {
  modelKey: string | null;
  adapters: AdapterInfo[];
  form: EvalForm;
  heldOut: HeldOut | null;
  dataFile: FileText | null;
  choicesFile: FileText | null;
  evaluations: EvalSummary[];
  /** The evaluation on screen. */
  currentId: string | null;
  /** Its per-item answers and verdicts (loaded on demand). */
  items: EvalItemView[] | null;
  /** The evaluation this tab's worker runs now. */
  activeId: string | null;
  error: string | null;

  refresh(modelKey: string | null): Promise<void>;
  setForm(patch: Partial<EvalForm>): void;
  toggleModel(name: string): void;
  setDataFile(f: FileText | null): void;
  setChoicesFile(f: FileText | null): void;
  start(): Promise<void>;
  resume(evalId: string): Promise<void>;
  cancel(): Promise<void>;
  select(evalId: string): Promise<void>;
  remove(evalId: string): Promise<void>;
}

function loadForm(): EvalForm {
  try {
    const raw = localStorage.getItem(EVAL_FORM_KEY);
    if (!raw) return DEFAULT_FORM;
    const f = JSON.parse(raw) as Partial<EvalForm>;
    return { ...DEFAULT_FORM, ...f, tiers: { ...DEFAULT_FORM.tiers, ...f.tiers } };
  } catch {
    return DEFAULT_FORM;
  }
}

function saveForm(f: EvalForm): void {
  try {
    localStorage.setItem(EVAL_FORM_KEY, JSON.stringify(f));
  } catch {
    // storage off: the form lasts for this tab
  }
}

const lines = (text: string | undefined) => (text ?? '').split('\n').filter((l) => l.trim() !== '');

/** The prompts of TRL SFT / DPO JSONL sets (malformed lines are the Data page's to report). */
export function setPrompts(sft: string | undefined, dpo: string | undefined): PromptText[] {
  return trainingPrompts([...(sft ? parseDataset(sft, 'sft').records : []), ...(dpo ? parseDataset(dpo, 'dpo').records : [])]);
}

/** The Data page's held-out split (eval_prompts, sft_eval, dpo_eval), or null when it set none aside. */
export async function readHeldOut(): Promise<HeldOut | null> {
  const runId = activeDataRunId();
  if (!runId) return null;
  const store = new DexieRunStore(runId);
  const [prompts, sft, dpo] = await Promise.all([ARTIFACTS.evalPrompts, ARTIFACTS.sftEval, ARTIFACTS.dpoEval].map((n) => store.readArtifact(n).catch(() => undefined)));
  const p = lines(prompts);
  const s = lines(sft);
  const d = lines(dpo);
  if (p.length + s.length + d.length === 0) return null;
  return {
    text: [...p, ...s, ...d].join('\n') + '\n',
    prompts: p.length,
    sft: s.length,
    dpo: d.length,
  };
}

/** The prompts of the Data page's built training sets (the worker adds those of the Train page's runs). */
export async function readTrainingPrompts(): Promise<PromptText[]> {
  const runId = activeDataRunId();
  if (!runId) return [];
  const store = new DexieRunStore(runId);
  const [sft, dpo] = await Promise.all([ARTIFACTS.sft, ARTIFACTS.dpo].map((n) => store.readArtifact(n).catch(() => undefined)));
  return setPrompts(sft, dpo);
}

/** The judge configured on the Sources page, as the evaluation takes it; or why it cannot. */
export function judgeChoice(prompt: string | null): { judge: EvalJudgeChoice } | { problem: string } {
  const { judge, entries } = useSourcesStore.getState();
  if (judge.kind === 'none') return { problem: 'No judge is configured: choose one on the Sources page (a chat model, or a local reward model).' };
  const spec = buildJudgeSpec(judge, entries);
  if (!spec) return { problem: 'The Sources page’s judge is incomplete: finish it there (a chat judge needs its source’s model; a reward model its address or repo).' };
  if (spec.type === 'judge') {
    const s = spec.judge.source;
    return { judge: { spec, prompt, label: `${s.model} at ${s.baseURL} (chat judge: each pair in both orders)` } };
  }
  if (spec.type === 'reward') return { judge: { spec, prompt: null, label: `${spec.reward.model} at ${spec.reward.baseURL}${spec.reward.path} (reward model: the higher reward wins)` } };
  return { judge: { spec, prompt: null, label: `${spec.localReward.model} (local reward model: the higher reward wins)` } };
}

export const useEvalStore = create<EvalStore>((set, get) => {
  const onEvent = (e: EvalEvent) => {
    const list = get().evaluations;
    const run = e.run;
    set({ evaluations: list.some((r) => r.evalId === run.evalId) ? list.map((r) => (r.evalId === run.evalId ? run : r)) : [run, ...list] });
  };

  /** Runs `work` (a start or a resume) with the page following its events. */
  const follow = async (evalId: string, work: () => Promise<EvalSummary>) => {
    set({ activeId: evalId, currentId: evalId, items: null, error: null });
    try {
      onEvent({ type: 'run', run: await work() });
    } catch (e) {
      set({ error: errorMessage(e) });
    } finally {
      set({ activeId: null });
      await get().refresh(get().modelKey);
      if (get().currentId === evalId) await get().select(evalId);
    }
  };

  /** The judge for a run that needs one (its reward model loaded when it is a local one). */
  const judgeFor = async (tiers: EvalTiers, prompt: string | null): Promise<EvalJudgeChoice | null> => {
    if (!tiers.judge) return null;
    const c = judgeChoice(prompt);
    if ('problem' in c) throw new Error(c.problem);
    if (c.judge.spec.type === 'local-reward') {
      await useSourcesStore.getState().ensureRewardModel();
      const rm = useSourcesStore.getState().rewardModel;
      if (rm.state !== 'ready') throw new Error(`The judge’s local reward model is not loaded${rm.state === 'error' ? `: ${rm.message}` : ''}. Load it on the Sources page.`);
    }
    return c.judge;
  };

  return {
    modelKey: null,
    adapters: [],
    form: typeof localStorage === 'undefined' ? DEFAULT_FORM : loadForm(),
    heldOut: null,
    dataFile: null,
    choicesFile: null,
    evaluations: [],
    currentId: null,
    items: null,
    activeId: null,
    error: null,

    async refresh(modelKey) {
      await useSourcesStore.getState().load();
      set({ heldOut: await readHeldOut().catch(() => null) });
      try {
        // Stored evaluations show without a model (after a reload); adapters need the model.
        const [evaluations, activeId, adapters] = await Promise.all([engine().listEvaluations(), engine().activeEvaluation(), modelKey ? engine().listAdapters() : Promise.resolve([])]);
        set({ modelKey, adapters, evaluations, activeId });
        if (modelKey) {
          // Adapters removed since are dropped from the choice (without a model the adapters are unknown: kept).
          const names = new Set(['base', ...adapters.map((a) => a.name)]);
          const models = get().form.models.filter((m) => names.has(m));
          set({ form: { ...get().form, models: models.length ? models : ['base'] } });
        }
        if (!get().currentId && evaluations[0]) await get().select(evaluations[0].evalId);
      } catch (e) {
        set({ error: errorMessage(e) });
      }
    },

    setForm(patch) {
      const form = { ...get().form, ...patch, tiers: { ...get().form.tiers, ...patch.tiers } };
      set({ form });
      saveForm(form);
    },

    toggleModel(name) {
      const cur = get().form.models;
      const order = ['base', ...get().adapters.map((a) => a.name)];
      const next = cur.includes(name) ? cur.filter((m) => m !== name) : [...cur, name];
      get().setForm({ models: order.filter((m) => next.includes(m)) });
    },

    setDataFile(f) {
      set({ dataFile: f });
    },

    setChoicesFile(f) {
      set({ choicesFile: f });
    },

    async start() {
      const { form, heldOut, dataFile, choicesFile, modelKey } = get();
      if (!modelKey) return set({ error: 'Load a model on the Model page first.' });
      try {
        const data = form.data === 'heldout' ? (heldOut ? { label: `the Data page’s held-out split (${heldOut.prompts} prompts, ${heldOut.sft} SFT rows, ${heldOut.dpo} DPO pairs)`, text: heldOut.text } : null) : dataFile ? { label: dataFile.name, text: dataFile.text } : null;
        if (!data)
          throw new Error(form.data === 'heldout' ? 'The Data page set no prompts aside for evaluation: upload an EVAL.jsonl instead.' : 'Choose an EVAL.jsonl file first.');
        const choices = form.tiers.choices ? (form.choices === 'builtin' ? { label: 'the built-in example', text: EXAMPLE_CHOICES } : choicesFile ? { label: choicesFile.name, text: choicesFile.text } : null) : null;
        if (form.tiers.choices && !choices) throw new Error('Choose a multiple-choice file, or use the built-in example.');
        if (form.models.length === 0) throw new Error('Pick at least one model.');
        if (form.tiers.judge && form.models.length < 2) throw new Error('The pairwise judge compares two models: pick at least two, or switch the judge tier off.');
        const judge = await judgeFor(form.tiers, form.judgePrompt);
        const settings: EvalSettings = {
          models: form.models,
          tiers: form.tiers,
          maxNewTokens: form.maxNewTokens,
          seed: form.seed,
          dateString: chatDateString(new Date()),
          dataLabel: data.label,
          choicesLabel: choices?.label ?? null,
          judgeLabel: judge?.label ?? null,
        };
        const evalId = `eval-${new Date().toISOString().replace(/[:.]/g, '-')}-${Math.random().toString(36).slice(2, 6)}`;
        const trainingPrompts = await readTrainingPrompts().catch(() => []);
        await follow(evalId, () =>
          engine().startEvaluation({ evalId, settings, dataText: data.text, choicesText: choices?.text ?? null, trainingPrompts, judge }, callback(onEvent)),
        );
      } catch (e) {
        set({ error: errorMessage(e) });
      }
    },

    async resume(evalId) {
      const run = get().evaluations.find((r) => r.evalId === evalId);
      if (!run) return;
      try {
        const judge = await judgeFor(run.settings.tiers, get().form.judgePrompt);
        await follow(evalId, () => engine().resumeEvaluation(evalId, judge, callback(onEvent)));
      } catch (e) {
        set({ error: errorMessage(e) });
      }
    },

    async cancel() {
      await engine().cancelEvaluation();
    },

    async select(evalId) {
      set({ currentId: evalId, items: null });
      try {
        const items = await engine().evaluationItems(evalId);
        if (get().currentId === evalId) set({ items });
      } catch (e) {
        set({ error: errorMessage(e) });
      }
    },

    async remove(evalId) {
      await engine().removeEvaluation(evalId);
      if (get().currentId === evalId) set({ currentId: null, items: null });
      await get().refresh(get().modelKey);
    },
  };
});
