// Node EvalStore: an evaluation folder holding
//   results.jsonl   one EvalResult per line, appended (and fdatasync'ed) the moment it exists; the
//                   latest line of a key counts; a torn last line from a killed process is cut off
//                   on open (kept in results.jsonl.torn), as the data pipeline's run store does
//   eval-run.json   the settings the results were made with (EvalRunMeta), written once
import { open, readFile, rename, writeFile, mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { loadJsonl, type FileRecovery } from '../data/store-jsonl';
import type { EvalResult, EvalRunMeta, EvalStore } from './store';

export class JsonlEvalStore implements EvalStore {
  static readonly RESULTS = 'results.jsonl';
  static readonly RUN = 'eval-run.json';

  private readonly results = new Map<string, EvalResult>();
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly fh: FileHandle,
    /** What opening found wrong with results.jsonl (nothing, normally). */
    readonly recovery: FileRecovery,
  ) {}

  /** Whether `dir` already holds an evaluation's results. */
  static async exists(dir: string): Promise<boolean> {
    return (await readFile(join(dir, JsonlEvalStore.RUN)).then(() => true, () => false)) || (await readFile(join(dir, JsonlEvalStore.RESULTS)).then((b) => b.length > 0, () => false));
  }

  static async open(dir: string): Promise<JsonlEvalStore> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, JsonlEvalStore.RESULTS);
    const loaded = await loadJsonl<EvalResult>(path, JsonlEvalStore.RESULTS);
    const store = new JsonlEvalStore(dir, await open(path, 'a'), loaded.recovery);
    for (const r of loaded.records) store.results.set(r.key, r);
    return store;
  }

  async readRun(): Promise<EvalRunMeta | null> {
    try {
      return JSON.parse(await readFile(join(this.dir, JsonlEvalStore.RUN), 'utf8')) as EvalRunMeta;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new Error(`${join(this.dir, JsonlEvalStore.RUN)}: unreadable (${(e as Error).message}); remove it to start the evaluation again`, { cause: e });
    }
  }

  async writeRun(meta: EvalRunMeta): Promise<void> {
    const path = join(this.dir, JsonlEvalStore.RUN);
    await writeFile(`${path}.tmp`, JSON.stringify(meta, null, 2) + '\n');
    await rename(`${path}.tmp`, path);
  }

  async list(): Promise<EvalResult[]> {
    return [...this.results.values()];
  }

  /** Writes are serialized, so concurrent puts never interleave bytes. */
  put(result: EvalResult): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.dir}: the evaluation store is closed`));
    const line = Buffer.from(JSON.stringify(result) + '\n', 'utf8');
    const next = this.chain.then(async () => {
      await this.fh.appendFile(line);
      await this.fh.datasync();
      this.results.set(result.key, result);
    });
    this.chain = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.chain;
    this.closed = true;
    await this.fh.close();
  }
}
