// Text generation on top of the KV cache: prefill the prompt, then decode one token per step,
// each chosen by a seeded sampler (sampling.ts) from the last position's logits; stop at an
// end-of-sequence id or after maxNewTokens. With or without a LoRA adapter.
//
//   const r = await generate(model, { promptIds, maxNewTokens: 64, sampling: { temperature: 0 }, eosTokenIds }, (id) => …);
//   r.ids          // the generated ids only (the eos id that stopped it included, as HF does)
//   r.finishReason // 'eos' | 'length' | 'aborted'
//
// generateBatch runs several prompts at once, left-padded in one cache; a finished row keeps
// stepping with a masked token (every row advances together) and its output is ignored.
// Row b samples with seed + b, so row 0 of a batch draws what generate draws alone.
//
// Per step, greedy without repetition penalty (the GPU path): one submit that appends the B
// tokens, computes the logits and takes their argmax on the GPU (shaders/sampling.wgsl), and one
// readback of B ids (4 bytes a row). Any other sampling (temperature > 0, top-k, top-p,
// repetition penalty), `gpuSampling: false`, an `onLogits` hook, or a row whose logits hold
// NaN/+Inf: one readback of [B, V] logits and the host sampler (sampling.ts). Both choose the
// same ids.
import { appendAndReadGreedy, appendTokens, createKvCache, readGreedyIds, readLogits } from './kv-cache';
import type { DecoderModel } from './decoder';
import type { LoraAdapters } from './lora';
import { createSampler, resolveSampling, type SamplingOptions } from './sampling';

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
}

/** Called with each token as it is chosen (awaited before the next step). */
export type OnToken = (id: number, step: number) => void | Promise<void>;
export type OnBatchToken = (row: number, id: number, step: number) => void | Promise<void>;

export class GenerateError extends Error {
  override name = 'GenerateError';
}

/** Generate a continuation of one prompt; see the file comment. */
export async function generate(model: DecoderModel, o: GenerateOptions, onToken?: OnToken): Promise<GenerateResult> {
  const { promptIds, ...rest } = o;
  const [result] = await generateBatch(model, { ...rest, prompts: [promptIds] }, onToken && ((_row, id, step) => onToken(id, step)));
  return result!;
}

/** Generate continuations of several prompts at once (left-padded in one KV cache). */
export async function generateBatch(model: DecoderModel, o: GenerateBatchOptions, onToken?: OnBatchToken): Promise<GenerateResult[]> {
  const V = model.config.vocabSize;
  const B = o.prompts.length;
  if (B === 0) throw new GenerateError('generate: no prompts');
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 0) throw new GenerateError(`generate: maxNewTokens ${o.maxNewTokens} must be an integer ≥ 0`);
  o.prompts.forEach((p, b) => {
    const where = B > 1 ? `prompt ${b}` : 'the prompt';
    if (p.length === 0) throw new GenerateError(`generate: ${where} is empty (it needs at least one token, e.g. BOS)`);
    p.forEach((id, t) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new GenerateError(`generate: ${where} token ${t} = ${id} is not a token id in [0, ${V})`);
    });
  });
  const sampling = resolveSampling(o.sampling);
  const eos = new Set(o.eosTokenIds ?? []);
  const Tp = Math.max(...o.prompts.map((p) => p.length));
  const maxPos = model.config.maxPositionEmbeddings;
  if (Tp + o.maxNewTokens > maxPos)
    throw new GenerateError(`generate: ${Tp} prompt + ${o.maxNewTokens} new tokens exceed the model's max_position_embeddings ${maxPos}`);

  const results: GenerateResult[] = o.prompts.map(() => ({ ids: [], finishReason: 'length' }));
  if (o.maxNewTokens === 0) return results;
  const samplers = o.prompts.map((_, b) => createSampler({ ...sampling, seed: sampling.seed + b }));
  const contexts = o.prompts.map((p) => new Set(p));
  const done = new Array<boolean>(B).fill(false);

  // The last generated token is never fed back: the cache holds the prompt + maxNewTokens - 1.
  const cache = createKvCache(model, { batchSize: B, capacity: Tp + o.maxNewTokens - 1 });
  try {
    const ids = new Int32Array(B * Tp);
    const mask = new Int32Array(B * Tp);
    o.prompts.forEach((p, b) => {
      const pad = Tp - p.length;
      for (let t = 0; t < p.length; t++) {
        ids[b * Tp + pad + t] = p[t]!;
        mask[b * Tp + pad + t] = 1;
      }
    });
    appendTokens(model, cache, { ids, mask, tokens: Tp }, { lora: o.lora });
    // Greedy without a penalty needs no logits on the host: the GPU picks the ids.
    const onGpu = o.gpuSampling !== false && !o.onLogits && sampling.temperature === 0 && sampling.repetitionPenalty === 1;
    let gpuIds = onGpu ? await readGreedyIds(model, cache) : null;
    for (let step = 0; ; step++) {
      if (o.signal?.aborted) {
        for (let b = 0; b < B; b++) if (!done[b]) results[b]!.finishReason = 'aborted';
        break;
      }
      // -1 from the GPU: a row's logits hold NaN/+Inf; the host sampler reports it.
      const logits = gpuIds && gpuIds.every((id) => id >= 0) ? null : await readLogits(model, cache);
      const next = new Int32Array(B);
      const nextMask = new Int32Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        let id: number;
        if (logits) {
          const row = logits.subarray(b * V, (b + 1) * V);
          o.onLogits?.(b, row, step);
          id = samplers[b]!.next(row, contexts[b]);
        } else id = gpuIds![b]!;
        results[b]!.ids.push(id);
        contexts[b]!.add(id);
        next[b] = id;
        nextMask[b] = 1;
        if (eos.has(id)) {
          done[b] = true;
          results[b]!.finishReason = 'eos';
        } else if (step + 1 === o.maxNewTokens) done[b] = true;
        await onToken?.(b, id, step);
      }
      if (done.every(Boolean)) break;
      if (onGpu) gpuIds = await appendAndReadGreedy(model, cache, { ids: next, mask: nextMask, tokens: 1 }, { lora: o.lora });
      else appendTokens(model, cache, { ids: next, mask: nextMask, tokens: 1 }, { lora: o.lora });
    }
  } finally {
    cache.release();
  }
  return results;
}
