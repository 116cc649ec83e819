// Exports and imports in the worker, where the model and the stored adapters are: a stored
// adapter's PEFT files (for a zip download or a project bundle), the merged model (the adapter
// folded into the base weights, bf16, zipped in memory), and importing a PEFT adapter made
// elsewhere (checked against the loaded model, then stored like a trained one).

import { mergeAdapter, type FolderSink } from '../../train/merge';
import { exportPeftAdapter, importPeftAdapter, type HostAdapter } from '../../train/peft';
import { listAdapters, loadAdapter, namesInUse, saveAdapter, type AdapterInfo } from './adapter-store';
import { trainRuns } from './train-runs';
import { zipSink } from './zip-sink';
import { freeAdapterName } from '../trainConfig';
import { requireSession, type Session } from './session';

export interface ImportedAdapter {
  /** The name it was stored under (the one asked for, or the next free one). */
  name: string;
  id: string;
  info: AdapterInfo | undefined;
  /** An identical adapter of that name was already stored: nothing was added. */
  duplicate?: boolean;
  /** base_model_name_or_path of the imported files, or null. */
  baseModel: string | null;
  /** What the importer accepted but wants the user to know. */
  notes: string[];
}

export interface MergeEvent {
  tensor: string;
  done: number;
  total: number;
}

async function hostAdapter(s: Session, name: string) {
  const host = s.adapters.get(name)?.host ?? (await loadAdapter(s.modelKey, name, s.loaded.config));
  if (!host) throw new Error(`There is no adapter "${name}" for this model.`);
  return host;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;

const sameArray = (x: Float32Array, y: Float32Array) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));

/** Same shape and the same numbers in every matrix. */
function sameAdapter(a: HostAdapter, b: HostAdapter): boolean {
  if (a.rank !== b.rank || a.alpha !== b.alpha || a.targets.join() !== b.targets.join() || a.layers.length !== b.layers.length) return false;
  return a.layers.every((layer, i) =>
    a.targets.every((t) => {
      const x = layer[t];
      const y = b.layers[i]![t];
      return (!x && !y) || (!!x && !!y && sameArray(x.a, y.a) && sameArray(x.b, y.b));
    }),
  );
}

export const exportService = {
  /**
   * Stores a PEFT adapter (its files by name) for the loaded model under `name`. A stored adapter
   * of that name is never replaced: the import is refused (`ifExists` 'refuse', the default), or
   * stored under the next free name ('rename'; the reply's `name` says which). Throws the
   * importer's message (PeftError) when the files do not fit the model.
   */
  async importAdapter(
    name: string,
    files: Record<string, Uint8Array>,
    note = 'imported',
    opts: { ifExists?: 'refuse' | 'rename'; parent?: { name: string; id: string } | null } = {},
  ): Promise<ImportedAdapter> {
    const s = requireSession();
    if (!NAME_RE.test(name)) throw new Error(`Adapter name "${name}": use letters, digits and . _ + - (start with a letter or digit).`);
    const result = importPeftAdapter(new Map(Object.entries(files)), s.loaded.config);
    const stored = await listAdapters(s.modelKey);
    let as = name;
    const same = stored.find((a) => a.name === name);
    if (same) {
      if (opts.ifExists !== 'rename') throw new Error(`An adapter named "${name}" is already stored for this model: type another name, or remove that one first (Adapters, above).`);
      // The very same adapter (a bundle imported twice): keep the one stored, add no copy.
      const host = await loadAdapter(s.modelKey, name, s.loaded.config);
      if (host && sameAdapter(host, result.adapter)) return { name, id: same.id, info: same, baseModel: result.baseModel, notes: result.notes, duplicate: true };
      as = freeAdapterName(name, await namesInUse(s.modelKey, await trainRuns.list()));
    }
    const id = await saveAdapter(s.modelKey, as, result.adapter, note, { kind: 'imported', parent: opts.parent ?? null });
    const info = (await listAdapters(s.modelKey)).find((a) => a.name === as);
    return { name: as, id, info, baseModel: result.baseModel, notes: result.notes };
  },

  /**
   * A stored adapter's PEFT files (adapter_config.json + adapter_model.safetensors, f32), and a
   * README.md saying what to put in base_model_name_or_path when `baseModel` is '' (unknown).
   */
  async adapterFiles(name: string, baseModel: string): Promise<Record<string, Uint8Array>> {
    const s = requireSession();
    const host = await hostAdapter(s, name);
    return Object.fromEntries(exportPeftAdapter(host, { baseModel, dtype: 'f32', loadedFrom: s.loaded.source }));
  },

  /**
   * The merged model (bf16) as a zip (folder `folder/` inside), streamed into a Blob tensor by
   * tensor: shards of at most 2 GB, and no zip64, so the whole must stay under 4 GB (1B models).
   */
  async mergedZip(name: string, folder: string, onEvent: (e: MergeEvent) => void): Promise<Blob> {
    const sink = zipSink(folder);
    await merge(name, sink, onEvent, 2e9);
    return sink.finish();
  },

  /** The merged model (bf16) written into a folder the user picked (any size; 5 GB shards). */
  async mergedToDirectory(name: string, dir: FileSystemDirectoryHandle, onEvent: (e: MergeEvent) => void): Promise<string[]> {
    const sink: FolderSink = {
      async write(file, parts) {
        const handle = await dir.getFileHandle(file, { create: true });
        const w = await handle.createWritable();
        try {
          for await (const p of parts) await w.write(p.slice());
          await w.close();
        } catch (e) {
          await w.abort();
          throw e;
        }
      },
    };
    return (await merge(name, sink, onEvent, 5e9)).files;
  },
};

async function merge(name: string, sink: FolderSink, onEvent: (e: MergeEvent) => void, maxShardBytes: number) {
  const s = requireSession();
  const host = await hostAdapter(s, name);
  let last = 0;
  return mergeAdapter(s.source, host, sink, {
    dtype: 'bf16',
    maxShardBytes,
    onTensor(tensor, done, total) {
      const now = performance.now();
      if (now - last < 100 && done !== total) return;
      last = now;
      onEvent({ tensor, done, total });
    },
  });
}
