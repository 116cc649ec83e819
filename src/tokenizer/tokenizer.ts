// A model's tokenizer, loaded from its tokenizer.json + tokenizer_config.json (already parsed:
// fetching the files is the loader's job), with @huggingface/tokenizers doing the BPE and
// @huggingface/jinja the chat template. Behaviour follows transformers' PreTrainedTokenizerFast:
// `encode` adds what the tokenizer.json post-processor adds (Llama 3.2: <|begin_of_text|>),
// special-token strings inside text become their ids, `decode` applies
// `clean_up_tokenization_spaces` when the config asks for it.
//
// Thinking off by default: every rendering through a LoadedTokenizer passes `enable_thinking: false`
// unless the caller says otherwise (`enableThinking`, or `extra.enable_thinking`). Qwen3's template
// then ends the generation prompt with an empty `<think>\n\n</think>\n\n`, so generation, training
// data and scoring all use the model without reasoning; templates that do not read the keyword
// render as before. (transformers leaves it undefined, which is Qwen3's thinking mode.)
//
// Assistant masks (`encodeChat`): which tokens of a rendered chat the assistant produced. Rule: for
// each assistant message, the tokens after its generation prompt up to and including the first
// special token the template writes after its content: its end-of-turn token (<|eot_id|>,
// <|im_end|>, </s>), which is where generation stops. Not the header (<|start_header_id|>assistant
// <|end_header_id|>\n\n, ChatML's plain-text <|im_start|>assistant\n), not the template text after
// the end-of-turn token (ChatML's newline), and no other message. Tool calls the template writes
// after the content (Qwen's <tool_call> blocks) are the assistant's; with no special token before
// the next message, the turn ends with its content. So the masked tokens of a final turn are
// exactly what the model generates after render(messages[:k], add_generation_prompt) and its stop
// token. (transformers/TRL mark assistant text with {% generation %} blocks, which the shipped
// Llama, Qwen and SmolLM2 templates lack; TRL's patched training templates put them around
// different text per family: Qwen2.5 from the header's newline through the newline after
// <|im_end|>, Qwen3 the whole turn with its header. This rule needs no patched template.)
//
// The conversation is rendered once and never as prefixes, because a template may rewrite earlier
// turns (Qwen3 drops the <think> reasoning of assistant turns before the last user query, so the
// rendering of messages[:k] is not the start of the whole rendering). Each assistant message is
// found in the whole rendering by changing only that message and rendering again:
//   content := σ             the first differing character is where its output begins (c)
//   content := content + σ   the first differing character is where its content ends (e)
// (σ is a private-use character; a message whose content the template does not write, such as a
// Llama 3 tool call, is found by changing its first tool call's name instead. This assumes that a
// message's content changes the rendering only from that message on, as in every template here.)
// The header is the
// generation prompt: the text that add_generation_prompt appends, rendered with the caller's
// options and, as a second candidate, without the template keywords (Qwen3 with thinking off:
// earlier turns and turns with reasoning carry no empty think block). The candidate occurrence
// that ends latest at or before c, and after the previous assistant turn, is the header. Then the
// span's characters are cut out of the whole text and mapped to tokens: each piece is tokenized on
// its own; if the pieces' tokens concatenate to exactly the whole text's tokens (always so when
// every cut sits next to a special token or a pre-tokenizer boundary), the boundaries are exact.
// Otherwise each prefix is tokenized, its longest common prefix with the whole token list gives the
// boundary, and a token straddling a boundary counts as assistant.

import { Tokenizer } from '@huggingface/tokenizers';
import { ChatTemplateError, renderChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat-template';

export { ChatTemplateError, type ChatMessage, type ChatTemplateOptions } from './chat-template';

/** The folder has no tokenizer.json: generation and training need token ids instead of text. */
export class MissingTokenizerError extends Error {
  override name = 'MissingTokenizerError';
  constructor(where?: string) {
    super(`${where ? `${where}: ` : ''}this model folder has no tokenizer.json: only token-id inputs (--prompt-ids) are accepted`);
  }
}

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

export interface LoadTokenizerInput {
  /** Parsed tokenizer.json; null/undefined when the folder has none (throws MissingTokenizerError). */
  tokenizerJson: unknown;
  /** Parsed tokenizer_config.json; optional (no chat template, no named bos/eos then). */
  tokenizerConfig?: unknown;
  /** A chat template from elsewhere (chat_template.jinja / chat_template.json); wins over the config's. */
  chatTemplate?: string | null;
  /** Parsed generation_config.json: its eos_token_id list joins `eosTokenIds`. */
  generationConfig?: unknown;
  /** Used in error messages, e.g. the folder or repo name. */
  name?: string;
}

export interface EncodeOptions {
  /** Add what the tokenizer's post-processor adds (Llama 3.2: BOS). Default true, as in transformers. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /** Default: tokenizer_config's clean_up_tokenization_spaces (true for Llama 3, so " ," becomes ","). */
  cleanUpTokenizationSpaces?: boolean;
}

export interface ChatEncoding {
  ids: number[];
  /**
   * 1 for tokens an assistant turn produced: what follows its generation prompt, up to and with its
   * end-of-turn token (<|eot_id|>, <|im_end|>); else 0. See the file comment.
   */
  assistantMask: number[];
}

export interface LoadedTokenizer {
  /** The chat template source, or null if the model has none. */
  readonly chatTemplate: string | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly bosTokenId: number | null;
  /** Ids that end generation: the config's eos_token, plus generation_config's eos_token_id list. */
  readonly eosTokenIds: number[];
  /** Special (added) tokens by content, e.g. "<|eot_id|>" → 128009. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Highest token id + 1. */
  readonly vocabSize: number;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** transformers' apply_chat_template(messages, tokenize=False), with enable_thinking false unless given. */
  applyChatTemplate(messages: readonly ChatMessage[], opts?: ChatTemplateOptions): string;
  /** The rendered chat's token ids (no extra BOS: the template writes it) and assistant mask. */
  encodeChat(messages: readonly ChatMessage[], opts?: ChatTemplateOptions): ChatEncoding;
}

type Json = Record<string, unknown>;

/** A special token as tokenizer_config.json writes it: a string, or an AddedToken object. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/** tokenizer_config's chat_template: a string, or a list of {name, template} (use "default"). */
function pickTemplate(v: unknown, name: string): string | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const entries = v as { name?: unknown; template?: unknown }[];
    const hit = entries.find((e) => e?.name === 'default') ?? (entries.length === 1 ? entries[0] : undefined);
    if (hit && typeof hit.template === 'string') return hit.template;
    throw new TokenizerError(`${name}: chat_template is a list without a "default" entry`);
  }
  return null;
}

export function loadTokenizer(input: LoadTokenizerInput): LoadedTokenizer {
  const name = input.name ?? 'tokenizer';
  const tj = input.tokenizerJson;
  if (tj === null || tj === undefined) throw new MissingTokenizerError(input.name);
  if (typeof tj !== 'object' || Array.isArray(tj) || !(tj as Json).model)
    throw new TokenizerError(`${name}: tokenizer.json is not a tokenizers file (it has no "model")`);
  const config = (input.tokenizerConfig ?? {}) as Json;
  if (typeof config !== 'object' || Array.isArray(config))
    throw new TokenizerError(`${name}: tokenizer_config.json must be a JSON object`);

  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tj, config);
  } catch (e) {
    throw new TokenizerError(`${name}: tokenizer.json could not be loaded: ${(e as Error).message}`);
  }

  const specialTokens = new Map<string, number>();
  let maxId = -1;
  for (const t of ((tj as Json).added_tokens ?? []) as { id: number; content: string; special?: boolean }[]) {
    if (t.special) specialTokens.set(t.content, t.id);
    maxId = Math.max(maxId, t.id);
  }
  const vocab = ((tj as Json).model as Json).vocab;
  if (vocab && typeof vocab === 'object') {
    const values = Array.isArray(vocab) ? vocab.map((_, i) => i) : Object.values(vocab as Record<string, number>);
    for (const id of values) if (id > maxId) maxId = id;
  }

  const idOf = (content: string | null, field: string): number | null => {
    if (content === null) return null;
    const id = tok.token_to_id(content);
    if (id === undefined) throw new TokenizerError(`${name}: tokenizer_config.json ${field} "${content}" is not in the vocabulary`);
    return id;
  };
  const bosToken = tokenContent(config.bos_token);
  const eosToken = tokenContent(config.eos_token);
  const bosTokenId = idOf(bosToken, 'bos_token');
  const eosTokenId = idOf(eosToken, 'eos_token');
  const eosTokenIds: number[] = eosTokenId === null ? [] : [eosTokenId];
  const gen = (input.generationConfig ?? {}) as Json;
  for (const id of [gen.eos_token_id].flat()) if (Number.isInteger(id) && !eosTokenIds.includes(id as number)) eosTokenIds.push(id as number);

  // The named special tokens transformers passes to templates (its special_tokens_map).
  const named: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']) {
    const c = tokenContent(config[key]);
    if (c !== null) named[key] = c;
  }
  const extraSpecial = config.additional_special_tokens;
  const templateVars: Record<string, unknown> = { ...named };
  if (Array.isArray(extraSpecial)) templateVars.additional_special_tokens = extraSpecial.map(tokenContent).filter((x) => x !== null);

  const chatTemplate = input.chatTemplate ?? pickTemplate(config.chat_template, name);
  // Where an assistant turn ends: the first special token after its content (see the file comment).
  const specialPattern = specialTokens.size
    ? new RegExp([...specialTokens.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g')
    : null;

  const encode = (text: string, opts: EncodeOptions = {}): number[] =>
    tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;

  // renderRaw renders exactly the options given; render applies the default of thinking off.
  const renderRaw = (messages: readonly ChatMessage[], opts: ChatTemplateOptions): string => {
    if (chatTemplate === null)
      throw new ChatTemplateError(`${name}: this model has no chat template (tokenizer_config.json has no "chat_template"); use plain text prompts`);
    return renderChatTemplate(chatTemplate, messages, templateVars as Record<string, string>, opts);
  };
  const render = (messages: readonly ChatMessage[], opts: ChatTemplateOptions): string =>
    renderRaw(messages, { ...opts, enableThinking: opts.enableThinking ?? false });
  const applyChatTemplate = (messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string => {
    if (!messages.length) throw new ChatTemplateError('a chat needs at least one message');
    return render(messages, opts);
  };

  const encodeChat = (messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): ChatEncoding => {
    // One clock for every rendering below (a date line must not change between them).
    const o: ChatTemplateOptions = { ...opts, now: opts.now ?? new Date(), enableThinking: opts.enableThinking ?? false };
    const full = applyChatTemplate(messages, o);
    const ids = encode(full, { addSpecialTokens: false });
    const assistantMask = new Array<number>(ids.length).fill(0);
    if (!messages.some((m) => m.role === 'assistant')) return { ids, assistantMask };
    const spans = assistantCharSpans(messages, full, o, renderRaw, specialPattern);
    if (!spans.length) return { ids, assistantMask };
    const cuts = [...new Set(spans.flat())].sort((a, b) => a - b);
    const tokenAt = charToTokenBoundaries(full, cuts, ids, (t) => encode(t, { addSpecialTokens: false }));
    for (const [s, e] of spans) {
      const ts = tokenAt.get(s)!.start;
      const te = tokenAt.get(e)!.end;
      for (let i = ts; i < te; i++) assistantMask[i] = 1;
    }
    return { ids, assistantMask };
  };

  return {
    chatTemplate,
    bosToken,
    eosToken,
    bosTokenId,
    eosTokenIds,
    specialTokens,
    vocabSize: maxId + 1,
    encode,
    decode: (ids, opts = {}) =>
      ids.length === 0
        ? ''
        : tok.decode(ids as number[], {
            skip_special_tokens: opts.skipSpecialTokens ?? false,
            ...(opts.cleanUpTokenizationSpaces === undefined ? {} : { clean_up_tokenization_spaces: opts.cleanUpTokenizationSpaces }),
          }),
    tokenToId: (t) => tok.token_to_id(t),
    idToToken: (id) => tok.id_to_token(id),
    applyChatTemplate,
    encodeChat,
  };
}

type RenderAs = (messages: readonly ChatMessage[], opts: ChatTemplateOptions) => string;

/** Private-use characters: no template writes them, no case or whitespace filter changes them. */
const SIGMA = ['\uE000', '\uE001'] as const;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function commonPrefixLength(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

const withMessage = (messages: readonly ChatMessage[], k: number, m: ChatMessage) => messages.map((x, i) => (i === k ? m : x));

/**
 * Character spans [start, end) of the rendered `full` chat that belong to assistant turns (see the
 * file comment). `opts` are the options `full` was rendered with; `renderAs` renders without
 * applying defaults.
 */
function assistantCharSpans(
  messages: readonly ChatMessage[],
  full: string,
  opts: ChatTemplateOptions,
  renderAs: RenderAs,
  special: RegExp | null,
): [number, number][] {
  const renderWith = (msgs: readonly ChatMessage[], o: ChatTemplateOptions, k: number) => {
    try {
      return renderAs(msgs, o);
    } catch (e) {
      throw new ChatTemplateError(`cannot mask assistant message ${k}: the chat template fails on a probe of it (${(e as Error).message})`);
    }
  };

  // Where message k's output begins: the first character that changes when only it changes.
  const starts = new Map<number, number | null>();
  const messageStart = (k: number): number | null => {
    if (starts.has(k)) return starts.get(k)!;
    const m = messages[k]!;
    const sigma = typeof m.content === 'string' && m.content.startsWith(SIGMA[0]) ? SIGMA[1] : SIGMA[0];
    const probes: ChatMessage[] = [{ ...m, content: sigma }];
    const calls = Array.isArray(m.tool_calls) ? (m.tool_calls as unknown as Record<string, unknown>[]) : [];
    const call = calls[0];
    if (call) {
      // A template that ignores the content of a tool-call turn (Llama 3) still writes the call's name.
      const fn = call.function as Record<string, unknown> | undefined;
      const renamed =
        fn && typeof fn.name === 'string'
          ? { ...call, function: { ...fn, name: sigma + fn.name } }
          : typeof call.name === 'string'
            ? { ...call, name: sigma + call.name }
            : null;
      if (renamed) probes.push({ ...m, tool_calls: [renamed, ...calls.slice(1)] as unknown as ChatMessage['tool_calls'] });
    }
    let at: number | null = null;
    for (const probe of probes) {
      const x = renderWith(withMessage(messages, k, probe), opts, k);
      if (x !== full) {
        at = commonPrefixLength(full, x);
        break;
      }
    }
    starts.set(k, at);
    return at;
  };

  // The generation prompt: what add_generation_prompt appends, with the caller's template keywords
  // and without them (Qwen3 with thinking off: turns that carry no empty think block).
  const headers: string[] = [];
  for (const o of [opts, { ...opts, enableThinking: undefined, extra: undefined }]) {
    const without = o === opts && !opts.addGenerationPrompt ? full : renderWith(messages, { ...o, addGenerationPrompt: false }, -1);
    const withGen = renderWith(messages, { ...o, addGenerationPrompt: true }, -1);
    if (withGen.startsWith(without) && !headers.includes(withGen.slice(without.length))) headers.push(withGen.slice(without.length));
  }
  if (!headers.length)
    throw new ChatTemplateError('cannot mask assistant turns: the chat template does not append its generation prompt to the conversation, so the assistant header is unknown');

  const spans: [number, number][] = [];
  let lo = 0;
  for (let k = 0; k < messages.length; k++) {
    const m = messages[k]!;
    if (m.role !== 'assistant') continue;
    const where = `cannot mask assistant message ${k}`;
    const c = messageStart(k);
    if (c === null) throw new ChatTemplateError(`${where}: the chat template does not write it (changing it does not change the rendering)`);

    // The header: the candidate occurrence that ends latest at or before c, after the previous turn.
    let start = -1;
    for (const h of headers) {
      if (h === '') {
        if (c >= lo) start = Math.max(start, c);
        continue;
      }
      if (c - h.length < lo) continue;
      const at = full.lastIndexOf(h, c - h.length);
      if (at >= lo) start = Math.max(start, at + h.length);
    }
    if (start < 0)
      throw new ChatTemplateError(`${where}: its header (the generation prompt ${JSON.stringify(headers[0])}) is not in the rendering before it`);

    // The end: the first special token after its content, unless the next message begins first.
    let contentEnd = c;
    if (typeof m.content === 'string') {
      const x = renderWith(withMessage(messages, k, { ...m, content: m.content + SIGMA[0] }), opts, k);
      if (x !== full) contentEnd = Math.max(c, commonPrefixLength(full, x));
    }
    let end = contentEnd;
    if (special) {
      special.lastIndex = contentEnd;
      const hit = special.exec(full);
      if (hit) {
        const next = k + 1 < messages.length ? messageStart(k + 1) : null;
        if (next === null || next <= contentEnd || hit.index < next) end = hit.index + hit[0].length;
      }
    }
    if (end > start) spans.push([start, end]);
    lo = end;
  }
  return spans;
}

/**
 * For each character offset in `cuts` (sorted, within `full`), the token index range of the
 * boundary: `start` is the first token at or after it that begins inside [offset, …), `end` the
 * index one past the last token that holds characters before it. Equal when the boundary falls
 * between two tokens; `end = start + 1` when one token straddles it.
 */
function charToTokenBoundaries(
  full: string,
  cuts: number[],
  fullIds: readonly number[],
  encode: (text: string) => number[],
): Map<number, { start: number; end: number }> {
  const out = new Map<number, { start: number; end: number }>();
  // Fast path: tokenize the pieces between cuts; if they concatenate to the full tokenization,
  // every cut is a token boundary.
  const pieces: number[][] = [];
  let prev = 0;
  for (const c of [...cuts, full.length]) {
    pieces.push(c > prev ? encode(full.slice(prev, c)) : []);
    prev = c;
  }
  const joined = pieces.flat();
  if (joined.length === fullIds.length && joined.every((id, i) => id === fullIds[i])) {
    let at = 0;
    cuts.forEach((c, i) => {
      at += pieces[i]!.length;
      out.set(c, { start: at, end: at });
    });
    return out;
  }
  // Slow path: the longest common prefix of each prefix's tokens with the full tokens.
  for (const c of cuts) {
    const p = encode(full.slice(0, c));
    let n = 0;
    while (n < p.length && n < fullIds.length && p[n] === fullIds[n]) n++;
    out.set(c, n === p.length ? { start: n, end: n } : { start: n, end: Math.min(n + 1, fullIds.length) });
  }
  return out;
}
