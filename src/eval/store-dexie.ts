// Browser EvalStore: IndexedDB through Dexie (database `fuse-studio-eval-results`). One row per
// finished result, keyed by [evalId+key] (the runner's resultKey), and one row per evaluation with
// the settings its results were made with (EvalRunMeta). A put has reached disk when it resolves
// (strict durability), so a tab closed mid-run keeps every finished item and a resume redoes none.

import Dexie, { type DexieOptions, type Table } from 'dexie';
import type { EvalResult, EvalRunMeta, EvalStore } from './store';

export const EVAL_RESULTS_DB_NAME = 'fuse-studio-eval-results';

interface ResultRow {
  evalId: string;
  key: string;
  result: EvalResult;
}

interface MetaRow {
  evalId: string;
  meta: EvalRunMeta;
}

export class EvalResultsDB extends Dexie {
  results!: Table<ResultRow, [string, string]>;
  runs!: Table<MetaRow, string>;
  /** `deps` lets Node tests pass a fake IndexedDB. */
  constructor(name = EVAL_RESULTS_DB_NAME, deps: Pick<DexieOptions, 'indexedDB' | 'IDBKeyRange'> = {}) {
    super(name, { ...deps, chromeTransactionDurability: 'strict' });
    this.version(1).stores({ results: '[evalId+key], evalId', runs: 'evalId' });
  }
}

let shared: EvalResultsDB | null = null;
const sharedDb = () => (shared ??= new EvalResultsDB());

export class DexieEvalStore implements EvalStore {
  constructor(
    readonly evalId: string,
    private readonly db: EvalResultsDB = sharedDb(),
  ) {}

  async readRun(): Promise<EvalRunMeta | null> {
    return (await this.db.runs.get(this.evalId))?.meta ?? null;
  }

  async writeRun(meta: EvalRunMeta): Promise<void> {
    await this.db.runs.put({ evalId: this.evalId, meta });
  }

  async list(): Promise<EvalResult[]> {
    const rows = await this.db.results.where('evalId').equals(this.evalId).toArray();
    return rows.map((r) => r.result);
  }

  async put(result: EvalResult): Promise<void> {
    await this.db.results.put({ evalId: this.evalId, key: result.key, result });
  }

  /** How many results are stored. */
  async count(): Promise<number> {
    return this.db.results.where('evalId').equals(this.evalId).count();
  }

  /** Forgets the evaluation: its results and settings. */
  async clear(): Promise<void> {
    await this.db.transaction('rw', this.db.results, this.db.runs, async () => {
      await this.db.results.where('evalId').equals(this.evalId).delete();
      await this.db.runs.delete(this.evalId);
    });
  }
}
