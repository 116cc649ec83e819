// The shape of a model's base weights on the GPU: every tensor uploadWeights creates, with the
// row chunks of the embedding and lm_head. Shared by the memory plan (from a config) and the
// full fine-tuning gradients (from loaded weights), so both describe the same tensors.
import type { DType } from '../gpu/dtype';
import type { QuantDType } from '../gpu/quant';
import type { ModelConfig } from './config';
import { rowChunks, type TensorSpec } from './specs';
import { layerTensors, QUANT_TABLE_DTYPE, QUANTIZED_LAYER_WEIGHTS, quantOf, SCORE_NAME, type LayerWeightName, type ModelWeights } from './weights';

export interface ChunkRange {
  rowStart: number;
  rows: number;
}

export interface WeightLayout {
  config: ModelConfig;
  /** dtype of the checkpoint's tensors (norm weights, biases, a reward head; the matrices too unless quantized). */
  dtype: DType;
  /** dtype of the seven projections: `dtype`, or the quantized format. */
  matrixDType: DType;
  /** dtype of the embedding / lm_head chunks: `dtype`, or int8 for a quantized base. */
  tableDType: DType;
  embedChunks: ChunkRange[];
  /** null when lm_head is tied to the embedding. */
  lmHeadChunks: ChunkRange[] | null;
  /**
   * Per-tensor dtypes by Hugging Face name (a GGUF file's mix of Q4_K / Q6_K / F32 tensors): a
   * tensor named here has this dtype, not the one of its role above; row chunks take their table's.
   */
  tensorDTypes?: Readonly<Record<string, DType>>;
}

/** "9 q4_k, 6 q6_k, 5 f32": how many tensors of each dtype (a GGUF file's mix), most first. */
export function describeTensorDTypes(tensorDTypes: Readonly<Record<string, DType>>): string {
  const counts = new Map<DType, number>();
  for (const d of Object.values(tensorDTypes)) counts.set(d, (counts.get(d) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([d, n]) => `${n} ${d}`).join(', ');
}

/** Default binding limit of WebGPU (the embedding of Llama-3.2-1B in bf16 is 525 MB). */
export const DEFAULT_BINDING_BYTES = 128 * 1024 * 1024;

/** The layout uploadWeights produces on a device whose binding limit is `limitBytes`. */
export function planWeightLayout(
  config: ModelConfig,
  dtype: DType,
  limitBytes = DEFAULT_BINDING_BYTES,
  quant: QuantDType | null = null,
  tensorDTypes?: Readonly<Record<string, DType>>,
): WeightLayout {
  const tableDType = quant ? QUANT_TABLE_DTYPE : dtype;
  const chunksOf = (name: string) => rowChunks(config.vocabSize, config.hiddenSize, tensorDTypes?.[name] ?? tableDType, limitBytes);
  const ownHead = !config.tieWordEmbeddings && config.head === 'causal-lm';
  return {
    config,
    dtype,
    matrixDType: quant ?? dtype,
    tableDType,
    embedChunks: chunksOf(EMBED_NAME),
    lmHeadChunks: ownHead ? chunksOf(LM_HEAD_NAME) : null,
    ...(tensorDTypes ? { tensorDTypes } : {}),
  };
}

export function layoutOf(w: ModelWeights): WeightLayout {
  const ranges = (c: ModelWeights['embed']) => c.chunks.map(({ rowStart, rows }) => ({ rowStart, rows }));
  // Every tensor's own dtype, so a mixed base (GGUF) is described exactly.
  const tensorDTypes: Record<string, DType> = { [EMBED_NAME]: w.embed.dtype, [FINAL_NORM_NAME]: w.finalNorm.dtype };
  if (w.lmHead !== w.embed) tensorDTypes[LM_HEAD_NAME] = w.lmHead.dtype;
  if (w.score) tensorDTypes[SCORE_NAME] = w.score.dtype;
  const layer = layerTensors(w.config);
  w.layers.forEach((l, i) => {
    for (const t of layer) tensorDTypes[`model.layers.${i}.${t.name}`] = l[t.key]!.dtype;
  });
  return {
    config: w.config,
    dtype: w.finalNorm.dtype,
    matrixDType: quantOf(w) ?? w.finalNorm.dtype,
    tableDType: w.embed.dtype,
    embedChunks: ranges(w.embed),
    lmHeadChunks: w.lmHead === w.embed ? null : ranges(w.lmHead),
    tensorDTypes,
  };
}

export const EMBED_NAME = 'model.embed_tokens.weight';
export const LM_HEAD_NAME = 'lm_head.weight';
export const FINAL_NORM_NAME = 'model.norm.weight';

/** Label of a row chunk, as uploadWeights names it. */
export function chunkName(name: string, c: ChunkRange, index: number): string {
  return index === 0 ? name : `${name}[${c.rowStart}:${c.rowStart + c.rows}]`;
}

export function layerShapes(c: ModelConfig): Partial<Record<LayerWeightName, number[]>> {
  return Object.fromEntries(layerTensors(c).map((t) => [t.key, t.shape]));
}

/** Every base weight tensor, as uploadWeights allocates them (in the layout's dtypes, or all in `dtype`). */
export function weightSpecs(layout: WeightLayout, as?: DType): TensorSpec[] {
  const { config: c } = layout;
  const H = c.hiddenSize;
  const dtype = as ?? layout.dtype;
  const table = as ?? layout.tableDType;
  const matrix = as ?? layout.matrixDType;
  const own = (name: string, role: DType): DType => as ?? layout.tensorDTypes?.[name] ?? role;
  const specs: TensorSpec[] = layout.embedChunks.map((ch, i) => ({ name: chunkName(EMBED_NAME, ch, i), shape: [ch.rows, H], dtype: own(EMBED_NAME, table) }));
  const layer = layerTensors(c);
  for (let l = 0; l < c.numLayers; l++)
    for (const t of layer) {
      const name = `model.layers.${l}.${t.name}`;
      specs.push({ name, shape: t.shape, dtype: own(name, QUANTIZED_LAYER_WEIGHTS.includes(t.key) ? matrix : dtype) });
    }
  specs.push({ name: FINAL_NORM_NAME, shape: [H], dtype: own(FINAL_NORM_NAME, dtype) });
  if (c.head === 'sequence-classification') specs.push({ name: SCORE_NAME, shape: [c.numLabels, H], dtype: own(SCORE_NAME, dtype) });
  if (layout.lmHeadChunks)
    layout.lmHeadChunks.forEach((ch, i) => specs.push({ name: chunkName(LM_HEAD_NAME, ch, i), shape: [ch.rows, H], dtype: own(LM_HEAD_NAME, table) }));
  return specs;
}
