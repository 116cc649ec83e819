// Where a GGUF model comes from, written as one --model value (no extra flag):
//   path/to/model.gguf                                   a local file
//   https://host/path/model.gguf                         any http(s) URL (Range resume, cached)
//   https://huggingface.co/org/repo/resolve/main/x.gguf  a Hub file URL (also /blob/)
//   hf://org/repo[@revision]/path/x.gguf                 a Hub repo + file name
//   org/repo[@revision]/path/x.gguf                      the same, without the scheme
// The source is the folder (or repo) that holds the file, so a tokenizer.json beside it is found,
// and the cache is that folder's, as for safetensors.

import { checkFileName, type ModelLocation, type ModelSource } from '../source';

export type GgufLocation =
  | { kind: 'local'; path: string }
  | { kind: 'remote'; location: ModelLocation; file: string };

const REPO_PART = /^[A-Za-z0-9][\w.-]*$/;

/** The GGUF file a --model value names, or null when it names no .gguf file. */
export function parseGgufSpec(spec: string): GgufLocation | null {
  const s = spec.trim();
  if (!/\.gguf$/i.test(s)) return null;
  if (/^https?:\/\//i.test(s)) {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      return null;
    }
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if ((u.hostname === 'huggingface.co' || u.hostname === 'www.huggingface.co') && parts.length >= 5 && (parts[2] === 'resolve' || parts[2] === 'blob'))
      return { kind: 'remote', location: { kind: 'hf', repo: parts.slice(0, 2).join('/'), revision: parts[3]! }, file: parts.slice(4).join('/') };
    const at = u.href.lastIndexOf('/');
    return { kind: 'remote', location: { kind: 'url', url: u.href.slice(0, at + 1) }, file: decodeURIComponent(u.href.slice(at + 1)) };
  }
  const hub = s.startsWith('hf://') ? s.slice(5) : null;
  const text = hub ?? s;
  const parts = text.split('/');
  if (parts.length >= 3 && (hub !== null || !s.startsWith('.'))) {
    const [org, nameRev] = parts as [string, string];
    const at = nameRev.indexOf('@');
    const name = at < 0 ? nameRev : nameRev.slice(0, at);
    const revision = at < 0 ? 'main' : nameRev.slice(at + 1);
    if (REPO_PART.test(org) && REPO_PART.test(name) && revision)
      return { kind: 'remote', location: { kind: 'hf', repo: `${org}/${name}`, revision }, file: parts.slice(2).join('/') };
  }
  return hub !== null ? null : { kind: 'local', path: s };
}

/**
 * A model source that is one GGUF file of `source` (its folder or repo): loadModel and
 * readModelMeta see `ggufFile` and read that file instead of config.json + safetensors.
 */
export function ggufModelSource<S extends ModelSource>(source: S, file: string): S & { ggufFile: string } {
  checkFileName(file);
  const description = `${source.description.replace(/\/+$/, '')}/${file}`;
  return new Proxy(source, {
    get(target, prop) {
      if (prop === 'ggufFile') return file;
      if (prop === 'description') return description;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as S & { ggufFile: string };
}
