// Trained and imported adapters persist in IndexedDB (database `fuse-studio-adapters`) as the PEFT
// files they export to, keyed by base model and name, so a reloaded tab can chat with and export
// them again. Stored through the same PEFT writer/reader the exports use.
//
// An adapter is never overwritten: saving under a name in use fails (callers pick a free one with
// freeAdapterName). Each keeps a unique id and what it continues (DPO continuing an SFT adapter),
// by name and id, so a list can say "continues sft" and notice when that adapter was deleted.

import Dexie, { type Table } from 'dexie';
import type { ModelConfig } from '../../model/config';
import { exportPeftAdapter, importPeftAdapter, type HostAdapter } from '../../train/peft';
import { takenNames, type AdapterNameInfo, type RunNames } from '../trainConfig';

export const ADAPTER_DB_NAME = 'fuse-studio-adapters';

export interface AdapterRow {
  modelKey: string;
  name: string;
  files: Record<string, Uint8Array>;
  createdAt: string;
  /** What made it: "SFT, 12 steps" … */
  note: string;
  /** Unique per saved adapter (rows stored before ids: name@createdAt). */
  id?: string;
  kind?: AdapterKind;
  /** The adapter it continues, as it was when this one was made; null when fresh. */
  parent?: { name: string; id: string } | null;
}

/** How an adapter was made. */
export type AdapterKind = 'sft' | 'dpo' | 'imported';

export interface AdapterMeta {
  kind: AdapterKind;
  parent?: { name: string; id: string } | null;
}

export interface AdapterInfo {
  name: string;
  id: string;
  createdAt: string;
  note: string;
  rank: number;
  alpha: number;
  targets: string[];
  /** 'unknown': stored before kinds were kept. */
  kind: AdapterKind | 'unknown';
  /** The name of the adapter it continues, or null. */
  parent: string | null;
  /** It continues an adapter that is no longer stored (deleted, or not imported with it). */
  parentGone: boolean;
}

export class AdapterExistsError extends Error {
  override name = 'AdapterExistsError';
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

const idOf = (r: Pick<AdapterRow, 'id' | 'name' | 'createdAt'>) => r.id ?? `${r.name}@${r.createdAt}`;

/** Stores `host` as a new adapter `name`; an adapter of that name already stored is an AdapterExistsError. Returns its id. */
export async function saveAdapter(modelKey: string, name: string, host: HostAdapter, note: string, meta: AdapterMeta): Promise<string> {
  const files = Object.fromEntries(exportPeftAdapter(host, { dtype: 'f32' }));
  const createdAt = new Date().toISOString();
  const id = `${name}@${createdAt}#${Math.random().toString(36).slice(2, 8)}`;
  const d = open();
  await d.transaction('rw', d.adapters, async () => {
    if (await d.adapters.get([modelKey, name])) throw new AdapterExistsError(`An adapter named "${name}" is already stored for this model.`);
    await d.adapters.add({ modelKey, name, files, createdAt, note, id, kind: meta.kind, parent: meta.parent ?? null });
  });
  return id;
}

export async function loadAdapter(modelKey: string, name: string, config: ModelConfig): Promise<HostAdapter | null> {
  const row = await open().adapters.get([modelKey, name]);
  if (!row) return null;
  return importPeftAdapter(new Map(Object.entries(row.files)), config).adapter;
}

/** The model's adapters, oldest first, each with what it continues and whether that still exists. */
export async function listAdapters(modelKey: string): Promise<AdapterInfo[]> {
  const rows = (await open().adapters.where('modelKey').equals(modelKey).toArray()).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const ids = new Set(rows.map(idOf));
  const names = new Set(rows.map((r) => r.name));
  return rows.map((r) => {
    const cfg = JSON.parse(new TextDecoder().decode(r.files['adapter_config.json'])) as { r: number; lora_alpha: number; target_modules: string[] };
    if (r.kind === undefined) {
      // Stored before kinds and parents were kept: the note says what made it ('DPO (…) continuing "sft", …').
      const continued = /continuing "([^"]+)"/.exec(r.note)?.[1] ?? null;
      const kind = /^SFT\b/.test(r.note) ? 'sft' : /^DPO\b/.test(r.note) ? 'dpo' : 'unknown';
      return { name: r.name, id: idOf(r), createdAt: r.createdAt, note: r.note, rank: cfg.r, alpha: cfg.lora_alpha, targets: cfg.target_modules, kind, parent: continued, parentGone: continued !== null && !names.has(continued) };
    }
    const parent = r.parent ?? null;
    return {
      name: r.name,
      id: idOf(r),
      createdAt: r.createdAt,
      note: r.note,
      rank: cfg.r,
      alpha: cfg.lora_alpha,
      targets: cfg.target_modules,
      kind: r.kind ?? 'unknown',
      parent: parent?.name ?? null,
      parentGone: parent !== null && !ids.has(parent.id),
    };
  });
}

export async function removeAdapter(modelKey: string, name: string): Promise<void> {
  await open().adapters.delete([modelKey, name]);
}

/** Names a new adapter must not take (see takenNames): the stored adapters' and the runs'. */
export async function namesInUse(modelKey: string, runs: readonly RunNames[] = []): Promise<AdapterNameInfo[]> {
  return takenNames(await listAdapters(modelKey), runs, modelKey);
}
