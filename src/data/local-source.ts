// Local sources: a causal LM on this GPU as a fusion source (FUSION.md §1, "in a tab without API
// keys"), beside the OpenAI-compatible endpoints of sources.ts. collect.ts runs them one model at a
// time, while the remote sources' requests go on beside them:
//
//   inspect   config.json and the tokenizer, no weights: a reward model, a model without a chat
//             template, or one whose generation plan (planGenerationBatch: buffer limits, and
//             memory when the host knows it) does not fit this device is skipped with the reason
//   load      the weights, onto the runner's one GPU context
//   generate  every pending item of the source through generateSamples (the n samples of a prompt
//             share one prefill; rows decode together at the batch size the plan allows), each item
//             stored the moment its row finishes, so a killed process or a reloaded tab resumes
//             without generating a stored item again
//   release   the model's GPU buffers, and the pool's cached ones (pool.trim), before the next model:
//             the pool's live bytes are back at what they were before the load (reported)
//
// Sample i of a prompt draws with seed + i (seed: the source's, default 0), the rule remote
// sources send, so an item's answer does not depend on the batch it was generated in, nor on
// whether the run was resumed. Sampling left unset takes the paper's preset of the model's
// family (FAMILIES[family].sampling: Qwen T 0.7, top-p 0.8, repetition penalty 1.05; others
// T 0.8, top-p 0.95), known once its config is read.
//
// How a model is opened and loaded is the host's: a LocalModelRunner (Node: src/cli/local-runner.ts;
// the studio's engine worker provides its own). This module stays host-agnostic.

import type { GpuContext } from '../gpu/context';
import type { ModelConfig } from '../model/config';
import { createDecoderModel, type DecoderModel } from '../model/decoder';
import { loadModel, readModelMeta } from '../model/load';
import type { ModelSource } from '../model/source';
import { releaseWeights } from '../model/weights';
import { FAMILIES } from '../model/families';
import { generateSamples, type GenerateResult } from '../model/generate';
import { DEFAULT_MAX_GENERATION_ROWS, planGenerationBatch, type GenerationBatchPlan } from '../model/memory-plan';
import { weightDTypeOf } from '../model/presets';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer';
import { promptMessages, type Domain, type Prompt } from './prompts';
import { DecayingRate } from './rate';
import type { ResponseStore } from './store';
import type { ResponseRecord } from './types';

/** A causal LM run by the engine on this GPU as a source. */
export interface LocalSource {
  local: true;
  /** Stable id; part of every collected item's key. */
  id: string;
  name: string;
  /** What the runner loads: a folder, an http(s) URL, a Hub repo id or a preset alias. */
  model: string;
  /** Unset: the family's preset (FAMILIES[family].sampling). */
  temperature?: number;
  top_p?: number;
  repetition_penalty?: number;
  /** New tokens per response at most. */
  max_tokens: number;
  /** Responses per prompt. */
  n: number;
  /** Responses per prompt of a domain, where it differs from `n` (0: none for that domain). */
  nByDomain?: Partial<Record<Domain, number>>;
  /** Sample i of a prompt draws with seed + i (default 0). */
  seed?: number;
}

export function isLocalSource(s: unknown): s is LocalSource {
  return typeof s === 'object' && s !== null && (s as { local?: unknown }).local === true;
}

/** Defaults of a local source's fields (sampling comes from the model's family). */
export const LOCAL_SOURCE_DEFAULTS = { max_tokens: 2048, n: 5, seed: 0 } as const;

/** A LocalSource with defaults filled. */
export function makeLocalSource(init: Partial<LocalSource> & { model: string }): LocalSource {
  return { local: true, id: init.id ?? `local:${init.model}`, name: init.name ?? init.model, max_tokens: LOCAL_SOURCE_DEFAULTS.max_tokens, n: LOCAL_SOURCE_DEFAULTS.n, ...init };
}

/** The sampling a local source generates with: its own fields, the rest from its family's preset. */
export function localSampling(s: LocalSource, config: Pick<ModelConfig, 'family'>): { temperature: number; topP: number; repetitionPenalty: number } {
  const preset = FAMILIES[config.family].sampling;
  return {
    temperature: s.temperature ?? preset.temperature,
    topP: s.top_p ?? preset.topP,
    repetitionPenalty: s.repetition_penalty ?? preset.repetitionPenalty ?? 1,
  };
}

// ---------------------------------------------------------------------------------------------
// What the host provides

/** What the runner reads of a model before any weight. */
export interface LocalModelInfo {
  config: ModelConfig;
  /** null when the model has no tokenizer.json. */
  tokenizer: LoadedTokenizer | null;
  /** Where it came from, for messages and the stored records (a folder, URL, hf://repo@revision). */
  description: string;
}

/** A loaded model. */
export interface LocalModel {
  model: DecoderModel;
  /** Frees its GPU buffers (weights and the decoder's own). */
  release(): void;
}

/** How a host opens and loads local models (Node: src/cli/local-runner.ts; the studio: its worker). */
export interface LocalModelRunner {
  /** The GPU context every local model is loaded onto (one for the whole collection). */
  context(): Promise<GpuContext>;
  /** GPU bytes a generation may use in all (weights included), when the host knows it; null: only the buffer limits are checked. */
  memoryBytes(): number | null;
  /** config.json, generation_config.json and the tokenizer of `spec`, without its weights. */
  inspect(spec: string, o: { signal?: AbortSignal }): Promise<LocalModelInfo>;
  /** Loads the weights of `spec` (inspected first) onto context(). */
  load(spec: string, o: { signal?: AbortSignal }): Promise<LocalModel>;
}

/** Settings of local collection besides the runner. */
/** What a runner's inspect() returns for a model source: its config and tokenizer, no weights read. */
export async function inspectModelSource(source: ModelSource, o: { signal?: AbortSignal } = {}): Promise<LocalModelInfo> {
  const meta = await readModelMeta(source, o);
  const tf = meta.tokenizerFiles;
  const tokenizer = tf
    ? loadTokenizer({ tokenizerJson: tf.tokenizerJson, tokenizerConfig: tf.tokenizerConfig, chatTemplate: tf.chatTemplate, generationConfig: meta.generationConfig, name: source.description })
    : null;
  return { config: meta.config, tokenizer, description: source.description };
}

/** What a runner's load() returns: the model on `ctx`, and a release that frees all of it. */
export async function loadModelSource(ctx: GpuContext, source: ModelSource, o: { signal?: AbortSignal } = {}): Promise<LocalModel> {
  const loaded = await loadModel(ctx, source, o);
  let model;
  try {
    model = createDecoderModel(ctx, loaded.weights);
  } catch (e) {
    releaseWeights(loaded.weights);
    throw e;
  }
  return {
    model,
    release: () => {
      model.release();
      releaseWeights(loaded.weights);
    },
  };
}

export interface LocalCollectOptions {
  /** Required unless `collect` is given. */
  runner?: LocalModelRunner;
  /**
   * Runs one source's job where its runner lives, in place of collectLocalSource here: the studio
   * collects in its engine worker (the GPU's thread), which stores into the same run store and
   * reports the job's counts and progress back.
   */
  collect?: (job: LocalSourceJob) => Promise<void>;
  /** The date Llama 3.x templates show (default: today, as transformers). */
  dateString?: string;
  /** Rows decoded together at most (default 16, DEFAULT_MAX_GENERATION_ROWS; fewer where the plan needs). */
  maxRows?: number;
}

// ---------------------------------------------------------------------------------------------
// Progress

/** 'cancelled': the collection was stopped before this source was done (its items pending). */
export type LocalSourceState = 'waiting' | 'loading' | 'generating' | 'done' | 'skipped' | 'cancelled';

/** A local source's progress, beside the counts every source has (collect.ts SourceProgress). */
export interface LocalSourceProgress {
  state: LocalSourceState;
  /** Why the source was skipped: it does not fit this device, is not a causal LM, could not be loaded. */
  skipReason?: string;
  /** The model as the runner describes it, once inspected. */
  model?: string;
  /** The sampling it generates with (its family's preset where the source leaves a field unset). */
  sampling?: { temperature: number; top_p: number; repetition_penalty: number };
  /** Rows decoded together. */
  batchSize?: number;
  /** Rows the model generated in this run (each stored as it finished). */
  generated: number;
  /** Tokens generated in this run. */
  tokens: number;
  /** Recent tokens per second (rate.ts: an exponentially weighted rate, τ 60 s). */
  tokensPerSecond: number;
  loadSeconds?: number;
  generateSeconds?: number;
  /** The GPU pool's live bytes before the model loaded, with it loaded, and after it was released. */
  gpu?: { baselineBytes: number; loadedBytes: number; afterBytes: number };
}

// ---------------------------------------------------------------------------------------------
// Collecting one local source

/** An item of a local source still to generate. */
export interface LocalItem {
  key: string;
  prompt: Pick<Prompt, 'id' | 'text' | 'system'>;
  sampleIndex: number;
}

export interface LocalSourceJob {
  source: LocalSource;
  /** Its pending items, prompt-major. */
  items: readonly LocalItem[];
  local: LocalCollectOptions;
  store: ResponseStore;
  signal: AbortSignal;
  /** Mutable counts the caller reports (collect.ts's SourceProgress fields this job moves). */
  counts: { done: number; collected: number; failed: number; inFlight: number; promptTokens: number; completionTokens: number };
  progress: LocalSourceProgress;
  /** Stores the error record of an item that cannot be generated (prompt too long, template error). */
  putError(item: LocalItem, message: string): Promise<void>;
  /** The rate of stored items (its ETA), started when generation starts. */
  itemRate(start: number): DecayingRate;
  /** Something moved. */
  emit(): void;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
const aborted = (signal: AbortSignal) => signal.aborted;

/**
 * Generates and stores every item of `job` (see the file comment). A source that cannot run here
 * (or whose generation fails) ends with progress.state 'skipped' and the reason; a store failure
 * is thrown (the collection stops: nothing could be kept); a cancel returns with the unfinished
 * items pending.
 */
export async function collectLocalSource(job: LocalSourceJob): Promise<void> {
  const { source, local, progress: p, signal } = job;
  const runner = local.runner;
  if (!runner) throw new Error('local sources need a LocalModelRunner (local.runner)');
  const skip = (reason: string) => {
    p.state = 'skipped';
    p.skipReason = reason;
    job.emit();
  };
  if (job.items.length === 0) {
    p.state = 'done';
    return;
  }
  p.state = 'loading';
  job.emit();

  // --- inspect: config and tokenizer, no weights
  let info: LocalModelInfo;
  try {
    info = await runner.inspect(source.model, { signal });
  } catch (e) {
    if (aborted(signal)) return;
    return skip(`${source.model} could not be opened: ${message(e)}`);
  }
  p.model = info.description;
  const { config, tokenizer } = info;
  const arch = FAMILIES[config.family].architectures;
  if (config.head !== 'causal-lm')
    return skip(`${info.description} is a reward model (${arch[config.head]}), not a causal language model (${arch['causal-lm']}): a source generates answers`);
  if (!tokenizer) return skip(`${info.description} has no tokenizer.json: a source reads prompts and writes answers as text`);
  if (!tokenizer.chatTemplate) return skip(`${info.description} has no chat template (tokenizer_config.json "chat_template"): a source answers chat prompts`);
  const sampling = localSampling(source, config);
  p.sampling = { temperature: sampling.temperature, top_p: sampling.topP, repetition_penalty: sampling.repetitionPenalty };
  const seed = source.seed ?? LOCAL_SOURCE_DEFAULTS.seed;
  const eosTokenIds = [...new Set([...tokenizer.eosTokenIds, ...config.eosTokenIds])];

  // --- the prompts as token ids; one that cannot be rendered or is too long is an error record
  const idsOf = new Map<string, number[]>();
  const ready: LocalItem[] = [];
  const maxPos = config.maxPositionEmbeddings;
  for (const item of job.items) {
    let ids = idsOf.get(item.prompt.id);
    let problem: string | null = null;
    if (!ids) {
      try {
        ids = tokenizer.encodeChat(
          promptMessages(item.prompt).map((m) => ({ role: m.role, content: m.content })),
          { addGenerationPrompt: true, ...(local.dateString !== undefined ? { dateString: local.dateString } : {}) }).ids;
        idsOf.set(item.prompt.id, ids);
      } catch (e) {
        problem = `the chat template cannot render the prompt: ${message(e)}`;
      }
    }
    if (ids && ids.length + source.max_tokens > maxPos)
      problem = `the prompt is ${ids.length} tokens; with max_tokens ${source.max_tokens} that exceeds the model's max_position_embeddings ${maxPos}`;
    if (problem === null) ready.push(item);
    else {
      await job.putError(item, problem);
      job.counts.failed++;
    }
  }
  job.emit();
  if (ready.length === 0) {
    p.state = 'done';
    return;
  }

  // Calls of generateSamples: per prompt, each run of consecutive pending sample indices is one
  // entry (seed + its first index, count), and entries of the same count go in one call.
  const calls = new Map<number, { prompt: LocalItem['prompt']; first: number; items: LocalItem[] }[]>();
  let run: { prompt: LocalItem['prompt']; first: number; items: LocalItem[] } | null = null;
  const flush = () => {
    if (!run) return;
    const list = calls.get(run.items.length) ?? [];
    list.push(run);
    calls.set(run.items.length, list);
    run = null;
  };
  for (const item of ready) {
    if (run && run.prompt.id === item.prompt.id && item.sampleIndex === run.first + run.items.length) run.items.push(item);
    else {
      flush();
      run = { prompt: item.prompt, first: item.sampleIndex, items: [item] };
    }
  }
  flush();

  // --- the plan, checked against this device before any weight is read
  let ctx: GpuContext;
  try {
    ctx = await runner.context();
  } catch (e) {
    return skip(`no GPU for ${source.model}: ${message(e)}`);
  }
  const planFor = (dtype: Parameters<typeof planGenerationBatch>[1]['weightDType'], promptTokens: number, n: number, rows: number): GenerationBatchPlan =>
    planGenerationBatch(config, {
      weightDType: dtype,
      maxBindingBytes: ctx.limits.maxStorageBufferBindingSize,
      maxBufferBytes: ctx.limits.maxBufferSize,
      memoryBytes: runner.memoryBytes(),
      promptTokens,
      maxNewTokens: source.max_tokens,
      samplesPerPrompt: n,
      maxRows: Math.min(rows, local.maxRows ?? DEFAULT_MAX_GENERATION_ROWS),
    });
  const longest = Math.max(...[...idsOf.values()].map((ids) => ids.length));
  const widest = Math.max(...calls.keys());
  try {
    planFor(weightDTypeOf(config), longest, widest, ready.length);
  } catch (e) {
    return skip(`${info.description} does not fit this device: ${message(e)}`);
  }

  // --- load
  const baselineBytes = ctx.pool.stats().liveBytes;
  const t0 = Date.now();
  let loaded: LocalModel;
  try {
    loaded = await runner.load(source.model, { signal });
  } catch (e) {
    ctx.pool.trim();
    if (aborted(signal)) return;
    return skip(`${info.description} could not be loaded: ${message(e)}`);
  }
  const loadedBytes = ctx.pool.stats().liveBytes;
  p.loadSeconds = (Date.now() - t0) / 1000;

  // --- generate
  const t1 = Date.now();
  const tokens = new DecayingRate(t1);
  const items = job.itemRate(t1);
  p.state = 'generating';
  job.emit();
  let lastEmit = 0;
  let storeFailure: unknown = null;
  let failure: unknown = null;
  try {
    for (const [count, entries] of calls) {
      if (signal.aborted || storeFailure) break;
      const prompts = entries.map((e) => idsOf.get(e.prompt.id)!);
      const plan = planFor(loaded.model.layout.dtype, Math.max(...prompts.map((x) => x.length)), count, entries.length * count);
      p.batchSize = plan.batchSize;
      job.counts.inFlight = entries.length * count;
      job.emit();
      const started = Date.now();
      // Stops generation on a store failure as well as on the caller's cancel.
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      const onRowDone = async (i: number, j: number, r: GenerateResult) => {
        const entry = entries[i]!;
        const item = entry.items[j]!;
        const now = Date.now();
        p.generated++;
        job.counts.inFlight--;
        const promptTokens = prompts[i]!.length;
        const rec: ResponseRecord = {
          key: item.key,
          sourceId: source.id,
          sourceName: source.name,
          model: source.model,
          servedModel: info.description,
          promptId: item.prompt.id,
          sampleIndex: item.sampleIndex,
          content: tokenizer.decode(r.ids, { skipSpecialTokens: true }),
          // OpenAI's words, as remote sources store them.
          finishReason: r.finishReason === 'eos' ? 'stop' : 'length',
          usage: { prompt_tokens: promptTokens, completion_tokens: r.ids.length, total_tokens: promptTokens + r.ids.length },
          params: { temperature: sampling.temperature, top_p: sampling.topP, repetition_penalty: sampling.repetitionPenalty, max_tokens: source.max_tokens, seed: seed + item.sampleIndex },
          attempts: 1,
          latencyMs: now - started,
          createdAt: new Date().toISOString(),
        };
        try {
          if (await job.store.put(rec)) {
            items.add(1, Date.now());
            job.counts.collected++;
            job.counts.done++;
            job.counts.promptTokens += promptTokens;
            job.counts.completionTokens += r.ids.length;
          }
        } catch (e) {
          storeFailure ??= e;
          stop.abort();
        }
        p.tokensPerSecond = tokens.perMinute(now) / 60;
        job.emit();
      };
      try {
        await generateSamples(
          loaded.model,
          {
            prompts,
            samplesPerPrompt: count,
            promptSeeds: entries.map((e) => seed + e.first),
            maxNewTokens: source.max_tokens,
            sampling: { ...sampling, seed },
            eosTokenIds,
            batchSize: plan.batchSize,
            signal: stop.signal,
            onRowDone,
          },
          () => {
            const now = Date.now();
            p.tokens++;
            tokens.add(1, now);
            if (now - lastEmit >= 250) {
              lastEmit = now;
              p.tokensPerSecond = tokens.perMinute(now) / 60;
              job.emit();
            }
          },
        );
      } finally {
        signal.removeEventListener('abort', onAbort);
        job.counts.inFlight = 0;
      }
    }
  } catch (e) {
    failure = e;
  } finally {
    loaded.release();
    ctx.pool.trim();
    p.gpu = { baselineBytes, loadedBytes, afterBytes: ctx.pool.stats().liveBytes };
    p.generateSeconds = (Date.now() - t1) / 1000;
    p.tokensPerSecond = tokens.perMinute() / 60;
  }
  if (storeFailure) throw storeFailure;
  if (failure && !signal.aborted) return skip(`generation with ${info.description} failed: ${message(failure)}`);
  if (!signal.aborted) p.state = 'done';
  job.emit();
}
