// Evaluations in IndexedDB (database `fuse-studio-eval`): one row per evaluation — what was asked
// (models, tiers, decoding, the eval set's text and hash), its status, progress and, once finished,
// its report. Its finished item results live in src/eval/store-dexie.ts under the same id, so a
// reloaded tab shows the report and a half-done evaluation resumes without redoing anything
// finished. The judge's API key is never stored: a resume takes the judge from the Sources page again.

import Dexie, { type DexieOptions, type Table } from 'dexie';
import type { EvalReport } from '../../eval/report';
import type { PromptText } from '../../eval/items';
import { DexieEvalStore } from '../../eval/store-dexie';

export const EVAL_DB_NAME = 'fuse-studio-eval';

export type EvalStatus = 'running' | 'completed' | 'cancelled' | 'error';

export interface EvalTiers {
  /** Held-out SFT loss / perplexity and DPO preference accuracy (no judge). */
  losses: boolean;
  /** Math answers against gold, code against tests. */
  checkable: boolean;
  /** Pairwise verdicts of the configured judge. */
  judge: boolean;
  /** The multiple-choice forgetting guard. */
  choices: boolean;
}

export interface EvalSettings {
  /** 'base' or stored adapter names, in the table's order. */
  models: string[];
  tiers: EvalTiers;
  maxNewTokens: number;
  seed: number;
  /** The chat template's date, fixed at the start so a resume templates the prompts the same. */
  dateString: string;
  /** Where the eval set came from ("held-out split of the data run", "EVAL.jsonl"). */
  dataLabel: string;
  /** The multiple-choice set's name, or null. */
  choicesLabel: string | null;
  /** The judge in words (kind, model, endpoint: no key), or null. */
  judgeLabel: string | null;
}

export interface EvalProgress {
  phase: string;
  done: number;
  total: number;
  etaSeconds: number | null;
  /** Results found stored when this run (or resume) began, and not computed again. */
  reused: number;
  /** Results computed by this run so far. */
  computed: number;
}

/** What lists and the page see of an evaluation (no set texts). */
export interface EvalSummary {
  evalId: string;
  modelKey: string;
  settings: EvalSettings;
  status: EvalStatus;
  /** sha256 of the eval items, fixed before any answer. */
  itemsHash: string | null;
  progress: EvalProgress | null;
  error: string | null;
  report: EvalReport | null;
  /** Warnings the runner gave (duplicates of training prompts, skipped rows…). */
  warnings: string[];
  createdAt: string;
  updatedAt: string;
}

export interface EvalRunRow extends EvalSummary {
  /** The eval set as JSONL (kept so a resume uses exactly the same items). */
  dataText: string;
  choicesText: string | null;
  /** Training prompts the items are checked against for duplicates. */
  trainingPrompts: PromptText[];
}

export class EvalDB extends Dexie {
  runs!: Table<EvalRunRow, string>;
  /** `deps` lets Node tests pass a fake IndexedDB. */
  constructor(name = EVAL_DB_NAME, deps: Pick<DexieOptions, 'indexedDB' | 'IDBKeyRange'> = {}) {
    super(name, { ...deps, chromeTransactionDurability: 'strict' });
    this.version(1).stores({ runs: 'evalId, modelKey, createdAt' });
  }
}

let db: EvalDB | null = null;
export const evalDb = (): EvalDB => (db ??= new EvalDB());

export const summaryOf = ({ dataText: _d, choicesText: _c, trainingPrompts: _t, ...rest }: EvalRunRow): EvalSummary => rest;

export const evalRuns = {
  async put(row: EvalRunRow): Promise<void> {
    await evalDb().runs.put(row);
  },
  async get(evalId: string): Promise<EvalRunRow | undefined> {
    return evalDb().runs.get(evalId);
  },
  async update(evalId: string, changes: Partial<EvalRunRow>): Promise<void> {
    await evalDb().runs.update(evalId, { ...changes, updatedAt: new Date().toISOString() });
  },
  /** Every evaluation, newest first, without set texts. */
  async list(): Promise<EvalSummary[]> {
    const rows = await evalDb().runs.orderBy('createdAt').reverse().toArray();
    return rows.map(summaryOf);
  },
  /** Forgets the evaluation and its item results. */
  async remove(evalId: string): Promise<void> {
    await new DexieEvalStore(evalId).clear();
    await evalDb().runs.delete(evalId);
  },
};
