// The frozen base weights of a decoder on the GPU, named as in Hugging Face checkpoints. Which
// tensors a layer has depends on the family (families.ts): q/k/v biases, q/k norms.
// Tables larger than one storage binding (the 128k-row embedding) are split into row chunks.
// With `quant`, the projections (and the embedding / lm_head, as int8) are quantized on the way
// to the GPU, piece by piece: no full-precision copy of a layer is ever allocated there.

import type { GpuContext } from '../gpu/context';
import { bytesPerElement, decode, type DType } from '../gpu/dtype';
import { isQuantDType, QUANT_GROUP, quantizePiece, scaleWord0, type QuantDType } from '../gpu/quant';
import type { Tensor } from '../gpu/tensor';
import type { ModelConfig } from './config';
import { rowChunks } from './specs';

/** A [rows, cols] matrix stored as consecutive row ranges, each its own tensor. */
export interface RowChunkedTensor {
  rows: number;
  cols: number;
  dtype: DType;
  chunks: { tensor: Tensor; rowStart: number; rows: number }[];
}

export interface LayerWeights {
  inputNorm: Tensor; // input_layernorm.weight [H]
  q: Tensor; // self_attn.q_proj.weight [nHeads*headDim, H]
  k: Tensor; // self_attn.k_proj.weight [nKv*headDim, H]
  v: Tensor; // self_attn.v_proj.weight [nKv*headDim, H]
  o: Tensor; // self_attn.o_proj.weight [H, nHeads*headDim]
  postNorm: Tensor; // post_attention_layernorm.weight [H]
  gate: Tensor; // mlp.gate_proj.weight [I, H]
  up: Tensor; // mlp.up_proj.weight [I, H]
  down: Tensor; // mlp.down_proj.weight [H, I]
  qBias?: Tensor; // self_attn.q_proj.bias [nHeads*headDim]  (qkvBias)
  kBias?: Tensor; // self_attn.k_proj.bias [nKv*headDim]
  vBias?: Tensor; // self_attn.v_proj.bias [nKv*headDim]
  qNorm?: Tensor; // self_attn.q_norm.weight [headDim]       (qkNorm)
  kNorm?: Tensor; // self_attn.k_norm.weight [headDim]
}

export interface ModelWeights {
  config: ModelConfig;
  embed: RowChunkedTensor; // model.embed_tokens.weight [V, H]
  layers: LayerWeights[];
  finalNorm: Tensor; // model.norm.weight [H]
  /** lm_head.weight [V, H]; the very same object as `embed` when embeddings are tied (and for reward models, which have none). */
  lmHead: RowChunkedTensor;
  /** score.weight [numLabels, H] of a sequence-classification (reward) model, else null. */
  score: Tensor | null;
}

export type LayerWeightName = keyof LayerWeights;

/** The layer weights a quantized base stores quantized: the seven projections. */
export const QUANTIZED_LAYER_WEIGHTS: readonly LayerWeightName[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
/**
 * The embedding and lm_head of a quantized base are int8 whatever the projections' format: the
 * tied table is the input and every logit, where int8's error (amax/254 a group) is 16× below
 * int4's; it adds 0.13 GiB over int4 on Llama-3.2-1B and the int4 plans still fit.
 */
export const QUANT_TABLE_DTYPE: QuantDType = 'int8';

/** The quantized format of a model's projections, or null for a float base. */
export function quantOf(w: ModelWeights): QuantDType | null {
  const d = w.layers[0]?.q.dtype;
  return d && isQuantDType(d) ? d : null;
}
export const SCORE_NAME = 'score.weight';

/** Hugging Face tensor names of one layer's weights. */
export const LAYER_TENSOR_NAMES: Record<LayerWeightName, string> = {
  inputNorm: 'input_layernorm.weight',
  q: 'self_attn.q_proj.weight',
  k: 'self_attn.k_proj.weight',
  v: 'self_attn.v_proj.weight',
  o: 'self_attn.o_proj.weight',
  postNorm: 'post_attention_layernorm.weight',
  gate: 'mlp.gate_proj.weight',
  up: 'mlp.up_proj.weight',
  down: 'mlp.down_proj.weight',
  qBias: 'self_attn.q_proj.bias',
  kBias: 'self_attn.k_proj.bias',
  vBias: 'self_attn.v_proj.bias',
  qNorm: 'self_attn.q_norm.weight',
  kNorm: 'self_attn.k_norm.weight',
};

/** The layer tensors a checkpoint of this config has, in checkpoint order, with their shapes. */
export function layerTensors(c: ModelConfig): { key: LayerWeightName; name: string; shape: number[] }[] {
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const shapes: Partial<Record<LayerWeightName, number[]>> = {
    inputNorm: [H],
    q: [qDim, H],
    k: [kvDim, H],
    v: [kvDim, H],
    ...(c.qkvBias ? { qBias: [qDim], kBias: [kvDim], vBias: [kvDim] } : {}),
    ...(c.qkNorm ? { qNorm: [c.headDim], kNorm: [c.headDim] } : {}),
    o: [H, qDim],
    postNorm: [H],
    gate: [I, H],
    up: [I, H],
    down: [H, I],
  };
  return Object.entries(shapes).map(([key, shape]) => ({ key: key as LayerWeightName, name: LAYER_TENSOR_NAMES[key as LayerWeightName], shape }));
}

/** Every tensor a checkpoint of this config must contain, with its expected shape. */
export function expectedTensors(c: ModelConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const H = c.hiddenSize;
  m.set('model.embed_tokens.weight', [c.vocabSize, H]);
  const layer = layerTensors(c);
  for (let i = 0; i < c.numLayers; i++) for (const t of layer) m.set(`model.layers.${i}.${t.name}`, t.shape);
  m.set('model.norm.weight', [H]);
  if (c.head === 'sequence-classification') m.set(SCORE_NAME, [c.numLabels, H]);
  else if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, H]);
  return m;
}

/** A tensor's bytes as stored in its file, readable in pieces (so big tensors stream). */
export interface TensorBytes {
  dtype: DType;
  shape: number[];
  read(offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
}

const UPLOAD_PIECE = 16 * 1024 * 1024;

/** Copy a tensor's bytes to the GPU in pieces of at most 16 MiB. */
export async function uploadTensorBytes(ctx: GpuContext, t: Tensor, src: TensorBytes, byteOffset = 0, byteLength?: number): Promise<void> {
  // The tensor's data bytes, not the buffer's (odd 16-bit counts are padded to whole words).
  const total = byteLength ?? t.size * bytesPerElement[t.dtype];
  for (let at = 0; at < total; at += UPLOAD_PIECE) {
    const n = Math.min(UPLOAD_PIECE, total - at);
    let bytes = await src.read(byteOffset + at, n);
    // writeBuffer needs a multiple of 4 bytes; odd-length 16-bit tensors end on a half word.
    if (bytes.byteLength % 4) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    ctx.writeBytes(t, bytes, at);
  }
}

/** Elements quantized per piece (a multiple of 2·QUANT_GROUP, so pieces land on whole words). */
export const QUANT_PIECE = 4 * 1024 * 1024;

/**
 * Quantize elements [first, first + n) of a float tensor into `t` (n elements, int8/int4), reading
 * and converting `piece` elements at a time.
 */
export async function uploadQuantized(ctx: GpuContext, t: Tensor, src: TensorBytes, first = 0, piece = QUANT_PIECE): Promise<void> {
  const q = t.dtype;
  if (!isQuantDType(q)) throw new Error(`uploadQuantized: ${t.label} has dtype ${q}, not a quantized format`);
  if (piece % (2 * QUANT_GROUP)) throw new Error(`uploadQuantized: piece ${piece} is not a multiple of ${2 * QUANT_GROUP}`);
  const n = t.size;
  const bpe = bytesPerElement[src.dtype];
  const s0 = 4 * scaleWord0(n, q);
  for (let at = 0; at < n; at += piece) {
    const len = Math.min(piece, n - at);
    const raw = await src.read((first + at) * bpe, len * bpe);
    const values = decode(raw.byteOffset === 0 ? raw.buffer : raw.slice().buffer, len, src.dtype);
    const out = quantizePiece(values, q);
    ctx.writeBytes(t, out.values, (at * (q === 'int8' ? 8 : 4)) / 8);
    ctx.writeBytes(t, out.scales, s0 + (2 * at) / QUANT_GROUP);
  }
}

/**
 * Runs `upload` on a view of `ctx` that records every tensor it allocates, then flushes; if the
 * upload fails part-way, what it allocated is released, so a failed load leaks no GPU memory.
 */
export async function uploadReleasingOnFailure<T>(ctx: GpuContext, upload: (tracking: GpuContext) => Promise<T>): Promise<T> {
  const created: Tensor[] = [];
  const tracking = new Proxy(ctx, {
    get(target, prop) {
      if (prop === 'tensor')
        return (...args: Parameters<GpuContext['tensor']>) => {
          const t = target.tensor(...args);
          created.push(t);
          return t;
        };
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  try {
    const result = await upload(tracking);
    await ctx.flush();
    return result;
  } catch (e) {
    for (const t of created) if (!t.isReleased) t.release();
    throw e;
  }
}

export interface UploadWeightsOptions {
  /** Quantize the base on the way: projections to this format, embedding / lm_head to int8. */
  quant?: QuantDType | null;
}

/**
 * Upload a whole checkpoint: `get(name)` returns each tensor's bytes (from safetensors shards,
 * or generated in memory). Shapes are checked against the config; the embedding (and an untied
 * lm_head) is split into row chunks that fit the device's binding limit.
 */
export async function uploadWeights(
  ctx: GpuContext,
  config: ModelConfig,
  get: (name: string) => Promise<TensorBytes>,
  onTensor?: (name: string, bytes: number) => void,
  options: UploadWeightsOptions = {},
): Promise<ModelWeights> {
  const quant = options.quant ?? null;
  const expected = expectedTensors(config);
  const fetchChecked = async (name: string): Promise<TensorBytes> => {
    const src = await get(name);
    const want = expected.get(name)!;
    if (src.shape.length !== want.length || src.shape.some((d, i) => d !== want[i]))
      throw new Error(`${name}: shape [${src.shape.join(', ')}] does not match the config, expected [${want.join(', ')}]`);
    return src;
  };
  const single = async (name: string, quantize = false): Promise<Tensor> => {
    const src = await fetchChecked(name);
    const t = ctx.tensor(src.shape, quantize && quant ? quant : src.dtype, name);
    if (isQuantDType(t.dtype)) await uploadQuantized(ctx, t, src);
    else await uploadTensorBytes(ctx, t, src);
    onTensor?.(name, t.byteLength);
    return t;
  };
  const chunked = async (name: string): Promise<RowChunkedTensor> => {
    const src = await fetchChecked(name);
    const [rows, cols] = src.shape as [number, number];
    const dtype = quant ? QUANT_TABLE_DTYPE : src.dtype;
    const bytesPerRow = cols * bytesPerElement[src.dtype];
    const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
    const chunks: RowChunkedTensor['chunks'] = [];
    let bytes = 0;
    for (const { rowStart: r, rows: n } of rowChunks(rows, cols, dtype, limit)) {
      const t = ctx.tensor([n, cols], dtype, chunks.length ? `${name}[${r}:${r + n}]` : name);
      if (isQuantDType(dtype)) await uploadQuantized(ctx, t, src, r * cols);
      else await uploadTensorBytes(ctx, t, src, r * bytesPerRow, n * bytesPerRow);
      bytes += t.byteLength;
      chunks.push({ tensor: t, rowStart: r, rows: n });
    }
    onTensor?.(name, bytes);
    return { rows, cols, dtype, chunks };
  };

  const embed = await chunked('model.embed_tokens.weight');
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const layer = {} as LayerWeights;
    for (const t of layerTensors(config)) layer[t.key] = await single(`model.layers.${i}.${t.name}`, QUANTIZED_LAYER_WEIGHTS.includes(t.key));
    layers.push(layer);
  }
  const finalNorm = await single('model.norm.weight');
  const classifier = config.head === 'sequence-classification';
  const lmHead = config.tieWordEmbeddings || classifier ? embed : await chunked('lm_head.weight');
  const score = classifier ? await single(SCORE_NAME) : null;
  return { config, embed, layers, finalNorm, lmHead, score };
}

/** Release every GPU tensor of a model. */
export function releaseWeights(w: ModelWeights): void {
  for (const c of w.embed.chunks) c.tensor.release();
  if (w.lmHead !== w.embed) for (const c of w.lmHead.chunks) c.tensor.release();
  for (const l of w.layers) for (const t of Object.values(l)) (t as Tensor).release();
  w.finalNorm.release();
  w.score?.release();
}

/** Parameters of a checkpoint of this config: every tensor it stores (a tied embedding once). */
export function countParameters(c: ModelConfig): number {
  let n = 0;
  for (const shape of expectedTensors(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}
