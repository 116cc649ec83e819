// The Model page's state: choosing a model (built-in demo, Hub repo / URL, local folder),
// loading it onto the GPU with progress, the browser's model cache, and a tiny generation box.
// The model lives in the engine worker (src/studio/worker): this store asks it to load and
// generate, and keeps only what the page shows.

import { create } from 'zustand';
import { BrowserModelCache, type BrowserCacheKind, type CachedModel } from '../io/opfs';
import type { Progress } from '../io/progress';
import type { LoadProgress } from '../model/load';
import { callback, engine, errorMessage as message } from './engine';
import type { ModelChoice, ModelSummary } from './worker/model-service';

export type { ModelChoice, ModelSummary };
export { countParams } from './worker/model-service';

export const HUB_PRESETS = ['meta-llama/Llama-3.2-1B-Instruct', 'meta-llama/Llama-3.2-3B-Instruct'] as const;
export const MAX_NEW_TOKENS = 16;

export type LoadState =
  | { kind: 'idle' }
  | { kind: 'loading'; stage: string; progress: LoadProgress | null }
  | { kind: 'loaded'; progress: LoadProgress | null }
  | { kind: 'error'; message: string };

export interface CacheState {
  kind: BrowserCacheKind | null;
  entries: CachedModel[];
  error: string | null;
}

export interface GenerationState {
  running: boolean;
  text: string;
  tokens: number;
  error: string | null;
}

interface ModelStore {
  load: LoadState;
  model: ModelSummary | null;
  cache: CacheState;
  generation: GenerationState;
  loadModel(choice: ModelChoice): Promise<void>;
  cancel(): void;
  refreshCache(): Promise<void>;
  freeCached(id: string): Promise<void>;
  generate(prompt: string): Promise<void>;
}

const idleGeneration: GenerationState = { running: false, text: '', tokens: 0, error: null };
let generationId = 0;

export const useModelStore = create<ModelStore>()((set, get) => ({
  load: { kind: 'idle' },
  model: null,
  cache: { kind: null, entries: [], error: null },
  generation: idleGeneration,

  async loadModel(choice) {
    // Loading frees the current model: not while it is generating.
    if (get().load.kind === 'loading' || get().generation.running) return;
    set({ load: { kind: 'loading', stage: 'Starting the engine…', progress: null }, model: null, generation: idleGeneration });
    let latest: LoadProgress | null = null;
    try {
      const model = await engine().loadModel(
        choice,
        callback((e: { stage: string; progress: LoadProgress | null }) => {
          if (e.progress) latest = e.progress;
          if (get().load.kind === 'loading') set({ load: { kind: 'loading', stage: e.stage, progress: e.progress } });
        }),
      );
      set({ load: { kind: 'loaded', progress: latest }, model });
    } catch (e) {
      set({ load: { kind: 'error', message: message(e) }, model: null });
    } finally {
      void get().refreshCache();
    }
  },

  cancel() {
    void engine().cancelLoad();
  },

  async refreshCache() {
    try {
      const cache = await BrowserModelCache.open();
      set({ cache: { kind: cache.kind, entries: await cache.list(), error: null } });
    } catch (e) {
      set((s) => ({ cache: { ...s.cache, error: message(e) } }));
    }
  },

  async freeCached(id) {
    try {
      await (await BrowserModelCache.open()).remove(id);
    } catch (e) {
      set((s) => ({ cache: { ...s.cache, error: message(e) } }));
      return;
    }
    await get().refreshCache();
  },

  async generate(prompt) {
    if (get().generation.running || !get().model) return;
    if (!get().model!.hasTokenizer) {
      set({ generation: { ...idleGeneration, error: 'This model has no tokenizer.json, so it cannot turn text into tokens.' } });
      return;
    }
    set({ generation: { running: true, text: '', tokens: 0, error: null } });
    try {
      const reply = await engine().chat(
        { id: `try-${++generationId}`, messages: [], rawPrompt: prompt, adapter: null, maxNewTokens: MAX_NEW_TOKENS, sampling: { temperature: 0 } },
        callback((text: string, tokens: number) => set({ generation: { running: true, text, tokens, error: null } })),
      );
      set({ generation: { running: false, text: reply.text, tokens: reply.tokens, error: null } });
    } catch (e) {
      set((s) => ({ generation: { ...s.generation, running: false, error: message(e) } }));
    }
  },
}));

export type { Progress };
