// Collection: ask every source for `n` responses to every prompt, as a resumable job.
//
// The job is a set of items (source, prompt, sampleIndex), each with a stable key. An item is
// requested once, written to the store the moment its response arrives, and skipped on any
// later run that finds it stored; so a job can be cancelled (AbortSignal), killed or crash at
// any point and a re-run requests only what is missing. Items whose errors persist after the
// retry policy (sources.ts) are written as error records (status, message), never dropped; a
// re-run retries them unless `retryFailed: false`.
//
// Local sources (a model on this GPU: local-source.ts) run one model at a time, in the order
// given, while the remote sources' requests go on beside them; their items land in the same store.
//
// Where records live is the store's business (ResponseStore, store.ts): a JSONL run folder in
// Node (store-jsonl.ts), IndexedDB in the browser (store-dexie.ts), memory in tests.

import { collectLocalSource, isLocalSource, type LocalCollectOptions, type LocalSource, type LocalSourceProgress } from './local-source';
import { DOMAINS, promptMessages, type Prompt } from './prompts';
import { DecayingRate } from './rate';
import { chatComplete, createClient, DEFAULT_RETRY_POLICY, RateLimiter, redact, SourceError, type RetryPolicy, type Source } from './sources';
import type { ResponseStore } from './store';
import { responseKey, type ResponseRecord } from './types';

/** What collection needs of a prompt: its id and the turns it is asked as (and its domain, for per-domain n). */
export type CollectPrompt = Pick<Prompt, 'id' | 'text' | 'system'> & Partial<Pick<Prompt, 'domain'>>;

/** A remote endpoint (sources.ts) or a model on this GPU (local-source.ts). */
export type CollectSource = Source | LocalSource;

export interface CollectItem {
  key: string;
  source: CollectSource;
  prompt: CollectPrompt;
  sampleIndex: number;
}

/** Responses a source gives to a prompt: its per-domain count for the prompt's domain, else n. */
export function samplesFor(source: Pick<CollectSource, 'n' | 'nByDomain'>, prompt: CollectPrompt): number {
  const byDomain = prompt.domain !== undefined ? source.nByDomain?.[prompt.domain] : undefined;
  return byDomain ?? source.n;
}

/** Every item of a job, per source, prompt-major. Throws on duplicate source or prompt ids. */
export function planCollection(sources: readonly CollectSource[], prompts: readonly CollectPrompt[]): CollectItem[] {
  const dup = (ids: string[], what: string) => {
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) throw new Error(`duplicate ${what} id "${id}"`);
      seen.add(id);
    }
  };
  dup(
    sources.map((s) => s.id),
    'source',
  );
  dup(
    prompts.map((p) => p.id),
    'prompt',
  );
  const items: CollectItem[] = [];
  for (const source of sources) {
    if (!Number.isInteger(source.n) || source.n < 1) throw new Error(`source "${source.name}": n must be a positive integer`);
    for (const d of DOMAINS) {
      const v = source.nByDomain?.[d];
      if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new Error(`source "${source.name}": n for ${d} must be an integer ≥ 0`);
    }
    for (const prompt of prompts)
      for (let i = 0; i < samplesFor(source, prompt); i++) items.push({ key: responseKey(source.id, prompt.id, i), source, prompt, sampleIndex: i });
  }
  return items;
}

export interface SourceProgress {
  sourceId: string;
  name: string;
  /** Items of this source in the job. */
  total: number;
  /** Items with a stored response (earlier runs included). */
  done: number;
  /** Of `done`, those found already stored when this run began. */
  skipped: number;
  /** Responses that arrived in this run. */
  collected: number;
  /** Items recorded as failed (in this run, or earlier ones not retried). */
  failed: number;
  inFlight: number;
  /** The requests in flight now, oldest first (remote sources): what the run is waiting for, and since when. */
  requests: InFlightRequest[];
  /** Retries made in this run (429s, 5xx, timeouts…). */
  retries: number;
  promptTokens: number;
  completionTokens: number;
  /** Responses per minute in this run: the recent pace (an exponentially weighted rate, rate.ts). */
  ratePerMinute: number;
  /** Seconds until every pending item is done at that rate; null before the first response. */
  etaSeconds: number | null;
  elapsedMs: number;
  /**
   * Local sources only: the model's state, tokens/s, the GPU pool before and after it
   * (local-source.ts). For them ratePerMinute and etaSeconds follow the recent items rate.
   */
  local?: LocalSourceProgress;
}

/** One request in flight. */
export interface InFlightRequest {
  promptId: string;
  sampleIndex: number;
  /** When it was first sent (ms since the epoch); its retries keep it. */
  startedAt: number;
  /** 1 for the first attempt, 2 once retried… */
  attempt: number;
}

/** Progress is reported at least this often while requests are in flight, so ages and ETAs stay current. */
const HEARTBEAT_MS = 1000;

export interface CollectOptions {
  sources: readonly CollectSource[];
  prompts: readonly CollectPrompt[];
  store: ResponseStore;
  /** How local sources are loaded (required when there are any). */
  local?: LocalCollectOptions;
  signal?: AbortSignal;
  /** Called whenever a count changes. */
  onProgress?: (progress: SourceProgress[]) => void;
  /** Retry items that failed in an earlier run (default true). */
  retryFailed?: boolean;
  /** Overrides every source's retry policy. */
  retryPolicy?: Partial<RetryPolicy>;
}

export interface CollectResult {
  /** True when the signal stopped the job before every item was settled. */
  cancelled: boolean;
  sources: SourceProgress[];
  collected: number;
  failed: number;
  skipped: number;
  /** Items neither stored nor failed (when cancelled, or of a skipped source). */
  pending: number;
  /** Local sources that could not run here, and why (their items stay pending). */
  skippedSources: { sourceId: string; name: string; reason: string }[];
}

/** Runs (or resumes) a collection job. Resolves once every worker has stopped. */
export async function runCollection(opts: CollectOptions): Promise<CollectResult> {
  const items = planCollection(opts.sources, opts.prompts);
  const firstLocal = opts.sources.find(isLocalSource);
  if (firstLocal && !opts.local) throw new Error(`source "${firstLocal.name}" is a local model, but no local model runner was given to load it`);
  const retryFailed = opts.retryFailed ?? true;
  const failedBefore = new Set(retryFailed ? [] : (await opts.store.listErrors()).map((e) => e.key));
  const start = Date.now();

  // A store failure (disk full, quota) stops everything: nothing could be kept.
  const stop = new AbortController();
  let storeFailure: unknown = null;
  const onOuterAbort = () => stop.abort();
  if (opts.signal?.aborted) stop.abort();
  else opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const progress = new Map<string, SourceProgress>();
  const queues = new Map<string, CollectItem[]>();
  for (const s of opts.sources) {
    progress.set(s.id, {
      sourceId: s.id,
      name: s.name,
      total: 0,
      done: 0,
      skipped: 0,
      collected: 0,
      failed: 0,
      inFlight: 0,
      requests: [],
      retries: 0,
      promptTokens: 0,
      completionTokens: 0,
      ratePerMinute: 0,
      etaSeconds: null,
      elapsedMs: 0,
      ...(isLocalSource(s) ? { local: { state: 'waiting', generated: 0, tokens: 0, tokensPerSecond: 0 } as LocalSourceProgress } : {}),
    });
    queues.set(s.id, []);
  }
  for (const item of items) {
    const p = progress.get(item.source.id)!;
    p.total++;
    if (await opts.store.has(item.key)) {
      p.done++;
      p.skipped++;
    } else if (failedBefore.has(item.key)) {
      p.failed++;
    } else {
      queues.get(item.source.id)!.push(item);
    }
  }

  const rates = new Map(opts.sources.map((s) => [s.id, new DecayingRate(start)]));
  const snapshot = (): SourceProgress[] => {
    const now = Date.now();
    return [...progress.values()].map((p) => {
      const elapsedMs = now - start;
      const ratePerMinute = rates.get(p.sourceId)!.perMinute(now);
      const pending = p.total - p.done - p.failed;
      return {
        ...p,
        requests: p.requests.map((r) => ({ ...r })),
        ...(p.local ? { local: { ...p.local, ...(p.local.gpu ? { gpu: { ...p.local.gpu } } : {}) } } : {}),
        elapsedMs,
        ratePerMinute,
        etaSeconds: pending === 0 ? 0 : p.local?.state === 'skipped' ? null : ratePerMinute > 0 ? (pending / ratePerMinute) * 60 : null,
      };
    });
  };
  const emit = () => opts.onProgress?.(snapshot());
  emit();

  const inFlightKeys = new Set<string>();

  const worker = async (source: Source, queue: CollectItem[], limiter: RateLimiter, client: ReturnType<typeof createClient>) => {
    const p = progress.get(source.id)!;
    while (!stop.signal.aborted) {
      const item = queue.shift();
      if (!item) return;
      if (inFlightKeys.has(item.key)) continue; // cannot happen with unique keys; belt and braces
      inFlightKeys.add(item.key);
      p.inFlight++;
      const request: InFlightRequest = { promptId: item.prompt.id, sampleIndex: item.sampleIndex, startedAt: Date.now(), attempt: 1 };
      p.requests.push(request);
      emit();
      try {
        const r = await chatComplete(source, promptMessages(item.prompt), {
          client,
          limiter,
          signal: stop.signal,
          sampleIndex: item.sampleIndex,
          policy: opts.retryPolicy,
          onRetry: () => {
            p.retries++;
            request.attempt++;
            emit();
          },
        });
        const rec: ResponseRecord = {
          key: item.key,
          sourceId: source.id,
          sourceName: source.name,
          model: source.model,
          servedModel: r.model,
          promptId: item.prompt.id,
          sampleIndex: item.sampleIndex,
          content: r.content,
          finishReason: r.finishReason,
          usage: r.usage,
          params: r.params,
          ...(r.droppedParams.length ? { droppedParams: r.droppedParams } : {}),
          attempts: r.attempts,
          latencyMs: r.latencyMs,
          createdAt: new Date().toISOString(),
        };
        // Not under the signal: a response that arrived is kept even if cancel comes now.
        if (await opts.store.put(rec)) {
          p.collected++;
          rates.get(source.id)!.add();
          p.done++;
          if (r.usage) {
            p.promptTokens += r.usage.prompt_tokens;
            p.completionTokens += r.usage.completion_tokens;
          }
        }
      } catch (e) {
        if (e instanceof SourceError) {
          const err = e;
          if (err.kind !== 'aborted') {
            try {
              await opts.store.putError({
                key: item.key,
                sourceId: source.id,
                promptId: item.prompt.id,
                sampleIndex: item.sampleIndex,
                ...(err.status !== undefined ? { status: err.status } : {}),
                kind: err.kind,
                message: redact(err.message, [source.apiKey]),
                attempts: err.attempts,
                createdAt: new Date().toISOString(),
              });
              p.failed++;
            } catch (storeErr) {
              storeFailure ??= storeErr;
              stop.abort();
            }
          }
        } else {
          // The store threw (or a bug): stop the job, report after the workers have settled.
          storeFailure ??= e;
          stop.abort();
        }
      } finally {
        p.inFlight--;
        p.requests.splice(p.requests.indexOf(request), 1);
        inFlightKeys.delete(item.key);
        emit();
      }
    }
  };

  // Local sources: one model at a time, in order, beside the remote workers.
  const localChain = async () => {
    for (const source of opts.sources) {
      if (!isLocalSource(source)) continue;
      const p = progress.get(source.id)!;
      if (stop.signal.aborted) return;
      try {
        await (opts.local!.collect ?? collectLocalSource)({
          source,
          items: queues.get(source.id)!,
          local: opts.local!,
          store: opts.store,
          signal: stop.signal,
          counts: p,
          progress: p.local!,
          putError: (item, message) =>
            opts.store.putError({ key: item.key, sourceId: source.id, promptId: item.prompt.id, sampleIndex: item.sampleIndex, kind: 'config', message, attempts: 1, createdAt: new Date().toISOString() }),
          // A local source's rate counts from when its model starts generating, not from the run's start.
          itemRate: (at) => {
            const r = new DecayingRate(at);
            rates.set(source.id, r);
            return r;
          },
          emit,
        });
      } catch (e) {
        // The store threw (or a bug): stop the job, report after the workers have settled.
        storeFailure ??= e;
        stop.abort();
        return;
      }
    }
  };

  const running: Promise<void>[] = [localChain()];
  for (const source of opts.sources) {
    const queue = queues.get(source.id)!;
    if (queue.length === 0 || isLocalSource(source)) continue;
    const limiter = new RateLimiter(source.requestsPerMinute);
    const policy = { ...DEFAULT_RETRY_POLICY, ...source.retry, ...opts.retryPolicy };
    const client = createClient(source, policy.timeoutMs);
    const n = Math.max(1, Math.min(source.concurrency || 1, queue.length));
    for (let i = 0; i < n; i++) running.push(worker(source, queue, limiter, client));
  }
  // A heartbeat while requests are in flight: their ages grow and the ETA follows (rate.ts).
  const heartbeat = setInterval(() => [...progress.values()].some((p) => p.inFlight > 0) && emit(), HEARTBEAT_MS);
  try {
    await Promise.all(running);
  } finally {
    clearInterval(heartbeat);
  }
  opts.signal?.removeEventListener('abort', onOuterAbort);
  if (stop.signal.aborted) for (const p of progress.values()) if (p.local && p.local.state !== 'done' && p.local.state !== 'skipped') p.local.state = 'cancelled';
  if (storeFailure) throw storeFailure;

  const sources = snapshot();
  const sum = (f: (p: SourceProgress) => number) => sources.reduce((a, p) => a + f(p), 0);
  const pending = sum((p) => p.total - p.done - p.failed);
  opts.onProgress?.(sources);
  return {
    cancelled: pending > 0 && stop.signal.aborted,
    sources,
    collected: sum((p) => p.collected),
    failed: sum((p) => p.failed),
    skipped: sum((p) => p.skipped),
    pending,
    skippedSources: sources.filter((p) => p.local?.state === 'skipped').map((p) => ({ sourceId: p.sourceId, name: p.name, reason: p.local!.skipReason ?? 'skipped' })),
  };
}
