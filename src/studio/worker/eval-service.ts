// Evaluation in the worker: the session's model and its adapters measured on held-out items by
// src/eval/run.ts's runEvaluation (the one place an evaluation is assembled, as `fuse-studio eval`
// does), with the page as its console.
//
// An evaluation has an id. Its record (what was asked, the eval set's text, status, progress,
// report; eval-runs.ts) persists in IndexedDB as it goes, and every finished item result goes to
// DexieEvalStore(evalId) the moment it exists. A tab closed mid-run leaves a record still marked
// running: the page shows it interrupted, and resumeEvaluation runs the same items again over the
// same store, so nothing finished is redone. The judge (with its API key) comes from the page at
// each start and resume; only its description is stored.

import type { JudgeSpec, RewardModelRunner } from '../../data/score';
import { BrowserSandbox } from '../../data/sandbox-browser';
import { EvalItemsError, flagTrainingDuplicates, parseEvalItems, trainingPrompts, type EvalItem, type EvalItemSet, type PromptText } from '../../eval/items';
import { runEvaluation, type EvalModel, type EvalProgress as RunProgress } from '../../eval/run';
import { DexieEvalStore } from '../../eval/store-dexie';
import { evalModelLabel, itemViews, selectTierLines, type EvalItemView } from '../evalView';
import { listAdapters } from './adapter-store';
import { adapterOnGpu, afterGenerations } from './chat-service';
import { evalRuns, summaryOf, type EvalRunRow, type EvalSettings, type EvalSummary } from './eval-runs';
import { rewardService } from './reward-service';
import { message, requireSession } from './session';
import { trainRuns } from './train-runs';
import { parseDataset } from '../trainConfig';

/** The pairwise judge for a run: the Sources page's judge (its key included: never stored). */
export interface EvalJudgeChoice {
  spec: JudgeSpec;
  /** The pairwise prompt; null: the default. */
  prompt: string | null;
  /** What the report and the record say of it (no key). */
  label: string;
}

export interface EvalStartRequest {
  evalId: string;
  settings: EvalSettings;
  /** EVAL.jsonl text: the held-out split or an uploaded file. */
  dataText: string;
  /** The multiple-choice set (null: none). */
  choicesText: string | null;
  trainingPrompts: PromptText[];
  judge: EvalJudgeChoice | null;
}

export type EvalEvent = { type: 'run'; run: EvalSummary };
type OnEvent = (e: EvalEvent) => void;

let active: { evalId: string; controller: AbortController } | null = null;
let sandbox: BrowserSandbox | null = null;

const PHASE_WORDS: Record<RunProgress['phase'], string> = {
  likelihood: 'Scoring the held-out rows (log-likelihood)',
  answers: 'Answering the held-out prompts',
  judge: 'Judging pairs of answers',
  report: 'Writing the report',
};

function phaseText(p: RunProgress): string {
  const who = p.model === undefined ? '' : p.model.includes(' vs ') ? `: ${p.model.split(' vs ').map(evalModelLabel).join(' vs ')}` : `: ${evalModelLabel(p.model)}`;
  return `${PHASE_WORDS[p.phase]}${who}`;
}

/** The items the record asks for, parsed (bad lines named, before anything runs). */
async function itemsOf(row: Pick<EvalRunRow, 'dataText' | 'choicesText' | 'settings'>): Promise<EvalItemSet> {
  const text = selectTierLines(row.dataText, row.settings.tiers) + (row.choicesText && row.settings.tiers.choices ? `\n${row.choicesText}` : '');
  const label = row.choicesText && row.settings.tiers.choices ? `${row.settings.dataLabel} + ${row.settings.choicesLabel ?? 'multiple choice'}` : row.settings.dataLabel;
  try {
    const set = await parseEvalItems(text, label);
    if (row.settings.tiers.checkable) return set;
    // Judged only: no gold or tests checked (the set's hash stays that of its rows).
    const unchecked = (it: EvalItem): EvalItem => {
      if (it.kind !== 'prompt') return it;
      const { gold: _g, tests: _t, ...prompt } = it.prompt;
      return { ...it, prompt };
    };
    return { ...set, items: set.items.map(unchecked) };
  } catch (e) {
    if (e instanceof EvalItemsError && e.errors.every((x) => x.line === 0))
      throw new Error(`Nothing to evaluate: the tiers chosen keep no rows of ${label} (${e.errors[0]!.message}).`, { cause: e });
    throw e;
  }
}

/** The prompts of every training run of the model (what its adapters were trained on), with `extra` (the Data page's sets). */
async function trainedPrompts(modelKey: string, extra: readonly PromptText[]): Promise<PromptText[]> {
  const out = new Map<string, PromptText>();
  const add = (p: PromptText) => out.set(JSON.stringify([p.system ?? '', p.text]), p);
  extra.forEach(add);
  for (const run of (await trainRuns.list()).filter((r) => r.modelKey === modelKey)) {
    const row = await trainRuns.get(run.runId);
    if (row) trainingPrompts(parseDataset(row.datasetText, row.stage).records).forEach(add);
  }
  return [...out.values()];
}

/** The worker's local reward model as the runner takes it; cancelling stops its scoring. */
let rewardJobs = 0;
const localRewardRunner: RewardModelRunner = {
  async score(conversations, signal) {
    // Job ids of their own (the Data page's count up from 1), so a cancel stops only this call.
    const jobId = -++rewardJobs;
    const stop = () => rewardService.cancelScoring(jobId);
    signal?.addEventListener('abort', stop, { once: true });
    try {
      return await rewardService.scoreConversations(
        conversations.map((c) => [...c]),
        jobId,
      );
    } finally {
      signal?.removeEventListener('abort', stop);
    }
  },
};

/** Runs (or resumes) the evaluation of `row`, persisting as it goes. */
async function launch(row: EvalRunRow, judge: EvalJudgeChoice | null, onEvent: OnEvent): Promise<EvalSummary> {
  if (active) throw new Error('An evaluation is already running: cancel it first.');
  const controller = new AbortController();
  active = { evalId: row.evalId, controller };
  const emit = (e: EvalEvent) => {
    try {
      void Promise.resolve(onEvent(e) as unknown).catch(() => {});
    } catch {
      // the page went away; the evaluation goes on and persists
    }
  };
  let writes: Promise<void> = Promise.resolve();
  const persist = (changes: Partial<EvalRunRow>) => {
    Object.assign(row, changes, { updatedAt: new Date().toISOString() });
    const snapshot = { ...row };
    writes = writes.then(() => evalRuns.put(snapshot)).catch((e: unknown) => console.error('fuse-studio: could not persist the evaluation', e));
    emit({ type: 'run', run: summaryOf(snapshot) });
  };
  try {
    const s = requireSession();
    if (s.modelKey !== row.modelKey) throw new Error(`This evaluation measures the model "${row.modelKey}"; the loaded model is "${s.modelKey}". Load that model first.`);
    const tok = s.tokenizer;
    if (!tok) throw new Error('This model has no tokenizer.json, so it cannot read the eval prompts.');
    if (row.settings.tiers.judge && !judge) throw new Error('The judge tier needs a judge: set one on the Sources page.');
    const items = await itemsOf(row);
    if (row.itemsHash !== null && row.itemsHash !== items.hash) throw new Error('The stored eval set no longer hashes the same: start a new evaluation.');
    const stored = await listAdapters(s.modelKey);
    const models: EvalModel[] = [];
    for (const name of row.settings.models) {
      if (name === 'base') {
        models.push({ name, lora: null, id: '' });
        continue;
      }
      const info = stored.find((a) => a.name === name);
      if (!info) throw new Error(`The adapter "${name}" is no longer stored for this model: start a new evaluation without it.`);
      models.push({ name, lora: await adapterOnGpu(s, name), id: info.id });
    }
    const flagged = flagTrainingDuplicates(items.items, row.trainingPrompts);
    persist({ status: 'running', error: null, itemsHash: items.hash });
    const needsSandbox = items.items.some((it) => it.kind === 'prompt' && it.prompt.domain === 'code' && it.prompt.tests);
    if (needsSandbox) sandbox ??= new BrowserSandbox();
    let lastWrite = 0;
    // The GPU is shared: the evaluation runs between chat generations, never beside one.
    const result = await afterGenerations(() =>
      runEvaluation({
        model: s.model,
        tokenizer: tok,
        models,
        items,
        decoding: { maxNewTokens: row.settings.maxNewTokens, temperature: 0, seed: row.settings.seed, dateString: row.settings.dateString },
        eosTokenIds: s.loaded.config.eosTokenIds,
        ...(judge && row.settings.tiers.judge ? { judge: judge.spec, ...(judge.prompt !== null ? { judgePrompt: judge.prompt } : {}) } : {}),
        ...(judge?.spec.type === 'local-reward' ? { rewardModel: localRewardRunner } : {}),
        ...(needsSandbox && sandbox ? { sandbox } : {}),
        trainingPrompts: row.trainingPrompts,
        store: new DexieEvalStore(row.evalId),
        signal: controller.signal,
        onProgress: (p) => {
          const progress = { phase: phaseText(p), done: p.done, total: p.total, etaSeconds: p.etaSeconds, reused: p.reused, computed: p.computed };
          // The record on disk at most every second (the items themselves are stored as they finish).
          const now = performance.now();
          if (now - lastWrite > 1000 || p.done === p.total) {
            lastWrite = now;
            persist({ progress });
          } else {
            Object.assign(row, { progress });
            emit({ type: 'run', run: summaryOf({ ...row }) });
          }
        },
      }),
    );
    const warnings = [...result.warnings];
    if (flagged.length && !warnings.some((w) => /repeat training prompts/.test(w))) warnings.push(`${flagged.length} eval prompt(s) repeat training prompts.`);
    if (result.cancelled) persist({ status: 'cancelled', warnings });
    else persist({ status: 'completed', report: result.report, warnings, progress: row.progress && { ...row.progress, reused: result.reused, computed: result.computed } });
  } catch (e) {
    persist({ status: 'error', error: message(e) });
  } finally {
    await writes;
    active = null;
  }
  return summaryOf(row);
}

export const evalService = {
  /** Starts a new evaluation; resolves when it ends (completed, cancelled or failed), with its record. */
  async startEvaluation(req: EvalStartRequest, onEvent: OnEvent): Promise<EvalSummary> {
    const s = requireSession();
    if (active) throw new Error('An evaluation is already running: cancel it first.');
    const now = new Date().toISOString();
    const row: EvalRunRow = {
      evalId: req.evalId,
      modelKey: s.modelKey,
      settings: req.settings,
      status: 'running',
      itemsHash: null,
      progress: null,
      error: null,
      report: null,
      warnings: [],
      createdAt: now,
      updatedAt: now,
      dataText: req.dataText,
      choicesText: req.choicesText,
      trainingPrompts: await trainedPrompts(s.modelKey, req.trainingPrompts),
    };
    // Bad rows are refused before anything is stored.
    const items = await itemsOf(row);
    row.itemsHash = items.hash;
    await evalRuns.put(row);
    return launch(row, req.judge, onEvent);
  },

  /** Continues a stopped or interrupted evaluation over its stored results. */
  async resumeEvaluation(evalId: string, judge: EvalJudgeChoice | null, onEvent: OnEvent): Promise<EvalSummary> {
    const row = await evalRuns.get(evalId);
    if (!row) throw new Error('This evaluation is no longer stored.');
    if (row.status === 'completed') return summaryOf(row);
    return launch(row, judge, onEvent);
  },

  cancelEvaluation(): void {
    active?.controller.abort();
  },

  /** The evaluation this worker runs now, or null. */
  activeEvaluation(): string | null {
    return active?.evalId ?? null;
  },

  /** Every stored evaluation (all models), newest first. */
  listEvaluations(): Promise<EvalSummary[]> {
    return evalRuns.list();
  },

  /** The evaluation's prompt rows with each model's answer and each pair's verdict, as stored now. */
  async evaluationItems(evalId: string): Promise<EvalItemView[]> {
    const row = await evalRuns.get(evalId);
    if (!row) return [];
    const items = await itemsOf(row);
    const results = await new DexieEvalStore(evalId).list();
    const dup = new Set(flagTrainingDuplicates(items.items, row.trainingPrompts).map((f) => f.id));
    return itemViews(items.items, results, dup);
  },

  async removeEvaluation(evalId: string): Promise<void> {
    if (active?.evalId === evalId) throw new Error('This evaluation is running: cancel it first.');
    await evalRuns.remove(evalId);
  },
};
