// Model sources in Node: a local folder, or a remote one (http(s) URL, Hugging Face repo)
// downloaded into a cache folder, by default ~/.cache/fuse-studio/models/<model id>/.

import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NodeFileStore, nodeFileSource } from '../io/node-files';
import {
  checkFileName,
  HF_ENDPOINT,
  type HttpModelSource,
  modelCacheId,
  type ModelLocation,
  ModelSourceError,
  parseModelLocation,
  remoteSource,
  type ModelSource,
} from './source';
import { ggufModelSource, parseGgufSpec } from './gguf/source';
import { PRESET_IDS } from './presets';

/** A model folder on disk. */
export function localFolderSource(dir: string): ModelSource {
  const root = resolve(dir);
  const path = (name: string) => {
    checkFileName(name);
    return join(root, name);
  };
  const fileSize = async (name: string): Promise<number | null> => {
    try {
      const s = await stat(path(name));
      return s.isFile() ? s.size : null;
    } catch {
      return null;
    }
  };
  const missing = (name: string) => new ModelSourceError(`${root}: no file named ${name}`);
  return {
    description: root,
    remote: false,
    async has(name) {
      return (await fileSize(name)) !== null;
    },
    async size(name) {
      const n = await fileSize(name);
      if (n === null) throw missing(name);
      return n;
    },
    async json<T>(name: string) {
      if ((await fileSize(name)) === null) throw missing(name);
      const text = await readFile(path(name), 'utf8');
      try {
        return JSON.parse(text) as T;
      } catch (e) {
        throw new ModelSourceError(`${path(name)}: not valid JSON (${(e as Error).message})`);
      }
    },
    async open(name) {
      if ((await fileSize(name)) === null) throw missing(name);
      return nodeFileSource(path(name), name);
    },
  };
}

/** `$FUSE_STUDIO_CACHE`, else `$XDG_CACHE_HOME/fuse-studio/models`, else `~/.cache/fuse-studio/models`. */
export function defaultModelCacheRoot(): string {
  if (process.env.FUSE_STUDIO_CACHE) return resolve(process.env.FUSE_STUDIO_CACHE);
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fuse-studio', 'models');
}

export interface NodeSourceOptions {
  /** Folder holding one cache folder per model (default: defaultModelCacheRoot()). */
  cacheRoot?: string;
  /** Hugging Face token; defaults to $HF_TOKEN. Pass '' to send none. */
  token?: string;
  /** Hub address; defaults to $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  fetchImpl?: typeof fetch;
  maxRetries?: number;
}

/**
 * Open `spec` as a model source: an existing folder (or file:// URL), a .gguf file (a path, an
 * http(s) URL, or a Hub repo + file: gguf/source.ts), else `hf://repo[@rev]`,
 * a bare repo id `org/name[@rev]`, a Hub page URL, an http(s) base URL, or a preset alias
 * (presets.ts) — the Hub repo it names.
 */
export async function openModelSource(spec: string, opts: NodeSourceOptions = {}): Promise<ModelSource> {
  const local = spec.startsWith('file://') ? fileURLToPath(spec) : spec;
  const isDir = await stat(local).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (isDir) return localFolderSource(local);
  // One .gguf file: a local path, a URL, or a Hub repo + file (gguf/source.ts).
  const gguf = parseGgufSpec(local);
  if (gguf) {
    const isFile = await stat(local).then((s) => s.isFile(), () => false);
    if (isFile || gguf.kind === 'local') {
      if (!isFile) throw new ModelSourceError(`${resolve(local)}: no such GGUF file`);
      return ggufModelSource(localFolderSource(dirname(resolve(local))), basename(local));
    }
    return ggufModelSource(openRemote(gguf.location, opts), gguf.file);
  }
  const loc = parseModelLocation(spec);
  if (!loc)
    throw new ModelSourceError(
      `"${spec}" is not a folder, an http(s) URL, a Hugging Face repo id (org/name, hf://org/name@revision) or a preset (${PRESET_IDS.join(', ')}; \`fuse-studio models\` lists them)`,
    );
  return openRemote(loc, opts);
}

/** A remote location's source, cached under the cache root. */
function openRemote(loc: ModelLocation, opts: NodeSourceOptions): HttpModelSource {
  const endpoint = opts.endpoint ?? process.env.HF_ENDPOINT ?? HF_ENDPOINT;
  const store = new NodeFileStore(join(opts.cacheRoot ?? defaultModelCacheRoot(), modelCacheId(loc, endpoint)));
  const token = opts.token ?? process.env.HF_TOKEN;
  return remoteSource(loc, {
    store,
    token: token || undefined,
    endpoint,
    fetchImpl: opts.fetchImpl,
    maxRetries: opts.maxRetries,
  });
}

/** The cache folder of a remote source opened by openModelSource (null for local ones). */
export function cacheDirOf(source: ModelSource): string | null {
  const store = (source as Partial<HttpModelSource>).store;
  return store instanceof NodeFileStore ? store.dir : null;
}
