// The ChatBackend of `fuse-studio serve`: a loaded model (+ optional adapter) on the GPU. Requests
// run one at a time (a queue); the messages go through the model's chat template with the
// generation prompt; n choices are one batch (choice i samples with seed + i, as generateBatch's
// rows); stop strings cut the text (finish_reason "stop") and end the generation once every
// choice has stopped. Streamed text is held back while it could still be the start of a stop
// string or ends inside a UTF-8 character, so the deltas always add up to the final text.
//
// POST /pooling is a reward model made of the served model itself: the score of a response is the
// model's mean per-token log-probability of it, given the conversation before it,
//   score = (1/|y|) Σ_t log p(y_t | x, y_<t)
// over the response's assistant tokens as the chat template renders them (its content and the
// closing end-of-turn token; the prompt/completion split of TRL, as records-tokens.ts does for
// DPO records), through scoreSequences (src/model/score.ts). It is a likelihood reward: weak (it
// prefers what the model finds probable, not what is good; a larger or instruction-tuned model
// makes a better one) but real, and it lets `build-data` and `fuse-studio demo` run the whole
// recipe with nothing but local models. Scores are ≤ 0 nats per token (−ln V for a uniform model).
//
// logprobs and presence/frequency penalties work on the host copy of each step's logits
// (generateBatch's onLogits hook): the log-probabilities are those of the raw logits (see
// openai-server.ts), taken before the penalties change them. A choice's logprobs.content holds the
// tokens whose text begins inside its content (so an end-of-sequence token, or tokens after a stop
// string, are not in it); a streamed delta carries the tokens whose text it completes.
//
// Context: a prompt must leave room for one token within the context (the model's
// max_position_embeddings, or the smaller --max-context), else a 400 naming both numbers.
// Cancellation: a request whose client went away (its signal) stops before its next token, and
// one still queued is dropped when its turn comes; both count in stats().cancelled.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { generateBatch } from '../model/generate';
import { resolveSampling, SamplingError } from '../model/sampling';
import { scoreSequences, type LabelledSequence } from '../model/score';
import type { LoadedTokenizer } from '../tokenizer';
import type { QuantDType } from '../gpu/quant';
import { loadModelForCli, openModelSource, type OpenedModel } from '../cli/model';
import {
  createOpenAIHandler,
  listenOpenAI,
  RequestError,
  type ChatBackend,
  type ChatRequest,
  type ChatResult,
  type ChatTurn,
  type FinishReason,
  type HandlerReply,
  type HandlerRequest,
  type RewardRequest,
  type RewardResult,
  type TokenLogprob,
  type TopLogprob,
} from './openai-server';
import { tokenTextReader } from './token-bytes';

export interface ModelBackendOptions {
  modelId: string;
  /** Llama 3.x "Today Date" line; default: today, as transformers. */
  dateString?: string;
  /** Default max_tokens (capped by the context); default generation_config's max_new_tokens or 512. */
  defaultMaxTokens?: number;
  /** Prompt + completion tokens allowed (at most max_position_embeddings, the default). */
  maxContext?: number;
}

export interface ModelBackend extends ChatBackend {
  /** The context a request must fit: min(max_position_embeddings, maxContext). */
  readonly contextLength: number;
  /** Resolves once the running and queued requests are done. */
  idle(): Promise<void>;
  /** Requests stopped or dropped because their client went away (or the server closed). */
  cancelled(): number;
}

/** log Σ exp(x) over a logits row, in float64. */
function logSumExp(x: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > max) max = x[i]!;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  return max + Math.log(sum);
}

/** The ids of the k largest logits, largest first (the lower id first among ties). */
function topIds(x: Float32Array, k: number): number[] {
  const top: number[] = [];
  if (k <= 0) return top;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (top.length === k && v <= x[top[k - 1]!]!) continue;
    let j = top.length < k ? top.length : k - 1;
    top[j] = i;
    while (j > 0 && x[top[j - 1]!]! < v) {
      top[j] = top[j - 1]!;
      top[j - 1] = i;
      j--;
    }
  }
  return top;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function heldBack(text: string, stops: readonly string[]): number {
  let hold = 0;
  for (const s of stops)
    for (let k = Math.min(s.length - 1, text.length); k > hold; k--)
      if (text.endsWith(s.slice(0, k))) {
        hold = k;
        break;
      }
  return hold;
}

/**
 * The labelled sequence a reward is computed on: the whole conversation through the chat
 * template, labels on the last (assistant) turn's tokens after the prompt (the conversation
 * before it with the generation prompt). Throws a RequestError when the template cannot split them.
 */
export function rewardSequence(tok: LoadedTokenizer, messages: readonly ChatTurn[], o: { dateString?: string } = {}): LabelledSequence {
  const last = messages.at(-1);
  if (!last || last.role !== 'assistant') throw new RequestError('messages: the last message must be the assistant response to score', 400, 'messages');
  const chatOpts = o.dateString === undefined ? {} : { dateString: o.dateString };
  const turns = messages.map((t) => ({ role: t.role, content: t.content }));
  let prompt: number[];
  let full: { ids: number[]; assistantMask: number[] };
  try {
    prompt = tok.encodeChat(turns.slice(0, -1), { ...chatOpts, addGenerationPrompt: true }).ids;
    full = tok.encodeChat(turns, chatOpts);
  } catch (e) {
    throw new RequestError(`messages: cannot be rendered by the chat template (${(e as Error).message})`, 400, 'messages');
  }
  if (full.ids.length < prompt.length || prompt.some((id, t) => full.ids[t] !== id))
    throw new RequestError('messages: the chat template renders the conversation differently once the response follows it; cannot split prompt and response', 400, 'messages');
  return { ids: full.ids, labels: full.ids.map((id, t) => (t >= prompt.length && full.assistantMask[t] ? id : -100)) };
}

export function createModelBackend(m: OpenedModel, o: ModelBackendOptions): ModelBackend {
  const tok = m.tokenizer;
  if (!tok) throw new Error('serve: the model has no tokenizer (tokenizer.json), so it cannot serve chat completions');
  if (!tok.chatTemplate) throw new Error('serve: the model has no chat template (tokenizer_config.json "chat_template"), so it cannot serve chat completions');
  const gen = (m.loaded.generationConfig ?? {}) as Record<string, unknown>;
  const num = (k: string): number | null => (typeof gen[k] === 'number' ? (gen[k] as number) : null);
  const eosTokenIds = [...new Set([...tok.eosTokenIds, ...m.loaded.config.eosTokenIds])];
  const maxPos = m.model.config.maxPositionEmbeddings;
  if (o.maxContext !== undefined && !(Number.isInteger(o.maxContext) && o.maxContext >= 2))
    throw new Error(`serve: the max context ${o.maxContext} must be an integer ≥ 2 (a prompt token and a generated one)`);
  const contextLength = Math.min(maxPos, o.maxContext ?? maxPos);
  const defaultMax = o.defaultMaxTokens ?? num('max_new_tokens') ?? 512;
  const tokenText = tokenTextReader(tok);
  let tail: Promise<unknown> = Promise.resolve();
  let nCancelled = 0;

  const cancelled = () => {
    nCancelled++;
    return new RequestError('the request was cancelled', 499);
  };
  const tooLong = (what: string, n: number) =>
    new RequestError(
      `messages: ${what} is ${n} tokens, more than fits the context of ${contextLength} tokens (${contextLength < maxPos ? `this server's --max-context; the model's max_position_embeddings is ${maxPos}` : "the model's max_position_embeddings"}); shorten it`,
      400,
      'messages',
      'context_length_exceeded',
    );

  const run = async (req: ChatRequest, onDelta?: (choice: number, text: string, logprobs: TokenLogprob[] | null) => void): Promise<ChatResult> => {
    if (req.signal.aborted) throw cancelled();
    let promptIds: number[];
    try {
      promptIds = tok.encodeChat(req.messages.map((t) => ({ role: t.role, content: t.content })), { addGenerationPrompt: true, ...(o.dateString === undefined ? {} : { dateString: o.dateString }) }).ids;
    } catch (e) {
      throw new RequestError(`messages: cannot be rendered by the chat template (${(e as Error).message})`, 400, 'messages');
    }
    const room = contextLength - promptIds.length;
    if (room < 1) throw tooLong('the prompt', promptIds.length);
    if (req.maxTokens !== null && req.maxTokens > room)
      throw new RequestError(`max_tokens: ${promptIds.length} prompt + ${req.maxTokens} tokens exceed the context of ${contextLength}; ask for at most ${room}`, 400, 'max_tokens', 'context_length_exceeded');
    const maxNewTokens = req.maxTokens ?? Math.min(defaultMax, room);
    let sampling;
    try {
      sampling = resolveSampling({
        temperature: req.temperature ?? num('temperature') ?? 1,
        topP: req.topP ?? num('top_p') ?? 1,
        topK: req.topK ?? num('top_k') ?? 0,
        repetitionPenalty: req.repetitionPenalty ?? num('repetition_penalty') ?? 1,
        seed: req.seed ?? Math.floor(Math.random() * 2 ** 31),
      });
    } catch (e) {
      if (e instanceof SamplingError) throw new RequestError(e.message);
      throw e;
    }

    const stopped = new AbortController();
    const onAbort = () => stopped.abort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    const rows = Array.from({ length: req.n }, () => ({
      ids: [] as number[],
      emitted: '',
      stopText: null as string | null,
      /** Generated-token counts (the penalties'). */
      counts: new Map<number, number>(),
      /** Per generated token: its logprob entry, and the decoded text length through it. */
      entries: [] as TokenLogprob[],
      ends: [] as number[],
      /** Entries handed out so far. */
      sent: 0,
    }));
    const topK = req.topLogprobs;
    const penalised = req.presencePenalty !== 0 || req.frequencyPenalty !== 0;
    /** Per row: the step's raw-logit statistics, until its token is known. */
    const pending: ({ logits: Float32Array; lse: number; top: TopLogprob[] } | null)[] = rows.map(() => null);
    const lp = (x: Float32Array, id: number, lse: number): TopLogprob => ({ ...tokenText(id), logprob: x[id]! - lse });
    const onLogits = (b: number, logits: Float32Array) => {
      const row = rows[b]!;
      if (row.stopText !== null) return;
      if (topK !== null) {
        const lse = logSumExp(logits);
        // The chosen token's raw logit must survive the penalties below.
        pending[b] = { logits: penalised ? logits.slice() : logits, lse, top: topIds(logits, topK).map((id) => lp(logits, id, lse)) };
      }
      for (const [id, c] of row.counts) logits[id] = logits[id]! - c * req.frequencyPenalty - req.presencePenalty;
    };

    /**
     * Hands out the row's text up to `text` and the logprob entries it completes: while
     * streaming, the tokens whose text ends within it; at the end (`final`), every token whose
     * text begins before its end.
     */
    const emit = (b: number, text: string, final: boolean) => {
      const row = rows[b]!;
      if (!onDelta) return;
      if (text.length < row.emitted.length || !text.startsWith(row.emitted)) return;
      let n = row.sent;
      if (topK !== null)
        while (n < row.entries.length) {
          const start = n === 0 ? 0 : row.ends[n - 1]!;
          if (!(start < text.length && (final || row.ends[n]! <= text.length))) break;
          n++;
        }
      if (text.length === row.emitted.length && n === row.sent) return;
      onDelta(b, text.slice(row.emitted.length), topK === null ? null : row.entries.slice(row.sent, n));
      row.emitted = text;
      row.sent = n;
    };
    /** The logprobs of a final text: the entries of the tokens that begin inside it. */
    const contentEntries = (b: number, text: string): TokenLogprob[] => {
      const row = rows[b]!;
      let n = 0;
      while (n < row.entries.length && (n === 0 ? 0 : row.ends[n - 1]!) < text.length) n++;
      return row.entries.slice(0, n);
    };

    try {
      const results = await generateBatch(
        m.model,
        {
          prompts: rows.map(() => promptIds),
          maxNewTokens,
          sampling,
          eosTokenIds,
          lora: m.lora,
          signal: stopped.signal,
          ...(topK !== null || penalised ? { onLogits } : {}),
        },
        (b, id) => {
          const row = rows[b]!;
          if (row.stopText !== null) return;
          row.ids.push(id);
          row.counts.set(id, (row.counts.get(id) ?? 0) + 1);
          const text = tok.decode(row.ids, { skipSpecialTokens: true });
          if (topK !== null) {
            const p = pending[b]!;
            row.entries.push({ ...lp(p.logits, id, p.lse), top_logprobs: p.top });
            pending[b] = null;
            // A token that ended inside a character (U+FFFD) ends where the completed text does.
            for (let j = row.ends.length - 1; j >= row.sent && row.ends[j]! > text.length; j--) row.ends[j] = text.length;
            row.ends.push(text.length);
          }
          let cut = -1;
          for (const s of req.stop) {
            const at = text.indexOf(s);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
          }
          if (cut >= 0) {
            row.stopText = text.slice(0, cut);
            emit(b, row.stopText, true);
            if (rows.every((r) => r.stopText !== null)) stopped.abort();
            return;
          }
          if (text.endsWith('\uFFFD')) return;
          emit(b, text.slice(0, text.length - heldBack(text, req.stop)), false);
        },
      );
      if (req.signal.aborted) throw cancelled();
      const choices = results.map((r, b) => {
        const row = rows[b]!;
        const text = row.stopText ?? tok.decode(r.ids, { skipSpecialTokens: true });
        emit(b, text, true);
        const finishReason: FinishReason = row.stopText !== null || r.finishReason === 'eos' ? 'stop' : 'length';
        return {
          text,
          finishReason,
          completionTokens: row.stopText !== null ? row.ids.length : r.ids.length,
          logprobs: topK === null ? null : contentEntries(b, text),
        };
      });
      return { promptTokens: promptIds.length, choices };
    } finally {
      req.signal.removeEventListener('abort', onAbort);
    }
  };

  const reward = async (req: RewardRequest): Promise<RewardResult> => {
    if (req.signal.aborted) throw cancelled();
    const seq = rewardSequence(tok, req.messages, o.dateString === undefined ? {} : { dateString: o.dateString });
    if (seq.ids.length > contextLength) throw tooLong('the conversation', seq.ids.length);
    let s;
    try {
      [s] = await scoreSequences(m.model, [seq], { lora: m.lora, signal: req.signal });
    } catch (e) {
      if (req.signal.aborted) throw cancelled();
      throw e;
    }
    if (!s || s.nTokens === 0) throw new RequestError('messages: the response has no tokens to score', 400, 'messages');
    return { score: s.logprobSum / s.nTokens, logprobSum: s.logprobSum, nTokens: s.nTokens, promptTokens: seq.ids.length };
  };

  const queued = <T>(f: () => Promise<T>): Promise<T> => {
    const p = tail.then(f);
    tail = p.catch(() => undefined);
    return p;
  };

  return {
    modelId: o.modelId,
    created: Math.floor(Date.now() / 1000),
    contextLength,
    chat: (req, onDelta) => queued(() => run(req, onDelta)),
    reward: (req) => queued(() => reward(req)),
    idle: () => tail.then(() => undefined),
    cancelled: () => nCancelled,
  };
}

export interface StartServerOptions {
  /** A model folder, URL or Hub repo (as `--model`). */
  model: string;
  /** Keep the base quantized (as `--quant`). */
  quant?: QuantDType | null;
  /** A PEFT LoRA adapter folder. */
  adapter?: string;
  /** 0: any free port. */
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The id clients name; default the folder's (or repo's) name. */
  modelName?: string;
  dateString?: string;
  defaultMaxTokens?: number;
  /** Prompt + completion tokens allowed; default the model's max_position_embeddings. */
  maxContext?: number;
}

export interface RunningServer {
  host: string;
  port: number;
  /** http://host:port/v1 */
  baseURL: string;
  modelId: string;
  /** The context a request must fit, in tokens. */
  contextLength: number;
  /**
   * Requests received so far (whatever their outcome), by route: chat completions and /pooling;
   * and how many of them were stopped or dropped because their client went away.
   */
  stats(): { chat: number; pooling: number; cancelled: number };
  /** Stops accepting, aborts running requests, waits for the GPU queue, releases the model. */
  close(): Promise<void>;
}

/** The default model id for `--model`: a local folder's name, a URL's last segment, or the repo id. */
export function defaultModelName(model: string): string {
  const trimmed = model.replace(/\/+$/, '');
  if (/^https?:\/\//.test(trimmed) || existsSync(trimmed)) return basename(trimmed) || trimmed;
  return trimmed;
}

/** Loads the model and serves it; see the file comment and openai-server.ts. */
export async function startServer(o: StartServerOptions): Promise<RunningServer> {
  const source = await openModelSource(o.model);
  const m = await loadModelForCli(source, { adapter: o.adapter, quant: o.quant ?? null });
  const stats = { chat: 0, pooling: 0 };
  let backend: ModelBackend;
  let http;
  try {
    backend = createModelBackend(m, {
      modelId: o.modelName ?? defaultModelName(o.model),
      dateString: o.dateString,
      defaultMaxTokens: o.defaultMaxTokens,
      maxContext: o.maxContext,
    });
    const handler = createOpenAIHandler(backend);
    const counted = (req: HandlerRequest): Promise<HandlerReply> => {
      const path = req.path.replace(/\/+$/, '');
      if (req.method === 'POST' && path === '/v1/chat/completions') stats.chat++;
      else if (req.method === 'POST' && (path === '/pooling' || path === '/v1/pooling')) stats.pooling++;
      return handler(req);
    };
    http = await listenOpenAI(counted, { host: o.host ?? '127.0.0.1', port: o.port });
  } catch (e) {
    m.release();
    throw e;
  }
  const host = http.host.includes(':') ? `[${http.host}]` : http.host;
  let closing: Promise<void> | null = null;
  return {
    host: http.host,
    port: http.port,
    baseURL: `http://${host}:${http.port}/v1`,
    modelId: backend.modelId,
    contextLength: backend.contextLength,
    stats: () => ({ ...stats, cancelled: backend.cancelled() }),
    close: () =>
      (closing ??= (async () => {
        await http.close();
        await backend.idle();
        m.release();
      })()),
  };
}
