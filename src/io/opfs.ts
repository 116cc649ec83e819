// The browser's model cache: the Origin Private File System where available (Chrome, Edge,
// Firefox, Safari), Cache Storage otherwise. Each model (a repo@revision or a URL) gets its own
// folder / key prefix, so the studio can say "cached: 1.2 GB — free" and delete one model.
// Files are stored as segments (see segmented-store.ts) so a download can resume after a reload.

import { SegmentedFileStore, type SegmentBackend } from './segmented-store';

const ROOT = ['fuse-studio', 'models'];
const CACHE_NAME = 'fuse-studio-models';
const CACHE_BASE = 'https://fuse-studio.invalid/models/';
const COMPLETE = 'complete';

export type BrowserCacheKind = 'opfs' | 'cache-storage';

export interface CachedModel {
  /** The model's cache id (see modelCacheId in src/model/source.ts). */
  id: string;
  bytes: number;
}

// ---- OPFS -------------------------------------------------------------------------------

type Dir = FileSystemDirectoryHandle;
type IterableDir = Dir & { entries(): AsyncIterableIterator<[string, FileSystemHandle]> };
interface SyncHandle {
  truncate(n: number): void;
  write(data: Uint8Array, opts: { at: number }): number;
  flush(): void;
  close(): void;
}

function isNotFound(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'NotFoundError' || name === 'TypeError' || name === 'TypeMismatchError';
}

async function child(dir: Dir, name: string, create = false): Promise<Dir | null> {
  try {
    return await dir.getDirectoryHandle(name, { create });
  } catch (e) {
    if (!create && isNotFound(e)) return null;
    throw e;
  }
}

async function fileIn(dir: Dir, name: string): Promise<FileSystemFileHandle | null> {
  try {
    return await dir.getFileHandle(name);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

async function opfsModelsDir(create: boolean): Promise<Dir | null> {
  let dir: Dir | null = await navigator.storage.getDirectory();
  for (const name of ROOT) {
    dir = await child(dir, name, create);
    if (!dir) return null;
  }
  return dir;
}

async function dirBytes(dir: Dir): Promise<number> {
  let total = 0;
  for await (const [, h] of (dir as IterableDir).entries()) {
    if (h.kind === 'file') total += (await (h as FileSystemFileHandle).getFile()).size;
    else total += await dirBytes(h as Dir);
  }
  return total;
}

class OpfsSegments implements SegmentBackend {
  constructor(private readonly modelDir: Dir) {}

  private keyDir(key: string, create = false) {
    return child(this.modelDir, encodeURIComponent(key), create);
  }

  async stat(key: string) {
    const dir = await this.keyDir(key);
    const segments: number[] = [];
    if (!dir) return { segments, complete: false };
    for (let i = 0; ; i++) {
      const fh = await fileIn(dir, String(i));
      if (!fh) break;
      segments.push((await fh.getFile()).size);
    }
    return { segments, complete: (await fileIn(dir, COMPLETE)) !== null };
  }

  async put(key: string, index: number, data: Uint8Array<ArrayBuffer>) {
    const dir = (await this.keyDir(key, true))!;
    const fh = await dir.getFileHandle(String(index), { create: true });
    if ('createWritable' in fh) {
      // Written to a swap file and moved into place on close: a segment is all there or absent.
      const w = await fh.createWritable();
      await w.write(data);
      await w.close();
      return;
    }
    // Safari before createWritable: sync access handles (dedicated workers only). A torn write
    // leaves a shorter segment whose bytes are still right; the download resumes after them.
    const sync = await (fh as unknown as { createSyncAccessHandle(): Promise<SyncHandle> }).createSyncAccessHandle();
    try {
      sync.truncate(0);
      sync.write(data, { at: 0 });
      sync.flush();
    } finally {
      sync.close();
    }
  }

  async get(key: string, index: number) {
    const dir = await this.keyDir(key);
    const fh = dir && (await fileIn(dir, String(index)));
    if (!fh) throw new Error(`${key}: segment ${index} is missing from the browser cache`);
    return fh.getFile();
  }

  async setComplete(key: string) {
    const dir = (await this.keyDir(key, true))!;
    await dir.getFileHandle(COMPLETE, { create: true });
  }

  async remove(key: string) {
    try {
      await this.modelDir.removeEntry(encodeURIComponent(key), { recursive: true });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

/** A model's files in the Origin Private File System. */
export class OpfsFileStore extends SegmentedFileStore {
  static async open(modelId: string): Promise<OpfsFileStore> {
    const models = (await opfsModelsDir(true))!;
    return new OpfsFileStore(new OpfsSegments((await child(models, modelId, true))!));
  }
}

// ---- Cache Storage ----------------------------------------------------------------------

const SIZE_HEADER = 'X-Fuse-Size';

function cacheUrl(modelId: string, key?: string, part?: string): string {
  let url = `${CACHE_BASE}${encodeURIComponent(modelId)}/`;
  if (key !== undefined) url += `${encodeURIComponent(key)}/`;
  if (part !== undefined) url += part;
  return url;
}

class CacheSegments implements SegmentBackend {
  constructor(
    private readonly cache: Cache,
    private readonly modelId: string,
  ) {}

  async stat(key: string) {
    const segments: number[] = [];
    for (let i = 0; ; i++) {
      const res = await this.cache.match(cacheUrl(this.modelId, key, String(i)));
      if (!res) break;
      segments.push(Number(res.headers.get(SIZE_HEADER)));
    }
    return { segments, complete: (await this.cache.match(cacheUrl(this.modelId, key, COMPLETE))) !== undefined };
  }

  async put(key: string, index: number, data: Uint8Array<ArrayBuffer>) {
    const headers = { 'Content-Type': 'application/octet-stream', [SIZE_HEADER]: String(data.byteLength) };
    await this.cache.put(cacheUrl(this.modelId, key, String(index)), new Response(data, { headers }));
  }

  async get(key: string, index: number) {
    const res = await this.cache.match(cacheUrl(this.modelId, key, String(index)));
    if (!res) throw new Error(`${key}: segment ${index} is missing from the browser cache`);
    return res.blob();
  }

  async setComplete(key: string) {
    await this.cache.put(cacheUrl(this.modelId, key, COMPLETE), new Response('', { headers: { [SIZE_HEADER]: '0' } }));
  }

  async remove(key: string) {
    await deleteCacheEntries(this.cache, cacheUrl(this.modelId, key));
  }
}

async function deleteCacheEntries(cache: Cache, prefix: string): Promise<void> {
  for (const req of await cache.keys()) if (req.url.startsWith(prefix)) await cache.delete(req);
}

/** A model's files in Cache Storage, for browsers without OPFS. */
export class CacheStorageFileStore extends SegmentedFileStore {
  static async open(modelId: string): Promise<CacheStorageFileStore> {
    return new CacheStorageFileStore(new CacheSegments(await caches.open(CACHE_NAME), modelId));
  }
}

// ---- the cache as the studio sees it ----------------------------------------------------

async function opfsWorks(): Promise<boolean> {
  try {
    if (typeof navigator === 'undefined' || typeof navigator.storage?.getDirectory !== 'function') return false;
    await navigator.storage.getDirectory(); // throws in some private-browsing modes
    return true;
  } catch {
    return false;
  }
}

/** All cached models of this origin, in OPFS or (without it) Cache Storage. */
export class BrowserModelCache {
  private constructor(readonly kind: BrowserCacheKind) {}

  static async open(): Promise<BrowserModelCache> {
    if (await opfsWorks()) return new BrowserModelCache('opfs');
    if (typeof caches !== 'undefined') return new BrowserModelCache('cache-storage');
    throw new Error('This browser offers neither the Origin Private File System nor Cache Storage, so models cannot be cached');
  }

  /** The store one model's files are downloaded into and read from. */
  store(modelId: string): Promise<SegmentedFileStore> {
    return this.kind === 'opfs' ? OpfsFileStore.open(modelId) : CacheStorageFileStore.open(modelId);
  }

  async list(): Promise<CachedModel[]> {
    const out: CachedModel[] = [];
    if (this.kind === 'opfs') {
      const models = await opfsModelsDir(false);
      if (!models) return out;
      for await (const [name, h] of (models as IterableDir).entries())
        if (h.kind === 'directory') out.push({ id: name, bytes: await dirBytes(h as Dir) });
    } else {
      const sizes = new Map<string, number>();
      const cache = await caches.open(CACHE_NAME);
      for (const req of await cache.keys()) {
        if (!req.url.startsWith(CACHE_BASE)) continue;
        const id = decodeURIComponent(req.url.slice(CACHE_BASE.length).split('/')[0]!);
        const n = Number((await cache.match(req))?.headers.get(SIZE_HEADER) ?? 0);
        sizes.set(id, (sizes.get(id) ?? 0) + n);
      }
      for (const [id, bytes] of sizes) out.push({ id, bytes });
    }
    // A folder made for a download that never got a byte (a failed load) is not a cached model.
    return out.filter((m) => m.bytes > 0).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** One model's cached files (complete or partial) with their bytes; markers of absent files left out. */
  async files(modelId: string): Promise<{ name: string; bytes: number }[]> {
    const out: { name: string; bytes: number }[] = [];
    if (this.kind === 'opfs') {
      const models = await opfsModelsDir(false);
      const dir = models && (await child(models, modelId));
      if (!dir) return out;
      for await (const [name, h] of (dir as IterableDir).entries()) if (h.kind === 'directory') out.push({ name: decodeURIComponent(name), bytes: await dirBytes(h as Dir) });
    } else {
      const cache = await caches.open(CACHE_NAME);
      const prefix = cacheUrl(modelId);
      const sizes = new Map<string, number>();
      for (const req of await cache.keys()) {
        if (!req.url.startsWith(prefix)) continue;
        const name = decodeURIComponent(req.url.slice(prefix.length).split('/')[0]!);
        sizes.set(name, (sizes.get(name) ?? 0) + Number((await cache.match(req))?.headers.get(SIZE_HEADER) ?? 0));
      }
      for (const [name, bytes] of sizes) out.push({ name, bytes });
    }
    // Negative answers (404s) are cached under ".absent/…": they hold no file.
    return out.filter((f) => !f.name.startsWith('.absent/')).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Bytes cached for one model (complete and partial files). */
  async usage(modelId: string): Promise<number> {
    if (this.kind === 'opfs') {
      const models = await opfsModelsDir(false);
      const dir = models && (await child(models, modelId));
      return dir ? dirBytes(dir) : 0;
    }
    return (await this.list()).find((m) => m.id === modelId)?.bytes ?? 0;
  }

  /** Delete one model's cached files. */
  async remove(modelId: string): Promise<void> {
    if (this.kind === 'opfs') {
      const models = await opfsModelsDir(false);
      try {
        await models?.removeEntry(modelId, { recursive: true });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      return;
    }
    await deleteCacheEntries(await caches.open(CACHE_NAME), cacheUrl(modelId));
  }

  /** The origin's quota and usage, and whether the browser may evict it under pressure. */
  static async estimate(): Promise<{ usage: number; quota: number; persisted: boolean }> {
    const e = await navigator.storage.estimate();
    const persisted = (await navigator.storage.persisted?.()) ?? false;
    return { usage: e.usage ?? 0, quota: e.quota ?? 0, persisted };
  }

  /** Ask the browser not to evict the cache under storage pressure (call from a user gesture). */
  static async persist(): Promise<boolean> {
    return (await navigator.storage.persist?.()) ?? false;
  }
}

/** The browser store for one model: OPFS where it works, else Cache Storage. */
export async function browserModelStore(modelId: string): Promise<SegmentedFileStore> {
  return (await BrowserModelCache.open()).store(modelId);
}
