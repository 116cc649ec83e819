import { describe, expect, it } from 'vitest';
import type { EvalItem } from './items';
import { buildPairwiseMessages, combineOrders, readPairwiseVerdict } from './pairwise-judge';
import { buildReport, reportMarkdown, type EvalReport, type ReportInput } from './report';
import { pairName, resultKey, type AnswerResult, type EvalResult, type JudgeResult } from './store';

// Expected numbers come from Python 3.11 / scipy 1.17 (the same computations as stats.test.ts):
// Wilson by formula with z = norm.ppf(0.975), McNemar as exact Fraction sums, the length-controlled
// rate by minimising the Firth-penalised likelihood with scipy.optimize.

const HASH = 'ab'.repeat(32);

function answer(model: string, itemId: string, nTokens: number, check: AnswerResult['check'] = null, text = 'x'.repeat(nTokens)): AnswerResult {
  return { key: resultKey('answer', model, itemId), kind: 'answer', model, itemId, text, nTokens, finishReason: 'eos', check };
}
const math = (model: string, itemId: string, correct: boolean, nTokens = 10) => answer(model, itemId, nTokens, { type: 'math', correct, extracted: null, detail: '' });

function promptItem(id: string, text: string): EvalItem {
  return { kind: 'prompt', id, line: 1, prompt: { id, text, domain: 'instruction' } } as EvalItem;
}

function input(models: string[], results: EvalResult[], extra: Partial<ReportInput> = {}): ReportInput {
  const ids = [...new Set(results.map((r) => r.itemId))];
  return { items: ids.map((id) => promptItem(id, `prompt ${id}`)), itemsHash: HASH, models, results, ...extra };
}

/** A simulated chat judge run through the real prompt, reader and order-combining code. */
type Judge = (shownA: string, shownB: string) => string;
function judgeAll(judge: Judge, a: string, b: string, answers: Map<string, AnswerResult>): JudgeResult[] {
  const out: JudgeResult[] = [];
  const ids = [...answers.values()].filter((r) => r.model === a).map((r) => r.itemId);
  for (const id of ids) {
    const A = answers.get(`${a}/${id}`)!.text;
    const B = answers.get(`${b}/${id}`)!.text;
    const ask = (x: string, y: string) => {
      const msg = buildPairwiseMessages({}, { messages: [{ role: 'user', content: `question ${id}` }], answerA: x, answerB: y })[0]!.content;
      // The simulated judge sees the two answers as the prompt shows them.
      const shownA = msg.split("[The Start of Assistant A's Answer]\n")[1]!.split("\n[The End of Assistant A's Answer]")[0]!;
      const shownB = msg.split("[The Start of Assistant B's Answer]\n")[1]!.split("\n[The End of Assistant B's Answer]")[0]!;
      return readPairwiseVerdict(judge(shownA, shownB)).verdict!;
    };
    const combined = combineOrders(ask(A, B), ask(B, A));
    out.push({ key: resultKey('judge', pairName(a, b), id), kind: 'judge', model: pairName(a, b), itemId: id, a, b, judge: 'sim', ...combined });
  }
  return out;
}

function answersOf(rows: { id: string; lenA: number; lenB: number; textA?: string; textB?: string }[]): { list: AnswerResult[]; map: Map<string, AnswerResult> } {
  const list = rows.flatMap((r) => [answer('base', r.id, r.lenA, null, r.textA ?? 'a'.repeat(r.lenA)), answer('sft', r.id, r.lenB, null, r.textB ?? 'b'.repeat(r.lenB))]);
  return { list, map: new Map(list.map((r) => [`${r.model}/${r.itemId}`, r])) };
}

/** Every number in the report is finite or null (JSON.stringify would silently turn NaN into null). */
function assertNoNaN(x: unknown, path = 'report'): void {
  if (typeof x === 'number') expect(Number.isFinite(x), `${path} = ${x}`).toBe(true);
  else if (Array.isArray(x)) x.forEach((v, i) => assertNoNaN(v, `${path}[${i}]`));
  else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) assertNoNaN(v, `${path}.${k}`);
}

describe('buildReport: math and McNemar', () => {
  // 6 math items: base right on 2, sft on the same 2 and 2 more.
  const results = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6'].flatMap((id, i) => [math('base', id, i < 2), math('sft', id, i < 4)]);
  const report = buildReport(input(['base', 'sft'], results));

  it('gives each model its accuracy and Wilson interval', () => {
    const b = report.results.base!.math!;
    expect(b).toMatchObject({ n: 6, correct: 2 });
    expect(b.accuracy).toBe(2 / 6);
    expect(b.ci95![0]).toBeCloseTo(0.09677141110578043, 14); // Python wilson(2, 6)
    expect(b.ci95![1]).toBeCloseTo(0.7000066848616079, 14);
    expect(report.results.sft!.math!.ci95![0]).toBeCloseTo(0.299993315138392, 14); // wilson(4, 6)
    expect(report.results.sft!.math!.ci95![1]).toBeCloseTo(0.9032285888942195, 14);
  });

  it('with 6 items a 2-item difference is not significant, and says why', () => {
    const m = report.pairwise[0]!.math!;
    expect(report.pairwise[0]).toMatchObject({ a: 'base', b: 'sft' });
    expect(m).toMatchObject({ n: 6, a_only: 0, b_only: 2, mcnemar_p: 0.5, significant: false }); // 2·(1/4) = 1/2 exactly
    expect(m.why).toBe('with 6 math item(s), a 2-item difference (sft alone right on 2, base alone on 0) is within chance (McNemar p = 0.50)');
    const md = reportMarkdown(report);
    expect(md).toContain('| base | sft | 2 / 0 (p = 0.50) **not significant** |');
    expect(md).toContain('- sft vs base, math: not significant: with 6 math item(s), a 2-item difference');
  });

  it('a 10-item one-sided difference is significant (p = 2/1024)', () => {
    const rs = Array.from({ length: 30 }, (_, i) => [math('base', `q${i}`, i >= 20), math('sft', `q${i}`, i >= 10)]).flat();
    const m = buildReport(input(['base', 'sft'], rs)).pairwise[0]!.math!;
    expect(m).toMatchObject({ n: 30, a_only: 0, b_only: 10, significant: true });
    expect(m.mcnemar_p).toBeCloseTo(0.001953125, 15); // Fraction 1/512
    expect(m.why).toMatch(/p = 0\.0020 < 0\.05$/);
  });

  it('pairs every model with every later one, and leaves a block out when its data is absent', () => {
    const rs = ['x', 'y'].flatMap((id) => [math('base', id, true), math('sft', id, false), math('dpo', id, true)]);
    const r = buildReport(input(['base', 'sft', 'dpo'], rs));
    expect(r.pairwise.map((p) => `${p.a}>${p.b}`)).toEqual(['base>sft', 'base>dpo', 'sft>dpo']);
    expect(r.pairwise[0]!.judge).toBeUndefined();
    expect(r.pairwise[0]!.code).toBeUndefined();
    expect(r.results.base!.code).toBeUndefined();
    expect(r.pairwise[1]!.math!.why).toBe('base and dpo got the same 2 math item(s) right and wrong, so there is no difference to test (McNemar p = 1)');
  });
});

describe('buildReport: likelihood metrics and code', () => {
  it('token-weighted SFT loss and perplexity, preference accuracy and margin, choice accuracy, code left out when unavailable', () => {
    const rs: EvalResult[] = [
      { key: 's1', kind: 'sft', model: 'base', itemId: 's1', logprobSum: -6, nTokens: 3 },
      { key: 's2', kind: 'sft', model: 'base', itemId: 's2', logprobSum: -2, nTokens: 1 },
      // margins: (−2/2) − (−6/3) = 1 (right); (−3/1) − (−4/2) = −1 (wrong); (−1/1) − (−3/3) = 0 (not right)
      { key: 'd1', kind: 'dpo', model: 'base', itemId: 'd1', chosen: { logprobSum: -2, nTokens: 2 }, rejected: { logprobSum: -6, nTokens: 3 } },
      { key: 'd2', kind: 'dpo', model: 'base', itemId: 'd2', chosen: { logprobSum: -3, nTokens: 1 }, rejected: { logprobSum: -4, nTokens: 2 } },
      { key: 'd3', kind: 'dpo', model: 'base', itemId: 'd3', chosen: { logprobSum: -1, nTokens: 1 }, rejected: { logprobSum: -3, nTokens: 3 } },
      { key: 'c1', kind: 'choice', model: 'base', itemId: 'c1', options: [], picked: 0, correct: true },
      { key: 'c2', kind: 'choice', model: 'base', itemId: 'c2', options: [], picked: 1, correct: false },
      answer('base', 'k1', 20, { type: 'code', passed: true, status: 'pass' }),
      answer('base', 'k2', 30, { type: 'code', passed: false, status: 'unavailable' }),
      answer('base', 'o1', 40),
    ];
    const r = buildReport(input(['base'], rs)).results.base!;
    expect(r.sft_loss).toEqual({ n: 2, tokens: 4, mean: 2, perplexity: Math.exp(2) });
    expect(r.pref_accuracy).toMatchObject({ n: 3, correct: 1, accuracy: 1 / 3, mean_margin: 0 });
    expect(r.choice_accuracy).toMatchObject({ n: 2, correct: 1, accuracy: 0.5 });
    expect(r.code).toMatchObject({ n: 1, correct: 1, accuracy: 1 });
    expect(r.mean_length).toBe(30); // (20 + 30 + 40) / 3: every answer counts for length
    expect(r.math).toBeUndefined();
  });

  it('pairs the forgetting guard and the preference pairs with the same McNemar test', () => {
    const choice = (model: string, itemId: string, correct: boolean): EvalResult => ({ key: `${model}/${itemId}`, kind: 'choice', model, itemId, options: [], picked: 0, correct });
    const dpo = (model: string, itemId: string, right: boolean): EvalResult => ({
      key: `${model}/${itemId}`, kind: 'dpo', model, itemId, chosen: { logprobSum: right ? -1 : -3, nTokens: 1 }, rejected: { logprobSum: -2, nTokens: 1 },
    });
    // 8 choice rows: base right on all, sft forgot 7 → a_only 7, p = 2/128 = 0.015625 (Fraction 1/64).
    const rs = Array.from({ length: 8 }, (_, i) => [choice('base', `c${i}`, true), choice('sft', `c${i}`, i === 0), dpo('base', `d${i}`, i < 4), dpo('sft', `d${i}`, i < 5)]).flat();
    const rep = buildReport(input(['base', 'sft'], rs));
    expect(rep.pairwise[0]!.choice).toMatchObject({ n: 8, a_only: 7, b_only: 0, mcnemar_p: 0.015625, significant: true });
    expect(rep.pairwise[0]!.pref).toMatchObject({ n: 8, a_only: 0, b_only: 1, mcnemar_p: 1, significant: false });
    expect(rep.results.sft!.pref_accuracy).toMatchObject({ n: 8, correct: 5, accuracy: 5 / 8 });
    const md = reportMarkdown(rep);
    expect(md).toContain('| 12.5% [2.2%–47.1%] (n=8); vs base: p = 0.016 |');
    expect(md).toContain('- sft vs base, multiple choice: significant: sft alone was right on 0 multiple-choice item(s) and base alone on 7: chance gives a split this uneven with p = 0.016 < 0.05.');
  });
});

describe('buildReport: the judge', () => {
  const rows = Array.from({ length: 40 }, (_, i) => {
    const lenA = 100 + ((i * 37) % 50);
    return { id: `p${i}`, lenA, lenB: lenA + (((i * 53) % 80) - 20 || 1) };
  });

  it('a judge that always prefers the first-shown answer: win rate exactly 0.5, 100% position bias', () => {
    const { list, map } = answersOf(rows);
    const judged = judgeAll(() => 'Assistant A is clearly better.\n[[A]]', 'base', 'sft', map);
    const j = buildReport(input(['base', 'sft'], [...list, ...judged])).pairwise[0]!.judge!;
    expect(j).toMatchObject({ n: 40, wins: 0, losses: 0, ties: 40, win_rate: 0.5, inconsistent: 1, significant: false });
    expect(j.why).toBe('all 40 judged item(s) are ties (40 because the verdict flipped with the order), so the judge prefers neither');
    expect(j.ci95![0]).toBeCloseTo(0.35199526933465386, 14); // Python wilson(20, 40)
    expect(j.lc_win_rate).toBeCloseTo(0.5, 9); // all ties: no preference at any length
  });

  it('a judge that always prefers the longer answer is exposed by the length-controlled rate', () => {
    const { list, map } = answersOf(rows);
    const judged = judgeAll((x, y) => (x.length >= y.length ? 'A is more detailed.\n[[A]]' : 'B is more detailed.\n[[B]]'), 'base', 'sft', map);
    const j = buildReport(input(['base', 'sft'], [...list, ...judged])).pairwise[0]!.judge!;
    // Consistent in both orders (length does not depend on position), so no position bias…
    expect(j).toMatchObject({ n: 40, wins: 33, losses: 7, ties: 0, inconsistent: 0, significant: true });
    expect(j.win_rate).toBe(0.825);
    // …but the raw rate is far from 0.5 while the length-controlled one is near it
    // (Python Firth fit on the same lengths: 0.5682541789251553).
    expect(j.lc_win_rate).toBeCloseTo(0.5682541789251553, 6);
    expect(Math.abs(j.lc_win_rate! - 0.5)).toBeLessThan(0.1);
    expect(Math.abs(j.win_rate! - 0.5)).toBeGreaterThan(0.3);
    expect(j.length_note).toBe(
      "answer length alone separates sft's wins from its losses (its answers were longer, relative to base's, on every item it won than on any it lost), so the judge's preference cannot be told apart from length; controlled for length the win rate is 56.8% (raw 82.5%), a weak estimate under such separation (Firth-penalised fit)",
    );
    const md = reportMarkdown(buildReport(input(['base', 'sft'], [...list, ...judged])));
    expect(md).toContain('| Model | Judge win rate vs base [95% CI] | Mean length (tokens) |');
    expect(md).toContain('| base | reference | 125.3 |'); // mean of 100 + (37i mod 50) over i < 40 = 125.25
    expect(md).toMatch(/\| sft \| 82\.5% \[68\.1%–91\.3%\]; LC 56\.8% \| \d+\.\d \|/);
    expect(md).toContain('| a | b | Judge: b wins / losses / ties | Win rate [95% CI] | LC win rate | Position bias |');
    expect(md).toContain('| base | sft | 33 / 7 / 0 | 82.5% [68.1%–91.3%] | 56.8% | 0.0% |');
    expect(md).toContain("- sft vs base, judge, length: answer length alone separates sft's wins from its losses");
  });

  it('a judge whose preference does not follow length keeps its rate when length is controlled', () => {
    // b's answer is the right one on 4 items in 5, whatever the lengths (mixed signs).
    const mixed = Array.from({ length: 40 }, (_, i) => {
      const lenA = 100 + ((i * 37) % 50);
      const lenB = lenA + ((i * 53) % 80) - 40;
      const bRight = i % 5 !== 0;
      return { id: `p${i}`, lenA, lenB, textA: (bRight ? 'W' : 'R').repeat(lenA), textB: (bRight ? 'R' : 'W').repeat(lenB) };
    });
    const { list, map } = answersOf(mixed);
    const judged = judgeAll((x) => (x.startsWith('R') ? '[[A]]' : '[[B]]'), 'base', 'sft', map);
    const j = buildReport(input(['base', 'sft'], [...list, ...judged])).pairwise[0]!.judge!;
    expect(j).toMatchObject({ wins: 32, losses: 8, win_rate: 0.8, significant: true });
    expect(j.lc_win_rate).toBeCloseTo(0.7803716621312432, 6); // Python Firth fit
    expect(j.length_note).toBeUndefined();
    expect(j.ci95![0]).toBeCloseTo(0.6524269365360051, 14); // wilson(32, 40)
  });

  it('n = 0 (every verdict unreadable): nulls and a reason, no NaN anywhere', () => {
    const { list } = answersOf(rows.slice(0, 3));
    const unread: JudgeResult[] = rows.slice(0, 3).map((r) => ({
      key: resultKey('judge', pairName('base', 'sft'), r.id), kind: 'judge', model: pairName('base', 'sft'), itemId: r.id, a: 'base', b: 'sft', judge: 'sim',
      outcome: 'tie', inconsistent: false, unreadable: readPairwiseVerdict('I cannot decide.').why!,
    }));
    const rep: EvalReport = buildReport(input(['base', 'sft'], [...list, ...unread, { key: 's', kind: 'sft', model: 'base', itemId: 's', logprobSum: 0, nTokens: 0 }]));
    const j = rep.pairwise[0]!.judge!;
    expect(j).toMatchObject({ n: 0, unreadable: 3, win_rate: null, ci95: null, inconsistent: null, lc_win_rate: null, significant: false });
    expect(j.why).toBe('no item has a readable verdict (3 could not be read), so there is no win rate');
    expect(rep.results.base!.sft_loss).toMatchObject({ mean: null, perplexity: null, why: 'the SFT records have no target tokens' });
    assertNoNaN(rep);
    expect(JSON.parse(JSON.stringify(rep))).toEqual(rep); // round-trips: nothing turned into null on the way
    const md = reportMarkdown(rep);
    expect(md).not.toMatch(/NaN|undefined|Infinity/);
    expect(md).toContain('judge: 3 verdict(s) could not be read and are left out.');
  });

  it('an empty result set still makes a report', () => {
    const rep = buildReport({ items: [], itemsHash: HASH, models: ['base', 'sft'], results: [] });
    expect(rep.results).toEqual({ base: {}, sft: {} });
    expect(rep.pairwise).toEqual([{ a: 'base', b: 'sft' }]);
    expect(reportMarkdown(rep)).toContain('No metric was measured');
  });

  it("reads only its models' results (a resumed store may hold more) and wants unique names", () => {
    const other: JudgeResult = { key: 'j', kind: 'judge', model: pairName('base', 'old'), itemId: 'q', a: 'base', b: 'old', judge: 'sim', outcome: 'b', inconsistent: false };
    const rep = buildReport(input(['base', 'sft'], [math('base', 'q', true), math('sft', 'q', false), math('old', 'q', true), other]));
    expect(Object.keys(rep.results)).toEqual(['base', 'sft']);
    expect(rep.pairwise).toHaveLength(1);
    expect(rep.pairwise[0]!.judge).toBeUndefined();
    expect(rep.pairwise[0]!.math).toMatchObject({ n: 1, a_only: 1, b_only: 0 });
    expect(() => buildReport(input(['a', 'a'], []))).toThrow(/model names must be unique \(got a, a\)/);
  });
});

describe('reportMarkdown', () => {
  it('a models × metrics table with intervals, the pairwise table, methods, hash and duplicates', () => {
    const rs = ['m1', 'm2', 'm3'].flatMap((id, i) => [math('base', id, i < 1, 12), math('sft|v2', id, i < 2, 20)]);
    const rep = buildReport(
      input(['base', 'sft|v2'], rs, {
        flagged: [{ id: 'm2', line: 2, text: 'What is\n2+2?' }],
        decoding: { maxNewTokens: 64, temperature: 0, seed: 0 },
        judge: null,
      }),
    );
    const md = reportMarkdown(rep);
    expect(md).toContain('| Model | Math accuracy [95% CI] | Mean length (tokens) |');
    expect(md).toContain('| base | 33.3% [6.1%–79.2%] (n=3) | 12.0 |');
    expect(md).toContain('| sft\\|v2 | 66.7% [20.8%–93.9%] (n=3); vs base: p = 1, **not significant** | 20.0 |');
    expect(md).toContain('| a | b | Math: b alone / a alone right (McNemar) |');
    expect(md).toContain('| base | sft\\|v2 | 1 / 0 (p = 1) **not significant** |');
    expect(md).toMatch(/Wilson score interval/);
    expect(md).toMatch(/exact McNemar test/);
    expect(md).toMatch(/ties counted half/);
    expect(md).toMatch(/Firth's bias-reduced penalty/);
    expect(md).toContain(`sha256 \`${HASH}\``);
    expect(md).toContain('Decoding, the same for every model: maxNewTokens = 64, temperature = 0, seed = 0.');
    expect(md).toContain('**1 eval prompt(s) repeat a training prompt**');
    expect(md).toContain('- line 2 (m2): What is 2+2?');
  });
});
