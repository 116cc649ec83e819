// The Model page's state: choosing a model (a preset, the built-in demo, a Hub repo / URL, a local
// folder), loading it onto the GPU with progress, the browser's model cache, a tiny generation box,
// and what plans are checked against (the worker's adapter limits, the GPU memory the user states,
// the sequence length and LoRA rank, the Hub address downloads come from).
// The model lives in the engine worker (src/studio/worker): this store asks it to load and
// generate, and keeps only what the page shows.

import { create } from 'zustand';
import type { AdapterSummary } from '../gpu/context';
import type { QuantDType } from '../gpu/quant';
import { BrowserModelCache, type BrowserCacheKind, type CachedModel } from '../io/opfs';
import type { Progress } from '../io/progress';
import type { LoadProgress } from '../model/load';
import type { ChatMessage } from '../tokenizer';
import { presetById, presetSpec } from '../model/presets';
import { HF_ENDPOINT } from '../model/source';
import type { DeviceLimits } from './planAdvice';
import { callback, engine, errorMessage as message } from './engine';
import type { LoadEvent, ModelChoice, ModelSummary } from './worker/model-service';

export type { ModelChoice, ModelSummary };
export { countParams } from './worker/model-service';

/** Try it: a short sampled reply, the same every time for the same conversation (fixed seed). */
export const MAX_NEW_TOKENS = 64;
export const TRY_SAMPLING = { temperature: 0.7, topP: 0.95, seed: 0 } as const;

/** What plans are checked against; memoryGiB as typed ('' when the user has not said). */
export interface PlanSettings {
  seq: number;
  rank: number;
  memoryGiB: string;
}

export interface DeviceState {
  /** The engine worker's GPU adapter, null until known (or when WebGPU is missing). */
  adapter: AdapterSummary | null;
  error: string | null;
}

const HUB_KEY = 'fuse-studio.hubEndpoint';
/** The GPU memory the user stated (GiB, as typed): plans and the training step's budget use it, so it outlives a reload. */
const MEMORY_KEY = 'fuse-studio.gpuMemoryGiB';

function storedMemoryGiB(): string {
  try {
    return localStorage.getItem(MEMORY_KEY) ?? '';
  } catch {
    return '';
  }
}

/** The Hub address as typed, checked: an http(s) URL without a trailing slash, or an error. */
export function checkHubEndpoint(text: string): { endpoint: string } | { error: string } {
  const t = text.trim().replace(/\/+$/, '');
  let u: URL;
  try {
    u = new URL(t);
  } catch {
    return { error: `"${text}" is not a URL: give the Hub's address, e.g. ${HF_ENDPOINT} or a mirror like http://192.168.1.10:8080` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: `The Hub address must start with http:// or https://, got ${u.protocol}` };
  return { endpoint: t };
}

function storedHubEndpoint(): string {
  try {
    return localStorage.getItem(HUB_KEY) || HF_ENDPOINT;
  } catch {
    return HF_ENDPOINT;
  }
}

// WebGPU's default limits, used until the worker reports its adapter's.
const DEFAULT_LIMITS = { maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 256 * 2 ** 20 };

/** The limits plans are checked against: the adapter's (WebGPU defaults until known) and the stated memory. */
export function deviceLimits(adapter: AdapterSummary | null, memoryGiB: string): DeviceLimits {
  const l = adapter?.limits ?? {};
  const stated = Number(memoryGiB);
  return {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize ?? DEFAULT_LIMITS.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize ?? DEFAULT_LIMITS.maxBufferSize,
    memoryBytes: memoryGiB.trim() !== '' && stated > 0 ? stated * 2 ** 30 : null,
  };
}

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

export interface TryTurn {
  user: string;
  assistant: string;
}

/** The Model page's Try-it chat: the model's own chat template, the base model, no adapter. */
export interface GenerationState {
  running: boolean;
  /** Finished turns, sent again as the conversation. */
  turns: TryTurn[];
  /** The message being answered (while running) and the reply so far (or the last reply). */
  prompt: string;
  text: string;
  tokens: number;
  /** The last prompt as the model read it: the conversation through its chat template, special tokens shown. */
  templated: string | null;
  promptTokens: number;
  error: string | null;
}

interface ModelStore {
  load: LoadState;
  model: ModelSummary | null;
  cache: CacheState;
  generation: GenerationState;
  planSettings: PlanSettings;
  device: DeviceState;
  /** Where Hub repos and presets download from (huggingface.co, or a mirror). */
  hubEndpoint: string;
  setPlanSettings(s: Partial<PlanSettings>): void;
  setHubEndpoint(endpoint: string): void;
  /** Ask the worker for its GPU adapter (once). */
  loadDevice(): Promise<void>;
  loadModel(choice: ModelChoice): Promise<void>;
  /** Load a preset from the Hub address: its mirror repo, or the gated official one with a token. */
  loadPreset(id: string, o?: { official?: boolean; token?: string; quant?: QuantDType | null }): Promise<void>;
  cancel(): void;
  refreshCache(): Promise<void>;
  freeCached(id: string): Promise<void>;
  /** Sends `prompt` as the next user turn of the Try-it chat and streams the reply. */
  generate(prompt: string): Promise<void>;
  stopGeneration(): void;
  newChat(): void;
}

const idleGeneration: GenerationState = { running: false, turns: [], prompt: '', text: '', tokens: 0, templated: null, promptTokens: 0, error: null };
let generationId = 0;
let currentTry: string | null = null;

export const useModelStore = create<ModelStore>()((set, get) => ({
  load: { kind: 'idle' },
  model: null,
  cache: { kind: null, entries: [], error: null },
  generation: idleGeneration,
  planSettings: { seq: 512, rank: 16, memoryGiB: typeof localStorage === 'undefined' ? '' : storedMemoryGiB() },
  device: { adapter: null, error: null },
  hubEndpoint: typeof localStorage === 'undefined' ? HF_ENDPOINT : storedHubEndpoint(),

  setPlanSettings(s) {
    set((st) => ({ planSettings: { ...st.planSettings, ...s } }));
    if (s.memoryGiB === undefined) return;
    try {
      if (s.memoryGiB.trim() === '') localStorage.removeItem(MEMORY_KEY);
      else localStorage.setItem(MEMORY_KEY, s.memoryGiB);
    } catch {
      // Private mode without storage: the stated memory holds for this tab.
    }
  },

  setHubEndpoint(endpoint) {
    set({ hubEndpoint: endpoint });
    try {
      if (endpoint === HF_ENDPOINT) localStorage.removeItem(HUB_KEY);
      else localStorage.setItem(HUB_KEY, endpoint);
    } catch {
      // Private mode without storage: the address holds for this tab.
    }
  },

  async loadDevice() {
    if (get().device.adapter) return;
    try {
      set({ device: { adapter: await engine().adapterInfo(), error: null } });
    } catch (e) {
      set({ device: { adapter: null, error: message(e) } });
    }
  },

  async loadPreset(id, o = {}) {
    const preset = presetById(id);
    if (!preset) {
      set({ load: { kind: 'error', message: `There is no preset "${id}".` } });
      return;
    }
    if (o.official && !o.token?.trim()) {
      set({ load: { kind: 'error', message: `${preset.gatedOfficial} is gated: paste a Hugging Face access token (after accepting Meta’s license on the repo’s page), or load the mirror ${preset.repo}, which needs none.` } });
      return;
    }
    const endpoint = get().hubEndpoint;
    await get().loadModel({
      kind: 'remote',
      spec: presetSpec(preset, { official: o.official }),
      token: o.official ? o.token?.trim() : undefined,
      endpoint: endpoint === HF_ENDPOINT ? undefined : endpoint,
      quant: o.quant ?? null,
    });
  },

  async loadModel(choice) {
    // Loading replaces the current model: not while it is generating.
    if (get().load.kind === 'loading' || get().generation.running) return;
    // The current model stays (and stays usable) until the new one's files are all in.
    set({ load: { kind: 'loading', stage: 'Starting the engine…', progress: null }, generation: idleGeneration });
    let latest: LoadProgress | null = null;
    try {
      const model = await engine().loadModel(
        choice,
        callback((e: LoadEvent) => {
          if (e.progress) latest = e.progress;
          if (e.released) set({ model: null });
          if (get().load.kind === 'loading') set({ load: { kind: 'loading', stage: e.stage, progress: e.progress } });
        }),
      );
      set({ load: { kind: 'loaded', progress: latest }, model });
    } catch (e) {
      // Whatever the worker still has loaded (the previous model, kept or put back) stays usable.
      const still = await engine()
        .currentModel()
        .catch(() => null);
      set({ load: { kind: 'error', message: message(e) }, model: still });
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
    const text = prompt.trim();
    if (!text || get().generation.running || !get().model || get().load.kind === 'loading') return;
    if (!get().model!.hasTokenizer) {
      set({ generation: { ...idleGeneration, error: 'This model has no tokenizer.json, so it cannot turn text into tokens.' } });
      return;
    }
    const { turns } = get().generation;
    const messages: ChatMessage[] = [...turns.flatMap((t): ChatMessage[] => [{ role: 'user', content: t.user }, { role: 'assistant', content: t.assistant }]), { role: 'user', content: text }];
    const id = `try-${++generationId}`;
    currentTry = id;
    set({ generation: { ...get().generation, running: true, prompt: text, text: '', tokens: 0, error: null } });
    try {
      // Through the model's chat template, as the Compare page asks: the worker encodes the
      // conversation with the generation prompt and decodes the reply without special tokens.
      const reply = await engine().chat(
        { id, messages, adapter: null, maxNewTokens: MAX_NEW_TOKENS, sampling: { ...TRY_SAMPLING } },
        callback((partial: string, tokens: number) => {
          if (get().generation.running) set((s) => ({ generation: { ...s.generation, text: partial, tokens } }));
        }),
      );
      set((s) => ({
        generation: { ...s.generation, running: false, turns: [...s.generation.turns, { user: text, assistant: reply.text }], prompt: '', text: reply.text, tokens: reply.tokens, templated: reply.templated ?? null, promptTokens: reply.promptTokens },
      }));
    } catch (e) {
      set((s) => ({ generation: { ...s.generation, running: false, error: message(e) } }));
    } finally {
      if (currentTry === id) currentTry = null;
    }
  },

  stopGeneration() {
    if (currentTry) void engine().stopChat(currentTry);
  },

  newChat() {
    if (!get().generation.running) set({ generation: idleGeneration });
  },
}));

export type { Progress };
