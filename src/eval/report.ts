// The evaluation report (issue 13): eval.json (EvalReport) built from the per-item results an
// evaluation stored (store.ts), and eval.md (reportMarkdown) from it. Per model: math accuracy and
// code pass@1 with Wilson intervals, held-out SFT loss and perplexity, DPO preference accuracy and
// mean margin, multiple-choice accuracy, mean answer length. Per pair of models (a before b): an exact
// McNemar test on the math (and code) items both answered, and the judge's wins/losses/ties of b
// over a with the win rate's interval, position bias and the length-controlled win rate. Whatever
// is not significant says so, with one sentence of why; nothing is ever NaN (null and a reason).

import type { EvalItem, FlaggedItem } from './items';
import { ALPHA, excludes, lengthControlledWinRate, LC_METHOD, mcnemarExact, wilson, winRate, type Interval, type LengthItem } from './stats';
import type { AnswerResult, DpoResult, EvalResult, JudgeResult, SftResult } from './store';

/** A share of items right (math accuracy, code pass@1, multiple-choice accuracy). */
export interface RateBlock {
  n: number;
  correct: number;
  /** correct / n; null when n = 0 (why says so). */
  accuracy: number | null;
  ci95: Interval | null;
  why?: string;
}

export interface SftLossBlock {
  /** SFT records scored. */
  n: number;
  /** Target tokens over all records. */
  tokens: number;
  /** Mean negative log-likelihood per target token (token-weighted over records, as the training loss). */
  mean: number | null;
  /** exp(mean). */
  perplexity: number | null;
  why?: string;
}

export interface PrefBlock extends RateBlock {
  /** Mean over pairs of (chosen − rejected) mean log-prob per token. */
  mean_margin: number | null;
}

export interface ModelResults {
  math?: RateBlock;
  code?: RateBlock;
  sft_loss?: SftLossBlock;
  pref_accuracy?: PrefBlock;
  choice_accuracy?: RateBlock;
  /** Mean generated tokens per answer. */
  mean_length?: number;
}

/** Two models on the same checkable items. */
export interface McNemarBlock {
  /** Items both models answered. */
  n: number;
  /** Right under a, wrong under b. */
  a_only: number;
  b_only: number;
  /** Two-sided exact McNemar p; null when no item was answered by both. */
  mcnemar_p: number | null;
  significant: boolean;
  why: string;
}

/** The judge on b's answers against a's, from b's side: wins are b's. */
export interface JudgeBlock {
  /** Items with a readable verdict. */
  n: number;
  wins: number;
  losses: number;
  ties: number;
  /** (wins + ties/2) / n; null when n = 0. */
  win_rate: number | null;
  ci95: Interval | null;
  /** Share of the n items whose verdict flipped with the order (position bias); null when n = 0. */
  inconsistent: number | null;
  /** Length-controlled win rate (stats.ts LC_METHOD); null when n = 0. */
  lc_win_rate: number | null;
  significant: boolean;
  why: string;
  /** Said when the length-controlled rate tells a different story from the raw one. */
  length_note?: string;
  /** Items left out because the judge's verdict could not be read (in either order). */
  unreadable: number;
  mean_length_a: number | null;
  mean_length_b: number | null;
}

export interface PairwiseResult {
  a: string;
  b: string;
  math?: McNemarBlock;
  code?: McNemarBlock;
  /** Held-out DPO pairs each model ranks right (same McNemar test). */
  pref?: McNemarBlock;
  /** Multiple-choice rows (the forgetting guard; same McNemar test). */
  choice?: McNemarBlock;
  judge?: JudgeBlock;
}

export interface EvalReport {
  models: string[];
  results: Record<string, ModelResults>;
  pairwise: PairwiseResult[];
  eval_set: {
    /** sha256 of the canonical items, taken before any answer was generated. */
    sha256: string;
    items: number;
    /** Eval items whose prompt repeats a training prompt (a model may have memorised them). */
    duplicates: FlaggedItem[];
  };
  settings: {
    decoding: Record<string, unknown>;
    /** The judge's id (data/score.ts judgeSpecId), or null without one. */
    judge: string | null;
  };
  /** Each method in words (eval.md states them). */
  methods: Record<string, string>;
}

export interface ReportInput {
  items: readonly EvalItem[];
  itemsHash: string;
  /** In report order; pairs are (models[i], models[j]) for i < j, so b is the later (tuned) model. */
  models: readonly string[];
  results: readonly EvalResult[];
  flagged?: readonly FlaggedItem[];
  decoding?: Record<string, unknown>;
  judge?: string | null;
}

export const METHODS: Record<string, string> = {
  interval:
    'Proportions (accuracy, pass@1, preference accuracy, win rate) carry a 95% Wilson score interval, (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n) with z = 1.96, which stays inside [0, 1] and is honest at small n.',
  mcnemar:
    'Two models on the same checkable items (math, code, multiple-choice rows, DPO pairs) are compared by an exact McNemar test: only the items one model got right and the other wrong count, and p is the two-sided exact binomial probability of a split at least that uneven if each such item were a fair coin flip.',
  win_rate:
    "The judge's win rate is b's wins over a with ties counted half, (wins + ties/2) / n; its 95% interval is the Wilson interval of that share. A chat judge sees every item in both orders; a verdict that changes with the order counts as a tie, and the share of such items is reported as position bias. Items whose verdict could not be read are left out.",
  lc_win_rate: LC_METHOD,
  sft_loss: 'Held-out SFT loss is the mean negative log-likelihood per target token over all SFT records (token-weighted, as in training); perplexity is exp(loss).',
  pref_accuracy:
    'Preference accuracy is the share of held-out DPO pairs whose chosen answer has the higher mean log-probability per token (length-normalised) than the rejected one; the margin is the mean difference.',
  significance: `A difference is labelled "not significant" when its 95% interval includes no difference (0.5 for a win rate) or McNemar p ≥ ${ALPHA}.`,
};

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
// Two significant digits, so p = 0.049 never reads as 0.05.
const fmtP = (p: number) => (p >= 0.995 ? '1' : p.toPrecision(2));
const pEq = (p: number) => (p < 0.001 ? 'p < 0.001' : `p = ${fmtP(p)}`);
const interval = (ci: Interval) => `${pct(ci[0])}–${pct(ci[1])}`;

function rate(correct: number, n: number, what: string): RateBlock {
  if (n === 0) return { n, correct, accuracy: null, ci95: null, why: `no ${what} was scored` };
  return { n, correct, accuracy: correct / n, ci95: wilson(correct, n) };
}

function meanOf(xs: readonly number[]): number | null {
  return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : null;
}

/** A's and b's checks on the same items, as one McNemar block. */
function mcnemarBlock(a: string, b: string, right: (model: string) => Map<string, boolean>, what: string): McNemarBlock | undefined {
  const ra = right(a);
  const rb = right(b);
  if (ra.size === 0 || rb.size === 0) return undefined;
  let n = 0;
  let aOnly = 0;
  let bOnly = 0;
  for (const [id, okA] of ra) {
    const okB = rb.get(id);
    if (okB === undefined) continue;
    n++;
    if (okA && !okB) aOnly++;
    if (okB && !okA) bOnly++;
  }
  if (n === 0) return { n, a_only: 0, b_only: 0, mcnemar_p: null, significant: false, why: `no ${what} item was answered by both ${a} and ${b}, so there is nothing to compare` };
  const p = mcnemarExact(aOnly, bOnly);
  const sig = p < ALPHA;
  let why: string;
  if (aOnly + bOnly === 0) why = `${a} and ${b} got the same ${n} ${what} item(s) right and wrong, so there is no difference to test (McNemar p = 1)`;
  else if (!sig)
    why = `with ${n} ${what} item(s), a ${Math.abs(bOnly - aOnly)}-item difference (${b} alone right on ${bOnly}, ${a} alone on ${aOnly}) is within chance (McNemar ${pEq(p)})`;
  else why = `${b} alone was right on ${bOnly} ${what} item(s) and ${a} alone on ${aOnly}: chance gives a split this uneven with ${pEq(p)} < ${ALPHA}`;
  return { n, a_only: aOnly, b_only: bOnly, mcnemar_p: p, significant: sig, why };
}

function judgeBlock(a: string, b: string, judged: readonly JudgeResult[], lengthOf: (model: string, id: string) => number | undefined): JudgeBlock {
  let wins = 0;
  let losses = 0;
  let ties = 0;
  let flips = 0;
  let unreadable = 0;
  const lengths: LengthItem[] = [];
  for (const r of judged) {
    // An unreadable verdict is missing evidence, not a tie: left out (and counted).
    if (r.unreadable) {
      unreadable++;
      continue;
    }
    if (r.outcome === 'b') wins++;
    else if (r.outcome === 'a') losses++;
    else ties++;
    if (r.inconsistent) flips++;
    const la = lengthOf(a, r.itemId);
    const lb = lengthOf(b, r.itemId);
    if (la !== undefined && lb !== undefined) lengths.push({ outcome: r.outcome === 'b' ? 1 : r.outcome === 'a' ? 0 : 0.5, lengthA: la, lengthB: lb });
  }
  const n = wins + losses + ties;
  const mean_length_a = meanOf(lengths.map((l) => l.lengthA));
  const mean_length_b = meanOf(lengths.map((l) => l.lengthB));
  const base = { n, wins, losses, ties, unreadable, mean_length_a, mean_length_b };
  const wr = winRate({ wins, losses, ties });
  if (!wr)
    return {
      ...base,
      win_rate: null,
      ci95: null,
      inconsistent: null,
      lc_win_rate: null,
      significant: false,
      why: `no item has a readable verdict${unreadable ? ` (${unreadable} could not be read)` : ''}, so there is no win rate`,
    };
  const lc = lengthControlledWinRate(lengths);
  const sig = excludes(wr.ci95, 0.5);
  const why = sig
    ? `${b}'s win rate over ${a}, ${pct(wr.rate)}, has a 95% interval (${interval(wr.ci95)}) that excludes 50% (no preference)`
    : ties === n
      ? `all ${n} judged item(s) are ties${flips ? ` (${flips} because the verdict flipped with the order)` : ''}, so the judge prefers neither`
      : `with ${n} judged item(s), ${b}'s win rate over ${a}, ${pct(wr.rate)}, has a 95% interval (${interval(wr.ci95)}) that includes 50%, so it is within chance`;
  const block: JudgeBlock = { ...base, win_rate: wr.rate, ci95: wr.ci95, inconsistent: flips / n, lc_win_rate: lc ? lc.rate : null, significant: sig, why };
  // The judge's preference follows length when controlling for it moves a clear preference (10+ points
  // from 50%) at least half the way back to 50%, or past it.
  const raw = wr.rate - 0.5;
  const ctl = lc ? lc.rate - 0.5 : raw;
  if (lc && Math.abs(raw) >= 0.1 && (Math.sign(ctl) !== Math.sign(raw) || Math.abs(ctl) < Math.abs(raw) / 2))
    block.length_note = `controlled for answer length the win rate is ${pct(lc.rate)} (raw ${pct(wr.rate)}): much of the judge's preference follows answer length (${b} ${mean_length_b?.toFixed(0)} vs ${a} ${mean_length_a?.toFixed(0)} tokens on average)`;
  // Length alone splits wins from losses: say so whatever the rates (the LC rate is then weakly determined).
  if (lc?.separated)
    block.length_note = `answer length alone separates ${b}'s wins from its losses (its answers were ${lc.lengthCoef >= 0 ? 'longer' : 'shorter'}, relative to ${a}'s, on every item it won than on any it lost), so the judge's preference cannot be told apart from length; controlled for length the win rate is ${pct(lc.rate)} (raw ${pct(wr.rate)}), a weak estimate under such separation (Firth-penalised fit)`;
  return block;
}

/**
 * The report of an evaluation from its stored per-item results. Only results of `models` are read
 * (a judge result by its pair (a, b), a before b in `models`); others in the list are ignored.
 */
export function buildReport(input: ReportInput): EvalReport {
  const models = [...input.models];
  if (new Set(models).size !== models.length) throw new Error(`buildReport: model names must be unique (got ${models.join(', ')})`);
  const by = <K extends EvalResult['kind']>(kind: K, model: string) => input.results.filter((r): r is Extract<EvalResult, { kind: K }> => r.kind === kind && r.model === model);
  const answers = new Map<string, Map<string, AnswerResult>>(models.map((m) => [m, new Map(by('answer', m).map((r) => [r.itemId, r]))]));
  // Per model, each checkable item right or wrong: the accuracies and the paired McNemar tests read these.
  type Paired = 'math' | 'code' | 'pref' | 'choice';
  const margin = (r: DpoResult) => r.chosen.logprobSum / r.chosen.nTokens - r.rejected.logprobSum / r.rejected.nTokens;
  const right = (kind: Paired) => (model: string) => {
    const out = new Map<string, boolean>();
    if (kind === 'math' || kind === 'code')
      for (const r of answers.get(model)!.values()) {
        const c = r.check;
        if (c?.type === 'math' && kind === 'math') out.set(r.itemId, c.correct);
        // A language the sandbox could not run is no evidence either way: left out of pass@1.
        if (c?.type === 'code' && kind === 'code' && c.status !== 'unavailable') out.set(r.itemId, c.passed);
      }
    // A pair with no tokens on a side has no per-token log-prob: left out.
    if (kind === 'pref') for (const r of by('dpo', model)) if (r.chosen.nTokens > 0 && r.rejected.nTokens > 0) out.set(r.itemId, margin(r) > 0);
    if (kind === 'choice') for (const r of by('choice', model)) out.set(r.itemId, r.correct);
    return out;
  };
  const rateOf = (m: Map<string, boolean>, what: string) => rate([...m.values()].filter(Boolean).length, m.size, what);

  const results: Record<string, ModelResults> = {};
  for (const m of models) {
    const res: ModelResults = {};
    const math = right('math')(m);
    if (math.size) res.math = rateOf(math, 'math item');
    const code = right('code')(m);
    if (code.size) res.code = rateOf(code, 'code item');
    const sft: SftResult[] = by('sft', m);
    if (sft.length) {
      const tokens = sft.reduce((s, r) => s + r.nTokens, 0);
      const nll = -sft.reduce((s, r) => s + r.logprobSum, 0);
      res.sft_loss =
        tokens > 0
          ? { n: sft.length, tokens, mean: nll / tokens, perplexity: Math.exp(nll / tokens) }
          : { n: sft.length, tokens, mean: null, perplexity: null, why: 'the SFT records have no target tokens' };
    }
    if (by('dpo', m).length) {
      const margins = by('dpo', m).filter((r) => r.chosen.nTokens > 0 && r.rejected.nTokens > 0).map(margin);
      res.pref_accuracy = { ...rateOf(right('pref')(m), 'DPO pair with tokens on both sides'), mean_margin: meanOf(margins) };
    }
    const choice = right('choice')(m);
    if (choice.size) res.choice_accuracy = rateOf(choice, 'multiple-choice row');
    const lens = [...answers.get(m)!.values()].map((r) => r.nTokens);
    if (lens.length) res.mean_length = meanOf(lens)!;
    results[m] = res;
  }

  // A store may hold results for models this report leaves out (a resumed store keeps every model
  // it has seen): pairs are matched by name, so those are simply not read.
  const judged = input.results.filter((r): r is JudgeResult => r.kind === 'judge');

  const lengthOf = (model: string, id: string) => answers.get(model)!.get(id)?.nTokens;
  const pairwise: PairwiseResult[] = [];
  for (let i = 0; i < models.length; i++)
    for (let j = i + 1; j < models.length; j++) {
      const a = models[i]!;
      const b = models[j]!;
      const pr: PairwiseResult = { a, b };
      for (const [kind, what] of [['math', 'math'], ['code', 'code'], ['pref', 'DPO-pair'], ['choice', 'multiple-choice']] as const) {
        const block = mcnemarBlock(a, b, right(kind), what);
        if (block) pr[kind] = block;
      }
      const pj = judged.filter((r) => r.a === a && r.b === b);
      if (pj.length) pr.judge = judgeBlock(a, b, pj, lengthOf);
      pairwise.push(pr);
    }

  return {
    models,
    results,
    pairwise,
    eval_set: { sha256: input.itemsHash, items: input.items.length, duplicates: [...(input.flagged ?? [])] },
    settings: { decoding: input.decoding ?? {}, judge: input.judge ?? null },
    methods: METHODS,
  };
}

// ---------------------------------------------------------------------------------------------
// eval.md

/** A table cell: no pipes or line breaks from a model name or a prompt. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const rateCell = (r: RateBlock | undefined) => (!r ? '–' : r.accuracy === null ? `– (${r.why})` : `${pct(r.accuracy)} [${interval(r.ci95!)}] (n=${r.n})`);
const NS = '**not significant**';

/** eval.md: the models × metrics table (shaped like FuseChat-3.0's), the pairwise table, each "why", the methods, the eval set. */
export function reportMarkdown(report: EvalReport): string {
  const out: string[] = ['# Evaluation', ''];
  const { models, results } = report;
  // Each later model is also read against the first (the base), as the paper's table is.
  const first = models[0];
  const vsFirst = (m: string) => (m === first ? undefined : report.pairwise.find((p) => p.a === first && p.b === m));
  const mcSuffix = (x: McNemarBlock | undefined) => (!x || x.mcnemar_p === null ? '' : `; vs ${first}: ${pEq(x.mcnemar_p)}${x.significant ? '' : `, ${NS}`}`);
  const judgeCell = (m: string) => {
    const j = vsFirst(m)?.judge;
    if (m === first) return 'reference';
    if (!j || j.win_rate === null) return '–';
    return `${pct(j.win_rate)} [${interval(j.ci95!)}]${j.significant ? '' : ` ${NS}`}${j.lc_win_rate !== null ? `; LC ${pct(j.lc_win_rate)}` : ''}`;
  };
  const cols: [string, (m: string, r: ModelResults) => string, (m: string, r: ModelResults) => boolean][] = [
    ['Math accuracy [95% CI]', (m, r) => rateCell(r.math) + (r.math ? mcSuffix(vsFirst(m)?.math) : ''), (_m, r) => !!r.math],
    ['Code pass@1 [95% CI]', (m, r) => rateCell(r.code) + (r.code ? mcSuffix(vsFirst(m)?.code) : ''), (_m, r) => !!r.code],
    ['SFT loss (perplexity)', (_m, r) => (!r.sft_loss ? '–' : r.sft_loss.mean === null ? `– (${r.sft_loss.why})` : `${r.sft_loss.mean.toFixed(3)} (${r.sft_loss.perplexity!.toFixed(2)}), n=${r.sft_loss.n}`), (_m, r) => !!r.sft_loss],
    ['Preference accuracy [95% CI]', (m, r) => rateCell(r.pref_accuracy) + (r.pref_accuracy?.mean_margin != null ? `, margin ${r.pref_accuracy.mean_margin.toFixed(3)}` : '') + (r.pref_accuracy ? mcSuffix(vsFirst(m)?.pref) : ''), (_m, r) => !!r.pref_accuracy],
    ['Multiple-choice accuracy [95% CI]', (m, r) => rateCell(r.choice_accuracy) + (r.choice_accuracy ? mcSuffix(vsFirst(m)?.choice) : ''), (_m, r) => !!r.choice_accuracy],
    [`Judge win rate vs ${first} [95% CI]`, (m) => judgeCell(m), (m) => !!vsFirst(m)?.judge],
    ['Mean length (tokens)', (_m, r) => (r.mean_length === undefined ? '–' : r.mean_length.toFixed(1)), (_m, r) => r.mean_length !== undefined],
  ];
  const shown = cols.filter(([, , has]) => models.some((m) => has(m, results[m]!)));
  out.push('## Results', '');
  if (shown.length === 0) out.push('No metric was measured (the eval set has no rows of a kind the models were scored on).');
  else {
    out.push(`| Model | ${shown.map(([h]) => cell(h)).join(' | ')} |`, `|---|${shown.map(() => '---|').join('')}`);
    for (const m of models) out.push(`| ${cell(m)} | ${shown.map(([, f]) => cell(f(m, results[m]!))).join(' | ')} |`);
  }

  if (report.pairwise.length) {
    out.push('', '## Pairwise (b against a)', '');
    const mc = (x: McNemarBlock | undefined) => (!x ? '–' : x.mcnemar_p === null ? '–' : `${x.b_only} / ${x.a_only} (${pEq(x.mcnemar_p)})${x.significant ? '' : ` ${NS}`}`);
    const wr = (j: JudgeBlock | undefined) => (!j || j.win_rate === null ? '–' : `${pct(j.win_rate)} [${interval(j.ci95!)}]${j.significant ? '' : ` ${NS}`}`);
    const tests = [
      ['math', 'Math'],
      ['code', 'Code'],
      ['pref', 'Preference'],
      ['choice', 'Multiple choice'],
    ] as const;
    const pcols: [string, (p: PairwiseResult) => string][] = [
      ...tests.filter(([k]) => report.pairwise.some((p) => p[k])).map(([k, label]): [string, (p: PairwiseResult) => string] => [`${label}: b alone / a alone right (McNemar)`, (p) => mc(p[k])]),
    ];
    if (report.pairwise.some((p) => p.judge))
      pcols.push(
        ['Judge: b wins / losses / ties', (p) => (p.judge ? `${p.judge.wins} / ${p.judge.losses} / ${p.judge.ties}` : '–')],
        ['Win rate [95% CI]', (p) => wr(p.judge)],
        ['LC win rate', (p) => (p.judge?.lc_win_rate != null ? pct(p.judge.lc_win_rate) : '–')],
        ['Position bias', (p) => (p.judge?.inconsistent != null ? pct(p.judge.inconsistent) : '–')],
      );
    if (pcols.length === 0) out.push('No paired measurement (no checkable items, DPO pairs, multiple-choice rows or judge).');
    else {
      out.push(`| a | b | ${pcols.map(([h]) => h).join(' | ')} |`, `|---|---|${pcols.map(() => '---|').join('')}`);
      for (const p of report.pairwise) out.push(`| ${cell(p.a)} | ${cell(p.b)} | ${pcols.map(([, f]) => f(p)).join(' | ')} |`);
    }
    out.push('');
    for (const p of report.pairwise) {
      const lines: string[] = [];
      for (const [k, label] of tests) {
        const x = p[k];
        if (x) lines.push(`${label.toLowerCase()}: ${x.significant ? 'significant' : 'not significant'}: ${x.why}.`);
      }
      if (p.judge) {
        lines.push(`judge: ${p.judge.significant ? 'significant' : 'not significant'}: ${p.judge.why}.`);
        if (p.judge.length_note) lines.push(`judge, length: ${p.judge.length_note}.`);
        if (p.judge.unreadable) lines.push(`judge: ${p.judge.unreadable} verdict(s) could not be read and are left out.`);
      }
      for (const l of lines) out.push(`- ${cell(p.b)} vs ${cell(p.a)}, ${l}`);
    }
  }

  out.push('', '## Methods', '');
  for (const v of Object.values(report.methods)) out.push(`- ${v}`);

  const es = report.eval_set;
  out.push('', '## Eval set', '', `${es.items} item(s), sha256 \`${es.sha256}\` (taken before any answer was generated).`);
  const dec = Object.entries(report.settings.decoding);
  if (dec.length) out.push(`Decoding, the same for every model: ${dec.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')}.`);
  if (report.settings.judge) out.push(`Judge: \`${report.settings.judge}\`.`);
  if (es.duplicates.length) {
    out.push('', `**${es.duplicates.length} eval prompt(s) repeat a training prompt** (a model may have memorised them):`, '');
    for (const d of es.duplicates) out.push(`- line ${d.line} (${cell(d.id)}): ${cell(d.text.length > 120 ? `${d.text.slice(0, 117)}…` : d.text)}`);
  } else out.push('No eval prompt repeats a training prompt.');
  return out.join('\n') + '\n';
}
