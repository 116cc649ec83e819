import { describe, expect, it } from 'vitest';
import {
  buildDatasets,
  DEFAULT_REWARD_GAP,
  dpoRowsToRecords,
  responseId,
  sftRowsToRecords,
  type ConstructInput,
  type Override,
  type PromptReport,
  type ScoredResponse,
} from './construct';
import type { Domain, Prompt } from './prompts';
import { parseDpoJsonl, parseSftJsonl, writeFuseChatDpoJsonl, writeFuseChatSftJsonl, writeTrlDpoJsonl, writeTrlSftJsonl } from './records';

const P = (id: string, domain: Domain, system?: string): Prompt => ({ id, text: `prompt ${id}`, domain, ...(system ? { system } : {}) });

interface Opt {
  correct?: boolean;
  passed?: boolean;
  error?: string;
  text?: string;
}

/** A response `<promptId>/<source>/<i>` with its score. */
function R(promptId: string, source: string, i: number, score: number | null, o: Opt = {}): ScoredResponse {
  const response = { promptId, sourceId: source, sampleIndex: i, content: o.text ?? `answer ${promptId}/${source}/${i}`, ...(o.error ? { error: o.error } : {}) };
  return { response, score: { score, ...(o.correct !== undefined ? { correct: o.correct } : {}), ...(o.passed !== undefined ? { passed: o.passed } : {}) } };
}

const id = (promptId: string, source: string, i: number) => responseId({ promptId, sourceId: source, sampleIndex: i });

function reportOf(result: ReturnType<typeof buildDatasets>, promptId: string): PromptReport {
  const r = result.report.prompts.find((p) => p.promptId === promptId);
  if (!r) throw new Error(`no report for ${promptId}`);
  return r;
}

/** A response scored by a reward model: raw reward and its [0, 1] score. */
function RR(promptId: string, source: string, i: number, raw: number, score: number): ScoredResponse {
  return { response: { promptId, sourceId: source, sampleIndex: i, content: `answer ${promptId}/${source}/${i}` }, score: { score, judge: { raw } } };
}

describe('the default window of a run-fitted reward model', () => {
  // fuse-studio serve's /pooling likelihood rewards (mean log-probability per token) of the demo
  // model's answers: six prompts, five answers each from one source, as the studio's defaults ask
  // (measured: the e2e full flow's run). Rewards vary about as much within a prompt as between.
  const measured = [
    [-11.777, -11.737, -11.676, -11.73, -11.677],
    [-11.686, -11.689, -11.745, -11.709, -11.725],
    [-11.748, -11.648, -11.681, -11.749, -11.724],
    [-11.738, -11.652, -11.735, -11.702, -11.71],
    [-11.68, -11.691, -11.77, -11.698, -11.687],
    [-11.73, -11.75, -11.704, -11.733, -11.729],
  ];
  const prompts = measured.map((_, k) => P(`q${k}`, 'instruction'));
  const responses = measured.flatMap((row, k) => row.map((raw, i) => RR(`q${k}`, 'serve', i, raw, 0.5)));

  it('keeps pairs of five answers from one source; the earlier [0.1, 1]σ dropped them all as too wide', () => {
    const kept = buildDatasets({ prompts, responses, settings: { instructionSftFraction: 0, instructionGap: { ...DEFAULT_REWARD_GAP } } });
    expect(kept.report.gapWindows.instruction).toMatchObject({ min: 0.3, max: 3, unit: 'std' });
    expect(kept.dpo.length).toBeGreaterThanOrEqual(4);
    expect(kept.report.warnings).toEqual([]);
    const old = buildDatasets({ prompts, responses, settings: { instructionSftFraction: 0, instructionGap: { min: 0.1, max: 1, unit: 'std' } } });
    expect(old.dpo).toEqual([]);
    expect(old.report.counts['dpo.dropped.gap_too_large']).toBe(6);
  });
});

describe('gap windows in the scorer\'s units', () => {
  // Skywork-Reward-V2-like rewards: unbounded logits, several units apart. Their [0, 1] scores
  // under a fixed clamp (the old default for reward endpoints) are all 0 or 1.
  const prompts = ['p1', 'p2', 'p3'].map((k) => P(k, 'instruction'));
  const raws: [string, string, number, number][] = [
    ['p1', 'A', 0, 4.1],
    ['p1', 'A', 1, 6.3], // A: gap 2.2
    ['p1', 'B', 0, -3.0],
    ['p1', 'B', 1, 9.5], // B: gap 12.5
    ['p2', 'A', 0, 2.0],
    ['p2', 'A', 1, 2.05], // gap 0.05: a near-tie
    ['p3', 'A', 0, -7.5],
    ['p3', 'A', 1, -4.0], // gap 3.5
  ];
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  const responses = raws.map(([p, src, i, raw]) => RR(p, src, i, raw, clamp(raw)));
  const base = { instructionSftFraction: 0 };
  const std = Math.sqrt(raws.reduce((a, r) => a + (r[3] - raws.reduce((m, q) => m + q[3], 0) / raws.length) ** 2, 0) / raws.length);

  it("the paper's [0.01, 0.1] window in [0, 1] units drops every pair of clamped rewards, and the report says so, naming the window", () => {
    const r = buildDatasets({ prompts, responses, settings: base });
    expect(r.dpo).toEqual([]);
    expect(r.report.gapWindows.instruction).toEqual({ min: 0.01, max: 0.1, unit: 'score', compares: 'score', bounds: { min: 0.01, max: 0.1 } });
    expect(r.report.warnings).toEqual([
      'instruction: the DPO gap window [0.01, 0.1] in [0, 1] score units dropped all 4 same-source pair(s) it judged (their gaps: 0 to 1 score); ' +
        'no instruction DPO pair was built — set the window in the scorer\'s units (construct instructionGap {min, max, unit: "score" | "raw" | "std"})',
    ]);
  });

  it('a window in raw units compares raw rewards; in std units, multiples of their standard deviation', () => {
    const raw = buildDatasets({ prompts, responses, settings: { ...base, instructionGap: { min: 1, max: 4, unit: 'raw' } } });
    expect(raw.dpo.map((d) => [d.promptId, d.chosen.sourceId, d.gap, d.gapUnit])).toEqual([
      ['p1', 'A', expect.closeTo(2.2), 'raw'],
      ['p3', 'A', expect.closeTo(3.5), 'raw'],
    ]);
    expect(reportOf(raw, 'p2').dpo.reason).toBe('gap_too_small');
    expect(raw.report.warnings).toEqual([]);
    expect(raw.dpo[0]!.chosen).toMatchObject({ raw: 6.3, score: 1 });

    // [0.1, 1]×σ: σ of the eight rewards (about 5.2) → [0.52, 5.2]: the near-tie and B's 12.5 are out.
    const rel = buildDatasets({ prompts, responses, settings: { ...base, instructionGap: { min: 0.1, max: 1, unit: 'std' } } });
    expect(rel.report.gapWindows.instruction).toEqual({ min: 0.1, max: 1, unit: 'std', compares: 'raw', std: expect.closeTo(std, 12), bounds: { min: expect.closeTo(0.1 * std, 12), max: expect.closeTo(std, 12) } });
    expect(rel.dpo.map((d) => d.promptId)).toEqual(['p1', 'p3']);
    expect(reportOf(rel, 'p1').dpo.sources.find((x) => x.sourceId === 'B')).toMatchObject({ reason: 'gap_too_large', gap: expect.closeTo(12.5) });
    // σ given by the caller (the whole run's) wins over the one of the responses at hand.
    const given = buildDatasets({ prompts, responses, settings: { ...base, instructionGap: { min: 0.1, max: 1, unit: 'std' }, rewardStd: 1 } });
    expect(given.dpo.map((d) => d.promptId)).toEqual([]);
    expect(given.report.warnings[0]).toMatch(/^instruction: the DPO gap window \[0\.1, 1\]×σ of the run's raw rewards \(σ 1 → \[0\.1, 1\] raw\) dropped all 4/);
  });

  it('equal scores rank by raw reward; every reward equal (σ 0) keeps no pair and says why', () => {
    const tied = [RR('p1', 'A', 0, 3, 1), RR('p1', 'A', 1, 5, 1)];
    const r = buildDatasets({ prompts: [prompts[0]!], responses: tied, settings: { ...base, instructionGap: { min: 1, max: 3, unit: 'raw' } } });
    expect(r.dpo[0]).toMatchObject({ chosen: { raw: 5 }, rejected: { raw: 3 }, gap: 2 });
    const flat = [RR('p1', 'A', 0, 3, 0.5), RR('p1', 'A', 1, 3, 0.5)];
    const f = buildDatasets({ prompts: [prompts[0]!], responses: flat, settings: { ...base, instructionGap: { min: 0.1, max: 1, unit: 'std' } } });
    expect(f.dpo).toEqual([]);
    expect(f.report.warnings[0]).toMatch(/every raw reward of the run is equal \(σ 0\)/);
  });
});

describe('instruction pairs (all prompts on the DPO side)', () => {
  const prompts = ['ok', 'small', 'large', 'errors', 'none', 'single', 'unscored', 'multi', 'tie', 'bounds', 'lo', 'cross'].map((k) => P(k, 'instruction'));
  const responses: ScoredResponse[] = [
    R('ok', 'A', 0, 0.5),
    R('ok', 'A', 1, 0.55),
    R('ok', 'A', 2, 0.58),
    R('ok', 'B', 0, 0.9),
    R('ok', 'B', 1, 0.2), // B's gap 0.7 is too large; A's 0.08 is kept
    R('small', 'A', 0, 0.5),
    R('small', 'A', 1, 0.505),
    R('large', 'A', 0, 0.9),
    R('large', 'A', 1, 0.1),
    R('errors', 'A', 0, null, { error: 'HTTP 500' }),
    R('errors', 'B', 0, 0.7, { text: '   ' }), // empty text counts as unusable
    R('single', 'A', 0, 0.5),
    R('single', 'B', 0, 0.56),
    R('unscored', 'A', 0, null),
    R('unscored', 'A', 1, null),
    R('multi', 'A', 0, 0.6),
    R('multi', 'A', 1, 0.65), // gap 0.05
    R('multi', 'B', 0, 0.5),
    R('multi', 'B', 1, 0.59), // gap 0.09: largest valid gap wins
    R('tie', 'A', 0, 0.6),
    R('tie', 'A', 1, 0.65),
    R('tie', 'B', 0, 0.6),
    R('tie', 'B', 1, 0.65), // same gap, same chosen score → source order (A)
    R('bounds', 'A', 0, 0.5),
    R('bounds', 'A', 1, 0.6), // 0.6 - 0.5 = 0.09999999999999998: inclusive upper bound
    R('lo', 'A', 0, 0.5),
    R('lo', 'A', 1, 0.51), // 0.01: inclusive lower bound
    R('cross', 'A', 0, 0.5),
    R('cross', 'B', 0, 0.55), // a valid gap, but across sources: no pair
  ];
  const input: ConstructInput = { prompts, responses, settings: { instructionSftFraction: 0 } };
  const result = buildDatasets(input);

  it('keeps same-source pairs whose gap is in [0.01, 0.1] and says why the others were dropped', () => {
    const dpo = Object.fromEntries(result.dpo.map((r) => [r.promptId, r]));
    expect(Object.keys(dpo).sort()).toEqual(['bounds', 'lo', 'multi', 'ok', 'tie']);
    expect(dpo.ok.chosen.responseId).toBe(id('ok', 'A', 2));
    expect(dpo.ok.rejected.responseId).toBe(id('ok', 'A', 0));
    expect(dpo.ok.gap).toBeCloseTo(0.08);
    expect(dpo.ok.prompt).toEqual([{ role: 'user', content: 'prompt ok' }]);
    expect(dpo.multi.chosen.sourceId).toBe('B');
    expect(dpo.multi.rejected.sourceId).toBe('B');
    expect(dpo.tie.chosen.sourceId).toBe('A');
    const reason = (k: string) => reportOf(result, k).dpo.reason;
    expect(reason('small')).toBe('gap_too_small');
    expect(reason('large')).toBe('gap_too_large');
    expect(reason('errors')).toBe('errors_only');
    expect(reason('none')).toBe('no_responses');
    expect(reason('single')).toBe('single_response');
    expect(reason('unscored')).toBe('unscored');
    expect(reason('cross')).toBe('single_response');
    expect(reportOf(result, 'ok').dpo.sources).toEqual([
      { sourceId: 'A', usable: 3, chosenId: id('ok', 'A', 2), rejectedId: id('ok', 'A', 0), gap: expect.closeTo(0.08) },
      { sourceId: 'B', usable: 2, reason: 'gap_too_large', gap: expect.closeTo(0.7) },
    ]);
    expect(result.report.counts).toMatchObject({
      prompts: 12,
      'split.dpo': 12,
      'dpo.kept': 5,
      'dpo.dropped.gap_too_small': 1,
      'dpo.dropped.gap_too_large': 1,
      'dpo.dropped.errors_only': 1,
      'dpo.dropped.no_responses': 1,
      'dpo.dropped.single_response': 2,
      'dpo.dropped.unscored': 1,
      'sft.dropped.dpo_split': 12,
    });
    expect(result.sft).toEqual([]);
  });

  it('uses the configured gap window', () => {
    const wide = buildDatasets({ ...input, settings: { instructionSftFraction: 0, instructionGap: { min: 0, max: 1 } } });
    expect(wide.dpo.map((r) => r.promptId)).toEqual(['ok', 'small', 'large', 'multi', 'tie', 'bounds', 'lo']);
    // with no window, "ok" takes B's pair (largest gap 0.7)
    expect(wide.dpo[0].chosen.sourceId).toBe('B');
    const none = buildDatasets({ ...input, settings: { instructionSftFraction: 0, instructionGap: null } });
    expect(none.dpo).toHaveLength(7);
  });

  it('picks the highest-scored response for SFT (all prompts on the SFT side)', () => {
    const sft = buildDatasets({ ...input, settings: { instructionSftFraction: 1 } });
    const rows = Object.fromEntries(sft.sft.map((r) => [r.promptId, r]));
    expect(rows.ok.response.responseId).toBe(id('ok', 'B', 0)); // 0.9, across sources
    expect(rows.ok.messages).toEqual([
      { role: 'user', content: 'prompt ok' },
      { role: 'assistant', content: 'answer ok/B/0' },
    ]);
    expect(rows.cross.response.sourceId).toBe('B');
    expect(rows.tie.response.responseId).toBe(id('tie', 'A', 1)); // tie on 0.65 → source order
    expect(reportOf(sft, 'errors').sft.reason).toBe('errors_only');
    expect(reportOf(sft, 'none').sft.reason).toBe('no_responses');
    expect(reportOf(sft, 'unscored').sft.reason).toBe('unscored');
    expect(reportOf(sft, 'ok').dpo.reason).toBe('sft_split');
    expect(sft.report.counts['dpo.dropped.sft_split']).toBe(12);
  });
});

describe('math, code and other domains', () => {
  const prompts = [
    P('m-ok', 'math', 'Think step by step.'),
    P('m-nocorrect', 'math'),
    P('m-noincorrect', 'math'),
    P('m-split', 'math'),
    P('m-large', 'math'),
    P('m-unjudged', 'math'),
    P('c-ok', 'code'),
    P('c-allfail', 'code'),
    P('c-allpass', 'code'),
    P('o-one', 'other'),
    P('o-err', 'other'),
  ];
  const responses: ScoredResponse[] = [
    R('m-ok', 'A', 0, 0.8, { correct: true }),
    R('m-ok', 'A', 1, 0.75, { correct: true }),
    R('m-ok', 'A', 2, 0.72, { correct: false }),
    R('m-ok', 'A', 3, 0.7, { correct: false }),
    R('m-ok', 'B', 0, 0.85, { correct: true }),
    R('m-ok', 'B', 1, 0.95, { correct: false }), // highest score but wrong: never the SFT target
    R('m-nocorrect', 'A', 0, 0.9, { correct: false }),
    R('m-nocorrect', 'A', 1, 0.8, { correct: false }),
    R('m-noincorrect', 'A', 0, 0.6, { correct: true }),
    R('m-noincorrect', 'A', 1, 0.65, { correct: true }),
    R('m-split', 'A', 0, 0.7, { correct: true }),
    R('m-split', 'B', 0, 0.65, { correct: false }), // correct and incorrect, but from different sources
    R('m-large', 'A', 0, 0.9, { correct: true }),
    R('m-large', 'A', 1, 0.2, { correct: false }),
    R('m-unjudged', 'A', 0, 0.5),
    R('m-unjudged', 'A', 1, 0.6),
    R('c-ok', 'A', 0, 0.6, { passed: true }),
    R('c-ok', 'A', 1, 0.9, { passed: false }), // failing scored higher: pass/fail decides
    R('c-ok', 'A', 2, 0.5, { passed: true }),
    R('c-ok', 'A', 3, 0.1, { passed: false }),
    R('c-allfail', 'A', 0, 0.9, { passed: false }),
    R('c-allfail', 'B', 0, 0.8, { passed: false }),
    R('c-allpass', 'A', 0, 0.4, { passed: true }),
    R('c-allpass', 'A', 1, 0.3, { passed: true }),
    R('o-one', 'Q', 0, null, { text: '你好！' }),
    R('o-err', 'Q', 0, null, { error: 'timeout' }),
  ];
  const result = buildDatasets({ prompts, responses });
  const sft = Object.fromEntries(result.sft.map((r) => [r.promptId, r]));
  const dpo = Object.fromEntries(result.dpo.map((r) => [r.promptId, r]));
  const reason = (k: string) => ({ sft: reportOf(result, k).sft.reason, dpo: reportOf(result, k).dpo.reason });

  it('math: SFT = correct & highest; DPO = same source correct-highest vs incorrect-lowest within the gap window', () => {
    expect(sft['m-ok'].response.responseId).toBe(id('m-ok', 'B', 0));
    expect(sft['m-ok'].messages[0]).toEqual({ role: 'system', content: 'Think step by step.' });
    expect(dpo['m-ok'].chosen.responseId).toBe(id('m-ok', 'A', 0));
    expect(dpo['m-ok'].rejected.responseId).toBe(id('m-ok', 'A', 3));
    expect(dpo['m-ok'].gap).toBeCloseTo(0.1);
    // B's correct answer scored below its wrong one: gap -0.1 is below the window
    expect(reportOf(result, 'm-ok').dpo.sources.find((s) => s.sourceId === 'B')?.reason).toBe('gap_too_small');
    expect(reason('m-nocorrect')).toEqual({ sft: 'no_correct', dpo: 'no_correct' });
    expect(reason('m-noincorrect')).toEqual({ sft: undefined, dpo: 'no_incorrect' });
    expect(sft['m-noincorrect'].response.responseId).toBe(id('m-noincorrect', 'A', 1));
    expect(reason('m-split')).toEqual({ sft: undefined, dpo: 'no_same_source_pair' });
    expect(reason('m-large')).toEqual({ sft: undefined, dpo: 'gap_too_large' });
    expect(reason('m-unjudged')).toEqual({ sft: 'unjudged', dpo: 'unjudged' });
    // without the gap window the large-gap pair is kept
    const noGap = buildDatasets({ prompts, responses, settings: { mathGap: null } });
    expect(noGap.dpo.find((r) => r.promptId === 'm-large')?.gap).toBeCloseTo(0.7);
  });

  it('code: SFT = passing & highest; DPO = passing-high vs failing-low; all-failing prompts dropped', () => {
    expect(sft['c-ok'].response.responseId).toBe(id('c-ok', 'A', 0));
    expect(dpo['c-ok'].chosen.responseId).toBe(id('c-ok', 'A', 0));
    expect(dpo['c-ok'].rejected.responseId).toBe(id('c-ok', 'A', 3));
    expect(dpo['c-ok'].chosen.passed).toBe(true);
    expect(dpo['c-ok'].rejected.passed).toBe(false);
    expect(reason('c-allfail')).toEqual({ sft: 'all_failed', dpo: 'all_failed' });
    expect(reason('c-allpass')).toEqual({ sft: undefined, dpo: 'all_passed' });
  });

  it('other: SFT only', () => {
    expect(sft['o-one'].messages.at(-1)).toEqual({ role: 'assistant', content: '你好！' });
    expect(reason('o-one')).toEqual({ sft: undefined, dpo: 'sft_only_domain' });
    expect(reason('o-err')).toEqual({ sft: 'errors_only', dpo: 'sft_only_domain' });
  });

  it('counts per domain and per reason', () => {
    const { byDomain, counts } = result.report;
    expect(byDomain.math).toMatchObject({ prompts: 6, 'sft.kept': 4, 'dpo.kept': 1, 'dpo.dropped.no_correct': 1, 'dpo.dropped.no_incorrect': 1 });
    expect(byDomain.code).toMatchObject({ prompts: 3, 'sft.kept': 2, 'dpo.kept': 1, 'dpo.dropped.all_failed': 1, 'sft.dropped.all_failed': 1 });
    expect(byDomain.other).toMatchObject({ prompts: 2, 'sft.kept': 1, 'sft.dropped.errors_only': 1, 'dpo.dropped.sft_only_domain': 2 });
    expect(counts['sft.kept']).toBe(7);
    expect(counts['dpo.kept']).toBe(2);
    expect(counts.responses).toBe(responses.length);
    // Failed requests are counted among them, and said apart.
    expect(counts['responses.failed']).toBe(responses.filter((r) => r.response.error).length);
    expect(counts['responses.failed']).toBe(1);
  });

  it('"pair-to-dpo" puts a math/code prompt with a pair in DPO only', () => {
    const r = buildDatasets({ prompts, responses, settings: { mathCodePlacement: 'pair-to-dpo' } });
    expect(reportOf(r, 'm-ok').sft.reason).toBe('dpo_pair');
    expect(reportOf(r, 'c-ok').sft.reason).toBe('dpo_pair');
    expect(r.sft.map((x) => x.promptId)).toEqual(['m-noincorrect', 'm-split', 'm-large', 'c-allpass', 'o-one']);
  });

  it('ignores responses to unknown prompts and repeated responses', () => {
    const r = buildDatasets({ prompts, responses: [...responses, R('nope', 'A', 0, 0.5), R('m-ok', 'A', 0, 0.1)] });
    expect(r.report.unknownResponses).toBe(1);
    expect(r.report.duplicateResponses).toBe(1);
    expect(r.dpo.find((x) => x.promptId === 'm-ok')?.chosen.score).toBe(0.8);
  });
});

describe('the 4:6 instruction split', () => {
  const prompts = Array.from({ length: 100 }, (_, i) => P(`i${i}`, 'instruction'));
  const responses = prompts.flatMap((p) => [R(p.id, 'A', 0, 0.5), R(p.id, 'A', 1, 0.55)]);

  it('sends 40 of 100 prompts to SFT and 60 to DPO, deterministically for a seed', () => {
    const a = buildDatasets({ prompts, responses, settings: { seed: 7 } });
    expect(a.sft).toHaveLength(40);
    expect(a.dpo).toHaveLength(60);
    expect(a.report.counts).toMatchObject({ 'split.sft': 40, 'split.dpo': 60, 'dpo.dropped.sft_split': 40, 'sft.dropped.dpo_split': 60 });
    const sftIds = new Set(a.sft.map((r) => r.promptId));
    expect(a.dpo.every((r) => !sftIds.has(r.promptId))).toBe(true);
    // same seed, shuffled input → same split
    const b = buildDatasets({ prompts: [...prompts].reverse(), responses: [...responses].reverse(), settings: { seed: 7 } });
    expect(new Set(b.sft.map((r) => r.promptId))).toEqual(sftIds);
    // another seed → another split of the same size
    const c = buildDatasets({ prompts, responses, settings: { seed: 8 } });
    expect(c.sft).toHaveLength(40);
    expect(new Set(c.sft.map((r) => r.promptId))).not.toEqual(sftIds);
    // configurable ratio
    expect(buildDatasets({ prompts, responses, settings: { instructionSftFraction: 0.25 } }).sft).toHaveLength(25);
    expect(() => buildDatasets({ prompts, responses, settings: { instructionSftFraction: 1.5 } })).toThrow(RangeError);
  });
});

describe('manual overrides', () => {
  const prompts = [P('a', 'math'), P('b', 'math'), P('c', 'math'), P('d', 'math')];
  const responses: ScoredResponse[] = [
    R('a', 'A', 0, 0.8, { correct: true }),
    R('a', 'A', 1, 0.78, { correct: true }),
    R('a', 'A', 2, 0.75, { correct: false }),
    R('a', 'A', 3, 0.72, { correct: false }),
    R('b', 'A', 0, 0.9, { correct: true }),
    R('b', 'A', 1, 0.3, { correct: true }), // no incorrect: no automatic pair
    R('b', 'A', 2, null, { error: 'HTTP 429' }),
    R('c', 'A', 0, 0.9, { correct: true }),
    R('c', 'A', 1, 0.85, { correct: false }),
    R('d', 'A', 0, 0.9, { correct: true }),
    R('d', 'A', 1, 0.85, { correct: false }),
  ];
  const overrides: Override[] = [
    { op: 'exclude-response', responseId: id('a', 'A', 0) }, // → chosen/SFT fall back to A/1
    { op: 'rejected', promptId: 'a', responseId: id('a', 'A', 2) },
    { op: 'chosen', promptId: 'b', responseId: id('b', 'A', 0) },
    { op: 'rejected', promptId: 'b', responseId: id('b', 'A', 1) }, // a manual pair where none was possible
    { op: 'sft', promptId: 'b', responseId: id('b', 'A', 1) },
    { op: 'exclude-prompt', promptId: 'c' },
    { op: 'exclude-row', rowId: 'dpo:d' },
    // errors
    { op: 'sft', promptId: 'b', responseId: id('b', 'A', 2) }, // an error response
    { op: 'chosen', promptId: 'd', responseId: id('a', 'A', 1) }, // another prompt's response
    { op: 'sft', promptId: 'zzz', responseId: 'x' },
    { op: 'exclude-response', responseId: 'nope' },
  ];
  const result = buildDatasets({ prompts, responses, overrides });
  const sft = Object.fromEntries(result.sft.map((r) => [r.promptId, r]));
  const dpo = Object.fromEntries(result.dpo.map((r) => [r.promptId, r]));

  it('applies exclusions and forced responses on build', () => {
    expect(sft.a.response.responseId).toBe(id('a', 'A', 1));
    expect(sft.a.manual).toBe(false);
    expect(dpo.a).toMatchObject({ manual: true, chosen: { responseId: id('a', 'A', 1) }, rejected: { responseId: id('a', 'A', 2) } });
    expect(dpo.a.gap).toBeCloseTo(0.03);
    expect(dpo.b).toMatchObject({ manual: true, chosen: { responseId: id('b', 'A', 0) }, rejected: { responseId: id('b', 'A', 1) } });
    expect(sft.b).toMatchObject({ manual: true, response: { responseId: id('b', 'A', 1) } });
    expect(sft.c).toBeUndefined();
    expect(dpo.c).toBeUndefined();
    expect(reportOf(result, 'c').sft).toEqual({ kept: false, reason: 'excluded', manual: true });
    expect(sft.d).toBeDefined();
    expect(dpo.d).toBeUndefined();
    expect(reportOf(result, 'd').dpo).toMatchObject({ kept: false, reason: 'excluded', manual: true });
    expect(reportOf(result, 'b').dpo).toMatchObject({ kept: true, manual: true });
    expect(result.report.counts['dpo.dropped.excluded']).toBe(2);
  });

  it('reports overrides it cannot apply', () => {
    expect(result.report.overrideErrors.map((e) => e.message)).toEqual([
      expect.stringMatching(/is an error \(HTTP 429\)/),
      expect.stringMatching(/is not a response to prompt "d"/),
      'unknown prompt "zzz"',
      'unknown response "nope"',
    ]);
    const half = buildDatasets({ prompts, responses, overrides: [{ op: 'chosen', promptId: 'b', responseId: id('b', 'A', 0) }] });
    expect(half.dpo.find((r) => r.promptId === 'b')).toBeUndefined();
    expect(half.report.overrideErrors[0].message).toMatch(/set both chosen and rejected/);
  });
});

describe('export of built sets', () => {
  const prompts = [P('x', 'math', 'Sys'), P('y', 'code')];
  const responses = [
    R('x', 'Qwen2.5-72B-Instruct', 0, 0.8, { correct: true }),
    R('x', 'Qwen2.5-72B-Instruct', 1, 0.75, { correct: false }),
    R('y', 'gemma-2-27b-it', 0, 0.7, { passed: true }),
    R('y', 'gemma-2-27b-it', 1, 0.2, { passed: false }),
  ];
  const { sft, dpo } = buildDatasets({ prompts, responses });

  it('round-trips through the FuseChat-3.0 and TRL writers', () => {
    const sftRecords = sftRowsToRecords(sft);
    const fcSft = writeFuseChatSftJsonl(sftRecords);
    const first = JSON.parse(fcSft.split('\n')[0]);
    expect(first).toEqual({
      dataset: 'math',
      source_model: 'Qwen2.5-72B-Instruct',
      conversations: [
        { from: 'system', value: 'Sys' },
        { from: 'human', value: 'prompt x' },
        { from: 'gpt', value: 'answer x/Qwen2.5-72B-Instruct/0' },
      ],
    });
    const back = parseSftJsonl(fcSft);
    expect(back.errors).toEqual([]);
    expect(back.records.map((r) => (r.kind === 'sft-messages' ? r.messages : null))).toEqual(sft.map((r) => r.messages));

    const dpoRecords = dpoRowsToRecords(dpo);
    const fcDpo = writeFuseChatDpoJsonl(dpoRecords);
    const row = JSON.parse(fcDpo.split('\n')[1]);
    expect(row).toEqual({
      dataset: 'code',
      source_model: 'gemma-2-27b-it',
      prompt: [{ role: 'user', content: 'prompt y' }],
      chosen: [{ role: 'assistant', content: 'answer y/gemma-2-27b-it/0' }],
      rejected: [{ role: 'assistant', content: 'answer y/gemma-2-27b-it/1' }],
    });
    const dback = parseDpoJsonl(fcDpo);
    expect(dback.errors).toEqual([]);
    expect(dback.records.map((r) => (r.kind === 'dpo-messages' ? [r.prompt, r.chosen, r.rejected] : null))).toEqual(
      dpoRecords.map((r) => [r.prompt, r.chosen, r.rejected]),
    );

    const trl = parseDpoJsonl(writeTrlDpoJsonl(dpoRecords));
    expect(trl.records.map((r) => ({ ...r, meta: undefined }))).toEqual(dpoRecords.map((r) => ({ ...r, meta: undefined })));
    const trlSft = parseSftJsonl(writeTrlSftJsonl(sftRecords));
    expect(trlSft.records.map((r) => (r.kind === 'sft-messages' ? r.messages : null))).toEqual(sft.map((r) => r.messages));
  });
});
