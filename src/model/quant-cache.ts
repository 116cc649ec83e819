// The cache of a quantized base: after the first quantize-on-load of a remote model, its GPU
// buffers (int8/int4 values + scales, float norms) are written as one file into the model's own
// cache store (the cache folder in Node, OPFS / Cache Storage in a browser), so the next load
// reads that file and neither downloads the safetensors shards nor runs the quantizer.
//
// File `quantized-<int8|int4>-g32.fsq`: an 8-byte little-endian header length, a JSON header
// (what it is, the config it was made for, each tensor's name, dtype, shape, row chunk and byte
// range), then every tensor's buffer bytes as the GPU holds them (layout: src/gpu/quant.ts).
import type { ByteSource } from '../io/byte-source';
import type { ReadableFileStore } from '../io/file-store';
import type { GpuContext } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import { QUANT_GROUP, type QuantDType } from '../gpu/quant';
import type { Tensor } from '../gpu/tensor';
import type { ModelConfig } from './config';
import { chunkName, EMBED_NAME, FINAL_NORM_NAME, LM_HEAD_NAME } from './weight-layout';
import { layerTensors, SCORE_NAME, uploadTensorBytes, type LayerWeights, type ModelWeights, type RowChunkedTensor } from './weights';

const FORMAT = 'fuse-studio quantized base v1';

export function quantCacheKey(quant: QuantDType): string {
  return `quantized-${quant}-g${QUANT_GROUP}.fsq`;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

interface Header {
  format: string;
  quant: QuantDType;
  group: number;
  /** The config's shape fields it was made for; a different config ignores the cache. */
  model: Record<string, unknown>;
  tensors: Entry[];
}

function modelKey(c: ModelConfig): Record<string, unknown> {
  return {
    family: c.family,
    head: c.head,
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    tieWordEmbeddings: c.tieWordEmbeddings,
    numLabels: c.numLabels,
  };
}

/** Every tensor of the weights in file order, each once (a tied lm_head is the embedding). */
function tensorsOf(w: ModelWeights): Tensor[] {
  const out = w.embed.chunks.map((c) => c.tensor);
  for (const l of w.layers) for (const t of layerTensors(w.config)) out.push(l[t.key]!);
  out.push(w.finalNorm);
  if (w.lmHead !== w.embed) out.push(...w.lmHead.chunks.map((c) => c.tensor));
  if (w.score) out.push(w.score);
  return out;
}

/** The store a source caches into, when it has one (remote sources). */
export function cacheStoreOf(source: unknown): ReadableFileStore | null {
  const store = (source as { store?: unknown }).store;
  return store && typeof (store as ReadableFileStore).source === 'function' ? (store as ReadableFileStore) : null;
}

async function readBytes(ctx: GpuContext, t: Tensor): Promise<Uint8Array> {
  const batch = ctx.batch(`cache ${t.label}`);
  const staging = batch.copyToReadable(t.buffer, 0, t.byteLength);
  batch.submit();
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(staging.getMappedRange().slice(0));
  staging.unmap();
  staging.destroy();
  return out;
}

/** Write the loaded quantized weights into `store` (one tensor's bytes on the host at a time). */
export async function writeQuantCache(ctx: GpuContext, w: ModelWeights, store: ReadableFileStore, quant: QuantDType): Promise<number> {
  const key = quantCacheKey(quant);
  const tensors = tensorsOf(w);
  let at = 0;
  const entries: Entry[] = tensors.map((t) => {
    const e = { name: t.label, dtype: t.dtype, shape: [...t.shape], begin: at, end: at + t.byteLength };
    at = e.end;
    return e;
  });
  const header: Header = { format: FORMAT, quant, group: QUANT_GROUP, model: modelKey(w.config), tensors: entries };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  await store.reset(key);
  try {
    await store.append(key, len);
    await store.append(key, json);
    for (const t of tensors) await store.append(key, (await readBytes(ctx, t)).subarray(0, t.byteLength));
    await store.markComplete(key);
  } catch (e) {
    await store.remove(key);
    throw e;
  }
  return 8 + json.byteLength + at;
}

async function readHeader(src: ByteSource): Promise<{ header: Header; dataStart: number } | null> {
  if (src.size < 8) return null;
  const len = Number(new DataView((await src.read(0, 8)).buffer).getBigUint64(0, true));
  if (len <= 0 || 8 + len > src.size) return null;
  try {
    const header = JSON.parse(new TextDecoder().decode(await src.read(8, len))) as Header;
    return header.format === FORMAT ? { header, dataStart: 8 + len } : null;
  } catch {
    return null;
  }
}

export interface CachedQuantWeights {
  weights: ModelWeights;
  /** Bytes of the cache file. */
  bytes: number;
}

/**
 * The quantized weights from `store`, or null when there is no usable cache: absent, another
 * format or config, or a row chunk larger than this device's binding limit (then the caller
 * quantizes from the checkpoint again and rewrites it).
 */
export async function readQuantCache(
  ctx: GpuContext,
  config: ModelConfig,
  store: ReadableFileStore,
  quant: QuantDType,
  o: { onBytes?: (loaded: number, total: number) => void; signal?: AbortSignal; beforeUpload?: () => Promise<void> } = {},
): Promise<CachedQuantWeights | null> {
  const { onBytes, signal } = o;
  const key = quantCacheKey(quant);
  if (!(await store.isComplete(key))) return null;
  const src = await store.source(key);
  const parsed = await readHeader(src);
  if (!parsed) return null;
  const { header, dataStart } = parsed;
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  if (header.quant !== quant || header.group !== QUANT_GROUP || JSON.stringify(header.model) !== JSON.stringify(modelKey(config))) return null;
  if (header.tensors.some((e) => e.end - e.begin > limit || dataStart + e.end > src.size)) return null;
  await o.beforeUpload?.();
  const byName = new Map(header.tensors.map((e) => [e.name, e]));
  const total = header.tensors.reduce((s, e) => s + e.end - e.begin, 0);
  let loaded = 0;
  const created: Tensor[] = [];
  const upload = async (name: string): Promise<Tensor> => {
    signal?.throwIfAborted();
    const e = byName.get(name);
    if (!e) throw new Error(`${key}: has no tensor "${name}"`);
    const t = ctx.tensor(e.shape, e.dtype, name);
    created.push(t);
    if (t.byteLength !== e.end - e.begin) throw new Error(`${key}: tensor "${name}" has ${e.end - e.begin} bytes, expected ${t.byteLength}`);
    await uploadTensorBytes(ctx, t, { dtype: e.dtype, shape: e.shape, read: (o, n) => src.read(dataStart + e.begin + o, n) }, 0, t.byteLength);
    onBytes?.((loaded += t.byteLength), total);
    return t;
  };
  const table = async (name: string): Promise<RowChunkedTensor> => {
    const chunks: RowChunkedTensor['chunks'] = [];
    let rowStart = 0;
    while (rowStart < config.vocabSize) {
      const label = chunks.length ? `${name}[${rowStart}:` : name;
      const e = header.tensors.find((x) => x.name === name || (chunks.length > 0 && x.name.startsWith(label)));
      if (!e || (chunks.length > 0 && e.name === name)) throw new Error(`${key}: the chunks of ${name} stop at row ${rowStart}`);
      const rows = e.shape[0]!;
      const tensor = await upload(chunkName(name, { rowStart, rows }, chunks.length));
      chunks.push({ tensor, rowStart, rows });
      rowStart += rows;
    }
    return { rows: config.vocabSize, cols: config.hiddenSize, dtype: chunks[0]!.tensor.dtype, chunks };
  };
  try {
    const embed = await table(EMBED_NAME);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < config.numLayers; l++) {
      const layer = {} as LayerWeights;
      for (const t of layerTensors(config)) layer[t.key] = await upload(`model.layers.${l}.${t.name}`);
      layers.push(layer);
    }
    const finalNorm = await upload(FINAL_NORM_NAME);
    const classifier = config.head === 'sequence-classification';
    const lmHead = config.tieWordEmbeddings || classifier ? embed : await table(LM_HEAD_NAME);
    const score = classifier ? await upload(SCORE_NAME) : null;
    await ctx.flush();
    return { weights: { config, embed, layers, finalNorm, lmHead, score }, bytes: src.size };
  } catch (e) {
    for (const t of created) if (!t.isReleased) t.release();
    throw e;
  }
}
