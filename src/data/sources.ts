// Sources: OpenAI-compatible chat endpoints the fusion pipeline asks for responses (FUSION.md §1).
// Every request goes through the official `openai` SDK with its own retries switched off
// (`maxRetries: 0`); the retry policy here is ours:
//   - 429: wait what the server asks (`retry-after-ms`, `Retry-After` in seconds or as an HTTP
//     date), capped, else exponential backoff; other requests to the same source wait too;
//   - 5xx, 408, a dropped/reset connection, a timeout, a malformed body: exponential backoff
//     with jitter, up to `maxAttempts` attempts in all;
//   - any other 4xx: fail at once (retrying a 400/401/404 only repeats the mistake).
// Each attempt has its own timeout covering the whole exchange (headers *and* body), so a
// server that stalls mid-body cannot hang a job.
// API keys never appear in error messages, logs or exports: errors are built from redacted text.

import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { Domain } from './prompts';
import type { ChatMessage } from './records';

/** An OpenAI-compatible endpoint + model + the sampling it is asked with. */
export interface Source {
  /** Stable id; part of every collected item's key, so never reuse one for another model. */
  id: string;
  name: string;
  /** Up to and including `/v1`, e.g. `https://openrouter.ai/api/v1`. */
  baseURL: string;
  /** '' for servers that need none (vLLM, Ollama, llama.cpp, `fuse-studio serve`). */
  apiKey: string;
  model: string;
  temperature: number;
  top_p: number;
  max_tokens: number;
  /** Sent as an extra body field (not in the OpenAI spec; vLLM, Together, OpenRouter… accept it). */
  repetition_penalty?: number;
  /** Base seed: sample `i` of a prompt is requested with `seed + i`, so samples differ. */
  seed?: number;
  /** Responses per prompt (one request each; the API's own `n` is not used, many servers reject it). */
  n: number;
  /** Responses per prompt of a domain, where it differs from `n` (0: none for that domain). */
  nByDomain?: Partial<Record<Domain, number>>;
  /** Requests in flight at once for this source. */
  concurrency: number;
  /** Requests per minute, spaced evenly; unlimited when absent. */
  requestsPerMinute?: number;
  /** Name of the repetition-penalty field for this server (llama.cpp calls it `repeat_penalty`). */
  repetitionPenaltyKey?: string;
  /** Other non-standard body fields, passed through as is (e.g. `{ top_k: 40 }`). */
  extraBody?: Record<string, unknown>;
  /** Extra HTTP headers (e.g. OpenRouter's `HTTP-Referer`/`X-Title`). Never put keys here. */
  headers?: Record<string, string>;
  /**
   * When the server rejects a non-standard field (400/422 naming it), `true` fails the request;
   * the default drops the field, retries, and records it in the response's `droppedParams`.
   */
  strictParams?: boolean;
  /** Overrides of the default retry policy for this source. */
  retry?: Partial<RetryPolicy>;
}

// ---------------------------------------------------------------------------------------------
// Presets

export interface SamplingPreset {
  id: 'default' | 'qwen2.5';
  label: string;
  temperature: number;
  top_p: number;
  repetition_penalty?: number;
}

/** The paper's sampling settings (FUSION.md §1). */
export const SAMPLING_PRESETS: Record<SamplingPreset['id'], SamplingPreset> = {
  default: { id: 'default', label: 'Gemma / Mistral / Llama (T 0.8, top_p 0.95)', temperature: 0.8, top_p: 0.95 },
  'qwen2.5': {
    id: 'qwen2.5',
    label: 'Qwen-2.5 (T 0.7, top_p 0.8, repetition_penalty 1.05)',
    temperature: 0.7,
    top_p: 0.8,
    repetition_penalty: 1.05,
  },
};

/** Qwen-2.5 models (incl. Qwen-2.5-Math/Coder) get the Qwen preset, everything else the default. */
export function samplingPresetForModel(model: string): SamplingPreset {
  return /qwen[\s_-]*2\.5/i.test(model) ? SAMPLING_PRESETS['qwen2.5'] : SAMPLING_PRESETS.default;
}

/**
 * Responses per prompt and source in the paper: instruction following 5, code 8, Chinese 1.
 * For math the paper adds samples to existing reference solutions without saying how many:
 * 5 is our default.
 */
export const RESPONSES_PER_PROMPT = { instruction: 5, code: 8, math: 5, chinese: 1 } as const;

/** The paper's four source models (Hugging Face ids; providers may spell them differently). */
export const PAPER_SOURCE_MODELS = [
  { name: 'Gemma-2-27B-it', model: 'google/gemma-2-27b-it' },
  { name: 'Mistral-Large-Instruct-2407', model: 'mistralai/Mistral-Large-Instruct-2407' },
  { name: 'Qwen-2.5-72B-Instruct', model: 'Qwen/Qwen2.5-72B-Instruct' },
  { name: 'Llama-3.1-70B-Instruct', model: 'meta-llama/Llama-3.1-70B-Instruct' },
] as const;

export interface EndpointPreset {
  id: string;
  label: string;
  baseURL: string;
  needsKey: boolean;
  /** How the server names repetition penalty; null when it is known not to accept one. */
  repetitionPenaltyKey: string | null;
  note?: string;
}

/** Default port of `fuse-studio serve` (the CLI may choose another; see `localServeEndpoint`). */
export const DEFAULT_SERVE_PORT = 8765;

export const ENDPOINT_PRESETS: readonly EndpointPreset[] = [
  { id: 'openrouter', label: 'OpenRouter', baseURL: 'https://openrouter.ai/api/v1', needsKey: true, repetitionPenaltyKey: 'repetition_penalty' },
  { id: 'together', label: 'Together AI', baseURL: 'https://api.together.xyz/v1', needsKey: true, repetitionPenaltyKey: 'repetition_penalty' },
  {
    id: 'groq',
    label: 'Groq',
    baseURL: 'https://api.groq.com/openai/v1',
    needsKey: true,
    repetitionPenaltyKey: null,
    note: 'Rejects non-standard sampling fields; repetition_penalty is not sent.',
  },
  { id: 'fireworks', label: 'Fireworks AI', baseURL: 'https://api.fireworks.ai/inference/v1', needsKey: true, repetitionPenaltyKey: 'repetition_penalty' },
  { id: 'hf-router', label: 'Hugging Face router', baseURL: 'https://router.huggingface.co/v1', needsKey: true, repetitionPenaltyKey: 'repetition_penalty' },
  { id: 'vllm', label: 'vLLM (local)', baseURL: 'http://127.0.0.1:8000/v1', needsKey: false, repetitionPenaltyKey: 'repetition_penalty' },
  {
    id: 'ollama',
    label: 'Ollama (local)',
    baseURL: 'http://127.0.0.1:11434/v1',
    needsKey: false,
    repetitionPenaltyKey: null,
    note: 'The OpenAI-compatible API ignores repeat_penalty; set it in a Modelfile instead.',
  },
  { id: 'llama.cpp', label: 'llama.cpp server (local)', baseURL: 'http://127.0.0.1:8080/v1', needsKey: false, repetitionPenaltyKey: 'repeat_penalty' },
  localServeEndpoint(DEFAULT_SERVE_PORT),
];

/** The local `fuse-studio serve` endpoint on `port`. */
export function localServeEndpoint(port: number): EndpointPreset {
  return {
    id: 'fuse-studio',
    label: `fuse-studio serve (port ${port})`,
    baseURL: `http://127.0.0.1:${port}/v1`,
    needsKey: false,
    repetitionPenaltyKey: 'repetition_penalty',
  };
}

export function endpointPreset(id: string): EndpointPreset | undefined {
  return ENDPOINT_PRESETS.find((p) => p.id === id);
}

/**
 * A Source with the paper's sampling for its model and sensible defaults for the rest.
 * `endpoint` (a preset) fills baseURL and how repetition penalty is named.
 */
export function makeSource(
  init: Partial<Source> & { model: string } & ({ baseURL: string } | { endpoint: EndpointPreset }),
): Source {
  const endpoint = 'endpoint' in init ? init.endpoint : undefined;
  const sampling = samplingPresetForModel(init.model);
  const { endpoint: _e, ...rest } = init as Partial<Source> & { endpoint?: EndpointPreset };
  const src: Source = {
    id: init.id ?? `${endpoint?.id ?? 'src'}:${init.model}`,
    name: init.name ?? init.model,
    baseURL: init.baseURL ?? endpoint!.baseURL,
    apiKey: '',
    temperature: sampling.temperature,
    top_p: sampling.top_p,
    max_tokens: 2048,
    n: RESPONSES_PER_PROMPT.instruction,
    concurrency: 4,
    ...rest,
  } as Source;
  if (src.repetition_penalty === undefined && sampling.repetition_penalty !== undefined && !('repetition_penalty' in init))
    src.repetition_penalty = sampling.repetition_penalty;
  if (endpoint && src.repetitionPenaltyKey === undefined) {
    if (endpoint.repetitionPenaltyKey === null) delete src.repetition_penalty;
    else src.repetitionPenaltyKey = endpoint.repetitionPenaltyKey;
  }
  return src;
}

/** A source as it may be exported or shown: the key replaced by a marker of whether one is set. */
export function sanitizeSource(s: Source): Omit<Source, 'apiKey'> & { apiKey: '' | '<redacted>' } {
  return { ...s, apiKey: s.apiKey ? '<redacted>' : '' };
}

// ---------------------------------------------------------------------------------------------
// Redaction

const KEY_PATTERNS: RegExp[] = [
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi,
  /\b(sk|gsk|hf|fw|rk|pk|xai|nvapi|tgp|csk)[-_][A-Za-z0-9_-]{8,}/g,
  /([?&](api[_-]?key|key|token|access_token)=)[^&\s"']+/gi,
];

/** Removes the given secrets and anything that looks like an API key from `text`. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('<redacted>');
  out = out.replace(KEY_PATTERNS[0]!, (_m, scheme: string) => `${scheme} <redacted>`);
  out = out.replace(KEY_PATTERNS[1]!, '<redacted>');
  out = out.replace(KEY_PATTERNS[2]!, (_m, prefix: string) => `${prefix}<redacted>`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Errors and the retry policy

export type FailureKind =
  | 'rate-limit' // 429
  | 'server' // 5xx
  | 'http' // other 4xx: not retried
  | 'timeout'
  | 'connection' // refused, reset, DNS…
  | 'malformed' // 2xx whose body is not a chat completion
  | 'aborted' // cancelled by the caller: not a failure of the item
  | 'config'; // e.g. a bad base URL

export class SourceError extends Error {
  override name = 'SourceError';
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly retryable: boolean,
    readonly status?: number,
    /** What the server asked us to wait (429), in ms. */
    readonly retryAfterMs?: number,
    /** Attempts made before giving up (set by the retry loop). */
    public attempts = 1,
  ) {
    super(message);
  }
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Per-attempt limit on the whole exchange. */
  timeoutMs: number;
  /** A longer Retry-After is cut to this. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  timeoutMs: 180_000,
  maxRetryAfterMs: 300_000,
};

/** Milliseconds a response asks us to wait: `retry-after-ms`, then `Retry-After` (seconds or date). */
export function parseRetryAfter(headers: Headers | undefined | null, now = Date.now()): number | null {
  if (!headers) return null;
  const ms = headers.get('retry-after-ms')?.trim();
  if (ms) {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = headers.get('retry-after')?.trim();
  if (ra) {
    if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
    const t = Date.parse(ra);
    if (!Number.isNaN(t)) return Math.max(0, t - now);
  }
  return null;
}

/** Exponential backoff with "equal jitter": half fixed, half random. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return cap / 2 + (cap / 2) * random();
}

export class MalformedResponseError extends Error {
  override name = 'MalformedResponseError';
}

function causeText(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    if (cur instanceof Error) {
      const code = (cur as { code?: unknown }).code;
      parts.push(typeof code === 'string' ? `${cur.message} (${code})` : cur.message);
      cur = (cur as { cause?: unknown }).cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return [...new Set(parts.filter(Boolean))].join(': ');
}

/** Maps anything an attempt threw to a SourceError (redacted). */
export function classifyError(e: unknown, secrets: readonly (string | undefined)[] = [], label = ''): SourceError {
  const pre = label ? `${label}: ` : '';
  const r = (s: string) => redact(pre + s, secrets);
  if (e instanceof SourceError) return e;
  if (e instanceof APIUserAbortError) return new SourceError(r('cancelled'), 'aborted', false);
  if (e instanceof APIConnectionTimeoutError) return new SourceError(r('request timed out'), 'timeout', true);
  if (e instanceof APIConnectionError) return new SourceError(r(`connection failed: ${causeText(e.cause ?? e)}`), 'connection', true);
  if (e instanceof APIError) {
    const status = e.status ?? 0;
    const msg = r(`HTTP ${e.message}`);
    if (status === 429) return new SourceError(msg, 'rate-limit', true, status, parseRetryAfter(e.headers) ?? undefined);
    if (status >= 500) return new SourceError(msg, 'server', true, status, parseRetryAfter(e.headers) ?? undefined);
    if (status === 408) return new SourceError(msg, 'timeout', true, status);
    return new SourceError(msg, 'http', false, status);
  }
  if (e instanceof MalformedResponseError) return new SourceError(r(`malformed response: ${e.message}`), 'malformed', true);
  if (e instanceof SyntaxError) return new SourceError(r(`malformed response: ${e.message}`), 'malformed', true);
  // undici reports a connection dropped while reading the body as TypeError('terminated').
  if (e instanceof TypeError) return new SourceError(r(`connection failed: ${causeText(e)}`), 'connection', true);
  if (e instanceof Error && e.name === 'AbortError') return new SourceError(r('cancelled'), 'aborted', false);
  return new SourceError(r(causeText(e) || 'unknown error'), 'config', false);
}

export function abortError(): SourceError {
  return new SourceError('cancelled', 'aborted', false);
}

/** Resolves after `ms`, or rejects with an 'aborted' SourceError when `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Spaces requests evenly to stay under `requestsPerMinute`, and holds everyone back while a
 * server's Retry-After is in force (`pauseFor`). Shared by all workers of one source.
 */
export class RateLimiter {
  private next = 0;
  private pausedUntil = 0;
  constructor(
    readonly requestsPerMinute?: number,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    const interval = this.requestsPerMinute && this.requestsPerMinute > 0 ? 60_000 / this.requestsPerMinute : 0;
    for (;;) {
      if (signal?.aborted) throw abortError();
      const t = this.now();
      const at = Math.max(t, this.next, this.pausedUntil);
      if (at <= t) {
        this.next = t + interval;
        return;
      }
      await sleep(at - t, signal);
    }
  }

  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }
}

export interface AttemptOptions {
  policy?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  limiter?: RateLimiter;
  /** Strings to scrub from error messages (the source's key). */
  secrets?: readonly (string | undefined)[];
  /** Prefix of error messages, e.g. the source's name. */
  label?: string;
  onRetry?: (info: { attempt: number; delayMs: number; error: SourceError }) => void;
  random?: () => number;
}

/** One attempt of `fn` under a timeout that covers everything `fn` awaits. */
async function attemptWithTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  timeoutMs: number,
  outer: AbortSignal | undefined,
  secrets: readonly (string | undefined)[],
  label: string,
): Promise<T> {
  const ctrl = new AbortController();
  let timedOut = false;
  let onAbort: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort();
      reject(new SourceError(redact(`${label ? label + ': ' : ''}request timed out after ${timeoutMs} ms`, secrets), 'timeout', true));
    }, timeoutMs);
    onAbort = () => {
      ctrl.abort();
      reject(abortError());
    };
    if (outer?.aborted) onAbort();
    else outer?.addEventListener('abort', onAbort, { once: true });
  });
  const work = fn(ctrl.signal);
  work.catch(() => {}); // settled later by the guard's loser: never an unhandled rejection
  try {
    return await Promise.race([work, guard]);
  } catch (e) {
    if (outer?.aborted) throw abortError();
    if (timedOut) throw new SourceError(redact(`${label ? label + ': ' : ''}request timed out after ${timeoutMs} ms`, secrets), 'timeout', true);
    throw classifyError(e, secrets, label);
  } finally {
    clearTimeout(timer);
    if (onAbort) outer?.removeEventListener('abort', onAbort);
  }
}

/** Runs `fn` under the retry policy. Throws the last SourceError, with `attempts` set. */
export async function withRetry<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  opts: AttemptOptions = {},
): Promise<{ value: T; attempts: number }> {
  const policy = { ...DEFAULT_RETRY_POLICY, ...opts.policy };
  const secrets = opts.secrets ?? [];
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) throw abortError();
    await opts.limiter?.acquire(opts.signal);
    try {
      const value = await attemptWithTimeout(fn, policy.timeoutMs, opts.signal, secrets, opts.label ?? '');
      return { value, attempts: attempt };
    } catch (e) {
      const err = classifyError(e, secrets, opts.label);
      err.attempts = attempt;
      if (err.kind === 'aborted' || !err.retryable || attempt >= policy.maxAttempts) throw err;
      let delay: number;
      if (err.retryAfterMs !== undefined) {
        delay = Math.min(err.retryAfterMs, policy.maxRetryAfterMs);
        opts.limiter?.pauseFor(delay);
      } else {
        delay = backoffDelay(attempt, policy, opts.random);
      }
      opts.onRetry?.({ attempt, delayMs: delay, error: err });
      await sleep(delay, opts.signal);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

/** The SDK client for a source: SDK retries off, logging off, usable in a browser. */
export function createClient(source: Pick<Source, 'baseURL' | 'apiKey' | 'headers'>, timeoutMs = DEFAULT_RETRY_POLICY.timeoutMs): OpenAI {
  return new OpenAI({
    baseURL: source.baseURL,
    // The SDK insists on a key; keyless local servers get a placeholder and no Authorization header.
    apiKey: source.apiKey || 'no-key',
    maxRetries: 0,
    timeout: timeoutMs,
    dangerouslyAllowBrowser: true,
    logLevel: 'off',
    defaultHeaders: { ...source.headers, ...(source.apiKey ? {} : { Authorization: null }) },
  });
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatResult {
  content: string;
  finishReason: string | null;
  /** The model name the server reports (may differ from the one asked for). */
  model: string;
  usage?: Usage;
  attempts: number;
  latencyMs: number;
  /** Non-standard fields the server rejected and we retried without. */
  droppedParams: string[];
  /** The sampling fields actually sent (no key, no messages). */
  params: Record<string, unknown>;
}

export interface ChatOptions extends Omit<AttemptOptions, 'secrets' | 'label'> {
  client?: OpenAI;
  /** Index of this sample among the source's `n`: offsets the seed. */
  sampleIndex?: number;
  /** Overrides of the body (e.g. `{ max_tokens: 1 }` for a probe). */
  override?: Record<string, unknown>;
}

/** The body fields a source sends besides model and messages. */
export function samplingParams(source: Source, sampleIndex = 0): { standard: Record<string, unknown>; extra: Record<string, unknown> } {
  const standard: Record<string, unknown> = {
    temperature: source.temperature,
    top_p: source.top_p,
    max_tokens: source.max_tokens,
  };
  if (source.seed !== undefined) standard.seed = source.seed + sampleIndex;
  const extra: Record<string, unknown> = { ...source.extraBody };
  if (source.repetition_penalty !== undefined) extra[source.repetitionPenaltyKey ?? 'repetition_penalty'] = source.repetition_penalty;
  return { standard, extra };
}

function checkCompletion(c: unknown): ChatCompletion {
  if (!c || typeof c !== 'object') throw new MalformedResponseError(`expected a JSON object, got ${typeof c === 'string' ? 'text' : typeof c}`);
  const choices = (c as ChatCompletion).choices;
  if (!Array.isArray(choices) || choices.length === 0) throw new MalformedResponseError('no choices in the response');
  const msg = choices[0]?.message;
  if (!msg || typeof msg !== 'object') throw new MalformedResponseError('first choice has no message');
  if (msg.content !== null && msg.content !== undefined && typeof msg.content !== 'string')
    throw new MalformedResponseError('message content is not a string');
  return c as ChatCompletion;
}

function usageOf(c: ChatCompletion): Usage | undefined {
  const u = c.usage;
  if (!u || typeof u.prompt_tokens !== 'number' || typeof u.completion_tokens !== 'number') return undefined;
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: typeof u.total_tokens === 'number' ? u.total_tokens : u.prompt_tokens + u.completion_tokens,
  };
}

/** One chat completion from `source`, under its retry policy. Throws a redacted SourceError. */
export async function chatComplete(source: Source, messages: readonly ChatMessage[], opts: ChatOptions = {}): Promise<ChatResult> {
  const policy = { ...DEFAULT_RETRY_POLICY, ...source.retry, ...opts.policy };
  const client = opts.client ?? createClient(source, policy.timeoutMs);
  const { standard, extra } = samplingParams(source, opts.sampleIndex ?? 0);
  const dropped: string[] = [];
  let attemptsSoFar = 0;
  const t0 = Date.now();
  for (;;) {
    const body = { model: source.model, messages: [...messages], ...standard, ...extra, ...opts.override };
    try {
      const { value, attempts } = await withRetry(
        async (signal) => {
          const c = await client.chat.completions.create(body as ChatCompletionCreateParamsNonStreaming, { signal, timeout: policy.timeoutMs });
          return checkCompletion(c);
        },
        { ...opts, policy, secrets: [source.apiKey], label: source.name },
      );
      attemptsSoFar += attempts;
      const choice = value.choices[0]!;
      const { model: _m, messages: _msgs, ...params } = body;
      return {
        content: choice.message.content ?? '',
        finishReason: choice.finish_reason ?? null,
        model: typeof value.model === 'string' ? value.model : source.model,
        usage: usageOf(value),
        attempts: attemptsSoFar,
        latencyMs: Date.now() - t0,
        droppedParams: dropped,
        params,
      };
    } catch (e) {
      const err = e as SourceError;
      attemptsSoFar += err.attempts ?? 1;
      err.attempts = attemptsSoFar;
      // A server that rejects a non-standard field: drop it and try again (unless strict).
      if (!source.strictParams && err.kind === 'http' && (err.status === 400 || err.status === 422)) {
        const rejected = Object.keys(extra).filter((k) => err.message.includes(k));
        if (rejected.length > 0) {
          for (const k of rejected) {
            delete extra[k];
            dropped.push(k);
          }
          continue;
        }
      }
      throw err;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Connection test

export interface ConnectionReport {
  ok: boolean;
  baseURL: string;
  model: string;
  /** Model ids the server lists (first 200), or null when /models failed. */
  models: string[] | null;
  /** Whether `model` is among them (null when unknown). */
  modelListed: boolean | null;
  /** Whether a 1-token chat went through (null when not tried). */
  chatOk: boolean | null;
  latencyMs: number;
  /** Redacted. */
  error?: string;
}

/**
 * Checks a source: lists `/models`; when the model is not listed there (or listing fails, as on
 * some servers), sends a 1-token chat. `alwaysChat` sends the chat in any case.
 */
export async function testConnection(
  source: Source,
  opts: { signal?: AbortSignal; timeoutMs?: number; alwaysChat?: boolean } = {},
): Promise<ConnectionReport> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const client = createClient(source, timeoutMs);
  const t0 = Date.now();
  const report: ConnectionReport = { ok: false, baseURL: source.baseURL, model: source.model, models: null, modelListed: null, chatOk: null, latencyMs: 0 };
  const errors: string[] = [];
  try {
    const { value } = await withRetry(
      async (signal) => {
        const page = await client.models.list({ signal, timeout: timeoutMs });
        const data = (page as unknown as { data?: unknown }).data;
        if (!Array.isArray(data)) throw new MalformedResponseError('/models returned no list');
        return data.map((m: { id?: unknown }) => String(m?.id ?? '')).filter(Boolean);
      },
      { policy: { maxAttempts: 1, timeoutMs }, signal: opts.signal, secrets: [source.apiKey], label: `${source.name} /models` },
    );
    report.models = value.slice(0, 200);
    report.modelListed = value.includes(source.model);
  } catch (e) {
    const err = e as SourceError;
    if (err.kind === 'aborted') throw err;
    errors.push(err.message);
  }
  if (!report.modelListed || opts.alwaysChat) {
    try {
      await chatComplete(source, [{ role: 'user', content: 'Hi' }], {
        client,
        signal: opts.signal,
        policy: { maxAttempts: 1, timeoutMs },
        override: { max_tokens: 1 },
      });
      report.chatOk = true;
    } catch (e) {
      const err = e as SourceError;
      if (err.kind === 'aborted') throw err;
      report.chatOk = false;
      errors.push(err.message);
    }
  }
  report.ok = report.chatOk ?? report.modelListed === true;
  if (!report.ok) {
    if (report.models && !report.modelListed) errors.push(`model "${source.model}" is not among the ${report.models.length} listed`);
    report.error = redact(errors.join('; '), [source.apiKey]);
  }
  report.latencyMs = Date.now() - t0;
  return report;
}
