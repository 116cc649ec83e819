// The Train page's state: the stage (SFT, then DPO) and its settings (the documented defaults,
// editable), the dataset (the Data page's built set or an uploaded JSONL file), the runs stored in
// IndexedDB with the one on screen (its metrics history, checkpoints, ETA), and the adapters of
// the loaded model. Training runs in the engine worker (worker/train-service.ts); this store
// starts, pauses, resumes and stops it and keeps what the page shows.

import { create } from 'zustand';
import type { Metrics } from '../train/trainer';
import { activeDataRunId, readDataset } from './dataStore';
import { callback, engine, errorMessage } from './engine';
import { deviceLimits, useModelStore } from './modelStore';
import {
  defaultSettings,
  describeLineErrors,
  historyUpTo,
  isLive,
  newRunId,
  parseDataset,
  resolveDpoInit,
  restoreSettings,
  TRAIN_SETTINGS_KEY,
  TRAIN_STAGE_KEY,
  type DpoLoss,
  type Stage,
  type TrainEvent,
  type TrainRunSummary,
  type TrainSettings,
} from './trainConfig';
import type { AdapterInfo } from './worker/adapter-store';
import type { TrainEstimate } from './worker/train-service';

/**
 * The GPU memory the user stated on the Home or Model page ("GPU memory free"), in bytes, or
 * null: the step's memory budget, as `fuse-studio train --gpu-memory` gives it.
 */
export function statedMemoryBytes(): number | null {
  return deviceLimits(null, useModelStore.getState().planSettings.memoryGiB).memoryBytes;
}

export type DatasetSource = 'data' | 'file';

export interface DatasetChoice {
  source: DatasetSource;
  /** The uploaded file (source 'file'). */
  fileName: string | null;
  fileText: string | null;
  /** Records parsed from the chosen text, and its malformed lines (null before checking). */
  records: number | null;
  problem: string | null;
}

/** What the Data page has built for each stage (records in its set), or null when none. */
export type DataSets = Record<Stage, number | null>;

export interface RunView {
  run: TrainRunSummary;
  history: Metrics[];
  etaSeconds: number | null;
  /** A line about what the run is doing besides stepping (reference log-probs, resumed from …). */
  phase: string | null;
}

/** The plan of the run the page would start, worked out by the worker (tokenized as the run will be). */
export type EstimateState =
  | { state: 'none' }
  | { state: 'working' }
  | { state: 'ready'; estimate: TrainEstimate; key: string }
  | { state: 'error'; message: string };

interface TrainStore {
  stage: Stage;
  estimate: EstimateState;
  /** Works out the step count and time of the run the page shows (no model or no data: none). */
  refreshEstimate(): Promise<void>;
  /** DPO: the adapter to continue (null: a fresh one; undefined: the newest SFT adapter). */
  dpoInit: string | null | undefined;
  settings: Record<Stage, TrainSettings>;
  dataset: Record<Stage, DatasetChoice>;
  dataSets: DataSets;
  runs: TrainRunSummary[];
  current: RunView | null;
  /** The run this tab's worker trains now. */
  activeRunId: string | null;
  adapters: AdapterInfo[];
  error: string | null;

  setStage(stage: Stage): void;
  setDpoInit(name: string | null): void;
  setSetting<K extends keyof TrainSettings>(key: K, value: TrainSettings[K]): void;
  setDpoLoss(loss: DpoLoss): void;
  resetSettings(): void;
  setDatasetSource(source: DatasetSource): void;
  uploadDataset(file: File): Promise<void>;
  refresh(modelKey: string | null): Promise<void>;
  select(runId: string): Promise<void>;
  start(): Promise<void>;
  resumeRun(runId: string): Promise<void>;
  pause(): void;
  proceed(): void;
  stop(): void;
  discard(runId: string): Promise<void>;
  dismissError(): void;
}

function loadSettings(): Record<Stage, TrainSettings> {
  let raw: Partial<Record<Stage, unknown>> = {};
  try {
    raw = JSON.parse(localStorage.getItem(TRAIN_SETTINGS_KEY) ?? '{}') as Partial<Record<Stage, unknown>>;
  } catch {
    // none stored, or unreadable: the defaults
  }
  return { sft: restoreSettings('sft', raw?.sft), dpo: restoreSettings('dpo', raw?.dpo) };
}

function saveSettings(settings: Record<Stage, TrainSettings>): Record<Stage, TrainSettings> {
  try {
    localStorage.setItem(TRAIN_SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // storage full or off: the settings last for this tab
  }
  return settings;
}

function loadStage(): Stage {
  try {
    return localStorage.getItem(TRAIN_STAGE_KEY) === 'dpo' ? 'dpo' : 'sft';
  } catch {
    return 'sft';
  }
}

const emptyChoice = (): DatasetChoice => ({ source: 'data', fileName: null, fileText: null, records: null, problem: null });

function check(text: string, stage: Stage): { records: number; problem: string | null } {
  const parsed = parseDataset(text, stage);
  const bad = describeLineErrors(parsed.errors, stage);
  return { records: parsed.records.length, problem: bad ?? (parsed.records.length ? null : `No ${stage.toUpperCase()} records in it.`) };
}

async function countDataSet(stage: Stage): Promise<number | null> {
  try {
    if (!activeDataRunId()) return null;
    const text = await readDataset(stage);
    if (!text) return null;
    return parseDataset(text, stage).records.length;
  } catch {
    return null;
  }
}

export const useTrainStore = create<TrainStore>()((set, get) => {
  /** Apply an event of the run on screen (or of the active run, which becomes the one on screen). */
  const onEvent = (e: TrainEvent) => {
    const runId = e.type === 'run' ? e.run.runId : e.runId;
    const cur = get().current;
    if (!cur || cur.run.runId !== runId) return;
    switch (e.type) {
      case 'run': {
        // A resumed run restarts from its checkpoint: what was logged after it is logged again.
        const history = e.run.status === 'preparing' ? historyUpTo(cur.history, e.run.step) : cur.history;
        const runs = get().runs;
        set({ current: { ...cur, run: e.run, history }, runs: runs.some((r) => r.runId === runId) ? runs.map((r) => (r.runId === runId ? e.run : r)) : [e.run, ...runs] });
        break;
      }
      case 'log': {
        const run = 'loss' in e.metrics ? { ...cur.run, step: e.metrics.step ?? cur.run.step } : cur.run;
        set({ current: { ...cur, run, history: [...cur.history, e.metrics], etaSeconds: e.etaSeconds ?? cur.etaSeconds } });
        break;
      }
      case 'phase':
        set({ current: { ...cur, phase: e.phase } });
        break;
      case 'checkpoint':
        break;
    }
  };

  const refreshAdapters = async () => {
    try {
      set({ adapters: await engine().listAdapters() });
    } catch {
      set({ adapters: [] });
    }
  };

  /** Run `work` (a start or a resume) with the page following its events. */
  const follow = async (run: TrainRunSummary, history: Metrics[], work: () => Promise<TrainRunSummary>) => {
    set({ current: { run, history, etaSeconds: null, phase: null }, activeRunId: run.runId, error: null });
    try {
      const final = await work();
      const cur = get().current;
      if (cur?.run.runId === final.runId) set({ current: { ...cur, run: final, etaSeconds: null } });
    } catch (e) {
      set({ error: errorMessage(e) });
    } finally {
      set({ activeRunId: null });
      const cur = get().current;
      await get().refresh(cur?.run.modelKey ?? null);
      await refreshAdapters();
    }
  };

  return {
    stage: typeof localStorage === 'undefined' ? 'sft' : loadStage(),
    estimate: { state: 'none' },
    dpoInit: undefined,
    settings: typeof localStorage === 'undefined' ? { sft: defaultSettings('sft'), dpo: defaultSettings('dpo') } : loadSettings(),
    dataset: { sft: emptyChoice(), dpo: emptyChoice() },
    dataSets: { sft: null, dpo: null },
    runs: [],
    current: null,
    activeRunId: null,
    adapters: [],
    error: null,

    setStage(stage) {
      set({ stage });
      try {
        localStorage.setItem(TRAIN_STAGE_KEY, stage);
      } catch {
        // storage off: the stage lasts for this tab
      }
    },

    setDpoInit(name) {
      set({ dpoInit: name });
    },

    async refreshEstimate() {
      const { stage, settings, dataset } = get();
      const choice = dataset[stage];
      const text = choice.source === 'file' ? (choice.problem ? null : choice.fileText) : await readDataset(stage).catch(() => undefined);
      if (!text) return set({ estimate: { state: 'none' } });
      // Runs that ended since may have measured the speed: they are part of the key.
      const keyOf = (st: TrainStore) =>
        JSON.stringify([st.stage, st.settings[st.stage], st.dataset[st.stage].source, st.dataset[st.stage].fileName, text.length, st.runs.map((r) => [r.runId, r.status]), statedMemoryBytes()]);
      const key = keyOf(get());
      const cur = get().estimate;
      if (cur.state === 'ready' && cur.key === key) return;
      set({ estimate: { state: 'working' } });
      try {
        const estimate = await engine().estimateTraining({ stage, datasetText: text, settings: settings[stage], memoryBudgetBytes: statedMemoryBytes() });
        // Only if nothing changed meanwhile.
        if (keyOf(get()) === key) set({ estimate: { state: 'ready', estimate, key } });
      } catch (e) {
        set({ estimate: { state: 'error', message: errorMessage(e) } });
      }
    },

    setSetting(key, value) {
      const { stage, settings } = get();
      set({ settings: saveSettings({ ...settings, [stage]: { ...settings[stage], [key]: value } }) });
    },

    setDpoLoss(loss) {
      // The loss decides the documented lr and beta: switch them with it, keep the rest.
      const { settings } = get();
      const d = defaultSettings('dpo', loss);
      set({ settings: saveSettings({ ...settings, dpo: { ...settings.dpo, loss, lr: d.lr, beta: d.beta } }) });
    },

    resetSettings() {
      const { stage, settings } = get();
      set({ settings: saveSettings({ ...settings, [stage]: defaultSettings(stage, settings.dpo.loss) }) });
    },

    setDatasetSource(source) {
      const { stage, dataset } = get();
      set({ dataset: { ...dataset, [stage]: { ...dataset[stage], source } } });
    },

    async uploadDataset(file) {
      const stage = get().stage;
      let text: string;
      try {
        text = await file.text();
      } catch (e) {
        set({ dataset: { ...get().dataset, [stage]: { source: 'file', fileName: file.name, fileText: null, records: null, problem: `Could not read ${file.name}: ${errorMessage(e)}` } } });
        return;
      }
      const { records, problem } = check(text, stage);
      set({ dataset: { ...get().dataset, [stage]: { source: 'file', fileName: file.name, fileText: text, records, problem } } });
    },

    async refresh(modelKey) {
      try {
        const [runs, activeRunId, sft, dpo] = await Promise.all([engine().listTrainingRuns(), engine().activeTrainingRun(), countDataSet('sft'), countDataSet('dpo')]);
        set({ runs, dataSets: { sft, dpo } });
        if (activeRunId && get().activeRunId !== activeRunId) set({ activeRunId });
        const cur = get().current;
        if (cur) {
          const fresh = runs.find((r) => r.runId === cur.run.runId);
          // A live run's record here is older than the events: keep the events' view.
          if (fresh && !(isLive(cur.run.status) && get().activeRunId === fresh.runId)) set({ current: { ...cur, run: fresh } });
          if (!fresh && get().activeRunId !== cur.run.runId) set({ current: null });
        }
        if (!get().current) {
          const first = runs.find((r) => modelKey === null || r.modelKey === modelKey) ?? runs[0];
          if (first) await get().select(first.runId);
        }
      } catch (e) {
        set({ error: errorMessage(e) });
      }
      if (modelKey) await refreshAdapters();
    },

    async select(runId) {
      const run = get().runs.find((r) => r.runId === runId);
      if (!run) return;
      if (get().current?.run.runId === runId) return;
      const history = await engine().trainingMetrics(runId);
      set({ current: { run, history, etaSeconds: null, phase: null } });
    },

    async start() {
      const { stage, settings, dataset, activeRunId } = get();
      if (activeRunId) return;
      const choice = dataset[stage];
      let text: string | undefined;
      let label: string;
      if (choice.source === 'file') {
        text = choice.fileText ?? undefined;
        label = choice.fileName ?? 'an uploaded file';
      } else {
        text = await readDataset(stage).catch(() => undefined);
        label = `the Data page’s ${stage.toUpperCase()} set`;
      }
      if (!text) {
        set({ error: choice.source === 'file' ? 'Choose a JSONL file first.' : `The Data page has not built an ${stage.toUpperCase()} set yet: build one there, or upload a JSONL file.` });
        return;
      }
      const runId = newRunId(stage);
      const placeholder: TrainRunSummary = {
        runId,
        modelKey: '',
        stage,
        status: 'preparing',
        settings: settings[stage],
        datasetLabel: label,
        datasetSha256: '',
        examples: 0,
        skipped: [],
        truncated: 0,
        dateString: '',
        init: null,
        step: 0,
        totalSteps: 0,
        seqLen: 0,
        checkpoints: [],
        adapterName: null,
        error: null,
        nonFinite: null,
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
      };
      const previous = get().current;
      // DPO continues what the page shows (checked again in the worker).
      const init = stage === 'dpo' ? (resolveDpoInit(get().dpoInit, get().adapters)?.name ?? null) : null;
      await follow(placeholder, [], () => engine().startTraining({ runId, stage, init, datasetText: text, datasetLabel: label, settings: settings[stage], memoryBudgetBytes: statedMemoryBytes() }, callback(onEvent)));
      // A start that failed before the run existed: show the previous run again.
      if (get().current?.run.runId === runId && !get().runs.some((r) => r.runId === runId)) set({ current: previous });
    },

    async resumeRun(runId) {
      if (get().activeRunId) return;
      const run = get().runs.find((r) => r.runId === runId);
      if (!run) return;
      const history = await engine().trainingMetrics(runId);
      await follow(run, history, () => engine().resumeTrainingRun(runId, callback(onEvent)));
    },

    pause() {
      void engine().pauseTraining();
    },

    proceed() {
      void engine().continueTraining();
    },

    stop() {
      void engine().stopTraining();
    },

    async discard(runId) {
      try {
        await engine().discardTrainingRun(runId);
      } catch (e) {
        set({ error: errorMessage(e) });
        return;
      }
      if (get().current?.run.runId === runId) set({ current: null });
      await get().refresh(null);
    },

    dismissError() {
      set({ error: null });
    },
  };
});
