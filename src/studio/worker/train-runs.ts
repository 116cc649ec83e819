// Training runs in IndexedDB (database `fuse-studio-train`): one row per run (its settings, status,
// the dataset text it trains on, so a reloaded tab can resume it exactly) and one row per logged
// metrics object (so the charts come back after a reload). Checkpoints live in
// `fuse-studio-checkpoints` (src/train/checkpoint-store-browser.ts) under the same run id.

import Dexie, { type Table } from 'dexie';
import type { Metrics } from '../../train/trainer';
import type { TrainRunSummary } from '../trainConfig';

export const TRAIN_DB_NAME = 'fuse-studio-train';

export interface TrainRunRow extends TrainRunSummary {
  datasetText: string;
}

export interface MetricsRow {
  runId: string;
  /** Order of logging within the run. */
  seq: number;
  step: number;
  metrics: Metrics;
}

class TrainDB extends Dexie {
  runs!: Table<TrainRunRow, string>;
  metrics!: Table<MetricsRow, [string, number]>;
  constructor() {
    super(TRAIN_DB_NAME, { chromeTransactionDurability: 'strict' });
    this.version(1).stores({ runs: 'runId, modelKey, createdAt', metrics: '[runId+seq], runId' });
  }
}

let db: TrainDB | null = null;
const open = () => (db ??= new TrainDB());

export const summaryOf = ({ datasetText: _text, ...rest }: TrainRunRow): TrainRunSummary => rest;

export const trainRuns = {
  async put(row: TrainRunRow): Promise<void> {
    await open().runs.put(row);
  },
  async get(runId: string): Promise<TrainRunRow | undefined> {
    return open().runs.get(runId);
  },
  async update(runId: string, changes: Partial<TrainRunRow>): Promise<void> {
    await open().runs.update(runId, { ...changes, updatedAt: new Date().toISOString() });
  },
  /** Every run, newest first, without dataset texts. */
  async list(): Promise<TrainRunSummary[]> {
    const rows = await open().runs.orderBy('createdAt').reverse().toArray();
    return rows.map(summaryOf);
  },
  async addMetrics(runId: string, metrics: Metrics): Promise<void> {
    const d = open();
    await d.transaction('rw', d.metrics, async () => {
      const last = await d.metrics.where('[runId+seq]').between([runId, Dexie.minKey], [runId, Dexie.maxKey]).last();
      await d.metrics.add({ runId, seq: (last?.seq ?? -1) + 1, step: metrics.step ?? 0, metrics });
    });
  },
  async metrics(runId: string): Promise<Metrics[]> {
    const rows = await open().metrics.where('[runId+seq]').between([runId, Dexie.minKey], [runId, Dexie.maxKey]).toArray();
    return rows.map((r) => r.metrics);
  },
  /** Drop what was logged after `step` (a resume from that step's checkpoint logs it again). */
  async truncateMetrics(runId: string, step: number): Promise<void> {
    await open().metrics.where('runId').equals(runId).filter((r) => r.step > step).delete();
  },
  async remove(runId: string): Promise<void> {
    const d = open();
    await d.transaction('rw', d.runs, d.metrics, async () => {
      await d.metrics.where('runId').equals(runId).delete();
      await d.runs.delete(runId);
    });
  },
};
