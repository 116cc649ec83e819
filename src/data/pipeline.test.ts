import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBKeyRange, indexedDB } from 'fake-indexeddb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, parseJudgeConfig, parseSourcesConfig } from './pipeline-config';
import { ARTIFACTS, runPipeline, type PipelineEvent, type PipelineOptions, type PipelineResult } from './pipeline';
import { importPromptRows, type Prompt } from './prompts';
import { parseDpoJsonl, parseSftJsonl } from './records';
import { NodeSandbox } from './sandbox-node';
import type { JudgeSpec } from './score';
import { makeSource, type Source } from './sources';
import { MemoryRunStore, type RunStore } from './store';
import { CollectDB, DexieRunStore } from './store-dexie';
import { JsonlRunStore } from './store-jsonl';
import { chatCompletion, startMockServer } from './test-server';
import { EXPECTED, FIXTURE_PROMPTS, SAMPLES_PER_SOURCE, startFixtureServers, tagOf, type FixtureServers } from './test-fusion';

const KEY = 'sk-pipeline-SECRET-0123456789abcdef';
const FAST = { baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 5000, maxAttempts: 3 };
const N_RESPONSES = FIXTURE_PROMPTS.length * 2 * SAMPLES_PER_SOURCE;
const N_JUDGED = FIXTURE_PROMPTS.filter((p) => p.domain !== 'other').length * 2 * SAMPLES_PER_SOURCE;
const tagsOf = (ps: typeof FIXTURE_PROMPTS) => ps.flatMap((p) => ['A', 'B'].flatMap((s) => Array.from({ length: SAMPLES_PER_SOURCE }, (_, i) => `${p.id}/${s}/${i}`)));
const ALL_TAGS = tagsOf(FIXTURE_PROMPTS);
const JUDGED_TAGS = tagsOf(FIXTURE_PROMPTS.filter((p) => p.domain !== 'other'));

let servers: FixtureServers;
let sandbox: NodeSandbox;
let dir = '';
let prompts: Prompt[];

beforeAll(async () => {
  servers = await startFixtureServers({ delayMs: 5 });
  sandbox = new NodeSandbox();
  const imported = importPromptRows(FIXTURE_PROMPTS);
  expect(imported.errors).toEqual([]);
  prompts = imported.prompts;
});
afterAll(async () => {
  await servers?.close();
  await sandbox?.dispose();
});
beforeEach(async (ctx) => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-pipeline-'));
  ctx.onTestFinished(() => rm(dir, { recursive: true, force: true }));
});

function sources(): Source[] {
  return (['A', 'B'] as const).map((s) =>
    makeSource({ id: s, name: `Source ${s}`, baseURL: servers.sources[s].baseURL, apiKey: KEY, model: `model-${s.toLowerCase()}`, seed: 0, n: SAMPLES_PER_SOURCE, concurrency: 2, retry: FAST }),
  );
}

function judge(): JudgeSpec {
  return { type: 'judge', judge: { source: makeSource({ id: 'judge', name: 'Judge', baseURL: servers.judge.baseURL, apiKey: KEY, model: 'judge', temperature: 0, retry: FAST }) }, concurrency: 3 };
}

/** The paper's window [0.01, 0.1], which the fixture judge's scores (tenths of a point) are laid out for. */
const PAPER_WINDOWS = { instructionGap: { min: 0.01, max: 0.1 }, mathGap: { min: 0.01, max: 0.1 } };

function options(store: RunStore, extra: Partial<PipelineOptions> = {}): PipelineOptions {
  return { prompts, sources: sources(), judge: judge(), sandbox, store, seed: 3, construct: PAPER_WINDOWS, ...extra };
}

const tagsOfSft = (text: string) => parseSftJsonl(text).records.map((r) => (r.kind === 'sft-messages' ? tagOf(r.messages.at(-1)!.content) : undefined));
const pairsOfDpo = (text: string) =>
  parseDpoJsonl(text).records.map((r) => (r.kind === 'dpo-messages' ? [tagOf(r.chosen[0]!.content), tagOf(r.rejected[0]!.content)] : undefined));

/** Checks the built sets against EXPECTED, given which side of the 4:6 split each instruction prompt fell on. */
function checkSets(res: PipelineResult, sft: string, dpo: string) {
  const report = res.construct!.report;
  const split = new Map(report.prompts.map((p) => [p.promptId, p.split]));
  const wantSft: string[] = [];
  const wantDpo: [string, string][] = [];
  for (const p of FIXTURE_PROMPTS) {
    const e = EXPECTED[p.id]!;
    const side = split.get(p.id);
    if (e.sft && side !== 'dpo') wantSft.push(e.sft);
    if (e.dpo && side !== 'sft') wantDpo.push(e.dpo);
  }
  expect(tagsOfSft(sft)).toEqual(wantSft);
  expect(pairsOfDpo(dpo)).toEqual(wantDpo);
  // 4:6 split of the four instruction prompts: round(1.6) = 2 on the SFT side.
  expect(report.counts['split.sft']).toBe(2);
  expect(report.counts['split.dpo']).toBe(2);
  expect(report.counts['sft.kept']).toBe(wantSft.length);
  expect(report.counts['dpo.kept']).toBe(wantDpo.length);
  // Every drop has the recipe's reason.
  for (const p of report.prompts) {
    const e = EXPECTED[p.promptId]!;
    if (e.sftReason) expect(p.sft.reason).toBe(e.sftReason);
    if (e.dpoReason && p.split !== 'sft') expect(p.dpo.reason).toBe(e.dpoReason);
    if (p.split === 'sft') expect(p.dpo.reason).toBe('sft_split');
    if (p.split === 'dpo') expect(p.sft.reason).toBe('dpo_split');
  }
  // DPO pairs come from one source, chosen above rejected.
  for (const row of res.construct!.dpo) {
    expect(row.chosen.sourceId).toBe(row.rejected.sourceId);
    if (row.domain === 'instruction') expect(row.gap!).toBeGreaterThanOrEqual(0.01 - 1e-9);
    if (row.domain === 'instruction' || row.domain === 'math') expect(row.gap!).toBeLessThanOrEqual(0.1 + 1e-9);
    if (row.domain === 'math') expect([row.chosen.correct, row.rejected.correct]).toEqual([true, false]);
    if (row.domain === 'code') expect([row.chosen.passed, row.rejected.passed]).toEqual([true, false]);
  }
}

describe('runPipeline end to end against local sources and a judge', () => {
  it('collects, scores by domain, builds SFT/DPO by the rules and exports TRL + FuseChat files', async () => {
    const store = await JsonlRunStore.open(dir);
    const events: PipelineEvent[] = [];
    const before = { asked: servers.asked().length, judged: servers.judged().length };
    const res = await runPipeline(options(store, { onProgress: (e) => events.push(e) }));
    await store.close();
    expect(res).toMatchObject({ cancelled: false, phase: 'export', warnings: [] });
    expect(res.collect).toMatchObject({ collected: N_RESPONSES, failed: 0, skipped: 0, pending: 0 });
    expect(res.score).toMatchObject({ total: N_JUDGED, done: N_JUDGED, scored: N_JUDGED, failed: 0, skipped: 0, judgeCalls: N_JUDGED, unscorable: 4 });
    expect(servers.asked().length - before.asked).toBe(N_RESPONSES);
    expect(servers.judged().length - before.judged).toBe(N_JUDGED);
    // Every phase reported progress, in order.
    const phases = [...new Set(events.map((e) => e.phase))];
    expect(phases).toEqual(['prompts', 'collect', 'score', 'construct', 'export']);
    // Scoring says which responses it is waiting for, and since when; none once it ends.
    const scoring = events.flatMap((e) => (e.phase === 'score' ? [e.score] : []));
    const busy = scoring.find((x) => x.requests.length > 0)!;
    expect(busy.requests[0]).toMatchObject({ promptId: expect.any(String), sourceId: expect.stringMatching(/^[AB]$/), startedAt: expect.any(Number) });
    expect(scoring.at(-1)).toMatchObject({ inFlight: 0, requests: [], etaSeconds: 0 });
    const lastCollect = events.filter((e) => e.phase === 'collect').at(-1)!;
    expect(lastCollect.phase === 'collect' && lastCollect.sources.map((s) => [s.name, s.done, s.total])).toEqual([
      ['Source A', 20, 20],
      ['Source B', 20, 20],
    ]);

    // Scores as stored: math verdicts, code verdicts, judge scores; "other" not scored.
    const scores = (await readFile(join(dir, 'scores.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(scores).toHaveLength(N_JUDGED);
    const byTag = new Map(scores.map((s) => [`${s.promptId}/${s.sourceId}/${s.sampleIndex}`, s]));
    expect(byTag.get('m2/A/0')).toMatchObject({ correct: true, score: 0.7, domain: 'math' });
    expect(byTag.get('m2/A/1')).toMatchObject({ correct: false, score: 0.72 });
    expect(byTag.get('c1/A/0')).toMatchObject({ passed: true, code: { status: 'pass', language: 'javascript' } });
    expect(byTag.get('c2/B/0')).toMatchObject({ passed: false, code: { status: 'no-code' } });
    expect(byTag.get('c2/A/1')).toMatchObject({ passed: false, code: { status: 'fail' } });
    expect(byTag.get('i2/A/1')!.score).toBeCloseTo(0.505, 12);
    expect(byTag.has('o1/A/0')).toBe(false);

    const file = (name: string) => readFile(join(dir, name), 'utf8');
    const sft = await file(ARTIFACTS.sft);
    const dpo = await file(ARTIFACTS.dpo);
    checkSets(res, sft, dpo);
    // TRL rows are exactly the TRL fields.
    expect(Object.keys(JSON.parse(sft.split('\n')[0]!))).toEqual(['messages']);
    expect(Object.keys(JSON.parse(dpo.split('\n')[0]!))).toEqual(['prompt', 'chosen', 'rejected']);
    // FuseChat-schema files: same rows, dataset + source_model (the model asked).
    const fc = (await file(ARTIFACTS.fusechatSft)).trim().split('\n').map((l) => JSON.parse(l));
    expect(fc).toHaveLength(res.construct!.sft.length);
    const other = fc.find((r) => r.dataset === 'other');
    expect(other).toMatchObject({ source_model: 'model-a', conversations: [{ from: 'human', value: '用中文打个招呼。' }, { from: 'gpt' }] });
    const fcd = (await file(ARTIFACTS.fusechatDpo)).trim().split('\n').map((l) => JSON.parse(l));
    expect(fcd.map((r) => [r.dataset, r.source_model])).toEqual(res.construct!.dpo.map((r) => [r.domain, `model-${r.chosen.sourceId.toLowerCase()}`]));
    // The report: counts, per-prompt reasons, the run's settings (no key anywhere).
    const report = JSON.parse(await file(ARTIFACTS.report));
    expect(report.counts).toEqual(res.construct!.report.counts);
    expect(report.construct.prompts).toHaveLength(FIXTURE_PROMPTS.length);
    expect(report.artifacts.map((a: { name: string }) => a.name)).toEqual(expect.arrayContaining(['sft.jsonl', 'dpo.jsonl', 'fusechat_sft.jsonl', 'fusechat_dpo.jsonl']));
    for (const name of ['run.json', 'report.json', 'responses.jsonl', 'scores.jsonl', 'sft.jsonl', 'dpo.jsonl', 'prompts.jsonl']) expect(await file(name)).not.toContain('SECRET');
    expect(JSON.parse(await file(ARTIFACTS.run)).sources[0].apiKey).toBe('<redacted>');
  });

  it('asks no source in notAsked, and still builds on what it had stored', async () => {
    const store = new MemoryRunStore();
    const before = servers.asked().length;
    const first = await runPipeline(options(store, { notAsked: ['B'] }));
    expect(first.collect).toMatchObject({ collected: N_RESPONSES / 2, failed: 0 });
    expect(servers.asked().length - before).toBe(N_RESPONSES / 2);
    expect(new Set((await store.list()).map((r) => r.sourceId))).toEqual(new Set(['A']));
    // B answers now, A is left out: A's stored responses are scored and built on as before.
    const second = await runPipeline(options(store, { notAsked: ['A'] }));
    expect(servers.asked().length - before).toBe(N_RESPONSES);
    expect(second.collect).toMatchObject({ collected: N_RESPONSES / 2 });
    expect(second.construct!.report.counts.responses).toBe(N_RESPONSES);
    checkSets(second, (await store.readArtifact(ARTIFACTS.sft))!, (await store.readArtifact(ARTIFACTS.dpo))!);
  });

  it('resumes a run cancelled in collection, then in scoring, asking and scoring nothing twice', async () => {
    // The reference: one uninterrupted run.
    const refStore = new MemoryRunStore();
    const ref = await runPipeline(options(refStore));
    expect(ref.cancelled).toBe(false);

    const asked0 = servers.asked().length;
    const judged0 = servers.judged().length;
    // Run 1: cancelled once 10 responses are stored.
    const ctrl1 = new AbortController();
    let store = await JsonlRunStore.open(dir);
    const r1 = await runPipeline(
      options(store, {
        signal: ctrl1.signal,
        onProgress: (e) => {
          if (e.phase === 'collect' && e.sources.reduce((a, s) => a + s.collected, 0) >= 10) ctrl1.abort();
        },
      }),
    );
    expect(r1).toMatchObject({ cancelled: true, phase: 'collect' });
    expect(r1.score).toBeUndefined();
    const stored1 = new Set((await store.list()).map((r) => `${r.promptId}/${r.sourceId}/${r.sampleIndex}`));
    expect(stored1.size).toBeGreaterThanOrEqual(10);
    expect(stored1.size).toBeLessThan(N_RESPONSES);
    expect(await store.listScores()).toEqual([]);
    await store.close();
    const asked1 = servers.asked().slice(asked0);
    expect(servers.judged().length).toBe(judged0);
    // In flight when cancelled (at most one per worker) and so not stored: asked again later.
    expect(asked1.length - stored1.size).toBeLessThanOrEqual(4);

    // Run 2 (a fresh process would reopen the folder): cancelled once 10 responses are scored.
    const ctrl2 = new AbortController();
    store = await JsonlRunStore.open(dir);
    const r2 = await runPipeline(
      options(store, {
        signal: ctrl2.signal,
        onProgress: (e) => {
          if (e.phase === 'score' && e.score.scored >= 10) ctrl2.abort();
        },
      }),
    );
    expect(r2).toMatchObject({ cancelled: true, phase: 'score' });
    expect(r2.collect).toMatchObject({ skipped: stored1.size, collected: N_RESPONSES - stored1.size, pending: 0 });
    // (A request cancelled in run 1 may reach the server late: count with a margin, compare as sets.)
    const asked2 = servers.asked().slice(asked0 + asked1.length);
    for (const t of asked2) expect(stored1.has(t)).toBe(false);
    expect(new Set(asked2)).toEqual(new Set(ALL_TAGS.filter((t) => !stored1.has(t))));
    expect(asked2.length).toBeLessThanOrEqual(N_RESPONSES - stored1.size + 4);
    const scored2 = new Set((await store.listScores()).map((s) => `${s.promptId}/${s.sourceId}/${s.sampleIndex}`));
    expect(scored2.size).toBeGreaterThanOrEqual(10);
    expect(scored2.size).toBeLessThan(N_JUDGED);
    await store.close();
    const judged2 = servers.judged().length;

    // Run 3: finishes; asks no source, and the judge only about responses not yet scored.
    store = await JsonlRunStore.open(dir);
    const r3 = await runPipeline(options(store));
    expect(r3.cancelled).toBe(false);
    expect(servers.asked().length).toBe(asked0 + asked1.length + asked2.length);
    expect(r3.collect).toMatchObject({ skipped: N_RESPONSES, collected: 0 });
    expect(r3.score).toMatchObject({ skipped: scored2.size, scored: N_JUDGED - scored2.size, done: N_JUDGED });
    const judged3 = servers.judged().slice(judged2);
    for (const t of judged3) expect(scored2.has(t)).toBe(false);
    expect(new Set(judged3)).toEqual(new Set(JUDGED_TAGS.filter((t) => !scored2.has(t))));
    expect(judged3.length).toBeLessThanOrEqual(N_JUDGED - scored2.size + 3);
    await store.close();

    // The result is the uninterrupted run's.
    for (const name of [ARTIFACTS.sft, ARTIFACTS.dpo, ARTIFACTS.fusechatSft, ARTIFACTS.fusechatDpo])
      expect(await readFile(join(dir, name), 'utf8')).toBe(await refStore.readArtifact(name));

    // Run 4 over a finished run: no request at all, same files.
    const a4 = servers.asked().length;
    const j4 = servers.judged().length;
    store = await JsonlRunStore.open(dir);
    const r4 = await runPipeline(options(store));
    await store.close();
    expect(r4.score).toMatchObject({ skipped: N_JUDGED, scored: 0, judgeCalls: 0 });
    expect([servers.asked().length, servers.judged().length]).toEqual([a4, j4]);
    expect(await readFile(join(dir, ARTIFACTS.dpo), 'utf8')).toBe(await refStore.readArtifact(ARTIFACTS.dpo));
  });

  it('scores again what another scorer scored, and retries failed scorings', async () => {
    const store = new MemoryRunStore();
    await runPipeline(options(store, { judge: undefined, prompts: prompts.filter((p) => p.domain === 'math') }));
    const verdictOnly = await store.listScores();
    expect(verdictOnly).toHaveLength(12);
    expect(verdictOnly.every((s) => s.scorer === 'math' && s.score === null)).toBe(true);
    // A judge now: every math response is scored again, by verifier + judge.
    const j0 = servers.judged().length;
    const res = await runPipeline(options(store, { prompts: prompts.filter((p) => p.domain === 'math') }));
    expect(res.score).toMatchObject({ skipped: 0, scored: 12 });
    expect(servers.judged().length - j0).toBe(12);
    // A judge that fails: the verdicts are kept with the error, and a later run tries again.
    const broken: JudgeSpec = { type: 'judge', judge: { source: makeSource({ id: 'judge', name: 'Judge', baseURL: 'http://127.0.0.1:9/v1', apiKey: KEY, model: 'other-judge', retry: { ...FAST, maxAttempts: 1 } }) } };
    const failed = await runPipeline(options(store, { judge: broken, prompts: prompts.filter((p) => p.id === 'm1') }));
    expect(failed.score).toMatchObject({ failed: 4, scored: 0 });
    expect(failed.warnings.join('\n')).toMatch(/the judge's request failed for 4 of 4 response\(s\): Judge: connection failed/);
    expect(failed.construct!.report.prompts[0]).toMatchObject({ promptId: 'm1', dpo: { kept: false, reason: 'judge_failed' } });
    const rec = (await store.listScores()).find((s) => s.promptId === 'm1' && s.sourceId === 'A' && s.sampleIndex === 0)!;
    expect(rec).toMatchObject({ correct: true, score: null, error: expect.stringMatching(/^judge: .*connection/) });
    expect(rec.error).not.toContain('SECRET');
    const again = await runPipeline(options(store, { prompts: prompts.filter((p) => p.id === 'm1') }));
    expect(again.score).toMatchObject({ scored: 4, failed: 0 });
  });

  it('without a judge: math/code by verdict only (no gap window), instruction dropped with a warning; eval split', async () => {
    const store = new MemoryRunStore();
    const res = await runPipeline(options(store, { judge: undefined, construct: undefined, evalFraction: 0.2 }));
    expect(res.warnings.join('\n')).toMatch(/no judge: the 4 instruction prompt/);
    expect(res.prompts).toMatchObject({ total: 10, train: 8, eval: 2 });
    expect(res.score).toMatchObject({ judgeCalls: 0 });
    const all = [...res.construct!.report.prompts, ...res.evalConstruct!.report.prompts];
    expect(all).toHaveLength(10);
    for (const p of all.filter((x) => x.domain === 'instruction')) expect(p.sft.kept || p.dpo.kept).toBe(false);
    expect(res.construct!.report.settings.mathGap).toBeNull();
    const m1 = all.find((p) => p.promptId === 'm1')!;
    expect(m1.dpo).toMatchObject({ kept: true, sourceId: 'A', gap: null });
    // Eval rows go to their own files, never to the training ones.
    const evalIds = new Set(res.evalConstruct!.report.prompts.map((p) => p.promptId));
    expect(res.construct!.sft.some((r) => evalIds.has(r.promptId))).toBe(false);
    const evalPrompts = (await store.readArtifact(ARTIFACTS.evalPrompts))!.trim().split('\n').map((l) => JSON.parse(l).id);
    expect(new Set(evalPrompts)).toEqual(evalIds);
    expect(parseSftJsonl((await store.readArtifact(ARTIFACTS.sftEval))!).records).toHaveLength(res.evalConstruct!.sft.length);
  });

  it('a stable eval split keeps each prompt on its side when prompts are left out; a run with none held out empties the eval files', async () => {
    const store = new MemoryRunStore();
    const base = { judge: undefined, construct: undefined, evalFraction: 0.5, stableEvalSplit: true } as const;
    const all = await runPipeline(options(store, base));
    const held = new Set(all.evalConstruct!.report.prompts.map((p) => p.promptId));
    expect(held.size).toBeGreaterThan(0);
    expect(held.size).toBeLessThan(prompts.length);
    // Leave two prompts out (a long-prompt filter does this): every other prompt stays where it was.
    const fewer = await runPipeline(options(store, { ...base, prompts: prompts.slice(2) }));
    for (const p of prompts.slice(2)) expect(fewer.evalConstruct?.report.prompts.some((r) => r.promptId === p.id) ?? false).toBe(held.has(p.id));
    expect(fewer.construct!.report.prompts.some((r) => held.has(r.promptId))).toBe(false);
    expect(JSON.parse((await store.readArtifact(ARTIFACTS.run))!)).toMatchObject({ evalFraction: 0.5, stableEvalSplit: true });
    // Nothing held out now: the earlier eval files must not stay behind as an eval set.
    await runPipeline(options(store, { ...base, evalFraction: 0 }));
    for (const name of [ARTIFACTS.evalPrompts, ARTIFACTS.sftEval, ARTIFACTS.dpoEval]) expect(await store.readArtifact(name)).toBe('');
  });

  it("a judge's default window is 1 to 3 points of 10; unreadable verdicts and failed requests are named as the cause of the drops", async () => {
    const instruction = prompts.filter((p) => p.domain === 'instruction');
    const n = instruction.length * 2 * SAMPLES_PER_SOURCE;
    // Default settings: the judge window applies (the fixture's tenths of points mostly fall outside it).
    const store = new MemoryRunStore();
    const res = await runPipeline(options(store, { prompts: instruction, construct: undefined }));
    expect(res.construct!.report.settings.instructionGap).toEqual({ min: 0.1, max: 0.3, unit: 'score' });
    expect(res.construct!.report.gapWindows.instruction).toMatchObject({ compares: 'score', bounds: { min: 0.1, max: 0.3 } });
    for (const row of res.construct!.dpo) expect(row.gap!).toBeGreaterThanOrEqual(0.1 - 1e-9);

    // A judge that writes only whitespace (the random demo model at temperature 0 does).
    const blank = await startMockServer(() => ({ kind: 'json', body: chatCompletion('\n\n\n\n') }));
    try {
      const spec: JudgeSpec = { type: 'judge', judge: { source: makeSource({ id: 'judge', name: 'Blank', baseURL: blank.baseURL, apiKey: '', model: 'blank', temperature: 0, retry: FAST }) } };
      const s2 = new MemoryRunStore();
      const r2 = await runPipeline(options(s2, { prompts: instruction, judge: spec, construct: undefined }));
      expect(r2.score).toMatchObject({ failed: n, scored: 0 });
      expect(r2.warnings.join('\n')).toContain(
        `the judge answered ${n} of ${n} response(s) without a readable score: the verdict is empty (4 whitespace character(s)): the judge model wrote nothing`,
      );
      expect(r2.warnings.join('\n')).not.toMatch(/could not be fully scored/);
      for (const p of r2.construct!.report.prompts) expect(p.split === 'sft' ? p.sft.reason : p.dpo.reason).toBe('verdict_unreadable');
      // The verdict and the reason are stored with each score, and counted in the report.
      const rec = (await s2.listScores())[0]!;
      expect(rec).toMatchObject({ score: null, judge: { method: 'judge', raw: null, verdict: '\n\n\n\n', detail: expect.stringMatching(/^the verdict is empty/) } });
      const report = JSON.parse((await s2.readArtifact(ARTIFACTS.report))!) as { scoring: unknown };
      expect(report.scoring).toMatchObject({ judged: n, scored: 0, unreadable: [{ count: n, why: expect.stringMatching(/^the verdict is empty/), example: '\n\n\n\n' }], failed: [] });
    } finally {
      await blank.close();
    }
  });

  it('runs over an IndexedDB store (Dexie) the same way', async () => {
    const db = new CollectDB(`pipeline-${Math.random()}`, { indexedDB, IDBKeyRange });
    const store = new DexieRunStore('run-1', db);
    const res = await runPipeline(options(store));
    expect(res.cancelled).toBe(false);
    checkSets(res, (await store.readArtifact(ARTIFACTS.sft))!, (await store.readArtifact(ARTIFACTS.dpo))!);
    expect(await store.listScores()).toHaveLength(N_JUDGED);
    expect(await store.listArtifacts()).toEqual(expect.arrayContaining(['sft.jsonl', 'report.json']));
    const j = servers.judged().length;
    const again = await runPipeline(options(new DexieRunStore('run-1', db)));
    expect(again.score).toMatchObject({ skipped: N_JUDGED, scored: 0 });
    expect(servers.judged().length).toBe(j);
    await store.clear();
    expect(await store.listScores()).toEqual([]);
    db.close();
  });
});

describe('pipeline config files', () => {
  const env = { FUSE_KEY: 'sk-from-env-0123456789' };
  it('parses sources with defaults, env keys and unique names', () => {
    const list = parseSourcesConfig(
      [
        { name: 'gemma', baseURL: 'https://openrouter.ai/api/v1', apiKey: '$FUSE_KEY', model: 'google/gemma-2-27b-it', n: 5, concurrency: 8 },
        { name: 'qwen', baseURL: 'http://127.0.0.1:8000/v1', apiKey: '${FUSE_KEY}', model: 'Qwen/Qwen2.5-72B-Instruct', temperature: 0.7, top_p: 0.8, max_tokens: 512, timeoutMs: 1000 },
      ],
      { file: 'sources.json', env },
    );
    expect(list[0]).toMatchObject({ id: 'gemma', apiKey: env.FUSE_KEY, temperature: 0.8, top_p: 0.95, n: 5, concurrency: 8 });
    expect(list[1]).toMatchObject({ id: 'qwen', temperature: 0.7, top_p: 0.8, max_tokens: 512, repetition_penalty: 1.05, retry: { timeoutMs: 1000 } });
    const err = (v: unknown, e: Record<string, string> = env) => {
      try {
        parseSourcesConfig(v, { file: 'sources.json', env: e });
      } catch (x) {
        expect(x).toBeInstanceOf(ConfigError);
        return (x as Error).message;
      }
      throw new Error('no error');
    };
    const ok = { name: 'a', baseURL: 'http://h/v1', model: 'm' };
    expect(err([ok, { ...ok, temperature: '0.8' }])).toMatch(/^sources\.json: \[1\]\.temperature: .*expected number/);
    expect(err([{ ...ok, baseURL: 'h/v1' }])).toMatch(/^sources\.json: \[0\]\.baseURL: must be an http\(s\) URL/);
    expect(err([{ ...ok, tempurature: 1 }])).toMatch(/^sources\.json: .*tempurature/);
    expect(err([ok, ok])).toMatch(/^sources\.json: \[1\]\.name: "a" is already used by source \[0\]/);
    expect(err([{ ...ok, apiKey: '$NOPE' }])).toBe('sources.json: [0].apiKey: environment variable NOPE is not set');
    expect(err({ sources: [] })).toMatch(/^sources\.json: .*expected array/);
    expect(err([])).toMatch(/at least one source/);
  });

  it('parses a chat judge or a reward model', () => {
    const j = parseJudgeConfig({ baseURL: 'http://h/v1', apiKey: '$FUSE_KEY', model: 'gpt-judge', concurrency: 2 }, { file: 'judge.json', env });
    expect(j.spec).toMatchObject({ type: 'judge', concurrency: 2, judge: { source: { model: 'gpt-judge', temperature: 0, apiKey: env.FUSE_KEY } } });
    expect(j.domains).toEqual(['instruction', 'math', 'code']);
    const r = parseJudgeConfig({ type: 'reward', baseURL: 'http://h', model: 'RLHFlow/ArmoRM-Llama3-8B-v0.1', domains: ['instruction'] }, { file: 'judge.json' });
    // The default mapping is fitted to the run (a fixed one collapsed likelihood rewards to 0.00).
    expect(r.spec).toMatchObject({ type: 'reward', reward: { scorePath: 'data.0.data.0', normalize: { kind: 'run' }, apiKey: '' } });
    expect(r.domains).toEqual(['instruction']);
    expect(r.gapWindow).toBeUndefined();
    const armo = parseJudgeConfig(
      { type: 'reward', baseURL: 'http://h', model: 'RLHFlow/ArmoRM-Llama3-8B-v0.1', normalize: { kind: 'none' }, gapWindow: { min: 0.01, max: 0.1, unit: 'raw' } },
      { file: 'judge.json' },
    );
    expect(armo).toMatchObject({ spec: { reward: { normalize: { kind: 'none' } } }, gapWindow: { min: 0.01, max: 0.1, unit: 'raw' } });
    const local = parseJudgeConfig({ type: 'local-reward', model: 'Skywork/Skywork-Reward-V2-Qwen3-0.6B', batchSize: 8, gapWindow: { min: 0.2, max: 2, unit: 'std' } }, { file: 'judge.json' });
    expect(local).toEqual({
      spec: { type: 'local-reward', localReward: { model: 'Skywork/Skywork-Reward-V2-Qwen3-0.6B', normalize: { kind: 'run' }, batchSize: 8 } },
      domains: ['instruction', 'math', 'code'],
      gapWindow: { min: 0.2, max: 2, unit: 'std' },
    });
    expect(() => parseJudgeConfig({ type: 'local-reward' }, { file: 'judge.json' })).toThrow(/^judge\.json: model: /);
    expect(() => parseJudgeConfig({ type: 'local-reward', model: 'x', gapWindow: { min: 1, max: 0.5, unit: 'raw' } }, { file: 'judge.json' })).toThrow(
      /^judge\.json: gapWindow\.min: min must not be above max/,
    );
    expect(() => parseJudgeConfig({ type: 'local-reward', model: 'x', gapWindow: { min: 0, max: 1, unit: 'sigma' } }, { file: 'judge.json' })).toThrow(/^judge\.json: gapWindow\.unit: /);
    expect(() => parseJudgeConfig({ baseURL: 'http://h/v1' }, { file: 'judge.json' })).toThrow(/^judge\.json: model: /);
    expect(() => parseJudgeConfig({ type: 'rm', baseURL: 'http://h/v1', model: 'x' }, { file: 'judge.json' })).toThrow(
      'judge.json: type: expected "judge", "reward" or "local-reward", got "rm"',
    );
    expect(() => parseJudgeConfig({ type: 'reward', baseURL: 'http://h', model: 'x', normalize: { kind: 'minmax' } }, { file: 'j.json' })).toThrow(/^j\.json: normalize\.min: /);
  });
});
