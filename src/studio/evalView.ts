// What the Evaluate page shows of an evaluation report (eval.json, src/eval/report.ts), worked out
// without React: the table shaped like FuseChat-3.0's (rows: models, columns: metrics) with each
// number's 95% interval, the pairwise comparisons with "not significant" and the one sentence of
// why, the bar charts' points with their whiskers, and plain statements when the evidence is thin.
// Pure: tested in evalView.test.ts.

import { classifyEvalRow, type EvalItem, type EvalItemKind } from '../eval/items';
import type { EvalReport, JudgeBlock, McNemarBlock, ModelResults, PairwiseResult, RateBlock } from '../eval/report';
import type { AnswerResult, EvalResult, JudgeResult } from '../eval/store';
import type { EvalTiers } from './worker/eval-runs';

/** A model's name as the studio writes it: base → Base, sft → SFT, sft-2+dpo → SFT-2+DPO. */
export function evalModelLabel(name: string): string {
  if (name === 'base') return 'Base';
  if (/^(sft|dpo)(-\d+)?(\+dpo(-\d+)?)?$/.test(name)) return name.toUpperCase();
  return name;
}

export const pct = (x: number, digits = 0): string => `${(100 * x).toFixed(digits)}%`;

/** "[41%, 78%]" for a proportion's interval. */
export const pctInterval = (ci: readonly [number, number] | readonly number[]): string => `[${pct(ci[0]!)}, ${pct(ci[1]!)}]`;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The report's sentences start lower-case (eval.md writes them after a dash): as a sentence here. */
export const sentence = (s: string): string => (s ? `${s[0]!.toUpperCase()}${s.slice(1)}${/[.!?]$/.test(s) ? '' : '.'}` : s);

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A report sentence with its model names ("sft+dpo") written as the page writes them ("SFT+DPO"), as a sentence. */
export function labelled(text: string, models: readonly string[]): string {
  let out = text;
  for (const m of [...models].sort((a, b) => b.length - a.length)) {
    const label = evalModelLabel(m);
    if (label !== m) out = out.replace(new RegExp(`(?<![\\w+-])${escapeRe(m)}(?![\\w+-])`, 'g'), label);
  }
  return sentence(out);
}

export type MetricId = 'sft_loss' | 'perplexity' | 'pref_accuracy' | 'math' | 'code' | 'judge' | 'choice_accuracy' | 'mean_length';

export interface Cell {
  /** The number as shown ("67%", "2.41"), or "—" when the model has no such result. */
  text: string;
  /** "95% CI [41%, 78%] · 6 items", or "" when no interval applies. */
  detail: string;
  /** A plain note beside the number ("not significant vs Base"), or "". */
  note: string;
  /** The note's one sentence of why, or "". */
  why: string;
}

export interface Column {
  id: MetricId;
  /** Short heading ("Math"). */
  label: string;
  /** What the column measures. */
  description: string;
}

export interface TableRow {
  model: string;
  label: string;
  cells: Record<MetricId, Cell>;
}

const NONE: Cell = { text: '—', detail: '', note: '', why: '' };

const COLUMNS: Column[] = [
  { id: 'sft_loss', label: 'SFT loss', description: 'Mean loss per target token on the held-out SFT rows (lower is better).' },
  { id: 'perplexity', label: 'Perplexity', description: 'exp(SFT loss) on the held-out SFT rows (lower is better).' },
  { id: 'pref_accuracy', label: 'Pref. accuracy', description: 'Share of held-out DPO pairs whose chosen answer gets the higher log-probability per token.' },
  { id: 'math', label: 'Math', description: 'Greedy answers checked against the gold answer by the math verifier.' },
  { id: 'code', label: 'Code pass@1', description: 'Greedy code answers that pass the prompt’s tests.' },
  { id: 'judge', label: 'Judge win rate', description: 'The judge’s win rate of this model against the base on the same prompts (ties count half).' },
  { id: 'choice_accuracy', label: 'Multiple choice', description: 'Options scored by log-likelihood: the forgetting guard.' },
  { id: 'mean_length', label: 'Mean length', description: 'Mean generated tokens per answer.' },
];

/** The pairwise entry comparing `a` and `b` (either order), and whether it was stored reversed. */
export function findPair(report: EvalReport, a: string, b: string): { pair: PairwiseResult; reversed: boolean } | null {
  for (const p of report.pairwise) {
    if (p.a === a && p.b === b) return { pair: p, reversed: false };
    if (p.a === b && p.b === a) return { pair: p, reversed: true };
  }
  return null;
}

/** The model every other one is compared with in the table: "base" when present, else the first. */
export function referenceModel(report: EvalReport): string | null {
  return report.models.includes('base') ? 'base' : (report.models[0] ?? null);
}

function rateCell(block: RateBlock | undefined, unit: string): Cell {
  if (!block) return NONE;
  if (block.accuracy === null || block.ci95 === null) return { text: '—', detail: block.why ? sentence(block.why) : `no ${unit}s`, note: '', why: '' };
  return { text: pct(block.accuracy), detail: `95% CI ${pctInterval(block.ci95)} · ${block.correct} of ${plural(block.n, unit)}`, note: '', why: '' };
}

/** A judge block seen from `model`'s side (the report keeps b's side). */
export function judgeFrom(j: JudgeBlock, reversed: boolean): { rate: number | null; ci: [number, number] | null; lc: number | null } {
  const flip = (x: number | null) => (x === null ? null : reversed ? 1 - x : x);
  return {
    rate: flip(j.win_rate),
    ci: j.ci95 === null ? null : reversed ? [1 - j.ci95[1], 1 - j.ci95[0]] : [j.ci95[0], j.ci95[1]],
    lc: flip(j.lc_win_rate),
  };
}

const significance = (block: McNemarBlock | JudgeBlock, vs: string) => (block.significant ? `significant vs ${vs}` : `not significant vs ${vs}`);

/** The table: one row per model, a column per metric that some model has. */
export function resultsTable(report: EvalReport): { columns: Column[]; rows: TableRow[] } {
  const ref = referenceModel(report);
  const rows: TableRow[] = report.models.map((model) => {
    const r: ModelResults = report.results[model] ?? {};
    const label = evalModelLabel(model);
    const loss = r.sft_loss;
    const cells: Record<MetricId, Cell> = {
      sft_loss: !loss ? NONE : loss.mean === null ? { text: '—', detail: sentence(loss.why ?? ''), note: '', why: '' } : { text: loss.mean.toFixed(3), detail: `${plural(loss.n, 'row')}, ${loss.tokens} tokens`, note: '', why: '' },
      perplexity: !loss || loss.perplexity === null ? NONE : { text: formatPerplexity(loss.perplexity), detail: plural(loss.n, 'row'), note: '', why: '' },
      pref_accuracy: rateCell(r.pref_accuracy, 'pair'),
      math: rateCell(r.math, 'item'),
      code: rateCell(r.code, 'item'),
      judge: NONE,
      choice_accuracy: rateCell(r.choice_accuracy, 'question'),
      mean_length: typeof r.mean_length === 'number' && Number.isFinite(r.mean_length) ? { text: `${r.mean_length.toFixed(1)} tokens`, detail: '', note: '', why: '' } : NONE,
    };
    const margin = r.pref_accuracy?.mean_margin;
    if (typeof margin === 'number' && cells.pref_accuracy !== NONE) cells.pref_accuracy = { ...cells.pref_accuracy, detail: `${cells.pref_accuracy.detail} · mean margin ${margin.toFixed(3)}` };
    if (ref !== null && model !== ref) {
      const found = findPair(report, ref, model);
      if (found) {
        const refLabel = evalModelLabel(ref);
        for (const key of ['math', 'code'] as const) {
          const m = found.pair[key];
          if (!m || m.mcnemar_p === null || cells[key] === NONE) continue;
          cells[key] = { ...cells[key], note: significance(m, refLabel), why: labelled(m.why, report.models) };
        }
        const j = found.pair.judge;
        if (j) {
          const { rate, ci, lc } = judgeFrom(j, found.reversed);
          cells.judge =
            rate === null || ci === null
              ? { text: '—', detail: labelled(j.why, report.models), note: '', why: '' }
              : {
                  text: pct(rate),
                  detail: `95% CI ${pctInterval(ci)} vs ${refLabel} · ${plural(j.n, 'item')}${lc !== null ? ` · length-controlled ${pct(lc)}` : ''}`,
                  note: significance(j, refLabel),
                  why: labelled(j.why, report.models),
                };
        }
      }
    }
    return { model, label, cells };
  });
  const columns = COLUMNS.filter((c) => rows.some((row) => row.cells[c.id] !== NONE));
  return { columns, rows };
}

function formatPerplexity(x: number): string {
  if (!Number.isFinite(x)) return '∞';
  return x >= 1000 ? x.toExponential(2) : x.toFixed(x >= 100 ? 0 : 2);
}

export interface PairRow {
  a: string;
  b: string;
  title: string;
  lines: { label: string; text: string; significant: boolean; why: string }[];
}

/** Every pairwise comparison the report holds, in words (b against a: the later, tuned model first). */
export function pairRows(report: EvalReport): PairRow[] {
  return report.pairwise.map((p) => {
    const aLabel = evalModelLabel(p.a);
    const bLabel = evalModelLabel(p.b);
    const lines: PairRow['lines'] = [];
    for (const key of ['math', 'code'] as const) {
      const m = p[key];
      if (!m) continue;
      lines.push({
        label: key === 'math' ? 'Math' : 'Code',
        text:
          m.mcnemar_p === null
            ? 'no item answered by both'
            : `${bLabel} alone right on ${m.b_only}, ${aLabel} alone on ${m.a_only}, of ${plural(m.n, 'item')} (exact McNemar p = ${m.mcnemar_p < 0.001 ? '< 0.001' : m.mcnemar_p.toFixed(3)})`,
        significant: m.significant,
        why: labelled(m.why, report.models),
      });
    }
    const j = p.judge;
    if (j) {
      const parts = [`${bLabel} wins ${j.wins}, loses ${j.losses}, ties ${j.ties}`];
      if (j.win_rate !== null && j.ci95 !== null) parts.push(`win rate ${pct(j.win_rate)} ${pctInterval(j.ci95)}`);
      if (j.lc_win_rate !== null) parts.push(`length-controlled ${pct(j.lc_win_rate)}`);
      if (j.inconsistent !== null) parts.push(`position bias ${pct(j.inconsistent)}`);
      if (j.unreadable > 0) parts.push(`${plural(j.unreadable, 'verdict')} unreadable, left out`);
      if (j.mean_length_a !== null && j.mean_length_b !== null) parts.push(`mean length ${bLabel} ${j.mean_length_b.toFixed(1)}, ${aLabel} ${j.mean_length_a.toFixed(1)} tokens`);
      lines.push({ label: 'Judge', text: parts.join(' · '), significant: j.significant, why: [labelled(j.why, report.models), j.length_note ? labelled(j.length_note, report.models) : ''].filter(Boolean).join(' ') });
    }
    return { a: p.a, b: p.b, title: `${bLabel} vs ${aLabel}`, lines };
  });
}

export interface BarPoint {
  model: string;
  label: string;
  /** In percent. */
  value: number;
  /** Whisker lengths below and above `value` (percent), for recharts' ErrorBar. */
  error: [number, number];
  n: number;
}

export interface BarChartSpec {
  id: MetricId;
  title: string;
  points: BarPoint[];
  /** A dashed reference line (the judge's 50%). */
  reference: number | null;
}

/** Bar charts of the proportions (each with its 95% interval as whiskers), one per metric with data. */
export function barCharts(report: EvalReport): BarChartSpec[] {
  const charts: BarChartSpec[] = [];
  const bar = (model: string, value: number, ci: readonly [number, number], n: number): BarPoint => ({
    model,
    label: evalModelLabel(model),
    value: 100 * value,
    error: [100 * (value - ci[0]), 100 * (ci[1] - value)],
    n,
  });
  const proportion = (id: MetricId, title: string, pick: (r: ModelResults) => RateBlock | undefined) => {
    const points: BarPoint[] = [];
    for (const model of report.models) {
      const b = pick(report.results[model] ?? {});
      if (b && b.accuracy !== null && b.ci95 !== null) points.push(bar(model, b.accuracy, b.ci95, b.n));
    }
    if (points.length) charts.push({ id, title, points, reference: null });
  };
  proportion('math', 'Math accuracy', (r) => r.math);
  proportion('code', 'Code pass@1', (r) => r.code);
  proportion('pref_accuracy', 'Preference accuracy', (r) => r.pref_accuracy);
  proportion('choice_accuracy', 'Multiple-choice accuracy', (r) => r.choice_accuracy);
  const ref = referenceModel(report);
  if (ref !== null) {
    const points: BarPoint[] = [];
    for (const model of report.models) {
      if (model === ref) continue;
      const found = findPair(report, ref, model);
      if (!found?.pair.judge) continue;
      const { rate, ci } = judgeFrom(found.pair.judge, found.reversed);
      if (rate !== null && ci !== null) points.push(bar(model, rate, ci, found.pair.judge.n));
    }
    if (points.length) charts.push({ id: 'judge', title: `Judge win rate vs ${evalModelLabel(ref)}`, points, reference: 50 });
  }
  return charts;
}

/** Items below which a comparison of two models is rarely able to show anything. */
export const THIN_ITEMS = 30;

/**
 * Plain sentences when the evidence is too thin to say the tuned model is better: few items, or no
 * difference the statistics can tell from chance. Empty when neither holds.
 */
export function thinEvidence(report: EvalReport): string[] {
  const out: string[] = [];
  const counts: number[] = [];
  for (const m of report.models) {
    const r = report.results[m];
    if (!r) continue;
    for (const b of [r.math, r.code, r.pref_accuracy, r.choice_accuracy, r.sft_loss]) if (b && b.n > 0) counts.push(b.n);
  }
  for (const p of report.pairwise) if (p.judge && p.judge.n > 0) counts.push(p.judge.n);
  if (counts.length === 0) return ['No metric has any item: nothing was measured.'];
  const most = Math.max(...counts);
  if (most < THIN_ITEMS)
    out.push(
      `The evidence is too thin to call any model better: the largest set here has ${plural(most, 'item')}, and with fewer than ${THIN_ITEMS} only a large difference can be told from chance. Evaluate on more held-out prompts before trusting a ranking.`,
    );
  const tests = report.pairwise.flatMap((p) => [p.math, p.code, p.judge].filter((t): t is McNemarBlock | JudgeBlock => t !== undefined));
  if (tests.length > 0 && tests.every((t) => !t.significant))
    out.push('No difference between the models is significant: every interval includes “no difference” (or McNemar p ≥ 0.05). The numbers may differ by chance alone.');
  return out;
}

/** "12 s", "3 min 5 s", "1 h 02 min" for an ETA, or null when unknown. */
export function formatDuration(seconds: number | null | undefined): string | null {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return null;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A file name for an export: "eval-<model>-<date>.json". */
export function exportFileName(modelKey: string, createdAt: string, ext: 'json' | 'md'): string {
  const safe = modelKey.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'model';
  return `eval-${safe}-${createdAt.slice(0, 19).replace(/[:T]/g, '-')}.${ext}`;
}

/** A prompt row with every model's answer and each pair's verdict, as the page lists them. */
export interface EvalItemView {
  itemId: string;
  line: number;
  domain: string;
  prompt: string;
  gold?: string;
  /** The prompt repeats a training prompt. */
  duplicate: boolean;
  answers: { model: string; text: string; check: { ok: boolean; label: string } | null }[];
  verdicts: { a: string; b: string; summary: string; details: { title: string; text: string }[] }[];
}

function checkLabel(c: AnswerResult['check']): { ok: boolean; label: string } | null {
  if (!c) return null;
  if (c.type === 'math') return { ok: c.correct, label: c.correct ? 'correct' : `wrong${c.extracted !== null ? ` (read ${c.extracted})` : ' (no answer read)'}` };
  if (c.status === 'unavailable') return { ok: false, label: 'tests not run' };
  return { ok: c.passed, label: c.passed ? 'tests pass' : `tests fail (${c.status})` };
}

function verdictSummary(j: JudgeResult): string {
  const A = evalModelLabel(j.a);
  const B = evalModelLabel(j.b);
  const rewards = j.rewards ? ` (reward ${A} ${j.rewards.a.toFixed(3)}, ${B} ${j.rewards.b.toFixed(3)})` : '';
  if (j.outcome === 'a') return `${A} wins${rewards}`;
  if (j.outcome === 'b') return `${B} wins${rewards}`;
  if (j.unreadable) return `tie: no verdict could be read (${j.unreadable})`;
  if (j.inconsistent) return 'tie: the verdict flipped when the order was swapped (position bias)';
  return `tie${rewards}`;
}

/** The prompt rows of an evaluation with what each model answered and each pair's verdict, in file order. */
export function itemViews(items: readonly EvalItem[], results: readonly EvalResult[], duplicates: ReadonlySet<string>): EvalItemView[] {
  const answers = new Map<string, AnswerResult[]>();
  const verdicts = new Map<string, JudgeResult[]>();
  for (const r of results) {
    if (r.kind === 'answer') answers.set(r.itemId, [...(answers.get(r.itemId) ?? []), r]);
    else if (r.kind === 'judge') verdicts.set(r.itemId, [...(verdicts.get(r.itemId) ?? []), r]);
  }
  const out: EvalItemView[] = [];
  for (const it of items) {
    if (it.kind !== 'prompt') continue;
    const p = it.prompt;
    out.push({
      itemId: it.id,
      line: it.line,
      domain: p.domain,
      prompt: p.text,
      ...(p.gold !== undefined ? { gold: p.gold } : {}),
      duplicate: duplicates.has(it.id),
      answers: (answers.get(it.id) ?? []).map((a) => ({ model: a.model, text: a.text, check: checkLabel(a.check) })),
      verdicts: (verdicts.get(it.id) ?? []).map((j) => ({
        a: j.a,
        b: j.b,
        summary: verdictSummary(j),
        details: (j.orders ?? []).map((o) => ({
          title: `${evalModelLabel(o.first === 'a' ? j.a : j.b)} shown first as A: verdict ${o.verdict === null ? 'unreadable' : o.verdict === 'tie' ? 'tie' : `[[${o.verdict}]] (${evalModelLabel((o.verdict === 'A') === (o.first === 'a') ? j.a : j.b)})`}`,
          text: o.text,
        })),
      })),
    });
  }
  return out;
}

/**
 * The lines the tiers keep (the others blanked, so line numbers stay those of the file): SFT and
 * DPO records for the losses, prompt rows for answers (checked and/or judged), multiple-choice
 * rows for the guard. A line that does not parse is kept, for parseEvalItems to name.
 */
export function selectTierLines(text: string, tiers: EvalTiers): string {
  const keep: Record<EvalItemKind, boolean> = { sft: tiers.losses, dpo: tiers.losses, prompt: tiers.checkable || tiers.judge, choice: tiers.choices };
  return text
    .split(/\r\n|\n|\r/)
    .map((line, i) => {
      if (!line.trim()) return '';
      try {
        return keep[classifyEvalRow(JSON.parse(line), i + 1).kind] ? line : '';
      } catch {
        return line;
      }
    })
    .join('\n');
}

