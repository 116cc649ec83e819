// The Sources page's state: the OpenAI-compatible endpoints the data pipeline asks (kept in the
// studio's IndexedDB, keys included, never logged or exported), connection tests, model lists,
// and the optional judge (a source with a rubric, a reward-model endpoint, or a local reward model
// that the engine worker loads and runs). The requests themselves are src/data's (sources.ts,
// score.ts); this module holds and persists settings, and asks the worker to load the reward model.

import { create } from 'zustand';
import {
  classifyError,
  createClient,
  endpointPreset,
  makeSource,
  redact,
  RESPONSES_PER_PROMPT,
  testConnection as testSourceConnection,
  type EndpointPreset,
  type Source,
} from '../data/sources';
import {
  DEFAULT_JUDGE_MAX_TOKENS,
  DEFAULT_RUBRIC,
  judgeClient,
  PREVIOUS_DEFAULT_RUBRICS,
  RewardBatcher,
  rewardNormalizationOf,
  scoreWith,
  type JudgeInput,
  type JudgeSpec,
  type RewardModelRunner,
  type RewardNormalization,
} from '../data/score';
import type { LoadProgress } from '../model/load';
import { callback, engine, errorMessage } from './engine';
import { studioDb, type SourceEntry } from './studioDb';
import type { RewardModelChoice, RewardModelSummary } from './worker/reward-service';

export type { SourceEntry } from './studioDb';

// ---------------------------------------------------------------------------------------------
// Pure helpers (unit-tested)

/**
 * How long one request may take before it is abandoned (and retried) in the studio, by default:
 * long enough for a slow local server to write a long answer, short enough that a request that
 * will never finish (a prompt far too long for the server) does not hold the run for long. Each
 * source (and the judge) sets its own.
 */
export const DEFAULT_REQUEST_TIMEOUT_S = 120;

/**
 * The pipeline's Source for an entry. Its id joins the entry's id and the model, so changing
 * the model of an entry starts new items instead of mixing two models' responses under one id.
 */
export function toPipelineSource(e: SourceEntry): Source {
  const { presetId: _p, enabled: _e, createdAt: _c, id, ...rest } = e;
  const src: Source = { ...rest, id: `${id}:${e.model}`, retry: { timeoutMs: DEFAULT_REQUEST_TIMEOUT_S * 1000, ...e.retry } };
  if (src.seed === undefined || !Number.isFinite(src.seed)) delete src.seed;
  if (src.requestsPerMinute === undefined || !(src.requestsPerMinute > 0)) delete src.requestsPerMinute;
  if (src.repetition_penalty === undefined || !(src.repetition_penalty > 0)) delete src.repetition_penalty;
  return src;
}

/** A new entry from an endpoint preset, with the paper's default sampling. */
export function newSourceEntry(preset: EndpointPreset | undefined, id: string, existingNames: readonly string[] = []): SourceEntry {
  const base = makeSource(preset ? { endpoint: preset, model: '' } : { baseURL: 'http://127.0.0.1:8000/v1', model: '' });
  const label = preset?.label.replace(/\s*\(.*\)$/, '') ?? 'Custom';
  let name = label;
  for (let k = 2; existingNames.includes(name); k++) name = `${label} ${k}`;
  const { id: _id, ...rest } = base;
  return { ...rest, id, name, n: RESPONSES_PER_PROMPT.instruction, presetId: preset?.id ?? 'custom', enabled: true, createdAt: new Date().toISOString() };
}

/**
 * What is wrong with a base URL as typed, or null. A malformed one is named here, before any
 * request: sent as it is, the browser would resolve it against the studio's own address (or
 * refuse it) and the failure would read as a network or CORS problem.
 */
export function baseUrlProblem(text: string): string | null {
  const t = text.trim();
  const example = 'e.g. http://127.0.0.1:8000/v1';
  if (!t) return `needs a base URL, ${example}`;
  if (/\s/.test(t)) return `the base URL “${t}” has a space in it`;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(t)?.[1];
  if (!scheme) {
    const secure = /^https/i.test(t);
    return `the base URL “${t}” has no http:// or https:// at the start: write ${secure ? 'https' : 'http'}://${t.replace(/^https?:?\/*/i, '').replace(/^\/+/, '')}`;
  }
  if (!/^https?$/i.test(scheme)) return `the base URL “${t}” starts with “${scheme}://”: it must start with http:// or https://`;
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return `the base URL “${t}” is not a valid URL: check the host name and the port (1–65535)`;
  }
  if (!u.hostname) return `the base URL “${t}” has no host name, ${example}`;
  if (u.search || u.hash) return `the base URL “${t}” has a ${u.search ? '?query' : '#fragment'}: remove it, ${example}`;
  const endpoint = /\/(chat\/completions|completions|models|embeddings)\/?$/.exec(u.pathname)?.[1];
  if (endpoint) return `the base URL ends in /${endpoint}: give the address before it (${t.slice(0, t.lastIndexOf(`/${endpoint}`))}); the studio adds /${endpoint} itself`;
  return null;
}

/** What is wrong with an entry before it can be used ('' when nothing). */
export function sourceProblem(e: SourceEntry): string {
  if (!e.name.trim()) return 'needs a name';
  const url = baseUrlProblem(e.baseURL);
  if (url) return url;
  if (!e.model.trim()) return 'needs a model';
  if (!(Number.isInteger(e.n) && e.n >= 1)) return 'responses per prompt must be a whole number ≥ 1';
  if (!(Number.isInteger(e.concurrency) && e.concurrency >= 1)) return 'concurrency must be a whole number ≥ 1';
  if (!(e.max_tokens >= 1)) return 'max tokens must be ≥ 1';
  const preset = endpointPreset(e.presetId);
  if (preset?.needsKey && !e.apiKey) return `${preset.label} needs an API key`;
  return '';
}

/**
 * A connection failure as the user should read it: what went wrong and what to do. `reachable`
 * says whether the server answered an opaque (no-cors) request, which tells a CORS block
 * (reachable, but the browser hid the answer) from a server that is down (null: not probed).
 */
export function explainConnectionError(error: string, baseURL: string, reachable: boolean | null): string {
  const status = /\bHTTP (\d{3})\b/.exec(error)?.[1];
  const detail = ` (${error})`;
  switch (status) {
    case '401':
      return `401 Unauthorized: the server refused the API key. Check the key and that it belongs to this provider.${detail}`;
    case '403':
      return `403 Forbidden: the key is valid but may not use this model or endpoint.${detail}`;
    case '404':
      return `404 Not found: check the base URL (it should end in /v1) and the model name.${detail}`;
    case '429':
      return `429 Too many requests: the provider is rate-limiting this key; lower the rate limit or wait.${detail}`;
  }
  if (status && status >= '500') return `${status} Server error: the server failed to answer; try again later.${detail}`;
  if (status) return `HTTP ${status}: the server rejected the request.${detail}`;
  if (/timed out/i.test(error)) return `Timed out: ${baseURL} did not answer in time.${detail}`;
  if (/connection failed|failed to fetch|network/i.test(error)) {
    if (reachable)
      return `Blocked by CORS: ${baseURL} answered, but without the Access-Control-Allow-Origin header this page (${typeof location === 'undefined' ? 'the studio' : location.origin}) needs. Allow the studio's origin on the server (vLLM: --allowed-origins, Ollama: OLLAMA_ORIGINS).${detail}`;
    return `Unreachable: nothing answered at ${baseURL}. Is the server running, and is the URL right?${detail}`;
  }
  if (/not among the/.test(error)) return `The server answered, but does not list this model.${detail}`;
  return error;
}

export type RewardNormalizeKind = RewardNormalization['kind'];

export interface JudgeSettings {
  kind: 'none' | 'judge' | 'reward' | 'local-reward';
  /** Entry id of the judge source (kind 'judge'). */
  sourceId: string;
  rubric: string;
  /** Tokens the judge may write (kind 'judge'): its own, not the source's collection setting. */
  maxTokens: number;
  /** Seconds one judge or reward request may take (kinds 'judge' and 'reward'). */
  timeoutSeconds: number;
  concurrency: number;
  reward: {
    baseURL: string;
    apiKey: string;
    model: string;
    path: string;
    scorePath: string;
    normalize: RewardNormalizeKind;
    min: number;
    max: number;
    center: number;
    scale: number;
  };
  /** A *ForSequenceClassification run in the engine worker: a Hub repo id, a URL, or `folder:<name>` once one is picked. */
  localReward: { model: string };
}

export const DEFAULT_JUDGE: JudgeSettings = {
  kind: 'none',
  sourceId: '',
  rubric: DEFAULT_RUBRIC,
  maxTokens: DEFAULT_JUDGE_MAX_TOKENS,
  timeoutSeconds: DEFAULT_REQUEST_TIMEOUT_S,
  concurrency: 4,
  // Rewards mapped to [0, 1] by a sigmoid fitted to the run (docs/DATA.md): no fixed mapping suits every reward model.
  reward: { baseURL: 'http://127.0.0.1:8000', apiKey: '', model: '', path: '/pooling', scorePath: 'data.0.data.0', normalize: 'run', min: 0, max: 1, center: 0, scale: 1 },
  localReward: { model: '' },
};

/** The pipeline's JudgeSpec for the settings, or undefined (no judge, or it is incomplete). */
export function buildJudgeSpec(j: JudgeSettings, entries: readonly SourceEntry[]): JudgeSpec | undefined {
  if (j.kind === 'judge') {
    const e = entries.find((x) => x.id === j.sourceId);
    if (!e || !e.model) return undefined;
    // The judge reads, it does not sample: temperature 0, one answer, its own token budget and timeout.
    const base = toPipelineSource(e);
    const source: Source = { ...base, temperature: 0, n: 1, max_tokens: Math.max(1, j.maxTokens), retry: { ...base.retry, timeoutMs: Math.max(1, j.timeoutSeconds) * 1000 } };
    return {
      type: 'judge',
      judge: { source, ...(j.rubric.trim() && j.rubric !== DEFAULT_RUBRIC ? { rubric: j.rubric } : {}) },
      concurrency: Math.max(1, j.concurrency),
    };
  }
  if (j.kind === 'reward') {
    const r = j.reward;
    if (!r.baseURL || !r.model || !r.scorePath) return undefined;
    const normalize: RewardNormalization =
      r.normalize === 'minmax'
        ? { kind: 'minmax', min: r.min, max: r.max }
        : r.normalize === 'sigmoid'
          ? { kind: 'sigmoid', center: r.center, scale: r.scale }
          : { kind: r.normalize };
    return {
      type: 'reward',
      reward: {
        baseURL: r.baseURL,
        apiKey: r.apiKey,
        model: r.model,
        path: r.path || '/pooling',
        scorePath: r.scorePath,
        normalize,
        retry: { timeoutMs: Math.max(1, j.timeoutSeconds) * 1000 },
      },
      concurrency: Math.max(1, j.concurrency),
    };
  }
  if (j.kind === 'local-reward') {
    if (!j.localReward.model.trim()) return undefined;
    // Batched in the worker; its concurrency is the pipeline's default (two batches in flight).
    return { type: 'local-reward', localReward: { model: j.localReward.model.trim(), normalize: { kind: 'run' } } };
  }
  return undefined;
}

/** What "Test judge" sends: one question and a correct, plain answer (a good judge scores it high). */
export const JUDGE_TEST_SAMPLE: JudgeInput = {
  messages: [{ role: 'user', content: 'What is the boiling point of water at sea level, in degrees Celsius?' }],
  response: 'Water boils at 100 °C at sea level, under standard atmospheric pressure (1 atm).',
};

/** A "Test judge" result: the raw verdict (or reward) and what was read from it. */
export type JudgeTestState =
  | { state: 'testing' }
  | {
      state: 'done';
      method: 'judge' | 'reward';
      /** The judge's reply as it came (judge only). */
      verdict: string | null;
      finishReason: string | null;
      /** The score read, in [0, 1] (judge), or null. */
      score: number | null;
      /** The judge's points or the reward model's raw reward, or null when none could be read. */
      raw: number | null;
      /** How the score was read, or why none was. */
      detail: string;
      latencyMs: number;
    }
  | { state: 'error'; message: string };

let scoringJobs = 0;

/**
 * The worker's reward model as the pipeline's runner (rewards computed in the worker, batch by
 * batch). A cancelled call (its signal) is stopped in the worker too, not only abandoned here.
 */
export const workerRewardRunner: RewardModelRunner = {
  async score(conversations, signal) {
    signal?.throwIfAborted();
    const jobId = ++scoringJobs;
    const onAbort = () => void engine().cancelScoring(jobId);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await engine().scoreConversations(
        conversations.map((c) => c.map((m) => ({ role: m.role, content: m.content }))),
        jobId,
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  },
};

export type RewardModelState =
  | { state: 'idle' }
  | { state: 'loading'; stage: string; progress: LoadProgress | null }
  | { state: 'ready'; summary: RewardModelSummary }
  | { state: 'error'; message: string };

// ---------------------------------------------------------------------------------------------
// The store

export type TestState =
  | { state: 'testing' }
  | { state: 'ok'; message: string }
  | { state: 'error'; message: string };

export type ModelList = { state: 'loading' } | { state: 'ok'; models: string[] } | { state: 'error'; message: string };

interface SourcesStore {
  loaded: boolean;
  entries: SourceEntry[];
  judge: JudgeSettings;
  tests: Record<string, TestState>;
  models: Record<string, ModelList>;
  error: string | null;
  load(): Promise<void>;
  add(presetId: string): Promise<string>;
  update(id: string, patch: Partial<Omit<SourceEntry, 'id'>>): void;
  remove(id: string): Promise<void>;
  test(id: string): Promise<void>;
  listModels(id: string): Promise<void>;
  setJudge(patch: Partial<Omit<JudgeSettings, 'reward'>> & { reward?: Partial<JudgeSettings['reward']> }): void;
  /** The local reward model in the worker. */
  rewardModel: RewardModelState;
  /** Loads the judge's local reward model (the spec typed, or a picked folder) into the worker. */
  loadRewardModel(folder?: FileSystemDirectoryHandle): Promise<void>;
  /** Reads back what the worker holds (after a reload it holds nothing). */
  refreshRewardModel(): Promise<void>;
  /** The worker holds the judge's reward model, loading it when it is a Hub repo or URL (for a run). */
  ensureRewardModel(): Promise<void>;
  /** The last "Test judge" (null before one, or after the judge settings changed). */
  judgeTest: JudgeTestState | null;
  /** Sends JUDGE_TEST_SAMPLE to the judge and keeps its raw verdict and the score read (or why none). */
  testJudge(): Promise<void>;
}

const JUDGE_KEY = 'judge';
let loading: Promise<void> | null = null;

const newId = () => (crypto.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`).slice(0, 13);

async function probeReachable(baseURL: string): Promise<boolean> {
  try {
    // An opaque answer proves the server is up; the browser hides it, but not its existence.
    await fetch(`${baseURL.replace(/\/+$/, '')}/models`, { mode: 'no-cors', signal: AbortSignal.timeout(5000) });
    return true;
  } catch {
    return false;
  }
}

export const useSourcesStore = create<SourcesStore>((set, get) => {
  const persist = (e: SourceEntry) => {
    studioDb()
      .sources.put(e)
      .catch((err: unknown) => set({ error: `Could not save the source: ${err instanceof Error ? err.message : String(err)}` }));
  };
  return {
    loaded: false,
    entries: [],
    judge: DEFAULT_JUDGE,
    tests: {},
    models: {},
    error: null,
    rewardModel: { state: 'idle' },
    judgeTest: null,

    load() {
      loading ??= (async () => {
        try {
          const db = studioDb();
          const entries = await db.sources.orderBy('createdAt').toArray();
          const judgeRow = await db.settings.get(JUDGE_KEY);
          const stored = (judgeRow?.value ?? {}) as Partial<JudgeSettings>;
          const judge: JudgeSettings = {
            ...DEFAULT_JUDGE,
            ...stored,
            reward: { ...DEFAULT_JUDGE.reward, ...stored.reward },
            localReward: { ...DEFAULT_JUDGE.localReward, ...stored.localReward },
          };
          // A stored copy of an earlier default rubric is the default, not an edit: use today's.
          if (PREVIOUS_DEFAULT_RUBRICS.includes(judge.rubric)) judge.rubric = DEFAULT_RUBRIC;
          set({ entries, judge, loaded: true });
        } catch (err) {
          loading = null;
          set({ loaded: true, error: `Could not read the saved sources: ${err instanceof Error ? err.message : String(err)}` });
        }
      })();
      return loading;
    },

    async add(presetId) {
      await get().load();
      const preset = endpointPreset(presetId);
      const entry = newSourceEntry(preset, newId(), get().entries.map((e) => e.name));
      set((s) => ({ entries: [...s.entries, entry] }));
      await studioDb().sources.put(entry);
      return entry.id;
    },

    update(id, patch) {
      const cur = get().entries.find((e) => e.id === id);
      if (!cur) return;
      const next = { ...cur, ...patch };
      set((s) => {
        const tests = { ...s.tests };
        delete tests[id]; // a changed source needs a new test
        return { entries: s.entries.map((e) => (e.id === id ? next : e)), tests };
      });
      persist(next);
    },

    async remove(id) {
      set((s) => ({ entries: s.entries.filter((e) => e.id !== id) }));
      await studioDb().sources.delete(id);
      if (get().judge.sourceId === id) get().setJudge({ sourceId: '' });
    },

    async test(id) {
      const e = get().entries.find((x) => x.id === id);
      if (!e) return;
      const bad = baseUrlProblem(e.baseURL);
      if (bad) return set((s) => ({ tests: { ...s.tests, [id]: { state: 'error', message: `Not sent: ${bad}.` } } }));
      set((s) => ({ tests: { ...s.tests, [id]: { state: 'testing' } } }));
      let result: TestState;
      try {
        const src = toPipelineSource(e);
        const report = await testSourceConnection(src, { alwaysChat: true, timeoutMs: 15_000 });
        if (report.ok) {
          const listed = report.models ? ` · ${report.models.length} model(s) listed${report.modelListed ? '' : ', this one not among them'}` : '';
          result = { state: 'ok', message: `Connected: ${e.model} answered in ${report.latencyMs} ms${listed}.` };
          if (report.models) set((s) => ({ models: { ...s.models, [id]: { state: 'ok', models: report.models! } } }));
        } else {
          const err = report.error ?? 'failed';
          const reachable = /connection failed|failed to fetch/i.test(err) ? await probeReachable(e.baseURL) : null;
          result = { state: 'error', message: redact(explainConnectionError(err, e.baseURL, reachable), [e.apiKey]) };
        }
      } catch (err) {
        result = { state: 'error', message: classifyError(err, [e.apiKey]).message };
      }
      // Only if the source did not change meanwhile (update() clears the test).
      if (get().tests[id]?.state === 'testing') set((s) => ({ tests: { ...s.tests, [id]: result } }));
    },

    async listModels(id) {
      const e = get().entries.find((x) => x.id === id);
      if (!e) return;
      const bad = baseUrlProblem(e.baseURL);
      if (bad) return set((s) => ({ models: { ...s.models, [id]: { state: 'error', message: `Not sent: ${bad}.` } } }));
      set((s) => ({ models: { ...s.models, [id]: { state: 'loading' } } }));
      let result: ModelList;
      try {
        const page = await createClient(e, 15_000).models.list({ timeout: 15_000 });
        const data = (page as unknown as { data?: { id?: unknown }[] }).data ?? [];
        result = { state: 'ok', models: data.map((m) => String(m?.id ?? '')).filter(Boolean).sort() };
      } catch (err) {
        const msg = classifyError(err, [e.apiKey]).message;
        const reachable = /connection failed/i.test(msg) ? await probeReachable(e.baseURL) : null;
        result = { state: 'error', message: redact(explainConnectionError(msg, e.baseURL, reachable), [e.apiKey]) };
      }
      set((s) => ({ models: { ...s.models, [id]: result } }));
    },

    setJudge(patch) {
      const cur = get().judge;
      const judge: JudgeSettings = { ...cur, ...patch, reward: { ...cur.reward, ...patch.reward }, localReward: { ...cur.localReward, ...patch.localReward } };
      set({ judge, judgeTest: null });
      studioDb()
        .settings.put({ key: JUDGE_KEY, value: judge })
        .catch((err: unknown) => set({ error: `Could not save the judge: ${err instanceof Error ? err.message : String(err)}` }));
    },

    async loadRewardModel(folder) {
      const spec = get().judge.localReward.model.trim();
      const choice: RewardModelChoice | null = folder ? { kind: 'directory', handle: folder } : spec && !spec.startsWith('folder:') ? { kind: 'remote', spec } : null;
      if (!choice) {
        set({ rewardModel: { state: 'error', message: spec ? 'Pick the folder again: a folder chosen in an earlier visit cannot be reopened.' : 'Give a Hub repo id or URL, or pick a folder.' } });
        return;
      }
      set({ rewardModel: { state: 'loading', stage: 'Starting the engine…', progress: null } });
      try {
        const summary = await engine().loadRewardModel(
          choice,
          callback((e: { stage: string; progress: LoadProgress | null }) => {
            if (get().rewardModel.state === 'loading') set({ rewardModel: { state: 'loading', stage: e.stage, progress: e.progress } });
          }),
        );
        set({ rewardModel: { state: 'ready', summary } });
        if (summary.key !== spec) get().setJudge({ localReward: { model: summary.key } });
      } catch (err) {
        set({ rewardModel: { state: 'error', message: errorMessage(err) } });
      }
    },

    async refreshRewardModel() {
      if (get().rewardModel.state === 'loading') return;
      const summary = await engine().rewardModel();
      set({ rewardModel: summary ? { state: 'ready', summary } : { state: 'idle' } });
    },

    async testJudge() {
      await get().load();
      const settings = get().judge;
      const spec = buildJudgeSpec(settings, get().entries);
      if (!spec) {
        const what =
          settings.kind === 'none'
            ? 'Choose a judge first.'
            : settings.kind === 'judge'
              ? 'Choose the judge source (one with a model) first.'
              : settings.kind === 'reward'
                ? 'Give the reward endpoint its base URL, model and score path first.'
                : 'Give the reward model (a Hub repo id or URL) first.';
        set({ judgeTest: { state: 'error', message: what } });
        return;
      }
      const judgeUrl = spec.type === 'judge' ? spec.judge.source.baseURL : spec.type === 'reward' ? spec.reward.baseURL : null;
      const badUrl = judgeUrl === null ? null : baseUrlProblem(judgeUrl);
      if (badUrl) return set({ judgeTest: { state: 'error', message: `Not sent: ${spec.type === 'judge' ? 'the judge source’s' : 'the reward endpoint’s'} ${badUrl.replace(/^the /, '')}.` } });
      set({ judgeTest: { state: 'testing' } });
      const t0 = performance.now();
      let result: JudgeTestState;
      try {
        if (spec.type === 'local-reward') await get().ensureRewardModel();
        const client = judgeClient(spec);
        // One attempt: the test should say at once what a run would meet.
        const r = await scoreWith(spec, JUDGE_TEST_SAMPLE, {
          ...(client ? { client } : {}),
          policy: { maxAttempts: 1 },
          ...(spec.type === 'local-reward' ? { rewardModel: new RewardBatcher(workerRewardRunner, 1) } : {}),
        });
        // A run-fitted reward's [0, 1] score needs the whole run's rewards: one sample has only its raw reward.
        const fitted = rewardNormalizationOf(spec)?.kind === 'run';
        result = {
          state: 'done',
          method: r.method,
          verdict: r.text ?? null,
          finishReason: r.finishReason ?? null,
          score: fitted ? null : r.score,
          raw: r.raw,
          detail: fitted ? 'its raw reward; a run maps rewards to [0, 1] by a sigmoid fitted to all of the run’s rewards' : r.detail,
          latencyMs: Math.round(performance.now() - t0),
        };
      } catch (err) {
        const where = spec.type === 'judge' ? spec.judge.source : spec.type === 'reward' ? { baseURL: spec.reward.baseURL, apiKey: spec.reward.apiKey } : null;
        const msg = where ? classifyError(err, [where.apiKey]).message : errorMessage(err);
        const reachable = where && /connection failed|failed to fetch/i.test(msg) ? await probeReachable(where.baseURL) : null;
        result = { state: 'error', message: where ? redact(explainConnectionError(msg, where.baseURL, reachable), [where.apiKey]) : msg };
      }
      // Only if the settings did not change meanwhile (setJudge clears the test).
      if (get().judgeTest?.state === 'testing') set({ judgeTest: result });
    },

    async ensureRewardModel() {
      const want = get().judge.localReward.model.trim();
      const held = await engine().rewardModel();
      if (held && held.key === want) return set({ rewardModel: { state: 'ready', summary: held } });
      await get().loadRewardModel();
      const now = get().rewardModel;
      if (now.state !== 'ready') throw new Error(now.state === 'error' ? `The reward model could not be loaded: ${now.message}` : 'The reward model is not loaded.');
    },
  };
});

/** The enabled, complete sources as the pipeline takes them. */
export function pipelineSources(entries: readonly SourceEntry[]): Source[] {
  return entries.filter((e) => e.enabled && sourceProblem(e) === '').map(toPipelineSource);
}
