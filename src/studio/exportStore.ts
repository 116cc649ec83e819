// The Export page's state: downloads (a PEFT adapter as a zip, the merged model, the Data page's
// datasets, the scale-out recipe, a project bundle) and imports (a PEFT adapter made elsewhere, a
// project bundle). Adapters and merging live in the engine worker; sources, settings and the data
// run are read from IndexedDB here. Bundle layout and key scrubbing: bundle.ts.

import { create } from 'zustand';
import { ARTIFACTS } from '../data/pipeline';
import { parseDpoJsonl, parseSftJsonl } from '../data/records';
import { DexieRunStore } from '../data/store-dexie';
import { checkBaseModelName, hubRepoOf, resolveBaseModelName } from '../train/base-model';
import { buildRecipe, type RecipeDpoStage, type RecipeStage } from '../train/recipe';
import {
  adapterImportName,
  adapterImportOrder,
  buildBundle,
  BundleError,
  keepLocalSecrets,
  mergeImportedSources,
  parseBundle,
  peftFilesFromUpload,
  unzipFiles,
  zipFiles,
  type BundleAdapter,
} from './bundle';
import { DATA_RUN_KEY, activeDataRunId } from './dataStore';
import { callback, engine, errorMessage } from './engine';
import { useModelStore, type ModelSummary } from './modelStore';
import { DEFAULT_JUDGE, useSourcesStore, type JudgeSettings } from './sourcesStore';
import { studioDb } from './studioDb';
import { TRAIN_SETTINGS_KEY } from './trainConfig';
import type { AdapterInfo } from './worker/adapter-store';
import type { MergeEvent } from './worker/export-service';

export type ExportAction = 'adapter' | 'merged' | 'datasets' | 'recipe' | 'bundle' | 'import-adapter' | 'import-bundle';

export interface ExportNotice {
  /** 'warn': done in part (what was skipped, and why, is in the text). */
  kind: 'ok' | 'warn' | 'error';
  text: string;
  /** Which part of the page it belongs to. */
  area: 'adapters' | 'import-adapter' | 'data' | 'bundle';
}

interface ExportStore {
  adapters: AdapterInfo[];
  /** Names of the data run's artifacts. */
  artifacts: string[];
  /** base_model_name_or_path and the recipe's model. */
  baseModel: string;
  busy: { action: ExportAction; detail: string } | null;
  notice: ExportNotice | null;
  setBaseModel(v: string): void;
  refresh(): Promise<void>;
  downloadAdapter(name: string): Promise<void>;
  downloadMerged(name: string): Promise<void>;
  /** Asks for a folder and writes the merged model there (any size). */
  saveMergedToFolder(name: string): Promise<void>;
  downloadDatasets(): Promise<void>;
  downloadRecipe(): Promise<void>;
  downloadBundle(): Promise<void>;
  importAdapter(name: string, files: readonly File[]): Promise<void>;
  importBundle(file: File): Promise<void>;
  removeAdapter(name: string): Promise<void>;
}

/**
 * The base model name an export starts with: the Hub repo id when the model came from the Hub or
 * a mirror of it (base-model.ts), else '' (unknown: the user names it).
 */
export function defaultBaseModel(m: Pick<ModelSummary, 'source'> | null): string {
  return m ? (hubRepoOf(m.source) ?? '') : '';
}

/** What the Export page says about the base model name: an error, a warning when unknown, or nothing. */
export function baseModelStatus(name: string, m: Pick<ModelSummary, 'source'> | null): { kind: 'error' | 'warn'; text: string } | null {
  if (!m) return null;
  try {
    const r = resolveBaseModelName(m.source, name, 'The base model name');
    if (r.from !== 'unknown') return null;
    return {
      kind: 'warn',
      text: `This model (${m.source}) did not come from the Hugging Face Hub, so its Hub name is not known: type the base model's Hub repo id (e.g. meta-llama/Llama-3.2-1B-Instruct) or an absolute path. Left empty, the adapter's base_model_name_or_path is empty and its README.md says what to put there.`,
    };
  } catch (e) {
    return { kind: 'error', text: errorMessage(e) };
  }
}

/** A safe file/folder name from a free-form one. */
export function fileSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._+-]+/g, '-').replace(/^-+|-+$/g, '') || 'export';
}

export function saveDownload(name: string, data: Uint8Array | string | Blob, type = 'application/zip'): void {
  const url = URL.createObjectURL(data instanceof Blob ? data : new Blob([data as BlobPart], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function runArtifacts(): Promise<{ runId: string; artifacts: Record<string, string> } | null> {
  const runId = activeDataRunId();
  if (!runId) return null;
  const store = new DexieRunStore(runId);
  const names = await store.listArtifacts();
  const artifacts: Record<string, string> = {};
  for (const n of names.sort()) {
    const t = await store.readArtifact(n);
    if (t !== undefined) artifacts[n] = t;
  }
  return { runId, artifacts };
}

const loadedModel = () => useModelStore.getState().model;

/** One zip without zip64 holds at most 4 GiB; leave room for the tokenizer and headers. */
const ZIP_LIMIT_BYTES = 3.8e9;

export function mergedFolderName(baseModel: string, adapter: string): string {
  return `${fileSafe(baseModel || 'model')}-${fileSafe(adapter)}-merged`;
}

let defaultedFor: string | null = null;

function readTrainSettings(): unknown {
  try {
    const raw = localStorage.getItem(TRAIN_SETTINGS_KEY);
    return raw ? (JSON.parse(raw) as unknown) : null;
  } catch {
    return null;
  }
}

const RECIPE_FIELDS = ['lr', 'epochs', 'microBatchSize', 'gradientAccumulationSteps', 'maxLength', 'scheduler', 'warmupRatio', 'maxGradNorm', 'weightDecay', 'loraRank', 'loraAlpha', 'loraTargets', 'seed'] as const;

/** The recipe's hyperparameters from the Train page's settings (what is absent keeps the recipe defaults). */
export function recipeHyperFromTrain(raw: unknown): { sftHyper: Partial<RecipeStage>; dpoHyper: Partial<RecipeDpoStage> } {
  const pick = (v: unknown): Partial<RecipeStage> => {
    const o = v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
    const out: Record<string, unknown> = {};
    for (const k of RECIPE_FIELDS) if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
    return out as Partial<RecipeStage>;
  };
  const r = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const dpoRaw = (r.dpo ?? {}) as Record<string, unknown>;
  const dpoHyper: Partial<RecipeDpoStage> = { ...pick(dpoRaw) };
  if (typeof dpoRaw.beta === 'number') dpoHyper.beta = dpoRaw.beta;
  if (dpoRaw.loss === 'ln-dpo' || dpoRaw.loss === 'dpo') dpoHyper.lossType = dpoRaw.loss === 'ln-dpo' ? 'ln' : 'sigmoid';
  return { sftHyper: pick(r.sft), dpoHyper };
}

export const useExportStore = create<ExportStore>()((set, get) => {
  /** Runs one action at a time, reporting its error in `area`. */
  const act = async (action: ExportAction, area: ExportNotice['area'], detail: string, fn: () => Promise<string | { warn: string } | void>) => {
    if (get().busy) return;
    set({ busy: { action, detail }, notice: null });
    try {
      const ok = await fn();
      set({ notice: !ok ? null : typeof ok === 'string' ? { kind: 'ok', text: ok, area } : { kind: 'warn', text: ok.warn, area } });
    } catch (e) {
      set({ notice: { kind: 'error', text: errorMessage(e), area } });
    } finally {
      set({ busy: null });
    }
  };

  const mergeProgress = (name: string) => (e: MergeEvent) => set({ busy: { action: 'merged', detail: `${name}: merging ${e.done} / ${e.total} tensors (${e.tensor})` } });

  return {
    adapters: [],
    artifacts: [],
    baseModel: defaultBaseModel(loadedModel()),
    busy: null,
    notice: null,

    setBaseModel(v) {
      set({ baseModel: v });
    },

    async refresh() {
      const m = loadedModel();
      // A newly loaded model gets its own default base name.
      if (m && defaultedFor !== m.modelKey) {
        defaultedFor = m.modelKey;
        set({ baseModel: defaultBaseModel(m) });
      }
      try {
        const [adapters, run] = await Promise.all([m ? engine().listAdapters() : Promise.resolve([]), runArtifacts()]);
        set({ adapters, artifacts: run ? Object.keys(run.artifacts) : [] });
      } catch (e) {
        set({ notice: { kind: 'error', text: errorMessage(e), area: 'adapters' } });
      }
    },

    async downloadAdapter(name) {
      await act('adapter', 'adapters', name, async () => {
        const base = checkBaseModelName(get().baseModel, 'The base model name');
        const files = await engine().adapterFiles(name, base);
        const folder = `${fileSafe(name)}-peft`;
        saveDownload(`${folder}.zip`, zipFiles(new Map(Object.entries(files)), folder));
        return base
          ? `Downloaded ${folder}.zip (adapter_config.json + adapter_model.safetensors, base model ${base}).`
          : `Downloaded ${folder}.zip. Its base_model_name_or_path is empty (the base model's name is not known): README.md in the zip says what to put there, or type the name above and download again.`;
      });
    },

    async downloadMerged(name) {
      await act('merged', 'adapters', name, async () => {
        const m = loadedModel();
        if (m && m.params * 2 > ZIP_LIMIT_BYTES) throw new Error(`The merged model is about ${(m.params * 2 / 1e9).toFixed(1)} GB in bf16, too big for one zip: use “Merged model to a folder…”.`);
        const folder = mergedFolderName(get().baseModel, name);
        const zip = await engine().mergedZip(name, folder, callback(mergeProgress(name)));
        saveDownload(`${folder}.zip`, zip);
        return `Downloaded ${folder}.zip (bf16 safetensors, config and tokenizer files).`;
      });
    },

    async saveMergedToFolder(name) {
      const picker = (window as unknown as { showDirectoryPicker?: (o: { mode: 'readwrite' }) => Promise<FileSystemDirectoryHandle> }).showDirectoryPicker;
      if (!picker) return;
      let dir: FileSystemDirectoryHandle;
      try {
        dir = await picker.call(window, { mode: 'readwrite' });
      } catch {
        return; // the user closed the picker
      }
      await act('merged', 'adapters', name, async () => {
        const files = await engine().mergedToDirectory(name, dir, callback(mergeProgress(name)));
        return `Wrote the merged model into the folder “${dir.name}”: ${files.join(', ')}.`;
      });
    },

    async downloadDatasets() {
      await act('datasets', 'data', 'datasets', async () => {
        const run = await runArtifacts();
        if (!run || !Object.keys(run.artifacts).length) throw new Error('The Data page has not built any datasets yet.');
        saveDownload('fuse-datasets.zip', zipFiles(new Map(Object.entries(run.artifacts)), 'fuse-datasets'));
        return `Downloaded fuse-datasets.zip (${Object.keys(run.artifacts).join(', ')}).`;
      });
    },

    async downloadRecipe() {
      await act('recipe', 'data', 'recipe', async () => {
        const run = await runArtifacts();
        const sftText = run?.artifacts[ARTIFACTS.sft] ?? '';
        const dpoText = run?.artifacts[ARTIFACTS.dpo] ?? '';
        if (!sftText && !dpoText) throw new Error('The Data page has not built an SFT or DPO set yet: the recipe needs one.');
        const model = get().baseModel.trim();
        if (!model) throw new Error('Give the base model’s Hugging Face id: the recipe trains it.');
        const sft = parseSftJsonl(sftText);
        const dpo = parseDpoJsonl(dpoText);
        const bad = [...sft.errors.map((e) => `sft.jsonl line ${e.line}: ${e.message}`), ...dpo.errors.map((e) => `dpo.jsonl line ${e.line}: ${e.message}`)];
        if (bad.length) throw new Error(`The datasets have bad lines: ${bad.slice(0, 3).join('; ')}`);
        const files = buildRecipe({ model, sft: sft.records, dpo: dpo.records, ...recipeHyperFromTrain(readTrainSettings()) });
        saveDownload('fuse-recipe.zip', zipFiles(files, 'fuse-recipe'));
        return `Downloaded fuse-recipe.zip (${files.size} files: TRL + accelerate/DeepSpeed and LLaMA-Factory).`;
      });
    },

    async downloadBundle() {
      await act('bundle', 'bundle', 'bundle', async () => {
        const m = loadedModel();
        const sources = useSourcesStore.getState();
        await sources.load();
        const db = studioDb();
        const [entries, settings, run] = await Promise.all([db.sources.orderBy('createdAt').toArray(), db.settings.toArray(), runArtifacts()]);
        const doc = run ? ((await db.dataRuns.get(run.runId))?.doc ?? null) : null;
        const adapters: BundleAdapter[] = [];
        if (m) {
          for (const a of await engine().listAdapters()) {
            adapters.push({
              name: a.name,
              note: a.note,
              createdAt: a.createdAt,
              parent: a.parentGone ? null : a.parent,
              kind: a.kind,
              files: await engine().adapterFiles(a.name, checkBaseModelName(get().baseModel, 'The base model name')),
            });
          }
        }
        const files = buildBundle({
          model: m ? { key: m.modelKey, source: m.source, baseModel: get().baseModel.trim(), config: m.config } : null,
          sources: entries,
          settings,
          dataRun: run ? { runId: run.runId, doc, artifacts: run.artifacts } : null,
          adapters,
          training: readTrainSettings(),
        });
        saveDownload('fuse-project.zip', zipFiles(files));
        const parts = [`${entries.length} source(s) without API keys`, `${run ? Object.keys(run.artifacts).length : 0} dataset file(s)`, `${adapters.length} adapter(s)`];
        return `Downloaded fuse-project.zip: ${parts.join(', ')}${m ? '' : ' (load the model to include its adapters)'}.`;
      });
    },

    async importAdapter(name, files) {
      await act('import-adapter', 'import-adapter', name, async () => {
        const n = name.trim();
        if (!loadedModel()) throw new Error('Load the base model on the Model page first: the adapter is checked against it.');
        if (!files.length) throw new Error('Pick the adapter’s zip, or its adapter_config.json and adapter_model.safetensors.');
        const uploads = await Promise.all(files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
        const peft = peftFilesFromUpload(uploads);
        let r;
        try {
          r = await engine().importAdapter(n, Object.fromEntries(peft));
        } catch (e) {
          throw new Error(`The adapter was not imported: ${errorMessage(e)}`, { cause: e });
        }
        await get().refresh();
        const shape = r.info ? ` (rank ${r.info.rank}, alpha ${r.info.alpha}, ${r.info.targets.length} target modules)` : '';
        const text = `Imported adapter "${r.name}"${shape}${r.baseModel ? `, trained on ${r.baseModel}` : ''}.${r.notes.length ? ` ${r.notes.join(' ')}` : ''}`;
        // The importer's notes say what it left out or changed: not a plain success.
        return r.notes.length ? { warn: text } : text;
      });
    },

    async importBundle(file) {
      await act('import-bundle', 'bundle', file.name, async () => {
        let parsed;
        try {
          parsed = parseBundle(unzipFiles(new Uint8Array(await file.arrayBuffer())));
        } catch (e) {
          throw new Error(e instanceof BundleError ? `${file.name}: ${e.message}` : errorMessage(e), { cause: e });
        }
        const { project, datasets, adapters } = parsed;
        const done: string[] = [];
        const db = studioDb();

        // Sources (without keys: a source this browser already has keeps its key) and settings.
        const existing = await db.sources.toArray();
        const sources = mergeImportedSources(project.sources, existing);
        await db.sources.bulkPut(sources);
        for (const [key, value] of Object.entries(project.settings)) {
          const local = await db.settings.get(key);
          await db.settings.put({ key, value: keepLocalSecrets(value, local?.value) });
        }
        if (useSourcesStore.getState().loaded) {
          const stored = ((await db.settings.get('judge'))?.value ?? {}) as Partial<JudgeSettings>;
          useSourcesStore.setState({
            entries: await db.sources.orderBy('createdAt').toArray(),
            judge: { ...DEFAULT_JUDGE, ...stored, reward: { ...DEFAULT_JUDGE.reward, ...stored.reward } },
          });
        }
        if (sources.length) done.push(`${sources.length} source(s)${sources.some((s) => !s.apiKey) ? ' (enter their API keys on the Sources page)' : ''}`);

        if (project.training && typeof project.training === 'object') {
          localStorage.setItem(TRAIN_SETTINGS_KEY, JSON.stringify(project.training));
          done.push('training settings');
        }

        // The data run: its artifacts, its document, and make it the Data page's run.
        if (project.dataRun) {
          const store = new DexieRunStore(project.dataRun.runId);
          for (const [n, text] of Object.entries(datasets)) await store.writeArtifact(n, text);
          if (project.dataRun.doc) await db.dataRuns.put({ runId: project.dataRun.runId, doc: project.dataRun.doc, updatedAt: new Date().toISOString() });
          localStorage.setItem(DATA_RUN_KEY, project.dataRun.runId);
          done.push(`${Object.keys(datasets).length} dataset file(s)`);
        }

        // Adapters: checked against the loaded model; never over a stored one (a clash gets the
        // next free name, an identical copy is not stored twice), each after the one it continues.
        const skipped: string[] = [];
        const notes: string[] = [];
        if (adapters.length) {
          const m = loadedModel();
          if (!m) skipped.push(`${adapters.length} adapter(s) not imported: load the base model${project.model ? ` (${project.model.source})` : ''} first, then import the bundle again`);
          else {
            const stored = new Map<string, { name: string; id: string }>();
            let n = 0;
            for (const a of adapterImportOrder(adapters)) {
              const want = adapterImportName(a, new Map([...stored].map(([k, v]) => [k, v.name])));
              const parent = a.parent ? (stored.get(a.parent) ?? { name: a.parent, id: '' }) : null;
              try {
                const r = await engine().importAdapter(want, a.files, a.note || 'from a project bundle', { ifExists: 'rename', parent });
                stored.set(a.name, { name: r.name, id: r.id });
                n++;
                if (r.duplicate) notes.push(`adapter "${r.name}" was already here (identical), so no second copy was stored`);
                else if (r.name !== a.name) notes.push(`adapter "${a.name}" was stored as "${r.name}" (this browser already has a different "${want}")`);
              } catch (e) {
                skipped.push(`adapter "${a.name}" not imported: it does not fit the loaded model (${errorMessage(e)})`);
              }
            }
            if (n) done.push(`${n} adapter(s)`);
          }
        }
        await get().refresh();
        const text =
          `Imported ${file.name}: ${done.length ? done.join(', ') : 'nothing to restore'}.` +
          `${notes.length ? ` Note: ${notes.join('; ')}.` : ''}` +
          `${skipped.length ? ` Skipped: ${skipped.join('; ')}.` : ''}` +
          `${project.dataRun || project.training ? ' Reload the page to see the imported data run and training settings on the Data and Train pages.' : ''}`;
        return skipped.length ? { warn: text } : text;
      });
    },

    async removeAdapter(name) {
      await act('adapter', 'adapters', name, async () => {
        await engine().removeAdapter(name);
        await get().refresh();
        return `Removed adapter "${name}".`;
      });
    },
  };
});
