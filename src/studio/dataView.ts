// Pure helpers of the Data page: merging imports, reading the run's report into tables,
// grouping a prompt's responses by source, and formatting progress. No I/O (unit-tested).

import type { ConstructReport, PromptReport } from '../data/construct';
import { DOMAINS, splitEval, type ColumnMapping, type Domain, type Prompt } from '../data/prompts';
import type { ErrorRecord, ResponseRecord, ScoreRecord } from '../data/types';

/** Adds `incoming` to `existing`, skipping ids already there (an earlier import keeps a prompt). */
export function mergePrompts(existing: readonly Prompt[], incoming: readonly Prompt[]): { added: Prompt[]; skipped: number } {
  const seen = new Set(existing.map((p) => p.id));
  const added: Prompt[] = [];
  let skipped = 0;
  for (const p of incoming) {
    if (seen.has(p.id)) skipped++;
    else {
      seen.add(p.id);
      added.push(p);
    }
  }
  return { added, skipped };
}

export type MappingForm = Record<keyof ColumnMapping, string>;
export const EMPTY_MAPPING: MappingForm = { prompt: '', system: '', domain: '', gold: '', tests: '', id: '' };

/** A mapping from the form: blank = auto-detect, "-" = switched off, else the column (dotted path). */
export function mappingFromForm(form: MappingForm): ColumnMapping {
  const out: ColumnMapping = {};
  for (const k of Object.keys(form) as (keyof ColumnMapping)[]) {
    const v = form[k].trim();
    if (v === '-') out[k] = null;
    else if (v) out[k] = v;
  }
  return out;
}

/** Seconds as "12 s", "3 min 4 s", "—" when unknown. */
export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} K`;
  return n.toLocaleString('en-US');
}

/** Human words for the construct reasons. */
export const REASON_TEXT: Record<string, string> = {
  kept: 'kept',
  no_responses: 'no responses',
  errors_only: 'only failed requests',
  unscored: 'no score: no judge or reward model scores it (choose one on the Sources page)',
  judge_failed: 'the judge’s requests failed',
  verdict_unreadable: 'no score could be read from the judge’s verdicts',
  unjudged: 'no verdict (no gold answer / tests / sandbox)',
  no_correct: 'no correct answer',
  no_incorrect: 'no incorrect answer',
  all_failed: 'every response failed its tests',
  all_passed: 'every response passed',
  dpo_split: 'DPO side of the 4:6 split',
  sft_split: 'SFT side of the 4:6 split',
  dpo_pair: 'in DPO instead',
  sft_only_domain: 'SFT-only domain',
  single_response: 'one response per source',
  gap_too_small: 'score gap below the window',
  gap_too_large: 'score gap above the window',
  missing_score: 'a score is missing',
  no_same_source_pair: 'no pair from one source',
  excluded: 'excluded by hand',
};

export interface ReportRow {
  /** e.g. "sft.kept", "dpo.dropped.gap_too_small". */
  key: string;
  set: 'SFT' | 'DPO';
  reason: string;
  byDomain: Record<Domain, number>;
  total: number;
}

/** The kept/dropped counters of a report as table rows (SFT first, kept first, then by count). */
export function reportRows(report: Pick<ConstructReport, 'counts' | 'byDomain'>): ReportRow[] {
  const rows: ReportRow[] = [];
  for (const key of Object.keys(report.counts)) {
    const m = /^(sft|dpo)\.(kept|dropped\.(.+))$/.exec(key);
    if (!m) continue;
    const reason = m[2] === 'kept' ? 'kept' : m[3]!;
    const byDomain = Object.fromEntries(DOMAINS.map((d) => [d, report.byDomain[d]?.[key] ?? 0])) as Record<Domain, number>;
    rows.push({ key, set: m[1] === 'sft' ? 'SFT' : 'DPO', reason, byDomain, total: report.counts[key] ?? 0 });
  }
  return rows.sort((a, b) => (a.set === b.set ? 0 : a.set === 'SFT' ? -1 : 1) || (a.reason === 'kept' ? -1 : b.reason === 'kept' ? 1 : b.total - a.total || (a.reason < b.reason ? -1 : 1)));
}

export interface ResponseView {
  key: string;
  sourceId: string;
  sourceName: string;
  sampleIndex: number;
  content: string;
  /** The edited text when edited by hand. */
  edited?: string;
  score?: ScoreRecord;
  error?: string;
}

export interface SourceColumn {
  sourceId: string;
  name: string;
  responses: ResponseView[];
}

/** One prompt's responses and failed items, one column per source (in `sourceOrder`), by sample. */
export function groupResponses(
  promptId: string,
  responses: readonly ResponseRecord[],
  scores: readonly ScoreRecord[],
  errors: readonly ErrorRecord[],
  edits: Readonly<Record<string, string>>,
  sourceOrder: readonly { id: string; name: string }[] = [],
): SourceColumn[] {
  const scoreBy = new Map(scores.map((s) => [s.key, s]));
  const cols = new Map<string, SourceColumn>();
  for (const s of sourceOrder) cols.set(s.id, { sourceId: s.id, name: s.name, responses: [] });
  const col = (id: string, name: string) => {
    if (!cols.has(id)) cols.set(id, { sourceId: id, name, responses: [] });
    return cols.get(id)!;
  };
  for (const r of responses) {
    if (r.promptId !== promptId) continue;
    const v: ResponseView = { key: r.key, sourceId: r.sourceId, sourceName: r.sourceName, sampleIndex: r.sampleIndex, content: r.content };
    const s = scoreBy.get(r.key);
    if (s) v.score = s;
    if (edits[r.key] !== undefined) v.edited = edits[r.key];
    col(r.sourceId, r.sourceName).responses.push(v);
  }
  for (const e of errors) {
    if (e.promptId !== promptId) continue;
    const c = col(e.sourceId, e.sourceId);
    if (c.responses.some((r) => r.key === e.key)) continue;
    c.responses.push({ key: e.key, sourceId: e.sourceId, sourceName: c.name, sampleIndex: e.sampleIndex, content: '', error: `${e.status ? `HTTP ${e.status}, ` : ''}${e.kind}: ${e.message}` });
  }
  const out = [...cols.values()].filter((c) => c.responses.length > 0);
  for (const c of out) c.responses.sort((a, b) => a.sampleIndex - b.sampleIndex);
  return out;
}

/** A short verdict line for a response: score, math/code verdict, scoring error. */
export function verdictLine(s: ScoreRecord | undefined): string {
  if (!s) return 'not scored';
  const parts: string[] = [];
  if (s.score !== null && s.score !== undefined) parts.push(`score ${s.score.toFixed(2)}${s.judge?.raw !== null && s.judge?.raw !== undefined ? ` (raw ${s.judge.raw})` : ''}`);
  if (s.correct !== undefined) parts.push(s.correct ? 'correct' : 'incorrect');
  if (s.passed !== undefined) parts.push(s.passed ? 'tests passed' : 'tests failed');
  if (s.code && s.passed === undefined) parts.push(`code: ${s.code.status}`);
  const unreadable = s.judge?.method === 'judge' && s.judge.raw === null;
  // Why is in the verdict's panel below the response; here only what happened.
  if (unreadable) parts.push('no score read from the judge’s verdict');
  else if (s.judgeError !== undefined) parts.push(`the ${s.judge?.method === 'reward' ? 'reward model' : 'judge'} request failed: ${s.judgeError}`);
  // Other failures (the sandbox): the stored error without the judge's part, said above.
  let other = s.error ?? '';
  if (unreadable) other = other.replace(`judge: ${s.judge!.detail}`, '');
  if (s.judgeError !== undefined) for (const k of ['judge', 'reward', 'local-reward']) other = other.replace(`${k}: ${s.judgeError}`, '');
  other = other.replace(/^(;\s*)+|(;\s*)+$/g, '').replace(/(;\s*){2,}/g, '; ');
  if (other) parts.push(`scoring error: ${other}`);
  return parts.length ? parts.join(' · ') : 'no score';
}

/** What happened to a prompt in the build, in words. */
export function promptOutcome(r: PromptReport | undefined): { sft: string; dpo: string } {
  if (!r) return { sft: 'not built yet', dpo: 'not built yet' };
  const word = (kept: boolean, reason: string | undefined, manual: boolean | undefined) =>
    kept ? `kept${manual ? ' (by hand)' : ''}` : `dropped: ${REASON_TEXT[reason ?? ''] ?? reason ?? 'unknown'}`;
  return {
    sft: word(r.sft.kept, r.sft.reason, r.sft.manual),
    dpo: word(r.dpo.kept, r.dpo.reason, r.dpo.manual) + (r.dpo.kept && r.dpo.gap !== null && r.dpo.gap !== undefined ? `, gap ${r.dpo.gap.toFixed(2)}` : ''),
  };
}

// ---------------------------------------------------------------------------------------------
// Held-out prompts for the Evaluate page

/** Held out by default when there are enough prompts for a split to leave both sides useful. */
export const DEFAULT_EVAL_PERCENT = 10;
/** Below this many prompts nothing is held out by default (a few would be held out, mostly by chance). */
export const MIN_PROMPTS_FOR_EVAL = 20;

/** The run's held-out share in percent: the one chosen on the page, else the default for `n` prompts. */
export function evalPercentOf(chosen: number | undefined, n: number): number {
  if (chosen !== undefined) return chosen;
  return n >= MIN_PROMPTS_FOR_EVAL ? DEFAULT_EVAL_PERCENT : 0;
}

/**
 * The run's prompts split for evaluation, each prompt by its own id (splitEval's stable split, the
 * pipeline's default seed 0): adding prompts or leaving long ones out moves no prompt between the
 * training sets and the held-out ones, so a resumed run keeps them apart.
 */
export function heldOutPrompts(prompts: readonly Prompt[], percent: number): { train: Prompt[]; eval: Prompt[] } {
  return percent > 0 ? splitEval(prompts, { fraction: percent / 100, stable: true, seed: 0 }) : { train: [...prompts], eval: [] };
}
