import { afterEach, describe, expect, it } from 'vitest';
import {
  buildJudgeMessages,
  fitRewardNormalization,
  getJsonPath,
  judgeResponse,
  normalizeJudgeScore,
  normalizeReward,
  parseJudgeScore,
  rewardScore,
  rewardStats,
  scoreMany,
  type ParsedScore,
} from './score';
import { makeSource, SourceError } from './sources';
import { chatCompletion, lastUser, startMockServer, type MockServer } from './test-server';

let server: MockServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

describe('parseJudgeScore', () => {
  const table: [text: string, value: number | null, outOf?: number, pattern?: ParsedScore['pattern']][] = [
    ['The response is good. Score: 8/10', 8, 10, 'labelled'],
    ['Score: 8', 8, 10, 'labelled'],
    ['Rating: [[7]]', 7, 10, 'brackets'],
    ['[[9.5]]', 9.5, 10, 'brackets'],
    ['**Score:** 6/10', 6, 10, 'labelled'],
    ['Final score: **9**', 9, 10, 'labelled'],
    ['I would rate this 8.5 out of 10.', 8.5, 10, 'fraction'],
    ['Overall 4/5 — solid.', 4, 5, 'fraction'],
    ['Grade: 3 out of 5', 3, 5, 'labelled'],
    ['Verdict **8**', 8, 10, 'labelled'],
    ['Clear and correct.\n\n**8**', 8, 10, 'bold'],
    ['{"score": 8, "reason": "fine"}', 8, 10, 'json'],
    ['```json\n{"reasoning": "2 of 3 points {ok}", "rating": "7"}\n```', 7, 10, 'json'],
    ['7', 7, 10, 'bare'],
    [' 10. ', 10, 10, 'bare'],
    ['Step 1/3: accuracy is weak. Step 2/3: style ok.\nScore: 5/10', 5, 10, 'labelled'],
    ['Score: 3/10 at first, but after review: Score: 6/10', 6, 10, 'labelled'],
    ['score: 12/10', null],
    ['Score: 11', null],
    ['The response is fine.', null],
    ['', null],
  ];
  it.each(table)('%j → %s', (text, value, outOf, pattern) => {
    const p = parseJudgeScore(text);
    if (value === null) expect(p).toBeNull();
    else expect(p).toEqual({ value, outOf, pattern });
  });

  it('normalises to [0, 1] on the stated or configured scale', () => {
    expect(normalizeJudgeScore(parseJudgeScore('Score: 8/10')!)).toBeCloseTo(0.8, 12);
    expect(normalizeJudgeScore(parseJudgeScore('4/5')!)).toBeCloseTo(0.8, 12);
    expect(normalizeJudgeScore(parseJudgeScore('Score: 1/10', 10, 1)!, 10, 1)).toBe(0);
    expect(normalizeJudgeScore(parseJudgeScore('Rating: 75', 100)!, 100)).toBe(0.75);
  });
});

describe('judge and reward model against a real local server', () => {
  it('asks the judge with the rubric and reads its score', async () => {
    server = await startMockServer((r) => ({ kind: 'json', body: chatCompletion(lastUser(r).includes('Paris') ? 'Accurate and concise.\nScore: 9/10' : 'No idea.') }));
    const judge = makeSource({ id: 'j', name: 'Judge', baseURL: server.baseURL, apiKey: 'k', model: 'judge', temperature: 0 });
    const input = { messages: [{ role: 'user' as const, content: 'Capital of France? {response}' }], response: 'Paris.', reference: 'Paris' };
    const msgs = buildJudgeMessages({}, input);
    expect(msgs[0]!.content).toContain('Capital of France? {response}'); // braces in the texts are not expanded
    expect(msgs[0]!.content).toContain('[Start of reference answer]\nParis\n[End of reference answer]');
    const r = await judgeResponse({ source: judge }, input);
    expect(r).toMatchObject({ method: 'judge', raw: 9, detail: '9/10 (labelled)' });
    expect(r.score).toBeCloseTo(0.9, 12);
    expect(server.requests[0]!.body).toMatchObject({ model: 'judge', temperature: 0 });
    const none = await judgeResponse({ source: judge }, { messages: [{ role: 'user', content: 'x' }], response: 'y' });
    expect(none.score).toBeNull();
    expect(none.text).toBe('No idea.');
    expect(none.detail).toMatch(/^no score in the verdict: it has no "Score: N\/10" line/);
  });

  it('says a verdict was cut at max_tokens, from the finish reason the server sent', async () => {
    const cut = { ...chatCompletion('The response is accurate but'), choices: [{ index: 0, message: { role: 'assistant', content: 'The response is accurate but' }, finish_reason: 'length', logprobs: null }] };
    server = await startMockServer(() => ({ kind: 'json', body: cut }));
    const judge = makeSource({ id: 'j', name: 'Judge', baseURL: server.baseURL, apiKey: '', model: 'judge', temperature: 0, max_tokens: 6 });
    const r = await judgeResponse({ source: judge }, { messages: [{ role: 'user', content: 'x' }], response: 'y' });
    expect(r).toMatchObject({ score: null, raw: null, finishReason: 'length', text: 'The response is accurate but' });
    expect(r.detail).toBe("the verdict was cut at its max tokens (6) before its score: raise the judge's max tokens");
    expect(server.requests[0]!.body).toMatchObject({ max_tokens: 6 });
  });

  it('reads a reward scalar by JSON path, normalised, with retries', async () => {
    server = await startMockServer((r) =>
      r.n === 0 ? { kind: 'json', status: 503, body: {} } : { kind: 'json', body: { object: 'list', data: [{ index: 0, data: [2.5] }] } },
    );
    const cfg = {
      baseURL: server.baseURL,
      apiKey: 'rm-key-0123456789',
      model: 'RLHFlow/ArmoRM-Llama3-8B-v0.1',
      scorePath: 'data[0].data[0]',
      normalize: { kind: 'minmax' as const, min: -5, max: 5 },
      retry: { baseDelayMs: 5, maxDelayMs: 10 },
    };
    const r = await rewardScore(cfg, [{ role: 'user', content: 'Hi' }], 'Hello!');
    expect(r).toMatchObject({ method: 'reward', raw: 2.5, score: 0.75 });
    expect(server.requests[1]!.path).toBe('/v1/pooling');
    expect(server.requests[1]!.body).toMatchObject({
      model: cfg.model,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
      ],
    });
    const e = await rewardScore({ ...cfg, scorePath: 'nope', retry: { ...cfg.retry, maxAttempts: 1 } }, [], 'x').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SourceError);
    expect((e as SourceError).kind).toBe('malformed');
  });

  it('maps reward scalars and paths', () => {
    expect(normalizeReward(0, { kind: 'sigmoid' })).toBe(0.5);
    expect(normalizeReward(2, { kind: 'sigmoid', center: 2, scale: 0.5 })).toBe(0.5);
    expect(normalizeReward(10, { kind: 'minmax', min: 0, max: 5 })).toBe(1);
    expect(normalizeReward(0.3, { kind: 'none' })).toBe(0.3);
    // Not fitted yet: provisional sigmoid(raw).
    expect(normalizeReward(0, { kind: 'run' })).toBe(0.5);
    expect(getJsonPath({ a: [{ b: 3 }] }, '$.a[0].b')).toBe(3);
    expect(getJsonPath([{ score: 1 }], '[0].score')).toBe(1);
    expect(getJsonPath({ score: 0.1 }, 'score')).toBe(0.1);
    expect(getJsonPath({ a: 1 }, 'a.b.c')).toBeUndefined();
  });

  it('fits a mapping to the run: a sigmoid on the median with the standard deviation as scale, keeping every difference', () => {
    // Likelihood rewards (mean log-prob per token): a fixed clamp maps them all to 0.
    const raws = [-3.1, -2.4, -2.9, -3.6, -2.2];
    expect(raws.map((r) => normalizeReward(r, { kind: 'none' }))).toEqual([0, 0, 0, 0, 0]);
    const stats = rewardStats(raws)!;
    expect(stats).toMatchObject({ n: 5, median: -2.9, min: -3.6, max: -2.2 });
    expect(stats.std).toBeCloseTo(Math.sqrt(raws.reduce((a, r) => a + (r + 2.84) ** 2, 0) / 5), 12);
    const m = fitRewardNormalization({ kind: 'run' }, stats);
    expect(m).toEqual({ kind: 'sigmoid', center: -2.9, scale: stats.std, fit: stats });
    const scores = raws.map((r) => normalizeReward(r, m));
    expect(scores[2]).toBe(0.5);
    expect(new Set(scores).size).toBe(5);
    expect([...scores].sort()).toEqual(raws.map((r) => normalizeReward(r, m)).sort());
    // Equal rewards: scale 1, all 0.5; a fixed mapping stays as given; no rewards: provisional.
    expect(fitRewardNormalization({ kind: 'run' }, rewardStats([2, 2]))).toMatchObject({ center: 2, scale: 1 });
    expect(fitRewardNormalization({ kind: 'minmax', min: 0, max: 1 }, stats)).toEqual({ kind: 'minmax', min: 0, max: 1 });
    expect(fitRewardNormalization({ kind: 'run' }, null)).toEqual({ kind: 'sigmoid', center: 0, scale: 1, fit: null });
    expect(rewardStats([])).toBeNull();
  });

  it('scores many with bounded concurrency', async () => {
    let live = 0;
    let peak = 0;
    const seen: number[] = [];
    const res = await scoreMany(
      [1, 2, 3, 4, 5, 6, 7],
      async (x) => {
        live++;
        peak = Math.max(peak, live);
        await new Promise((r) => setTimeout(r, 10));
        live--;
        if (x === 4) throw new Error('bad');
        return x * 2;
      },
      { concurrency: 3, onResult: (_x, r) => void seen.push(r) },
    );
    expect(res).toEqual({ done: 6, failed: 1, cancelled: false });
    expect(peak).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual([2, 4, 6, 10, 12, 14]);
  });
});
