// Prompt import: JSONL, JSON, CSV/TSV, Parquet, Hugging Face datasets-server rows, and the
// released FuseChat-3.0 SFT/DPO records. Every importer goes through the same row → prompt
// step: a column mapping (auto-detected when not given), a per-import or per-row domain,
// normalization (line endings, NFC, trim), dedupe on the normalized text, and bad rows reported
// with their 1-based row (and, for text formats, line) number and the reason.

import { parquetMetadataAsync, parquetReadObjects, parquetSchema, type AsyncBuffer, type Compressors } from 'hyparquet';
import { z } from 'zod';
import { formatZodError, parseDpoRecord, parseJsonl, parseSftRecord, RecordError, type ChatMessage, type RecordMeta } from './records';

// ---------------------------------------------------------------------------------------------
// Types

/** The recipe's prompt domains; "other" (e.g. Chinese) is SFT only. */
export type Domain = 'instruction' | 'math' | 'code' | 'other';
export const DOMAINS: readonly Domain[] = ['instruction', 'math', 'code', 'other'];

export interface PromptOrigin {
  /** File name, dataset id or other label given as `source`. */
  source?: string;
  /** 1-based data row (CSV: header excluded; HF: row_idx + 1). */
  row: number;
  /** 1-based line where the row starts (JSONL, CSV). */
  line?: number;
  /** FuseChat-3.0 `dataset` / `source_model` when imported from released records. */
  dataset?: string;
}

export interface Prompt {
  /** From the id column, else `p` + hash of the normalized system + text (stable across imports). */
  id: string;
  /** The user turn, normalized. */
  text: string;
  system?: string;
  domain: Domain;
  /** Gold final answer (math). */
  gold?: string;
  /** Test cases or a test program (code), one entry per test. */
  tests?: string[];
  origin?: PromptOrigin;
}

/**
 * Column names (dotted paths reach into nested JSON objects). A field left undefined is
 * auto-detected from DEFAULT_COLUMNS; `null` switches it off.
 */
export interface ColumnMapping {
  prompt?: string | null;
  system?: string | null;
  domain?: string | null;
  gold?: string | null;
  tests?: string | null;
  id?: string | null;
}

export const DEFAULT_COLUMNS: Readonly<Record<keyof ColumnMapping, readonly string[]>> = {
  prompt: ['prompt', 'instruction', 'question', 'problem', 'query', 'input', 'text', 'messages', 'conversations'],
  system: ['system', 'system_prompt'],
  domain: ['domain'],
  gold: ['gold', 'gold_answer', 'expected_answer', 'answer'],
  tests: ['tests', 'test_cases', 'test_list', 'test'],
  id: ['id', 'prompt_id', 'uid'],
};

export interface PromptImportOptions {
  mapping?: ColumnMapping;
  /** Domain of rows without a domain column or value (default "instruction"). */
  domain?: Domain;
  /** Provenance label stored in each prompt's origin (file name, dataset id). */
  source?: string;
  /** Math rows need a gold answer and code rows tests, as the recipe verifies them (default true). */
  requireVerifier?: boolean;
  /** Drop rows whose normalized system + text was already seen (default true). */
  dedupe?: boolean;
}

export interface RowError {
  /** 1-based data row; 0 for a problem with the whole input. */
  row: number;
  line?: number;
  message: string;
}

export interface DuplicateRow {
  row: number;
  line?: number;
  /** Id of the prompt kept in its place. */
  duplicateOf: string;
}

export interface PromptImportResult {
  prompts: Prompt[];
  errors: RowError[];
  duplicates: DuplicateRow[];
  /** Data rows seen (good, bad and duplicate). */
  rows: number;
}

/** A mapped column the input does not have, or no column for the prompt (PromptImportError.column). */
export interface ColumnProblem {
  field: keyof ColumnMapping;
  /** The column name asked for and not found; undefined when none was given or detected. */
  given?: string;
  /** The input's columns. */
  columns: string[];
  /** The column that most looks like the field's (for the prompt: the longest texts), if one does. */
  suggestion?: string;
}

/** A problem with a whole input (unreadable file, missing column): nothing could be imported. */
export class PromptImportError extends Error {
  override name = 'PromptImportError';
  constructor(
    message: string,
    /** Set when the problem is a column: which field, and the columns there are. */
    readonly column?: ColumnProblem,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Hashing, normalization, seeded order

/** cyrb53: a fast 53-bit string hash (same result in every JS engine). */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** 14 hex digits of hash53. */
export function hashHex(text: string, seed = 0): string {
  return hash53(text, seed).toString(16).padStart(14, '0');
}

/** A seed given as a number or a string, as a 32-bit integer. */
export function seedToInt(seed: number | string): number {
  return typeof seed === 'number' && Number.isInteger(seed) ? seed | 0 : hash53(String(seed)) | 0;
}

/** Stored form of a text: LF line endings, NFC, trimmed. */
export function normalizeText(text: string): string {
  return text.replace(/\r\n?/g, '\n').normalize('NFC').trim();
}

/** Dedupe key: normalized, lower-cased, whitespace runs collapsed; system and user turn. */
export function dedupeKey(text: string, system?: string): string {
  const squash = (s: string) => normalizeText(s).toLowerCase().replace(/\s+/g, ' ');
  return `${squash(system ?? '')}\u0001${squash(text)}`;
}

/** The turns a prompt is asked as: its system turn (when it has one) and the user turn. */
export function promptMessages(p: Pick<Prompt, 'text' | 'system'>): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (p.system !== undefined && p.system !== '') messages.push({ role: 'system', content: p.system });
  messages.push({ role: 'user', content: p.text });
  return messages;
}

/** The default prompt id: stable for the same normalized system + text. */
export function promptIdFor(text: string, system?: string): string {
  return `p${hashHex(dedupeKey(text, system))}`;
}

// ---------------------------------------------------------------------------------------------
// Cells

function getPath(row: Record<string, unknown>, path: string): unknown {
  if (path in row) return row[path];
  let cur: unknown = row;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function hasPath(row: Record<string, unknown>, path: string): boolean {
  return getPath(row, path) !== undefined;
}

/** Scalar cell as text; undefined for null/empty; throws RecordError for non-text values. */
function cellText(value: unknown, what: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  let s: string;
  if (typeof value === 'string') s = value;
  else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') s = String(value);
  else if (value instanceof Uint8Array) s = new TextDecoder().decode(value);
  else throw new RecordError(`${what} is not text (${Array.isArray(value) ? 'a list' : typeof value})`);
  const n = normalizeText(s);
  return n === '' ? undefined : n;
}

const DOMAIN_ALIASES: Readonly<Record<string, Domain>> = {
  instruction: 'instruction',
  'instruction-following': 'instruction',
  instruction_following: 'instruction',
  if: 'instruction',
  chat: 'instruction',
  general: 'instruction',
  math: 'math',
  mathematics: 'math',
  code: 'code',
  coding: 'code',
  programming: 'code',
  other: 'other',
  chinese: 'other',
  zh: 'other',
};

/** A domain cell: the four names (any case) and a few aliases (coding, chinese…). */
export function parseDomain(value: string): Domain | undefined {
  return DOMAIN_ALIASES[value.trim().toLowerCase()];
}

function cellTests(value: unknown): string[] | undefined {
  if (value === null || value === undefined) return undefined;
  let list: unknown[];
  if (Array.isArray(value)) list = value;
  else {
    const text = cellText(value, 'tests');
    if (text === undefined) return undefined;
    list = [text];
    if (text.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed)) list = parsed;
      } catch {
        // not a JSON list: one test program
      }
    }
  }
  const tests = list
    .map((t) => (typeof t === 'string' ? normalizeText(t) : JSON.stringify(t)))
    .filter((t) => t !== '' && t !== 'null');
  return tests.length > 0 ? tests : undefined;
}

const looseTurn = z.union([
  z.object({ role: z.string(), content: z.string() }),
  z.object({ from: z.string(), value: z.string() }),
]);

/** A prompt given as a message list: system turns + exactly one user turn (+ an ignored reply). */
function promptFromMessages(value: unknown[]): { text: string; system?: string } {
  const parsed = z.array(looseTurn).safeParse(value);
  if (!parsed.success) throw new RecordError(`prompt: ${formatZodError(parsed.error)}`);
  const turns = parsed.data.map((t) => ('role' in t ? { role: t.role, content: t.content } : { role: t.from, content: t.value }));
  const role = (r: string) => (r === 'human' ? 'user' : r === 'gpt' ? 'assistant' : r);
  const systems = turns.filter((t) => role(t.role) === 'system').map((t) => t.content);
  const users = turns.filter((t) => role(t.role) === 'user');
  if (users.length === 0) throw new RecordError('prompt has no user turn');
  if (users.length > 1) throw new RecordError(`multi-turn conversation (${users.length} user turns): only single-turn prompts are supported`);
  const firstUser = turns.findIndex((t) => role(t.role) === 'user');
  if (turns.slice(0, firstUser).some((t) => role(t.role) !== 'system')) throw new RecordError('prompt has a reply before the user turn');
  const system = systems.length > 0 ? normalizeText(systems.join('\n\n')) : '';
  return { text: users[0].content, ...(system !== '' ? { system } : {}) };
}

// ---------------------------------------------------------------------------------------------
// Rows → prompts

export interface RawRow {
  row: number;
  line?: number;
  value: unknown;
  /** Mapped columns the row holds only truncated (HF datasets-server). */
  truncated?: readonly string[];
  dataset?: string;
}

type ResolvedColumns = Record<keyof ColumnMapping, string | undefined>;

function resolveColumns(mapping: ColumnMapping | undefined, columns: ReadonlySet<string>): ResolvedColumns {
  const out = {} as ResolvedColumns;
  for (const key of Object.keys(DEFAULT_COLUMNS) as (keyof ColumnMapping)[]) {
    const given = mapping?.[key];
    if (given === null) out[key] = undefined;
    else if (given !== undefined) out[key] = given;
    else out[key] = DEFAULT_COLUMNS[key].find((c) => columns.has(c));
  }
  return out;
}

function describeColumns(columns: ReadonlySet<string>): string {
  const list = [...columns];
  return list.length > 0 ? list.slice(0, 20).join(', ') : '(none)';
}

/** The column whose cells are the longest texts on average (a prompt's), over the first rows. */
function likelyPromptColumn(rows: readonly RawRow[], columns: ReadonlySet<string>): string | undefined {
  const sums = new Map<string, { chars: number; n: number }>();
  for (const r of rows.slice(0, 50)) {
    if (!isRecord(r.value)) continue;
    for (const [k, v] of Object.entries(r.value)) {
      if (!columns.has(k) || typeof v !== 'string') continue;
      const t = sums.get(k) ?? { chars: 0, n: 0 };
      t.chars += v.length;
      t.n++;
      sums.set(k, t);
    }
  }
  let best: string | undefined;
  let bestMean = 8; // shorter texts are labels or ids, not prompts
  for (const [k, t] of sums) if (t.chars / t.n > bestMean) [best, bestMean] = [k, t.chars / t.n];
  return best;
}

function noPromptColumn(columns: ReadonlySet<string>, rows: readonly RawRow[] = []): PromptImportError {
  const suggestion = likelyPromptColumn(rows, columns);
  return new PromptImportError(
    `no prompt column: none of the columns (${describeColumns(columns)}) has a name the importer knows (${DEFAULT_COLUMNS.prompt.join(', ')})` +
      `${suggestion ? `; "${suggestion}" holds the longest texts` : ''}. Rename the prompt's column to "prompt", or choose it as the prompt column`,
    { field: 'prompt', columns: [...columns], ...(suggestion ? { suggestion } : {}) },
  );
}

function missingColumn(field: keyof ColumnMapping, name: string, columns: ReadonlySet<string>): PromptImportError {
  return new PromptImportError(`column "${name}" (${field}) not found: the columns are ${describeColumns(columns)}`, { field, given: name, columns: [...columns] });
}

/**
 * The shared row → prompt step. `columns` is the known column set (CSV header, Parquet schema);
 * for JSON rows it is the union of the rows' keys. A mapped column that no row has is a
 * PromptImportError; a row that lacks a value is a RowError.
 */
export function rowsToPrompts(rows: readonly RawRow[], opts: PromptImportOptions = {}, columns?: ReadonlySet<string>): PromptImportResult {
  const known = columns ?? new Set(rows.flatMap((r) => (isRecord(r.value) ? Object.keys(r.value) : [])));
  const cols = resolveColumns(opts.mapping, known);
  for (const key of Object.keys(cols) as (keyof ColumnMapping)[]) {
    const name = cols[key];
    const given = opts.mapping?.[key];
    if (name !== undefined && given !== undefined && given !== null && known.size > 0 && !known.has(name) && !known.has(name.split('.')[0])) {
      throw missingColumn(key, name, known);
    }
  }
  if (cols.prompt === undefined) {
    // Nothing at all (an empty file): no rows, for the caller to say so, rather than a column problem.
    if (rows.length === 0 && known.size === 0) return { prompts: [], errors: [], duplicates: [], rows: 0 };
    throw noPromptColumn(known, rows);
  }
  const defaultDomain = opts.domain ?? 'instruction';
  const requireVerifier = opts.requireVerifier ?? true;
  const dedupe = opts.dedupe ?? true;

  const result: PromptImportResult = { prompts: [], errors: [], duplicates: [], rows: rows.length };
  const seen = new Map<string, string>(); // dedupe key → kept id
  const ids = new Map<string, number>(); // id → row that claimed it

  for (const raw of rows) {
    const at = raw.line !== undefined ? { row: raw.row, line: raw.line } : { row: raw.row };
    try {
      if (!isRecord(raw.value)) throw new RecordError('row is not an object');
      const value = raw.value;
      for (const key of Object.keys(cols) as (keyof ColumnMapping)[]) {
        const name = cols[key];
        if (name !== undefined && raw.truncated?.includes(name)) throw new RecordError(`cell "${name}" was truncated by the server`);
      }
      const cell = getPath(value, cols.prompt);
      let text: string | undefined;
      let system: string | undefined;
      if (Array.isArray(cell)) ({ text, system } = promptFromMessages(cell));
      else text = cellText(cell, 'prompt');
      if (text !== undefined) text = normalizeText(text);
      if (text === undefined || text === '') {
        throw new RecordError(hasPath(value, cols.prompt) ? `empty prompt ("${cols.prompt}")` : `missing prompt column "${cols.prompt}"`);
      }
      if (cols.system !== undefined) system = cellText(getPath(value, cols.system), 'system') ?? system;

      let domain = defaultDomain;
      if (cols.domain !== undefined) {
        const d = cellText(getPath(value, cols.domain), 'domain');
        if (d !== undefined) {
          const parsed = parseDomain(d);
          if (parsed === undefined) throw new RecordError(`unknown domain "${d}" (expected ${DOMAINS.join(', ')})`);
          domain = parsed;
        }
      }
      const gold = cols.gold !== undefined ? cellText(getPath(value, cols.gold), 'gold answer') : undefined;
      const tests = cols.tests !== undefined ? cellTests(getPath(value, cols.tests)) : undefined;
      if (requireVerifier && domain === 'math' && gold === undefined) {
        throw new RecordError(`math prompt without a gold answer${cols.gold ? ` ("${cols.gold}")` : ' (map a gold column)'}`);
      }
      if (requireVerifier && domain === 'code' && tests === undefined) {
        throw new RecordError(`code prompt without tests${cols.tests ? ` ("${cols.tests}")` : ' (map a tests column)'}`);
      }

      const key = dedupeKey(text, system);
      const kept = seen.get(key);
      if (dedupe && kept !== undefined) {
        result.duplicates.push({ ...at, duplicateOf: kept });
        continue;
      }
      const explicitId = cols.id !== undefined ? cellText(getPath(value, cols.id), 'id') : undefined;
      const id = explicitId ?? promptIdFor(text, system);
      const claimed = ids.get(id);
      if (claimed !== undefined) throw new RecordError(`duplicate id "${id}" (row ${claimed}) for a different prompt`);
      ids.set(id, raw.row);
      seen.set(key, id);

      const origin: PromptOrigin = { ...at };
      if (opts.source !== undefined) origin.source = opts.source;
      if (raw.dataset !== undefined) origin.dataset = raw.dataset;
      const prompt: Prompt = { id, text, domain, origin };
      if (system !== undefined) prompt.system = system;
      if (gold !== undefined) prompt.gold = gold;
      if (tests !== undefined) prompt.tests = tests;
      result.prompts.push(prompt);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      result.errors.push({ ...at, message: err.message });
    }
  }
  return result;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Plain objects (already parsed) as prompts; rows are numbered from 1. */
export function importPromptRows(rows: readonly unknown[], opts: PromptImportOptions = {}): PromptImportResult {
  return rowsToPrompts(rows.map((value, i) => ({ row: i + 1, value })), opts);
}

/** Drop prompts whose normalized system + text repeats an earlier one (e.g. across imports). */
export function dedupePrompts(prompts: readonly Prompt[]): { prompts: Prompt[]; duplicates: { id: string; duplicateOf: string }[] } {
  const seen = new Map<string, string>();
  const out: Prompt[] = [];
  const duplicates: { id: string; duplicateOf: string }[] = [];
  for (const p of prompts) {
    const key = dedupeKey(p.text, p.system);
    const kept = seen.get(key);
    if (kept !== undefined) duplicates.push({ id: p.id, duplicateOf: kept });
    else {
      seen.set(key, p.id);
      out.push(p);
    }
  }
  return { prompts: out, duplicates };
}

// ---------------------------------------------------------------------------------------------
// JSONL / JSON

/** JSON Lines: one object per line; errors carry the line (row = line). */
export function importPromptsJsonl(text: string, opts: PromptImportOptions = {}): PromptImportResult {
  const parsed = parseJsonl(text, (value) => value);
  const rows: RawRow[] = parsed.records.map((value, i) => ({ row: parsed.lines[i], line: parsed.lines[i], value }));
  const result = rowsToPrompts(rows, opts);
  result.errors.push(...parsed.errors.map((e) => ({ row: e.line, line: e.line, message: e.message })));
  result.errors.sort((a, b) => a.row - b.row);
  result.rows += parsed.errors.length;
  return result;
}

/** JSON: an array of rows or `{"data":[…]}`; a file that is really JSON Lines is read as such. */
export function importPromptsJson(text: string, opts: PromptImportOptions = {}): PromptImportResult {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    if (lines.length > 1 && lines[0].trim().startsWith('{')) return importPromptsJsonl(text, opts);
    throw new PromptImportError(`invalid JSON: ${(err as Error).message}`);
  }
  const rows = Array.isArray(value) ? value : isRecord(value) && Array.isArray(value.data) ? value.data : undefined;
  if (rows === undefined) throw new PromptImportError('expected a JSON array of rows or an object with a "data" array');
  return importPromptRows(rows, opts);
}

// ---------------------------------------------------------------------------------------------
// CSV

export interface CsvRecord {
  /** 1-based line where the record starts. */
  line: number;
  fields: string[];
}

export interface CsvParseResult {
  records: CsvRecord[];
  errors: { line: number; message: string }[];
}

/**
 * RFC 4180 CSV: fields split on `delimiter`, double-quoted fields may hold delimiters, quotes
 * ("") and line breaks; CRLF, LF or CR end a record; blank lines are skipped. A malformed record
 * (text after a closing quote, an unterminated quote) is reported with its starting line.
 */
export function parseCsv(text: string, delimiter = ','): CsvParseResult {
  const out: CsvParseResult = { records: [], errors: [] };
  const s = text.replace(/^\uFEFF/, '');
  const n = s.length;
  let i = 0;
  let line = 1;
  const isEol = (c: string) => c === '\n' || c === '\r';
  const eatEol = () => {
    if (s[i] === '\r' && s[i + 1] === '\n') i += 2;
    else i += 1;
    line++;
  };
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let error: string | undefined;
    for (;;) {
      let field = '';
      if (s[i] === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const c = s[i];
          if (c === '"') {
            if (s[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (c === '\r' && s[i + 1] === '\n') {
            field += '\r\n';
            i += 2;
            line++;
            continue;
          }
          if (isEol(c)) line++;
          field += c;
          i++;
        }
        if (!closed) {
          out.errors.push({ line: start, message: 'unterminated quoted field' });
          return out;
        }
        if (i < n && s[i] !== delimiter && !isEol(s[i])) {
          error = `unexpected text after a closing quote in field ${fields.length + 1}`;
          while (i < n && !isEol(s[i])) i++;
        }
      } else {
        while (i < n && s[i] !== delimiter && !isEol(s[i])) field += s[i++];
      }
      fields.push(field);
      if (error !== undefined) break;
      if (i < n && s[i] === delimiter) {
        i++;
        continue;
      }
      break;
    }
    if (i < n) eatEol();
    if (error !== undefined) out.errors.push({ line: start, message: error });
    else if (!(fields.length === 1 && fields[0] === '')) out.records.push({ line: start, fields });
  }
  return out;
}

export interface CsvImportOptions extends PromptImportOptions {
  /** Field delimiter; default: tab when the header has tabs and no commas, else comma. */
  delimiter?: string;
}

/** CSV/TSV with a header row; row = data record (header excluded), line = where it starts. */
export function importPromptsCsv(text: string, opts: CsvImportOptions = {}): PromptImportResult {
  const firstLine = text.replace(/^\uFEFF/, '').split(/\r?\n|\r/, 1)[0] ?? '';
  const delimiter = opts.delimiter ?? (firstLine.includes('\t') && !firstLine.includes(',') ? '\t' : ',');
  const parsed = parseCsv(text, delimiter);
  const [header, ...records] = parsed.records;
  if (header === undefined) {
    if (parsed.errors.length > 0) throw new PromptImportError(`line ${parsed.errors[0].line}: ${parsed.errors[0].message}`);
    throw new PromptImportError('empty CSV: no header row');
  }
  const early = parsed.errors.find((e) => e.line < header.line);
  if (early !== undefined) throw new PromptImportError(`line ${early.line}: ${early.message} (in the header)`);
  const names = header.fields.map((f) => f.trim());
  const dup = names.find((name, k) => names.indexOf(name) !== k);
  if (dup !== undefined) throw new PromptImportError(`duplicate column "${dup}" in the header`);
  const lineToRow = new Map<number, number>();
  const rows: RawRow[] = [];
  const errors: RowError[] = [];
  // Number data rows over the good and the malformed records alike, in file order.
  const all = [
    ...records.map((r) => ({ line: r.line, rec: r as CsvRecord | undefined, message: undefined as string | undefined })),
    ...parsed.errors.filter((e) => e.line > header.line).map((e) => ({ line: e.line, rec: undefined, message: e.message })),
  ].sort((a, b) => a.line - b.line);
  all.forEach((entry, k) => lineToRow.set(entry.line, k + 1));
  for (const entry of all) {
    const row = lineToRow.get(entry.line) ?? 0;
    if (entry.rec === undefined) {
      errors.push({ row, line: entry.line, message: entry.message ?? 'malformed record' });
      continue;
    }
    if (entry.rec.fields.length !== names.length) {
      errors.push({ row, line: entry.line, message: `expected ${names.length} fields, got ${entry.rec.fields.length}` });
      continue;
    }
    const value: Record<string, unknown> = {};
    names.forEach((name, k) => (value[name] = entry.rec!.fields[k]));
    rows.push({ row, line: entry.line, value });
  }
  const result = rowsToPrompts(rows, opts, new Set(names));
  result.errors.push(...errors);
  result.errors.sort((a, b) => a.row - b.row);
  result.rows = all.length;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Parquet

export interface ParquetImportOptions extends PromptImportOptions {
  /** Extra codecs for hyparquet (e.g. from hyparquet-compressors); snappy is built in. */
  compressors?: Compressors;
}

function toAsyncBuffer(data: ArrayBuffer | Uint8Array | AsyncBuffer): AsyncBuffer {
  if (data instanceof ArrayBuffer) return data;
  if (data instanceof Uint8Array) return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
  return data;
}

/** Parquet rows (read with hyparquet, mapped columns only); rows are numbered from 1. */
export async function importPromptsParquet(data: ArrayBuffer | Uint8Array | AsyncBuffer, opts: ParquetImportOptions = {}): Promise<PromptImportResult> {
  const file = toAsyncBuffer(data);
  let names: string[];
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
    names = parquetSchema(metadata).children.map((c) => c.element.name);
  } catch (err) {
    throw new PromptImportError(`not a readable Parquet file: ${(err as Error).message}`);
  }
  const columnSet = new Set(names);
  const cols = resolveColumns(opts.mapping, columnSet);
  const wanted = [...new Set(Object.values(cols).filter((c): c is string => c !== undefined).map((c) => (columnSet.has(c) ? c : c.split('.')[0])))];
  const missing = wanted.filter((c) => !columnSet.has(c));
  if (missing.length > 0) {
    const field = (Object.keys(cols) as (keyof ColumnMapping)[]).find((k) => cols[k] !== undefined && (cols[k] === missing[0] || cols[k]!.split('.')[0] === missing[0])) ?? 'prompt';
    throw missingColumn(field, missing[0]!, columnSet);
  }
  if (cols.prompt === undefined) throw noPromptColumn(columnSet);
  const objects = await parquetReadObjects({ file, metadata, columns: wanted, ...(opts.compressors ? { compressors: opts.compressors } : {}) });
  return rowsToPrompts(
    objects.map((value, k) => ({ row: k + 1, value })),
    opts,
    columnSet,
  );
}

// ---------------------------------------------------------------------------------------------
// Any file

export type PromptFileFormat = 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet';

export function detectPromptFormat(name: string): PromptFileFormat | undefined {
  const m = /\.(jsonl|ndjson|json|csv|tsv|parquet)$/i.exec(name);
  if (!m) return undefined;
  const ext = m[1].toLowerCase();
  return ext === 'ndjson' ? 'jsonl' : (ext as PromptFileFormat);
}

/** Import a file by its name's extension (or `format`); `source` defaults to the name. */
export async function importPromptsFile(
  name: string,
  data: string | ArrayBuffer | Uint8Array,
  opts: ParquetImportOptions & CsvImportOptions & { format?: PromptFileFormat } = {},
): Promise<PromptImportResult> {
  const format = opts.format ?? detectPromptFormat(name);
  const o = { source: name, ...opts };
  const asText = () => (typeof data === 'string' ? data : new TextDecoder().decode(data));
  switch (format) {
    case 'jsonl':
      return importPromptsJsonl(asText(), o);
    case 'json':
      return importPromptsJson(asText(), o);
    case 'csv':
      return importPromptsCsv(asText(), o);
    case 'tsv':
      return importPromptsCsv(asText(), { delimiter: '\t', ...o });
    case 'parquet':
      if (typeof data === 'string') throw new PromptImportError('Parquet needs binary data');
      return importPromptsParquet(data, o);
    default:
      throw new PromptImportError(`unknown file type "${name}": expected .jsonl, .json, .csv, .tsv or .parquet`);
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face datasets-server

export const HF_DATASETS_SERVER = 'https://datasets-server.huggingface.co';
/** The /rows endpoint returns at most 100 rows per request. */
export const HF_ROWS_PAGE_MAX = 100;

export interface HfRowsOptions {
  dataset: string;
  config?: string;
  split?: string;
  /** First row (0-based). */
  offset?: number;
  /** Rows to fetch in all (default: to the end of the split). */
  length?: number;
  /** Rows per request, ≤ 100. */
  pageSize?: number;
  /** HF access token for gated/private datasets. */
  token?: string;
  /** Default https://datasets-server.huggingface.co (tests point it at a local server). */
  baseUrl?: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Retries of a 429/5xx/network failure, with exponential backoff (default 3, 1000 ms). */
  retries?: number;
  retryDelayMs?: number;
  onProgress?: (p: { fetched: number; total: number }) => void;
}

export interface HfRow {
  rowIdx: number;
  row: Record<string, unknown>;
  truncatedCells: string[];
}

export interface HfRowsResult {
  rows: HfRow[];
  numRowsTotal: number;
  features: { name: string; type: unknown }[];
}

export class HfRowsError extends Error {
  override name = 'HfRowsError';
  constructor(
    message: string,
    readonly status?: number,
    /** The dataset's real configs and splits, when the one asked for is not among them. */
    readonly splits?: readonly HfSplit[],
  ) {
    super(message);
  }
}

/** One config/split of a Hub dataset, as datasets-server lists them. */
export interface HfSplit {
  config: string;
  split: string;
}

const hfSplitsSchema = z.object({ splits: z.array(z.object({ config: z.string(), split: z.string() })) });

/** The configs and splits of a Hub dataset (datasets-server `/splits`). */
export async function fetchHfSplits(opts: Pick<HfRowsOptions, 'dataset' | 'token' | 'baseUrl' | 'fetch' | 'signal'>): Promise<HfSplit[]> {
  const base = (opts.baseUrl ?? HF_DATASETS_SERVER).replace(/\/+$/, '');
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const url = `${base}/splits?${new URLSearchParams({ dataset: opts.dataset })}`;
  const res = await doFetch(url, { headers: { accept: 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) }, signal: opts.signal });
  if (!res.ok) throw new HfRowsError(`datasets-server ${res.status} for the splits of ${opts.dataset}`, res.status);
  const parsed = hfSplitsSchema.safeParse(await res.json());
  if (!parsed.success) throw new HfRowsError(`unexpected /splits response: ${formatZodError(parsed.error)}`);
  return parsed.data.splits.map(({ config, split }) => ({ config, split }));
}

/**
 * Why /rows found nothing for a config/split: the dataset's real splits (then the error names
 * them), or no dataset this request may see. Null when the split exists after all.
 */
async function explainMissingSplit(opts: HfRowsOptions, cause: HfRowsError): Promise<HfRowsError | null> {
  const config = opts.config ?? 'default';
  const split = opts.split ?? 'train';
  let splits: HfSplit[];
  try {
    splits = await fetchHfSplits(opts);
  } catch (e) {
    if (e instanceof HfRowsError && (e.status === 404 || e.status === 401 || e.status === 403))
      return new HfRowsError(
        `there is no dataset "${opts.dataset}" that this request may see: check the id (owner/name)${opts.token ? ', and that your token has access to it' : ', or paste an access token if it is gated or private'}`,
        e.status,
      );
    return null;
  }
  if (splits.some((x) => x.config === config && x.split === split)) return null;
  const list = (xs: readonly string[]) => [...new Set(xs)].join(', ');
  const configs = splits.map((x) => x.config);
  if (splits.length > 0 && !configs.includes(config))
    return new HfRowsError(`${opts.dataset} has no config "${config}": its configs are ${list(configs)}. Choose one of them`, cause.status, splits);
  const here = splits.filter((x) => x.config === config).map((x) => x.split);
  return new HfRowsError(`${opts.dataset} has no split "${split}"${config !== 'default' ? ` in config "${config}"` : ''}: its splits are ${list(here)}. Choose one of them`, cause.status, splits);
}

const hfRowsPageSchema = z.object({
  features: z.array(z.object({ name: z.string(), type: z.unknown() })).default([]),
  rows: z.array(
    z.object({
      row_idx: z.number().int(),
      row: z.record(z.string(), z.unknown()),
      truncated_cells: z.array(z.string()).default([]),
    }),
  ),
  num_rows_total: z.number().int().nonnegative(),
});

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (ms <= 0) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Rows of a Hub dataset through the datasets-server `/rows` API, page by page. */
export async function fetchHfRows(opts: HfRowsOptions): Promise<HfRowsResult> {
  const base = (opts.baseUrl ?? HF_DATASETS_SERVER).replace(/\/+$/, '');
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const pageSize = Math.max(1, Math.min(HF_ROWS_PAGE_MAX, opts.pageSize ?? HF_ROWS_PAGE_MAX));
  const retries = opts.retries ?? 3;
  const retryDelay = opts.retryDelayMs ?? 1000;
  const start = Math.max(0, opts.offset ?? 0);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;

  const getPage = async (offset: number, length: number) => {
    const params = new URLSearchParams({
      dataset: opts.dataset,
      config: opts.config ?? 'default',
      split: opts.split ?? 'train',
      offset: String(offset),
      length: String(length),
    });
    const url = `${base}/rows?${params}`;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await doFetch(url, { headers, signal: opts.signal });
      } catch (err) {
        if (opts.signal?.aborted || attempt >= retries) throw new HfRowsError(`fetch ${url} failed: ${(err as Error).message}`);
        await sleep(retryDelay * 2 ** attempt, opts.signal);
        continue;
      }
      if (res.ok) {
        const parsed = hfRowsPageSchema.safeParse(await res.json());
        if (!parsed.success) throw new HfRowsError(`unexpected /rows response: ${formatZodError(parsed.error)}`);
        return parsed.data;
      }
      const body = await res.text();
      if ((res.status === 429 || res.status >= 500) && attempt < retries) {
        const after = Number(res.headers.get('retry-after'));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 60_000) : retryDelay * 2 ** attempt, opts.signal);
        continue;
      }
      let detail = body.slice(0, 300);
      try {
        const j: unknown = JSON.parse(body);
        if (isRecord(j) && typeof j.error === 'string') detail = j.error;
      } catch {
        // not JSON
      }
      throw new HfRowsError(`datasets-server ${res.status} for ${opts.dataset}: ${detail}`, res.status);
    }
  };

  const rows: HfRow[] = [];
  let features: HfRowsResult['features'] = [];
  let total = Infinity;
  let end = opts.length !== undefined ? start + Math.max(0, opts.length) : Infinity;
  let offset = start;
  while (offset < end) {
    const page = await getPage(offset, Math.min(pageSize, end - offset));
    if (total === Infinity) {
      total = page.num_rows_total;
      features = page.features;
      end = Math.min(end, total);
    }
    for (const r of page.rows) rows.push({ rowIdx: r.row_idx, row: r.row, truncatedCells: r.truncated_cells });
    opts.onProgress?.({ fetched: rows.length, total: Math.max(0, end - start) });
    if (page.rows.length === 0) break;
    offset += page.rows.length;
  }
  return { rows, numRowsTotal: total === Infinity ? 0 : total, features };
}

/** Prompts from a Hub dataset; row = row_idx + 1; `source` defaults to "hf:<dataset>/<config>/<split>". */
export async function importPromptsFromHf(opts: HfRowsOptions & PromptImportOptions): Promise<PromptImportResult> {
  let fetched: HfRowsResult;
  try {
    fetched = await fetchHfRows(opts);
  } catch (e) {
    // A wrong split or config is a 404 (or 422) from /rows: say which ones the dataset has.
    if (e instanceof HfRowsError && (e.status === 404 || e.status === 422 || e.status === 400)) throw (await explainMissingSplit(opts, e)) ?? e;
    throw e;
  }
  const source = opts.source ?? `hf:${opts.dataset}/${opts.config ?? 'default'}/${opts.split ?? 'train'}`;
  const columns = new Set(fetched.features.map((f) => f.name));
  return rowsToPrompts(
    fetched.rows.map((r) => ({ row: r.rowIdx + 1, value: r.row, truncated: r.truncatedCells })),
    { ...opts, source },
    columns.size > 0 ? columns : undefined,
  );
}

// ---------------------------------------------------------------------------------------------
// Released FuseChat-3.0 records as prompts

/**
 * Domain of a FuseChat-3.0 `dataset` name (ultrafeedback, magpie_pro_dpo, helpsteer2 →
 * instruction; openmathinstruct2 → math; leetcode, self-oss-instruct-sc2 → code;
 * alpaca_gpt4_zh, magpie_qwen2_pro_zh → other). Unknown names → undefined.
 */
export function fuseChatDomain(dataset: string | undefined): Domain | undefined {
  if (!dataset) return undefined;
  const d = dataset.toLowerCase();
  if (/(^|[^a-z])zh([^a-z]|$)|chinese/.test(d)) return 'other';
  if (d.includes('math')) return 'math';
  if (/leetcode|oss|code/.test(d)) return 'code';
  if (/ultrafeedback|magpie|helpsteer|alpaca|instruct/.test(d)) return 'instruction';
  return undefined;
}

export interface FuseChatPromptOptions {
  source?: string;
  /** Domain of a record from its `dataset` field (default fuseChatDomain, then `domain`). */
  domainOf?: (dataset: string | undefined) => Domain | undefined;
  /** Fallback domain (default "instruction"). */
  domain?: Domain;
  dedupe?: boolean;
}

/**
 * The prompts of released FuseChat-3.0 SFT (`conversations`) or DPO (`prompt`/`chosen`/`rejected`)
 * records, JSON Lines or a JSON array. The released data carries no gold answers or tests, so
 * math/code prompts come without verifiers (their pairs will be dropped as unjudged until added).
 */
export function promptsFromFuseChat(text: string, opts: FuseChatPromptOptions = {}): PromptImportResult {
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  let entries: { line?: number; row: number; value: unknown }[];
  const lineErrors: RowError[] = [];
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(trimmed);
    } catch (err) {
      throw new PromptImportError(`invalid JSON: ${(err as Error).message}`);
    }
    entries = (arr as unknown[]).map((value, k) => ({ row: k + 1, value }));
  } else {
    const parsed = parseJsonl(text, (v) => v);
    entries = parsed.records.map((value, k) => ({ row: parsed.lines[k], line: parsed.lines[k], value }));
    lineErrors.push(...parsed.errors.map((e) => ({ row: e.line, line: e.line, message: e.message })));
  }
  const domainOf = opts.domainOf ?? fuseChatDomain;
  const rows: RawRow[] = [];
  const errors: RowError[] = [...lineErrors];
  for (const e of entries) {
    const at = e.line !== undefined ? { row: e.row, line: e.line } : { row: e.row };
    try {
      let prompt: ChatMessage[];
      let meta: RecordMeta | undefined;
      if (isRecord(e.value) && ('conversations' in e.value || 'messages' in e.value)) {
        const rec = parseSftRecord(e.value);
        if (rec.kind !== 'sft-messages') throw new RecordError('pre-tokenized record has no prompt text');
        const firstAssistant = rec.messages.findIndex((m) => m.role === 'assistant');
        prompt = rec.messages.slice(0, firstAssistant);
        meta = rec.meta;
      } else {
        const rec = parseDpoRecord(e.value);
        if (rec.kind === 'dpo-tokens') throw new RecordError('pre-tokenized record has no prompt text');
        prompt = rec.kind === 'dpo-text' ? [{ role: 'user', content: rec.prompt }] : rec.prompt;
        meta = rec.meta;
      }
      const dataset = typeof meta?.dataset === 'string' ? meta.dataset : undefined;
      const domain = domainOf(dataset) ?? opts.domain ?? 'instruction';
      rows.push({ ...at, value: { prompt, domain }, ...(dataset !== undefined ? { dataset } : {}) });
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      errors.push({ ...at, message: err.message });
    }
  }
  const result = rowsToPrompts(rows, {
    mapping: { prompt: 'prompt', domain: 'domain', system: null, gold: null, tests: null, id: null },
    requireVerifier: false,
    ...(opts.source !== undefined ? { source: opts.source } : {}),
    ...(opts.dedupe !== undefined ? { dedupe: opts.dedupe } : {}),
  });
  result.errors.push(...errors);
  result.errors.sort((a, b) => a.row - b.row);
  result.rows = entries.length + lineErrors.length;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Held-out eval split

export interface EvalSplitOptions {
  /** Fraction of prompts held out (default 0.05), or an exact `count`. */
  fraction?: number;
  count?: number;
  seed?: number | string;
  /** Hold out the same fraction of each domain (default true). */
  stratify?: boolean;
  /**
   * Decide each prompt alone: held out iff hash(seed, id) / 2^53 < fraction (`count` and
   * `stratify` are ignored). The eval size is then only about fraction × n, but a prompt never
   * moves between train and eval when other prompts are added, removed or left out, and raising
   * the fraction only moves train prompts into eval.
   */
  stable?: boolean;
}

/**
 * Seeded held-out split. Each prompt gets a key hash(seed, id); the lowest keys go to eval, so the
 * split depends only on the seed and the ids (not on input order), and adding prompts leaves the
 * others where they were as far as the counts allow. With `stratify`, the eval count is shared
 * among domains by largest remainder. Both lists keep the input order.
 */
export function splitEval(prompts: readonly Prompt[], opts: EvalSplitOptions = {}): { train: Prompt[]; eval: Prompt[] } {
  const n = prompts.length;
  const seed = seedToInt(opts.seed ?? 0);
  const fraction = opts.fraction ?? 0.05;
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction must be in [0, 1], got ${fraction}`);
  if (opts.stable) {
    const heldOut = (p: Prompt) => hash53(p.id, seed) / 2 ** 53 < fraction;
    return { train: prompts.filter((p) => !heldOut(p)), eval: prompts.filter(heldOut) };
  }
  const total = Math.min(n, Math.max(0, Math.round(opts.count ?? fraction * n)));
  const groups = new Map<string, Prompt[]>();
  for (const p of prompts) {
    const g = opts.stratify === false ? '' : p.domain;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(p);
  }
  // Largest-remainder apportionment of `total` among the groups.
  const quotas = [...groups.entries()].map(([g, list]) => {
    const exact = n > 0 ? (total * list.length) / n : 0;
    return { g, list, take: Math.floor(exact), rem: exact - Math.floor(exact) };
  });
  let left = total - quotas.reduce((s, q) => s + q.take, 0);
  for (const q of [...quotas].sort((a, b) => b.rem - a.rem || (a.g < b.g ? -1 : 1))) {
    if (left <= 0) break;
    q.take++;
    left--;
  }
  const held = new Set<Prompt>();
  for (const q of quotas) {
    const keyed = q.list.map((p) => ({ p, k: hash53(p.id, seed) })).sort((a, b) => a.k - b.k || (a.p.id < b.p.id ? -1 : 1));
    for (const { p } of keyed.slice(0, q.take)) held.add(p);
  }
  return { train: prompts.filter((p) => !held.has(p)), eval: prompts.filter((p) => held.has(p)) };
}
