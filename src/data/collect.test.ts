import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBKeyRange, indexedDB } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { planCollection, runCollection, type CollectPrompt, type SourceProgress } from './collect';
import { scoredResponses } from './construct';
import { makeSource, type Source } from './sources';
import { MemoryRunStore } from './store';
import { CollectDB, DexieRunStore } from './store-dexie';
import { JsonlRunStore } from './store-jsonl';
import { responseKey, type ResponseRecord, type ScoreRecord } from './types';
import { chatCompletion, lastUser, startMockServer, type Action, type MockServer, type SeenRequest } from './test-server';

const KEY = 'sk-collect-SECRET-abcdef0123456789';
const FAST = { baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 1500, maxAttempts: 3 };

let server: MockServer | null = null;
let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-collect-'));
});
afterEach(async () => {
  await server?.close();
  server = null;
  await rm(dir, { recursive: true, force: true });
});

async function serve(handler: (req: SeenRequest) => Action | Promise<Action>): Promise<MockServer> {
  server = await startMockServer(handler);
  return server;
}

function prompts(n: number): CollectPrompt[] {
  return Array.from({ length: n }, (_, i) => ({ id: `p${i}`, text: `question ${i}` }));
}

function src(baseURL: string, id: string, extra: Partial<Source> = {}): Source {
  return makeSource({ id, name: id.toUpperCase(), baseURL, apiKey: KEY, model: `model-${id}`, seed: 0, n: 2, concurrency: 3, retry: FAST, ...extra });
}

/** (model, prompt, sample) of a request: the seed is 0 + sampleIndex. */
function itemOf(r: SeenRequest): string {
  return `${String(r.body?.model)}|${lastUser(r)}|${String(r.body?.seed)}`;
}

describe('planCollection', () => {
  it('lists source × prompt × sample with unique keys and rejects duplicate ids', () => {
    const s = [src('http://127.0.0.1:1/v1', 'a'), src('http://127.0.0.1:1/v1', 'b', { n: 3 })];
    const items = planCollection(s, prompts(4));
    expect(items).toHaveLength(4 * 2 + 4 * 3);
    expect(new Set(items.map((i) => i.key)).size).toBe(items.length);
    expect(responseKey('a', 'p|1', 0)).not.toBe(responseKey('a|p', '1', 0));
    expect(() => planCollection([s[0]!, s[0]!], prompts(1))).toThrow(/duplicate source/);
    expect(() => planCollection(s, [...prompts(2), ...prompts(1)])).toThrow(/duplicate prompt/);
  });
});

describe('runCollection against a real local server', () => {
  it('reports the requests in flight with their start and attempt, every second while one is slow', async () => {
    let first = true;
    const s = await serve((r) => {
      const q = lastUser(r);
      if (q === 'question 1' && first) {
        first = false;
        return { kind: 'json', status: 503, body: { error: { message: 'busy' } } };
      }
      return { kind: 'json', delayMs: q === 'question 1' ? 2600 : 5, body: chatCompletion(`answer to ${q}`) };
    });
    const snapshots: { at: number; p: SourceProgress }[] = [];
    const t0 = Date.now();
    const res = await runCollection({
      sources: [src(s.baseURL, 'a', { n: 1, concurrency: 2, retry: { ...FAST, timeoutMs: 5000 } })],
      prompts: prompts(3),
      store: new MemoryRunStore(),
      onProgress: (p) => snapshots.push({ at: Date.now(), p: p[0]! }),
    });
    expect(res).toMatchObject({ collected: 3, failed: 0 });
    // While the slow one waits, it is listed (retried once, so attempt 2), with when it was first sent.
    const waiting = snapshots.filter((x) => x.p.done === 2 && x.p.requests.length === 1);
    expect(waiting.length).toBeGreaterThanOrEqual(2); // heartbeats: nothing else changes meanwhile
    const req = waiting.at(-1)!.p.requests[0]!;
    expect(req).toMatchObject({ promptId: 'p1', sampleIndex: 0, attempt: 2 });
    expect(req.startedAt).toBeGreaterThanOrEqual(t0);
    expect(waiting.at(-1)!.at - req.startedAt).toBeGreaterThan(1500);
    // The rate decays while it waits, so the ETA of the last response grows.
    const etas = waiting.map((x) => x.p.etaSeconds!);
    expect(etas.at(-1)!).toBeGreaterThan(etas[0]!);
    expect(snapshots.at(-1)!.p).toMatchObject({ inFlight: 0, requests: [], etaSeconds: 0 });
  });

  it('collects every item once or records it failed, with retries, under concurrency', async () => {
    const attempts = new Map<string, number>();
    const successes = new Map<string, number>();
    const s = await serve((r) => {
      const id = itemOf(r);
      const k = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, k);
      const q = lastUser(r);
      if (q === 'question 1' && r.body?.model === 'model-b') return { kind: 'json', status: 400, body: { error: { message: 'context too long' } } };
      if (q === 'question 2' && r.body?.model === 'model-a') return { kind: 'json', status: 503, body: { error: { message: 'overloaded' } } };
      if (k === 1 && q === 'question 3') return { kind: 'reset' };
      if (k === 1 && q === 'question 4') return { kind: 'json', status: 429, headers: { 'retry-after-ms': '30' }, body: {} };
      if (k === 1 && q === 'question 0') return { kind: 'raw', body: '{"trunc' };
      successes.set(id, (successes.get(id) ?? 0) + 1);
      return { kind: 'json', delayMs: 5 + (r.n % 4) * 5, body: chatCompletion(`${String(r.body?.model)}: ${q} #${String(r.body?.seed)}`, { usage: { prompt_tokens: 7, completion_tokens: 3 } }) };
    });
    const store = await JsonlRunStore.open(dir);
    const sources = [src(s.baseURL, 'a'), src(s.baseURL, 'b', { n: 3, concurrency: 4 })];
    const snapshots: SourceProgress[][] = [];
    const res = await runCollection({ sources, prompts: prompts(6), store, onProgress: (p) => snapshots.push(p) });
    const total = 6 * 2 + 6 * 3;
    const failedExpected = 2 /* a: q2 × 2 */ + 3; /* b: q1 × 3 */
    expect(res).toMatchObject({ cancelled: false, pending: 0, failed: failedExpected, collected: total - failedExpected, skipped: 0 });
    const recs = await store.list();
    const errs = await store.listErrors();
    expect(recs.length + errs.length).toBe(total);
    expect(new Set(recs.map((r) => r.key)).size).toBe(recs.length);
    // The content matches the item it is stored under (no cross-wiring under concurrency).
    for (const r of recs) expect(r.content).toBe(`model-${r.sourceId}: question ${r.promptId.slice(1)} #${r.sampleIndex}`);
    expect(errs.find((e) => e.sourceId === 'b')).toMatchObject({ status: 400, kind: 'http', attempts: 1 });
    expect(errs.find((e) => e.sourceId === 'a')).toMatchObject({ status: 503, kind: 'server', attempts: 3 });
    // Every item was requested; each stored one was answered successfully exactly once.
    expect(attempts.size).toBe(total);
    expect(successes.size).toBe(recs.length);
    expect([...successes.values()].every((v) => v === 1)).toBe(true);
    const a = res.sources.find((p) => p.sourceId === 'a')!;
    expect(a).toMatchObject({ total: 12, done: 10, failed: 2, inFlight: 0, promptTokens: 70, completionTokens: 30, etaSeconds: 0 });
    expect(a.retries).toBeGreaterThan(0);
    expect(a.ratePerMinute).toBeGreaterThan(0);
    expect(snapshots.length).toBeGreaterThan(total);
    // The file on disk holds exactly the stored records, one per line.
    const lines = (await readFile(join(dir, 'responses.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(recs.length);
    await store.close();
    // Re-running retries only the failed items (they fail again here) and requests nothing else.
    const before = s.requests.length;
    const store2 = await JsonlRunStore.open(dir);
    const res2 = await runCollection({ sources, prompts: prompts(6), store: store2 });
    expect(res2).toMatchObject({ skipped: total - failedExpected, failed: failedExpected, collected: 0 });
    expect(s.requests.slice(before).every((r) => ['question 1', 'question 2'].includes(lastUser(r)))).toBe(true);
    const res3 = await runCollection({ sources, prompts: prompts(6), store: store2, retryFailed: false });
    expect(res3).toMatchObject({ failed: failedExpected, pending: 0 });
    await store2.close();
  });

  it('is cancelled midway without losing what arrived, and a re-run requests only the rest', async () => {
    const s = await serve((r) => ({ kind: 'json', delayMs: 40, body: chatCompletion(`answer to ${lastUser(r)} #${String(r.body?.seed)}`) }));
    const sources = [src(s.baseURL, 'a', { n: 3, concurrency: 2 }), src(s.baseURL, 'b', { n: 2, concurrency: 2 })];
    const ps = prompts(5);
    const total = 5 * 3 + 5 * 2;
    const ctrl = new AbortController();
    const store = await JsonlRunStore.open(dir);
    const res = await runCollection({
      sources,
      prompts: ps,
      store,
      signal: ctrl.signal,
      onProgress: (p) => {
        if (p.reduce((a, x) => a + x.collected, 0) >= 6) ctrl.abort();
      },
    });
    expect(res.cancelled).toBe(true);
    expect(res.failed).toBe(0); // a cancel is not a failure
    const stored1 = await store.list();
    expect(stored1.length).toBeGreaterThanOrEqual(6);
    expect(stored1.length).toBeLessThan(total);
    expect(res.pending).toBe(total - stored1.length);
    expect(await store.listErrors()).toEqual([]);
    await store.close();
    const requested1 = s.requests.length;
    // Requests that were in flight when cancelled got no stored response: at most one per worker.
    expect(requested1 - stored1.length).toBeLessThanOrEqual(4);

    const store2 = await JsonlRunStore.open(dir);
    expect(store2.recovered).toBe(false);
    const res2 = await runCollection({ sources, prompts: ps, store: store2 });
    expect(res2).toMatchObject({ cancelled: false, pending: 0, failed: 0, skipped: stored1.length, collected: total - stored1.length });
    const second = s.requests.slice(requested1).map(itemOf);
    expect(second).toHaveLength(total - stored1.length);
    const storedItems = new Set(stored1.map((r) => `model-${r.sourceId}|question ${r.promptId.slice(1)}|${r.sampleIndex}`));
    for (const it of second) expect(storedItems.has(it)).toBe(false);
    expect(new Set(second).size).toBe(second.length);
    const all = await store2.list();
    expect(all).toHaveLength(total);
    expect(new Set(all.map((r) => r.key)).size).toBe(total);
    await store2.close();
  });

  it('respects requestsPerMinute', async () => {
    const s = await serve(() => ({ kind: 'json', body: chatCompletion('ok') }));
    const t0 = Date.now();
    const res = await runCollection({ sources: [src(s.baseURL, 'a', { n: 1, concurrency: 5, requestsPerMinute: 600 })], prompts: prompts(5), store: new MemoryRunStore() });
    expect(res.collected).toBe(5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390); // 5 requests, 100 ms apart
  });

  it('records failures without the key', async () => {
    const s = await serve((r) => ({ kind: 'json', status: 401, body: { error: { message: `invalid key ${String(r.headers.authorization)}` } } }));
    const store = await JsonlRunStore.open(dir);
    const res = await runCollection({ sources: [src(s.baseURL, 'a', { n: 1 })], prompts: prompts(2), store });
    expect(res.failed).toBe(2);
    await store.close();
    const onDisk = await readFile(join(dir, 'errors.jsonl'), 'utf8');
    expect(onDisk).toContain('401');
    expect(onDisk).not.toContain(KEY);
    expect(onDisk).not.toContain('SECRET');
    const reopened = await JsonlRunStore.open(dir);
    const rows = scoredResponses(await reopened.list(), await reopened.listErrors());
    await reopened.close();
    expect(rows).toHaveLength(2);
    expect(rows[0]!.response.error).toMatch(/HTTP 401/);
  });
});

function record(key: string, content = 'x'): ResponseRecord {
  return {
    key,
    sourceId: 'a',
    sourceName: 'A',
    model: 'm',
    servedModel: 'm',
    promptId: 'p',
    sampleIndex: 0,
    content,
    finishReason: 'stop',
    params: {},
    attempts: 1,
    latencyMs: 1,
    createdAt: new Date(0).toISOString(),
  };
}

describe('JsonlRunStore', () => {
  it('refuses duplicates, even concurrent ones, and lets a response supersede an error', async () => {
    const st = await JsonlRunStore.open(dir);
    await st.putError({ key: 'k1', sourceId: 'a', promptId: 'p', sampleIndex: 0, kind: 'server', status: 500, message: 'boom', attempts: 3, createdAt: '' });
    expect(await st.listErrors()).toHaveLength(1);
    const results = await Promise.all([st.put(record('k1', 'one')), st.put(record('k1', 'two')), st.put(record('k2'))]);
    expect(results).toEqual([true, false, true]);
    expect(await st.listErrors()).toHaveLength(0);
    await st.close();
    const again = await JsonlRunStore.open(dir);
    expect((await again.list()).map((r) => r.content).sort()).toEqual(['one', 'x']);
    expect(await again.listErrors()).toHaveLength(0);
    await again.close();
  });

  it('tolerates and reports a torn last line, and appends cleanly after it', async () => {
    const st = await JsonlRunStore.open(dir, { fsync: false });
    await st.put(record('k1'));
    await st.put(record('k2'));
    await st.close();
    const file = join(dir, 'responses.jsonl');
    await appendFile(file, '{"key":"k3","sourceId":"a","content":"half a rec'); // killed mid-write
    const st2 = await JsonlRunStore.open(dir);
    expect(st2.recovered).toBe(true);
    expect(st2.recovery.responses).toMatchObject({ tornTail: true, corruptLines: [] });
    expect(st2.recovery.responses.tornBytes).toBeGreaterThan(10);
    expect((await st2.list()).map((r) => r.key)).toEqual(['k1', 'k2']);
    expect(await st2.has('k3')).toBe(false);
    await st2.put(record('k3'));
    await st2.close();
    const text = await readFile(file, 'utf8');
    expect(text.split('\n').filter(Boolean).map((l) => JSON.parse(l).key)).toEqual(['k1', 'k2', 'k3']);
    expect(await readFile(`${file}.torn`, 'utf8')).toContain('half a rec');
    const st3 = await JsonlRunStore.open(dir);
    expect(st3.recovered).toBe(false);
    await st3.close();
  });

  it('keeps a complete last record that lost its newline; skips and reports corrupt lines', async () => {
    const file = join(dir, 'responses.jsonl');
    await writeFile(file, `${JSON.stringify(record('k1'))}\nGARBAGE\n${JSON.stringify(record('k1'))}\n${JSON.stringify(record('k2'))}`);
    const st = await JsonlRunStore.open(dir);
    expect(st.recovery.responses).toMatchObject({ tornTail: false, corruptLines: [2], duplicateLines: 1 });
    expect((await st.list()).map((r) => r.key)).toEqual(['k1', 'k2']);
    await st.put(record('k3'));
    await st.close();
    expect((await readFile(file, 'utf8')).endsWith(`${JSON.stringify(record('k3'))}\n`)).toBe(true);
  });
});

describe('JsonlRunStore scores and artifacts', () => {
  it('keeps the latest score of a key across reopening, and replaces artifacts whole', async () => {
    const score = (score: number | null, error?: string): ScoreRecord => ({
      key: 'k1',
      promptId: 'p',
      sourceId: 'a',
      sampleIndex: 0,
      domain: 'math',
      scorer: 'math',
      score,
      ...(error ? { error } : {}),
      createdAt: '',
    });
    const st = await JsonlRunStore.open(dir);
    await st.putScore(score(null, 'judge: timeout'));
    await st.putScore(score(0.5));
    await st.writeArtifact('sft.jsonl', 'one\n');
    await st.writeArtifact('sft.jsonl', 'two\n');
    await expect(st.writeArtifact('../escape.txt', 'x')).rejects.toThrow(/not a valid artifact name/);
    await expect(st.writeArtifact('scores.jsonl', 'x')).rejects.toThrow(/not a valid artifact name/);
    expect(await st.readArtifact('nope.json')).toBeUndefined();
    await st.close();
    const again = await JsonlRunStore.open(dir);
    expect(await again.listScores()).toEqual([score(0.5)]);
    expect(await again.readArtifact('sft.jsonl')).toBe('two\n');
    expect((await readFile(join(dir, 'scores.jsonl'), 'utf8')).trim().split('\n')).toHaveLength(2);
    await again.close();
  });
});

describe('DexieRunStore (fake IndexedDB)', () => {
  it('stores, refuses duplicates, separates runs, and backs a collection', async () => {
    const db = new CollectDB(`test-${Math.random()}`, { indexedDB, IDBKeyRange });
    const st = new DexieRunStore('run1', db);
    const other = new DexieRunStore('run2', db);
    await st.putError({ key: 'k1', sourceId: 'a', promptId: 'p', sampleIndex: 0, kind: 'timeout', message: 't', attempts: 5, createdAt: '' });
    expect(await st.listErrors()).toHaveLength(1);
    expect(await Promise.all([st.put(record('k1')), st.put(record('k1'))])).toEqual(expect.arrayContaining([true, false]));
    expect(await st.has('k1')).toBe(true);
    expect(await other.has('k1')).toBe(false);
    expect(await st.listErrors()).toHaveLength(0);
    await st.putError({ key: 'k1', sourceId: 'a', promptId: 'p', sampleIndex: 0, kind: 'timeout', message: 't', attempts: 5, createdAt: '' });
    expect(await st.listErrors()).toHaveLength(0); // a response is never shadowed by a later error
    const got = await st.list();
    expect(got).toHaveLength(1);
    expect(got[0]).not.toHaveProperty('runId');

    const s = await serve((r) => ({ kind: 'json', body: chatCompletion(`ok ${lastUser(r)}`) }));
    const res = await runCollection({ sources: [src(s.baseURL, 'a')], prompts: prompts(3), store: other });
    expect(res.collected).toBe(6);
    const n = s.requests.length;
    const res2 = await runCollection({ sources: [src(s.baseURL, 'a')], prompts: prompts(3), store: new DexieRunStore('run2', db) });
    expect(res2).toMatchObject({ skipped: 6, collected: 0 });
    expect(s.requests.length).toBe(n);
    await other.clear();
    expect(await other.list()).toHaveLength(0);
    db.close();
  });
});
