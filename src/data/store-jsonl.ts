// Node RunStore: a run folder holding
//   responses.jsonl   one ResponseRecord per line, appended the moment it arrives
//   errors.jsonl      one ErrorRecord per line (the latest per key counts, until a response comes)
//   scores.jsonl      one ScoreRecord per line (the latest per key counts)
//   <artifact>        the run's outputs (sft.jsonl, report.json…), each replaced whole (written
//                     to a temporary file, then renamed over the old one)
// Each record is written as one buffer ending in '\n' and (by default) fdatasync'ed before `put`
// resolves. A process killed mid-write can leave a torn last line: on open, it is cut off the
// file (kept in `<file>.torn` for inspection) and reported in `recovery`, so appends start on a
// clean line. Unreadable lines elsewhere are skipped and reported, never rewritten.

import { appendFile, mkdir, open, readFile, rename, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunStore } from './store';
import type { ErrorRecord, ResponseRecord, ScoreRecord } from './types';

export interface FileRecovery {
  file: string;
  /** A partial last line (no newline, not valid JSON) was cut off. */
  tornTail: boolean;
  /** Bytes cut off with it. */
  tornBytes: number;
  /** 1-based line numbers that were not valid records (skipped). */
  corruptLines: number[];
  /** Lines whose key appeared before (skipped; the first one counts). */
  duplicateLines: number;
}

export interface JsonlStoreOptions {
  /** fdatasync after every record (default true). */
  fsync?: boolean;
}

export interface LoadedFile<T> {
  records: T[];
  recovery: FileRecovery;
}

/** Reads a JSONL file of keyed records (none when missing), cutting off a torn last line (kept in `<file>.torn`). */
export async function loadJsonl<T extends { key: string }>(path: string, name: string): Promise<LoadedFile<T>> {
  const recovery: FileRecovery = { file: name, tornTail: false, tornBytes: 0, corruptLines: [], duplicateLines: 0 };
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], recovery };
    throw e;
  }
  const lastNl = buf.lastIndexOf(0x0a);
  const tail = buf.subarray(lastNl + 1);
  let body = buf.subarray(0, lastNl + 1);
  const records: T[] = [];
  if (tail.length > 0) {
    const text = tail.toString('utf8');
    let complete: boolean;
    try {
      const v = JSON.parse(text) as T;
      complete = typeof v?.key === 'string';
    } catch {
      complete = false;
    }
    if (complete) {
      // A whole record whose newline never made it: keep it, finish the line.
      await appendFile(path, '\n');
      body = buf;
    } else {
      await appendFile(`${path}.torn`, Buffer.concat([tail, Buffer.from('\n')]));
      await truncate(path, lastNl + 1);
      recovery.tornTail = true;
      recovery.tornBytes = tail.length;
    }
  }
  const lines = body.toString('utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      const v = JSON.parse(line) as T;
      if (typeof v?.key !== 'string') throw new Error('no key');
      records.push(v);
    } catch {
      recovery.corruptLines.push(i + 1);
    }
  });
  return { records, recovery };
}

export class JsonlRunStore implements RunStore {
  private readonly responses = new Map<string, ResponseRecord>();
  private readonly errors = new Map<string, ErrorRecord>();
  private readonly scores = new Map<string, ScoreRecord>();
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly responsesFh: FileHandle,
    private readonly errorsFh: FileHandle,
    private readonly scoresFh: FileHandle,
    private readonly fsync: boolean,
    /** What opening found wrong with the files (all zero/false when they were clean). */
    readonly recovery: { responses: FileRecovery; errors: FileRecovery; scores: FileRecovery },
  ) {}

  static readonly RESPONSES = 'responses.jsonl';
  static readonly ERRORS = 'errors.jsonl';
  static readonly SCORES = 'scores.jsonl';

  /** Opens (creating if need be) the run folder `dir`, recovering from a torn last line. */
  static async open(dir: string, opts: JsonlStoreOptions = {}): Promise<JsonlRunStore> {
    await mkdir(dir, { recursive: true });
    const rPath = join(dir, JsonlRunStore.RESPONSES);
    const ePath = join(dir, JsonlRunStore.ERRORS);
    const sPath = join(dir, JsonlRunStore.SCORES);
    const r = await loadJsonl<ResponseRecord>(rPath, JsonlRunStore.RESPONSES);
    const e = await loadJsonl<ErrorRecord>(ePath, JsonlRunStore.ERRORS);
    const sc = await loadJsonl<ScoreRecord>(sPath, JsonlRunStore.SCORES);
    const store = new JsonlRunStore(dir, await open(rPath, 'a'), await open(ePath, 'a'), await open(sPath, 'a'), opts.fsync ?? true, {
      responses: r.recovery,
      errors: e.recovery,
      scores: sc.recovery,
    });
    for (const rec of r.records) {
      if (store.responses.has(rec.key)) r.recovery.duplicateLines++;
      else store.responses.set(rec.key, rec);
    }
    for (const rec of e.records) if (!store.responses.has(rec.key)) store.errors.set(rec.key, rec);
    // A key scored again (another scorer, a retried failure) appends a line: the latest counts.
    for (const rec of sc.records) store.scores.set(rec.key, rec);
    return store;
  }

  /** True when opening had to repair or skip anything. */
  get recovered(): boolean {
    const bad = (f: FileRecovery) => f.tornTail || f.corruptLines.length > 0 || f.duplicateLines > 0;
    return bad(this.recovery.responses) || bad(this.recovery.errors) || bad(this.recovery.scores);
  }

  /** Writes are serialized, so concurrent puts never interleave bytes. */
  private write(fh: FileHandle, rec: object): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.dir}: store is closed`));
    const line = Buffer.from(JSON.stringify(rec) + '\n', 'utf8');
    const next = this.chain.then(async () => {
      await fh.appendFile(line);
      if (this.fsync) await fh.datasync();
    });
    this.chain = next.catch(() => {});
    return next;
  }

  async has(key: string): Promise<boolean> {
    return this.responses.has(key);
  }

  async put(rec: ResponseRecord): Promise<boolean> {
    // Claimed before the write: a second put of the same key, even concurrent, is refused.
    if (this.responses.has(rec.key)) return false;
    this.responses.set(rec.key, rec);
    try {
      await this.write(this.responsesFh, rec);
    } catch (e) {
      this.responses.delete(rec.key);
      throw e;
    }
    this.errors.delete(rec.key);
    return true;
  }

  async putError(rec: ErrorRecord): Promise<void> {
    if (this.responses.has(rec.key)) return;
    await this.write(this.errorsFh, rec);
    this.errors.set(rec.key, rec);
  }

  async list(): Promise<ResponseRecord[]> {
    return [...this.responses.values()];
  }

  async listErrors(): Promise<ErrorRecord[]> {
    return [...this.errors.values()].filter((e) => !this.responses.has(e.key));
  }

  async putScore(rec: ScoreRecord): Promise<void> {
    await this.write(this.scoresFh, rec);
    this.scores.set(rec.key, rec);
  }

  async listScores(): Promise<ScoreRecord[]> {
    return [...this.scores.values()];
  }

  /** Writes `<dir>/<name>` whole: a temporary file renamed over the old one. */
  async writeArtifact(name: string, text: string): Promise<void> {
    const path = this.artifactPath(name);
    const tmp = `${path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(text, 'utf8');
      if (this.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  }

  async readArtifact(name: string): Promise<string | undefined> {
    try {
      return await readFile(this.artifactPath(name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  private artifactPath(name: string): string {
    if (!/^[\w][\w.-]*$/.test(name) || [JsonlRunStore.RESPONSES, JsonlRunStore.ERRORS, JsonlRunStore.SCORES].includes(name))
      throw new Error(`${this.dir}: "${name}" is not a valid artifact name`);
    return join(this.dir, name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.chain;
    this.closed = true;
    await this.responsesFh.close();
    await this.errorsFh.close();
    await this.scoresFh.close();
  }
}
