// From records to token batches: tokenization with label masks, truncation, padding, and the
// seeded shuffle of each epoch.
//
// SFT. A conversation is rendered by the chat template (tokenizer.encodeChat); labels are the
// token ids where the assistant mask is 1 (every assistant turn's content and its closing
// end-of-turn token, <|eot_id|> or <|im_end|>; system and user turns, the assistant headers and
// template text after the end-of-turn token are masked with -100), so a multi-turn chat trains
// every assistant turn. Templates that rewrite earlier turns are rendered as they render them
// (Qwen3 drops the reasoning of earlier turns: only what remains of them is trained).
// Pre-tokenized records are used as given. Labels are aligned to input_ids (Hugging Face
// convention); the batch shifts them: targets[t] = labels[t + 1], and the last position has no
// target.
//
// DPO. A pair becomes (prompt, chosen, rejected) token lists that share the prompt:
//   messages   prompt = encodeChat(prompt, add_generation_prompt) (ends with the assistant header;
//              Qwen3, thinking off: and an empty <think></think> block);
//              each response = encodeChat(prompt + completion) minus the shared leading tokens, up
//              to its last assistant-mask token (the content and the end-of-turn token: ChatML's
//              newline after <|im_end|> is not the model's); every completion token is scored, as TRL
//   text       prompt = encode(prompt) (with BOS), response = encode(completion) + eos, as TRL's
//              standard (non-chat) format
//   tokens     as given
// Only response tokens carry labels; chosen and rejected are scored as Σ log π over them.
//
// Truncation to maxLength tokens (never drops the whole answer):
//   SFT   The answer is the last run of labelled tokens (the final assistant turn) and whatever
//         follows it. If the sequence is too long, tokens are dropped from the START (system
//         prompt, earliest turns, then the start of the last prompt) while at least one token
//         stays before the answer (the one that predicts its first token). If even the answer with
//         that one token exceeds maxLength, the window starts at that token and the answer's END
//         is cut: maxLength − 1 answer tokens remain, so at least one is trained (maxLength >= 2).
//   DPO   The prompt is cut from its start to max(1, maxLength − longest response) tokens; each
//         response is then cut at its end to maxLength − (kept prompt) tokens, so every pair
//         keeps ≥ 1 prompt token and ≥ 1 token of each response.
//
// Batches use right padding (mask 0, target -100, id `padId`), padded to one sequence length for
// the whole run (the trainer's workspace has one shape). A DPO micro-batch of P pairs holds
// 2P rows: chosen sequences in rows 0…P−1, rejected in rows P…2P−1 (TRL's concatenated order).
import { IGNORE_INDEX } from '../engine/cross-entropy';
import type { ChatMessage as RecordMessage, DpoRecord, SftRecord } from '../data/records';
import type { ChatEncoding, ChatMessage, ChatTemplateOptions, EncodeOptions } from '../tokenizer/tokenizer';

/** What batching needs of a tokenizer (LoadedTokenizer has it). */
export interface BatchTokenizer {
  encodeChat(messages: readonly ChatMessage[], opts?: ChatTemplateOptions): ChatEncoding;
  encode(text: string, opts?: EncodeOptions): number[];
  readonly eosTokenIds: readonly number[];
}

export interface TokenizeOptions {
  /** Longest sequence in tokens (SFT: the whole chat; DPO: prompt + response), >= 2. */
  maxLength: number;
  /** Passed to the chat template, e.g. `{ dateString: '26 Jul 2024' }` for reproducible data. */
  chatTemplate?: ChatTemplateOptions;
}

/** A tokenized SFT example; labels[i] = inputIds[i] where trained, else -100 (not yet shifted). */
export interface SftExample {
  inputIds: number[];
  labels: number[];
  truncated: boolean;
}

/** Reference-model log-probabilities of a pair (Σ over response tokens), computed once. */
export interface ReferenceLogps {
  chosen: number;
  rejected: number;
}

export interface DpoPair {
  prompt: number[];
  chosen: number[];
  rejected: number[];
  truncated: boolean;
  /** Set by precomputeReferenceLogps (losses.ts). */
  reference?: ReferenceLogps;
}

export class BatchingError extends Error {
  override name = 'BatchingError';
}

function checkMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new BatchingError(`maxLength ${maxLength} must be an integer >= 2`);
}

// ---------------------------------------------------------------------------------------------
// Truncation (see the file comment)

/** Start and end (exclusive) of the last run of labelled tokens; [-1, -1] if none. */
export function lastLabelledRun(labels: readonly number[]): [number, number] {
  let e = labels.length;
  while (e > 0 && labels[e - 1] === IGNORE_INDEX) e--;
  if (e === 0) return [-1, -1];
  let s = e;
  while (s > 0 && labels[s - 1] !== IGNORE_INDEX) s--;
  return [s, e];
}

export function truncateSft(inputIds: readonly number[], labels: readonly number[], maxLength: number): SftExample {
  checkMaxLength(maxLength);
  if (labels.length !== inputIds.length) throw new BatchingError(`labels has ${labels.length} entries, input_ids ${inputIds.length}`);
  const L = inputIds.length;
  if (L <= maxLength) return { inputIds: [...inputIds], labels: [...labels], truncated: false };
  const [s] = lastLabelledRun(labels);
  // Keep the tail unless that would leave no token before the answer.
  let start = L - maxLength;
  if (s >= 0 && start > s - 1) start = Math.max(0, s - 1);
  const end = start + maxLength;
  return { inputIds: inputIds.slice(start, end), labels: labels.slice(start, end), truncated: true };
}

export function truncateDpo(
  prompt: readonly number[],
  chosen: readonly number[],
  rejected: readonly number[],
  maxLength: number,
): Omit<DpoPair, 'reference'> {
  checkMaxLength(maxLength);
  const longest = Math.max(chosen.length, rejected.length);
  if (prompt.length + longest <= maxLength) return { prompt: [...prompt], chosen: [...chosen], rejected: [...rejected], truncated: false };
  const keepPrompt = Math.min(prompt.length, Math.max(1, maxLength - longest));
  const keepResponse = maxLength - keepPrompt;
  return {
    prompt: prompt.slice(prompt.length - keepPrompt),
    chosen: chosen.slice(0, keepResponse),
    rejected: rejected.slice(0, keepResponse),
    truncated: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Tokenization

/** The record's messages as the chat template takes them. */
const chat = (messages: readonly RecordMessage[]): ChatMessage[] => messages.map((m) => ({ role: m.role, content: m.content }));

function needTokenizer(t: BatchTokenizer | null, kind: string): BatchTokenizer {
  if (!t) throw new BatchingError(`${kind} records need a tokenizer (this model has none: use pre-tokenized records)`);
  return t;
}

/** Tokens of positions 1… that carry a label: the targets an example trains (position 0 predicts nothing). */
export function trainableTargets(labels: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

export function tokenizeSft(record: SftRecord, tokenizer: BatchTokenizer | null, o: TokenizeOptions): SftExample {
  checkMaxLength(o.maxLength);
  if (record.kind === 'sft-tokens') return truncateSft(record.inputIds, record.labels, o.maxLength);
  const { ids, assistantMask } = needTokenizer(tokenizer, 'chat').encodeChat(chat(record.messages), o.chatTemplate);
  const labels = ids.map((id, i) => (assistantMask[i] ? id : IGNORE_INDEX));
  return truncateSft(ids, labels, o.maxLength);
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** One past the last assistant-mask token after position n (template text after the end-of-turn token is not the response's). */
function responseEnd(e: ChatEncoding, n: number): number {
  let i = e.ids.length;
  while (i > n && !e.assistantMask[i - 1]) i--;
  return i > n ? i : e.ids.length;
}

export function tokenizeDpo(record: DpoRecord, tokenizer: BatchTokenizer | null, o: TokenizeOptions): Omit<DpoPair, 'reference'> {
  checkMaxLength(o.maxLength);
  let prompt: number[];
  let chosen: number[];
  let rejected: number[];
  switch (record.kind) {
    case 'dpo-tokens':
      ({ promptInputIds: prompt, chosenInputIds: chosen, rejectedInputIds: rejected } = record);
      break;
    case 'dpo-text': {
      const t = needTokenizer(tokenizer, 'text');
      const eos = t.eosTokenIds.length ? [t.eosTokenIds[0]!] : [];
      prompt = t.encode(record.prompt);
      chosen = [...t.encode(record.chosen, { addSpecialTokens: false }), ...eos];
      rejected = [...t.encode(record.rejected, { addSpecialTokens: false }), ...eos];
      break;
    }
    case 'dpo-messages': {
      const t = needTokenizer(tokenizer, 'chat');
      const p = t.encodeChat(chat(record.prompt), { ...o.chatTemplate, addGenerationPrompt: true }).ids;
      const c = t.encodeChat(chat([...record.prompt, ...record.chosen]), o.chatTemplate);
      const r = t.encodeChat(chat([...record.prompt, ...record.rejected]), o.chatTemplate);
      // The rendered prompt is a prefix of both conversations (checked token-wise, in case a
      // template merges across the boundary: then the shared part is the prompt).
      const n = Math.min(commonPrefix(p, c.ids), commonPrefix(p, r.ids));
      prompt = p.slice(0, n);
      chosen = c.ids.slice(n, responseEnd(c, n));
      rejected = r.ids.slice(n, responseEnd(r, n));
      break;
    }
  }
  if (!chosen.length || !rejected.length) throw new BatchingError('a response has no tokens after the prompt');
  return truncateDpo(prompt, chosen, rejected, o.maxLength);
}

export interface Skipped {
  /** Index of the record in the input list. */
  index: number;
  reason: string;
}

export interface Prepared<T> {
  examples: T[];
  /** Input index of each example (parallel to `examples`). */
  indices: number[];
  /** Records that could not be used, with the reason. */
  skipped: Skipped[];
  /** How many examples were truncated. */
  truncated: number;
}

function prepare<R, T extends { truncated: boolean }>(records: readonly R[], one: (r: R) => T, check: (t: T) => string | null): Prepared<T> {
  const out: Prepared<T> = { examples: [], indices: [], skipped: [], truncated: 0 };
  records.forEach((r, index) => {
    try {
      const t = one(r);
      const why = check(t);
      if (why) out.skipped.push({ index, reason: why });
      else {
        out.examples.push(t);
        out.indices.push(index);
        if (t.truncated) out.truncated++;
      }
    } catch (e) {
      out.skipped.push({ index, reason: e instanceof Error ? e.message : String(e) });
    }
  });
  return out;
}

/** Tokenize SFT records; those with nothing to train (no label after position 0) are skipped. */
export function prepareSft(records: readonly SftRecord[], tokenizer: BatchTokenizer | null, o: TokenizeOptions): Prepared<SftExample> {
  return prepare(records, (r) => tokenizeSft(r, tokenizer, o), (e) => (trainableTargets(e.labels) ? null : 'no trainable (assistant) token'));
}

export function prepareDpo(records: readonly DpoRecord[], tokenizer: BatchTokenizer | null, o: TokenizeOptions): Prepared<DpoPair> {
  return prepare(records, (r) => tokenizeDpo(r, tokenizer, o), (p) => (p.prompt.length ? null : 'empty prompt: the first response token has nothing to condition on'));
}

// ---------------------------------------------------------------------------------------------
// Batches

/** A padded batch as setBatchInputs takes it, plus counts. */
export interface TokenBatch {
  batchSize: number;
  seqLen: number;
  ids: Int32Array;
  mask: Int32Array;
  /** Shifted: targets[t] = labels[t + 1]; -100 on padding, masked labels and each row's last token. */
  targets: Int32Array;
  /** Real (non-padding) input tokens. */
  tokens: number;
  /** Counted targets (the N of mean cross-entropy). */
  targetCount: number;
}

function emptyBatch(batchSize: number, seqLen: number, padId: number): TokenBatch {
  const n = batchSize * seqLen;
  return {
    batchSize,
    seqLen,
    ids: new Int32Array(n).fill(padId),
    mask: new Int32Array(n),
    targets: new Int32Array(n).fill(IGNORE_INDEX),
    tokens: 0,
    targetCount: 0,
  };
}

/** Write one row: ids, mask 1, targets = labels shifted left by one. */
function putRow(b: TokenBatch, row: number, ids: readonly number[], labels: readonly number[]): void {
  if (ids.length > b.seqLen) throw new BatchingError(`a sequence of ${ids.length} tokens does not fit seqLen ${b.seqLen}`);
  const o = row * b.seqLen;
  for (let t = 0; t < ids.length; t++) {
    b.ids[o + t] = ids[t]!;
    b.mask[o + t] = 1;
    const y = t + 1 < ids.length ? labels[t + 1]! : IGNORE_INDEX;
    b.targets[o + t] = y;
    if (y !== IGNORE_INDEX) b.targetCount++;
  }
  b.tokens += ids.length;
}

/** Rows [0, examples.length) hold the examples, the rest (up to batchSize) is padding. */
export function collateSft(examples: readonly SftExample[], batchSize: number, seqLen: number, padId = 0): TokenBatch {
  if (examples.length > batchSize) throw new BatchingError(`${examples.length} examples for a batch of ${batchSize}`);
  const b = emptyBatch(batchSize, seqLen, padId);
  examples.forEach((e, i) => putRow(b, i, e.inputIds, e.labels));
  return b;
}

/** Prompt + response ids, with labels on the response only. */
export function dpoSequence(prompt: readonly number[], response: readonly number[]): { ids: number[]; labels: number[] } {
  return { ids: [...prompt, ...response], labels: [...prompt.map(() => IGNORE_INDEX), ...response] };
}

/** 2·pairsPerBatch rows: chosen of pair i in row i, its rejected in row pairsPerBatch + i. */
export function collateDpo(pairs: readonly DpoPair[], pairsPerBatch: number, seqLen: number, padId = 0): TokenBatch {
  if (pairs.length > pairsPerBatch) throw new BatchingError(`${pairs.length} pairs for a batch of ${pairsPerBatch}`);
  const b = emptyBatch(2 * pairsPerBatch, seqLen, padId);
  pairs.forEach((p, i) => {
    const c = dpoSequence(p.prompt, p.chosen);
    const r = dpoSequence(p.prompt, p.rejected);
    putRow(b, i, c.ids, c.labels);
    putRow(b, pairsPerBatch + i, r.ids, r.labels);
  });
  return b;
}

export function sftSeqLen(examples: readonly SftExample[]): number {
  return examples.reduce((m, e) => Math.max(m, e.inputIds.length), 1);
}

export function dpoSeqLen(pairs: readonly DpoPair[]): number {
  return pairs.reduce((m, p) => Math.max(m, p.prompt.length + Math.max(p.chosen.length, p.rejected.length)), 1);
}

// ---------------------------------------------------------------------------------------------
// Shuffling

/** mulberry32 seeded from (seed, epoch): the order of an epoch is a pure function of the two. */
function epochRandom(seed: number, epoch: number): () => number {
  let s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A permutation of [0, n) for `epoch` (Fisher–Yates); the same (n, seed, epoch) gives the same order. */
export function shuffledOrder(n: number, seed: number, epoch: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const next = epochRandom(seed, epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
