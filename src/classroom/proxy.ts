// The classroom's source proxy: one OpenAI-compatible endpoint per configured source,
//
//   GET  /classroom/sources/{id}/v1/models             the source's model
//   POST /classroom/sources/{id}/v1/chat/completions   forwarded with the instructor's key
//
// forwarding to the instructor's upstream (or to a model on the instructor's GPU, through the
// `fuse-studio serve` handler) with the instructor's API key, which no response ever carries:
// upstream text is redacted before it is parsed or passed on.
//
// Thirty students collecting the same prompts cost one upstream call per item: answers are cached
// under (source, messages, sampling parameters, seed, sample index), and identical requests in
// flight at the same time wait for one upstream call. The sample index is the request's seed when
// it has one (the class recipe gives every source a base seed, and sample i asks with seed + i);
// without a seed, a student's k-th identical request is sample k, so asking again still gets a
// new sample while another student's first request gets sample 0 from the cache.
//
// Upstream faults (5xx, 408, 429, a dropped connection, a timeout, a body that is not a chat
// completion) are retried once; the second failure answers 502 saying so. Errors (and the
// students' quota and rate limits: 429 with a message saying what to do) are OpenAI-shaped.
import { createHash } from 'node:crypto';
import { errorBody, type HandlerReply, type HandlerRequest } from '../serve/openai-server';
import { redact, type Source } from '../data/sources';

/** Where a source's requests go: an HTTP endpoint, or a handler in this process (a local model). */
export interface Upstream {
  /** POST a chat completion body; the status and the body's text. Throws on a dropped connection or timeout. */
  chat(body: Record<string, unknown>, signal: AbortSignal): Promise<{ status: number; text: string; retryAfterMs?: number }>;
}

export interface ProxySource {
  /** The path segment students use. */
  id: string;
  name: string;
  /** The model id the upstream knows. */
  model: string;
  /** The instructor's base seed; null: the upstream gets no seed (students' seeds only pick samples). */
  seed: number | null;
  /** Sampling the class recipe gives students (the instructor's sources.json). */
  sampling: { temperature: number; top_p: number; max_tokens: number; n: number; repetition_penalty?: number };
  /** The name the upstream gives repetition penalty (llama.cpp: repeat_penalty). */
  repetitionPenaltyKey: string;
  /** The instructor's extra body fields, added to every forwarded request. */
  extraBody: Record<string, unknown>;
  upstream: Upstream;
  /** Strings that must never leave the server (the key). */
  secrets: string[];
  kind: 'remote' | 'local';
}

/** An OpenAI-compatible HTTP upstream (any build-data source) with the instructor's key. */
export function httpUpstream(s: Pick<Source, 'baseURL' | 'apiKey' | 'headers'>, o: { timeoutMs: number; fetchImpl?: typeof fetch }): Upstream {
  const url = `${s.baseURL.replace(/\/+$/, '')}/chat/completions`;
  return {
    async chat(body, signal) {
      const res = await (o.fetchImpl ?? fetch)(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...s.headers, ...(s.apiKey ? { authorization: `Bearer ${s.apiKey}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, AbortSignal.timeout(o.timeoutMs)]),
      });
      const ra = Number(res.headers.get('retry-after'));
      return { status: res.status, text: await res.text(), ...(Number.isFinite(ra) && ra > 0 ? { retryAfterMs: ra * 1000 } : {}) };
    },
  };
}

/** A model served by the `fuse-studio serve` handler in this process (a local source on the instructor's GPU). */
export function handlerUpstream(handler: (req: HandlerRequest) => Promise<HandlerReply>, modelId: string): Upstream {
  return {
    async chat(body, signal) {
      const r = await handler({ method: 'POST', path: '/v1/chat/completions', body: { ...body, model: modelId }, signal });
      if (r.kind !== 'json') throw new Error('a local source streamed an answer it was not asked to stream');
      return { status: r.status, text: JSON.stringify(r.body) };
    },
  };
}

export interface ProxyLimits {
  /** Chat requests one student may make in all (cached answers included). */
  quota: number;
  /** Chat requests one student may make in any 60 s. */
  perMinute: number;
}

export interface ProxyOptions extends ProxyLimits {
  /** Answers kept (least recently used dropped first). */
  maxCacheEntries?: number;
  /** Wait before the one retry of an upstream fault (ms). */
  retryDelayMs?: number;
  now?: () => number;
}

export interface ProxyReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface ProxyStats {
  /** Chat requests students made (answered or refused). */
  requests: number;
  /** Calls that went upstream, retries included. */
  upstreamCalls: number;
  retries: number;
  cacheHits: number;
  /** Requests that waited for an identical one in flight. */
  coalesced: number;
  refused: { quota: number; rate: number };
  bySource: Record<string, { upstreamCalls: number; cacheHits: number; coalesced: number }>;
  byStudent: Record<string, number>;
}

/** Body fields a student may send (OpenAI's, the extras local servers take); others are refused by name. */
const ALLOWED = new Set([
  'model',
  'messages',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'seed',
  'stop',
  'presence_penalty',
  'frequency_penalty',
  'repetition_penalty',
  'top_k',
  'logprobs',
  'top_logprobs',
  'n',
  'stream',
  'user',
]);

/** Fields that do not change the answer: left out of the cache key and not forwarded. */
const IGNORED = new Set(['model', 'stream', 'user']);

class ProxyError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
  reply(): ProxyReply {
    return { status: this.status, body: errorBody(this.message, this.type, this.param, this.code), headers: this.headers };
  }
}

type Outcome = { status: number; body: unknown };

/** Stable JSON: object keys sorted, so equal requests give equal keys. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v ?? null);
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export class SourceProxy {
  private readonly sources = new Map<string, ProxySource>();
  private readonly cache = new Map<string, Outcome>();
  private readonly inflight = new Map<string, Promise<Outcome>>();
  /** Per student: requests made, the times of the last minute's, and identical-request counts (unseeded sample index). */
  private readonly students = new Map<string, { used: number; recent: number[]; repeats: Map<string, number> }>();
  private readonly counters: ProxyStats = { requests: 0, upstreamCalls: 0, retries: 0, cacheHits: 0, coalesced: 0, refused: { quota: 0, rate: 0 }, bySource: {}, byStudent: {} };
  limits: ProxyLimits;

  constructor(
    sources: readonly ProxySource[],
    private readonly o: ProxyOptions,
  ) {
    for (const s of sources) {
      this.sources.set(s.id, s);
      this.counters.bySource[s.id] = { upstreamCalls: 0, cacheHits: 0, coalesced: 0 };
    }
    this.limits = { quota: o.quota, perMinute: o.perMinute };
  }

  list(): ProxySource[] {
    return [...this.sources.values()];
  }

  stats(): ProxyStats {
    return structuredClone(this.counters);
  }

  /** How many chat requests a student has made, and may make. */
  usage(student: string): { used: number; quota: number; perMinute: number } {
    return { used: this.students.get(student)?.used ?? 0, quota: this.limits.quota, perMinute: this.limits.perMinute };
  }

  /** Every student's count back to zero (the cache is kept: it costs nothing to reuse). */
  resetUsage(): void {
    this.students.clear();
    this.counters.byStudent = {};
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Routes `/classroom/sources/{id}/v1/…` (the part after the id in `rest`). */
  async handle(id: string, rest: string, method: string, body: unknown, student: string | null, signal: AbortSignal): Promise<ProxyReply> {
    try {
      const source = this.sources.get(id);
      if (!source) throw new ProxyError(404, `no source "${id}" in this classroom; the sources are ${[...this.sources.keys()].join(', ') || 'none'} (load the class recipe again)`, 'not_found_error', 'source_not_found');
      const path = rest.replace(/\/+$/, '');
      if (path === '/v1/models') {
        if (method !== 'GET') throw new ProxyError(405, `${method} ${path}: use GET`, 'invalid_request_error');
        return { status: 200, body: { object: 'list', data: [{ id: source.name, object: 'model', owned_by: 'fuse-studio classroom', created: 0 }] } };
      }
      if (path !== '/v1/chat/completions') throw new ProxyError(404, `unknown route ${method} ${path}: the classroom proxy offers /v1/models and /v1/chat/completions`, 'not_found_error', 'not_found');
      if (method !== 'POST') throw new ProxyError(405, `${method} ${path}: use POST`, 'invalid_request_error');
      if (!student)
        throw new ProxyError(400, 'no student id: the studio sends an anonymous id (header X-Fuse-Student); reload the studio page from the classroom address and try again', 'invalid_request_error', 'no_student_id');
      return await this.chat(source, body, student, signal);
    } catch (e) {
      if (e instanceof ProxyError) return e.reply();
      throw e;
    }
  }

  /** The quota and rate limit; counts the request when it may go on. */
  private admit(student: string): void {
    let s = this.students.get(student);
    if (!s) this.students.set(student, (s = { used: 0, recent: [], repeats: new Map() }));
    const now = this.now();
    s.recent = s.recent.filter((t) => now - t < 60_000);
    if (s.used >= this.limits.quota) {
      this.counters.refused.quota++;
      throw new ProxyError(
        429,
        `Classroom quota reached: you have used the ${this.limits.quota} request${this.limits.quota === 1 ? '' : 's'} this classroom allows each student. Nothing more is sent for you; ask the instructor to raise the quota (or to reset it), then run again.`,
        'insufficient_quota',
        'classroom_quota',
      );
    }
    if (s.recent.length >= this.limits.perMinute) {
      this.counters.refused.rate++;
      const waitMs = Math.max(1000, 60_000 - (now - s.recent[0]!));
      throw new ProxyError(
        429,
        `Too many requests: this classroom allows each student ${this.limits.perMinute} requests a minute. Wait ${Math.ceil(waitMs / 1000)} s and try again (the studio waits and retries by itself).`,
        'rate_limit_exceeded',
        'classroom_rate_limit',
        null,
        { 'retry-after': String(Math.ceil(waitMs / 1000)), 'retry-after-ms': String(waitMs) },
      );
    }
    s.used++;
    s.recent.push(now);
    this.counters.byStudent[student] = s.used;
  }

  private async chat(source: ProxySource, raw: unknown, student: string, signal: AbortSignal): Promise<ProxyReply> {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ProxyError(400, 'the request body must be a JSON object with "messages"', 'invalid_request_error');
    const body = raw as Record<string, unknown>;
    for (const k of Object.keys(body))
      if (!ALLOWED.has(k) && k !== source.repetitionPenaltyKey)
        throw new ProxyError(400, `${k}: not passed on by the classroom proxy; remove it (the proxy takes ${[...ALLOWED].join(', ')})`, 'invalid_request_error', 'unknown_parameter', k);
    if (body.stream === true) throw new ProxyError(400, 'stream: the classroom proxy answers whole completions; send "stream": false', 'invalid_request_error', 'unsupported_parameter', 'stream');
    if (!Array.isArray(body.messages) || body.messages.length === 0) throw new ProxyError(400, 'messages: must be a non-empty list of {"role", "content"}', 'invalid_request_error', 'invalid_value', 'messages');
    if (body.n !== undefined && body.n !== null && body.n !== 1) throw new ProxyError(400, 'n: the classroom proxy answers one choice per request (ask again with seed + 1 for another sample)', 'invalid_request_error', 'unsupported_parameter', 'n');
    if (body.seed !== undefined && body.seed !== null && !Number.isInteger(body.seed)) throw new ProxyError(400, 'seed: must be an integer', 'invalid_request_error', 'invalid_value', 'seed');
    this.admit(student);
    this.counters.requests++;

    // What changes the answer: the messages and sampling (model, stream, user do not).
    const params: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(body)) if (!IGNORED.has(k) && k !== 'messages' && k !== 'seed' && k !== 'n' && v !== undefined && v !== null) params[k] = v;
    const seed = typeof body.seed === 'number' ? body.seed : null;
    const base = canonical([source.id, body.messages, params, seed]);
    let sampleIndex: number;
    if (seed !== null) sampleIndex = seed - (source.seed ?? 0);
    else {
      const s = this.students.get(student)!;
      const h = sha(base);
      sampleIndex = s.repeats.get(h) ?? 0;
      s.repeats.set(h, sampleIndex + 1);
    }
    const key = sha(canonical([base, sampleIndex]));
    const perSource = this.counters.bySource[source.id]!;

    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key); // most recently used goes last
      this.cache.set(key, cached);
      this.counters.cacheHits++;
      perSource.cacheHits++;
      return { status: cached.status, body: cached.body, headers: { 'x-classroom-cache': 'hit' } };
    }
    let p = this.inflight.get(key);
    let how = 'coalesced';
    if (p) {
      this.counters.coalesced++;
      perSource.coalesced++;
    } else {
      how = 'miss';
      // The upstream call is the class's, not this student's: a student who leaves does not cancel it.
      p = this.forward(source, { ...params, messages: body.messages, ...(seed !== null && source.seed !== null ? { seed } : {}) }).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const out = await raceAbort(p, signal);
    if (out.status === 200) {
      this.cache.set(key, out);
      while (this.cache.size > (this.o.maxCacheEntries ?? 100_000)) this.cache.delete(this.cache.keys().next().value!);
    }
    return { status: out.status, body: out.body, headers: { 'x-classroom-cache': how } };
  }

  /** One upstream call, retried once on a fault; the reply to give (redacted). */
  private async forward(source: ProxySource, body: Record<string, unknown>): Promise<Outcome> {
    const out: Record<string, unknown> = { ...source.extraBody, ...body, model: source.model };
    if ('repetition_penalty' in out && source.repetitionPenaltyKey !== 'repetition_penalty') {
      out[source.repetitionPenaltyKey] = out.repetition_penalty;
      delete out.repetition_penalty;
    }
    const perSource = this.counters.bySource[source.id]!;
    let last = '';
    for (let attempt = 1; attempt <= 2; attempt++) {
      if (attempt === 2) {
        this.counters.retries++;
        await new Promise((r) => setTimeout(r, this.o.retryDelayMs ?? 250));
      }
      this.counters.upstreamCalls++;
      perSource.upstreamCalls++;
      let status: number;
      let text: string;
      try {
        ({ status, text } = await source.upstream.chat(out, new AbortController().signal));
      } catch (e) {
        last = `connection failed (${redact((e as Error).message, source.secrets)})`;
        continue;
      }
      text = redact(text, source.secrets);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      if (status >= 200 && status < 300) {
        const choices = (parsed as { choices?: unknown })?.choices;
        if (Array.isArray(choices) && choices.length > 0) return { status: 200, body: parsed };
        last = 'a reply that is not a chat completion';
        continue;
      }
      const message = (parsed as { error?: { message?: unknown } })?.error?.message;
      const said = typeof message === 'string' ? message : text.slice(0, 300);
      if (status >= 500 || status === 408 || status === 429) {
        last = `HTTP ${status}: ${said}`;
        continue;
      }
      // The request's own fault (400, 404, 422…): passed on, not retried, not cached.
      return { status, body: errorBody(`${source.name}: ${said}`, 'invalid_request_error', null, 'upstream_refused') };
    }
    return {
      status: 502,
      body: errorBody(`${source.name} failed twice (${last}); the classroom proxy retried once. Try again in a moment; if it keeps failing, tell the instructor.`, 'upstream_error', null, 'upstream_failed'),
    };
  }
}

/** `p`, or a rejection when `signal` aborts first (the shared call goes on for the others). */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('the client went away'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('the client went away'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
