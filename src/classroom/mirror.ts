// The classroom's model mirror: Hugging Face Hub-compatible file routes over the instructor's model
// folders and the CLI's model cache, so thirty laptops download from the instructor's machine (which
// downloaded from the Hub once) and not over the venue's Wi-Fi to the Internet.
//
//   GET|HEAD /{repo}/resolve/{revision}/{file}    the file: Range (one range; bytes=a-b, a-, -n),
//                                                 If-Range, ETag / If-None-Match, Accept-Ranges
//   GET      /api/models/{repo}[/revision/{rev}]  {id, sha, siblings: [{rfilename, size}]}
//
// Only the files listed when the mirror starts are served (no path ever reaches the disk from a
// URL), never partial downloads (*.part) or the cache's bookkeeping (dot folders). Every byte
// written is counted per student (the anonymous per-browser id) and file.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { readModelMeta, weightFiles } from '../model/load';
import { fetchFiles, ModelSourceError, parseModelLocation } from '../model/source';
import { cacheDirOf, openModelSource } from '../model/source-node';

export interface MirrorFile {
  name: string;
  size: number;
  path: string;
  etag: string;
}

export interface MirrorModel {
  /** The Hub repo id students load (`org/name`). */
  repo: string;
  revision: string;
  /** Where the files are. */
  dir: string;
  files: MirrorFile[];
  bytes: number;
}

const REPO_PART = /[^A-Za-z0-9._-]+/g;

/** Every regular file under `dir` (relative names with '/'), leaving out *.part and dot entries. */
async function listFiles(dir: string): Promise<MirrorFile[]> {
  const out: MirrorFile[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith('.') || e.name.endsWith('.part')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        const s = await stat(p);
        // A strong validator without hashing gigabytes at start: size and modification time.
        out.push({ name: relative(dir, p).split(sep).join('/'), size: s.size, path: p, etag: `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"` });
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * A `--model` of the classroom: a folder (served as `classroom/<folder name>`), or a Hub repo /
 * preset alias, downloaded once into the CLI's model cache (what loading it needs: config,
 * tokenizer, weights) and served from there under its own repo id and revision.
 */
export async function prepareMirrorModel(spec: string, o: { onProgress?: (line: string) => void } = {}): Promise<MirrorModel> {
  const source = await openModelSource(spec);
  let dir: string;
  let repo: string;
  let revision = 'main';
  if (!source.remote) {
    dir = resolve(spec.startsWith('file://') ? new URL(spec).pathname : spec);
    repo = `classroom/${basename(dir).replace(REPO_PART, '-').replace(/^[-.]+/, '') || 'model'}`;
    if (!(await source.has('config.json'))) throw new ModelSourceError(`--model ${spec}: ${dir} has no config.json; give a model folder (config.json, weights, tokenizer)`);
  } else {
    const loc = parseModelLocation(spec);
    if (!loc || loc.kind !== 'hf') throw new ModelSourceError(`--model ${spec}: the classroom mirrors model folders and Hub repos (org/name[@revision]) or presets; download an http(s) model into a folder first`);
    repo = loc.repo;
    revision = loc.revision;
    // What a load reads: the JSON files, then the weights; everything lands in the cache once.
    const meta = await readModelMeta(source);
    const { files } = await weightFiles(source, meta.config);
    let last = 0;
    await fetchFiles(source, files, {
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < 2000 && p.overall.loaded !== p.overall.total) return;
        last = now;
        o.onProgress?.(`${spec}: ${(p.overall.loaded / 1e6).toFixed(0)} of ${p.overall.total === null ? '?' : (p.overall.total / 1e6).toFixed(0)} MB downloaded`);
      },
    });
    dir = cacheDirOf(source)!;
  }
  const files = await listFiles(dir);
  return { repo, revision, dir, files, bytes: files.reduce((s, f) => s + f.size, 0) };
}

/** A mirror model from a folder whose files are already listed (tests, the bench). */
export async function folderMirrorModel(dir: string, repo: string, revision = 'main'): Promise<MirrorModel> {
  const files = await listFiles(resolve(dir));
  return { repo, revision, dir: resolve(dir), files, bytes: files.reduce((s, f) => s + f.size, 0) };
}

/** Bytes served, by student and by `repo/file`. */
export interface MirrorStats {
  bytes: number;
  requests: number;
  byStudent: Record<string, Record<string, number>>;
}

type Range = { start: number; end: number } | 'unsatisfiable' | null;

/** One `bytes=` range of a file of `size` bytes; null when absent or not one we serve (then the whole file). */
export function parseRange(header: string | undefined, size: number): Range {
  if (!header) return null;
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // several ranges or another unit: the whole file (RFC 9110 allows it)
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

export class ModelMirror {
  private readonly byRepo = new Map<string, MirrorModel>();
  private readonly counts = new Map<string, Map<string, number>>();
  private bytes = 0;
  private requests = 0;

  constructor(readonly models: readonly MirrorModel[]) {
    for (const m of models) this.byRepo.set(m.repo, m);
  }

  stats(): MirrorStats {
    const byStudent: MirrorStats['byStudent'] = {};
    for (const [s, files] of this.counts) byStudent[s] = Object.fromEntries(files);
    return { bytes: this.bytes, requests: this.requests, byStudent };
  }

  private count(student: string, key: string, n: number): void {
    let m = this.counts.get(student);
    if (!m) this.counts.set(student, (m = new Map()));
    m.set(key, (m.get(key) ?? 0) + n);
    this.bytes += n;
  }

  private find(repo: string, revision: string): MirrorModel | undefined {
    const m = this.byRepo.get(repo);
    // `main` always names what is served, as does the revision the instructor gave.
    return m && (revision === m.revision || revision === 'main') ? m : undefined;
  }

  /** Answers the request when `path` is a mirror route; false otherwise (the caller goes on). */
  async handle(req: IncomingMessage, res: ServerResponse, path: string, student: string, notFound: (message: string) => void): Promise<boolean> {
    const api = /^\/api\/models\/(.+?)(?:\/revision\/([^/]+))?\/?$/.exec(path);
    if (api && (req.method === 'GET' || req.method === 'HEAD')) {
      const repo = decodeURIComponent(api[1]!);
      const m = this.find(repo, api[2] ? decodeURIComponent(api[2]) : 'main');
      if (!m) {
        notFound(`${repo}: this classroom mirrors ${this.list()}`);
        return true;
      }
      const body = JSON.stringify({ id: m.repo, modelId: m.repo, sha: m.revision, siblings: m.files.map((f) => ({ rfilename: f.name, size: f.size })) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    }
    const at = path.indexOf('/resolve/');
    if (at <= 0) return false;
    const repo = decodeURIComponent(path.slice(1, at));
    if (!this.byRepo.has(repo)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const rest = path.slice(at + '/resolve/'.length);
    const slash = rest.indexOf('/');
    const revision = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash));
    const name = slash < 0 ? '' : rest.slice(slash + 1).split('/').map(decodeURIComponent).join('/');
    const m = this.find(repo, revision);
    if (!m) {
      notFound(`${repo}: revision "${revision}" is not mirrored here (use "main" or "${this.byRepo.get(repo)!.revision}")`);
      return true;
    }
    const file = m.files.find((f) => f.name === name);
    if (!file) {
      // The studio probes optional files (generation_config.json, chat_template.jinja…): a plain 404.
      notFound(`${repo}: no file named ${name || '(none)'} (files: ${m.files.map((f) => f.name).join(', ')})`);
      return true;
    }
    await this.sendFile(req, res, file, student, `${repo}/${file.name}`);
    return true;
  }

  private list(): string {
    return [...this.byRepo.keys()].join(', ') || 'no model';
  }

  /** Sends a file with Range and ETag handling, counting the bytes written for `student`. */
  async sendFile(req: IncomingMessage, res: ServerResponse, file: MirrorFile, student: string, key: string): Promise<void> {
    this.requests++;
    await sendFile(req, res, file, { 'content-type': 'application/octet-stream', 'x-repo-commit': 'classroom' }, (n) => this.count(student, key, n));
  }
}

/** Serves a file: ETag/If-None-Match, one Range (If-Range honoured), HEAD; `onBytes` gets each chunk's size. */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  file: { path: string; size: number; etag: string },
  headers: Record<string, string>,
  onBytes?: (n: number) => void,
): Promise<void> {
  const base = { ...headers, etag: file.etag, 'accept-ranges': 'bytes' };
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === file.etag)) {
    res.writeHead(304, base);
    res.end();
    return;
  }
  const ifRange = req.headers['if-range'];
  let range = parseRange(req.headers.range, file.size);
  if (ifRange && ifRange !== file.etag) range = null; // the client's copy is of another version: send it all
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...base, 'content-range': `bytes */${file.size}` });
    res.end();
    return;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? file.size - 1;
  const length = file.size === 0 ? 0 : end - start + 1;
  res.writeHead(range ? 206 : 200, { ...base, 'content-length': String(length), ...(range ? { 'content-range': `bytes ${start}-${end}/${file.size}` } : {}) });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file.path, { start, end });
  if (onBytes) stream.on('data', (c) => onBytes(c.length));
  try {
    await pipeline(stream, res);
  } catch {
    // The client went away mid-file: what was written was counted, nothing else to do.
  }
}
