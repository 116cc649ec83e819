// What the Data page says about prompt imports and the run's counts, in plain words: an import
// error names the column to choose (not `mapping.prompt`), a Hub failure says offline or token,
// an import that added nothing is an error, one that skipped rows says how many and why, and the
// run's request counts agree with each other. Pure (unit-tested).

import { planCollection, type CollectPrompt, type CollectSource } from '../data/collect';
import type { ColumnMapping } from '../data/prompts';
import { isNetworkFailure } from './loadErrors';

/**
 * The Hub dataset the Data page suggests: UltraFeedback's prompts, which FuseChat-3.0 drew its
 * instruction prompts from. Its splits are train_prefs, test_prefs, train_sft, … (no "train").
 */
export const HF_EXAMPLE = { dataset: 'HuggingFaceH4/ultrafeedback_binarized', config: 'default', split: 'train_prefs' } as const;

/** The Data page's names for the mapping fields (its Column mapping form). */
export const MAPPING_FIELD_LABEL: Record<keyof ColumnMapping, string> = {
  prompt: 'Prompt column',
  system: 'System column',
  domain: 'Domain column',
  gold: 'Gold answer column',
  tests: 'Tests column',
  id: 'Id column',
};

interface ColumnProblemLike {
  field: keyof ColumnMapping;
  given?: string;
  columns: string[];
  suggestion?: string;
}

/** What was being imported: a file by name, or a Hub dataset. */
export type ImportSource = { kind: 'file'; name: string } | { kind: 'hf'; dataset: string; token: boolean };

const labelOf = (src: ImportSource) => (src.kind === 'file' ? src.name : src.dataset);
const list = (xs: readonly string[]) => (xs.length ? xs.map((x) => `“${x}”`).join(', ') : '(none)');

/** An import that failed as a whole, said so the user knows what to change. */
export function explainImportError(src: ImportSource, e: unknown): string {
  const err = e as { name?: string; message?: string; column?: ColumnProblemLike; status?: number; splits?: unknown[] } | null;
  const msg = err?.message ?? String(e);
  const label = labelOf(src);
  const col = err?.name === 'PromptImportError' ? err.column : undefined;
  if (col) {
    const field = MAPPING_FIELD_LABEL[col.field];
    if (col.given === undefined)
      return (
        `${label} has no column the importer recognises as the prompt. Its columns are ${list(col.columns)}. ` +
        `Open “Column mapping” and type the prompt’s column under “${field}”${col.suggestion ? ` (probably “${col.suggestion}”, which holds the longest texts)` : ''}, then import again.`
      );
    return (
      `${label} has no column “${col.given}”, which is set as the ${field}. Its columns are ${list(col.columns)}. ` +
      `Under “Column mapping”, type one of them as the ${field}${col.field === 'prompt' ? ', or leave it blank to detect it' : ', leave it blank to detect it, or type “-” for none'}.`
    );
  }
  if (src.kind === 'hf' && err?.name === 'HfRowsError') {
    if (isNetworkFailure(msg))
      return `Could not reach datasets-server.huggingface.co (the Hub’s dataset viewer, where the rows come from): this device may be offline. Check the network, or download the dataset and import the file. (${msg})`;
    if (err.status === 401 || err.status === 403)
      return src.token
        ? `The Hub refused ${label} with your token (${err.status}): accept the dataset’s terms on its Hub page while signed in to the token’s account, or use a token with access to it.`
        : `${label} is gated or private (${err.status}): accept its terms on its Hub page, then paste an access token under “Access token”.`;
    return `Could not import ${label}: ${msg}${err.splits?.length ? ' (under “Config” and “Split”)' : ''}.`;
  }
  return `Could not import ${label}: ${msg}`;
}

/** What an import read, as the page counts it. */
export interface ImportCounts {
  rows: number;
  /** Prompts added to the run. */
  added: number;
  errors: readonly { row: number; line?: number; message: string }[];
  duplicates: number;
  /** Prompts already in the run from an earlier import. */
  skippedExisting: number;
}

/** Why an import added nothing (then it is an error, not an entry), or null when it added prompts. */
export function emptyImportProblem(src: ImportSource, c: ImportCounts): string | null {
  if (c.added > 0) return null;
  const label = labelOf(src);
  if (c.rows === 0) return src.kind === 'file' ? `${label} has no rows: the file is empty, or holds only blank lines.` : `${label} returned no rows for this config and split.`;
  if (c.errors.length > 0 && c.errors.length + c.duplicates + c.skippedExisting >= c.rows) {
    const first = c.errors[0]!;
    const at = first.line !== undefined ? `line ${first.line}` : first.row > 0 ? `row ${first.row}` : 'the file';
    return `None of the ${c.rows} row(s) of ${label} became a prompt: ${c.errors.length} bad row(s) (first, ${at}: ${first.message})${c.duplicates + c.skippedExisting ? `, the others already imported or repeated` : ''}. Fix the rows, or check “Column mapping”.`;
  }
  return `Nothing new in ${label}: its ${c.rows} row(s) are prompts the run already has${c.duplicates ? ` or repeats within it` : ''}.`;
}

/** The one-line account of an import, and whether it left rows out (a warning, not a success). */
export function importSummary(c: ImportCounts): { text: string; partial: boolean } {
  const skipped: string[] = [];
  if (c.errors.length) skipped.push(`${c.errors.length} bad row(s), listed below`);
  if (c.duplicates) skipped.push(`${c.duplicates} repeating an earlier row`);
  if (c.skippedExisting) skipped.push(`${c.skippedExisting} already imported`);
  const text = `${c.rows} row(s) read, ${c.added} prompt(s) added${skipped.length ? `; left out: ${skipped.join(', ')}` : ''}.`;
  return { text, partial: skipped.length > 0 };
}

/** The run's planned requests and how many of them are stored, beside what is stored outside the plan. */
export interface RunPlanCounts {
  /** Requests the run makes: every source × prompt × its samples. */
  planned: number;
  /** Of those, with a response stored. */
  stored: number;
  /** Of those, whose last request failed (a run asks them again). */
  failed: number;
  /** Responses stored in this run for sources or prompts that are not in it now (not used). */
  outside: number;
}

/** The counts the Data page shows before a run, all over the same plan. */
export function runPlanCounts(sources: readonly CollectSource[], prompts: readonly CollectPrompt[], responseKeys: readonly string[], errorKeys: readonly string[]): RunPlanCounts {
  let planned: Set<string>;
  try {
    planned = new Set(planCollection(sources, prompts).map((i) => i.key));
  } catch {
    planned = new Set(); // a duplicate id: the run itself will say so
  }
  const have = new Set(responseKeys);
  let stored = 0;
  let outside = 0;
  for (const k of have) if (planned.has(k)) stored++;
  else outside++;
  const failed = new Set(errorKeys.filter((k) => planned.has(k) && !have.has(k))).size;
  return { planned: planned.size, stored, failed, outside };
}
