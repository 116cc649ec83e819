// fuse-studio classroom over real HTTP on 127.0.0.1: the model mirror (Range, ETag, HEAD, bytes
// counted per student and file, and the studio's own Hub client downloading through it), the source
// proxy against a fault-injecting upstream (one upstream call per item for a class, coalescing,
// one retry, quotas and rate limits as 429s the studio's client reports), the recipe, the board,
// admin routes, body limits, CORS, and no API key in anything the server sends.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chatComplete, makeSource, SourceError } from '../data/sources';
import { chatCompletion, lastUser, startMockServer, type Action, type MockServer, type SeenRequest } from '../data/test-server';
import { NodeFileStore } from '../io/node-files';
import { writeDemoModel } from '../model/demo-node';
import { hubSource } from '../model/source';
import { buildBundle, parseBundle, unzipFiles, zipFiles } from '../studio/bundle';
import { classroomJudge, classroomSources } from './config';
import { folderMirrorModel, prepareMirrorModel } from './mirror';
import { startClassroom, type Classroom, type ClassroomOptions } from './server';

const KEY = 'sk-classroom-SECRET-4f9a2b7c1d';
const JUDGE_KEY = 'sk-judge-SECRET-88aa77bb66';
const A = 'student-aaaaaaaa';
const B = 'student-bbbbbbbb';

let dir: string;
let studioDir: string;
let modelDir: string;
let weights: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'classroom-'));
  studioDir = join(dir, 'studio');
  modelDir = join(dir, 'tiny-model');
  await mkdir(join(studioDir, 'assets'), { recursive: true });
  await writeFile(join(studioDir, 'index.html'), '<!doctype html><title>Fuse Studio</title><div id="root"></div>');
  await writeFile(join(studioDir, 'assets', 'app.js'), 'console.log("studio")');
  await mkdir(join(modelDir, '.absent'), { recursive: true });
  weights = new Uint8Array(200_003).map((_, i) => (i * 7919) & 255);
  await writeFile(join(modelDir, 'config.json'), JSON.stringify({ model_type: 'llama', hidden_size: 8 }));
  await writeFile(join(modelDir, 'model.safetensors'), weights);
  await writeFile(join(modelDir, 'tokenizer.json.part'), 'partial');
  await writeFile(join(modelDir, '.absent', 'x'), '');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let upstream: MockServer | null = null;
let classroom: Classroom | null = null;

afterEach(async () => {
  await classroom?.close();
  await upstream?.close();
  classroom = null;
  upstream = null;
});

/** Everything the server sent in a test, for the key scan. */
const seen: string[] = [];

async function call(path: string, init: RequestInit & { student?: string } = {}): Promise<Response> {
  const { student, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (student) headers.set('x-fuse-student', student);
  if (rest.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
  const res = await fetch(`${classroom!.url}${path}`, { ...rest, headers });
  const copy = res.clone();
  seen.push(Buffer.from(await copy.arrayBuffer()).toString('latin1'), JSON.stringify([...res.headers]));
  return res;
}

const chat = (source: string, student: string, prompt: string, extra: Record<string, unknown> = {}) =>
  call(`/classroom/sources/${source}/v1/chat/completions`, { method: 'POST', student, body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: prompt }], temperature: 0.8, max_tokens: 16, ...extra }) });

async function start(handler: (r: SeenRequest) => Action | Promise<Action>, o: Partial<Omit<ClassroomOptions, 'judge'>> & { judge?: boolean } = {}): Promise<Classroom> {
  upstream = await startMockServer(handler);
  const sources = await classroomSources([{ name: 'Big Model', baseURL: upstream.baseURL, apiKey: '$CLASS_KEY', model: 'big-model-v1', n: 2, seed: 100 }], { file: 'sources.json', env: { CLASS_KEY: KEY } });
  let judge: ClassroomOptions['judge'] = null;
  if (o.judge) {
    const j = classroomJudge({ baseURL: upstream.baseURL, apiKey: JUDGE_KEY, model: 'judge-model', rubric: 'Rate {question} {response}' }, { file: 'judge.json' }, sources);
    sources.push(j.source);
    judge = { sourceId: j.source.id, rubric: j.rubric };
  }
  const { judge: _j, ...rest } = o;
  classroom = await startClassroom({
    studioDir,
    models: [await folderMirrorModel(modelDir, 'classroom/tiny-model')],
    sources,
    judge,
    limits: { quota: 1000, perMinute: 1000 },
    host: '127.0.0.1',
    port: 0,
    retryDelayMs: 10,
    ...rest,
  });
  return classroom;
}

const answer = (r: SeenRequest) => `answer to ${lastUser(r)} (seed ${String(r.body?.seed)})`;

describe('model mirror', () => {
  it('serves Hub resolve routes with HEAD, Range, ETag and counts the bytes per student and file', async () => {
    await start(() => ({ kind: 'json', body: {} }));
    const url = '/classroom/tiny-model/resolve/main/model.safetensors';
    const head = await call(url, { method: 'HEAD', student: A });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(weights.length));
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    const etag = head.headers.get('etag')!;
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);

    const full = await call(url, { student: A });
    expect(new Uint8Array(await full.arrayBuffer())).toEqual(weights);
    const part = await call(url, { student: B, headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${weights.length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(weights.slice(1000, 2000));
    const suffix = await call(url, { student: B, headers: { range: 'bytes=-3' } });
    expect(new Uint8Array(await suffix.arrayBuffer())).toEqual(weights.slice(-3));
    const open = await call(url, { student: B, headers: { range: `bytes=${weights.length - 10}-` } });
    expect((await open.arrayBuffer()).byteLength).toBe(10);
    expect((await call(url, { headers: { range: `bytes=${weights.length}-` } })).status).toBe(416);
    expect((await call(url, { headers: { 'if-none-match': etag } })).status).toBe(304);
    // If-Range of another version: the whole file, not a piece of the new one appended to the old.
    const stale = await call(url, { student: B, headers: { range: 'bytes=5-9', 'if-range': '"0-0"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(weights.length);

    // Cookie identity (the studio's worker downloads carry it); other revisions, files, paths.
    const viaCookie = await call('/classroom/tiny-model/resolve/main/config.json', { headers: { cookie: `fuse_student=${A}` } });
    const configBytes = (await viaCookie.arrayBuffer()).byteLength;
    expect((await call('/classroom/tiny-model/resolve/v2/config.json')).status).toBe(404);
    expect((await call('/classroom/tiny-model/resolve/main/tokenizer.json')).status).toBe(404); // only .part exists
    expect((await call('/classroom/tiny-model/resolve/main/tokenizer.json.part')).status).toBe(404);
    expect((await call('/classroom/tiny-model/resolve/main/.absent/x')).status).toBe(404);
    expect((await call('/classroom/tiny-model/resolve/main/..%2f..%2fetc%2fpasswd')).status).toBe(404);
    const api = (await (await call('/api/models/classroom/tiny-model')).json()) as { siblings: { rfilename: string }[] };
    expect(api.siblings.map((s) => s.rfilename)).toEqual(['config.json', 'model.safetensors']);

    const stats = classroom!.mirror.stats();
    expect(stats.byStudent[A]).toEqual({ 'classroom/tiny-model/model.safetensors': weights.length, 'classroom/tiny-model/config.json': configBytes });
    expect(stats.byStudent[B]).toEqual({ 'classroom/tiny-model/model.safetensors': 1000 + 3 + 10 + weights.length });
  });

  it("is a Hub the studio's own downloader reads: a resumable download through it, counted once", async () => {
    await start(() => ({ kind: 'json', body: {} }));
    const store = new NodeFileStore(join(dir, 'client-cache'));
    const cookieFetch: typeof fetch = (input, init) => {
      const h = new Headers(init?.headers);
      h.set('cookie', `fuse_student=${A}`);
      return fetch(input, { ...init, headers: h });
    };
    const src = hubSource('classroom/tiny-model', { store, endpoint: classroom!.url, fetchImpl: cookieFetch });
    expect(await src.has('generation_config.json')).toBe(false);
    expect(await src.size('model.safetensors')).toBe(weights.length);
    const file = await src.open('model.safetensors');
    expect(await file.read(0, file.size)).toEqual(weights);
    expect(classroom!.mirror.stats().byStudent[A]!['classroom/tiny-model/model.safetensors']).toBe(weights.length);
  });

  it('downloads a Hub repo once into the model cache and mirrors it from there', async () => {
    // The "Hub" is another classroom mirroring the demo model's folder.
    const demoDir = join(dir, 'hub-demo');
    await writeDemoModel(demoDir);
    const hub = await startClassroom({ studioDir, models: [await folderMirrorModel(demoDir, 'org/demo')], sources: [], limits: { quota: 1, perMinute: 1 }, host: '127.0.0.1', port: 0 });
    const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, FUSE_STUDIO_CACHE: process.env.FUSE_STUDIO_CACHE, HF_TOKEN: process.env.HF_TOKEN };
    process.env.HF_ENDPOINT = hub.url;
    process.env.FUSE_STUDIO_CACHE = join(dir, 'instructor-cache');
    delete process.env.HF_TOKEN;
    try {
      const m = await prepareMirrorModel('org/demo');
      expect(m).toMatchObject({ repo: 'org/demo', revision: 'main' });
      expect(m.dir.startsWith(join(dir, 'instructor-cache'))).toBe(true);
      const want = (await folderMirrorModel(demoDir, 'x')).files.map((f) => [f.name, f.size]);
      expect(m.files.map((f) => [f.name, f.size])).toEqual(want);
      const once = hub.mirror.stats().bytes;
      expect(once).toBe(want.reduce((s, [, n]) => s + (n as number), 0));
      // A second start reads the cache: nothing more from the Hub.
      await prepareMirrorModel('org/demo');
      expect(hub.mirror.stats().bytes).toBe(once);
    } finally {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      await hub.close();
    }
  });

  it('prepares a folder as classroom/<name> and refuses one without config.json', async () => {
    const m = await prepareMirrorModel(modelDir);
    expect(m.repo).toBe('classroom/tiny-model');
    expect(m.files.map((f) => f.name)).toEqual(['config.json', 'model.safetensors']);
    await expect(prepareMirrorModel(studioDir)).rejects.toThrow(/has no config.json/);
  });
});

describe('source proxy', () => {
  it('thirty students collecting the same items cost one upstream call per item, with the key added upstream', async () => {
    await start((r) => ({ kind: 'json', body: chatCompletion(answer(r)), delayMs: 30 }));
    const students = Array.from({ length: 30 }, (_, i) => `student-${String(i).padStart(8, '0')}`);
    const items = ['p1', 'p2', 'p3'].flatMap((p) => [100, 101].map((seed) => ({ p, seed })));
    const replies = await Promise.all(
      students.flatMap((s) =>
        items.map(async ({ p, seed }) => {
          const res = await chat('Big-Model', s, p, { seed });
          expect(res.status).toBe(200);
          return ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
        }),
      ),
    );
    expect(new Set(replies).size).toBe(items.length);
    expect(upstream!.requests).toHaveLength(items.length);
    for (const r of upstream!.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.body?.model).toBe('big-model-v1');
    }
    const st = classroom!.proxy.stats();
    expect(st.upstreamCalls).toBe(items.length);
    expect(st.cacheHits + st.coalesced).toBe(students.length * items.length - items.length);
  });

  it('coalesces identical requests in flight into one upstream call', async () => {
    await start((r) => ({ kind: 'json', body: chatCompletion(answer(r)), delayMs: 300 }));
    const res = await Promise.all(Array.from({ length: 10 }, (_, i) => chat('Big-Model', `student-c${String(i).padStart(7, '0')}`, 'same', { seed: 100 })));
    expect(res.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(upstream!.requests).toHaveLength(1);
    expect(classroom!.proxy.stats().coalesced).toBe(9);
    expect(res.filter((r) => r.headers.get('x-classroom-cache') === 'coalesced')).toHaveLength(9);
  });

  it('retries an upstream fault once, and says so when the second attempt fails too', async () => {
    const attempts = new Map<string, number>();
    await start((r) => {
      const p = lastUser(r);
      const n = (attempts.get(p) ?? 0) + 1;
      attempts.set(p, n);
      if (p === 'always-500') return { kind: 'json', status: 500, body: { error: { message: `upstream broke (key ${String(r.headers.authorization)})` } } };
      if (n === 1) return p === 'reset' ? { kind: 'reset' } : p === 'garbage' ? { kind: 'raw', body: 'not json' } : { kind: 'json', status: 503, body: { error: { message: 'busy' } } };
      return { kind: 'json', body: chatCompletion(answer(r)) };
    });
    for (const p of ['flaky', 'reset', 'garbage']) {
      const res = await chat('Big-Model', A, p, { seed: 100 });
      expect(res.status, p).toBe(200);
      expect(attempts.get(p), p).toBe(2);
    }
    const bad = await chat('Big-Model', A, 'always-500', { seed: 100 });
    expect(bad.status).toBe(502);
    const body = (await bad.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBe('upstream_error');
    expect(body.error.message).toMatch(/Big Model failed twice \(HTTP 500: upstream broke .*\); the classroom proxy retried once/);
    expect(body.error.message).not.toContain(KEY);
    expect(attempts.get('always-500')).toBe(2);
    // A failure is not cached: asking again goes upstream again.
    await chat('Big-Model', A, 'always-500', { seed: 100 });
    expect(attempts.get('always-500')).toBe(4);
  });

  it('tells samples apart: by seed, or by a student asking the same thing again', async () => {
    await start((r) => ({ kind: 'json', body: chatCompletion(`${answer(r)} #${r.n}`) }));
    const text = async (r: Response) => ((await r.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    const a1 = await text(await chat('Big-Model', A, 'q'));
    const a2 = await text(await chat('Big-Model', A, 'q'));
    expect(a1).not.toBe(a2);
    expect(await text(await chat('Big-Model', B, 'q'))).toBe(a1);
    expect(await text(await chat('Big-Model', B, 'q'))).toBe(a2);
    expect(upstream!.requests).toHaveLength(2);
    // Other sampling parameters are other items.
    await chat('Big-Model', B, 'q', { temperature: 0.2 });
    expect(upstream!.requests).toHaveLength(3);
  });

  it('holds each student to the quota and the rate limit with 429s saying what to do; the studio client shows them', async () => {
    await start((r) => ({ kind: 'json', body: chatCompletion(answer(r)) }), { limits: { quota: 3, perMinute: 1000 } });
    for (let i = 0; i < 3; i++) expect((await chat('Big-Model', A, `q${i}`, { seed: 100 })).status).toBe(200);
    const over = await chat('Big-Model', A, 'q9', { seed: 100 });
    expect(over.status).toBe(429);
    const e = (await over.json()) as { error: { message: string; code: string; type: string } };
    expect(e.error).toMatchObject({ code: 'classroom_quota', type: 'insufficient_quota' });
    expect(e.error.message).toMatch(/^Classroom quota reached: you have used the 3 requests this classroom allows each student\. .* ask the instructor to raise the quota/);
    expect((await chat('Big-Model', B, 'q0', { seed: 100 })).status).toBe(200); // another student is not held back

    // The studio's own client (the openai SDK, sources.ts) against the proxy: the message reaches the page.
    const source = makeSource({ name: 'Big Model', baseURL: `${classroom!.url}/classroom/sources/Big-Model/v1`, model: 'Big Model', headers: { 'X-Fuse-Student': A }, seed: 100, retry: { maxAttempts: 1 } });
    const err = await chatComplete(source, [{ role: 'user', content: 'again' }]).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).status).toBe(429);
    expect((err as SourceError).message).toContain('Classroom quota reached');
    const ok = await chatComplete({ ...source, headers: { 'X-Fuse-Student': B } }, [{ role: 'user', content: 'q0' }]);
    expect(ok.content).toBe('answer to q0 (seed 100)');

    // The instructor raises it (admin): the student goes on.
    const raised = await call('/classroom/admin/quota', { method: 'POST', headers: { authorization: `Bearer ${classroom!.adminToken}` }, body: JSON.stringify({ quota: 10, perMinute: 5 }) });
    expect(raised.status).toBe(200);
    expect((await chat('Big-Model', A, 'q9', { seed: 100 })).status).toBe(200);
    // …and the per-minute limit (3 of its 5 were used above): a 429 with Retry-After.
    expect((await chat('Big-Model', A, 'q10', { seed: 100 })).status).toBe(200);
    const fast = await chat('Big-Model', A, 'q11', { seed: 100 });
    expect(fast.status).toBe(429);
    expect(Number(fast.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await fast.json()) as { error: { message: string } }).error.message).toMatch(/allows each student 5 requests a minute\. Wait \d+ s and try again/);
    expect(classroom!.proxy.stats().refused).toEqual({ quota: 2, rate: 1 });
  });

  it('refuses a request without a student id, a stream, an unknown parameter and an unknown source, by name', async () => {
    await start((r) => ({ kind: 'json', body: chatCompletion(answer(r)) }));
    const noId = await call('/classroom/sources/Big-Model/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }) });
    expect(noId.status).toBe(400);
    expect(((await noId.json()) as { error: { message: string } }).error.message).toMatch(/no student id/);
    expect(((await (await chat('Big-Model', A, 'hi', { stream: true })).json()) as { error: { param: string } }).error.param).toBe('stream');
    expect(((await (await chat('Big-Model', A, 'hi', { tools: [] })).json()) as { error: { param: string } }).error.param).toBe('tools');
    const unknown = await chat('Nope', A, 'hi');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain('the sources are Big-Model');
    const models = (await (await call('/classroom/sources/Big-Model/v1/models')).json()) as { data: { id: string }[] };
    expect(models.data[0]!.id).toBe('Big Model');
    expect(upstream!.requests).toHaveLength(0);
  });
});

describe('recipe, board, admin, limits and keys', () => {
  it('the recipe is a project bundle whose sources are the proxy, with the instructor’s data and no key', async () => {
    const instructor = zipFiles(
      buildBundle({
        model: null,
        sources: [{ id: 's1', presetId: 'openrouter', enabled: true, createdAt: '2026-01-01', name: 'Upstream', baseURL: 'https://openrouter.ai/api/v1', apiKey: KEY, model: 'm', temperature: 1, top_p: 1, max_tokens: 9, n: 1, concurrency: 1 }],
        settings: [{ key: 'judge', value: { kind: 'none', rubric: 'x', reward: { apiKey: JUDGE_KEY } } }],
        dataRun: { runId: 'run-1', doc: { imports: [] }, artifacts: { 'prompts.jsonl': '{"prompt":"What is 2+2?"}\n' } },
        adapters: [],
        training: { sft: { lr: 1e-4 } },
      }),
    );
    await start((r) => ({ kind: 'json', body: chatCompletion(answer(r)) }), { recipe: instructor, judge: true });
    const res = await call('/classroom/recipe.zip', { student: A });
    expect(res.headers.get('content-type')).toBe('application/zip');
    const bundle = parseBundle(unzipFiles(new Uint8Array(await res.arrayBuffer())));
    const [src, judge] = bundle.project.sources;
    expect(src).toMatchObject({ name: 'Big Model', baseURL: `${classroom!.url}/classroom/sources/Big-Model/v1`, apiKey: '', seed: 100, n: 2, enabled: true, headers: { 'X-Fuse-Student': A } });
    expect(judge).toMatchObject({ id: 'classroom-judge', enabled: false });
    expect(bundle.project.settings.judge).toMatchObject({ kind: 'judge', sourceId: 'classroom-judge', rubric: 'Rate {question} {response}' });
    expect(bundle.datasets['prompts.jsonl']).toContain('What is 2+2?');
    expect(bundle.project.training).toEqual({ sft: { lr: 1e-4 } });
  });

  it('aggregates votes and results per model and student with intervals, exports them, and resets with the token only', async () => {
    await start(() => ({ kind: 'json', body: {} }));
    const vote = (student: string, v: unknown) => call('/classroom/board/votes', { method: 'POST', student, body: JSON.stringify(v) });
    expect((await vote(A, { a: 'base', b: 'sft', winner: 'sft' })).status).toBe(201);
    expect((await vote(A, { a: 'sft', b: 'base', winner: null })).status).toBe(201);
    expect((await vote(B, { a: 'base', b: 'sft', winner: 'sft' })).status).toBe(201);
    const bad = await vote(B, { a: 'base', b: 'sft', winner: 'dpo' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toBe('winner: must be a, b or null (a tie)');
    expect((await vote(B, { a: 'base', b: 'sft', winner: 'sft', ip: '1.2.3.4' })).status).toBe(400); // nothing else is stored
    expect((await call('/classroom/board/votes', { method: 'POST', body: JSON.stringify({ a: 'x', b: 'y', winner: null }) })).status).toBe(400);
    expect((await call('/classroom/board/results', { method: 'POST', student: B, body: JSON.stringify({ model: 'sft', metric: 'math pass@1', correct: 7, total: 10 }) })).status).toBe(201);

    const board = (await (await call('/classroom/board')).json()) as { version: number; totals: unknown; models: { model: string; wins: number; ties: number; rounds: number; winRate: number; interval: { low: number; high: number } }[]; metrics: { rate: number; interval: { low: number } }[]; students: { votes: number }[] };
    expect(board.totals).toEqual({ students: 2, votes: 3, results: 1, ties: 1 });
    expect(board.models[0]).toMatchObject({ model: 'sft', wins: 2, ties: 1, rounds: 3, winRate: 2.5 / 3 });
    expect(board.models[0]!.interval.low).toBeGreaterThan(0.3);
    expect(board.models[0]!.interval.high).toBeLessThan(1);
    expect(board.metrics[0]!.rate).toBe(0.7);
    expect(board.students.map((s) => s.votes)).toEqual([2, 1]);
    expect((await call(`/classroom/board?since=${board.version}`)).status).toBe(204);

    // Admin routes refuse without the token (and with a wrong one).
    for (const [method, path] of [['GET', 'stats'], ['GET', 'export.json'], ['GET', 'export.csv'], ['POST', 'reset'], ['POST', 'quota']]) {
      expect((await call(`/classroom/admin/${path}`, { method })).status, path).toBe(401);
      expect((await call(`/classroom/admin/${path}`, { method, headers: { authorization: 'Bearer wrong' } })).status, path).toBe(401);
    }
    const auth = { authorization: `Bearer ${classroom!.adminToken}` };
    const csv = await (await call('/classroom/admin/export.csv', { headers: auth })).text();
    expect(csv.split('\n')[0]).toBe('kind,at,student,a,b,winner,model,metric,correct,total');
    expect(csv).toContain(`vote,`);
    expect(csv).toContain(`,${B},,,,sft,math pass@1,7,10`);
    const exported = (await (await call('/classroom/admin/export.json', { headers: auth })).json()) as { votes: object[]; results: object[] };
    expect(exported.votes).toHaveLength(3);
    expect(Object.keys(exported.votes[0]!).sort()).toEqual(['a', 'at', 'b', 'student', 'winner']);
    expect((await call('/classroom/admin/reset', { method: 'POST', headers: auth })).status).toBe(200);
    expect(((await (await call('/classroom/board')).json()) as { totals: { votes: number } }).totals.votes).toBe(0);
  });

  it('keeps the board in --board FILE across a restart, and a reset empties it', async () => {
    const file = join(dir, 'board.jsonl');
    await start(() => ({ kind: 'json', body: {} }), { boardFile: file });
    await call('/classroom/board/votes', { method: 'POST', student: A, body: JSON.stringify({ a: 'base', b: 'sft', winner: 'sft' }) });
    await call('/classroom/board/results', { method: 'POST', student: B, body: JSON.stringify({ model: 'sft', metric: 'math accuracy', correct: 1, total: 2 }) });
    const before = (await (await call('/classroom/board')).json()) as { totals: unknown; models: unknown };
    await classroom!.close();
    classroom = null;
    await upstream!.close();
    upstream = null;
    await start(() => ({ kind: 'json', body: {} }), { boardFile: file });
    const after = (await (await call('/classroom/board')).json()) as { totals: unknown; models: unknown };
    expect(after.totals).toEqual(before.totals);
    expect(after.models).toEqual(before.models);
    await call('/classroom/admin/reset', { method: 'POST', headers: { authorization: `Bearer ${classroom!.adminToken}` } });
    expect(await readFile(file, 'utf8')).toBe('');
    await writeFile(file, '{"vote": {"a": "x"}}\n');
    await classroom!.close();
    classroom = null;
    await upstream!.close();
    upstream = null;
    await expect(start(() => ({ kind: 'json', body: {} }), { boardFile: file })).rejects.toThrow(`${file}: line 1 is not a board entry; fix or remove the file`);
  });

  it('refuses oversized bodies and other origins, and answers the studio’s own origin', async () => {
    await start((r) => ({ kind: 'json', body: chatCompletion(answer(r)) }), { maxBodyBytes: 4096 });
    const big = await chat('Big-Model', A, 'x'.repeat(5000));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { message: string } }).error.message).toBe('the request body is larger than 4096 bytes');
    const bigVote = await call('/classroom/board/votes', { method: 'POST', student: A, body: JSON.stringify({ a: 'x'.repeat(20_000), b: 'y', winner: null }) });
    expect(bigVote.status).toBe(413);
    expect(upstream!.requests).toHaveLength(0);

    const evil = await chat('Big-Model', A, 'hi', { seed: 100 }).then(() => call('/classroom/sources/Big-Model/v1/chat/completions', { method: 'POST', student: A, headers: { origin: 'http://evil.example' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }) }));
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const own = new URL(classroom!.url).origin;
    const ok = await call('/classroom/board', { headers: { origin: own } });
    expect(ok.headers.get('access-control-allow-origin')).toBe(own);
    const pre = await call('/classroom/board/votes', { method: 'OPTIONS', headers: { origin: own, 'access-control-request-headers': 'x-fuse-student, content-type' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toBe('x-fuse-student, content-type');
  });

  it('no API key appears in any response, page, recipe or board export', async () => {
    seen.length = 0;
    // The worst upstream: it echoes the key it was sent into its answers and errors.
    await start(
      (r) => {
        const auth = String(r.headers.authorization);
        if (lastUser(r) === 'fail') return { kind: 'json', status: 400, body: { error: { message: `bad request from ${auth}` } } };
        return { kind: 'json', body: chatCompletion(`echo: ${auth}`) };
      },
      { judge: true },
    );
    const texts: string[] = [];
    const grab = async (r: Response) => texts.push(Buffer.from(await r.arrayBuffer()).toString('latin1'));
    await grab(await call('/', { student: A }));
    await grab(await call('/board'));
    await grab(await call('/assets/app.js'));
    await grab(await call('/classroom/info', { student: A }));
    await grab(await call('/classroom/usage', { student: A }));
    const zip = await call('/classroom/recipe.zip', { student: A });
    for (const bytes of unzipFiles(new Uint8Array(await zip.arrayBuffer())).values()) texts.push(Buffer.from(bytes).toString('latin1'));
    const ok = await chat('Big-Model', A, 'hello', { seed: 100 });
    expect(ok.status).toBe(200);
    await grab(ok);
    await grab(await chat('Big-Model', A, 'fail', { seed: 100 }));
    await grab(await chat('judge', A, 'judge this', { seed: 100 }));
    await grab(await call('/classroom/sources/Big-Model/v1/models'));
    await call('/classroom/board/votes', { method: 'POST', student: A, body: JSON.stringify({ a: KEY, b: 'sft', winner: null }) }); // a student pasting a key is their own
    const auth = { authorization: `Bearer ${classroom!.adminToken}` };
    await grab(await call('/classroom/board'));
    // The upstream did get the keys (the proxy works), and echoed them.
    expect(upstream!.requests.map((r) => r.headers.authorization)).toEqual(expect.arrayContaining([`Bearer ${KEY}`, `Bearer ${JUDGE_KEY}`]));
    const all = [...texts, ...seen];
    for (const t of all) {
      expect(t).not.toContain(KEY.slice(3));
      expect(t).not.toContain(JUDGE_KEY.slice(3));
    }
    // An export would carry the key the student typed into a model name: the server refuses to send it rather than leak.
    const exported = await call('/classroom/admin/export.json', { headers: auth });
    expect(exported.status).toBe(500);
    expect(await exported.text()).not.toContain(KEY);
    await call('/classroom/admin/reset', { method: 'POST', headers: auth });
    const clean = await call('/classroom/admin/export.csv', { headers: auth });
    expect(clean.status).toBe(200);
    expect(await readFile(join(studioDir, 'index.html'), 'utf8')).not.toContain(KEY);
  });
});
