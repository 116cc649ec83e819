// The held-out items of an evaluation (EVAL.jsonl), one JSON object a line, each classified by its
// keys:
//   DPO record        {"prompt","chosen","rejected"} or *_input_ids      → preference accuracy, margin
//   multiple choice   {"prompt","choices":[…],"answer":i}                → accuracy by log-likelihood
//   SFT record        {"messages"} / {"conversations"} ending in the assistant's turn, {"input_ids"}
//                                                                        → held-out loss, perplexity
//   prompt row        {"prompt","domain","gold","tests"} as build-data reads prompts (prompts.ts:
//                     the same column names, domains, and the gold/tests a math/code row needs)
//                                                                        → answers, checked and judged
// Every bad line is named with what to write instead; nothing is evaluated until all parse. The
// set is hashed (sha256 of the canonical items, in file order) before any answer is generated, so
// a report says exactly what it measured; eval prompts that repeat training prompts are flagged.
import { dedupeKey, rowsToPrompts, type Prompt } from '../data/prompts';
import { parseDpoRecord, parseJsonl, parseSftRecord, RecordError, type ChatMessage, type DpoRecord, type LineError, type SftRecord } from '../data/records';

interface ItemBase {
  /** Stable across runs of the same row: results are stored under it. */
  id: string;
  /** 1-based line in the file. */
  line: number;
}
export interface PromptItem extends ItemBase {
  kind: 'prompt';
  prompt: Prompt;
}
export interface SftItem extends ItemBase {
  kind: 'sft';
  record: SftRecord;
}
export interface DpoItem extends ItemBase {
  kind: 'dpo';
  record: DpoRecord;
}
export interface ChoiceItem extends ItemBase {
  kind: 'choice';
  prompt: string;
  system?: string;
  choices: string[];
  /** Index of the right choice. */
  answer: number;
}
export type EvalItem = PromptItem | SftItem | DpoItem | ChoiceItem;
export type EvalItemKind = EvalItem['kind'];

/** A prompt's text and system turn, as training and eval sets are compared. */
export interface PromptText {
  text: string;
  system?: string;
}

export interface EvalItemSet {
  items: EvalItem[];
  /** sha256 (hex) of the canonical items, in order. */
  hash: string;
}

/** The file has bad lines (all of them listed, each with what to do). */
export class EvalItemsError extends Error {
  override name = 'EvalItemsError';
  constructor(
    readonly file: string,
    readonly errors: readonly LineError[],
  ) {
    const shown = errors.slice(0, 10).map((e) => `  line ${e.line}: ${e.message}`);
    const more = errors.length > 10 ? `\n  … and ${errors.length - 10} more` : '';
    super(`${file}: ${errors.length} bad line${errors.length > 1 ? 's' : ''}:\n${shown.join('\n')}${more}`);
  }
}

const FORMATS =
  'write a prompt row {"prompt", "domain", "gold", "tests"}, an SFT record {"messages": […]} ending in the assistant\'s turn, ' +
  'a DPO record {"prompt", "chosen", "rejected"} or a multiple-choice row {"prompt", "choices": ["…", "…"], "answer": index}';
const DPO_KEYS = ['chosen', 'rejected', 'chosen_input_ids', 'rejected_input_ids', 'prompt_input_ids'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a messages/conversations row is a whole conversation (an SFT record), not a prompt. */
function endsWithAssistant(v: Record<string, unknown>): boolean {
  const list = v.messages ?? v.conversations;
  if (!Array.isArray(list) || list.length === 0) return false;
  const last = list[list.length - 1] as { role?: unknown; from?: unknown } | null;
  return last?.role === 'assistant' || last?.from === 'gpt' || last?.from === 'assistant';
}

function parseChoice(v: Record<string, unknown>): Omit<ChoiceItem, 'id' | 'line'> & { givenId?: string } {
  const how = 'write {"prompt": "…", "choices": ["…", "…"], "answer": index of the right choice, from 0}';
  const unknown = Object.keys(v).filter((k) => !['prompt', 'system', 'choices', 'answer', 'id'].includes(k));
  if (unknown.length) throw new RecordError(`multiple-choice row: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; ${how}`);
  if (typeof v.prompt !== 'string' || v.prompt.trim() === '') throw new RecordError(`multiple-choice row: "prompt" must be a non-empty string; ${how}`);
  if (v.system !== undefined && typeof v.system !== 'string') throw new RecordError(`multiple-choice row: "system" must be a string`);
  const choices = v.choices;
  if (!Array.isArray(choices) || choices.length < 2) throw new RecordError(`multiple-choice row: "choices" must list at least 2 options (got ${Array.isArray(choices) ? choices.length : typeof choices}); ${how}`);
  const bad = choices.findIndex((c) => typeof c !== 'string' || c.trim() === '');
  if (bad >= 0) throw new RecordError(`multiple-choice row: choices[${bad}] must be a non-empty string`);
  if (new Set(choices).size !== choices.length) throw new RecordError('multiple-choice row: two choices are the same text, so neither can win; make each choice different');
  const answer = v.answer;
  if (typeof answer !== 'number' || !Number.isInteger(answer) || answer < 0 || answer >= choices.length)
    throw new RecordError(`multiple-choice row: "answer" must be the index of the right choice, an integer from 0 to ${choices.length - 1} (got ${JSON.stringify(answer)})`);
  if (v.id !== undefined && (typeof v.id !== 'string' || v.id.trim() === '')) throw new RecordError('multiple-choice row: "id" must be a non-empty string');
  return {
    kind: 'choice',
    prompt: v.prompt,
    ...(typeof v.system === 'string' && v.system !== '' ? { system: v.system } : {}),
    choices: choices as string[],
    answer,
    ...(typeof v.id === 'string' ? { givenId: v.id } : {}),
  };
}

function parsePromptRow(v: Record<string, unknown>, line: number): Prompt {
  const r = rowsToPrompts([{ row: line, line, value: v }], { dedupe: false });
  if (r.errors.length) throw new RecordError(`prompt row: ${r.errors[0]!.message}`);
  return r.prompts[0]!;
}

/** A row as parsed; a multiple-choice row's own "id" in givenId. */
type Parsed = Omit<PromptItem, 'id' | 'line'> | Omit<SftItem, 'id' | 'line'> | Omit<DpoItem, 'id' | 'line'> | (Omit<ChoiceItem, 'id' | 'line'> & { givenId?: string });

/** One line's value as an item (without its id); throws RecordError saying what to write. */
export function classifyEvalRow(value: unknown, line: number): Parsed {
  if (!isObject(value)) throw new RecordError(`not a JSON object; ${FORMATS}`);
  if (DPO_KEYS.some((k) => k in value)) {
    try {
      return { kind: 'dpo', record: parseDpoRecord(value) };
    } catch (e) {
      throw new RecordError(`DPO record: ${(e as Error).message}`);
    }
  }
  if ('choices' in value) return parseChoice(value);
  if ('input_ids' in value || endsWithAssistant(value)) {
    try {
      return { kind: 'sft', record: parseSftRecord(value) };
    } catch (e) {
      throw new RecordError(`SFT record: ${(e as Error).message}`);
    }
  }
  try {
    return { kind: 'prompt', prompt: parsePromptRow(value, line) };
  } catch (e) {
    const msg = (e as Error).message;
    // A row no importer knows: say which shapes there are.
    if (/no prompt column/.test(msg)) throw new RecordError(`not an eval row (its keys: ${Object.keys(value).join(', ') || 'none'}); ${FORMATS}`);
    throw e;
  }
}

/** Canonical JSON: keys sorted, so the same item hashes the same whatever its key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value))
    return `{${Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** What an item is, for its id and the set's hash (its line number and origin left out). */
function itemContent(p: Parsed): unknown {
  if (p.kind === 'prompt') {
    const { origin: _o, ...prompt } = p.prompt;
    return { kind: 'prompt', ...prompt };
  }
  return p;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const ID_PREFIX: Record<EvalItemKind, string> = { prompt: 'p', sft: 's', dpo: 'd', choice: 'c' };

/**
 * Parses EVAL.jsonl text: the items, or EvalItemsError listing every bad line (`file` names it).
 * Ids: a prompt row's as build-data gives it (its "id", else a hash of its text), a multiple-choice
 * row's "id" when it has one; other rows a hash of their content. A line repeating an earlier item is an error naming both lines.
 */
export async function parseEvalItems(text: string, file = 'EVAL.jsonl'): Promise<EvalItemSet> {
  const parsed = parseJsonl<Parsed>(text, classifyEvalRow);
  const errors: LineError[] = [...parsed.errors];
  const items: EvalItem[] = [];
  const contents: string[] = [];
  const seen = new Map<string, number>();
  for (let i = 0; i < parsed.records.length; i++) {
    const p = parsed.records[i]!;
    const line = parsed.lines[i]!;
    const given = p.kind === 'choice' ? p.givenId : undefined;
    if (p.kind === 'choice') delete p.givenId;
    const content = canonicalJson(itemContent(p));
    const id = p.kind === 'prompt' ? p.prompt.id : (given ?? `${ID_PREFIX[p.kind]}${(await sha256Hex(content)).slice(0, 14)}`);
    const first = seen.get(id);
    if (first !== undefined) {
      errors.push({ line, message: `repeats the item of line ${first} (id ${id}): remove one of them, or give the rows different "id"s` });
      continue;
    }
    seen.set(id, line);
    items.push({ ...p, id, line } as EvalItem);
    contents.push(content);
  }
  if (errors.length) throw new EvalItemsError(file, errors.sort((a, b) => a.line - b.line));
  if (items.length === 0) throw new EvalItemsError(file, [{ line: 0, message: `no items: ${FORMATS}` }]);
  return { items, hash: await hashItems(contents) };
}

/** sha256 over the canonical items, one a line, in order. */
function hashItems(contents: readonly string[]): Promise<string> {
  return sha256Hex(contents.join('\n'));
}

/** The prompt an item asks (its last user turn and system turns), or null for a pre-tokenized record. */
export function itemPrompt(item: EvalItem): PromptText | null {
  switch (item.kind) {
    case 'prompt':
      return { text: item.prompt.text, ...(item.prompt.system ? { system: item.prompt.system } : {}) };
    case 'choice':
      return { text: item.prompt, ...(item.system ? { system: item.system } : {}) };
    case 'sft':
      return item.record.kind === 'sft-messages' ? promptOfTurns(item.record.messages.slice(0, lastIndex(item.record.messages, 'assistant'))) : null;
    case 'dpo':
      return recordPrompt(item.record);
  }
}

function lastIndex(messages: readonly ChatMessage[], role: ChatMessage['role']): number {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === role) return i;
  return messages.length;
}

function promptOfTurns(turns: readonly ChatMessage[]): PromptText | null {
  const user = turns[lastIndex(turns, 'user')];
  if (!user) return null;
  const system = turns.filter((m) => m.role === 'system').map((m) => m.content).join('\n\n');
  return { text: user.content, ...(system ? { system } : {}) };
}

function recordPrompt(r: DpoRecord): PromptText | null {
  if (r.kind === 'dpo-text') return { text: r.prompt };
  if (r.kind === 'dpo-messages') return promptOfTurns(r.prompt);
  return null;
}

/** The prompts training records asked (an SFT conversation's last user turn before its answer, a DPO prompt). */
export function trainingPrompts(records: readonly (SftRecord | DpoRecord)[]): PromptText[] {
  const out: PromptText[] = [];
  for (const r of records) {
    const p = r.kind === 'sft-messages' ? promptOfTurns(r.messages.slice(0, lastIndex(r.messages, 'assistant'))) : r.kind === 'sft-tokens' ? null : recordPrompt(r);
    if (p) out.push(p);
  }
  return out;
}

export interface FlaggedItem {
  id: string;
  line: number;
  /** The repeated prompt, as the eval set has it. */
  text: string;
}

/**
 * Eval items whose prompt repeats a training prompt (compared as build-data dedupes prompts:
 * normalised, case and whitespace runs ignored, with the system turn).
 */
export function flagTrainingDuplicates(items: readonly EvalItem[], training: readonly PromptText[]): FlaggedItem[] {
  const keys = new Set(training.map((p) => dedupeKey(p.text, p.system)));
  const out: FlaggedItem[] = [];
  for (const item of items) {
    const p = itemPrompt(item);
    if (p && keys.has(dedupeKey(p.text, p.system))) out.push({ id: item.id, line: item.line, text: p.text });
  }
  return out;
}
