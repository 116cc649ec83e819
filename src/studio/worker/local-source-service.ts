// Local sources in the studio (data/local-source.ts): the Data page's pipeline runs on the page,
// but a model generates where the GPU is, here in the engine worker. So the page hands each local
// source's job to collectLocal: this worker's LocalModelRunner opens the model (a Hub repo, a URL
// or a preset alias, downloaded into the model cache), collectLocalSource generates every pending
// item into the same IndexedDB run store the page reads (stored the moment its row finishes, so a
// reloaded tab resumes without generating an item twice), releases the model's GPU memory, and
// the job's counts and progress go back to the page after every change.
//
// Beside the working model: a local source loads onto the same GPU context as the Model page's
// model (and a local reward model), which stay loaded: nothing of the user's is released behind
// their back. The generation plan is checked against the GPU's buffer limits before any weight;
// a source that still does not fit fails to load and is skipped with the reason (free the working
// model on the Model page to give it room). The pool's live bytes before the load, with it loaded,
// and after the release are reported per source (the progress UI shows them).

import { collectLocalSource, inspectModelSource, loadModelSource, type LocalItem, type LocalModel, type LocalModelInfo, type LocalModelRunner, type LocalSource, type LocalSourceProgress } from '../../data/local-source';
import { DecayingRate } from '../../data/rate';
import { DexieRunStore } from '../../data/store-dexie';
import type { GpuContext } from '../../gpu/context';
import type { ModelSource } from '../../model/source';
import { droppedFilesSource, openRemoteModelSource, type PathedFile } from '../../model/source-browser';
import { gpuContext } from './session';

/** The worker's runner: models from a Hub repo, a URL or a preset alias, onto the worker's GPU context. */
class WorkerLocalRunner implements LocalModelRunner {
  private sources = new Map<string, ModelSource>();

  context(): Promise<GpuContext> {
    return gpuContext();
  }

  /** Unknown in a browser (WebGPU does not say): only the buffer limits are checked. */
  memoryBytes(): number | null {
    return null;
  }

  /** A folder chosen on the page (`folder:<name>`): its files arrive with each job. */
  useFolder(spec: string, files: readonly PathedFile[]): void {
    this.sources.set(spec, droppedFilesSource(files, spec.slice(7)));
  }

  private async source(spec: string): Promise<ModelSource> {
    if (spec.startsWith('folder:') && !this.sources.has(spec))
      throw new Error(`the folder ${spec.slice(7)} was not given to this tab: choose it again on the Sources page (“Choose a folder…”)`);
    let s = this.sources.get(spec);
    if (!s) this.sources.set(spec, (s = await openRemoteModelSource(spec.trim())));
    return s;
  }

  async inspect(spec: string, o: { signal?: AbortSignal } = {}): Promise<LocalModelInfo> {
    const source = await this.source(spec);
    return inspectModelSource(source, o);
  }

  async load(spec: string, o: { signal?: AbortSignal } = {}): Promise<LocalModel> {
    return loadModelSource(await this.context(), await this.source(spec), o);
  }
}

/** One local source's job as the page sends it (collect.ts's LocalSourceJob, less what cannot cross). */
export interface LocalCollectRequest {
  jobId: number;
  runId: string;
  source: LocalSource;
  /** The files of a folder chosen on the page, for a `folder:<name>` source. */
  folderFiles?: PathedFile[];
  items: LocalItem[];
  dateString?: string;
  maxRows?: number;
}

/** What the page copies into its job after every change. */
export interface LocalCollectUpdate {
  counts: { done: number; collected: number; failed: number; inFlight: number; promptTokens: number; completionTokens: number };
  progress: LocalSourceProgress;
  /** When generation started (the page starts its item rate there), once it has. */
  rateStart: number | null;
  /** Items stored so far in this job, with when (the page's rate adds them). */
  storedAt: number[];
}

/** A rate that also notes when each item was added, for the page's copy of it. */
class ReportingRate extends DecayingRate {
  constructor(at: number, private readonly log: number[]) {
    super(at);
  }
  override add(n = 1, now: number = Date.now()): void {
    for (let k = 0; k < n; k++) this.log.push(now);
    super.add(n, now);
  }
}

const runner = new WorkerLocalRunner();
const jobs = new Map<number, AbortController>();

export const localSourceService = {
  /**
   * Generates and stores every item of one local source (see the file comment). `onUpdate` gets
   * the job's state after every change; resolves when the source is done, skipped or cancelled.
   */
  async collectLocal(req: LocalCollectRequest, onUpdate: (u: LocalCollectUpdate) => void): Promise<LocalCollectUpdate> {
    const stop = new AbortController();
    jobs.set(req.jobId, stop);
    if (req.folderFiles) runner.useFolder(req.source.model, req.folderFiles);
    const store = new DexieRunStore(req.runId);
    const counts = { done: 0, collected: 0, failed: 0, inFlight: 0, promptTokens: 0, completionTokens: 0 };
    const progress: LocalSourceProgress = { state: 'waiting', generated: 0, tokens: 0, tokensPerSecond: 0 };
    let rateStart: number | null = null;
    const storedAt: number[] = [];
    const snapshot = (): LocalCollectUpdate => ({
      counts: { ...counts },
      progress: { ...progress, ...(progress.gpu ? { gpu: { ...progress.gpu } } : {}), ...(progress.sampling ? { sampling: { ...progress.sampling } } : {}) },
      rateStart,
      storedAt: storedAt.splice(0),
    });
    try {
      await collectLocalSource({
        source: req.source,
        items: req.items,
        local: { runner, ...(req.dateString !== undefined ? { dateString: req.dateString } : {}), ...(req.maxRows !== undefined ? { maxRows: req.maxRows } : {}) },
        store,
        signal: stop.signal,
        counts,
        progress,
        putError: (item, message) =>
          store.putError({ key: item.key, sourceId: req.source.id, promptId: item.prompt.id, sampleIndex: item.sampleIndex, kind: 'config', message, attempts: 1, createdAt: new Date().toISOString() }),
        itemRate: (at) => {
          rateStart = at;
          // collectLocalSource adds each stored item here; the page's own rate is fed from storedAt.
          return new ReportingRate(at, storedAt);
        },
        emit: () => onUpdate(snapshot()),
      });
      return snapshot();
    } finally {
      jobs.delete(req.jobId);
    }
  },

  /** Stops a collectLocal job (the page's run was stopped): unfinished items stay pending. */
  cancelLocal(jobId: number): void {
    jobs.get(jobId)?.abort();
  },
};
