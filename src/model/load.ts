// Load a checkpoint (any family of families.ts) from any ModelSource onto the GPU: config.json (+ generation_config),
// model.safetensors or model.safetensors.index.json + shards, optional tokenizer files.
// Every expected tensor is checked (present exactly once, right shape, BF16/F16/F32) before
// anything is allocated, then streamed to the GPU in pieces straight from the (cached) file.

import type { ByteSource } from '../io/byte-source';
import { ProgressMeter, type Progress } from '../io/progress';
import type { GpuContext } from '../gpu/context';
import { proveKernelPaths } from '../engine/selftest';
import type { DType } from '../gpu/dtype';
import type { QuantDType } from '../gpu/quant';
import { parseModelConfig, type ModelConfig } from './config';
import { readSafetensorsHeader, SafetensorsError, type SafetensorsHeader, type TensorEntry } from './safetensors';
import { checkFileName, fetchFiles, type ModelSource } from './source';
import { ggufTensorDTypes, loadGgufModel, planGgufTensors, readGgufMeta } from './gguf/load';
import { cacheStoreOf, quantCacheKey, readQuantCache, writeQuantCache } from './quant-cache';
import { expectedTensors, uploadReleasingOnFailure, uploadWeights, type ModelWeights, type TensorBytes } from './weights';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export interface LoadProgress {
  /** 'download': remote files into the cache; 'upload': tensors onto the GPU. */
  phase: 'download' | 'upload';
  /** The file being downloaded, or the shard whose tensors are being uploaded. */
  file: Progress;
  /** Bytes of the whole phase: files downloaded, or tensor bytes uploaded. */
  overall: Progress;
}

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /**
   * Called once every file is downloaded and checked, just before the first GPU allocation: the
   * studio frees the model it had loaded here, so a load that fails before this point (a 404, a
   * bad config, a truncated file, a cancel) leaves that model in place.
   */
  beforeUpload?: () => Promise<void>;
  /**
   * Quantize the base on load (projections to int8/int4, embedding / lm_head to int8; see
   * weights.ts). A remote source caches the result in its store (quant-cache.ts): the next load
   * with the same format reads that and neither downloads the checkpoint nor quantizes.
   */
  quant?: QuantDType | null;
}

export interface TokenizerFiles {
  /** tokenizer.json, parsed. */
  tokenizerJson: Record<string, unknown>;
  /** tokenizer_config.json, parsed ({} when the folder has none). */
  tokenizerConfig: Record<string, unknown>;
  /** chat_template.jinja (newer repos keep the template there), or null. */
  chatTemplate: string | null;
}

export interface LoadedFile {
  name: string;
  bytes: number;
}

export interface LoadedModel {
  config: ModelConfig;
  weights: ModelWeights;
  tokenizerFiles: TokenizerFiles | null;
  /** generation_config.json, parsed, or null (sampling defaults such as temperature, top_p). */
  generationConfig: Record<string, unknown> | null;
  /** Every file read, in order. */
  files: LoadedFile[];
  /** Where the model came from (the source's description). */
  source: string;
  /** The quantized format of the base, or null for its file's float dtype. */
  quant?: QuantDType | null;
  /** 'read': weights came from the quantized cache; 'written': quantized now and cached; null: no cache. */
  quantCache?: 'read' | 'written' | null;
}

/** Where each expected tensor lives. */
export interface TensorPlan {
  tensors: Map<string, { file: string; entry: TensorEntry }>;
  /** Tensor bytes to upload (the tied embedding counted once). */
  totalBytes: number;
}

const DTYPES: Record<TensorEntry['dtype'], DType> = { BF16: 'bf16', F16: 'f16', F32: 'f32' };

/** Which weight files to read: the single file, or the shards the index names for expected tensors. */
export async function weightFiles(
  source: ModelSource,
  config: ModelConfig,
  signal?: AbortSignal,
): Promise<{ files: string[]; index: Map<string, string> | null; indexBytes: number }> {
  if (await source.has(SINGLE_FILE, { signal })) return { files: [SINGLE_FILE], index: null, indexBytes: 0 };
  if (!(await source.has(INDEX_FILE, { signal }))) {
    const hint = (await source.has('pytorch_model.bin', { signal }).catch(() => false))
      ? ' It has only PyTorch .bin weights: convert them to safetensors first.'
      : '';
    throw new CheckpointError(`${source.description}: has neither ${SINGLE_FILE} nor ${INDEX_FILE}.${hint}`);
  }
  const raw = await source.json<{ weight_map?: unknown }>(INDEX_FILE, { signal });
  const map = raw?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map))
    throw new CheckpointError(`${INDEX_FILE}: has no "weight_map" object`);
  const index = new Map<string, string>();
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string') throw new CheckpointError(`${INDEX_FILE}: weight_map["${name}"] is not a file name`);
    checkFileName(file);
    index.set(name, file);
  }
  checkExtraNames(config, index.keys(), INDEX_FILE);
  const expected = expectedTensors(config);
  const missing = [...expected.keys()].filter((n) => !index.has(n));
  if (missing.length) throw new CheckpointError(`${INDEX_FILE}: ${listNames(missing)} missing from weight_map`);
  const files = [...new Set([...expected.keys()].map((n) => index.get(n)!))];
  const indexBytes = (await source.size(INDEX_FILE, { signal })) ?? 0;
  return { files, index, indexBytes };
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 6).map((n) => `"${n}"`).join(', ');
  const more = names.length > 6 ? ` and ${names.length - 6} more` : '';
  return `${names.length === 1 ? 'tensor' : `${names.length} tensors`} ${shown}${more} ${names.length === 1 ? 'is' : 'are'}`;
}

/** Refuse tensors that show the checkpoint does not match its config (extra layers, adapters). */
function checkExtraNames(config: ModelConfig, names: Iterable<string>, where: string): void {
  for (const name of names) {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= config.numLayers)
      throw new CheckpointError(
        `${where}: has "${name}" but config.json says num_hidden_layers = ${config.numLayers}; the weights and config do not match`,
      );
    if (/\.lora_[AB]\b|lora_embedding_[AB]/.test(name))
      throw new CheckpointError(`${where}: has LoRA adapter tensors ("${name}"); load the base model, then the adapter`);
  }
}

/** Check every expected tensor against the headers: present exactly once, right shape. */
export function planTensors(config: ModelConfig, headers: SafetensorsHeader[], index: Map<string, string> | null): TensorPlan {
  const found = new Map<string, { file: string; entry: TensorEntry }>();
  for (const h of headers) {
    checkExtraNames(config, h.tensors.keys(), h.file);
    for (const [name, entry] of h.tensors) {
      const prev = found.get(name);
      if (prev) throw new CheckpointError(`tensor "${name}" appears in both ${prev.file} and ${h.file}`);
      found.set(name, { file: h.file, entry });
    }
  }
  const expected = expectedTensors(config);
  const missing: string[] = [];
  const tensors = new Map<string, { file: string; entry: TensorEntry }>();
  let totalBytes = 0;
  for (const [name, shape] of expected) {
    const at = found.get(name);
    if (!at) {
      missing.push(name);
      continue;
    }
    const s = at.entry.shape;
    if (s.length !== shape.length || s.some((d, i) => d !== shape[i]))
      throw new CheckpointError(
        `${at.file}: tensor "${name}" has shape [${s.join(', ')}] but config.json implies [${shape.join(', ')}]`,
      );
    tensors.set(name, at);
    totalBytes += at.entry.end - at.entry.begin;
  }
  if (missing.length) {
    if (index) {
      const byShard = missing.map((n) => `"${n}" (the index puts it in ${index.get(n)})`);
      throw new CheckpointError(
        `${missing.length === 1 ? 'tensor' : `${missing.length} tensors`} missing from the shards: ${byShard.slice(0, 6).join(', ')}` +
          `${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}`,
      );
    }
    const file = headers[0]?.file ?? SINGLE_FILE;
    const hint = found.has('tok_embeddings.weight') || found.has('layers.0.attention.wq.weight')
      ? ' These look like Meta\'s original weights: use the Hugging Face (transformers) format.'
      : '';
    throw new CheckpointError(`${file}: ${listNames(missing)} missing.${hint}`);
  }
  return { tensors, totalBytes };
}

/** What a model folder says about itself, read before any weight: enough to plan and tokenize. */
export interface ModelMeta {
  config: ModelConfig;
  tokenizerFiles: TokenizerFiles | null;
  generationConfig: Record<string, unknown> | null;
  /** The files read, in order. */
  files: LoadedFile[];
  /** A GGUF file's per-tensor dtypes by Hugging Face name (its block types), for the memory plan. */
  tensorDTypes?: Record<string, DType>;
}

/** config.json (+ generation_config.json) and the tokenizer files, no weights. */
export async function readModelMeta(source: ModelSource, opts: { signal?: AbortSignal } = {}): Promise<ModelMeta> {
  const { signal } = opts;
  if (source.ggufFile) {
    // One GGUF file: its metadata holds the config and tokenizer (gguf/load.ts); a remote file
    // not in the cache is not downloaded for this, its header is read with Range requests.
    const { config, tokenizerFiles, generationConfig, files, header } = await readGgufMeta(source, source.ggufFile, { signal, headerOnly: true });
    return { config, tokenizerFiles, generationConfig, files, tensorDTypes: ggufTensorDTypes(planGgufTensors(header, config)) };
  }
  const files: LoadedFile[] = [];
  const readJsonFile = async <T>(name: string): Promise<T> => {
    const value = await source.json<T>(name, { signal });
    files.push({ name, bytes: (await source.size(name, { signal })) ?? 0 });
    return value;
  };

  const rawConfig = await readJsonFile<unknown>('config.json');
  const generationConfig = (await source.has('generation_config.json', { signal }))
    ? await readJsonFile<Record<string, unknown>>('generation_config.json')
    : null;
  const config = parseModelConfig(rawConfig, generationConfig ?? undefined);

  let tokenizerFiles: TokenizerFiles | null = null;
  if (await source.has('tokenizer.json', { signal })) {
    const tokenizerJson = await readJsonFile<Record<string, unknown>>('tokenizer.json');
    const tokenizerConfig = (await source.has('tokenizer_config.json', { signal }))
      ? await readJsonFile<Record<string, unknown>>('tokenizer_config.json')
      : {};
    let chatTemplate: string | null = null;
    if (await source.has('chat_template.jinja', { signal })) {
      const f = await source.open('chat_template.jinja', { signal });
      chatTemplate = new TextDecoder().decode(await f.read(0, f.size));
      files.push({ name: f.name, bytes: f.size });
    }
    tokenizerFiles = { tokenizerJson, tokenizerConfig, chatTemplate };
  }
  return { config, tokenizerFiles, generationConfig, files };
}

/** Load config, tokenizer files and weights from `source`; weights go straight to the GPU. */
export async function loadModel(ctx: GpuContext, source: ModelSource, opts: LoadOptions = {}): Promise<LoadedModel> {
  const { signal, onProgress } = opts;
  // GPU-only kernel paths (flash attention, split-KV decode) are taken once proven on this
  // device; the proof is a few tiny kernels against float64 (none on CPU adapters).
  await proveKernelPaths(ctx);
  if (source.ggufFile) {
    if (opts.quant)
      throw new CheckpointError(
        `${source.description}: quant ${opts.quant} quantizes bf16/f16/f32 safetensors on load; a GGUF file's weights load in the file's own formats (decoded in the kernels): load it without quant`,
      );
    return loadGgufModel(ctx, source, source.ggufFile, opts);
  }
  const { config, tokenizerFiles, generationConfig, files } = await readModelMeta(source, { signal });
  const quant = opts.quant ?? null;
  const store = quant ? cacheStoreOf(source) : null;
  if (quant && config.head !== 'causal-lm')
    throw new CheckpointError(`quant ${quant}: only causal LMs are quantized on load; load a reward model in its own dtype`);
  if (quant && store && (await store.isComplete(quantCacheKey(quant)))) {
    const report = (loaded: number, total: number) => {
      const p = new ProgressMeter(quantCacheKey(quant), total).report(loaded);
      onProgress?.({ phase: 'upload', file: p, overall: p });
    };
    let freed = false;
    const beforeUpload = async () => {
      freed = true;
      await opts.beforeUpload?.();
    };
    const cached = await readQuantCache(ctx, config, store, quant, { onBytes: report, signal, beforeUpload });
    // The previous model is freed only once (when the cache was usable, it was freed already).
    if (freed) opts = { ...opts, beforeUpload: undefined };
    if (cached) {
      files.push({ name: quantCacheKey(quant), bytes: cached.bytes });
      return { config, weights: cached.weights, tokenizerFiles, generationConfig, files, source: source.description, quant, quantCache: 'read' };
    }
  }

  const { files: weightNames, index, indexBytes } = await weightFiles(source, config, signal);
  if (index) files.push({ name: INDEX_FILE, bytes: indexBytes });
  const shards = await fetchFiles(source, weightNames, {
    signal,
    onProgress: onProgress && ((p) => onProgress({ phase: 'download', ...p })),
  });
  const headers: SafetensorsHeader[] = [];
  for (const shard of shards) {
    try {
      headers.push(await readSafetensorsHeader(shard));
    } catch (e) {
      // A truncated or corrupt cached copy would fail the same way forever: drop it.
      if (e instanceof SafetensorsError) await source.evict?.(shard.name);
      throw e;
    }
    files.push({ name: shard.name, bytes: shard.size });
  }
  const plan = planTensors(config, headers, index);
  signal?.throwIfAborted();
  await opts.beforeUpload?.();
  const weights = await uploadPlanned(ctx, config, plan, new Map(shards.map((s) => [s.name, s])), opts);
  let quantCache: LoadedModel['quantCache'] = null;
  if (quant && store) {
    // A cache that cannot be written (a full disk, the OPFS quota) costs only the next load's time.
    quantCache = await writeQuantCache(ctx, weights, store, quant).then(
      () => 'written' as const,
      () => null,
    );
  }
  return { config, weights, tokenizerFiles, generationConfig, files, source: source.description, quant, quantCache };
}

/** Stream the planned tensors to the GPU; on any failure, release what was allocated. */
async function uploadPlanned(
  ctx: GpuContext,
  config: ModelConfig,
  plan: TensorPlan,
  shards: Map<string, ByteSource>,
  opts: LoadOptions,
): Promise<ModelWeights> {
  const { onProgress, signal } = opts;
  const overall = new ProgressMeter('upload', plan.totalBytes);
  // Per-shard totals, for the file-level figures.
  const shardTotals = new Map<string, number>();
  for (const { file, entry } of plan.tensors.values()) shardTotals.set(file, (shardTotals.get(file) ?? 0) + entry.end - entry.begin);
  const perFile = new Map<string, { meter: ProgressMeter; loaded: number }>();
  for (const [file, total] of shardTotals) perFile.set(file, { meter: new ProgressMeter(file, total), loaded: 0 });
  let uploaded = 0;

  const get = async (name: string): Promise<TensorBytes> => {
    const at = plan.tensors.get(name);
    if (!at) throw new CheckpointError(`tensor "${name}" was not planned`);
    const src = shards.get(at.file)!;
    const { entry } = at;
    const size = entry.end - entry.begin;
    const f = perFile.get(at.file)!;
    return {
      dtype: DTYPES[entry.dtype],
      shape: entry.shape,
      async read(offset, length) {
        signal?.throwIfAborted();
        if (offset < 0 || offset + length > size)
          throw new CheckpointError(`${at.file}: read of bytes ${offset}..${offset + length} outside tensor "${name}" (${size} bytes)`);
        const bytes = await src.read(entry.begin + offset, length);
        uploaded += length;
        f.loaded += length;
        if (onProgress) onProgress({ phase: 'upload', file: f.meter.report(f.loaded), overall: overall.report(uploaded) });
        return bytes;
      },
    };
  };

  return uploadReleasingOnFailure(ctx, (tracking) => uploadWeights(tracking, config, get, undefined, { quant: opts.quant ?? null }));
}
