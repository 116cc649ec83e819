// Random tiny decoders of every family (families.ts) for tests and benchmarks: a config builder, host weights (quantized
// to the storage dtype, so the float64 reference sees exactly what the GPU holds), their upload
// as ModelWeights (row-chunked like uploadWeights, with an optional small chunk limit to
// exercise multi-tensor tables), and random adapters. For full-size models (benchmarks),
// uploadRandomWeights generates each tensor straight into the GPU, a few MiB at a time.
import type { GpuContext } from '../gpu/context';
import { encode, quantize, type DType } from '../gpu/dtype';
import { dequantize, QUANT_GROUP, quantize as quantizeTo, quantizePiece, scaleWord0, type QuantDType } from '../gpu/quant';
import type { Tensor } from '../gpu/tensor';
import type { ModelConfig } from './config';
import type { FamilyName, ModelHead } from './families';
import { resolveLoraConfig, setLoraWeights, targetDims, type LoraAdapters, type LoraConfig } from './lora';
import type { HostLayer, HostLora, HostWeights } from './reference';
import { seededRandom } from './rng';
import { rowChunks } from './specs';
import { chunkName, DEFAULT_BINDING_BYTES, EMBED_NAME, FINAL_NORM_NAME, LM_HEAD_NAME } from './weight-layout';
import { layerTensors, QUANT_TABLE_DTYPE, QUANTIZED_LAYER_WEIGHTS, SCORE_NAME, type LayerWeightName, type ModelWeights, type RowChunkedTensor } from './weights';

function normals(n: number, next: () => number, scale: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(Math.max(next(), 1e-12))) * Math.cos(2 * Math.PI * next());
  return out;
}

export { seededRandom };

export interface TinyConfigOptions {
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
  tieWordEmbeddings?: boolean;
  /** Llama-3 rope scaling with a small original context so all three bands occur. */
  llama3Rope?: boolean;
  /** Default llama; qwen2 adds q/k/v biases, qwen3 q/k norms (families.ts). */
  family?: FamilyName;
  /** sequence-classification: a reward model with score.weight [1, H]. */
  head?: ModelHead;
  padTokenId?: number | null;
  slidingWindow?: number | null;
}

export function tinyConfig(o: TinyConfigOptions = {}): ModelConfig {
  const hiddenSize = o.hiddenSize ?? 32;
  const numHeads = o.numHeads ?? 4;
  const family = o.family ?? 'llama';
  const head = o.head ?? 'causal-lm';
  return {
    family,
    head,
    numLabels: head === 'sequence-classification' ? 1 : 0,
    qkvBias: family === 'qwen2',
    qkNorm: family === 'qwen3',
    slidingWindow: o.slidingWindow ?? null,
    hiddenSize,
    intermediateSize: o.intermediateSize ?? 56,
    numLayers: o.numLayers ?? 2,
    numHeads,
    numKvHeads: o.numKvHeads ?? 2,
    headDim: o.headDim ?? hiddenSize / numHeads,
    vocabSize: o.vocabSize ?? 300,
    rmsNormEps: 1e-5,
    ropeTheta: o.llama3Rope ? 500000 : 10000,
    ropeScaling: o.llama3Rope
      ? { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 }
      : null,
    tieWordEmbeddings: o.tieWordEmbeddings ?? false,
    maxPositionEmbeddings: 2048,
    bosTokenId: 1,
    eosTokenIds: [2],
    padTokenId: o.padTokenId ?? null,
    dtype: null,
  };
}

/**
 * How each layer tensor is drawn: matrices W ~ N(0, 1/in), RMSNorm weights ~ 1 ± 0.2, q/k norm
 * weights far from 1 (0.3 .. 2.3, so a wrong norm shows), biases ~ N(0, 0.5²) (large enough
 * that a dropped bias shows). Returns [mean, std, kind].
 */
function initOf(key: LayerWeightName, shape: number[]): { mean: number; std: number; uniform?: [number, number] } {
  if (key === 'qNorm' || key === 'kNorm') return { mean: 0, std: 0, uniform: [0.3, 2.3] };
  if (key === 'qBias' || key === 'kBias' || key === 'vBias') return { mean: 0, std: 0.5 };
  if (shape.length === 1) return { mean: 1, std: 0.2 };
  return { mean: 0, std: 1 / Math.sqrt(shape[1]!) };
}

function draw(key: LayerWeightName, shape: number[], next: () => number): Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const init = initOf(key, shape);
  if (init.uniform) {
    const [lo, hi] = init.uniform;
    return Float64Array.from({ length: n }, () => lo + (hi - lo) * next());
  }
  const v = normals(n, next, init.std);
  if (init.mean) for (let i = 0; i < n; i++) v[i]! += init.mean;
  return v;
}

/** Weights with O(1) activations (see initOf); embedding ~ N(0, 0.5²). */
export function randomHostWeights(config: ModelConfig, dtype: DType, seed: number): HostWeights {
  const next = seededRandom(seed);
  const q = (v: Float64Array) => quantize(v, dtype);
  const H = config.hiddenSize;
  const embed = q(normals(config.vocabSize * H, next, 0.5));
  const layers: HostLayer[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: HostLayer = {};
    for (const t of layerTensors(config)) layer[t.key] = q(draw(t.key, t.shape, next));
    layers.push(layer);
  }
  const finalNorm = q(normals(H, next, 0.2).map((x) => 1 + x));
  const classifier = config.head === 'sequence-classification';
  const lmHead = config.tieWordEmbeddings || classifier ? embed : q(normals(config.vocabSize * H, next, 1 / Math.sqrt(H)));
  const score = classifier ? q(normals(config.numLabels * H, next, 1 / Math.sqrt(H))) : null;
  return { config, dtype, embed, layers, finalNorm, lmHead, score };
}

/**
 * Upload host weights; tables split into row chunks of at most `maxChunkBytes` (as uploadWeights
 * does). With `quant`, quantized as uploadWeights quantizes them (quantizedHostWeights is what
 * the GPU then holds).
 */
export function uploadHostWeights(ctx: GpuContext, w: HostWeights, maxChunkBytes = DEFAULT_BINDING_BYTES, quant: QuantDType | null = null): ModelWeights {
  const c = w.config;
  const H = c.hiddenSize;
  const tableDType = quant ? QUANT_TABLE_DTYPE : w.dtype;
  const chunked = (name: string, values: Float64Array): RowChunkedTensor => ({
    rows: c.vocabSize,
    cols: H,
    dtype: tableDType,
    chunks: rowChunks(c.vocabSize, H, tableDType, maxChunkBytes).map((ch, i) => ({
      tensor: ctx.upload(values.subarray(ch.rowStart * H, (ch.rowStart + ch.rows) * H), [ch.rows, H], tableDType, chunkName(name, ch, i)),
      rowStart: ch.rowStart,
      rows: ch.rows,
    })),
  });
  const embed = chunked(EMBED_NAME, w.embed);
  const layers = w.layers.map((hl, l) => {
    const out: Partial<Record<LayerWeightName, Tensor>> = {};
    for (const t of layerTensors(c)) {
      const dtype = quant && QUANTIZED_LAYER_WEIGHTS.includes(t.key) ? quant : w.dtype;
      out[t.key] = ctx.upload(hl[t.key]!, t.shape, dtype, `model.layers.${l}.${t.name}`);
    }
    return out as ModelWeights['layers'][number];
  });
  const finalNorm = ctx.upload(w.finalNorm, [H], w.dtype, FINAL_NORM_NAME);
  const lmHead = w.lmHead === w.embed ? embed : chunked(LM_HEAD_NAME, w.lmHead);
  const score = w.score ? ctx.upload(w.score, [c.numLabels, H], w.dtype, SCORE_NAME) : null;
  return { config: c, embed, layers, finalNorm, lmHead, score };
}

/**
 * The weights a base quantized by uploadHostWeights(…, quant) / uploadWeights holds, as float64:
 * each projection dequant(quant(x)), each table chunk likewise in int8, the rest unchanged.
 */
export function quantizedHostWeights(w: HostWeights, quant: QuantDType, maxChunkBytes = DEFAULT_BINDING_BYTES): HostWeights {
  const c = w.config;
  const H = c.hiddenSize;
  const round = (v: Float64Array, d: QuantDType) => dequantize(quantizeTo(v, d), v.length, d);
  const table = (values: Float64Array) => {
    const out = new Float64Array(values.length);
    for (const ch of rowChunks(c.vocabSize, H, QUANT_TABLE_DTYPE, maxChunkBytes))
      out.set(round(values.subarray(ch.rowStart * H, (ch.rowStart + ch.rows) * H), QUANT_TABLE_DTYPE), ch.rowStart * H);
    return out;
  };
  const embed = table(w.embed);
  const layers = w.layers.map((hl) => {
    const out: HostLayer = { ...hl };
    for (const k of QUANTIZED_LAYER_WEIGHTS) out[k] = round(hl[k]!, quant);
    return out;
  });
  const lmHead = w.lmHead === w.embed ? embed : table(w.lmHead);
  return { ...w, embed, layers, lmHead };
}

/** A random adapter with nonzero A and B (so every path carries gradient), values f32-exact. */
export function randomHostLora(config: ModelConfig, lora: LoraConfig, seed: number, bScale = 0.3): HostLora {
  const { rank, alpha, targets } = resolveLoraConfig(lora);
  const next = seededRandom(seed);
  const layers: HostLora['layers'] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const layer: HostLora['layers'][number] = {};
    for (const t of targets) {
      const [inF, outF] = targetDims(config, t);
      layer[t] = { a: quantize(normals(rank * inF, next, 1 / Math.sqrt(inF)), 'f32'), b: quantize(normals(outF * rank, next, bScale), 'f32') };
    }
    layers.push(layer);
  }
  return { rank, alpha, layers };
}

/** Copy host adapter values into GPU adapters of the same shape. */
export function setHostLora(ctx: GpuContext, adapters: LoraAdapters, host: HostLora): void {
  host.layers.forEach((layer, l) => {
    for (const [t, m] of Object.entries(layer)) setLoraWeights(ctx, adapters, l, t as keyof typeof layer, m.a, m.b);
  });
}

/** Random values of one distribution, as a table of 65536 stored bit patterns (see uploadRandomWeights). */
function bitTable(dtype: DType, mean: number, std: number, seed: number): Uint16Array | Uint32Array {
  const next = seededRandom(seed);
  const values = normals(65536, next, std);
  if (mean) for (let i = 0; i < values.length; i++) values[i]! += mean;
  const bytes = encode(values, dtype);
  return dtype === 'f32' ? new Uint32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
}

export interface UploadRandomWeightsOptions {
  /** Row-chunk limit of the embedding / lm_head (default: the device's, as uploadWeights uses). */
  maxChunkBytes?: number;
  /** Host bytes generated per write (default 16 MiB): the most JS memory the upload holds. */
  sliceBytes?: number;
  /** A quantized base, as uploadWeights({ quant }) holds it: projections in this format, tables int8. */
  quant?: QuantDType | null;
}

/**
 * Random weights of any size (the full Llama-3.2 shapes), generated on the host slice by slice
 * and written straight into their GPU tensors, so the model never exists in JS memory. Same
 * distributions as randomHostWeights (W ~ N(0, 1/in), norms ~ 1 ± 0.2, embedding ~ N(0, 0.5²)),
 * but drawn cheaply: each element is one of 65536 pre-drawn values of its distribution, picked
 * by 16 bits of an xorshift32 stream (two 16-bit elements per u32 word), about 1 ns per element.
 * Not bit-compatible with randomHostWeights; f32, f16 and bf16 only.
 */
export async function uploadRandomWeights(ctx: GpuContext, config: ModelConfig, dtype: DType, seed: number, o: UploadRandomWeightsOptions = {}): Promise<ModelWeights> {
  if (dtype !== 'f32' && dtype !== 'bf16' && dtype !== 'f16') throw new Error(`uploadRandomWeights: dtype ${dtype} is not a float type`);
  const quant = o.quant ?? null;
  const c = config;
  const H = c.hiddenSize;
  const maxChunkBytes = o.maxChunkBytes ?? Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  const scratch = new Uint32Array(Math.max(1024, Math.floor((o.sliceBytes ?? 16 << 20) / 4)));
  const tables = new Map<string, Uint16Array | Uint32Array>();
  const table = (mean: number, std: number) => {
    const key = `${mean}:${std}`;
    let t = tables.get(key);
    if (!t) tables.set(key, (t = bitTable(dtype, mean, std, (seed ^ Math.imul(tables.size + 1, 0x9e3779b9)) >>> 0)));
    return t;
  };
  let tensorIndex = 0;
  let unflushed = 0;
  // Quantized tensors: values drawn as f32 (from an f32 table of the same distribution), quantized
  // a slice at a time into the value and scale regions.
  const f32Tables = new Map<string, Float32Array>();
  const fillQuantized = async (t: Tensor, q: QuantDType, mean: number, std: number): Promise<void> => {
    const key = `${mean}:${std}`;
    let values = f32Tables.get(key);
    if (!values) f32Tables.set(key, (values = new Float32Array(bitTable('f32', mean, std, (seed ^ Math.imul(f32Tables.size + 7, 0x9e3779b9)) >>> 0).buffer)));
    let x = (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) ^ Math.imul(++tensorIndex, 0x165667b1)) >>> 0 || 1;
    const n = t.size;
    const slice = Math.max(2 * QUANT_GROUP, Math.floor(scratch.length / (2 * QUANT_GROUP)) * 2 * QUANT_GROUP);
    const piece = new Float32Array(slice);
    const s0 = 4 * scaleWord0(n, q);
    for (let at = 0; at < n; at += slice) {
      const len = Math.min(slice, n - at);
      for (let i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        piece[i] = values[x & 0xffff]!;
      }
      const out = quantizePiece(piece.subarray(0, len), q);
      ctx.writeBytes(t, out.values, (at * (q === 'int8' ? 8 : 4)) / 8);
      ctx.writeBytes(t, out.scales, s0 + (2 * at) / QUANT_GROUP);
      if ((unflushed += len) >= 64 << 20) {
        unflushed = 0;
        await ctx.flush();
      }
    }
  };
  const fill = async (t: Tensor, mean: number, std: number): Promise<void> => {
    if (t.dtype === 'int8' || t.dtype === 'int4') return fillQuantized(t, t.dtype, mean, std);
    const bits = table(mean, std);
    // xorshift32, seeded per tensor (never 0).
    let x = (Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) ^ Math.imul(++tensorIndex, 0x165667b1)) >>> 0 || 1;
    const words = t.byteLength / 4;
    for (let w0 = 0; w0 < words; w0 += scratch.length) {
      const n = Math.min(scratch.length, words - w0);
      if (dtype === 'f32') {
        for (let i = 0; i < n; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          scratch[i] = bits[x & 0xffff]!;
        }
      } else {
        for (let i = 0; i < n; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          scratch[i] = bits[x & 0xffff]! | (bits[x >>> 16]! << 16);
        }
      }
      // writeBuffer copies at call time, so the scratch is reused at once.
      ctx.writeBytes(t, new Uint8Array(scratch.buffer, 0, n * 4), w0 * 4);
      // Let the queue retire its staging copies now and then (they would otherwise pile up).
      if ((unflushed += n * 4) >= 256 << 20) {
        unflushed = 0;
        await ctx.flush();
      }
    }
  };
  const chunked = async (name: string, std: number): Promise<RowChunkedTensor> => {
    const chunks: RowChunkedTensor['chunks'] = [];
    const tableDType = quant ? QUANT_TABLE_DTYPE : dtype;
    for (const [i, ch] of rowChunks(c.vocabSize, H, tableDType, maxChunkBytes).entries()) {
      const tensor = ctx.tensor([ch.rows, H], tableDType, chunkName(name, ch, i));
      await fill(tensor, 0, std);
      chunks.push({ tensor, rowStart: ch.rowStart, rows: ch.rows });
    }
    return { rows: c.vocabSize, cols: H, dtype: tableDType, chunks };
  };
  const embed = await chunked(EMBED_NAME, 0.5);
  const layers: ModelWeights['layers'] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const out: Partial<Record<LayerWeightName, Tensor>> = {};
    for (const t of layerTensors(c)) {
      const tensor = (out[t.key] = ctx.tensor(t.shape, quant && QUANTIZED_LAYER_WEIGHTS.includes(t.key) ? quant : dtype, `model.layers.${l}.${t.name}`));
      const init = initOf(t.key, t.shape);
      // Uniform inits (q/k norms) are drawn as a normal of the same mean and spread here.
      if (init.uniform) await fill(tensor, (init.uniform[0] + init.uniform[1]) / 2, (init.uniform[1] - init.uniform[0]) / 4);
      else await fill(tensor, init.mean, init.std);
    }
    layers.push(out as ModelWeights['layers'][number]);
  }
  const finalNorm = ctx.tensor([H], dtype, FINAL_NORM_NAME);
  await fill(finalNorm, 1, 0.2);
  const classifier = c.head === 'sequence-classification';
  const lmHead = c.tieWordEmbeddings || classifier ? embed : await chunked(LM_HEAD_NAME, 1 / Math.sqrt(H));
  let score: Tensor | null = null;
  if (classifier) await fill((score = ctx.tensor([c.numLabels, H], dtype, SCORE_NAME)), 0, 1 / Math.sqrt(H));
  await ctx.flush();
  return { config: c, embed, layers, finalNorm, lmHead, score };
}

/** Host weights by checkpoint tensor name (expectedTensors' names), e.g. to write a safetensors file. */
export function hostWeightsByName(w: HostWeights): Map<string, Float64Array> {
  const c = w.config;
  const byName = new Map<string, Float64Array>([
    [EMBED_NAME, w.embed],
    [FINAL_NORM_NAME, w.finalNorm],
  ]);
  w.layers.forEach((l, i) => {
    for (const t of layerTensors(c)) byName.set(`model.layers.${i}.${t.name}`, l[t.key]!);
  });
  if (w.score) byName.set(SCORE_NAME, w.score);
  else if (w.lmHead !== w.embed) byName.set(LM_HEAD_NAME, w.lmHead);
  return byName;
}

/** The inverse of hostWeightsByName: host weights from tensors looked up by name. */
export function hostWeightsFromNames(config: ModelConfig, dtype: DType, get: (name: string) => Float64Array): HostWeights {
  const embed = get(EMBED_NAME);
  const classifier = config.head === 'sequence-classification';
  return {
    config,
    dtype,
    embed,
    layers: Array.from({ length: config.numLayers }, (_, l) => {
      const layer: HostLayer = {};
      for (const t of layerTensors(config)) layer[t.key] = get(`model.layers.${l}.${t.name}`);
      return layer;
    }),
    finalNorm: get(FINAL_NORM_NAME),
    lmHead: config.tieWordEmbeddings || classifier ? embed : get(LM_HEAD_NAME),
    score: classifier ? get(SCORE_NAME) : null,
  };
}
