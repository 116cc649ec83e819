// Model sources in a browser: a folder picked with showDirectoryPicker(), files or a folder
// dropped on the page, or a remote model (Hub repo, URL) cached in OPFS / Cache Storage.

import { blobSource } from '../io/byte-source';
import { browserModelStore } from '../io/opfs';
import {
  blobsSource,
  checkFileName,
  HF_ENDPOINT,
  type HttpModelSource,
  modelCacheId,
  ModelSourceError,
  parseModelLocation,
  readJson,
  remoteSource,
  type ModelSource,
} from './source';
import { ggufModelSource, parseGgufSpec } from './gguf/source';

/** A folder the user picked (`await showDirectoryPicker()`); files are read on demand. */
export function directorySource(dir: FileSystemDirectoryHandle): ModelSource {
  const find = async (name: string): Promise<File | null> => {
    checkFileName(name);
    const parts = name.split('/');
    let d = dir;
    try {
      for (const p of parts.slice(0, -1)) d = await d.getDirectoryHandle(p);
      return await (await d.getFileHandle(parts.at(-1)!)).getFile();
    } catch (e) {
      const n = (e as { name?: string }).name;
      if (n === 'NotFoundError' || n === 'TypeMismatchError') return null;
      throw e;
    }
  };
  const get = async (name: string): Promise<File> => {
    const f = await find(name);
    if (!f) throw new ModelSourceError(`${dir.name}: no file named ${name}`);
    return f;
  };
  return {
    description: dir.name,
    remote: false,
    async has(name) {
      return (await find(name)) !== null;
    },
    async size(name) {
      return (await get(name)).size;
    },
    async json<T>(name: string) {
      return readJson<T>(blobSource(name, await get(name)));
    },
    async open(name) {
      return blobSource(name, await get(name));
    },
  };
}

/** A file with its path inside the dropped or picked folder. */
export interface PathedFile {
  path: string;
  file: File;
}

/**
 * Files dropped on the page or chosen with `<input type="file" webkitdirectory>`. Paths come
 * from `webkitRelativePath` (or PathedFile.path); a folder name shared by every file is
 * stripped, so dropping `Llama-3.2-1B/` gives `config.json`, `model.safetensors`, ...
 */
export function droppedFilesSource(files: Iterable<File | PathedFile>, description = 'dropped files'): ModelSource {
  const list = [...files].map((f) =>
    f instanceof File ? { path: f.webkitRelativePath || f.name, file: f } : { path: f.path.replace(/^\/+/, ''), file: f.file },
  );
  const first = list[0]?.path.split('/')[0];
  const shared = first !== undefined && list.every((f) => f.path.includes('/') && f.path.split('/')[0] === first);
  const map = new Map<string, Blob>();
  for (const f of list) map.set(shared ? f.path.slice(first!.length + 1) : f.path, f.file);
  const source = blobsSource(shared ? first! : description, map);
  // One .gguf file and no config.json: that file is the model (gguf/source.ts).
  const ggufs = [...map.keys()].filter((n) => /\.gguf$/i.test(n));
  return ggufs.length === 1 && !map.has('config.json') ? ggufModelSource(source, ggufs[0]!) : source;
}

/** Every file in a drop, walking dropped folders (DataTransferItem.webkitGetAsEntry). */
export async function filesFromDataTransfer(dt: DataTransfer): Promise<PathedFile[]> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  const out: PathedFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      out.push({ path: prefix + entry.name, file });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    for (;;) {
      // readEntries returns at most ~100 entries per call; call until it returns none.
      const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const e of batch) await walk(e, `${prefix}${entry.name}/`);
    }
  };
  for (const e of entries) await walk(e, '');
  return out;
}

export interface BrowserRemoteOptions {
  token?: string;
  endpoint?: string;
  fetchImpl?: typeof fetch;
  maxRetries?: number;
}

/** A Hub repo or URL, downloaded into this origin's model cache (OPFS, else Cache Storage). */
export async function openRemoteModelSource(spec: string, opts: BrowserRemoteOptions = {}): Promise<HttpModelSource> {
  // One .gguf file: a URL, a Hub file URL or a repo + file, cached as its folder (gguf/source.ts).
  const gguf = parseGgufSpec(spec);
  if (gguf?.kind === 'remote') {
    const endpoint = opts.endpoint ?? HF_ENDPOINT;
    const store = await browserModelStore(modelCacheId(gguf.location, endpoint));
    const remote = remoteSource(gguf.location, { store, token: opts.token || undefined, endpoint, fetchImpl: opts.fetchImpl, maxRetries: opts.maxRetries });
    return ggufModelSource(remote, gguf.file);
  }
  const loc = parseModelLocation(spec);
  if (!loc) throw new ModelSourceError(`"${spec}" is not an http(s) URL, a Hugging Face repo id (org/name, hf://org/name@revision) or a preset name`);
  const endpoint = opts.endpoint ?? HF_ENDPOINT;
  const store = await browserModelStore(modelCacheId(loc, endpoint));
  return remoteSource(loc, { store, token: opts.token || undefined, endpoint, fetchImpl: opts.fetchImpl, maxRetries: opts.maxRetries });
}
