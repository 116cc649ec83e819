import { describe, expect, it } from 'vitest';
import type { Prompt } from '../data/prompts';
import { responseKey, type ErrorRecord, type ResponseRecord, type ScoreRecord } from '../data/types';
import {
  DEFAULT_EVAL_PERCENT,
  EMPTY_MAPPING,
  evalPercentOf,
  formatSeconds,
  groupResponses,
  heldOutPrompts,
  mappingFromForm,
  mergePrompts,
  MIN_PROMPTS_FOR_EVAL,
  promptOutcome,
  reportRows,
  verdictLine,
} from './dataView';

const p = (id: string): Prompt => ({ id, text: `text ${id}`, domain: 'instruction' });

function resp(sourceId: string, promptId: string, i: number, content = `r${i}`): ResponseRecord {
  return {
    key: responseKey(sourceId, promptId, i),
    sourceId,
    sourceName: sourceId.toUpperCase(),
    model: 'm',
    servedModel: 'm',
    promptId,
    sampleIndex: i,
    content,
    finishReason: 'stop',
    params: {},
    attempts: 1,
    latencyMs: 1,
    createdAt: '',
  };
}

describe('mergePrompts', () => {
  it('keeps the first prompt of an id and counts the rest', () => {
    const r = mergePrompts([p('a')], [p('a'), p('b'), p('b')]);
    expect(r.added.map((x) => x.id)).toEqual(['b']);
    expect(r.skipped).toBe(2);
  });
});

describe('mappingFromForm', () => {
  it('blank is auto-detect, "-" is off, anything else a column', () => {
    expect(mappingFromForm({ ...EMPTY_MAPPING, prompt: ' question ', gold: '-', system: '' })).toEqual({ prompt: 'question', gold: null });
  });
});

describe('formatSeconds', () => {
  it('formats unknown, seconds, minutes and hours', () => {
    expect(formatSeconds(null)).toBe('—');
    expect(formatSeconds(Infinity)).toBe('—');
    expect(formatSeconds(4.2)).toBe('5 s');
    expect(formatSeconds(125)).toBe('2 min 5 s');
    expect(formatSeconds(7300)).toBe('2 h 1 min');
  });
});

describe('reportRows', () => {
  it('turns the flat counters into SFT-then-DPO rows, kept first, with per-domain counts', () => {
    const rows = reportRows({
      counts: { prompts: 5, 'sft.kept': 2, 'sft.dropped.dpo_split': 3, 'dpo.dropped.gap_too_small': 1, 'dpo.kept': 3, 'dpo.dropped.sft_split': 1 },
      byDomain: {
        instruction: { 'sft.kept': 1, 'sft.dropped.dpo_split': 3, 'dpo.kept': 3, 'dpo.dropped.sft_split': 1 },
        math: { 'sft.kept': 1, 'dpo.dropped.gap_too_small': 1 },
        code: {},
        other: {},
      },
    });
    expect(rows.map((r) => r.key)).toEqual(['sft.kept', 'sft.dropped.dpo_split', 'dpo.kept', 'dpo.dropped.gap_too_small', 'dpo.dropped.sft_split']);
    expect(rows[0]!.byDomain).toEqual({ instruction: 1, math: 1, code: 0, other: 0 });
    expect(rows[0]!.total).toBe(2);
  });
});

describe('groupResponses', () => {
  it('groups one prompt by source in the given order, with scores, edits and failed items', () => {
    const responses = [resp('b', 'p1', 1), resp('a', 'p1', 0), resp('b', 'p1', 0), resp('a', 'p2', 0)];
    const score: ScoreRecord = { key: responses[0]!.key, promptId: 'p1', sourceId: 'b', sampleIndex: 1, domain: 'instruction', scorer: 'j', score: 0.7, createdAt: '' };
    const err: ErrorRecord = { key: responseKey('a', 'p1', 1), sourceId: 'a', promptId: 'p1', sampleIndex: 1, status: 500, kind: 'server', message: 'boom', attempts: 5, createdAt: '' };
    const cols = groupResponses('p1', responses, [score], [err], { [responses[2]!.key]: 'edited' }, [
      { id: 'a', name: 'A' },
      { id: 'b', name: 'B' },
      { id: 'c', name: 'C' },
    ]);
    expect(cols.map((c) => c.name)).toEqual(['A', 'B']);
    expect(cols[0]!.responses.map((r) => [r.sampleIndex, r.error ?? r.content])).toEqual([
      [0, 'r0'],
      [1, 'HTTP 500, server: boom'],
    ]);
    expect(cols[1]!.responses.map((r) => r.sampleIndex)).toEqual([0, 1]);
    expect(cols[1]!.responses[0]!.edited).toBe('edited');
    expect(cols[1]!.responses[1]!.score?.score).toBe(0.7);
  });
});

describe('verdictLine and promptOutcome', () => {
  it('says what a score holds', () => {
    expect(verdictLine(undefined)).toBe('not scored');
    const s: ScoreRecord = { key: 'k', promptId: 'p', sourceId: 's', sampleIndex: 0, domain: 'math', scorer: 'math', score: 0.85, correct: false, createdAt: '', judge: { method: 'judge', model: 'j', raw: 8.5, detail: '' } };
    expect(verdictLine(s)).toBe('score 0.85 (raw 8.5) · incorrect');
    expect(verdictLine({ ...s, score: null, correct: undefined, judge: undefined, error: 'judge: 401' })).toBe('scoring error: judge: 401');
    // The judge answered without a readable score: why, not a generic error.
    const why = 'the verdict is empty (4 whitespace character(s)): the judge model wrote nothing (a model this small cannot judge; use a chat model)';
    const unread = { ...s, score: null, correct: undefined, judge: { method: 'judge' as const, model: 'j', raw: null, detail: why, verdict: '\n\n\n\n' }, error: `judge: ${why}` };
    expect(verdictLine(unread)).toBe('no score read from the judge’s verdict');
    expect(verdictLine({ ...unread, error: `code: no python; judge: ${why}` })).toBe('no score read from the judge’s verdict · scoring error: code: no python');
    // Its request failed; a sandbox failure beside it is still said.
    const failed = { ...s, score: null, correct: undefined, judge: undefined, judgeError: 'Judge: HTTP 500 boom', error: 'code: no python; judge: Judge: HTTP 500 boom' };
    expect(verdictLine(failed)).toBe('the judge request failed: Judge: HTTP 500 boom · scoring error: code: no python');
  });
  it('says why a prompt was kept or dropped', () => {
    expect(promptOutcome(undefined).sft).toBe('not built yet');
    const o = promptOutcome({
      promptId: 'p',
      domain: 'instruction',
      responses: 2,
      errors: 0,
      sft: { kept: false, reason: 'dpo_split' },
      dpo: { kept: true, gap: 0.05, sources: [], manual: true },
    });
    expect(o).toEqual({ sft: 'dropped: DPO side of the 4:6 split', dpo: 'kept (by hand), gap 0.05' });
  });
});

describe('held-out prompts', () => {
  const make = (n: number, from = 0): Prompt[] => Array.from({ length: n }, (_, i) => ({ id: `p${from + i}`, text: `prompt ${from + i}`, domain: 'math', gold: String(i) }));

  it('defaults to 10% from 20 prompts, 0 below; a chosen percent wins', () => {
    expect(evalPercentOf(undefined, 19)).toBe(0);
    expect(evalPercentOf(undefined, MIN_PROMPTS_FOR_EVAL)).toBe(DEFAULT_EVAL_PERCENT);
    expect(evalPercentOf(0, 500)).toBe(0);
    expect(evalPercentOf(25, 3)).toBe(25);
  });

  it('splits by id: none in both sets, gold kept, stable when prompts are added', () => {
    const first = heldOutPrompts(make(200), 10);
    expect(first.eval.length).toBeGreaterThan(5);
    expect(first.eval.length + first.train.length).toBe(200);
    const trainIds = new Set(first.train.map((p) => p.id));
    expect(first.eval.some((p) => trainIds.has(p.id))).toBe(false);
    expect(first.eval.every((p) => p.gold !== undefined)).toBe(true);
    const grown = heldOutPrompts([...make(200), ...make(100, 200)], 10);
    const grownEval = new Set(grown.eval.map((p) => p.id));
    for (const p of make(200)) expect(grownEval.has(p.id)).toBe(!trainIds.has(p.id));
    expect(heldOutPrompts(make(200), 0).eval).toEqual([]);
  });
});
