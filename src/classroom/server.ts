// `fuse-studio classroom`: the instructor's machine as a workshop's hub, one node:http server:
//
//   /…                                   the built studio (dist/studio), so students open one address
//   /{repo}/resolve/{rev}/{file}         the model mirror (mirror.ts)
//   /classroom/sources/{id}/v1/…         the source proxy (proxy.ts)
//   GET  /classroom/info                 what this classroom offers: models, sources, limits, your usage
//   GET  /classroom/recipe.zip           the class recipe: a project bundle (studio/bundle.ts) whose
//                                        sources are the proxy's endpoints (no key anywhere)
//   GET  /classroom/board                the results board's summary (board.ts); ?since=V answers
//                                        204 while nothing changed after version V
//   POST /classroom/board/votes          a blind A/B vote {a, b, winner}
//   POST /classroom/board/results        an evaluation result {model, metric, correct, total}
//                                        (in memory, or in --board FILE, JSONL, across restarts)
//   /classroom/admin/…                   with the token printed at start (Authorization: Bearer):
//                                        GET stats, GET export.json, GET export.csv, POST reset,
//                                        POST quota {quota, perMinute}
//
// Students are told apart by an anonymous per-browser id, the X-Fuse-Student header (or the
// fuse_student cookie the studio sets, which the model download in its worker carries).
// CORS: only the studio's own origin (the address students opened) and --origin ones; any other
// origin's request that is not a plain GET is refused, so another web page a student has open
// cannot spend the instructor's quota. Request bodies are limited (413), errors OpenAI-shaped.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { errorBody, readBody, RequestError } from '../serve/openai-server';
import { buildBundle, parseBundle, unzipFiles, zipFiles, type BundleInput, type ParsedBundle } from '../studio/bundle';
import type { SourceEntry } from '../studio/studioDb';
import { Board, BoardFullError, resultSchema, voteSchema } from './board';
import { ModelMirror, sendFile, type MirrorModel } from './mirror';
import { SourceProxy, type ProxyLimits, type ProxySource } from './proxy';

export const STUDENT_HEADER = 'x-fuse-student';
export const STUDENT_COOKIE = 'fuse_student';
const STUDENT_ID = /^[A-Za-z0-9_-]{8,64}$/;

export interface ClassroomOptions {
  /** The built studio (index.html and its assets). */
  studioDir: string;
  models: readonly MirrorModel[];
  sources: readonly ProxySource[];
  /** The judge among `sources` (a chat judge), with the rubric the recipe gives it. */
  judge?: { sourceId: string; rubric?: string } | null;
  /** The instructor's project bundle (zip bytes): prompts, training settings, eval set, adapters. */
  recipe?: Uint8Array | null;
  limits: ProxyLimits;
  host: string;
  port: number;
  /** Default: random, printed at start. */
  adminToken?: string;
  /** Largest proxy request body (bytes); board posts are held to 16 KiB. */
  maxBodyBytes?: number;
  /** A JSONL file the board is kept in (read at start, appended to, emptied by a reset); default: memory only. */
  boardFile?: string;
  /** Origins besides the server's own that may call it (e.g. a studio dev server). */
  origins?: readonly string[];
  /** Wait before the proxy's one retry (ms). */
  retryDelayMs?: number;
}

export interface Classroom {
  url: string;
  port: number;
  adminToken: string;
  mirror: ModelMirror;
  proxy: SourceProxy;
  board: Board;
  server: Server;
  close(): Promise<void>;
}

const BOARD_BODY_BYTES = 16 << 10;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
  '.zip': 'application/zip',
  '.whl': 'application/zip',
  '.tar': 'application/x-tar',
};

/** The student id of a request: the header, else the cookie; null when absent or malformed. */
export function studentOf(req: IncomingMessage): string | null {
  const h = req.headers[STUDENT_HEADER];
  const fromHeader = Array.isArray(h) ? h[0] : h;
  if (fromHeader && STUDENT_ID.test(fromHeader)) return fromHeader;
  const cookie = req.headers.cookie ?? '';
  const m = new RegExp(`(?:^|;\\s*)${STUDENT_COOKIE}=([^;]+)`).exec(cookie);
  return m && STUDENT_ID.test(m[1]!) ? m[1]! : null;
}

/** The source entries of the class recipe: each proxy endpoint, keyless, carrying the student's id. */
export function recipeSources(sources: readonly ProxySource[], origin: string, student: string | null, judgeId: string | null): SourceEntry[] {
  const createdAt = new Date(0).toISOString();
  return sources.map((s, i) => ({
    id: `classroom-${s.id}`,
    presetId: 'custom',
    enabled: s.id !== judgeId,
    createdAt: new Date(Date.parse(createdAt) + i).toISOString(),
    name: s.name,
    baseURL: `${origin}/classroom/sources/${encodeURIComponent(s.id)}/v1`,
    apiKey: '',
    model: s.name,
    temperature: s.sampling.temperature,
    top_p: s.sampling.top_p,
    max_tokens: s.sampling.max_tokens,
    n: s.sampling.n,
    concurrency: 4,
    // A base seed always: sample i asks with seed + i, which is how the proxy's cache tells samples apart.
    seed: s.seed ?? 0,
    ...(s.sampling.repetition_penalty !== undefined ? { repetition_penalty: s.sampling.repetition_penalty, repetitionPenaltyKey: 'repetition_penalty' } : {}),
    ...(student ? { headers: { 'X-Fuse-Student': student } } : {}),
    // The proxy already retries upstream faults; a refusal (quota) should reach the student fast.
    retry: { maxAttempts: 3 },
  }));
}

function sameToken(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startClassroom(o: ClassroomOptions): Promise<Classroom> {
  const studioDir = resolve(o.studioDir);
  if (!existsSync(join(studioDir, 'index.html'))) throw new Error(`${studioDir} has no index.html: build the studio first (npm run build), or give --studio DIR`);
  const adminToken = o.adminToken ?? randomBytes(18).toString('base64url');
  const mirror = new ModelMirror(o.models);
  const proxy = new SourceProxy(o.sources, { ...o.limits, ...(o.retryDelayMs !== undefined ? { retryDelayMs: o.retryDelayMs } : {}) });
  const board = new Board(o.boardFile ? { append: (line) => appendFileSync(o.boardFile!, `${line}\n`), clear: () => writeFileSync(o.boardFile!, '') } : null);
  if (o.boardFile && existsSync(o.boardFile)) board.replay(readFileSync(o.boardFile, 'utf8').split('\n'), o.boardFile);
  const secrets = o.sources.flatMap((s) => s.secrets).filter((s) => s.length >= 4);
  const instructorRecipe: ParsedBundle | null = o.recipe ? parseBundle(unzipFiles(o.recipe)) : null;
  const origins = new Set(o.origins ?? []);
  const maxBody = o.maxBodyBytes ?? 1 << 20;

  const ownOrigin = (req: IncomingMessage) => `http://${req.headers.host ?? `${o.host}:${port}`}`;
  const originAllowed = (req: IncomingMessage, origin: string) => origin === ownOrigin(req) || origins.has(origin);

  /** Anything the classroom itself writes goes through here: checked for the instructor's keys. */
  const send = (res: ServerResponse, status: number, body: string, type: string, headers: Record<string, string> = {}) => {
    if (secrets.some((s) => body.includes(s))) {
      status = 500;
      body = JSON.stringify(errorBody('the reply would have contained an API key of the instructor; it was not sent', 'server_error'));
      type = 'application/json';
    }
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) => send(res, status, JSON.stringify(value), 'application/json', headers);
  const fail = (res: ServerResponse, status: number, message: string, type = 'invalid_request_error', code: string | null = null) => json(res, status, errorBody(message, type, null, code));

  const info = (req: IncomingMessage) => {
    const student = studentOf(req);
    const origin = ownOrigin(req);
    return {
      classroom: 'fuse-studio classroom',
      models: o.models.map((m) => ({ repo: m.repo, revision: m.revision, bytes: m.bytes, files: m.files.map((f) => ({ name: f.name, size: f.size })) })),
      sources: proxy.list().map((s) => ({ id: s.id, name: s.name, kind: s.kind, baseURL: `${origin}/classroom/sources/${encodeURIComponent(s.id)}/v1`, judge: s.id === o.judge?.sourceId })),
      recipe: { url: '/classroom/recipe.zip', fromInstructor: Boolean(instructorRecipe) },
      limits: proxy.limits,
      you: student ? { student, ...proxy.usage(student) } : null,
    };
  };

  const recipeZip = (req: IncomingMessage): Uint8Array => {
    const student = studentOf(req);
    const judgeId = o.judge?.sourceId ?? null;
    const p = instructorRecipe?.project;
    const settings: Record<string, unknown> = { ...p?.settings };
    if (judgeId) {
      const prev = settings.judge && typeof settings.judge === 'object' ? (settings.judge as Record<string, unknown>) : {};
      settings.judge = { ...prev, kind: 'judge', sourceId: `classroom-${judgeId}`, ...(o.judge?.rubric ? { rubric: o.judge.rubric } : {}) };
    }
    const first = o.models[0];
    const input: BundleInput = {
      model: p?.model ?? (first ? { key: first.repo, source: `hf://${first.repo}@${first.revision}`, baseModel: first.repo, config: null } : null),
      sources: recipeSources(o.sources, ownOrigin(req), student, judgeId),
      settings: Object.entries(settings).map(([key, value]) => ({ key, value })),
      dataRun: p?.dataRun ? { runId: p.dataRun.runId, doc: p.dataRun.doc, artifacts: instructorRecipe!.datasets } : null,
      adapters: instructorRecipe?.adapters ?? [],
      training: p?.training ?? null,
      createdAt: p?.createdAt ?? new Date().toISOString(),
    };
    const files = buildBundle(input);
    for (const [path, bytes] of files) {
      const text = Buffer.from(bytes).toString('latin1');
      if (secrets.some((s) => text.includes(s))) throw new Error(`the class recipe's ${path} would contain an API key of the instructor; it was not sent`);
    }
    return zipFiles(files);
  };

  const admin = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const auth = req.headers.authorization ?? '';
    const given = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim() ?? '';
    if (!given || !sameToken(given, adminToken))
      return fail(res, 401, 'admin routes need the token printed when the classroom started: send "Authorization: Bearer <token>" (the Board page asks for it)', 'authentication_error', 'admin_token');
    const route = `${req.method} ${path}`;
    if (route === 'GET /classroom/admin/stats') return json(res, 200, { mirror: mirror.stats(), proxy: proxy.stats(), board: board.summary().totals });
    if (route === 'GET /classroom/admin/export.json') return json(res, 200, { summary: board.summary(), ...board.entries() }, { 'content-disposition': 'attachment; filename="classroom-board.json"' });
    if (route === 'GET /classroom/admin/export.csv') return send(res, 200, board.csv(), 'text/csv; charset=utf-8', { 'content-disposition': 'attachment; filename="classroom-board.csv"' });
    if (route === 'POST /classroom/admin/reset') {
      const body = (await readBody(req, BOARD_BODY_BYTES)) as { usage?: unknown } | undefined;
      board.reset();
      if (body?.usage === true) proxy.resetUsage();
      return json(res, 200, { ok: true, board: board.summary().totals, usageReset: body?.usage === true });
    }
    if (route === 'POST /classroom/admin/quota') {
      const body = (await readBody(req, BOARD_BODY_BYTES)) as Record<string, unknown> | undefined;
      const next = { ...proxy.limits };
      for (const k of ['quota', 'perMinute'] as const) {
        const v = body?.[k];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return fail(res, 400, `${k}: must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
        next[k] = v;
      }
      proxy.limits = next;
      return json(res, 200, { ok: true, limits: proxy.limits });
    }
    return fail(res, 404, `unknown admin route ${route}: GET stats, export.json, export.csv; POST reset, quota`, 'not_found_error');
  };

  const boardRoute = async (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams) => {
    if (path === '/classroom/board' && req.method === 'GET') {
      const since = query.get('since');
      if (since !== null && Number(since) === board.version) {
        res.writeHead(204, { 'cache-control': 'no-store' });
        res.end();
        return;
      }
      return json(res, 200, { version: board.version, ...board.summary() });
    }
    const kind = path === '/classroom/board/votes' ? 'vote' : path === '/classroom/board/results' ? 'result' : null;
    if (!kind) return fail(res, 404, `unknown route ${req.method} ${path}`, 'not_found_error');
    if (req.method !== 'POST') return fail(res, 405, `${req.method} ${path}: use POST`);
    const student = studentOf(req);
    if (!student) return fail(res, 400, 'no student id: the studio sends an anonymous id (header X-Fuse-Student); reload the studio page from the classroom address', 'invalid_request_error', 'no_student_id');
    const body = await readBody(req, BOARD_BODY_BYTES);
    const parsed = (kind === 'vote' ? voteSchema : resultSchema).safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const param = issue.path.map(String).join('.') || 'body';
      return json(res, 400, errorBody(`${param}: ${issue.message}`, 'invalid_request_error', param, 'invalid_value'));
    }
    try {
      if (kind === 'vote') board.addVote(student, parsed.data as never);
      else board.addResult(student, parsed.data as never);
    } catch (e) {
      if (e instanceof BoardFullError) return fail(res, 429, e.message, 'rate_limit_exceeded', 'board_full');
      throw e;
    }
    return json(res, 201, { ok: true, version: board.version });
  };

  const staticFile = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(res, 405, `${req.method} ${path}: the studio's files are read with GET`);
    let rel: string;
    try {
      rel = decodeURIComponent(path);
    } catch {
      return fail(res, 400, `${path}: not a valid path`);
    }
    let file = resolve(studioDir, `.${rel}`);
    if (file !== studioDir && !file.startsWith(studioDir + sep)) return fail(res, 404, `${path}: not found`, 'not_found_error');
    let s = await stat(file).catch(() => null);
    // The studio routes by path (/model, /board…): anything that is not a file and has no extension is the app.
    if ((!s || s.isDirectory()) && !extname(rel)) {
      file = join(studioDir, 'index.html');
      s = await stat(file).catch(() => null);
    }
    if (!s || !s.isFile()) return fail(res, 404, `${path}: not found`, 'not_found_error');
    const immutable = rel.startsWith('/assets/');
    await sendFile(req, res, { path: file, size: s.size, etag: `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"` }, {
      'content-type': MIME[extname(file)] ?? 'application/octet-stream',
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
  };

  let port = o.port;
  const running = new Set<AbortController>();
  const server = createServer((req, res) => {
    const ac = new AbortController();
    running.add(ac);
    res.on('close', () => {
      running.delete(ac);
      ac.abort();
    });
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://classroom');
      const path = url.pathname;
      const origin = req.headers.origin;
      if (origin) {
        if (originAllowed(req, origin)) {
          res.setHeader('access-control-allow-origin', origin);
          res.setHeader('vary', 'Origin');
        } else if (req.method !== 'GET' && req.method !== 'HEAD') {
          return fail(res, 403, `origin ${origin} may not use this classroom; open the studio from ${ownOrigin(req)}`, 'permission_error', 'origin_refused');
        }
      }
      if (req.method === 'OPTIONS') {
        const asked = req.headers['access-control-request-headers'];
        res.writeHead(204, {
          'access-control-allow-methods': 'GET, HEAD, POST, OPTIONS',
          'access-control-allow-headers': asked && asked.trim() ? asked : 'authorization, content-type, x-fuse-student',
          'access-control-max-age': '600',
        });
        res.end();
        return;
      }
      const notFound = (message: string) => fail(res, 404, message, 'not_found_error', 'not_found');
      if (await mirror.handle(req, res, path, studentOf(req) ?? 'anonymous', notFound)) return;
      if (path.startsWith('/classroom/')) {
        if (path === '/classroom/info' && req.method === 'GET') return json(res, 200, info(req));
        if (path === '/classroom/recipe.zip' && req.method === 'GET') {
          const zip = Buffer.from(recipeZip(req));
          res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length), 'cache-control': 'no-store', 'content-disposition': 'attachment; filename="class-recipe.zip"' });
          res.end(zip);
          return;
        }
        if (path === '/classroom/usage' && req.method === 'GET') {
          const student = studentOf(req);
          return json(res, 200, student ? { student, ...proxy.usage(student) } : { student: null, ...proxy.limits });
        }
        if (path.startsWith('/classroom/admin/')) return await admin(req, res, path);
        if (path === '/classroom/board' || path.startsWith('/classroom/board/')) return await boardRoute(req, res, path, url.searchParams);
        const src = /^\/classroom\/sources\/([^/]+)(\/.*)?$/.exec(path);
        if (src) {
          const body = req.method === 'POST' ? await readBody(req, maxBody) : undefined;
          const r = await proxy.handle(decodeURIComponent(src[1]!), src[2] ?? '/', req.method ?? 'GET', body, studentOf(req), ac.signal);
          if (res.destroyed) return;
          return json(res, r.status, r.body, r.headers);
        }
        return fail(res, 404, `unknown route ${req.method} ${path}`, 'not_found_error', 'not_found');
      }
      await staticFile(req, res, path);
    })().catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof RequestError) {
        // A body past the limit: answer, and close the connection rather than read the rest.
        if (e.status === 413) res.setHeader('connection', 'close');
        return json(res, e.status, errorBody(e.message, 'invalid_request_error', e.param, e.status === 413 ? 'body_too_large' : e.code));
      }
      return fail(res, 500, e instanceof Error ? e.message : String(e), 'server_error');
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(o.port, o.host, () => {
      server.off('error', rej);
      res();
    });
  });
  port = (server.address() as AddressInfo).port;
  const shownHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  return {
    url: `http://${shownHost}:${port}`,
    port,
    adminToken,
    mirror,
    proxy,
    board,
    server,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        for (const ac of running) ac.abort();
        server.closeAllConnections();
      }),
  };
}
