// Loading a model in the worker: the built-in demo model, a Hub repo / URL (downloaded with
// progress into the browser cache), or a local folder (a directory handle or dropped files).
// The page gets a summary and progress events; the GPU objects stay here.

import type { AdapterSummary } from '../../gpu/context';
import type { DType } from '../../gpu/dtype';
import type { ModelConfig } from '../../model/config';
import { countParameters } from '../../model/weights';
import { generateDemoModel } from '../../model/demo';
import { createDecoderModel } from '../../model/decoder';
import { loadModel, type LoadProgress } from '../../model/load';
import { blobsSource, modelCacheId, parseModelLocation, type ModelSource } from '../../model/source';
import { directorySource, droppedFilesSource, openRemoteModelSource, type PathedFile } from '../../model/source-browser';
import { releaseWeights } from '../../model/weights';
import { loadTokenizer, type LoadedTokenizer } from '../../tokenizer';
import { fetchLlama3TokenizerJson } from '../../tokenizer/llama3-asset';
import { currentSession, gpuContext, releaseSession, setSession } from './session';
import { trainService } from './train-service';

export type ModelChoice =
  | { kind: 'demo' }
  /** endpoint: the Hub's address (a mirror, as HF_ENDPOINT); default huggingface.co. */
  | { kind: 'remote'; spec: string; token?: string; endpoint?: string }
  | { kind: 'directory'; handle: FileSystemDirectoryHandle }
  | { kind: 'files'; files: PathedFile[] };

export interface ModelSummary {
  source: string;
  /** Stored adapters and training runs are kept per model under this key. */
  modelKey: string;
  /** The browser-cache id of a remote model, else null. */
  cacheId: string | null;
  config: ModelConfig;
  /** The dtype the weights are held in on the GPU. */
  weightDType: DType;
  params: number;
  hasTokenizer: boolean;
  files: { name: string; bytes: number }[];
  /** The worker's GPU adapter (its limits decide what fits). */
  adapter: AdapterSummary;
}

export type LoadEvent = { stage: string; progress: LoadProgress | null };

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

export const modelService = {
  /** Loads a model, replacing the current one. Progress events come at most every 100 ms. */
  async loadModel(choice: ModelChoice, onEvent: (e: LoadEvent) => void): Promise<ModelSummary> {
    // Loading frees the current model, which a training run may be using.
    if (trainService.activeTrainingRun() !== null) throw new Error('A training run is using the current model: pause and stop it on the Train page before loading another model.');
    abort?.abort();
    const controller = new AbortController();
    abort = controller;
    const { signal } = controller;
    const stage = (s: string) => onEvent({ stage: s, progress: null });
    stage('Connecting to the GPU…');
    releaseSession();
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
      let cacheId: string | null = null;
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
      const loaded = await loadModel(ctx, source, { signal, onProgress });
      if (signal.aborted) {
        releaseWeights(loaded.weights);
        throw new DOMException('Loading was cancelled.', 'AbortError');
      }
      const model = createDecoderModel(ctx, loaded.weights);
      let tokenizer: LoadedTokenizer | null = null;
      if (loaded.tokenizerFiles) tokenizer = loadTokenizer({ ...loaded.tokenizerFiles, generationConfig: loaded.generationConfig, name: source.description });
      setSession({ ctx, model, tokenizer, loaded, source, modelKey, adapters: new Map() });
      return {
        source: loaded.source,
        modelKey,
        cacheId,
        config: loaded.config,
        weightDType: loaded.weights.finalNorm.dtype,
        params: countParams(loaded.config),
        hasTokenizer: tokenizer !== null,
        files: loaded.files,
        adapter: ctx.adapter,
      };
    } catch (e) {
      if (signal.aborted) throw new Error('Loading was cancelled.', { cause: e });
      throw e;
    } finally {
      if (abort === controller) abort = null;
    }
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
