// The Data page's state: the run's imported prompts, the pipeline job (src/data/pipeline.ts over
// an IndexedDB run store) with its progress, the stored responses and scores to browse, manual
// overrides and edits, and the exported artifacts. The run's id is kept in localStorage
// ('fuse-studio.dataRun'), its inputs in the studio database: a reload continues the same run,
// and re-running it never asks again for a response that is stored.
//
// Other pages read the built sets through `activeDataRunId()` and `readDataset(kind)`.

import { create } from 'zustand';
import type { Override } from '../data/construct';
import { ARTIFACTS, runPipeline, type PipelinePhase, type ScoreProgress } from '../data/pipeline';
import type { SourceProgress } from '../data/collect';
import {
  importPromptsFile,
  importPromptsFromHf,
  type ColumnMapping,
  type Domain,
  type DuplicateRow,
  type Prompt,
  type RowError,
} from '../data/prompts';
import { BrowserSandbox } from '../data/sandbox-browser';
import type { RunStore } from '../data/store';
import { DexieRunStore } from '../data/store-dexie';
import { isLocalSource } from '../data/local-source';
import type { ErrorRecord, ResponseRecord, ScoreRecord } from '../data/types';
import type { ConstructReport } from '../data/construct';
import { estimatePromptTokens, findLongPrompts, type LengthLimit, type LongPrompt } from '../data/prompt-length';
import { evalPercentOf, mergePrompts } from './dataView';
import { emptyImportProblem, explainImportError, type ImportSource } from './importView';
import { engine } from './engine';
import { pipelineLocalSources, useLocalSourcesStore, workerLocalCollect } from './localSources';
import { useModelStore } from './modelStore';
import { buildJudgeSpec, pipelineSources, toPipelineSource, useSourcesStore, workerRewardRunner } from './sourcesStore';
import { studioDb } from './studioDb';

export const DATA_RUN_KEY = 'fuse-studio.dataRun';

/** The id of the Data page's current run, or null before the page has made one. */
export function activeDataRunId(): string | null {
  try {
    return localStorage.getItem(DATA_RUN_KEY);
  } catch {
    return null;
  }
}

/** The current run's SFT or DPO set (TRL JSONL, ARTIFACTS.sft / ARTIFACTS.dpo), if it was built. */
export async function readDataset(kind: 'sft' | 'dpo'): Promise<string | undefined> {
  const runId = activeDataRunId();
  if (!runId) return undefined;
  return new DexieRunStore(runId).readArtifact(kind === 'sft' ? ARTIFACTS.sft : ARTIFACTS.dpo);
}

export interface ImportEntry {
  id: string;
  /** File name or dataset id. */
  label: string;
  kind: 'file' | 'hf';
  domain: Domain;
  mapping: ColumnMapping;
  prompts: Prompt[];
  errors: RowError[];
  duplicates: DuplicateRow[];
  /** Data rows read. */
  rows: number;
  /** Prompts already imported earlier (same id), left out. */
  skippedExisting: number;
  createdAt: string;
}

export type RunStatus = 'new' | 'running' | 'stopped' | 'done' | 'error';

/** What is persisted of a run besides its records. */
export interface DataRunDoc {
  runId: string;
  imports: ImportEntry[];
  overrides: Override[];
  /** Response key → text edited by hand (used in the sets instead of the source's). */
  edits: Record<string, string>;
  status: RunStatus;
  useSandbox: boolean;
  /** Prompts longer than this many tokens are warned about before collection (the run's budget). */
  promptTokenLimit?: number;
  /** Leave the prompts over a limit (promptLimits) out of the run. */
  skipLongPrompts?: boolean;
  /**
   * Percent of prompts held out for evaluation (never in the SFT/DPO sets); unset = the default for
   * the prompt count (evalPercentOf), fixed into the doc by the first run so re-runs keep it.
   */
  evalPercent?: number;
  createdAt: string;
}

/**
 * The long-prompt limit by default: FuseChat-3.0 trained at 2048 tokens, so the rest of a longer
 * prompt would be cut in training anyway; and such a prompt is slow to answer and to score.
 */
export const DEFAULT_PROMPT_TOKEN_LIMIT = 2048;

/** Token counts of the run's prompts: by the loaded model's tokenizer (exact), else estimated. */
export interface PromptLengths {
  counts: Record<string, number>;
  exact: boolean;
}

/**
 * The lengths the run's prompts should stay under: the run's budget, the loaded model's context,
 * and the local reward model's (when it is the judge and loaded).
 */
export function promptLimits(doc: Pick<DataRunDoc, 'promptTokenLimit'> | null): LengthLimit[] {
  const budget = doc?.promptTokenLimit ?? DEFAULT_PROMPT_TOKEN_LIMIT;
  const out: LengthLimit[] = [{ tokens: budget, what: `the long-prompt limit (${budget.toLocaleString('en-US')} tokens: slow to answer and to score)`, hard: false }];
  const model = useModelStore.getState().model;
  if (model) {
    const n = model.config.maxPositionEmbeddings;
    out.push({ tokens: n, what: `the context of the loaded model (${n.toLocaleString('en-US')} tokens)`, hard: true });
  }
  const sources = useSourcesStore.getState();
  if (sources.judge.kind === 'local-reward' && sources.rewardModel.state === 'ready') {
    const n = sources.rewardModel.summary.config.maxPositionEmbeddings;
    out.push({ tokens: n, what: `the context of the reward model (${n.toLocaleString('en-US')} tokens)`, hard: true });
  }
  return out;
}

/** The run's prompts over a limit (empty until their lengths are measured). */
export function longPromptsOf(doc: DataRunDoc | null, lengths: PromptLengths | null): LongPrompt[] {
  if (!doc || !lengths) return [];
  return findLongPrompts(runPrompts(doc), (id) => lengths.counts[id] ?? 0, promptLimits(doc));
}

export interface RunReport {
  counts: Record<string, number>;
  byDomain: ConstructReport['byDomain'];
  warnings: string[];
  construct: ConstructReport;
  artifacts: { name: string; rows?: number; bytes: number }[];
  createdAt: string;
}

export interface JobState {
  running: boolean;
  phase: PipelinePhase | null;
  collect: SourceProgress[];
  score: ScoreProgress | null;
  message: string | null;
  error: string | null;
  warnings: string[];
  /** Sources left out of this run because their connection test failed (the run can insist on them). */
  skippedSources: SkippedSource[];
}

export interface SkippedSource {
  /** The Sources page entry id. */
  id: string;
  name: string;
  /** The connection test's message. */
  reason: string;
}

export interface Browse {
  responses: ResponseRecord[];
  scores: ScoreRecord[];
  errors: ErrorRecord[];
}

export interface ImportRequest {
  domain: Domain;
  mapping: ColumnMapping;
}

interface DataStore {
  loaded: boolean;
  doc: DataRunDoc | null;
  importing: boolean;
  importError: string | null;
  job: JobState;
  browse: Browse;
  report: RunReport | null;
  /** Object URLs of the run's downloadable artifacts, by name. */
  files: Record<string, { url: string; bytes: number }>;
  /** The prompts' token counts (measurePrompts). */
  lengths: PromptLengths | null;
  load(): Promise<void>;
  /** Counts the prompts' tokens with the loaded model's tokenizer, or estimates them without one. */
  measurePrompts(): Promise<void>;
  setPromptTokenLimit(tokens: number): Promise<void>;
  setSkipLongPrompts(on: boolean): Promise<void>;
  /** Percent of the prompts held out for evaluation (0 to 50). */
  setEvalPercent(percent: number): Promise<void>;
  importFile(file: File, req: ImportRequest): Promise<void>;
  importHf(req: ImportRequest & { dataset: string; config: string; split: string; length: number; token?: string }): Promise<void>;
  removeImport(id: string): Promise<void>;
  setUseSandbox(on: boolean): Promise<void>;
  /**
   * Runs the pipeline. Sources that fail a connection test first are not asked (skippedSources),
   * unless their ids are in `insist`; a rebuild asks no source at all.
   */
  run(opts?: { rebuild?: boolean; insist?: readonly string[] }): Promise<void>;
  cancel(): void;
  refresh(): Promise<void>;
  addOverride(o: Override): Promise<void>;
  removeOverride(index: number): Promise<void>;
  editResponse(key: string, text: string | null): Promise<void>;
  newRun(): Promise<void>;
}

/** The artifacts the Data page offers for download. */
export const DOWNLOADABLE = [ARTIFACTS.sft, ARTIFACTS.dpo, ARTIFACTS.fusechatSft, ARTIFACTS.fusechatDpo, ARTIFACTS.report] as const;

const IDLE_JOB: JobState = { running: false, phase: null, collect: [], score: null, message: null, error: null, warnings: [], skippedSources: [] };

/**
 * The enabled sources whose connection test fails (tested now unless passed in this tab), except
 * `insist`: a dead host would otherwise be retried for every item of the run.
 */
async function failingSources(ids: readonly string[], insist: readonly string[]): Promise<SkippedSource[]> {
  const store = useSourcesStore.getState();
  const check = ids.filter((id) => !insist.includes(id));
  await Promise.all(check.filter((id) => store.tests[id]?.state !== 'ok').map((id) => useSourcesStore.getState().test(id)));
  const { tests, entries } = useSourcesStore.getState();
  return check.flatMap((id) => {
    const t = tests[id];
    return t?.state === 'error' ? [{ id, name: entries.find((e) => e.id === id)?.name ?? id, reason: t.message }] : [];
  });
}
const EMPTY_BROWSE: Browse = { responses: [], scores: [], errors: [] };

/** Every prompt of the run, in import order. */
export function runPrompts(doc: DataRunDoc | null): Prompt[] {
  return doc ? doc.imports.flatMap((i) => i.prompts) : [];
}

/**
 * The run store the pipeline sees: the IndexedDB one, with responses edited by hand read back
 * with their edited text (so the sets carry it). Stored records are never changed.
 */
class EditedRunStore implements RunStore {
  constructor(
    private readonly inner: DexieRunStore,
    private readonly edits: Readonly<Record<string, string>>,
  ) {}
  has = (key: string) => this.inner.has(key);
  put = (rec: ResponseRecord) => this.inner.put(rec);
  putError = (rec: ErrorRecord) => this.inner.putError(rec);
  async list() {
    return (await this.inner.list()).map((r) => (this.edits[r.key] !== undefined ? { ...r, content: this.edits[r.key]! } : r));
  }
  listErrors = () => this.inner.listErrors();
  putScore = (rec: ScoreRecord) => this.inner.putScore(rec);
  listScores = () => this.inner.listScores();
  writeArtifact = (name: string, text: string) => this.inner.writeArtifact(name, text);
  readArtifact = (name: string) => this.inner.readArtifact(name);
}

const newRunId = () => `run-${new Date().toISOString().slice(0, 10)}-${(crypto.randomUUID?.() ?? Math.random().toString(36).slice(2)).slice(0, 8)}`;
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

let loading: Promise<void> | null = null;
let controller: AbortController | null = null;
let sandbox: BrowserSandbox | null = null;
let lastRefresh = 0;

export const useDataStore = create<DataStore>((set, get) => {
  const save = async (doc: DataRunDoc) => {
    set({ doc });
    await studioDb().dataRuns.put({ runId: doc.runId, doc, updatedAt: new Date().toISOString() });
  };
  const patchDoc = async (patch: Partial<DataRunDoc>) => {
    const doc = get().doc;
    if (doc) await save({ ...doc, ...patch });
  };
  const freshDoc = (runId: string): DataRunDoc => ({
    runId,
    imports: [],
    overrides: [],
    edits: {},
    status: 'new',
    useSandbox: true,
    createdAt: new Date().toISOString(),
  });
  /** Adds an import to the run; one that adds no prompt is refused with why (an error, not an entry). */
  const addImport = async (src: ImportSource, entry: Omit<ImportEntry, 'skippedExisting' | 'id' | 'createdAt'>) => {
    const doc = get().doc!;
    const { added, skipped } = mergePrompts(runPrompts(doc), entry.prompts);
    const problem = emptyImportProblem(src, { rows: entry.rows, added: added.length, errors: entry.errors, duplicates: entry.duplicates.length, skippedExisting: skipped });
    if (problem) {
      set({ importError: problem });
      return;
    }
    const full: ImportEntry = {
      ...entry,
      prompts: added,
      skippedExisting: skipped,
      id: `imp-${Date.now().toString(36)}`,
      createdAt: new Date().toISOString(),
    };
    await save({ ...doc, imports: [...doc.imports, full] });
    void get().measurePrompts();
  };

  return {
    loaded: false,
    doc: null,
    importing: false,
    importError: null,
    job: IDLE_JOB,
    browse: EMPTY_BROWSE,
    report: null,
    files: {},
    lengths: null,

    load() {
      loading ??= (async () => {
        try {
          let runId = activeDataRunId();
          if (!runId) {
            runId = newRunId();
            localStorage.setItem(DATA_RUN_KEY, runId);
          }
          const row = await studioDb().dataRuns.get(runId);
          const doc = (row?.doc as DataRunDoc | undefined) ?? freshDoc(runId);
          set({ doc, loaded: true });
          if (!row) await save(doc);
          await Promise.all([useSourcesStore.getState().load(), get().refresh(), get().measurePrompts()]);
        } catch (e) {
          loading = null;
          set({ loaded: true, job: { ...IDLE_JOB, error: `Could not open the run: ${message(e)}` } });
        }
      })();
      return loading;
    },

    async importFile(file, req) {
      set({ importing: true, importError: null });
      try {
        const data = new Uint8Array(await file.arrayBuffer());
        const r = await importPromptsFile(file.name, data, { domain: req.domain, mapping: req.mapping });
        await addImport({ kind: 'file', name: file.name }, { label: file.name, kind: 'file', domain: req.domain, mapping: req.mapping, prompts: r.prompts, errors: r.errors, duplicates: r.duplicates, rows: r.rows });
      } catch (e) {
        set({ importError: explainImportError({ kind: 'file', name: file.name }, e) });
      } finally {
        set({ importing: false });
      }
    },

    async importHf(req) {
      set({ importing: true, importError: null });
      try {
        const r = await importPromptsFromHf({
          dataset: req.dataset,
          config: req.config || 'default',
          split: req.split || 'train',
          length: req.length,
          ...(req.token ? { token: req.token } : {}),
          domain: req.domain,
          mapping: req.mapping,
        });
        const label = `${req.dataset} (${req.config || 'default'}/${req.split || 'train'})`;
        await addImport(
          { kind: 'hf', dataset: req.dataset, token: Boolean(req.token) },
          { label, kind: 'hf', domain: req.domain, mapping: req.mapping, prompts: r.prompts, errors: r.errors, duplicates: r.duplicates, rows: r.rows },
        );
      } catch (e) {
        set({ importError: explainImportError({ kind: 'hf', dataset: req.dataset, token: Boolean(req.token) }, e) });
      } finally {
        set({ importing: false });
      }
    },

    async removeImport(id) {
      const doc = get().doc;
      if (doc) await save({ ...doc, imports: doc.imports.filter((i) => i.id !== id) });
      void get().measurePrompts();
    },

    async setUseSandbox(on) {
      await patchDoc({ useSandbox: on });
    },

    async measurePrompts() {
      const prompts = runPrompts(get().doc);
      let exact: number[] | null = null;
      if (useModelStore.getState().model) {
        try {
          exact = await engine().countPromptTokens(prompts.map((p) => ({ text: p.text, ...(p.system ? { system: p.system } : {}) })));
        } catch {
          exact = null; // the worker is busy or gone: estimate
        }
      }
      const counts: Record<string, number> = {};
      prompts.forEach((p, k) => (counts[p.id] = exact ? exact[k]! : estimatePromptTokens(p)));
      set({ lengths: { counts, exact: exact !== null } });
    },

    async setPromptTokenLimit(tokens) {
      await patchDoc({ promptTokenLimit: tokens });
    },

    async setSkipLongPrompts(on) {
      await patchDoc({ skipLongPrompts: on });
    },

    async setEvalPercent(percent) {
      if (!(percent >= 0 && percent <= 50)) throw new RangeError(`evalPercent must be in [0, 50], got ${percent}`);
      await patchDoc({ evalPercent: percent });
    },

    async run(opts = {}) {
      await get().load();
      const doc = get().doc;
      if (!doc || get().job.running) return;
      const sourcesState = useSourcesStore.getState();
      // Remote endpoints, then the local models (run one at a time in the engine worker).
      const sources = [...pipelineSources(sourcesState.entries), ...pipelineLocalSources(useLocalSourcesStore.getState().entries)];
      if (doc.skipLongPrompts && !get().lengths) await get().measurePrompts();
      const long = doc.skipLongPrompts ? new Set(longPromptsOf(doc, get().lengths).map((l) => l.id)) : new Set<string>();
      const prompts = runPrompts(doc).filter((p) => !long.has(p.id));
      if (prompts.length === 0)
        return set({
          job: { ...IDLE_JOB, error: long.size > 0 ? 'Every prompt is over a length limit and left out: raise the long-prompt limit, or include the long prompts.' : 'Import some prompts first.' },
        });
      if (sources.length === 0) return set({ job: { ...IDLE_JOB, error: 'Add and enable a complete source on the Sources page first.' } });
      const judge = buildJudgeSpec(sourcesState.judge, sourcesState.entries);
      if (doc.useSandbox) sandbox ??= new BrowserSandbox();
      controller = new AbortController();
      const signal = controller.signal;
      set({ job: { ...IDLE_JOB, running: true, message: opts.rebuild ? 'Rebuilding the sets…' : 'Checking the sources…' } });
      // A rebuild asks nobody; a run leaves out the sources that fail their connection test.
      const entryIds = sourcesState.entries.filter((e) => e.enabled && sources.some((x) => x.id === toPipelineSource(e).id)).map((e) => e.id);
      const skippedSources = opts.rebuild ? [] : await failingSources(entryIds, opts.insist ?? []);
      const skippedIds = new Set(skippedSources.map((x) => toPipelineSource(useSourcesStore.getState().entries.find((e) => e.id === x.id)!).id));
      const notAsked = opts.rebuild ? sources.map((x) => x.id) : [...skippedIds];
      if (!opts.rebuild && skippedSources.length === sources.length) {
        controller = null;
        return set({
          job: {
            ...IDLE_JOB,
            skippedSources,
            error: `No source answered its connection test, so nothing was asked: ${skippedSources.map((x) => `“${x.name}”: ${x.reason}`).join(' ')} Fix them on the Sources page, or run anyway.`,
          },
        });
      }
      set({ job: { ...get().job, skippedSources, message: 'Starting…' } });
      // The held-out share is fixed into the doc by the first run: the default must not change
      // under a resumed run when prompts are added past MIN_PROMPTS_FOR_EVAL.
      const evalPercent = evalPercentOf(doc.evalPercent, runPrompts(doc).length);
      await patchDoc({ status: 'running', evalPercent });
      const store = new EditedRunStore(new DexieRunStore(doc.runId), doc.edits);
      try {
        // A local reward model runs in the engine worker: load it there first (a Hub repo or URL).
        if (judge?.type === 'local-reward') {
          set({ job: { ...get().job, message: 'Loading the reward model…' } });
          await useSourcesStore.getState().ensureRewardModel();
        }
        const result = await runPipeline({
          prompts,
          sources,
          ...(judge ? { judge } : {}),
          ...(judge?.type === 'local-reward' ? { rewardModel: workerRewardRunner } : {}),
          ...(sources.some(isLocalSource) ? { local: workerLocalCollect(doc.runId) } : {}),
          ...(doc.useSandbox && sandbox ? { sandbox } : {}),
          store,
          overrides: doc.overrides,
          // Held out by each prompt's own id: prompts added or left out move no other prompt.
          evalFraction: evalPercent / 100,
          stableEvalSplit: true,
          signal,
          retryFailed: !opts.rebuild,
          ...(notAsked.length ? { notAsked } : {}),
          onProgress: (e) => {
            const job = get().job;
            if (e.phase === 'collect' && Date.now() - lastRefresh > 1500) {
              // Show responses as they arrive (throttled: reading the run back costs).
              lastRefresh = Date.now();
              void get().refresh();
            }
            if (e.phase === 'collect') set({ job: { ...job, phase: 'collect', collect: e.sources, message: 'Collecting responses…' } });
            else if (e.phase === 'score') set({ job: { ...job, phase: 'score', score: e.score, message: 'Scoring responses…' } });
            else if (e.phase === 'construct') set({ job: { ...job, phase: 'construct', message: 'Building the SFT and DPO sets…' } });
            else if (e.phase === 'export') set({ job: { ...job, phase: 'export', message: 'Writing the files…' } });
            else set({ job: { ...job, phase: e.phase } });
          },
        });
        const job = get().job;
        const collected = result.collect ? ` ${result.collect.collected} response(s) collected, ${result.collect.skipped} already stored.` : '';
        set({
          job: {
            ...job,
            running: false,
            phase: result.phase,
            warnings: result.warnings,
            message: result.cancelled ? `Stopped during ${result.phase}: what was stored stays; run again to continue.${collected}` : `Done.${collected}`,
          },
        });
        await patchDoc({ status: result.cancelled ? 'stopped' : 'done' });
      } catch (e) {
        set({ job: { ...get().job, running: false, error: message(e) } });
        await patchDoc({ status: 'error' });
      } finally {
        controller = null;
      }
      await get().refresh();
    },

    cancel() {
      controller?.abort();
    },

    async refresh() {
      const doc = get().doc;
      if (!doc) return;
      const store = new DexieRunStore(doc.runId);
      const [responses, scores, errors, texts] = await Promise.all([
        store.list(),
        store.listScores(),
        store.listErrors(),
        Promise.all(DOWNLOADABLE.map((name) => store.readArtifact(name))),
      ]);
      const reportText = texts[DOWNLOADABLE.indexOf(ARTIFACTS.report)];
      let report: RunReport | null = null;
      if (reportText) {
        try {
          report = JSON.parse(reportText) as RunReport;
        } catch {
          report = null;
        }
      }
      // Real links to the files (a click downloads at once, no async work in between).
      for (const f of Object.values(get().files)) URL.revokeObjectURL(f.url);
      const files: DataStore['files'] = {};
      DOWNLOADABLE.forEach((name, k) => {
        const text = texts[k];
        if (text === undefined) return;
        const blob = new Blob([text], { type: name.endsWith('.json') ? 'application/json' : 'application/x-ndjson' });
        files[name] = { url: URL.createObjectURL(blob), bytes: blob.size };
      });
      set({ browse: { responses, scores, errors }, report, files });
    },

    async addOverride(o) {
      const doc = get().doc;
      if (!doc) return;
      const same = (a: Override) => JSON.stringify(a) === JSON.stringify(o);
      if (doc.overrides.some(same)) return;
      // A new SFT/chosen/rejected choice replaces an older one for the same prompt.
      const replaced = 'promptId' in o && 'responseId' in o ? doc.overrides.filter((x) => !(x.op === o.op && 'promptId' in x && x.promptId === o.promptId)) : doc.overrides;
      await save({ ...doc, overrides: [...replaced, o] });
    },

    async removeOverride(index) {
      const doc = get().doc;
      if (doc) await save({ ...doc, overrides: doc.overrides.filter((_, k) => k !== index) });
    },

    async editResponse(key, text) {
      const doc = get().doc;
      if (!doc) return;
      const edits = { ...doc.edits };
      if (text === null) delete edits[key];
      else edits[key] = text;
      await save({ ...doc, edits });
    },

    async newRun() {
      if (get().job.running) return;
      const old = get().doc;
      const runId = newRunId();
      localStorage.setItem(DATA_RUN_KEY, runId);
      // The new run starts with the same prompts; responses are collected again.
      const doc: DataRunDoc = { ...freshDoc(runId), imports: old?.imports ?? [], useSandbox: old?.useSandbox ?? true, ...(old?.evalPercent !== undefined ? { evalPercent: old.evalPercent } : {}) };
      for (const f of Object.values(get().files)) URL.revokeObjectURL(f.url);
      set({ job: IDLE_JOB, browse: EMPTY_BROWSE, report: null, files: {} });
      await save(doc);
    },
  };
});
