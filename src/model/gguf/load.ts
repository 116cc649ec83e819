// Load a GGUF model file onto the GPU: the file is fetched like a safetensors shard (downloaded
// into the model's cache with Range resume, or opened where it lies), its header and tensor table
// read (reader.ts), the config and tokenizer taken from the metadata (config.ts, tokenizer.ts; a
// tokenizer.json beside the file wins), every tensor the config needs checked (present, shape,
// a type we decode) before anything is allocated, then each tensor's bytes streamed to the GPU as
// the file stores them: Q8_0/Q4_0/Q4_K/Q6_K blocks stay blocks and are decoded in the kernels
// (dtype q8_0, q4_0, q4_k, q6_k), F32/F16/BF16 tensors are ordinary f32/f16/bf16 tensors. Only the
// llama q/k projections are reordered on the way, row by row (config.ts: unpermuteRows).

import { checkRange, type ByteSource } from '../../io/byte-source';
import { ProgressMeter } from '../../io/progress';
import type { GpuContext } from '../../gpu/context';
import type { DType } from '../../gpu/dtype';
import { dequantize, formatOfType, type GgmlTypeName } from '../../gpu/ggml';
import type { ModelConfig } from '../config';
import { type LoadedFile, type LoadedModel, type LoadOptions, type ModelMeta, type TokenizerFiles } from '../load';
import { fetchFiles, type HttpModelSource, type ModelSource } from '../source';
import { uploadReleasingOnFailure, uploadWeights, type ModelWeights, type TensorBytes } from '../weights';
import { expectedGgufTensors, ggufArchitecture, ggufModelConfig, IGNORED_GGUF_TENSORS, permutedHeads, unpermuteRows } from './config';
import { GgufError, readGgufHeader, type GgufHeader, type GgufTensor } from './reader';
import { ggufTokenizerFiles, ggufTokenizerProblem } from './tokenizer';

/** The GPU dtype a GGML type is uploaded as. */
export const GGUF_UPLOAD_DTYPE: Record<GgmlTypeName, DType> = {
  F32: 'f32',
  F16: 'f16',
  BF16: 'bf16',
  Q8_0: 'q8_0',
  Q4_0: 'q4_0',
  Q4_K: 'q4_k',
  Q6_K: 'q6_k',
};

export function isGgufFileName(name: string): boolean {
  return /\.gguf$/i.test(name);
}

export interface GgufPlan {
  config: ModelConfig;
  arch: string;
  /** Hugging Face name → the GGUF tensor holding it. */
  tensors: Map<string, GgufTensor>;
  /** Bytes to upload (a tied embedding once). */
  totalBytes: number;
}

/** Check every tensor the config needs: present, the expected shape, a type we decode. */
export function planGgufTensors(h: GgufHeader, config: ModelConfig): GgufPlan {
  const arch = ggufArchitecture(h);
  const tensors = new Map<string, GgufTensor>();
  const missing: string[] = [];
  let totalBytes = 0;
  const expected = expectedGgufTensors(config);
  const known = new Set(expected.map((e) => e.gguf));
  for (const name of h.tensors.keys()) {
    const m = /^blk\.(\d+)\./.exec(name);
    if (m && Number(m[1]) >= config.numLayers)
      throw new GgufError(`${h.file}: has tensor "${name}" but ${arch}.block_count is ${config.numLayers}; the file is inconsistent`);
    if (m && !known.has(name) && !IGNORED_GGUF_TENSORS.has(name))
      throw new GgufError(`${h.file}: has tensor "${name}", which the ${arch} decoder here does not use (a different layer design, such as mixture-of-experts); not supported`);
  }
  for (const { gguf, hf, shape } of expected) {
    const t = h.tensors.get(gguf);
    if (!t) {
      missing.push(gguf);
      continue;
    }
    formatOfType(t.type, `${h.file}: tensor "${gguf}"`); // refuses other types by name
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw new GgufError(`${h.file}: tensor "${gguf}" has shape [${t.shape.join(', ')}] (HF order) but the metadata implies [${shape.join(', ')}]`);
    tensors.set(hf, t);
    totalBytes += t.end! - t.begin;
  }
  if (missing.length)
    throw new GgufError(`${h.file}: ${missing.length === 1 ? 'tensor' : `${missing.length} tensors`} ${missing.slice(0, 6).map((n) => `"${n}"`).join(', ')}${missing.length > 6 ? ` and ${missing.length - 6} more` : ''} missing`);
  return { config, arch, tensors, totalBytes };
}

/** The dtype each planned tensor is uploaded as, by Hugging Face name (WeightLayout.tensorDTypes). */
export function ggufTensorDTypes(plan: GgufPlan): Record<string, DType> {
  return Object.fromEntries([...plan.tensors].map(([hf, t]) => [hf, GGUF_UPLOAD_DTYPE[formatOfType(t.type).name]]));
}

/** What a GGUF file says about itself: config, tokenizer (metadata or tokenizer.json beside it). */
export interface GgufMeta extends ModelMeta {
  header: GgufHeader;
  /** The opened file. */
  file: ByteSource;
  /** Why the metadata tokenizer was not used (null when it was, or a tokenizer.json was). */
  tokenizerProblem: string | null;
}

async function readRopeFreqs(h: GgufHeader, src: ByteSource): Promise<Float64Array | null> {
  const t = h.tensors.get('rope_freqs.weight');
  if (!t) return null;
  const f = formatOfType(t.type, `${h.file}: tensor "rope_freqs.weight"`);
  const n = t.dims.reduce((a, b) => a * b, 1);
  return dequantize(f, await src.read(t.begin, t.end! - t.begin), n);
}

/**
 * The file read with Range requests where it is, without downloading it: for a remote file not yet
 * in the cache, when only the header is wanted (plans, tokenizer checks). Null otherwise.
 */
async function rangeSourceOf(source: ModelSource, file: string, signal?: AbortSignal): Promise<ByteSource | null> {
  const http = source as Partial<HttpModelSource>;
  if (!source.remote || !http.urlFor || !http.options || !http.store || (await http.store.isComplete(file))) return null;
  const size = await source.size(file, { signal });
  if (size === null) return null;
  const url = http.urlFor(file);
  const headers: Record<string, string> = http.options.token ? { Authorization: `Bearer ${http.options.token}` } : {};
  const fetchImpl = http.options.fetchImpl ?? fetch;
  return {
    name: file,
    size,
    async read(offset, length) {
      checkRange(file, size, offset, length);
      if (length === 0) return new Uint8Array(0);
      const res = await fetchImpl(url, { headers: { ...headers, Range: `bytes=${offset}-${offset + length - 1}` }, signal });
      if (res.status !== 206) {
        await res.body?.cancel();
        throw new GgufError(`${url}: the server answered a Range request with HTTP ${res.status}; the header cannot be read without downloading the file`);
      }
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.byteLength !== length) throw new GgufError(`${url}: asked for ${length} bytes at ${offset}, got ${bytes.byteLength}`);
      return bytes;
    },
  };
}

/**
 * Fetch `file` from `source` (download with progress and resume when remote) and read its header,
 * config and tokenizer. No GPU work. `headerOnly`: a remote file not in the cache is not
 * downloaded; its header is read with Range requests (a few MB of a multi-GB file).
 */
export async function readGgufMeta(source: ModelSource, file: string, opts: LoadOptions & { headerOnly?: boolean } = {}): Promise<GgufMeta> {
  const { signal, onProgress } = opts;
  const ranged = opts.headerOnly ? await rangeSourceOf(source, file, signal).catch(() => null) : null;
  const [src] = ranged ? [ranged] : await fetchFiles(source, [file], { signal, onProgress: onProgress && ((p) => onProgress({ phase: 'download', ...p })) });
  let header: GgufHeader;
  try {
    header = await readGgufHeader(src!);
  } catch (e) {
    // A truncated or corrupt cached copy would fail the same way forever: drop it.
    if (e instanceof GgufError && !ranged) await source.evict?.(file);
    throw e;
  }
  const files: LoadedFile[] = [{ name: file, bytes: src!.size }];
  const config = ggufModelConfig(header, await readRopeFreqs(header, src!));
  let tokenizerFiles: TokenizerFiles | null = null;
  let generationConfig: Record<string, unknown> | null = null;
  let tokenizerProblem: string | null = null;
  if (await source.has('tokenizer.json', { signal })) {
    // The model's own tokenizer files beside the .gguf (no config.json needed).
    const readJson = async (name: string) => {
      const value = await source.json<Record<string, unknown>>(name, { signal });
      files.push({ name, bytes: (await source.size(name, { signal })) ?? 0 });
      return value;
    };
    const tokenizerJson = await readJson('tokenizer.json');
    const tokenizerConfig = (await source.has('tokenizer_config.json', { signal })) ? await readJson('tokenizer_config.json') : {};
    if (await source.has('generation_config.json', { signal })) generationConfig = await readJson('generation_config.json');
    tokenizerFiles = { tokenizerJson, tokenizerConfig, chatTemplate: null };
  } else {
    tokenizerProblem = ggufTokenizerProblem(header);
    if (!tokenizerProblem) tokenizerFiles = ggufTokenizerFiles(header);
  }
  return { config, tokenizerFiles, generationConfig, files, header, file: src!, tokenizerProblem };
}

/** Load a GGUF model: config, tokenizer and weights (blocks decoded in the kernels). */
export async function loadGgufModel(ctx: GpuContext, source: ModelSource, file: string, opts: LoadOptions = {}): Promise<LoadedModel> {
  const meta = await readGgufMeta(source, file, opts);
  const plan = planGgufTensors(meta.header, meta.config);
  opts.signal?.throwIfAborted();
  await opts.beforeUpload?.();
  const weights = await uploadGguf(ctx, plan, meta.file, opts);
  return {
    config: meta.config,
    weights,
    tokenizerFiles: meta.tokenizerFiles,
    generationConfig: meta.generationConfig,
    files: meta.files,
    source: `${source.description}${source.description.endsWith(file) ? '' : `/${file}`}`,
  };
}

/** Stream the planned tensors to the GPU; on any failure, release what was allocated. */
async function uploadGguf(ctx: GpuContext, plan: GgufPlan, src: ByteSource, { onProgress, signal }: LoadOptions): Promise<ModelWeights> {
  const meter = new ProgressMeter('upload', plan.totalBytes);
  const fileMeter = new ProgressMeter(src.name, plan.totalBytes);
  let uploaded = 0;
  const get = async (name: string): Promise<TensorBytes> => {
    const t = plan.tensors.get(name);
    if (!t) throw new GgufError(`tensor "${name}" was not planned`);
    const f = formatOfType(t.type);
    const size = t.end! - t.begin;
    const heads = permutedHeads(plan.config, plan.arch, name);
    // llama q/k: the rows come back in Hugging Face order (one projection, read whole).
    const whole = heads ? unpermuteRows(await src.read(t.begin, size), t.shape[0]!, heads) : null;
    return {
      dtype: GGUF_UPLOAD_DTYPE[f.name],
      shape: t.shape,
      async read(offset, length) {
        signal?.throwIfAborted();
        if (offset < 0 || offset + length > size)
          throw new GgufError(`${src.name}: read of bytes ${offset}..${offset + length} outside tensor "${t.name}" (${size} bytes)`);
        const bytes = whole ? whole.slice(offset, offset + length) : await src.read(t.begin + offset, length);
        uploaded += length;
        if (onProgress) onProgress({ phase: 'upload', file: fileMeter.report(uploaded), overall: meter.report(uploaded) });
        return bytes;
      },
    };
  };
  return uploadReleasingOnFailure(ctx, (tracking) => uploadWeights(tracking, plan.config, get));
}
