// The studio's own IndexedDB database (Dexie): the sources the user configured (API keys
// included: they stay in this browser and are never logged or exported), the judge settings,
// and each data run's imports and manual edits. Responses, scores and artifacts of a run live in
// src/data's database (store-dexie.ts), keyed by the same runId.

import Dexie, { type Table } from 'dexie';
import type { Source } from '../data/sources';

export const STUDIO_DB_NAME = 'fuse-studio-studio';

/** A source as the Sources page keeps it: the pipeline's Source is derived from it (sourcesStore). */
export interface SourceEntry extends Omit<Source, 'id'> {
  /** Random, fixed for the entry's life. */
  id: string;
  /** The endpoint preset it was made from ('custom' for none). */
  presetId: string;
  /** Whether the data pipeline asks it. */
  enabled: boolean;
  createdAt: string;
}

export interface SettingRow {
  key: string;
  value: unknown;
}

/** A data run's inputs (DataPage): kept so a reload continues the same run. */
export interface DataRunRow {
  runId: string;
  doc: unknown;
  updatedAt: string;
}

export class StudioDB extends Dexie {
  sources!: Table<SourceEntry, string>;
  settings!: Table<SettingRow, string>;
  dataRuns!: Table<DataRunRow, string>;

  constructor(name = STUDIO_DB_NAME) {
    super(name, { chromeTransactionDurability: 'strict' });
    this.version(1).stores({ sources: 'id, createdAt', settings: 'key', dataRuns: 'runId' });
  }
}

let db: StudioDB | null = null;

/** The shared studio database, opened on first use. */
export function studioDb(): StudioDB {
  db ??= new StudioDB();
  return db;
}
