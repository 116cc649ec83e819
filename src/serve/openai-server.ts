// The OpenAI-compatible API of `fuse-studio serve`, free of any transport: `createOpenAIHandler`
// turns a request (method, path, parsed body) into a JSON reply or a stream of SSE lines, given
// a `ChatBackend` that renders and generates (model-backend.ts runs the model on the GPU).
// `listenOpenAI` puts a handler on node:http.
//
//   GET  /v1/models             {object: "list", data: [{id, object: "model", owned_by, created}]}
//   POST /v1/chat/completions   messages, model, temperature, top_p, max_tokens |
//                               max_completion_tokens, seed, stop, n, stream, stream_options,
//                               presence_penalty, frequency_penalty, logprobs, top_logprobs,
//                               the extras repetition_penalty, top_k; user, safety_identifier,
//                               prompt_cache_key, metadata, service_tier are accepted and ignored.
//                               What it does not implement (tools, response_format, logit_bias, …)
//                               or does not know is refused with a 400 naming the parameter, never
//                               silently ignored (UNSUPPORTED below).
//   POST /pooling (/v1/pooling) vLLM's reward-model route: {model, messages} whose last message is
//                               the assistant response to score → {object: "list", data: [{index: 0,
//                               object: "pooling", data: [score], logprob_sum, n_tokens}], usage}.
//                               What the score means is the backend's (model-backend.ts: the mean
//                               log-probability of the response tokens, a likelihood reward)
//
// Errors are OpenAI-shaped: {error: {message, type, param, code}}; 400 for a bad request (the
// message names the field), 404 for an unknown route or model.
//
// logprobs (OpenAI's shape: choices[i].logprobs.content = [{token, logprob, bytes, top_logprobs:
// [{token, logprob, bytes}]}], streamed with the chunk that carries the tokens' text) are the
// model's own log-probabilities: the log-softmax of the raw logits each token was drawn from,
// before presence/frequency/repetition penalties, temperature, top-k and top-p (vLLM's default,
// "raw_logprobs"), so they do not depend on the sampling settings; `bytes` are the token's exact UTF-8 bytes (a token may hold part of a
// character), `token` their lossy UTF-8 decoding.
//
// CORS: any origin; a preflight gets back the very headers it asks for (the official SDK sends
// X-Stainless-*, OpenAI-Organization, OpenAI-Project, OpenAI-Beta and more, and the list grows).
// A client that goes away aborts its request: generation stops before its next token, and a
// request still waiting for the GPU is dropped.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

// ---- the backend the handler drives ----

export interface ChatTurn {
  role: string;
  content: string;
}

/** One token of OpenAI's logprobs.content. */
export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface TokenLogprob extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface ChatRequest {
  messages: ChatTurn[];
  /** Per choice; choice i samples with seed + i. */
  n: number;
  maxTokens: number | null;
  temperature: number | null;
  topP: number | null;
  topK: number | null;
  repetitionPenalty: number | null;
  seed: number | null;
  /** OpenAI's, over the generated tokens: logit[j] -= count[j]·frequency + (count[j] > 0)·presence. */
  presencePenalty: number;
  frequencyPenalty: number;
  /** null: no logprobs; k: each token's logprob and the k (0..20) most likely tokens'. */
  topLogprobs: number | null;
  stop: string[];
  signal: AbortSignal;
}

export type FinishReason = 'stop' | 'length';

export interface ChoiceResult {
  text: string;
  finishReason: FinishReason;
  completionTokens: number;
  /** The content's tokens (null unless the request asked for logprobs). */
  logprobs: TokenLogprob[] | null;
}

export interface ChatResult {
  promptTokens: number;
  choices: ChoiceResult[];
}

export interface RewardRequest {
  /** The conversation; the last turn is the assistant response to score. */
  messages: ChatTurn[];
  signal: AbortSignal;
}

export interface RewardResult {
  /** The scalar reward. */
  score: number;
  /** Σ log p over the scored response tokens, and their count. */
  logprobSum: number;
  nTokens: number;
  /** Tokens of the whole rendered conversation. */
  promptTokens: number;
}

export interface ChatBackend {
  /** The model id served (the `model` a request must name). */
  readonly modelId: string;
  /** Unix seconds, reported in /v1/models. */
  readonly created: number;
  /**
   * Generates; `onDelta(choice, text, logprobs)` gets each piece of text as it becomes final, with
   * the logprobs of the tokens it completes (null unless asked for).
   */
  chat(req: ChatRequest, onDelta?: (choice: number, text: string, logprobs: TokenLogprob[] | null) => void): Promise<ChatResult>;
  /** Scores a response (POST /pooling); absent: the route answers 404. */
  reward?(req: RewardRequest): Promise<RewardResult>;
}

/** An error the client caused: the message is shown as is. */
export class RequestError extends Error {
  override name = 'RequestError';
  constructor(
    message: string,
    readonly status = 400,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

// ---- the request schema ----

const contentPart = z.object({ type: z.string(), text: z.string().optional() });
const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(contentPart)]).nullish(),
});

export const chatCompletionSchema = z.object({
  model: z.string().min(1),
  messages: z.array(message).min(1),
  temperature: z.number().min(0).max(2).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(-1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  seed: z.number().int().nullish(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).nullish(),
  n: z.number().int().min(1).max(16).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  // Accepted and ignored: they do not change what is generated.
  user: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  service_tier: z.string().nullish(),
});

type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

/**
 * OpenAI parameters this server does not implement: a request that sets one (to anything but
 * null or the value that asks for nothing) is refused, so a client never gets a silently
 * different answer than it asked for. The value: whether a setting is the no-op.
 */
const UNSUPPORTED: Record<string, { why: string; noop?: (v: unknown) => boolean }> = {
  tools: { why: 'tool calling is not implemented; describe the tools in a message and parse the reply yourself' },
  tool_choice: { why: 'tool calling is not implemented', noop: (v) => v === 'none' },
  parallel_tool_calls: { why: 'tool calling is not implemented' },
  functions: { why: 'function calling is not implemented' },
  function_call: { why: 'function calling is not implemented', noop: (v) => v === 'none' },
  response_format: {
    why: 'structured output (json_object, json_schema) is not implemented; only {"type": "text"}',
    noop: (v) => !!v && typeof v === 'object' && (v as { type?: unknown }).type === 'text' && Object.keys(v).length === 1,
  },
  logit_bias: { why: 'logit_bias is not implemented', noop: (v) => !!v && typeof v === 'object' && Object.keys(v).length === 0 },
  store: { why: 'stored completions are not implemented', noop: (v) => v === false },
  audio: { why: 'audio output is not implemented' },
  modalities: { why: 'only text output is implemented', noop: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text' },
  prediction: { why: 'predicted outputs are not implemented' },
  web_search_options: { why: 'web search is not implemented' },
  reasoning_effort: { why: 'this model has no reasoning-effort setting' },
  verbosity: { why: 'this model has no verbosity setting' },
};

const KNOWN = new Set(Object.keys(chatCompletionSchema.shape));

/** Refuses unimplemented and unknown top-level parameters, naming the first one. */
function checkParameters(body: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(body)) {
    if (KNOWN.has(k)) continue;
    const u = UNSUPPORTED[k];
    if (u) {
      if (v === null || v === undefined || u.noop?.(v)) continue;
      throw new RequestError(`${k}: not supported by fuse-studio serve (${u.why}); remove it from the request`, 400, k, 'unsupported_parameter');
    }
    throw new RequestError(
      `${k}: unknown parameter; fuse-studio serve accepts ${[...KNOWN].join(', ')} (OpenAI's, plus the extras top_k and repetition_penalty)`,
      400,
      k,
      'unknown_parameter',
    );
  }
}

/** vLLM's /pooling request, chat form only (the reward is of the last, assistant, message). */
export const poolingSchema = z.object({
  model: z.string().min(1),
  messages: z.array(message).min(1),
});

type PoolingBody = z.infer<typeof poolingSchema>;

function parseWith<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RequestError('the request body must be a JSON object');
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const param = issue.path.map(String).join('.') || null;
  throw new RequestError(`${param ?? 'body'}: ${issue.message}`, 400, param, 'invalid_value');
}

function parseBody(body: unknown): ChatCompletionBody {
  if (body && typeof body === 'object' && !Array.isArray(body)) checkParameters(body as Record<string, unknown>);
  const b = parseWith(chatCompletionSchema, body);
  if (b.top_logprobs !== undefined && b.top_logprobs !== null && b.logprobs !== true)
    throw new RequestError('top_logprobs: needs "logprobs": true', 400, 'top_logprobs', 'invalid_value');
  return b;
}

function parsePoolingBody(body: unknown): PoolingBody {
  if (body && typeof body === 'object' && !Array.isArray(body) && !('messages' in body) && 'input' in body)
    throw new RequestError('input: only the chat form {"model", "messages"} is supported (the last message is the assistant response to score)', 400, 'input');
  const b = parseWith(poolingSchema, body);
  if (b.messages.at(-1)!.role !== 'assistant')
    throw new RequestError(`messages: the last message must be the assistant response to score, got a "${b.messages.at(-1)!.role}" one`, 400, 'messages');
  return b;
}

function textOf(content: ChatCompletionBody['messages'][number]['content'], i: number): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  return content
    .map((p, j) => {
      if (p.type !== 'text' || p.text === undefined) throw new RequestError(`messages.${i}.content.${j}: only text parts are supported`, 400, `messages.${i}.content`);
      return p.text;
    })
    .join('');
}

// ---- the handler ----

export interface HandlerRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Parsed JSON body (undefined: none). */
  body: unknown;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export type HandlerReply =
  | { kind: 'json'; status: number; body: unknown }
  /** 200 text/event-stream; each yielded string is one whole `data: …\n\n` event. */
  | { kind: 'sse'; events: AsyncIterable<string> };

export function errorBody(message: string, type: string, param: string | null = null, code: string | null = null) {
  return { error: { message, type, param, code } };
}

function errorReply(e: unknown): HandlerReply {
  if (e instanceof RequestError)
    return { kind: 'json', status: e.status, body: errorBody(e.message, e.status === 404 ? 'not_found_error' : 'invalid_request_error', e.param, e.code) };
  return { kind: 'json', status: 500, body: errorBody(e instanceof Error ? e.message : String(e), 'server_error') };
}

const logprobsBody = (content: TokenLogprob[] | null) => (content ? { content, refusal: null } : null);

let idCounter = 0;
const completionId = () => `chatcmpl-${Date.now().toString(36)}${(idCounter++).toString(36)}`;
const poolingId = () => `pool-${Date.now().toString(36)}${(idCounter++).toString(36)}`;

export function createOpenAIHandler(backend: ChatBackend): (req: HandlerRequest) => Promise<HandlerReply> {
  const models = () => ({ object: 'list', data: [{ id: backend.modelId, object: 'model', owned_by: 'fuse-studio', created: backend.created }] });

  const checkModel = (model: string) => {
    if (model !== backend.modelId)
      throw new RequestError(`model: "${model}" is not served here; this server serves "${backend.modelId}"`, 404, 'model', 'model_not_found');
  };
  const turns = (messages: ChatCompletionBody['messages']): ChatTurn[] =>
    messages.map((m, i) => ({ role: m.role === 'developer' ? 'system' : m.role, content: textOf(m.content, i) }));

  const toRequest = (b: ChatCompletionBody, signal: AbortSignal): ChatRequest => {
    checkModel(b.model);
    return {
      messages: turns(b.messages),
      n: b.n ?? 1,
      maxTokens: b.max_completion_tokens ?? b.max_tokens ?? null,
      temperature: b.temperature ?? null,
      topP: b.top_p ?? null,
      topK: b.top_k === undefined || b.top_k === null || b.top_k === -1 ? null : b.top_k,
      repetitionPenalty: b.repetition_penalty ?? null,
      seed: b.seed ?? null,
      presencePenalty: b.presence_penalty ?? 0,
      frequencyPenalty: b.frequency_penalty ?? 0,
      topLogprobs: b.logprobs === true ? (b.top_logprobs ?? 0) : null,
      stop: (typeof b.stop === 'string' ? [b.stop] : (b.stop ?? [])).filter((s) => s.length > 0),
      signal,
    };
  };

  const complete = async (b: ChatCompletionBody, signal: AbortSignal): Promise<HandlerReply> => {
    const r = await backend.chat(toRequest(b, signal));
    const completionTokens = r.choices.reduce((s, c) => s + c.completionTokens, 0);
    return {
      kind: 'json',
      status: 200,
      body: {
        id: completionId(),
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: backend.modelId,
        choices: r.choices.map((c, index) => ({
          index,
          message: { role: 'assistant', content: c.text, refusal: null },
          logprobs: logprobsBody(c.logprobs),
          finish_reason: c.finishReason,
        })),
        usage: { prompt_tokens: r.promptTokens, completion_tokens: completionTokens, total_tokens: r.promptTokens + completionTokens },
      },
    };
  };

  const pool = async (b: PoolingBody, signal: AbortSignal): Promise<HandlerReply> => {
    checkModel(b.model);
    const r = await backend.reward!({ messages: turns(b.messages), signal });
    return {
      kind: 'json',
      status: 200,
      body: {
        id: poolingId(),
        object: 'list',
        created: Math.floor(Date.now() / 1000),
        model: backend.modelId,
        data: [{ index: 0, object: 'pooling', data: [r.score], logprob_sum: r.logprobSum, n_tokens: r.nTokens }],
        usage: { prompt_tokens: r.promptTokens, completion_tokens: 0, total_tokens: r.promptTokens },
      },
    };
  };

  const stream = (b: ChatCompletionBody, signal: AbortSignal): HandlerReply => {
    const req = toRequest(b, signal); // validation errors before the 200
    const id = completionId();
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = b.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: backend.modelId, choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;

    async function* events(): AsyncGenerator<string> {
      // Deltas arrive from the backend's callback; hand them to this generator through a queue.
      const queue: string[] = [];
      let wake: (() => void) | null = null;
      const push = (s: string) => {
        queue.push(s);
        wake?.();
      };
      for (let i = 0; i < req.n; i++) push(chunk([{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]));
      let result: ChatResult | null = null;
      let failure: unknown = null;
      let settled = false;
      void backend
        .chat(req, (i, text, logprobs) => push(chunk([{ index: i, delta: { content: text }, logprobs: logprobsBody(logprobs), finish_reason: null }])))
        .then(
          (r) => (result = r),
          (e: unknown) => (failure = e),
        )
        .finally(() => {
          settled = true;
          wake?.();
        });
      for (;;) {
        while (queue.length) yield queue.shift()!;
        if (settled) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      while (queue.length) yield queue.shift()!;
      if (failure !== null || !result) {
        const e = failure;
        yield `data: ${JSON.stringify(e instanceof RequestError ? errorBody(e.message, 'invalid_request_error', e.param, e.code) : errorBody(e instanceof Error ? e.message : String(e), 'server_error'))}\n\n`;
        return;
      }
      const r: ChatResult = result;
      for (let i = 0; i < r.choices.length; i++) yield chunk([{ index: i, delta: {}, logprobs: null, finish_reason: r.choices[i]!.finishReason }]);
      if (includeUsage) {
        const completionTokens = r.choices.reduce((s, c) => s + c.completionTokens, 0);
        yield chunk([], { usage: { prompt_tokens: r.promptTokens, completion_tokens: completionTokens, total_tokens: r.promptTokens + completionTokens } });
      }
      yield 'data: [DONE]\n\n';
    }
    return { kind: 'sse', events: events() };
  };

  return async (req) => {
    try {
      const path = req.path.replace(/\/+$/, '');
      if (path === '/v1/models') {
        if (req.method !== 'GET') throw new RequestError(`${req.method} ${req.path}: use GET`, 405);
        return { kind: 'json', status: 200, body: models() };
      }
      if (path === '/v1/chat/completions') {
        if (req.method !== 'POST') throw new RequestError(`${req.method} ${req.path}: use POST`, 405);
        const b = parseBody(req.body);
        return b.stream ? stream(b, req.signal) : await complete(b, req.signal);
      }
      if ((path === '/pooling' || path === '/v1/pooling') && backend.reward) {
        if (req.method !== 'POST') throw new RequestError(`${req.method} ${req.path}: use POST`, 405);
        return await pool(parsePoolingBody(req.body), req.signal);
      }
      throw new RequestError(`unknown route ${req.method} ${req.path}`, 404, null, 'not_found');
    } catch (e) {
      return errorReply(e);
    }
  };
}

// ---- node:http ----

const MAX_BODY_BYTES = 16 << 20;

const CORS_HEADERS = { 'access-control-allow-origin': '*' };

/**
 * The answer to a CORS preflight: the headers it asks for (the SDK's set grows with its versions),
 * and Private Network Access for a page on a public origin calling this local server.
 */
function preflightHeaders(req: IncomingMessage): Record<string, string> {
  const asked = req.headers['access-control-request-headers'];
  return {
    ...CORS_HEADERS,
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': asked && asked.trim() ? asked : 'authorization, content-type',
    'access-control-max-age': '600',
    ...(req.headers['access-control-request-private-network'] === 'true' ? { 'access-control-allow-private-network': 'true' } : {}),
    vary: 'Access-Control-Request-Headers, Access-Control-Request-Private-Network',
  };
}

/** A request's JSON body (undefined: none); a 413 RequestError past `maxBytes`, a 400 when not JSON. */
export async function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes) throw new RequestError(`the request body is larger than ${maxBytes} bytes`, 413);
    chunks.push(c);
  }
  if (!size) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch (e) {
    throw new RequestError(`the request body is not JSON (${(e as Error).message})`);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', ...CORS_HEADERS });
  res.end(JSON.stringify(body));
}

export interface ListeningServer {
  server: Server;
  host: string;
  port: number;
  /** Stops accepting, aborts what runs, waits for the connections to end. */
  close(): Promise<void>;
}

/** Serves `handler` over HTTP on host:port (port 0: any free port). */
export async function listenOpenAI(handler: (req: HandlerRequest) => Promise<HandlerReply>, o: { host: string; port: number }): Promise<ListeningServer> {
  const running = new Set<AbortController>();
  let drained: (() => void) | null = null;
  const server = createServer((req, res) => {
    const ac = new AbortController();
    running.add(ac);
    // 'close' on the response: it was sent, or the client went away first (then this aborts the
    // work). Not the request's 'close', which comes as soon as the body has been read.
    res.on('close', () => {
      running.delete(ac);
      ac.abort();
      if (!running.size) drained?.();
    });
    void (async () => {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, preflightHeaders(req));
        res.end();
        return;
      }
      let body: unknown;
      try {
        body = await readBody(req);
      } catch (e) {
        const r = errorReply(e) as { status: number; body: unknown };
        sendJson(res, r.status, r.body);
        return;
      }
      const path = (req.url ?? '/').split('?')[0]!;
      const reply = await handler({ method: req.method ?? 'GET', path, body, signal: ac.signal });
      if (reply.kind === 'json') {
        sendJson(res, reply.status, reply.body);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', ...CORS_HEADERS });
      for await (const ev of reply.events) {
        if (res.destroyed) break;
        res.write(ev);
      }
      res.end();
    })().catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, errorBody(e instanceof Error ? e.message : String(e), 'server_error'));
      else res.destroy();
    });
  });
  // Idle keep-alive connections outlive the clients' own idle timeouts (undici: 4 s, browsers
  // more), so a client never sends a request on a connection the server is just closing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    host: o.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Aborted requests answer at once; then no keep-alive connection may hold the close up.
        const closeAll = () => server.closeAllConnections();
        if (running.size) {
          drained = closeAll;
          setTimeout(closeAll, 5000).unref(); // a reply that does not end by itself
        } else closeAll();
        for (const ac of running) ac.abort();
      }),
  };
}
