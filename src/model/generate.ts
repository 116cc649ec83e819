// Text generation on top of the KV cache: prefill the prompt, then decode one token per step,
// each chosen by a seeded sampler (sampling.ts) from the last position's logits; stop at an
// end-of-sequence id or after maxNewTokens. With or without a LoRA adapter.
//
//   const r = await generate(model, { promptIds, maxNewTokens: 64, sampling: { temperature: 0 }, eosTokenIds }, (id) => …);
//   r.ids          // the generated ids only (the eos id that stopped it included, as HF does)
//   r.finishReason // 'eos' | 'length' | 'aborted'
//
// generateSamples draws `samplesPerPrompt` (n) continuations of each of several prompts, batched:
//
//   const out = await generateSamples(model, { prompts, samplesPerPrompt: 4, maxNewTokens: 256, sampling, eosTokenIds, batchSize });
//   out[i][j]      // sample j of prompt i (a GenerateResult)
//
// - Rows: (prompt i, sample j) in that order, grouped into batches of at most `batchSize` rows
//   (planGenerationBatch in memory-plan.ts picks it; default: every row, or fewer where a buffer
//   limit requires): whole prompts per batch when batchSize ≥ n, else batchSize samples of one
//   prompt (generationBatchLayout). A batch decodes together, each row stopping on its own (a
//   finished row keeps stepping with a masked token and its output is ignored).
// - Shared prefill: each distinct prompt of a batch is prefilled once, left-padded to the call's
//   longest prompt, in a [prompts, Tp] cache; its keys, values, mask and last hidden state are
//   copied on the GPU into the rows that sample from it (copyKvRows; no recompute). With n = 1
//   the rows are prefilled in place. Both caches are allocated once per call and reused by every
//   batch, so the pool's peak is the plan's (planMemory with generation.prompts).
// - Seeds: row (i, j) samples with seed promptSeeds[i] + j, promptSeeds[i] defaulting to
//   sampling.seed + i·n. A row's draws therefore depend on (i, j) and the options only, never on
//   batchSize or on which rows share its batch: row (i, j) gives what
//   generate(model, { promptIds: prompts[i], sampling: { ...sampling, seed: promptSeeds[i] + j } })
//   gives alone (generate-samples.test.ts proves it, greedy and sampled). With n = 1 this is
//   generateBatch's rule: row b samples with seed + b.
// - Exactness: a row's math is the same alone or batched (positions follow the mask, padding is
//   masked out of attention), but float32 rounding can differ in the last bits: the matmul kernel
//   path depends on the rows M of a product (CPU adapters: `skinny` for M ≤ 4, `vec4`/`direct`
//   above; GPUs: `gemv` for M ≤ 8, `tiled` above), each summing K in its own order, and
//   attention's online softmax rescales at key-tile boundaries that left padding shifts. Measured
//   on the test models: |Δ logit| ≤ 5e-6 of the largest |logit| (0 for an unpadded row whose
//   products keep their path).
//   A token can differ only where that moves a greedy argmax tie, a top-k/top-p cut, or the
//   seeded draw across a boundary of the cumulative distribution (probability ~1e-6 per token).
//
// generateBatch(prompts) is generateSamples with n = 1, one result per prompt.
//
// Per step, greedy without repetition penalty (the GPU path): one submit that appends the B
// tokens, computes the logits and takes their argmax on the GPU (shaders/sampling.wgsl), and one
// readback of B ids (4 bytes a row). Any other sampling (temperature > 0, top-k, top-p,
// repetition penalty), `gpuSampling: false`, an `onLogits` hook, or a row whose logits hold
// NaN/+Inf: one readback of [B, V] logits and the host sampler (sampling.ts). Both choose the
// same ids.
import { appendAndReadGreedy, appendTokens, copyKvRows, createKvCache, readGreedyIds, readLogits, resetKvCache, type KvCache } from './kv-cache';
import { activeAdapter, type DecoderModel } from './decoder';
import { generationBatchLayout, planGenerationBatch } from './memory-plan';
import type { LoraAdapters } from './lora';
import { createSampler, resolveSampling, type SamplingOptions } from './sampling';
import { isQuantDType } from '../gpu/quant';

export type FinishReason = 'eos' | 'length' | 'aborted';

export interface GenerateResult {
  /** Generated ids only (not the prompt); ends with the eos id when finishReason is 'eos'. */
  ids: number[];
  finishReason: FinishReason;
}

export interface GenerateOptions {
  promptIds: readonly number[];
  /** At most this many new tokens (≥ 0). */
  maxNewTokens: number;
  /** Default: temperature 1, no filters, seed 0 (see sampling.ts); `{ temperature: 0 }` is greedy. */
  sampling?: SamplingOptions;
  /** Generation stops after emitting any of these (default none). */
  eosTokenIds?: readonly number[];
  /** Adapter to apply; null, omitted or `enabled = false`: the base model. */
  lora?: LoraAdapters | null;
  /** Aborting stops before the next step; the result holds what was generated, finishReason 'aborted'. */
  signal?: AbortSignal;
  /** Choose greedy tokens on the GPU where the options allow it (default true; false: always the host sampler). */
  gpuSampling?: boolean;
  /**
   * Called with each unfinished row's logits (f32 [V], a view of the step's readback) before its
   * token is drawn from them: a caller reads them (log-probabilities) or changes them in place
   * (a logits processor, e.g. presence/frequency penalties). Puts every step on the host path.
   */
  onLogits?: (row: number, logits: Float32Array, step: number) => void;
}

export interface GenerateBatchOptions extends Omit<GenerateOptions, 'promptIds'> {
  prompts: readonly (readonly number[])[];
  /** Rows decoded together (default: all; see generateSamples). */
  batchSize?: number;
}

export interface GenerateSamplesOptions extends Omit<GenerateOptions, 'promptIds' | 'onLogits'> {
  prompts: readonly (readonly number[])[];
  /** Continuations drawn per prompt (n ≥ 1, default 1). */
  samplesPerPrompt?: number;
  /** Seed of sample 0 of each prompt; sample j draws with promptSeeds[i] + j. Default sampling.seed + i·n. */
  promptSeeds?: readonly number[];
  /** Most rows decoded together (≥ 1; default all, or fewer where a buffer limit requires). planGenerationBatch picks one for a memory budget. */
  batchSize?: number;
  /** As GenerateOptions.onLogits, for row (prompt, sample). */
  onLogits?: (prompt: number, sample: number, logits: Float32Array, step: number) => void;
  /** Called once a row is complete ('eos' or 'length'), before the rest of its batch finishes (awaited). */
  onRowDone?: (prompt: number, sample: number, result: GenerateResult) => void | Promise<void>;
}

/** Called with each token as it is chosen (awaited before the next step). */
export type OnToken = (id: number, step: number) => void | Promise<void>;
export type OnBatchToken = (row: number, id: number, step: number) => void | Promise<void>;
export type OnSampleToken = (prompt: number, sample: number, id: number, step: number) => void | Promise<void>;

export class GenerateError extends Error {
  override name = 'GenerateError';
}

/** Generate a continuation of one prompt; see the file comment. */
export async function generate(model: DecoderModel, o: GenerateOptions, onToken?: OnToken): Promise<GenerateResult> {
  const { promptIds, ...rest } = o;
  const [result] = await generateBatch(model, { ...rest, prompts: [promptIds] }, onToken && ((_row, id, step) => onToken(id, step)));
  return result!;
}

/** Generate one continuation of each of several prompts at once (row b samples with seed + b). */
export async function generateBatch(model: DecoderModel, o: GenerateBatchOptions, onToken?: OnBatchToken): Promise<GenerateResult[]> {
  const { onLogits, ...rest } = o;
  const out = await generateSamples(
    model,
    { ...rest, samplesPerPrompt: 1, ...(onLogits ? { onLogits: (b: number, _j: number, logits: Float32Array, step: number) => onLogits(b, logits, step) } : {}) },
    onToken && ((b, _j, id, step) => onToken(b, id, step)),
  );
  return out.map((r) => r[0]!);
}

interface Row {
  prompt: number;
  sample: number;
}

/**
 * Prompt positions a cancellable prefill appends per submit. With a signal, a prompt longer than
 * this is prefilled in chunks, the GPU waited for after each, so a cancel takes effect within one
 * chunk instead of after the whole prompt (a long prompt on a slow GPU takes minutes, and the
 * server behind a cancelled request is busy until it ends). Shorter prompts, and every prompt
 * without a signal, are appended whole: their arithmetic is unchanged.
 */
export const PREFILL_CHUNK = 256;

/** Appends [B, Tp] prompt positions to an empty cache; false when the signal stopped it between chunks. */
async function prefillPrompts(model: DecoderModel, cache: KvCache, x: { ids: Int32Array; mask: Int32Array }, Tp: number, lora: GenerateOptions['lora'], signal: AbortSignal | undefined): Promise<boolean> {
  if (!signal || Tp <= PREFILL_CHUNK) {
    appendTokens(model, cache, { ids: x.ids, mask: x.mask, tokens: Tp }, { lora });
    return true;
  }
  const B = cache.batchSize;
  for (let t0 = 0; t0 < Tp; t0 += PREFILL_CHUNK) {
    const n = Math.min(PREFILL_CHUNK, Tp - t0);
    const ids = new Int32Array(B * n);
    const mask = new Int32Array(B * n);
    for (let b = 0; b < B; b++) {
      ids.set(x.ids.subarray(b * Tp + t0, b * Tp + t0 + n), b * n);
      mask.set(x.mask.subarray(b * Tp + t0, b * Tp + t0 + n), b * n);
    }
    appendTokens(model, cache, { ids, mask, tokens: n }, { lora });
    if (t0 + n < Tp) {
      await model.ctx.flush();
      if (signal.aborted) return false;
    }
  }
  return true;
}

/** Draw samplesPerPrompt continuations of each prompt, batched with a shared prefill; see the file comment. */
export async function generateSamples(model: DecoderModel, o: GenerateSamplesOptions, onToken?: OnSampleToken): Promise<GenerateResult[][]> {
  const V = model.config.vocabSize;
  const P = o.prompts.length;
  const n = o.samplesPerPrompt ?? 1;
  if (P === 0) throw new GenerateError('generate: no prompts');
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new GenerateError(`generate: maxNewTokens ${o.maxNewTokens} must be an integer ≥ 0`);
  if (!Number.isInteger(n) || n < 1) throw new GenerateError(`generate: samplesPerPrompt ${n} must be an integer ≥ 1`);
  if (o.batchSize !== undefined && (!Number.isInteger(o.batchSize) || o.batchSize < 1))
    throw new GenerateError(`generate: batchSize ${o.batchSize} must be an integer ≥ 1 (rows decoded together)`);
  o.prompts.forEach((p, b) => {
    const where = P > 1 ? `prompt ${b}` : 'the prompt';
    if (p.length === 0) throw new GenerateError(`generate: ${where} is empty (it needs at least one token, e.g. BOS)`);
    p.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new GenerateError(`generate: ${where} token ${t} = ${id} is not a token id in [0, ${V})`);
    });
  });
  const sampling = resolveSampling(o.sampling);
  if (o.promptSeeds) {
    if (o.promptSeeds.length !== P) throw new GenerateError(`generate: promptSeeds has ${o.promptSeeds.length} seeds for ${P} prompts (one per prompt)`);
    o.promptSeeds.forEach((s, i) => {
      if (!Number.isSafeInteger(s)) throw new GenerateError(`generate: promptSeeds[${i}] = ${s} must be an integer`);
    });
  }
  const seedOf = (r: Row) => (o.promptSeeds ? o.promptSeeds[r.prompt]! : sampling.seed + r.prompt * n) + r.sample;
  const Tp = Math.max(...o.prompts.map((p) => p.length));
  const maxPos = model.config.maxPositionEmbeddings;
  if (Tp + o.maxNewTokens > maxPos)
    throw new GenerateError(`generate: ${Tp} prompt + ${o.maxNewTokens} new tokens exceed the model's max_position_embeddings ${maxPos}`);

  const results: GenerateResult[][] = o.prompts.map(() => Array.from({ length: n }, () => ({ ids: [], finishReason: 'length' as FinishReason })));
  if (o.maxNewTokens === 0) return results;

  const lora = activeAdapter(o.lora);
  const batchSize =
    o.batchSize ??
    planGenerationBatch(model.config, {
      weightDType: model.layout.dtype,
      quant: isQuantDType(model.layout.matrixDType) ? model.layout.matrixDType : null,
      ...(model.layout.tensorDTypes ? { tensorDTypes: model.layout.tensorDTypes } : {}),
      ...(lora ? { loraRank: lora.config.rank, targets: lora.config.targets } : {}),
      maxBindingBytes: model.ctx.limits.maxStorageBufferBindingSize,
      maxBufferBytes: model.ctx.limits.maxBufferSize,
      memoryBytes: null,
      promptTokens: Tp,
      maxNewTokens: o.maxNewTokens,
      samplesPerPrompt: n,
      maxRows: P * n,
    }).batchSize;
  const layout = generationBatchLayout(batchSize, n, P);
  const batches: Row[][] = [];
  if (n === 1 || batchSize >= n)
    for (let i = 0; i < P; i += layout.prefillRows)
      batches.push(o.prompts.slice(i, i + layout.prefillRows).flatMap((_, k) => Array.from({ length: n }, (_, j) => ({ prompt: i + k, sample: j }))));
  else
    for (let i = 0; i < P; i++)
      for (let j = 0; j < n; j += batchSize) batches.push(Array.from({ length: Math.min(batchSize, n - j) }, (_, k) => ({ prompt: i, sample: j + k })));

  // The last generated token is never fed back: the cache holds the prompt + maxNewTokens - 1.
  const shared = layout.prefillRows < layout.rows;
  const cache = createKvCache(model, { batchSize: layout.rows, capacity: Tp + o.maxNewTokens - 1 });
  let prefill: KvCache | null = null;
  try {
    if (shared) prefill = createKvCache(model, { batchSize: layout.prefillRows, capacity: Tp });
    const state = { prefilled: '' };
    for (const rows of batches) {
      if (o.signal?.aborted) {
        for (const r of rows) results[r.prompt]![r.sample]!.finishReason = 'aborted';
        continue;
      }
      await decodeBatch(model, o, rows, { cache, prefill, state, Tp, sampling, seedOf, results, onToken });
    }
  } finally {
    cache.release();
    prefill?.release();
  }
  return results;
}

interface BatchState {
  cache: KvCache;
  prefill: KvCache | null;
  /** The prompts the prefill cache holds (their indices), so a batch of the same prompts reuses it. */
  state: { prefilled: string };
  Tp: number;
  sampling: ReturnType<typeof resolveSampling>;
  seedOf: (r: Row) => number;
  results: GenerateResult[][];
  onToken: OnSampleToken | undefined;
}

/** Left-pads prompts[slot] into [slots, Tp] ids and mask; spare slots repeat the first (finite values, ignored). */
function padPrompts(prompts: readonly (readonly number[])[], slots: number, Tp: number): { ids: Int32Array; mask: Int32Array } {
  const ids = new Int32Array(slots * Tp);
  const mask = new Int32Array(slots * Tp);
  for (let b = 0; b < slots; b++) {
    const p = prompts[b] ?? prompts[0]!;
    const pad = Tp - p.length;
    for (let t = 0; t < p.length; t++) {
      ids[b * Tp + pad + t] = p[t]!;
      mask[b * Tp + pad + t] = 1;
    }
  }
  return { ids, mask };
}

/** Rows stopped by the signal before their first token. */
function abortRows(rows: readonly Row[], results: GenerateResult[][]): void {
  for (const r of rows) results[r.prompt]![r.sample]!.finishReason = 'aborted';
}

/** Prefill and decode one batch of rows (at most cache.batchSize; spare rows idle). */
async function decodeBatch(model: DecoderModel, o: GenerateSamplesOptions, rows: readonly Row[], s: BatchState): Promise<void> {
  const { cache, prefill, Tp, sampling, results } = s;
  const V = model.config.vocabSize;
  const B = cache.batchSize;
  const lora = o.lora;
  resetKvCache(cache);
  if (prefill) {
    // Each distinct prompt once; identical prompts (by their ids) share a slot.
    const slotOf = new Map<string, number>();
    const distinct: (readonly number[])[] = [];
    const rowSlot = rows.map((r) => {
      const p = o.prompts[r.prompt]!;
      const key = p.join(',');
      let slot = slotOf.get(key);
      if (slot === undefined) {
        slotOf.set(key, (slot = distinct.length));
        distinct.push(p);
      }
      return slot;
    });
    const key = [...slotOf.keys()].join('|');
    if (key !== s.state.prefilled) {
      resetKvCache(prefill);
      s.state.prefilled = '';
      const x = padPrompts(distinct, prefill.batchSize, Tp);
      if (!(await prefillPrompts(model, prefill, x, Tp, lora, o.signal))) return abortRows(rows, results);
      s.state.prefilled = key;
    }
    copyKvRows(model, prefill, cache, Array.from({ length: B }, (_, b) => rowSlot[b] ?? 0));
  } else {
    const x = padPrompts(
      rows.map((r) => o.prompts[r.prompt]!),
      B,
      Tp,
    );
    if (!(await prefillPrompts(model, cache, x, Tp, lora, o.signal))) return abortRows(rows, results);
  }

  const samplers = rows.map((r) => createSampler({ ...sampling, seed: s.seedOf(r) }));
  const contexts = rows.map((r) => new Set(o.prompts[r.prompt]!));
  const out = rows.map((r) => results[r.prompt]![r.sample]!);
  // Spare rows (a short last batch) start finished.
  const done = Array.from({ length: B }, (_, b) => b >= rows.length);
  const eos = new Set(o.eosTokenIds ?? []);
  // Greedy without a penalty needs no logits on the host: the GPU picks the ids.
  const onGpu = o.gpuSampling !== false && !o.onLogits && sampling.temperature === 0 && sampling.repetitionPenalty === 1;
  let gpuIds = onGpu ? await readGreedyIds(model, cache) : null;
  for (let step = 0; ; step++) {
    if (o.signal?.aborted) {
      for (let b = 0; b < rows.length; b++) if (!done[b]) out[b]!.finishReason = 'aborted';
      break;
    }
    // -1 from the GPU: a row's logits hold NaN/+Inf; the host sampler reports it.
    const logits = gpuIds && gpuIds.every((id, b) => done[b] || id >= 0) ? null : await readLogits(model, cache);
    const next = new Int32Array(B);
    const nextMask = new Int32Array(B);
    for (let b = 0; b < rows.length; b++) {
      if (done[b]) continue;
      const r = rows[b]!;
      let id: number;
      if (logits) {
        const row = logits.subarray(b * V, (b + 1) * V);
        o.onLogits?.(r.prompt, r.sample, row, step);
        id = samplers[b]!.next(row, contexts[b]);
      } else id = gpuIds![b]!;
      out[b]!.ids.push(id);
      contexts[b]!.add(id);
      next[b] = id;
      nextMask[b] = 1;
      if (eos.has(id)) {
        done[b] = true;
        out[b]!.finishReason = 'eos';
      } else if (step + 1 === o.maxNewTokens) done[b] = true;
      await s.onToken?.(r.prompt, r.sample, id, step);
      if (done[b]) await o.onRowDone?.(r.prompt, r.sample, out[b]!);
    }
    if (done.every(Boolean)) break;
    if (onGpu) gpuIds = await appendAndReadGreedy(model, cache, { ids: next, mask: nextMask, tokens: 1 }, { lora });
    else appendTokens(model, cache, { ids: next, mask: nextMask, tokens: 1 }, { lora });
  }
}
