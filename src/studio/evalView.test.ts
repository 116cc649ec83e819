import { describe, expect, it } from 'vitest';
import { parseEvalItems } from '../eval/items';
import { buildReport } from '../eval/report';
import { pairName, resultKey, type AnswerResult, type EvalResult, type JudgeResult } from '../eval/store';
import { barCharts, evalModelLabel, exportFileName, formatDuration, itemViews, labelled, pairRows, resultsTable, selectTierLines, sentence, thinEvidence, THIN_ITEMS } from './evalView';

const answer = (model: string, itemId: string, correct: boolean, nTokens = 4): AnswerResult => ({
  key: resultKey('answer', model, itemId),
  kind: 'answer',
  model,
  itemId,
  text: correct ? 'The answer is 4.' : 'Five.',
  nTokens,
  finishReason: 'eos',
  check: { type: 'math', correct, extracted: correct ? '4' : '5', detail: '' },
});

const verdict = (a: string, b: string, itemId: string, outcome: JudgeResult['outcome'], extra: Partial<JudgeResult> = {}): JudgeResult => ({
  key: resultKey('judge', pairName(a, b), itemId),
  kind: 'judge',
  model: pairName(a, b),
  itemId,
  a,
  b,
  judge: 'test-judge',
  outcome,
  inconsistent: false,
  ...extra,
});

/** n math items: base right on `baseRight` of them, sft on `sftRight` (the first ones), the judge preferring sft on `sftWins`. */
function report(n: number, baseRight: number, sftRight: number, sftWins: number) {
  const ids = Array.from({ length: n }, (_, i) => `p${i}`);
  const results: EvalResult[] = [
    ...ids.map((id, i) => answer('base', id, i < baseRight)),
    ...ids.map((id, i) => answer('sft', id, i < sftRight)),
    ...ids.map((id, i) => verdict('base', 'sft', id, i < sftWins ? 'b' : 'a')),
  ];
  return buildReport({ items: [], itemsHash: 'h', models: ['base', 'sft'], results });
}

describe('evalView', () => {
  it('names models as the studio does', () => {
    expect(['base', 'sft', 'sft+dpo', 'sft-2+dpo', 'mine'].map(evalModelLabel)).toEqual(['Base', 'SFT', 'SFT+DPO', 'SFT-2+DPO', 'mine']);
    expect(sentence('with 6 items, it is within chance')).toBe('With 6 items, it is within chance.');
    expect(labelled('base and sft+dpo got the same items; sft alone on 2, base-line sft2 untouched', ['base', 'sft', 'sft+dpo'])).toBe(
      'Base and SFT+DPO got the same items; SFT alone on 2, base-line sft2 untouched.',
    );
  });

  it('a small difference on few items: the table says "not significant" with the report’s why, and the evidence is too thin', () => {
    const r = report(6, 2, 4, 4);
    const { columns, rows } = resultsTable(r);
    expect(columns.map((c) => c.id)).toEqual(['math', 'judge', 'mean_length']);
    const [base, sft] = rows;
    expect(base!.cells.math.text).toBe('33%');
    expect(base!.cells.math.note).toBe('');
    expect(sft!.cells.math.text).toBe('67%');
    // Wilson 95% for 4/6: [0.300, 0.903].
    expect(sft!.cells.math.detail).toBe('95% CI [30%, 90%] · 4 of 6 items');
    expect(sft!.cells.math.note).toBe('not significant vs Base');
    expect(sft!.cells.math.why).toMatch(/^With 6 math item\(s\), a 2-item difference .* within chance \(McNemar p = 0\.50\)\.$/);
    expect(sft!.cells.judge.text).toBe('67%');
    expect(sft!.cells.judge.note).toBe('not significant vs Base');
    expect(base!.cells.judge.text).toBe('—');
    const thin = thinEvidence(r);
    expect(thin[0]).toContain('too thin');
    expect(thin[0]).toContain('6 items');
    expect(thin[1]).toContain('No difference between the models is significant');
    const pairs = pairRows(r);
    expect(pairs).toHaveLength(1);
    expect(pairs[0]!.title).toBe('SFT vs Base');
    expect(pairs[0]!.lines.map((l) => [l.label, l.significant])).toEqual([['Math', false], ['Judge', false]]);
    expect(pairs[0]!.lines[0]!.text).toBe('SFT alone right on 2, Base alone on 0, of 6 items (exact McNemar p = 0.500)');
  });

  it('a large difference on many items is significant, and no thin-evidence warning is given', () => {
    const r = report(40, 5, 35, 36);
    const { rows } = resultsTable(r);
    expect(rows[1]!.cells.math.note).toBe('significant vs Base');
    expect(rows[1]!.cells.judge.note).toBe('significant vs Base');
    expect(thinEvidence(r)).toEqual([]);
    expect(THIN_ITEMS).toBeLessThanOrEqual(40);
  });

  it('bar charts carry each value with its interval as whisker lengths, the judge against 50%', () => {
    const r = report(6, 2, 4, 4);
    const charts = barCharts(r);
    expect(charts.map((c) => c.id)).toEqual(['math', 'judge']);
    const sft = charts[0]!.points[1]!;
    expect(sft.label).toBe('SFT');
    expect(sft.value).toBeCloseTo(66.667, 2);
    const [lo, hi] = r.results.sft!.math!.ci95!;
    expect(sft.value - sft.error[0]).toBeCloseTo(100 * lo, 6);
    expect(sft.value + sft.error[1]).toBeCloseTo(100 * hi, 6);
    expect(charts[1]!.reference).toBe(50);
    expect(charts[1]!.points.map((p) => p.model)).toEqual(['sft']);
  });

  it('a pair stored the other way round is read from the row model’s side', () => {
    // Reference is "base", but the pair is (sft, base): base's wins are sft's losses.
    const ids = ['p0', 'p1', 'p2', 'p3'];
    const results: EvalResult[] = [...ids.map((id) => answer('sft', id, true)), ...ids.map((id) => answer('base', id, false)), ...ids.map((id, i) => verdict('sft', 'base', id, i === 0 ? 'b' : 'a'))];
    const r = buildReport({ items: [], itemsHash: 'h', models: ['sft', 'base'], results });
    const { rows } = resultsTable(r);
    const sftRow = rows.find((x) => x.model === 'sft')!;
    // base won 1 of 4 → sft's win rate is 75%.
    expect(sftRow.cells.judge.text).toBe('75%');
    expect(barCharts(r).find((c) => c.id === 'judge')!.points[0]!.value).toBeCloseTo(75, 6);
  });

  it('lists each prompt row with every model’s answer, its check and each verdict in words', async () => {
    const set = await parseEvalItems(
      [JSON.stringify({ prompt: 'What is 2+2?', domain: 'math', gold: '4' }), JSON.stringify({ prompt: 'Q', choices: ['x', 'y'], answer: 0 }), JSON.stringify({ prompt: 'Say hi.' })].join('\n'),
    );
    const [math, , hi] = set.items;
    const results: EvalResult[] = [
      answer('base', math!.id, false),
      answer('sft', math!.id, true),
      verdict('base', 'sft', math!.id, 'tie', {
        inconsistent: true,
        orders: [
          { first: 'a', verdict: 'A', text: 'Reasoning… [[A]]' },
          { first: 'b', verdict: 'A', text: 'Reasoning… [[A]]' },
        ],
      }),
      verdict('base', 'sft', hi!.id, 'tie', { unreadable: 'no verdict line' }),
    ];
    const views = itemViews(set.items, results, new Set([hi!.id]));
    expect(views.map((v) => v.line)).toEqual([1, 3]);
    expect(views[0]!.gold).toBe('4');
    expect(views[0]!.answers.map((a) => [a.model, a.check])).toEqual([
      ['base', { ok: false, label: 'wrong (read 5)' }],
      ['sft', { ok: true, label: 'correct' }],
    ]);
    expect(views[0]!.verdicts[0]!.summary).toBe('tie: the verdict flipped when the order was swapped (position bias)');
    expect(views[0]!.verdicts[0]!.details.map((d) => d.title)).toEqual(['Base shown first as A: verdict [[A]] (Base)', 'SFT shown first as A: verdict [[A]] (SFT)']);
    expect(views[1]!.duplicate).toBe(true);
    expect(views[1]!.answers).toEqual([]);
    expect(views[1]!.verdicts[0]!.summary).toBe('tie: no verdict could be read (no verdict line)');
  });

  it('formats durations and export names', () => {
    expect([formatDuration(null), formatDuration(12.4), formatDuration(185), formatDuration(3720)]).toEqual([null, '12 s', '3 min 5 s', '1 h 02 min']);
    expect(exportFileName('folder:my model', '2026-12-06T07:01:02.345Z', 'md')).toBe('eval-folder-my-model-2026-12-06-07-01-02.md');
  });
});

describe('selectTierLines', () => {
  const text = [
    JSON.stringify({ prompt: 'What is 2+2?', domain: 'math', gold: '4' }),
    JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }),
    JSON.stringify({ prompt: 'Say hi.', chosen: 'Hi!', rejected: 'No.' }),
    JSON.stringify({ prompt: 'Q', choices: ['x', 'y'], answer: 0 }),
    '{oops',
  ].join('\n');
  const all = { losses: true, checkable: true, judge: true, choices: true };

  it('keeps the rows of the chosen tiers and blanks the rest, line numbers unchanged; a bad line stays for the parser to name', () => {
    expect(selectTierLines(text, all)).toBe(text);
    const lines = selectTierLines(text, { ...all, losses: false, choices: false }).split('\n');
    expect(lines.map((l) => (l ? JSON.parse(l.replace('{oops', '{}')) && 'kept' : ''))).toEqual(['kept', '', '', '', 'kept']);
    const onlyLosses = selectTierLines(text, { losses: true, checkable: false, judge: false, choices: false }).split('\n');
    expect(onlyLosses.map((l) => l !== '')).toEqual([false, true, true, false, true]);
  });
});
