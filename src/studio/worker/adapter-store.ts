// Trained and imported adapters persist in IndexedDB (database `fuse-studio-adapters`) as the PEFT
// files they export to, keyed by base model and name, so a reloaded tab can chat with and export
// them again. Stored through the same PEFT writer/reader the exports use.

import Dexie, { type Table } from 'dexie';
import type { ModelConfig } from '../../model/config';
import { exportPeftAdapter, importPeftAdapter, type HostAdapter } from '../../train/peft';

export const ADAPTER_DB_NAME = 'fuse-studio-adapters';

export interface AdapterRow {
  modelKey: string;
  name: string;
  files: Record<string, Uint8Array>;
  createdAt: string;
  /** What made it: "SFT, 12 steps" … */
  note: string;
}

export interface AdapterInfo {
  name: string;
  createdAt: string;
  note: string;
  rank: number;
  alpha: number;
  targets: string[];
}

class AdapterDB extends Dexie {
  adapters!: Table<AdapterRow, [string, string]>;
  constructor() {
    super(ADAPTER_DB_NAME, { chromeTransactionDurability: 'strict' });
    this.version(1).stores({ adapters: '[modelKey+name], modelKey' });
  }
}

let db: AdapterDB | null = null;
const open = () => (db ??= new AdapterDB());

export async function saveAdapter(modelKey: string, name: string, host: HostAdapter, note: string): Promise<void> {
  const files = Object.fromEntries(exportPeftAdapter(host, { dtype: 'f32' }));
  await open().adapters.put({ modelKey, name, files, createdAt: new Date().toISOString(), note });
}

export async function loadAdapter(modelKey: string, name: string, config: ModelConfig): Promise<HostAdapter | null> {
  const row = await open().adapters.get([modelKey, name]);
  if (!row) return null;
  return importPeftAdapter(new Map(Object.entries(row.files)), config).adapter;
}

export async function listAdapters(modelKey: string): Promise<AdapterInfo[]> {
  const rows = await open().adapters.where('modelKey').equals(modelKey).toArray();
  return rows.map((r) => {
    const cfg = JSON.parse(new TextDecoder().decode(r.files['adapter_config.json'])) as { r: number; lora_alpha: number; target_modules: string[] };
    return { name: r.name, createdAt: r.createdAt, note: r.note, rank: cfg.r, alpha: cfg.lora_alpha, targets: cfg.target_modules };
  });
}

export async function removeAdapter(modelKey: string, name: string): Promise<void> {
  await open().adapters.delete([modelKey, name]);
}
