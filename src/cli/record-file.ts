// What the per-record commands (logprobs, reward) share: read a JSONL file of SFT/DPO records,
// every line parsed and checked before any weight is loaded (a malformed line stops the command,
// naming it); refuse text records when the model has no tokenizer; name the line of a record that
// fails later (tokenizing, a token id outside the vocabulary).
import { readFile } from 'node:fs/promises';
import { parseJsonl, type DpoRecord, type SftRecord } from '../data/records';
import type { ModelSource } from '../model/source';
import { hasTokenizer } from './model';
import { parseScoringRecord } from './records-tokens';

export interface RecordFile {
  path: string;
  records: (SftRecord | DpoRecord)[];
  /** 1-based line of each record. */
  lines: number[];
}

/** Reads and checks every record; throws naming the first bad line (and how many more). */
export async function readRecordFile(path: string): Promise<RecordFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  const parsed = parseJsonl(text, parseScoringRecord);
  if (parsed.errors.length) {
    const e = parsed.errors[0]!;
    const more = parsed.errors.length > 1 ? ` (and ${parsed.errors.length - 1} more bad lines)` : '';
    throw new Error(`${path} line ${e.line}: ${e.message}${more}`);
  }
  if (parsed.records.length === 0) throw new Error(`${path}: no records`);
  return { path, records: parsed.records, lines: parsed.lines };
}

/** Text records need tokenizer.json: refused (naming the first such line) before any weight is read. */
export async function checkTokenizerFor(file: RecordFile, source: ModelSource): Promise<void> {
  const needsText = file.records.findIndex((r) => r.kind !== 'sft-tokens' && r.kind !== 'dpo-tokens');
  if (needsText >= 0 && !(await hasTokenizer(source)))
    throw new Error(
      `${file.path} line ${file.lines[needsText]}: text records need a tokenizer, and ${source.description} has no tokenizer.json; ` +
        'use pre-tokenized records ({"input_ids","labels"} or {"prompt_input_ids","chosen_input_ids","rejected_input_ids"})',
    );
}

/** `fn` over every record; an error names the record's line. */
export function mapRecords<T>(file: RecordFile, fn: (record: SftRecord | DpoRecord) => T): T[] {
  return file.records.map((r, i) => {
    try {
      return fn(r);
    } catch (e) {
      throw new Error(`${file.path} line ${file.lines[i]}: ${(e as Error).message}`, { cause: e });
    }
  });
}

/** Names the line of the first token id outside the model's vocabulary (`seqsOf`: a record's sequences). */
export function checkVocabulary<T>(file: RecordFile, items: readonly T[], seqsOf: (item: T) => readonly ArrayLike<number>[], vocabSize: number): void {
  items.forEach((it, i) => {
    for (const s of seqsOf(it))
      for (let t = 0; t < s.length; t++)
        if (s[t]! >= vocabSize) throw new Error(`${file.path} line ${file.lines[i]}: token id ${s[t]} is outside the model's vocabulary (${vocabSize})`);
  });
}

/** "scored 3/10 sequences" on stderr while a terminal shows it; null otherwise. */
export function progressOnTerminal(what: string): ((done: number, total: number) => void) | undefined {
  return process.stderr.isTTY ? (done, total) => process.stderr.write(`\r\x1b[K${what} ${done}/${total} sequences`) : undefined;
}
