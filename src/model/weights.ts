// The frozen base weights of a decoder on the GPU, named as in Hugging Face checkpoints. Which
// tensors a layer has depends on the family (families.ts): q/k/v biases, q/k norms.
// Tables larger than one storage binding (the 128k-row embedding) are split into row chunks.

import type { GpuContext } from '../gpu/context';
import { bytesPerElement, type DType } from '../gpu/dtype';
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
): Promise<ModelWeights> {
  const expected = expectedTensors(config);
  const fetchChecked = async (name: string): Promise<TensorBytes> => {
    const src = await get(name);
    const want = expected.get(name)!;
    if (src.shape.length !== want.length || src.shape.some((d, i) => d !== want[i]))
      throw new Error(`${name}: shape [${src.shape.join(', ')}] does not match the config, expected [${want.join(', ')}]`);
    return src;
  };
  const single = async (name: string): Promise<Tensor> => {
    const src = await fetchChecked(name);
    const t = ctx.tensor(src.shape, src.dtype, name);
    await uploadTensorBytes(ctx, t, src);
    onTensor?.(name, t.byteLength);
    return t;
  };
  const chunked = async (name: string): Promise<RowChunkedTensor> => {
    const src = await fetchChecked(name);
    const [rows, cols] = src.shape as [number, number];
    const bytesPerRow = cols * bytesPerElement[src.dtype];
    const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
    const chunks: RowChunkedTensor['chunks'] = [];
    for (const { rowStart: r, rows: n } of rowChunks(rows, cols, src.dtype, limit)) {
      const t = ctx.tensor([n, cols], src.dtype, chunks.length ? `${name}[${r}:${r + n}]` : name);
      await uploadTensorBytes(ctx, t, src, r * bytesPerRow, n * bytesPerRow);
      chunks.push({ tensor: t, rowStart: r, rows: n });
    }
    onTensor?.(name, rows * bytesPerRow);
    return { rows, cols, dtype: src.dtype, chunks };
  };

  const embed = await chunked('model.embed_tokens.weight');
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const layer = {} as LayerWeights;
    for (const t of layerTensors(config)) layer[t.key] = await single(`model.layers.${i}.${t.name}`);
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
