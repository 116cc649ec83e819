// Loading a model in the worker: the built-in demo model, a Hub repo / URL (downloaded with
// progress into the browser cache), or a local folder (a directory handle or dropped files).
// The page gets a summary and progress events; the GPU objects stay here.

import type { AdapterSummary, GpuContext } from '../../gpu/context';
import { BrowserModelCache } from '../../io/opfs';
import type { DType } from '../../gpu/dtype';
import type { QuantDType } from '../../gpu/quant';
import type { ModelConfig } from '../../model/config';
import { countParameters } from '../../model/weights';
import { generateDemoModel } from '../../model/demo';
import { createDecoderModel } from '../../model/decoder';
import { loadModel, type LoadedModel, type LoadProgress } from '../../model/load';
import { blobsSource, modelCacheId, parseModelLocation, type ModelSource } from '../../model/source';
import { directorySource, droppedFilesSource, openRemoteModelSource, type PathedFile } from '../../model/source-browser';
import { releaseWeights } from '../../model/weights';
import { layoutOf } from '../../model/weight-layout';
import { loadTokenizer, type LoadedTokenizer } from '../../tokenizer';
import { fetchLlama3TokenizerJson } from '../../tokenizer/llama3-asset';
import { explainLoadError, type LoadAttempt } from '../loadErrors';
import { afterGenerations } from './chat-service';
import { currentSession, gpuContext, message, releaseSession, setSession } from './session';
import { trainService } from './train-service';

export type ModelChoice = (
  | { kind: 'demo' }
  /** endpoint: the Hub's address (a mirror, as HF_ENDPOINT); default huggingface.co. */
  | { kind: 'remote'; spec: string; token?: string; endpoint?: string }
  | { kind: 'directory'; handle: FileSystemDirectoryHandle }
  | { kind: 'files'; files: PathedFile[] }
) & {
  /** Keep the base quantized (int8/int4 projections, int8 embedding; a remote model's cache keeps it). */
  quant?: QuantDType | null;
};

export interface ModelSummary {
  source: string;
  /** Stored adapters and training runs are kept per model under this key. */
  modelKey: string;
  /** The browser-cache id of a remote model, else null. */
  cacheId: string | null;
  config: ModelConfig;
  /** The dtype the weights are held in on the GPU (norms; the projections too unless quantized). */
  weightDType: DType;
  /** The projections' quantized format, or null. */
  quant: QuantDType | null;
  /** A GGUF base: each tensor's dtype by Hugging Face name (its block types), for the card and the plan; else null. */
  tensorDTypes: Record<string, DType> | null;
  /** 'read': the quantized base came from the browser cache; 'written': quantized now and cached. */
  quantCache: 'read' | 'written' | null;
  params: number;
  hasTokenizer: boolean;
  files: { name: string; bytes: number }[];
  /** The worker's GPU adapter (its limits decide what fits). */
  adapter: AdapterSummary;
}

export type LoadEvent = { stage: string; progress: LoadProgress | null; released?: boolean };

/** Parameter count from the config (embedding counted once when tied). */
export function countParams(c: ModelConfig): number {
  return countParameters(c);
}

async function demoSource(): Promise<ModelSource> {
  const tokenizer = await fetchLlama3TokenizerJson();
  const files = generateDemoModel(tokenizer);
  const blobs = new Map<string, Blob>();
  for (const [name, bytes] of files) blobs.set(name, new Blob([bytes as Uint8Array<ArrayBuffer>]));
  return blobsSource('built-in demo model', blobs);
}

let abort: AbortController | null = null;
/** The summary of the session's model (what the page shows), or null. */
let summary: ModelSummary | null = null;

function summarize(loaded: LoadedModel, modelKey: string, cacheId: string | null, hasTokenizer: boolean, adapter: AdapterSummary): ModelSummary {
  return {
    source: loaded.source,
    modelKey,
    cacheId,
    config: loaded.config,
    weightDType: loaded.weights.finalNorm.dtype,
    quant: loaded.quant ?? null,
    tensorDTypes: loaded.config.dtype === 'gguf' ? { ...layoutOf(loaded.weights).tensorDTypes } : null,
    quantCache: loaded.quantCache ?? null,
    params: countParams(loaded.config),
    hasTokenizer,
    files: loaded.files,
    adapter,
  };
}

/** Builds the session for weights already on the GPU. */
function install(ctx: GpuContext, loaded: LoadedModel, source: ModelSource, modelKey: string, cacheId: string | null): ModelSummary {
  const model = createDecoderModel(ctx, loaded.weights);
  let tokenizer: LoadedTokenizer | null = null;
  if (loaded.tokenizerFiles) tokenizer = loadTokenizer({ ...loaded.tokenizerFiles, generationConfig: loaded.generationConfig, name: source.description });
  setSession({ ctx, model, tokenizer, loaded, source, modelKey, adapters: new Map() });
  summary = summarize(loaded, modelKey, cacheId, tokenizer !== null, ctx.adapter);
  return summary;
}

/** A failed download that left nothing worth resuming (no weight bytes) leaves no cache entry. */
async function dropEmptyCacheEntry(cacheId: string): Promise<void> {
  try {
    const cache = await BrowserModelCache.open();
    const files = await cache.files(cacheId);
    if (!files.some((f) => f.name.endsWith('.safetensors') && f.bytes > 0)) await cache.remove(cacheId);
  } catch {
    // no cache in this browser: nothing was left
  }
}

function attemptOf(choice: ModelChoice): LoadAttempt {
  return choice.kind === 'remote' ? { kind: 'remote', spec: choice.spec, token: Boolean(choice.token), endpoint: choice.endpoint } : { kind: choice.kind };
}

export const modelService = {
  /**
   * Loads a model, replacing the current one. The current model stays loaded and usable until the
   * new one's files are all downloaded and checked; if the new one then fails on the GPU, the
   * previous one is put back from its source. Progress events come at most every 100 ms;
   * `released: true` says the previous model has been freed.
   */
  async loadModel(choice: ModelChoice, onEvent: (e: LoadEvent) => void): Promise<ModelSummary> {
    // Loading frees the current model, which a training run may be using.
    if (trainService.activeTrainingRun() !== null) throw new Error('A training run is using the current model: pause and stop it on the Train page before loading another model.');
    abort?.abort();
    const controller = new AbortController();
    abort = controller;
    const { signal } = controller;
    const stage = (s: string) => onEvent({ stage: s, progress: null });
    stage('Connecting to the GPU…');
    const previous = currentSession();
    const previousSummary = summary;
    let released = false;
    let cacheId: string | null = null;
    let last = 0;
    const onProgress = (p: LoadProgress) => {
      const now = performance.now();
      if (now - last < 100 && p.overall.loaded !== p.overall.total) return;
      last = now;
      onEvent({ stage: p.phase === 'download' ? 'Downloading' : 'Uploading to the GPU', progress: p });
    };
    try {
      const ctx = await gpuContext();
      let source: ModelSource;
      let modelKey: string;
      switch (choice.kind) {
        case 'demo':
          stage('Building the demo model…');
          source = await demoSource();
          modelKey = 'demo';
          break;
        case 'remote': {
          const loc = parseModelLocation(choice.spec);
          const endpoint = choice.endpoint || undefined;
          if (loc) cacheId = modelCacheId(loc, endpoint);
          stage('Contacting the server…');
          source = await openRemoteModelSource(choice.spec, { token: choice.token, endpoint });
          modelKey = cacheId ?? choice.spec;
          break;
        }
        case 'directory':
          source = directorySource(choice.handle);
          modelKey = `folder:${choice.handle.name}`;
          break;
        case 'files':
          source = droppedFilesSource(choice.files);
          modelKey = `folder:${source.description}`;
          break;
      }
      stage(`Reading ${source.description}…`);
      const loaded = await loadModel(ctx, source, {
        signal,
        onProgress,
        quant: choice.quant ?? null,
        beforeUpload: async () => {
          if (!currentSession()) return;
          onEvent({ stage: 'Freeing the loaded model…', progress: null, released: true });
          // Not under a generation that is using it.
          await afterGenerations(async () => releaseSession());
          summary = null;
          released = true;
        },
      });
      if (signal.aborted) {
        releaseWeights(loaded.weights);
        throw new DOMException('Loading was cancelled.', 'AbortError');
      }
      return install(ctx, loaded, source, modelKey, cacheId);
    } catch (e) {
      if (cacheId) await dropEmptyCacheEntry(cacheId);
      let note = '';
      if (released && previous && previousSummary) {
        // The previous model was freed for this one: put it back (its files are cached or local).
        try {
          const ctx = await gpuContext();
          const loaded = await loadModel(ctx, previous.source, { quant: previousSummary.quant });
          install(ctx, loaded, previous.source, previous.modelKey, previousSummary.cacheId);
        } catch (again) {
          note = ` The model loaded before (${previousSummary.source}) could not be put back: ${message(again)}. Load it again.`;
        }
      }
      const text = signal.aborted ? 'Loading was cancelled.' : explainLoadError(message(e), attemptOf(choice));
      throw new Error(text + note, { cause: e });
    } finally {
      if (abort === controller) abort = null;
    }
  },

  /** The loaded model's summary, or null (after a failed load: the model that is still loaded). */
  currentModel(): ModelSummary | null {
    return currentSession() ? summary : null;
  },

  /** The worker's GPU adapter (its limits decide what fits), before any model is loaded. */
  async adapterInfo(): Promise<AdapterSummary> {
    return (await gpuContext()).adapter;
  },

  cancelLoad(): void {
    abort?.abort();
  },

  /** The loaded model's key, or null. */
  loadedModelKey(): string | null {
    return currentSession()?.modelKey ?? null;
  },
};
