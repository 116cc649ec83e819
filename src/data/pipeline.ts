// The FuseChat-3.0 data recipe (shared/FUSION.md §1–2) as one resumable job over a RunStore:
//
//   prompts    split off the held-out eval prompts (seeded), keep the prompt list with the run
//   collect    every source × prompt × n samples (collect.ts): OpenAI-compatible endpoints, and models
//              on this GPU one at a time (local-source.ts, through the host's LocalModelRunner);
//              stored responses are never asked for or generated again
//   score      each response by its domain (below); a response whose stored score was made by
//              the same scorer is never scored again; failed scorings are tried again
//   construct  SFT rows and DPO pairs by the recipe's rules, with the keep/drop report (construct.ts)
//   export     TRL JSONL (sft.jsonl, dpo.jsonl), the FuseChat-3.0 release schema
//              (fusechat_sft.jsonl, fusechat_dpo.jsonl), eval files, report.json
//
// Scoring by domain:
//   instruction  the judge (chat model + rubric) or reward model (HTTP, or local: run by the engine
//                in this process, batched): score in [0, 1], the raw number kept beside it
//   math         the verifier against the gold answer (correct), plus the judge's score for ranking
//                (given the gold answer as the reference) when a judge is configured
//   code         the prompt's tests in the sandbox (passed), plus the judge's score when configured
//   other        none (SFT only: the first valid response)
// Reward models: after scoring, the run's mapping to [0, 1] is applied again to every stored raw
// reward, and a score that changes is rewritten with it (the mapping, and for {kind: 'run'}, the
// default, the statistics it was fitted to over every reward of the run, stored in each record);
// so a new mapping asks the reward model nothing. With the run-fitted mapping the DPO gap windows
// default to DEFAULT_REWARD_GAP, in units of the run's standard deviation of raw rewards
// (construct.ts, docs/DATA.md).
// A rubric judge's gap windows default to DEFAULT_JUDGE_GAP (1 to 3 points of 10). A response the
// judge answered without a readable score keeps the verdict and why (readJudgeVerdict); one whose
// judge request failed keeps the error (`judgeError`): the build names the cause of each drop
// (`verdict_unreadable`, `judge_failed`) and the report counts them (`scoring`), with warnings.
// Without a judge, math and code pairs are ranked by the verdict alone, so the math score-gap
// window is switched off (it cannot be evaluated) unless the settings set one; instruction
// prompts then cannot be scored and are dropped (`unscored`), which `warnings` says.
//
// Cancelling (AbortSignal) stops at once between items; what was stored stays, and running the
// same job again over the same store continues where it stopped. Storage is the store's
// business (store.ts): the Node CLI passes a JSONL run folder, the studio an IndexedDB run.

import { runCollection, type CollectResult, type CollectSource, type SourceProgress } from './collect';
import { isLocalSource, type LocalCollectOptions } from './local-source';
import {
  buildDatasets,
  DEFAULT_JUDGE_GAP,
  DEFAULT_REWARD_GAP,
  dpoRowsToRecords,
  scoredResponses,
  sftRowsToRecords,
  type ConstructResult,
  type ConstructSettings,
  type Override,
} from './construct';
import { DOMAINS, promptMessages, splitEval, type Domain, type Prompt } from './prompts';
import { toJsonl, writeFuseChatDpoJsonl, writeFuseChatSftJsonl, writeTrlDpoJsonl, writeTrlSftJsonl } from './records';
import type { CodeLanguage, Sandbox } from './sandbox';
import {
  DEFAULT_LOCAL_REWARD_BATCH,
  fitRewardNormalization,
  judgeClient,
  judgeConcurrency,
  judgeModel,
  judgeSpecId,
  normalizeReward,
  RewardBatcher,
  rewardNormalizationOf,
  rewardStats,
  sanitizeJudgeSpec,
  scoreMany,
  scoreWith,
  type AppliedNormalization,
  type JudgeSpec,
  type RewardModelRunner,
  type RewardStats,
} from './score';
import { DecayingRate } from './rate';
import { RateLimiter, sanitizeSource, SourceError, type RetryPolicy } from './sources';
import type { RunStore } from './store';
import type { ResponseRecord, ScoreRecord } from './types';
import { detectTestLanguage, verifyCode } from './verify-code';
import { verifyMath } from './verify-math';

// ---------------------------------------------------------------------------------------------
// Options, progress, result

export interface PipelineOptions {
  /** The prompts (prompts.ts imports them); ids must be unique. */
  prompts: readonly Prompt[];
  /** Remote endpoints (sources.ts) and models on this GPU (local-source.ts), in one run. */
  sources: readonly CollectSource[];
  /** How local sources are loaded (the host's runner); required when there are any. */
  local?: LocalCollectOptions;
  /** Judge or reward model; without one, only math/code verdicts and "other" prompts give rows. */
  judge?: JudgeSpec;
  /** The loaded reward model of a 'local-reward' judge (the host loads it: local-reward.ts). */
  rewardModel?: RewardModelRunner;
  /**
   * Called once when the score phase begins and something is to be scored: a host loads its local
   * reward model here, after the local sources have released the GPU (an error stops the run).
   */
  beforeScoring?: () => Promise<void>;
  /** Domains the judge scores (default instruction, math, code; "other" is never scored). */
  judgeDomains?: readonly Domain[];
  /** Runs code prompts' tests; without one, code responses are unjudged (and dropped). */
  sandbox?: Sandbox;
  /** Per-response test time limit (default 5000 ms). */
  codeTimeoutMs?: number;
  /** Language of a code prompt's tests (default: detectTestLanguage of its tests). */
  codeLanguage?: (prompt: Prompt) => CodeLanguage;
  /** Scoring calls in flight at once (default: the judge's concurrency, else 4). */
  scoreConcurrency?: number;
  store: RunStore;
  /**
   * Set construction settings; `seed` defaults to `seed` below. With a reward model whose score is
   * fitted to the run, instructionGap and mathGap default to DEFAULT_REWARD_GAP.
   */
  construct?: Partial<ConstructSettings>;
  overrides?: readonly Override[];
  /** Share of prompts held out for evaluation (default 0): their rows go to the *_eval files. */
  evalFraction?: number;
  /**
   * Split each prompt by its own id hash (splitEval's `stable`): no prompt moves between train
   * and eval when prompts are added or left out between runs (default false: the exact share).
   */
  stableEvalSplit?: boolean;
  /** Seed of the eval split and of the instruction SFT/DPO split (default 0). */
  seed?: number | string;
  signal?: AbortSignal;
  onProgress?: (event: PipelineEvent) => void;
  /** Retry items whose request failed in an earlier run (default true). */
  retryFailed?: boolean;
  /**
   * Ids of sources not asked in this run (a host found them unreachable): their stored responses
   * are scored and built on as usual, but nothing new is requested from them.
   */
  notAsked?: readonly string[];
  /** Overrides every source's retry policy. */
  retryPolicy?: Partial<RetryPolicy>;
}

export type PipelinePhase = 'prompts' | 'collect' | 'score' | 'construct' | 'export';

export interface PromptSummary {
  total: number;
  train: number;
  eval: number;
  byDomain: Record<Domain, number>;
}

export interface ScoreProgress {
  /** Responses that need a score in this run (scored before or not). */
  total: number;
  /** Of those, with a finished score (earlier runs included). */
  done: number;
  /** Of `done`, found already scored when this run began. */
  skipped: number;
  /** Scored in this run. */
  scored: number;
  /** Scorings that did not finish in this run (kept with `error`; tried again on a re-run). */
  failed: number;
  inFlight: number;
  /** The responses being scored now, oldest first: what scoring waits for, and since when. */
  requests: ScoringRequest[];
  /** Judge / reward calls made in this run. */
  judgeCalls: number;
  /** Responses with no scorer (the "other" domain, empty responses): never scored. */
  unscorable: number;
  ratePerMinute: number;
  etaSeconds: number | null;
  elapsedMs: number;
}

/** One response being scored. */
export interface ScoringRequest {
  promptId: string;
  sourceId: string;
  sampleIndex: number;
  /** When its scoring began (ms since the epoch). */
  startedAt: number;
}

export interface ArtifactInfo {
  name: string;
  /** Lines of a JSONL artifact. */
  rows?: number;
  bytes: number;
}

export type PipelineEvent =
  | { phase: 'prompts'; prompts: PromptSummary }
  | { phase: 'collect'; sources: SourceProgress[] }
  | { phase: 'score'; score: ScoreProgress }
  | { phase: 'construct'; counts: Record<string, number>; evalCounts?: Record<string, number> }
  | { phase: 'export'; artifacts: ArtifactInfo[] };

export interface PipelineResult {
  /** True when the signal stopped the job before the export. */
  cancelled: boolean;
  /** The last phase begun (where it stopped when cancelled). */
  phase: PipelinePhase;
  prompts: PromptSummary;
  collect?: CollectResult;
  score?: ScoreProgress;
  /** SFT rows, DPO pairs and the report of the training prompts. */
  construct?: ConstructResult;
  /** The same for the held-out eval prompts (when evalFraction > 0). */
  evalConstruct?: ConstructResult;
  artifacts: ArtifactInfo[];
  warnings: string[];
}

/** Names of the artifacts a run writes (besides the store's own records). */
export const ARTIFACTS = {
  run: 'run.json',
  prompts: 'prompts.jsonl',
  sft: 'sft.jsonl',
  dpo: 'dpo.jsonl',
  fusechatSft: 'fusechat_sft.jsonl',
  fusechatDpo: 'fusechat_dpo.jsonl',
  evalPrompts: 'eval_prompts.jsonl',
  sftEval: 'sft_eval.jsonl',
  dpoEval: 'dpo_eval.jsonl',
  report: 'report.json',
} as const;

/** Verdict texts kept in a ScoreRecord. */
const VERDICT_LIMIT = 4000;

// ---------------------------------------------------------------------------------------------
// Scoring one response

interface ScoreContext {
  judge?: JudgeSpec;
  judgeId?: string;
  judgeDomains: ReadonlySet<Domain>;
  sandbox?: Sandbox;
  codeTimeoutMs: number;
  codeLanguage: (p: Prompt) => CodeLanguage;
  client?: ReturnType<typeof judgeClient>;
  /** Spaces judge calls when the judge has a requestsPerMinute. */
  limiter?: RateLimiter;
  /** Batches a local reward model's requests. */
  rewardModel?: RewardBatcher;
}

/** Whether the judge scores responses to `p`. */
const judged = (p: Prompt, ctx: ScoreContext): boolean => p.domain !== 'other' && ctx.judgeId !== undefined && ctx.judgeDomains.has(p.domain);

/** What scores a response to `p` ('' when nothing does): stored as ScoreRecord.scorer. */
function scorerOf(p: Prompt, ctx: ScoreContext): string {
  const parts: string[] = [];
  if (p.domain === 'math' && p.gold !== undefined) parts.push('math');
  if (p.domain === 'code' && p.tests !== undefined && ctx.sandbox) parts.push(`code:${ctx.codeLanguage(p)}`);
  if (judged(p, ctx)) parts.push(ctx.judgeId!);
  return parts.join('+');
}

const clipText = (s: string, n = VERDICT_LIMIT) => (s.length <= n ? s : `${s.slice(0, n)}…`);

/**
 * Scores one response: the domain's verifier, then the judge. Throws only when cancelled; a
 * judge or sandbox failure is kept in the record's `error`.
 */
async function scoreResponse(r: ResponseRecord, p: Prompt, scorer: string, ctx: ScoreContext, signal?: AbortSignal): Promise<{ rec: ScoreRecord; judgeCalls: number }> {
  const rec: ScoreRecord = {
    key: r.key,
    promptId: r.promptId,
    sourceId: r.sourceId,
    sampleIndex: r.sampleIndex,
    domain: p.domain,
    scorer,
    score: null,
    createdAt: '',
  };
  const details: string[] = [];
  const errors: string[] = [];
  let judgeCalls = 0;

  if (p.domain === 'math' && p.gold !== undefined) {
    const v = verifyMath(r.content, p.gold);
    rec.correct = v.correct;
    rec.math = { extracted: v.extracted, comparison: v.comparison, detail: v.detail };
    details.push(`math: ${v.detail}`);
  }
  if (p.domain === 'code' && p.tests !== undefined && ctx.sandbox) {
    const language = ctx.codeLanguage(p);
    const v = await verifyCode(ctx.sandbox, r.content, { language, tests: p.tests }, { timeoutMs: ctx.codeTimeoutMs });
    rec.code = { status: v.status, language, ...(v.error ? { error: clipText(v.error, 1000) } : {}), durationMs: Math.round(v.durationMs) };
    if (v.status === 'unavailable') errors.push(`code: ${v.error ?? 'the sandbox cannot run ' + language}`);
    else rec.passed = v.passed;
    details.push(`code: ${v.status}`);
  }
  if (ctx.judge && judged(p, ctx)) {
    if (signal?.aborted) throw new SourceError('cancelled', 'aborted', false);
    try {
      judgeCalls++;
      const input = { messages: promptMessages(p), response: r.content, ...(p.domain === 'math' && p.gold !== undefined ? { reference: p.gold } : {}) };
      const s = await scoreWith(ctx.judge, input, {
        ...(ctx.client ? { client: ctx.client } : {}),
        ...(ctx.limiter ? { limiter: ctx.limiter } : {}),
        ...(ctx.rewardModel ? { rewardModel: ctx.rewardModel } : {}),
        ...(signal ? { signal } : {}),
      });
      rec.score = s.score;
      rec.judge = {
        method: s.method,
        model: judgeModel(ctx.judge),
        raw: s.raw,
        detail: s.detail,
        ...(s.text !== undefined ? { verdict: clipText(s.text) } : {}),
        ...(s.normalize ? { normalize: s.normalize } : {}),
      };
      details.push(`${s.method}: ${s.detail}`);
      if (s.score === null) errors.push(`${s.method}: ${s.detail}`);
    } catch (e) {
      if (signal?.aborted || (e instanceof SourceError && e.kind === 'aborted')) throw e;
      const message = e instanceof Error ? e.message : String(e);
      rec.judgeError = clipText(message, 1000);
      errors.push(`${ctx.judge.type}: ${message}`);
    }
  }
  rec.detail = details.join('; ');
  if (errors.length > 0) rec.error = errors.join('; ');
  rec.createdAt = new Date().toISOString();
  return { rec, judgeCalls };
}

// ---------------------------------------------------------------------------------------------
// Why responses have no score

/** What the judge or reward model made of the run's responses (report.json `scoring`). */
export interface ScoringSummary {
  /** Responses it was to score. */
  judged: number;
  /** With a score. */
  scored: number;
  /** Answered, but no score could be read from the verdict: per reason, with one verdict. */
  unreadable: { why: string; count: number; example: string }[];
  /** Not answered: the request failed after its retries (per error message). */
  failed: { error: string; count: number }[];
}

const EXAMPLE_LIMIT = 200;

export function summarizeScoring(records: readonly ScoreRecord[]): ScoringSummary {
  const out: ScoringSummary = { judged: records.length, scored: 0, unreadable: [], failed: [] };
  for (const s of records) {
    if (s.judgeError !== undefined) {
      const e = out.failed.find((f) => f.error === s.judgeError);
      if (e) e.count++;
      else out.failed.push({ error: s.judgeError, count: 1 });
    } else if (s.judge?.method === 'judge' && s.judge.raw === null) {
      const u = out.unreadable.find((f) => f.why === s.judge!.detail);
      if (u) u.count++;
      else out.unreadable.push({ why: s.judge.detail, count: 1, example: clipText(s.judge.verdict ?? '', EXAMPLE_LIMIT) });
    } else if (s.judge && s.judge.raw !== null) out.scored++;
  }
  out.unreadable.sort((a, b) => b.count - a.count);
  out.failed.sort((a, b) => b.count - a.count);
  return out;
}

/** The warnings a summary gives: the real cause of responses left without a score. */
export function scoringWarnings(s: ScoringSummary, who = 'the judge'): string[] {
  const out: string[] = [];
  const total = (xs: readonly { count: number }[]) => xs.reduce((a, x) => a + x.count, 0);
  const more = (n: number) => (n > 1 ? `; ${n - 1} other reason(s) in the report` : '');
  const unreadable = total(s.unreadable);
  if (unreadable > 0) {
    const top = s.unreadable[0]!;
    out.push(
      `${who} answered ${unreadable} of ${s.judged} response(s) without a readable score: ${top.why} (${top.count}×, e.g. ${JSON.stringify(clipText(top.example, 80))}${more(s.unreadable.length)}); those responses give no SFT row or DPO pair`,
    );
  }
  const failed = total(s.failed);
  if (failed > 0)
    out.push(`${who}'s request failed for ${failed} of ${s.judged} response(s): ${s.failed[0]!.error}${more(s.failed.length)}; a re-run asks again`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The job

function countByDomain(prompts: readonly Prompt[]): Record<Domain, number> {
  const out = Object.fromEntries(DOMAINS.map((d) => [d, 0])) as Record<Domain, number>;
  for (const p of prompts) out[p.domain]++;
  return out;
}

function promptRow(p: Prompt): Record<string, unknown> {
  const row: Record<string, unknown> = { id: p.id, domain: p.domain, prompt: p.text };
  if (p.system !== undefined) row.system = p.system;
  if (p.gold !== undefined) row.gold = p.gold;
  if (p.tests !== undefined) row.tests = p.tests;
  return row;
}

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;

/** Runs (or resumes) the whole recipe over `opts.store`. */
export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { store, signal } = opts;
  const emit = (e: PipelineEvent) => opts.onProgress?.(e);
  const warnings: string[] = [];
  const artifacts: ArtifactInfo[] = [];
  const seed = opts.seed ?? 0;

  const write = async (name: string, text: string, rows?: number) => {
    await store.writeArtifact(name, text);
    const info: ArtifactInfo = { name, bytes: utf8Bytes(text), ...(rows !== undefined ? { rows } : {}) };
    const k = artifacts.findIndex((a) => a.name === name);
    if (k >= 0) artifacts[k] = info;
    else artifacts.push(info);
  };

  // --- prompts
  const ids = new Set<string>();
  for (const p of opts.prompts) {
    if (ids.has(p.id)) throw new Error(`duplicate prompt id "${p.id}"`);
    ids.add(p.id);
  }
  if (opts.prompts.length === 0) throw new Error('no prompts');
  if (opts.sources.length === 0) throw new Error('no sources');
  const firstLocal = opts.sources.find(isLocalSource);
  if (firstLocal && !opts.local) throw new Error(`source "${firstLocal.name}" is a local model, but no local model runner was given to load it`);
  const evalFraction = opts.evalFraction ?? 0;
  if (!(evalFraction >= 0 && evalFraction < 1)) throw new RangeError(`evalFraction must be in [0, 1), got ${evalFraction}`);
  const split = evalFraction > 0 ? splitEval(opts.prompts, { fraction: evalFraction, seed, ...(opts.stableEvalSplit ? { stable: true } : {}) }) : { train: [...opts.prompts], eval: [] as Prompt[] };
  const promptSummary: PromptSummary = {
    total: opts.prompts.length,
    train: split.train.length,
    eval: split.eval.length,
    byDomain: countByDomain(opts.prompts),
  };
  const result: PipelineResult = { cancelled: false, phase: 'prompts', prompts: promptSummary, artifacts, warnings };
  const stopped = (phase: PipelinePhase): PipelineResult => Object.assign(result, { cancelled: true, phase });

  const judgeDomains = new Set<Domain>(opts.judgeDomains ?? ['instruction', 'math', 'code']);
  if (opts.judge?.type === 'local-reward' && !opts.rewardModel)
    throw new Error(`the judge is the local reward model ${opts.judge.localReward.model}, but it was not loaded: pass the loaded model as rewardModel`);
  const client = opts.judge ? judgeClient(opts.judge) : undefined;
  const ctx: ScoreContext = {
    ...(opts.judge ? { judge: opts.judge, judgeId: judgeSpecId(opts.judge) } : {}),
    ...(client ? { client } : {}),
    ...(opts.judge?.type === 'local-reward' && opts.rewardModel
      ? { rewardModel: new RewardBatcher(opts.rewardModel, opts.judge.localReward.batchSize ?? DEFAULT_LOCAL_REWARD_BATCH) }
      : {}),
    ...(opts.judge?.type === 'judge' ? { limiter: new RateLimiter(opts.judge.judge.source.requestsPerMinute) } : {}),
    judgeDomains,
    ...(opts.sandbox ? { sandbox: opts.sandbox } : {}),
    codeTimeoutMs: opts.codeTimeoutMs ?? 5000,
    codeLanguage: opts.codeLanguage ?? ((p) => detectTestLanguage(p.tests ?? [])),
  };
  const byDomain = promptSummary.byDomain;
  if (!opts.judge && byDomain.instruction > 0)
    warnings.push(`no judge: the ${byDomain.instruction} instruction prompt(s) cannot be scored and give no SFT row or DPO pair`);
  if (!opts.sandbox && byDomain.code > 0) warnings.push(`no sandbox: the ${byDomain.code} code prompt(s) cannot be tested and give no rows`);
  const noGold = opts.prompts.filter((p) => p.domain === 'math' && p.gold === undefined).length;
  if (noGold > 0) warnings.push(`${noGold} math prompt(s) have no gold answer: their responses are unjudged`);
  const noTests = opts.prompts.filter((p) => p.domain === 'code' && p.tests === undefined).length;
  if (noTests > 0) warnings.push(`${noTests} code prompt(s) have no tests: their responses are unjudged`);

  await write(
    ARTIFACTS.run,
    JSON.stringify(
      {
        sources: opts.sources.map((s) => (isLocalSource(s) ? s : sanitizeSource(s))),
        judge: opts.judge ? sanitizeJudgeSpec(opts.judge) : null,
        judgeDomains: [...judgeDomains],
        evalFraction,
        ...(opts.stableEvalSplit ? { stableEvalSplit: true } : {}),
        seed,
        construct: opts.construct ?? {},
      },
      null,
      2,
    ) + '\n',
  );
  await write(ARTIFACTS.prompts, toJsonl(opts.prompts.map(promptRow)), opts.prompts.length);
  emit({ phase: 'prompts', prompts: promptSummary });
  if (signal?.aborted) return stopped('prompts');

  // --- collect
  result.phase = 'collect';
  const notAsked = new Set(opts.notAsked ?? []);
  const collect = await runCollection({
    sources: notAsked.size ? opts.sources.filter((s) => !notAsked.has(s.id)) : opts.sources,
    prompts: opts.prompts,
    store,
    ...(opts.local ? { local: opts.local } : {}),
    ...(signal ? { signal } : {}),
    onProgress: (sources) => emit({ phase: 'collect', sources }),
    ...(opts.retryFailed !== undefined ? { retryFailed: opts.retryFailed } : {}),
    ...(opts.retryPolicy ? { retryPolicy: opts.retryPolicy } : {}),
  });
  result.collect = collect;
  if (collect.cancelled || signal?.aborted) return stopped('collect');
  if (collect.failed > 0) warnings.push(`${collect.failed} request(s) failed after retries (errors are in the run; a re-run tries them again)`);
  for (const s of collect.skippedSources) warnings.push(`source "${s.name}" was skipped: ${s.reason}`);

  // --- score
  result.phase = 'score';
  const promptById = new Map(opts.prompts.map((p) => [p.id, p]));
  const sourceIds = new Set(opts.sources.map((s) => s.id));
  const inRun = (r: { promptId: string; sourceId: string }) => promptById.has(r.promptId) && sourceIds.has(r.sourceId);
  const responses = (await store.list()).filter(inRun);
  const stored = new Map((await store.listScores()).map((s) => [s.key, s]));
  const todo: { r: ResponseRecord; p: Prompt; scorer: string }[] = [];
  const progress: ScoreProgress = {
    total: 0,
    done: 0,
    skipped: 0,
    scored: 0,
    failed: 0,
    inFlight: 0,
    requests: [],
    judgeCalls: 0,
    unscorable: 0,
    ratePerMinute: 0,
    etaSeconds: null,
    elapsedMs: 0,
  };
  for (const r of responses) {
    const p = promptById.get(r.promptId)!;
    const scorer = r.content.trim() === '' ? '' : scorerOf(p, ctx);
    if (scorer === '') {
      progress.unscorable++;
      continue;
    }
    progress.total++;
    const old = stored.get(r.key);
    if (old && old.scorer === scorer && !old.error) {
      progress.done++;
      progress.skipped++;
    } else todo.push({ r, p, scorer });
  }
  if (todo.length > 0) await opts.beforeScoring?.();
  const t0 = Date.now();
  // The recent pace (rate.ts): an ETA that grows while a response takes long, not the average since the start.
  const rate = new DecayingRate(t0);
  const emitScore = () => {
    const now = Date.now();
    const settled = progress.scored + progress.failed;
    progress.elapsedMs = now - t0;
    progress.ratePerMinute = rate.perMinute(now);
    progress.etaSeconds = rate.etaSeconds(todo.length - settled, now);
    emit({ phase: 'score', score: { ...progress, requests: progress.requests.map((r) => ({ ...r })) } });
  };
  emitScore();
  // A heartbeat while responses are being scored: their ages grow and the ETA follows.
  const heartbeat = setInterval(() => progress.inFlight > 0 && emitScore(), 1000);
  let storeFailure: unknown = null;
  const stopScoring = new AbortController();
  const onAbort = () => stopScoring.abort();
  if (signal?.aborted) stopScoring.abort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const concurrency = opts.scoreConcurrency ?? (opts.judge ? judgeConcurrency(opts.judge) : 4);
  await scoreMany(
    todo,
    async (item, sig) => {
      progress.inFlight++;
      const request: ScoringRequest = { promptId: item.r.promptId, sourceId: item.r.sourceId, sampleIndex: item.r.sampleIndex, startedAt: Date.now() };
      progress.requests.push(request);
      emitScore();
      try {
        const { rec, judgeCalls } = await scoreResponse(item.r, item.p, item.scorer, ctx, sig);
        progress.judgeCalls += judgeCalls;
        return rec;
      } finally {
        progress.inFlight--;
        progress.requests.splice(progress.requests.indexOf(request), 1);
      }
    },
    {
      concurrency,
      signal: stopScoring.signal,
      onResult: async (_item, rec) => {
        try {
          await store.putScore(rec);
        } catch (e) {
          storeFailure ??= e;
          stopScoring.abort();
          return;
        }
        if (rec.error) progress.failed++;
        else {
          progress.scored++;
          progress.done++;
        }
        rate.add();
        emitScore();
      },
      onError: (_item, e) => {
        // scoreResponse throws only when cancelled, or on a bug (e.g. in the sandbox host).
        storeFailure ??= e;
        stopScoring.abort();
      },
    },
  ).finally(() => clearInterval(heartbeat));
  signal?.removeEventListener('abort', onAbort);
  if (storeFailure) throw storeFailure;
  emitScore();
  result.score = { ...progress };
  if (signal?.aborted) return stopped('score');

  // --- construct
  result.phase = 'construct';
  // Only scores made by this run's scorers count (a stale one, e.g. of a judge no longer
  // configured for the domain, would rank responses by a scale the run does not use).
  const scorerByKey = new Map(responses.map((r) => [r.key, r.content.trim() === '' ? '' : scorerOf(promptById.get(r.promptId)!, ctx)]));
  let current = (await store.listScores()).filter((s) => s.scorer !== '' && scorerByKey.get(s.key) === s.scorer);
  // Reward models: the run's raw rewards, and the [0, 1] scores mapped again with the mapping
  // fitted to them (rewritten only where they change).
  const normalization = opts.judge ? rewardNormalizationOf(opts.judge) : null;
  let rewards: { stats: RewardStats | null; normalize: AppliedNormalization } | null = null;
  if (normalization) {
    const rated = current.filter((s) => !s.error && s.judge?.method === 'reward' && typeof s.judge.raw === 'number' && Number.isFinite(s.judge.raw));
    const stats = rewardStats(rated.map((s) => s.judge!.raw!));
    const normalize = fitRewardNormalization(normalization, stats);
    rewards = { stats, normalize };
    const byKey = new Map(current.map((s) => [s.key, s]));
    for (const s of rated) {
      const score = normalizeReward(s.judge!.raw!, normalize);
      if (s.score === score && JSON.stringify(s.judge!.normalize) === JSON.stringify(normalize)) continue;
      const updated = { ...s, score, judge: { ...s.judge!, normalize } };
      await store.putScore(updated);
      byKey.set(s.key, updated);
    }
    current = [...byKey.values()];
  }
  const scoring = ctx.judgeId ? summarizeScoring(current.filter((s) => s.scorer.split('+').includes(ctx.judgeId!))) : null;
  if (scoring) warnings.push(...scoringWarnings(scoring, opts.judge?.type === 'judge' ? 'the judge' : 'the reward model'));
  const otherFailures = current.filter((s) => s.error && s.judgeError === undefined && !(s.judge?.method === 'judge' && s.judge.raw === null)).length;
  if (otherFailures > 0) warnings.push(`${otherFailures} response(s) could not be fully scored (kept with their error; a re-run scores them again)`);
  const scores = new Map(current.map((s) => [s.key, s]));
  const errors = (await store.listErrors()).filter(inRun);
  const judgeCoversMath = !!opts.judge && judgeDomains.has('math');
  // A run-fitted score has no fixed units: the gap windows are in the run's reward spread.
  const fitted = normalization?.kind === 'run';
  const settings: Partial<ConstructSettings> = {
    seed,
    sourceOrder: opts.sources.map((s) => s.id),
    ...(fitted ? { instructionGap: { ...DEFAULT_REWARD_GAP }, mathGap: { ...DEFAULT_REWARD_GAP } } : {}),
    ...(opts.judge?.type === 'judge' ? { instructionGap: { ...DEFAULT_JUDGE_GAP }, mathGap: { ...DEFAULT_JUDGE_GAP } } : {}),
    ...(judgeCoversMath ? {} : { mathGap: null }),
    ...(rewards?.stats ? { rewardStd: rewards.stats.std } : {}),
    ...opts.construct,
  };
  const input = scoredResponses(responses, errors, scores);
  const build = (prompts: readonly Prompt[]) => buildDatasets({ prompts, responses: input, settings, ...(opts.overrides ? { overrides: opts.overrides } : {}) });
  const train = build(split.train);
  result.construct = train;
  const evalSet = split.eval.length > 0 ? build(split.eval) : undefined;
  if (evalSet) result.evalConstruct = evalSet;
  warnings.push(...train.report.warnings, ...(evalSet?.report.warnings.map((w) => `eval ${w}`) ?? []));
  emit({ phase: 'construct', counts: train.report.counts, ...(evalSet ? { evalCounts: evalSet.report.counts } : {}) });
  if (signal?.aborted) return stopped('construct');

  // --- export
  result.phase = 'export';
  const sftRecords = sftRowsToRecords(train.sft);
  const dpoRecords = dpoRowsToRecords(train.dpo);
  await write(ARTIFACTS.sft, writeTrlSftJsonl(sftRecords), sftRecords.length);
  await write(ARTIFACTS.dpo, writeTrlDpoJsonl(dpoRecords), dpoRecords.length);
  await write(ARTIFACTS.fusechatSft, writeFuseChatSftJsonl(sftRecords), sftRecords.length);
  await write(ARTIFACTS.fusechatDpo, writeFuseChatDpoJsonl(dpoRecords), dpoRecords.length);
  if (evalSet) {
    const es = sftRowsToRecords(evalSet.sft);
    const ed = dpoRowsToRecords(evalSet.dpo);
    await write(ARTIFACTS.evalPrompts, toJsonl(split.eval.map(promptRow)), split.eval.length);
    await write(ARTIFACTS.sftEval, writeTrlSftJsonl(es), es.length);
    await write(ARTIFACTS.dpoEval, writeTrlDpoJsonl(ed), ed.length);
  } else if ((await store.readArtifact(ARTIFACTS.evalPrompts)) !== undefined) {
    // An earlier run held prompts out and this one holds none: empty its eval files, so nobody
    // evaluates on prompts this run's sets now train on.
    for (const name of [ARTIFACTS.evalPrompts, ARTIFACTS.sftEval, ARTIFACTS.dpoEval]) await write(name, '', 0);
  }
  const report = {
    createdAt: new Date().toISOString(),
    prompts: promptSummary,
    collect: {
      collected: collect.collected,
      skipped: collect.skipped,
      failed: collect.failed,
      sources: collect.sources.map(({ sourceId, name, total, done, failed, retries, promptTokens, completionTokens, local }) => ({
        sourceId,
        name,
        total,
        done,
        failed,
        retries,
        promptTokens,
        completionTokens,
        ...(local ? { local } : {}),
      })),
      ...(collect.skippedSources.length ? { skippedSources: collect.skippedSources } : {}),
    },
    score: { ...progress },
    ...(scoring ? { scoring } : {}),
    ...(rewards ? { rewards: { ...rewards, gapWindows: train.report.gapWindows } } : {}),
    counts: train.report.counts,
    byDomain: train.report.byDomain,
    ...(evalSet ? { eval: { counts: evalSet.report.counts, byDomain: evalSet.report.byDomain } } : {}),
    warnings,
    artifacts: [...artifacts],
    construct: train.report,
    ...(evalSet ? { evalConstruct: evalSet.report } : {}),
  };
  await write(ARTIFACTS.report, JSON.stringify(report, null, 2) + '\n');
  emit({ phase: 'export', artifacts: [...artifacts] });
  return result;
}
