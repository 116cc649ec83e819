// Where a checkpoint's files come from: a folder on disk (Node), a folder the user picked or
// dropped (browser), or an HTTP(S) base URL / Hugging Face Hub repo. Remote files are
// downloaded (resumably, with progress) into a cache store and then read from it, so loading
// never holds a whole weight file in JS memory and a second load makes no weight requests.
//
// Host-specific sources live beside this file: source-node.ts (local folder, disk cache) and
// source-browser.ts (directory handle, dropped files, OPFS / Cache Storage).

import { blobSource, type ByteSource } from '../io/byte-source';
import { describeHttpError, download, DownloadError } from '../io/download';
import type { ReadableFileStore } from '../io/file-store';
import { ProgressMeter, type Progress, type ProgressListener } from '../io/progress';
import { presetById } from './presets';

export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
}

export interface SourceCallOptions {
  signal?: AbortSignal;
}

export interface OpenOptions extends SourceCallOptions {
  /** Download progress of this file (remote sources only). */
  onProgress?: ProgressListener;
}

/** A set of named files: `config.json`, `model.safetensors`, `tokenizer.json`, ... */
export interface ModelSource {
  /** Where the files come from, for messages: a path, a URL or `hf://repo@revision`. */
  readonly description: string;
  /** True when files must be downloaded before they can be read. */
  readonly remote: boolean;
  has(name: string, opts?: SourceCallOptions): Promise<boolean>;
  /** Size in bytes, or null when the server does not say. */
  size(name: string, opts?: SourceCallOptions): Promise<number | null>;
  /** Bytes already available locally (cached or partial), for resumed-progress figures. */
  cachedBytes?(name: string): Promise<number>;
  json<T = unknown>(name: string, opts?: SourceCallOptions): Promise<T>;
  /** Random access to a file; a remote file is downloaded into the cache first. */
  open(name: string, opts?: OpenOptions): Promise<ByteSource>;
  /** Drop a cached copy (e.g. a file found truncated), so the next load downloads it again. */
  evict?(name: string): Promise<void>;
  /** Set when the model is this one GGUF file of the folder (gguf/source.ts ggufModelSource). */
  readonly ggufFile?: string;
}

/** Refuse names that could escape a folder or cache (they come from untrusted index files). */
export function checkFileName(name: string): void {
  const segs = name.split('/');
  if (!name || name.includes('\\') || name.includes('\0') || segs.some((s) => s === '' || s === '.' || s === '..'))
    throw new ModelSourceError(`"${name}" is not a valid file name inside a model folder`);
}

const MAX_JSON_BYTES = 256 * 1024 * 1024;

/** Read a whole (small) file and parse it as JSON, naming the file on failure. */
export async function readJson<T>(src: ByteSource): Promise<T> {
  if (src.size > MAX_JSON_BYTES) throw new ModelSourceError(`${src.name}: ${src.size} bytes is too large for a JSON file`);
  const text = new TextDecoder().decode(await src.read(0, src.size));
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new ModelSourceError(`${src.name}: not valid JSON (${(e as Error).message})`);
  }
}

// ---- in-memory / browser files ----------------------------------------------------------

/** A source over files already at hand: browser `File`s (dropped or picked), Blobs, bytes. */
export function blobsSource(description: string, files: ReadonlyMap<string, Blob>): ModelSource {
  const get = (name: string): Blob => {
    checkFileName(name);
    const f = files.get(name);
    if (!f) throw new ModelSourceError(`${description}: no file named ${name}`);
    return f;
  };
  return {
    description,
    remote: false,
    async has(name) {
      checkFileName(name);
      return files.has(name);
    },
    async size(name) {
      return get(name).size;
    },
    async json<T>(name: string) {
      return readJson<T>(blobSource(name, get(name)));
    },
    async open(name) {
      return blobSource(name, get(name));
    },
  };
}

// ---- HTTP(S) and the Hugging Face Hub ---------------------------------------------------

export const HF_ENDPOINT = 'https://huggingface.co';

export type ModelLocation =
  | { kind: 'hf'; repo: string; revision: string }
  | { kind: 'url'; url: string };

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;

/**
 * Parse `hf://org/name[@revision]`, a bare repo id `org/name[@revision]`, a Hub page URL
 * (`https://huggingface.co/org/name[/tree/rev]`), any other http(s) base URL, or a preset alias
 * (presets.ts). Returns null for anything else (e.g. a local path).
 */
export function parseModelLocation(spec: string): ModelLocation | null {
  const s = spec.trim();
  const repoAt = (text: string): ModelLocation | null => {
    const at = text.indexOf('@');
    const repo = (at < 0 ? text : text.slice(0, at)).replace(/\/+$/, '');
    const revision = at < 0 ? 'main' : text.slice(at + 1);
    return REPO_ID.test(repo) && revision ? { kind: 'hf', repo, revision } : null;
  };
  if (s.startsWith('hf://')) return repoAt(s.slice(5));
  if (/^https?:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return null;
    }
    if (u.hostname === 'huggingface.co' || u.hostname === 'www.huggingface.co') {
      const parts = u.pathname.split('/').filter(Boolean);
      if (parts.length === 2) return { kind: 'hf', repo: parts.join('/'), revision: 'main' };
      if (parts.length >= 4 && (parts[2] === 'tree' || parts[2] === 'resolve'))
        return { kind: 'hf', repo: parts.slice(0, 2).join('/'), revision: decodeURIComponent(parts[3]!) };
    }
    return { kind: 'url', url: s };
  }
  if (s.includes('/')) return repoAt(s);
  // A preset alias (`qwen2.5-0.5b`, presets.ts) is its Hub repo.
  const preset = presetById(s);
  return preset ? { kind: 'hf', repo: preset.repo, revision: preset.revision } : null;
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`, as the Hub serves raw files. */
export function hfFileUrl(repo: string, revision: string, file: string, endpoint = HF_ENDPOINT): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint.replace(/\/+$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/**
 * A folder name for a model's cache: `org--name@revision` for the Hub (prefixed with the host
 * when the endpoint is not huggingface.co), the URL's host and path for other servers.
 */
export function modelCacheId(loc: ModelLocation, endpoint = HF_ENDPOINT): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._@-]+/g, '_').replace(/^[._]+|_+$/g, '');
  if (loc.kind === 'hf') {
    const host = new URL(endpoint).host;
    const id = `${loc.repo.replace('/', '--')}@${loc.revision}`;
    return clean(host === 'huggingface.co' ? id : `${host}_${id}`);
  }
  const u = new URL(loc.url);
  return clean(`${u.host}${u.pathname}`);
}

export interface HttpSourceOptions {
  /** The cache files are downloaded into and read from. */
  store: ReadableFileStore;
  /** Hugging Face access token (sent as `Authorization: Bearer …`), for gated or private repos. */
  token?: string;
  fetchImpl?: typeof fetch;
  /** Reconnects after a dropped connection, per file. */
  maxRetries?: number;
}

interface Probe {
  status: number;
  size: number | null;
}

// Negative answers (404) are cached too, so a fully cached model loads without the network.
const ABSENT = '.absent/';

/** Files under a base URL, downloaded into a cache store on first use. */
export class HttpModelSource implements ModelSource {
  readonly remote = true;
  private readonly probes = new Map<string, Promise<Probe>>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(
    readonly description: string,
    readonly urlFor: (name: string) => string,
    readonly options: HttpSourceOptions,
  ) {}

  get store(): ReadableFileStore {
    return this.options.store;
  }

  private headers(): Record<string, string> {
    return this.options.token ? { Authorization: `Bearer ${this.options.token}` } : {};
  }

  private httpError(name: string, status: number): DownloadError {
    return new DownloadError(describeHttpError(this.urlFor(name), status, Boolean(this.options.token)), status);
  }

  private fetch(url: string, init: RequestInit): Promise<Response> {
    return (this.options.fetchImpl ?? fetch)(url, init);
  }

  /** HEAD the file (or GET its first byte where HEAD is refused): its status and size. */
  private probe(name: string, signal?: AbortSignal): Promise<Probe> {
    let p = this.probes.get(name);
    if (!p) {
      p = this.doProbe(name, signal);
      this.probes.set(name, p);
      p.catch(() => this.probes.delete(name));
    }
    return p;
  }

  private async doProbe(name: string, signal?: AbortSignal): Promise<Probe> {
    const url = this.urlFor(name);
    for (let attempt = 0; ; attempt++) {
      try {
        let res = await this.fetch(url, { method: 'HEAD', headers: this.headers(), signal });
        if (res.status === 405 || res.status === 501) {
          res = await this.fetch(url, { headers: { ...this.headers(), Range: 'bytes=0-0' }, signal });
          await res.body?.cancel();
          const m = /\/(\d+)\s*$/.exec(res.headers.get('Content-Range') ?? '');
          return { status: res.status, size: m ? Number(m[1]) : null };
        }
        const len = res.headers.get('Content-Length') ?? res.headers.get('X-Linked-Size');
        return { status: res.status, size: len !== null && res.ok ? Number(len) : null };
      } catch (e) {
        if (signal?.aborted || attempt >= 2) throw new DownloadError(`${url}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 300 * 2 ** attempt));
      }
    }
  }

  async has(name: string, opts: SourceCallOptions = {}): Promise<boolean> {
    checkFileName(name);
    if (await this.store.isComplete(name)) return true;
    if (await this.store.isComplete(ABSENT + name)) return false;
    const { status } = await this.probe(name, opts.signal);
    if (status >= 200 && status < 300) return true;
    if (status === 404) {
      await this.store.markComplete(ABSENT + name);
      return false;
    }
    throw this.httpError(name, status);
  }

  async size(name: string, opts: SourceCallOptions = {}): Promise<number | null> {
    checkFileName(name);
    if (await this.store.isComplete(name)) return this.store.partialSize(name);
    const { status, size } = await this.probe(name, opts.signal);
    if (status === 404 || status === 401 || status === 403) throw this.httpError(name, status);
    return size;
  }

  cachedBytes(name: string): Promise<number> {
    return this.store.partialSize(name);
  }

  async json<T = unknown>(name: string, opts: SourceCallOptions = {}): Promise<T> {
    return readJson<T>(await this.open(name, opts));
  }

  async open(name: string, opts: OpenOptions = {}): Promise<ByteSource> {
    checkFileName(name);
    let p = this.inflight.get(name);
    if (!p) {
      p = this.fetchIntoStore(name, opts).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    await p;
    return this.store.source(name);
  }

  async evict(name: string): Promise<void> {
    await this.store.remove(name);
  }

  private async fetchIntoStore(name: string, opts: OpenOptions): Promise<void> {
    if (await this.store.isComplete(name)) return;
    const url = this.urlFor(name);
    if (name.endsWith('.json')) {
      // Small files: one request, read whole (servers may compress them, so Content-Length and
      // Range cannot be trusted), then cached like the rest.
      let res: Response;
      try {
        res = await this.fetch(url, { headers: this.headers(), signal: opts.signal });
      } catch (e) {
        throw new DownloadError(`${url}: ${(e as Error).message}`);
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw this.httpError(name, res.status);
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      await this.store.reset(name);
      await this.store.append(name, bytes);
      await this.store.markComplete(name);
      return;
    }
    await download({
      url,
      key: name,
      store: this.store,
      headers: this.headers(),
      onProgress: opts.onProgress,
      signal: opts.signal,
      maxRetries: this.options.maxRetries,
      fetchImpl: this.options.fetchImpl,
    });
  }
}

/** Files under any http(s) base URL (`{base}/config.json`, ...). */
export function httpSource(baseUrl: string, options: HttpSourceOptions): HttpModelSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return new HttpModelSource(baseUrl, (name) => new URL(name.split('/').map(encodeURIComponent).join('/'), base).href, options);
}

export interface HubSourceOptions extends HttpSourceOptions {
  revision?: string;
  /** The Hub's address; tests point it at a local server. */
  endpoint?: string;
}

/** A Hugging Face Hub repo at a revision (branch, tag or commit). */
export function hubSource(repo: string, options: HubSourceOptions): HttpModelSource {
  const revision = options.revision ?? 'main';
  const endpoint = options.endpoint ?? HF_ENDPOINT;
  return new HttpModelSource(`hf://${repo}@${revision}`, (name) => hfFileUrl(repo, revision, name, endpoint), options);
}

/** The source for a parsed remote location, given the store for its cache. */
export function remoteSource(loc: ModelLocation, options: HubSourceOptions): HttpModelSource {
  return loc.kind === 'hf' ? hubSource(loc.repo, { ...options, revision: loc.revision }) : httpSource(loc.url, options);
}

// ---- fetching a set of files with overall progress --------------------------------------

export interface FetchProgress {
  /** The file moving now: bytes, rate and ETA. */
  file: Progress;
  /** All the files together. */
  overall: Progress;
}

/**
 * Make `names` readable: download the ones not cached yet, one after another, reporting each
 * file's and the overall bytes, rate and ETA. Local sources just open the files.
 */
export async function fetchFiles(
  source: ModelSource,
  names: readonly string[],
  opts: { onProgress?: (p: FetchProgress) => void; signal?: AbortSignal } = {},
): Promise<ByteSource[]> {
  if (!source.remote) return Promise.all(names.map((n) => source.open(n, { signal: opts.signal })));
  const sizes: (number | null)[] = [];
  let cached = 0;
  for (const n of names) {
    sizes.push(await source.size(n, { signal: opts.signal }));
    cached += (await source.cachedBytes?.(n)) ?? 0;
  }
  const total = sizes.every((s) => s !== null) ? sizes.reduce<number>((a, b) => a + b!, 0) : null;
  const overall = new ProgressMeter('download', total, cached);
  let done = 0;
  const out: ByteSource[] = [];
  for (const name of names) {
    const src = await source.open(name, {
      signal: opts.signal,
      onProgress: (file) => opts.onProgress?.({ file, overall: overall.report(done + file.loaded) }),
    });
    done += src.size;
    const file = new ProgressMeter(name, src.size, src.size).report(src.size);
    opts.onProgress?.({ file, overall: overall.report(done) });
    out.push(src);
  }
  return out;
}
