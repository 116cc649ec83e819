// Local sources on the page: the Sources page's "local models" (a preset alias, a Hub repo or a
// URL, each with its n and sampling; kept in this browser's localStorage: no keys, nothing
// secret), what the pipeline takes of them (data/local-source.ts LocalSource), and the bridge
// that runs each one's collection in the engine worker (worker/local-source-service.ts), where
// the GPU is, copying the worker's counts and progress into the page's collection as they move.

import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import { LOCAL_SOURCE_DEFAULTS, makeLocalSource, type LocalCollectOptions, type LocalSource, type LocalSourceJob } from '../data/local-source';
import type { DecayingRate } from '../data/rate';
import type { PathedFile } from '../model/source-browser';
import { RESPONSES_PER_PROMPT } from '../data/sources';
import { callback, engine } from './engine';
import type { LocalCollectUpdate } from './worker/local-source-service';

export interface LocalSourceEntry {
  id: string;
  name: string;
  /**
   * A preset alias, a Hub repo id (org/name, hf://org/name@revision), an http(s) URL of a model
   * folder, or `folder:<name>` for a folder chosen on this computer (its files live in this tab only).
   */
  model: string;
  n: number;
  max_tokens: number;
  /** Unset: the family's preset, read from the model's config when it loads. */
  temperature?: number;
  top_p?: number;
  repetition_penalty?: number;
  enabled: boolean;
}

/** The default new tokens per answer in the tab (a local model answers slowly on a small GPU). */
export const STUDIO_LOCAL_MAX_TOKENS = 512;

// Folders chosen on this computer, by their `folder:<name>` spec: a browser gives the page a
// folder's files only when the user picks it, for as long as the tab lives (a reload forgets them;
// the entry stays, asking for the folder again). They travel to the engine worker with each job.
const pickedFolders = new Map<string, PathedFile[]>();

export const isFolderSpec = (model: string): boolean => model.startsWith('folder:');

/**
 * The files of a folder chosen in this tab (`<input webkitdirectory>`), each with its path in the
 * folder (a File posted to the worker keeps its bytes and name but not its webkitRelativePath).
 */
export function pickedFolderFiles(model: string): PathedFile[] | undefined {
  return pickedFolders.get(model);
}

/** What is wrong with an entry, or ''. */
export function localSourceProblem(e: LocalSourceEntry): string {
  if (!e.name.trim()) return 'Give the source a name.';
  if (!e.model.trim()) return 'Choose a preset, or type a Hub repo (org/name) or the URL of a model folder.';
  if (isFolderSpec(e.model) && !pickedFolders.has(e.model))
    return `Choose the folder ${e.model.slice(7)} again with “Choose a folder…”: a browser gives a page a folder's files only until the tab is closed or reloaded.`;
  if (!(Number.isInteger(e.n) && e.n >= 1)) return 'Responses per prompt (n) must be a whole number, 1 or more.';
  if (!(Number.isInteger(e.max_tokens) && e.max_tokens >= 1)) return 'Max new tokens must be a whole number, 1 or more.';
  return '';
}

/** The pipeline's LocalSource for an entry: its id joins the entry's id and the model, as remote sources'. */
export function toLocalSource(e: LocalSourceEntry): LocalSource {
  return makeLocalSource({
    id: `local-${e.id}:${e.model.trim()}`,
    name: e.name.trim(),
    model: e.model.trim(),
    n: e.n,
    max_tokens: e.max_tokens,
    seed: LOCAL_SOURCE_DEFAULTS.seed,
    ...(e.temperature !== undefined ? { temperature: e.temperature } : {}),
    ...(e.top_p !== undefined ? { top_p: e.top_p } : {}),
    ...(e.repetition_penalty !== undefined ? { repetition_penalty: e.repetition_penalty } : {}),
  });
}

/** The enabled, complete local sources as the pipeline takes them. */
export function pipelineLocalSources(entries: readonly LocalSourceEntry[]): LocalSource[] {
  return entries.filter((e) => e.enabled && localSourceProblem(e) === '').map(toLocalSource);
}

interface LocalSourcesState {
  entries: LocalSourceEntry[];
  /** A new enabled entry; fields not given take the defaults (sampling unset: the family's preset). */
  add(init: { model: string; name?: string } & Partial<Omit<LocalSourceEntry, 'id' | 'enabled' | 'model' | 'name'>>): void;
  /** A local source from a folder chosen on this computer (its files), or the same folder chosen again. */
  addFolder(files: readonly File[]): void;
  update(id: string, patch: Partial<LocalSourceEntry>): void;
  remove(id: string): void;
}

export const useLocalSourcesStore = create<LocalSourcesState>()(
  persist(
    (set, get) => ({
      entries: [],
      add(init) {
        const names = get().entries.map((e) => e.name);
        const base = init.name?.trim() || init.model.trim().replace(/^hf:\/\//, '').replace(/@.*$/, '').split('/').pop() || 'Local model';
        let name = base;
        for (let k = 2; names.includes(name); k++) name = `${base} ${k}`;
        const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
        set({ entries: [...get().entries, { n: RESPONSES_PER_PROMPT.instruction, max_tokens: STUDIO_LOCAL_MAX_TOKENS, ...init, id, name, model: init.model.trim(), enabled: true }] });
      },
      addFolder(files) {
        const first = files[0];
        if (!first) throw new Error('The folder is empty: choose the folder holding config.json, the *.safetensors files and tokenizer.json.');
        const name = first.webkitRelativePath.split('/')[0] || 'folder';
        const spec = `folder:${name}`;
        pickedFolders.set(spec, files.map((file) => ({ path: file.webkitRelativePath || file.name, file })));
        // Chosen again after a reload: the entry it had stays (its answers belong to it).
        if (get().entries.some((e) => e.model === spec)) return set({ entries: [...get().entries] });
        get().add({ model: spec, name });
      },
      update(id, patch) {
        set({ entries: get().entries.map((e) => (e.id === id ? { ...e, ...patch } : e)) });
      },
      remove(id) {
        set({ entries: get().entries.filter((e) => e.id !== id) });
      },
    }),
    { name: 'fuse-studio-local-sources' },
  ),
);

let nextJob = 1;

/**
 * The pipeline's local options for a run stored under `runId`: each local source's job runs in
 * the engine worker (collectLocal), which stores into the same IndexedDB run; its counts are added
 * to what the page's collection counted before (items stored earlier), its progress copied over.
 */
export function workerLocalCollect(runId: string, o: { dateString?: string; maxRows?: number } = {}): LocalCollectOptions {
  return {
    ...o,
    collect: async (job: LocalSourceJob) => {
      const jobId = nextJob++;
      const base = { ...job.counts };
      let rate: DecayingRate | null = null;
      const apply = (u: LocalCollectUpdate) => {
        for (const k of ['done', 'collected', 'failed', 'promptTokens', 'completionTokens'] as const) job.counts[k] = base[k] + u.counts[k];
        job.counts.inFlight = u.counts.inFlight;
        Object.assign(job.progress, u.progress);
        if (u.rateStart !== null) rate ??= job.itemRate(u.rateStart);
        for (const t of u.storedAt) rate?.add(1, t);
        job.emit();
      };
      const onAbort = () => void engine().cancelLocal(jobId);
      job.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const final = await engine().collectLocal(
          {
            jobId,
            runId,
            source: job.source,
            ...(isFolderSpec(job.source.model) ? { folderFiles: pickedFolderFiles(job.source.model) } : {}),
            items: job.items.map((i) => ({ key: i.key, prompt: { id: i.prompt.id, text: i.prompt.text, ...(i.prompt.system !== undefined ? { system: i.prompt.system } : {}) }, sampleIndex: i.sampleIndex })),
            ...(o.dateString !== undefined ? { dateString: o.dateString } : {}),
            ...(o.maxRows !== undefined ? { maxRows: o.maxRows } : {}),
          },
          callback(apply),
        );
        apply(final);
      } finally {
        job.signal.removeEventListener('abort', onAbort);
      }
    },
  };
}
