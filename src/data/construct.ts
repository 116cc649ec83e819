// SFT and DPO set construction by the FuseChat-3.0 rules (shared/FUSION.md §2), each rule a
// setting whose default is the paper's value.
//
// SFT, one row per prompt, the best response over all sources:
//   instruction  highest score                     (only prompts of the SFT part of the 4:6 split)
//   math         correct, then highest score
//   code         passes its tests, then highest score
//   other        highest score if scored, else the first valid response (SFT only, e.g. Chinese)
// DPO, one pair per prompt, chosen and rejected from the SAME source model:
//   instruction  the source's highest vs its lowest score, kept when the gap is in [0.01, 0.1]
//                (only prompts of the DPO part of the 4:6 split)
//   math         the source's correct & highest vs its incorrect & lowest; the gap filter
//                [0.01, 0.1] applies too (FUSION.md table; `mathGap: null` turns it off)
//   code         the source's passing & highest vs its failing & lowest (no gap filter by default);
//                prompts where every response fails are dropped
// Gap windows are in the scorer's units (GapRange.unit): 'score' compares the [0, 1] scores (the
// paper's [0.01, 0.1] is in ArmoRM's units, where score = raw reward); 'raw' compares the raw
// rewards (or a judge's points); 'std' is 'raw' with bounds in multiples of the run's standard
// deviation of raw rewards (DEFAULT_REWARD_GAP, the default for reward models whose [0, 1] score
// is fitted to the run: see docs/DATA.md "Reward models, units and the gap window"). The report
// gives each window as applied (gapWindows) and warns when a window dropped every pair it judged.
// When several sources give a valid pair, the pair with the largest score gap wins; ties go to
// the higher chosen score, then to source order (settings.sourceOrder, else first appearance in
// the responses), so a build is deterministic.
// "Best"/"lowest" ties: a response with a score ranks before one without; equal scores go by
// source order then sampleIndex (the rejected side takes the highest sampleIndex, so chosen and
// rejected differ even when every score is equal — the gap filter then drops the pair).
//
// The instruction split is seeded: each instruction prompt gets the key hash(seed, id) and the
// round(0.4·N) lowest keys go to SFT, the rest to DPO; it depends on the ids and the seed only.
// Manual overrides (exclude a prompt/row/response, force the SFT or chosen/rejected response)
// are applied on every build, after the automatic selection; rows they touch are `manual`.

import { hash53, promptMessages, seedToInt, type Domain, type Prompt } from './prompts';
import type { ChatMessage, DpoMessagesRecord, SftMessagesRecord } from './records';
import { errorAsResponse, responseKey, type ErrorRecord, type Response, type ResponseRecord, type Score } from './types';

// ---------------------------------------------------------------------------------------------
// Inputs (Response and Score: types.ts)

export interface ScoredResponse {
  response: Response;
  score?: Score | null;
}

/**
 * A run's stored records as construction input: every response with its score (by key; a
 * ScoreRecord is a Score), and one row per failed item (never selected, but in the report).
 */
export function scoredResponses(
  responses: readonly ResponseRecord[],
  errors: readonly ErrorRecord[] = [],
  scores: ReadonlyMap<string, Score> = new Map(),
): ScoredResponse[] {
  const have = new Set(responses.map((r) => r.key));
  return [
    ...responses.map((response) => ({ response, score: scores.get(response.key) ?? null })),
    ...errors.filter((e) => !have.has(e.key)).map((e) => ({ response: errorAsResponse(e) })),
  ];
}

/**
 * What a gap window's bounds are in:
 *   score  the [0, 1] scores (the paper's window, set in ArmoRM's units where score = raw)
 *   raw    the scorer's raw numbers: reward-model logits, a likelihood reward, a judge's points
 *   std    raw numbers, bounds in multiples of the run's standard deviation of raw rewards
 *          (ConstructSettings.rewardStd), so the window means the same for any reward model
 */
export type GapUnit = 'score' | 'raw' | 'std';

export interface GapRange {
  min: number;
  max: number;
  /** Default 'score'. */
  unit?: GapUnit;
}

/**
 * The default window of a reward model whose [0, 1] score is fitted to the run (score.ts
 * `{kind: 'run'}`, the default for local and HTTP reward models): the chosen and rejected raw
 * rewards differ by 0.3 to 3 standard deviations of the run's rewards. Why: the paper's [0.01, 0.1]
 * is in ArmoRM's units, where a source's best and worst answers "often differ by less than 0.1"
 * (FUSION.md §2): the upper bound sits above most best-vs-worst gaps, the lower is a tenth of it.
 * A best-vs-worst gap is the range of a source's n answers, about 1.1σ (n = 2), 1.7σ (3) and 2.3σ
 * (5) of their spread, and the run's σ is at least that spread: 3σ sits above most such ranges and
 * drops only the widest (one answer broken or off topic: a fifth of the ranges for n = 5, 3% for
 * n = 2, when the rewards vary no more between prompts than within; fewer when they do); 0.3σ
 * keeps the paper's ratio of ten and drops near-ties (a sixth of the pairs for n = 2). In σ units it ignores the reward model's arbitrary offset and scale
 * (Bradley–Terry rewards are defined only up to both). An earlier default, [0.1, 1]σ, put the upper
 * bound at one σ, below the typical range: on serve's likelihood reward with five answers per
 * prompt it dropped every pair as too wide (construct.test.ts has those rewards). docs/DATA.md.
 */
export const DEFAULT_REWARD_GAP: Readonly<GapRange> = { min: 0.3, max: 3, unit: 'std' };

/**
 * The default window of a rubric judge (score = its points / the scale's top, 1–10 by default):
 * chosen and rejected differ by 1 to 3 points of 10. The paper's [0.01, 0.1] is in ArmoRM's units;
 * on a judge's 10-point scale it keeps only gaps of exactly one point (0.1), since the judge moves
 * in whole points, so most pairs a judge tells apart were dropped. Read as the paper's window is
 * meant (docs/DATA.md): the lower bound drops ties (a gap under one point is no preference: the
 * judge's smallest step), the upper drops pairs so far apart that one answer is broken or off topic
 * (over 3 points of 10). Chosen, not measured: no judge's spread was measured for it.
 */
export const DEFAULT_JUDGE_GAP: Readonly<GapRange> = { min: 0.1, max: 0.3, unit: 'score' };

export interface ConstructSettings {
  /** Seed of the instruction SFT/DPO split. */
  seed: number | string;
  /** Share of instruction prompts that go to SFT (the paper's 4:6 → 0.4); the rest go to DPO. */
  instructionSftFraction: number;
  /** Score-gap window for instruction pairs, inclusive; null = no filter. */
  instructionGap: GapRange | null;
  /** Score-gap window for math pairs; null = no filter. */
  mathGap: GapRange | null;
  /** Score-gap window for code pairs; null = no filter. */
  codeGap: GapRange | null;
  /**
   * Math and code prompts: "both" = a prompt gives an SFT row and a DPO pair when it can;
   * "pair-to-dpo" = a prompt with a DPO pair gives no SFT row (each prompt in one set).
   */
  mathCodePlacement: 'both' | 'pair-to-dpo';
  /** Tie-break order of sources; sources not listed follow in order of first appearance. */
  sourceOrder?: string[];
  /**
   * The run's standard deviation of raw rewards, for 'std' windows (the pipeline passes it over
   * every reward of the run); default: computed over the scored responses given.
   */
  rewardStd?: number;
}

export const DEFAULT_CONSTRUCT_SETTINGS: Readonly<ConstructSettings> = {
  seed: 0,
  instructionSftFraction: 0.4,
  instructionGap: { min: 0.01, max: 0.1 },
  mathGap: { min: 0.01, max: 0.1 },
  codeGap: null,
  mathCodePlacement: 'both',
};

/** Tolerance on the gap window bounds (0.11 - 0.01 is 0.09999999999999999 in floats). */
const GAP_EPS = 1e-9;

export type Override =
  /** Leave a prompt out of both sets. */
  | { op: 'exclude-prompt'; promptId: string }
  /** Leave one row out: `sft:<promptId>` or `dpo:<promptId>`. */
  | { op: 'exclude-row'; rowId: string }
  /** Never select this response. */
  | { op: 'exclude-response'; responseId: string }
  /** Use this response as the prompt's SFT target (creates the row if there was none). */
  | { op: 'sft'; promptId: string; responseId: string }
  /** Use this response as chosen / rejected (a pair with no automatic pair needs both). */
  | { op: 'chosen'; promptId: string; responseId: string }
  | { op: 'rejected'; promptId: string; responseId: string };

export interface ConstructInput {
  prompts: readonly Prompt[];
  responses: readonly ScoredResponse[];
  settings?: Partial<ConstructSettings>;
  overrides?: readonly Override[];
}

// ---------------------------------------------------------------------------------------------
// Outputs

export interface PickedResponse {
  responseId: string;
  sourceId: string;
  /** The model that wrote it, when the response says. */
  model?: string;
  sampleIndex: number;
  content: string;
  score: number | null;
  /** The scorer's raw number (reward, judge points), when it gave one. */
  raw?: number;
  correct?: boolean;
  passed?: boolean;
}

export interface SftRow {
  /** `sft:<promptId>` */
  id: string;
  promptId: string;
  domain: Domain;
  /** FuseChat `dataset`: the prompt's origin dataset, else its import source, else its domain. */
  dataset: string;
  /** Prompt turns followed by the assistant response. */
  messages: ChatMessage[];
  response: PickedResponse;
  manual: boolean;
}

export interface DpoRow {
  /** `dpo:<promptId>` */
  id: string;
  promptId: string;
  domain: Domain;
  dataset: string;
  prompt: ChatMessage[];
  chosen: PickedResponse;
  rejected: PickedResponse;
  /** chosen − rejected in `gapUnit` (the domain window's: raw for 'raw'/'std' windows); null when either lacks it. */
  gap: number | null;
  gapUnit: 'score' | 'raw';
  manual: boolean;
}

export type SftReason =
  | 'no_responses'
  | 'errors_only'
  | 'unscored'
  | 'judge_failed'
  | 'verdict_unreadable'
  | 'unjudged'
  | 'no_correct'
  | 'all_failed'
  | 'dpo_split'
  | 'dpo_pair'
  | 'excluded';

export type DpoReason =
  | 'no_responses'
  | 'errors_only'
  | 'unscored'
  | 'judge_failed'
  | 'verdict_unreadable'
  | 'unjudged'
  | 'sft_split'
  | 'sft_only_domain'
  | 'single_response'
  | 'gap_too_small'
  | 'gap_too_large'
  | 'missing_score'
  | 'no_correct'
  | 'no_incorrect'
  | 'all_failed'
  | 'all_passed'
  | 'no_same_source_pair'
  | 'excluded';

export interface SourceOutcome {
  sourceId: string;
  /** Usable responses of this source (no error, non-empty, not excluded). */
  usable: number;
  /** Why this source gave no valid pair; absent when it did. */
  reason?: DpoReason;
  chosenId?: string;
  rejectedId?: string;
  /** Its best − worst gap (in the window's compared unit), when there was a pair to judge. */
  gap?: number | null;
}

export interface PromptReport {
  promptId: string;
  domain: Domain;
  /** Instruction prompts: the side of the 4:6 split. */
  split?: 'sft' | 'dpo';
  /** Responses and failed requests (each failed item counts once). */
  responses: number;
  /** Of those, not usable: failed, empty or excluded. */
  errors: number;
  /** Of those, failed requests (no response text at all). */
  failed?: number;
  sft: { kept: boolean; reason?: SftReason; responseId?: string; manual?: boolean };
  dpo: { kept: boolean; reason?: DpoReason; sourceId?: string; chosenId?: string; rejectedId?: string; gap?: number | null; manual?: boolean; sources: SourceOutcome[] };
}

/** A domain's gap window as applied. */
export interface AppliedGapWindow extends Required<GapRange> {
  /** What gaps are measured in: the [0, 1] score, or the raw reward ('raw' and 'std' windows). */
  compares: 'score' | 'raw';
  /** The bounds in `compares` units ('std': min·σ, max·σ). */
  bounds: { min: number; max: number };
  /** σ of the raw rewards ('std' windows). */
  std?: number;
}

export interface ConstructReport {
  /**
   * Flat counters: `prompts`, `responses`, `sft.kept`, `sft.dropped.<reason>`, `dpo.kept`,
   * `dpo.dropped.<reason>`, `split.sft`, `split.dpo`.
   */
  counts: Record<string, number>;
  /** The same counters per domain. */
  byDomain: Record<Domain, Record<string, number>>;
  /** One entry per prompt, in input order: why it produced (or not) an SFT row and a DPO pair. */
  prompts: PromptReport[];
  overrideErrors: { override: Override; message: string }[];
  /** Responses whose promptId names no prompt (ignored). */
  unknownResponses: number;
  /** Responses repeating an earlier (promptId, source, sampleIndex) (ignored). */
  duplicateResponses: number;
  settings: ConstructSettings;
  /** Each domain's gap window as applied (null: no window). */
  gapWindows: Record<'instruction' | 'math' | 'code', AppliedGapWindow | null>;
  /** What the user should know, e.g. a gap window that dropped every pair it judged. */
  warnings: string[];
}

export interface ConstructResult {
  sft: SftRow[];
  dpo: DpoRow[];
  report: ConstructReport;
}

export const sftRowId = (promptId: string): string => `sft:${promptId}`;
export const dpoRowId = (promptId: string): string => `dpo:${promptId}`;

/** The id of a response in rows, reports and overrides: its key (types.ts). */
export function responseId(r: Pick<Response, 'promptId' | 'sourceId' | 'sampleIndex'>): string {
  return responseKey(r.sourceId, r.promptId, r.sampleIndex);
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface Cand {
  id: string;
  r: Response;
  s: Score | null;
  /** Finite score or null. */
  value: number | null;
  /** The scorer's finite raw number (reward, judge points) or null. */
  raw: number | null;
  sourceRank: number;
  usable: boolean;
}

const pick = (c: Cand): PickedResponse => {
  const p: PickedResponse = {
    responseId: c.id,
    sourceId: c.r.sourceId,
    ...(c.r.model !== undefined ? { model: c.r.model } : {}),
    sampleIndex: c.r.sampleIndex,
    content: c.r.content,
    score: c.value,
  };
  if (c.raw !== null) p.raw = c.raw;
  if (c.s?.correct !== undefined) p.correct = c.s.correct;
  if (c.s?.passed !== undefined) p.passed = c.s.passed;
  return p;
};

/** Raw numbers break ties of equal scores (a score clamped or saturated to the same value). */
const rawOrder = (a: Cand, b: Cand): number => (a.raw !== null && b.raw !== null ? a.raw - b.raw : 0);

/** Best first: scored before unscored, higher score (then raw), source order, lower sampleIndex. */
function bestOrder(a: Cand, b: Cand): number {
  if ((a.value === null) !== (b.value === null)) return a.value === null ? 1 : -1;
  if (a.value !== null && b.value !== null && a.value !== b.value) return b.value - a.value;
  return -rawOrder(a, b) || a.sourceRank - b.sourceRank || a.r.sampleIndex - b.r.sampleIndex;
}

/** Worst first: scored before unscored, lower score (then raw), source order, higher sampleIndex. */
function worstOrder(a: Cand, b: Cand): number {
  if ((a.value === null) !== (b.value === null)) return a.value === null ? 1 : -1;
  if (a.value !== null && b.value !== null && a.value !== b.value) return a.value - b.value;
  return rawOrder(a, b) || a.sourceRank - b.sourceRank || b.r.sampleIndex - a.r.sampleIndex;
}

const best = (cands: readonly Cand[]): Cand | undefined => [...cands].sort(bestOrder)[0];
const worst = (cands: readonly Cand[]): Cand | undefined => [...cands].sort(worstOrder)[0];

function datasetOf(p: Prompt): string {
  return p.origin?.dataset ?? p.origin?.source ?? p.domain;
}

/** Domain-specific judgement of a response: true = correct/passed, false = not, undefined = unjudged. */
function verdict(domain: Domain, c: Cand): boolean | undefined {
  if (domain === 'math') return c.s?.correct;
  if (domain === 'code') return c.s?.passed;
  return undefined;
}

interface PairPick {
  chosen: Cand;
  rejected: Cand;
  gap: number | null;
}

function gapOf(chosen: Cand, rejected: Cand, compares: 'score' | 'raw'): number | null {
  const [c, r] = compares === 'raw' ? [chosen.raw, rejected.raw] : [chosen.value, rejected.value];
  return c !== null && r !== null ? c - r : null;
}

type GapDomain = 'instruction' | 'math' | 'code';
const GAP_DOMAINS: readonly GapDomain[] = ['instruction', 'math', 'code'];

function windowSetting(settings: ConstructSettings, domain: GapDomain): GapRange | null {
  return domain === 'instruction' ? settings.instructionGap : domain === 'math' ? settings.mathGap : settings.codeGap;
}

/** Population standard deviation, or null for no values. */
function stdOf(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
}

/** A window in the units its gaps are compared in ('std': bounds × σ; σ 0 or unknown keeps nothing). */
function applyWindow(range: GapRange | null, std: number | null): AppliedGapWindow | null {
  if (range === null) return null;
  const unit = range.unit ?? 'score';
  if (!(range.min <= range.max)) throw new RangeError(`gap window: min ${range.min} is above max ${range.max}`);
  if (unit !== 'std') return { min: range.min, max: range.max, unit, compares: unit === 'raw' ? 'raw' : 'score', bounds: { min: range.min, max: range.max } };
  const s = std ?? 0;
  const bounds = s > 0 ? { min: range.min * s, max: range.max * s } : { min: Infinity, max: Infinity };
  return { min: range.min, max: range.max, unit, compares: 'raw', bounds, std: s };
}

function checkGap(gap: number | null, w: AppliedGapWindow | null): DpoReason | undefined {
  if (w === null) return undefined;
  if (gap === null) return 'missing_score';
  // Relative tolerance too: raw windows scale with the scorer (GAP_EPS alone suits [0, 1] scores).
  const eps = GAP_EPS * Math.max(1, ...[w.bounds.min, w.bounds.max].filter(Number.isFinite).map(Math.abs));
  if (gap < w.bounds.min - eps) return 'gap_too_small';
  if (gap > w.bounds.max + eps) return 'gap_too_large';
  return undefined;
}

type Windows = Record<GapDomain, AppliedGapWindow | null>;
const comparesOf = (windows: Windows, domain: Domain): 'score' | 'raw' => (domain === 'other' ? 'score' : (windows[domain]?.compares ?? 'score'));

/**
 * Why responses have no score, the most telling cause first: the judge answered but no score could
 * be read from its verdict; the judge's request failed; or nothing scored them ('unscored': no
 * judge or reward model covers the domain).
 */
function unscoredReason(cands: readonly Cand[]): 'verdict_unreadable' | 'judge_failed' | 'unscored' {
  const unscored = cands.filter((c) => c.value === null);
  if (unscored.some((c) => c.s?.judge?.method === 'judge' && c.s.judge.raw === null)) return 'verdict_unreadable';
  if (unscored.some((c) => c.s?.judgeError !== undefined)) return 'judge_failed';
  return 'unscored';
}

/** One source's pair (or why not, with the gap a window refused). */
function sourcePair(domain: Domain, cands: readonly Cand[], windows: Windows): { pair?: PairPick; reason?: DpoReason; gap?: number | null } {
  const compares = comparesOf(windows, domain);
  if (domain === 'instruction') {
    const scored = cands.filter((c) => c.value !== null);
    if (scored.length === 0) return { reason: unscoredReason(cands) };
    if (scored.length < 2) {
      // Two or more responses, but fewer than two scores: the cause is what left them unscored.
      const why = cands.length < 2 ? 'single_response' : unscoredReason(cands);
      return { reason: why === 'unscored' ? 'missing_score' : why };
    }
    const chosen = best(scored)!;
    const rejected = worst(scored)!;
    const gap = gapOf(chosen, rejected, compares);
    const reason = checkGap(gap, windows.instruction);
    return reason ? { reason, gap } : { pair: { chosen, rejected, gap } };
  }
  const good = cands.filter((c) => verdict(domain, c) === true);
  const bad = cands.filter((c) => verdict(domain, c) === false);
  if (good.length === 0 && bad.length === 0) return { reason: 'unjudged' };
  if (good.length === 0) return { reason: domain === 'math' ? 'no_correct' : 'all_failed' };
  if (bad.length === 0) return { reason: domain === 'math' ? 'no_incorrect' : 'all_passed' };
  const chosen = best(good)!;
  const rejected = worst(bad)!;
  const gap = gapOf(chosen, rejected, compares);
  let reason = checkGap(gap, domain === 'math' ? windows.math : windows.code);
  // A score the window needs is missing: say why it is (the judge's verdict, its request).
  if (reason === 'missing_score' && unscoredReason([chosen, rejected]) !== 'unscored') reason = unscoredReason([chosen, rejected]);
  return reason ? { reason, gap } : { pair: { chosen, rejected, gap } };
}

/** Prompt-level reason when no source gave a pair: the most telling source reason. */
const DPO_REASON_PRIORITY: readonly DpoReason[] = [
  'gap_too_large',
  'gap_too_small',
  'verdict_unreadable',
  'judge_failed',
  'missing_score',
  'single_response',
  'unscored',
  'unjudged',
];

// ---------------------------------------------------------------------------------------------
// Build

export function buildDatasets(input: ConstructInput): ConstructResult {
  const settings: ConstructSettings = { ...DEFAULT_CONSTRUCT_SETTINGS, ...input.settings };
  const frac = settings.instructionSftFraction;
  if (!(frac >= 0 && frac <= 1)) throw new RangeError(`instructionSftFraction must be in [0, 1], got ${frac}`);
  const overrides = input.overrides ?? [];
  const overrideErrors: ConstructReport['overrideErrors'] = [];

  // Source order: listed first, then by first appearance.
  const sourceRank = new Map<string, number>();
  for (const s of settings.sourceOrder ?? []) if (!sourceRank.has(s)) sourceRank.set(s, sourceRank.size);
  for (const { response } of input.responses) if (!sourceRank.has(response.sourceId)) sourceRank.set(response.sourceId, sourceRank.size);

  const promptById = new Map<string, Prompt>();
  for (const p of input.prompts) promptById.set(p.id, p);

  const excludedResponses = new Set<string>();
  const excludedPrompts = new Set<string>();
  const excludedRows = new Set<string>();
  for (const o of overrides) {
    if (o.op === 'exclude-response') excludedResponses.add(o.responseId);
    else if (o.op === 'exclude-prompt') excludedPrompts.add(o.promptId);
    else if (o.op === 'exclude-row') excludedRows.add(o.rowId);
  }

  // Group responses by prompt.
  const byPrompt = new Map<string, Cand[]>();
  const allById = new Map<string, Cand>();
  let unknownResponses = 0;
  let duplicateResponses = 0;
  for (const { response: r, score } of input.responses) {
    if (!promptById.has(r.promptId)) {
      unknownResponses++;
      continue;
    }
    const id = responseId(r);
    if (allById.has(id)) {
      duplicateResponses++;
      continue;
    }
    const s = score ?? null;
    const value = s !== null && typeof s.score === 'number' && Number.isFinite(s.score) ? s.score : null;
    const rawValue = s?.judge?.raw;
    const raw = value !== null && typeof rawValue === 'number' && Number.isFinite(rawValue) ? rawValue : null;
    const usable = !r.error && r.content.trim() !== '' && !excludedResponses.has(id);
    const cand: Cand = { id, r, s, value, raw, sourceRank: sourceRank.get(r.sourceId) ?? 0, usable };
    allById.set(id, cand);
    if (!byPrompt.has(r.promptId)) byPrompt.set(r.promptId, []);
    byPrompt.get(r.promptId)!.push(cand);
  }

  // The windows in the units they compare ('std' needs σ of the raw rewards).
  const needsStd = GAP_DOMAINS.some((d) => windowSetting(settings, d)?.unit === 'std');
  const std = !needsStd ? null : (settings.rewardStd ?? stdOf([...allById.values()].filter((c) => c.raw !== null && promptById.has(c.r.promptId)).map((c) => c.raw!)));
  const windows = Object.fromEntries(GAP_DOMAINS.map((d) => [d, applyWindow(windowSetting(settings, d), std)])) as Windows;

  // Seeded 4:6 split of the instruction prompts (over every instruction prompt given, so
  // excluding one later does not move the others).
  const seed = seedToInt(settings.seed);
  const instruction = input.prompts
    .filter((p) => p.domain === 'instruction')
    .map((p) => ({ id: p.id, k: hash53(p.id, seed) }))
    .sort((a, b) => a.k - b.k || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const nSft = Math.round(frac * instruction.length);
  const splitOf = new Map<string, 'sft' | 'dpo'>();
  instruction.forEach((e, k) => splitOf.set(e.id, k < nSft ? 'sft' : 'dpo'));

  const sftRows = new Map<string, SftRow>();
  const dpoRows = new Map<string, DpoRow>();
  const reports = new Map<string, PromptReport>();

  for (const p of input.prompts) {
    if (reports.has(p.id)) continue; // repeated prompt id: first wins
    const cands = byPrompt.get(p.id) ?? [];
    const usable = cands.filter((c) => c.usable);
    const report: PromptReport = {
      promptId: p.id,
      domain: p.domain,
      responses: cands.length,
      errors: cands.filter((c) => !c.usable).length,
      failed: cands.filter((c) => c.r.error).length,
      sft: { kept: false },
      dpo: { kept: false, sources: [] },
    };
    const split = splitOf.get(p.id);
    if (split) report.split = split;
    reports.set(p.id, report);

    if (excludedPrompts.has(p.id)) {
      report.sft = { kept: false, reason: 'excluded', manual: true };
      report.dpo = { kept: false, reason: 'excluded', manual: true, sources: [] };
      continue;
    }
    const availability: (SftReason & DpoReason) | undefined =
      cands.length === 0 ? 'no_responses' : usable.length === 0 ? 'errors_only' : undefined;

    // --- SFT
    let sftPick: Cand | undefined;
    let sftReason: SftReason | undefined;
    if (split === 'dpo') sftReason = 'dpo_split';
    else if (availability) sftReason = availability;
    else if (p.domain === 'instruction') {
      sftPick = best(usable.filter((c) => c.value !== null));
      if (!sftPick) sftReason = unscoredReason(usable);
    } else if (p.domain === 'other') {
      sftPick = best(usable);
    } else {
      const judged = usable.filter((c) => verdict(p.domain, c) !== undefined);
      sftPick = best(judged.filter((c) => verdict(p.domain, c) === true));
      if (!sftPick) sftReason = judged.length === 0 ? 'unjudged' : p.domain === 'math' ? 'no_correct' : 'all_failed';
    }

    // --- DPO
    let pair: PairPick | undefined;
    let dpoReason: DpoReason | undefined;
    if (p.domain === 'other') dpoReason = 'sft_only_domain';
    else if (split === 'sft') dpoReason = 'sft_split';
    else if (availability) dpoReason = availability;
    else {
      const sources = [...new Set(usable.map((c) => c.r.sourceId))].sort((a, b) => (sourceRank.get(a) ?? 0) - (sourceRank.get(b) ?? 0));
      const valid: PairPick[] = [];
      for (const source of sources) {
        const own = usable.filter((c) => c.r.sourceId === source);
        const { pair: sp, reason, gap } = sourcePair(p.domain, own, windows);
        const outcome: SourceOutcome = { sourceId: source, usable: own.length };
        if (reason) outcome.reason = reason;
        if (reason === 'gap_too_small' || reason === 'gap_too_large') outcome.gap = gap ?? null;
        if (sp) {
          outcome.chosenId = sp.chosen.id;
          outcome.rejectedId = sp.rejected.id;
          outcome.gap = sp.gap;
          valid.push(sp);
        }
        report.dpo.sources.push(outcome);
      }
      // Largest gap, then higher chosen score, then source order.
      valid.sort(
        (a, b) =>
          (b.gap ?? -Infinity) - (a.gap ?? -Infinity) ||
          (b.chosen.value ?? -Infinity) - (a.chosen.value ?? -Infinity) ||
          a.chosen.sourceRank - b.chosen.sourceRank,
      );
      pair = valid[0];
      if (!pair) dpoReason = promptDpoReason(p.domain, usable, report.dpo.sources);
    }
    if (pair && sftPick && p.domain !== 'instruction' && settings.mathCodePlacement === 'pair-to-dpo') {
      sftPick = undefined;
      sftReason = 'dpo_pair';
    }

    if (sftPick) {
      sftRows.set(p.id, makeSftRow(p, sftPick, false));
      report.sft = { kept: true, responseId: sftPick.id };
    } else report.sft = { kept: false, reason: sftReason ?? 'errors_only' };
    if (pair) {
      dpoRows.set(p.id, makeDpoRow(p, pair.chosen, pair.rejected, false, comparesOf(windows, p.domain)));
      report.dpo = { ...report.dpo, kept: true, sourceId: pair.chosen.r.sourceId, chosenId: pair.chosen.id, rejectedId: pair.rejected.id, gap: pair.gap };
    } else report.dpo = { ...report.dpo, kept: false, reason: dpoReason ?? 'errors_only' };
  }

  // --- Manual overrides: set responses.
  const fail = (override: Override, message: string) => overrideErrors.push({ override, message });
  const manualPairs = new Map<string, { chosen?: Cand; rejected?: Cand; overrides: Override[] }>();
  for (const o of overrides) {
    if (o.op === 'exclude-response' || o.op === 'exclude-row') {
      const known = o.op === 'exclude-response' ? allById.has(o.responseId) : /^(sft|dpo):/.test(o.rowId) && promptById.has(o.rowId.slice(4));
      if (!known) fail(o, o.op === 'exclude-response' ? `unknown response "${o.responseId}"` : `unknown row "${o.rowId}"`);
      continue;
    }
    if (o.op === 'exclude-prompt') {
      if (!promptById.has(o.promptId)) fail(o, `unknown prompt "${o.promptId}"`);
      continue;
    }
    const p = promptById.get(o.promptId);
    if (!p) {
      fail(o, `unknown prompt "${o.promptId}"`);
      continue;
    }
    if (excludedPrompts.has(o.promptId)) {
      fail(o, `prompt "${o.promptId}" is excluded`);
      continue;
    }
    const c = allById.get(o.responseId);
    if (!c || c.r.promptId !== o.promptId) {
      fail(o, `response "${o.responseId}" is not a response to prompt "${o.promptId}"`);
      continue;
    }
    if (!c.usable) {
      fail(o, `response "${o.responseId}" is ${excludedResponses.has(c.id) ? 'excluded' : c.r.error ? `an error (${c.r.error})` : 'empty'}`);
      continue;
    }
    if (o.op === 'sft') {
      sftRows.set(p.id, makeSftRow(p, c, true));
      reports.get(p.id)!.sft = { kept: true, responseId: c.id, manual: true };
    } else {
      const entry = manualPairs.get(p.id) ?? { overrides: [] };
      entry[o.op] = c;
      entry.overrides.push(o);
      manualPairs.set(p.id, entry);
    }
  }
  for (const [promptId, m] of manualPairs) {
    const p = promptById.get(promptId)!;
    const auto = dpoRows.get(promptId);
    const chosen = m.chosen ?? (auto ? allById.get(auto.chosen.responseId) : undefined);
    const rejected = m.rejected ?? (auto ? allById.get(auto.rejected.responseId) : undefined);
    if (!chosen || !rejected) {
      for (const o of m.overrides) fail(o, `prompt "${promptId}" has no automatic pair: set both chosen and rejected`);
      continue;
    }
    if (chosen.id === rejected.id) {
      for (const o of m.overrides) fail(o, 'chosen and rejected are the same response');
      continue;
    }
    const row = makeDpoRow(p, chosen, rejected, true, comparesOf(windows, p.domain));
    dpoRows.set(promptId, row);
    const report = reports.get(promptId)!;
    report.dpo = { kept: true, sourceId: chosen.r.sourceId, chosenId: chosen.id, rejectedId: rejected.id, gap: row.gap, manual: true, sources: report.dpo.sources };
  }

  // --- Manual overrides: exclude rows.
  for (const rowId of excludedRows) {
    const promptId = rowId.slice(4);
    const report = reports.get(promptId);
    if (!report) continue;
    if (rowId.startsWith('sft:')) {
      sftRows.delete(promptId);
      report.sft = { kept: false, reason: 'excluded', manual: true };
    } else if (rowId.startsWith('dpo:')) {
      dpoRows.delete(promptId);
      report.dpo = { kept: false, reason: 'excluded', manual: true, sources: report.dpo.sources };
    }
  }

  // --- Outputs in prompt order, and the counters.
  const counts: Record<string, number> = {};
  const byDomain = { instruction: {}, math: {}, code: {}, other: {} } as Record<Domain, Record<string, number>>;
  const bump = (domain: Domain, key: string) => {
    counts[key] = (counts[key] ?? 0) + 1;
    byDomain[domain][key] = (byDomain[domain][key] ?? 0) + 1;
  };
  const sft: SftRow[] = [];
  const dpo: DpoRow[] = [];
  for (const report of reports.values()) {
    const d = report.domain;
    bump(d, 'prompts');
    for (let k = 0; k < report.responses; k++) bump(d, 'responses');
    // 'responses' counts failed requests too (they are in the report): say how many.
    for (let k = 0; k < (report.failed ?? 0); k++) bump(d, 'responses.failed');
    if (report.split) bump(d, `split.${report.split}`);
    bump(d, report.sft.kept ? 'sft.kept' : `sft.dropped.${report.sft.reason}`);
    bump(d, report.dpo.kept ? 'dpo.kept' : `dpo.dropped.${report.dpo.reason}`);
    const s = sftRows.get(report.promptId);
    if (s) sft.push(s);
    const pr = dpoRows.get(report.promptId);
    if (pr) dpo.push(pr);
  }

  const prompts = [...reports.values()];
  return {
    sft,
    dpo,
    report: { counts, byDomain, prompts, overrideErrors, unknownResponses, duplicateResponses, settings, gapWindows: windows, warnings: windowWarnings(prompts, windows) },
  };
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 0.01 ? x.toFixed(3).replace(/0+$/, '') : x.toPrecision(2));

/** A window as the report says it: "[0.1, 1]×σ (σ 2.3 → [0.23, 2.3] raw)". */
export function describeGapWindow(w: AppliedGapWindow): string {
  if (w.unit === 'std') return `[${fmt(w.min)}, ${fmt(w.max)}]×σ of the run's raw rewards (σ ${fmt(w.std ?? 0)} → [${fmt(w.bounds.min)}, ${fmt(w.bounds.max)}] raw)`;
  return `[${fmt(w.min)}, ${fmt(w.max)}] in ${w.unit === 'raw' ? 'raw reward' : '[0, 1] score'} units`;
}

/** A warning per domain whose window judged pairs and kept none of them. */
function windowWarnings(prompts: readonly PromptReport[], windows: Windows): string[] {
  const out: string[] = [];
  for (const d of GAP_DOMAINS) {
    const w = windows[d];
    if (!w) continue;
    const outcomes = prompts.filter((p) => p.domain === d).flatMap((p) => p.dpo.sources);
    const dropped = outcomes.filter((o) => o.reason === 'gap_too_small' || o.reason === 'gap_too_large');
    const kept = outcomes.filter((o) => o.chosenId !== undefined).length;
    if (dropped.length === 0 || kept > 0) continue;
    const gaps = dropped.map((o) => o.gap).filter((g): g is number => typeof g === 'number' && Number.isFinite(g));
    const range = gaps.length ? ` (their gaps: ${fmt(Math.min(...gaps))} to ${fmt(Math.max(...gaps))} ${w.compares === 'raw' ? 'raw' : 'score'})` : '';
    const why = w.unit === 'std' && !((w.std ?? 0) > 0) ? '; every raw reward of the run is equal (σ 0)' : '';
    out.push(
      `${d}: the DPO gap window ${describeGapWindow(w)} dropped all ${dropped.length} same-source pair(s) it judged${range}${why}; ` +
        `no ${d} DPO pair was built — set the window in the scorer's units (construct ${d}Gap {min, max, unit: "score" | "raw" | "std"})`,
    );
  }
  return out;
}

function promptDpoReason(domain: Domain, usable: readonly Cand[], sources: readonly SourceOutcome[]): DpoReason {
  if (domain === 'math' || domain === 'code') {
    const verdicts = usable.map((c) => verdict(domain, c));
    const anyGood = verdicts.includes(true);
    const anyBad = verdicts.includes(false);
    if (!anyGood && !anyBad) return 'unjudged';
    if (!anyGood) return domain === 'math' ? 'no_correct' : 'all_failed';
    if (!anyBad) return domain === 'math' ? 'no_incorrect' : 'all_passed';
    const hadBoth = sources.some((s) => !['no_correct', 'no_incorrect', 'all_failed', 'all_passed', 'unjudged'].includes(s.reason ?? ''));
    if (!hadBoth) return 'no_same_source_pair';
  }
  for (const r of DPO_REASON_PRIORITY) if (sources.some((s) => s.reason === r)) return r;
  return sources[0]?.reason ?? 'errors_only';
}

function makeSftRow(p: Prompt, c: Cand, manual: boolean): SftRow {
  return {
    id: sftRowId(p.id),
    promptId: p.id,
    domain: p.domain,
    dataset: datasetOf(p),
    messages: [...promptMessages(p), { role: 'assistant', content: c.r.content }],
    response: pick(c),
    manual,
  };
}

function makeDpoRow(p: Prompt, chosen: Cand, rejected: Cand, manual: boolean, gapUnit: 'score' | 'raw'): DpoRow {
  return {
    id: dpoRowId(p.id),
    promptId: p.id,
    domain: p.domain,
    dataset: datasetOf(p),
    prompt: promptMessages(p),
    chosen: pick(chosen),
    rejected: pick(rejected),
    gap: gapOf(chosen, rejected, gapUnit),
    gapUnit,
    manual,
  };
}

// ---------------------------------------------------------------------------------------------
// Rows → records (for the TRL and FuseChat-3.0 writers in records.ts)

/** FuseChat's `source_model`: the model that wrote the response, else its source id. */
const sourceModel = (p: PickedResponse): string => p.model ?? p.sourceId;

/** SFT rows as records; meta carries `dataset`, `source_model` (FuseChat fields), `id`, `score`. */
export function sftRowsToRecords(rows: readonly SftRow[]): SftMessagesRecord[] {
  return rows.map((r) => ({
    kind: 'sft-messages',
    messages: r.messages.map((m) => ({ ...m })),
    meta: { id: r.id, dataset: r.dataset, source_model: sourceModel(r.response), domain: r.domain, score: r.response.score },
  }));
}

/** DPO rows as records (chosen/rejected = the assistant completion); meta as for SFT plus both scores. */
export function dpoRowsToRecords(rows: readonly DpoRow[]): DpoMessagesRecord[] {
  return rows.map((r) => ({
    kind: 'dpo-messages',
    prompt: r.prompt.map((m) => ({ ...m })),
    chosen: [{ role: 'assistant', content: r.chosen.content }],
    rejected: [{ role: 'assistant', content: r.rejected.content }],
    meta: {
      id: r.id,
      dataset: r.dataset,
      source_model: sourceModel(r.chosen),
      domain: r.domain,
      chosen_score: r.chosen.score,
      rejected_score: r.rejected.score,
    },
  }));
}
