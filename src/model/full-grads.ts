// Full fine-tuning (tiny models only): an f32 gradient and two AdamW moments for every base
// weight, laid out like the weights (the embedding and lm_head in the same row chunks). The
// base weights must be f32, since the optimizer updates them in place.
import type { CommandBatch } from '../gpu/batch';
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import type { TrainableParam } from './lora';
import { allocateSpecs, type TensorSpec } from './specs';
import { chunkName, EMBED_NAME, FINAL_NORM_NAME, layoutOf, LM_HEAD_NAME, weightSpecs, type WeightLayout } from './weight-layout';
import { layerTensors, type LayerWeightName, type ModelWeights, type RowChunkedTensor } from './weights';

export interface FullGrads {
  layers: Partial<Record<LayerWeightName, Tensor>>[];
  /** Gradient of the embedding, in the weight's row chunks. */
  embed: RowChunkedTensor;
  /** Gradient of lm_head; the same object as `embed` when the weights are tied. */
  lmHead: RowChunkedTensor;
  finalNorm: Tensor;
  /** Every base weight with its gradient and moments, for the optimizer. */
  params: TrainableParam[];
  release(): void;
}

export function fullGradSpecs(layout: WeightLayout): { grads: TensorSpec[]; moments: TensorSpec[] } {
  const base = weightSpecs(layout, 'f32');
  return {
    grads: base.map((s) => ({ ...s, name: `${s.name}.grad` })),
    moments: base.flatMap((s) => [
      { ...s, name: `${s.name}.m` },
      { ...s, name: `${s.name}.v` },
    ]),
  };
}

/** Allocate zeroed gradients and moments for every weight of an f32 model. */
export function createFullGrads(ctx: GpuContext, weights: ModelWeights): FullGrads {
  const layout = layoutOf(weights);
  if (weights.config.head !== 'causal-lm') throw new Error('full fine-tuning: this is a reward (sequence-classification) model; Fuse Studio trains causal LMs only');
  const bad = allTensors(weights).find((t) => t.dtype !== 'f32');
  if (bad) throw new Error(`full fine-tuning needs f32 base weights; ${bad.label} is ${bad.dtype}`);
  const specs = fullGradSpecs(layout);
  const t = allocateSpecs<string>(ctx, [...specs.grads, ...specs.moments]);
  const c = weights.config;
  const chunked = (name: string, w: RowChunkedTensor): RowChunkedTensor => ({
    rows: w.rows,
    cols: w.cols,
    dtype: 'f32',
    chunks: w.chunks.map((ch, i) => ({ tensor: t[`${chunkName(name, ch, i)}.grad`]!, rowStart: ch.rowStart, rows: ch.rows })),
  });
  const embed = chunked(EMBED_NAME, weights.embed);
  const lmHead = weights.lmHead === weights.embed ? embed : chunked(LM_HEAD_NAME, weights.lmHead);
  const layerNames = layerTensors(c);
  const layers: FullGrads['layers'] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const g: FullGrads['layers'][number] = {};
    for (const { key, name } of layerNames) g[key] = t[`model.layers.${l}.${name}.grad`]!;
    layers.push(g);
  }
  // Parameters in weightSpecs order, paired with the weight tensors they update.
  const values = new Map<string, Tensor>();
  weights.embed.chunks.forEach((ch, i) => values.set(chunkName(EMBED_NAME, ch, i), ch.tensor));
  weights.layers.forEach((lw, l) => {
    for (const { key, name } of layerNames) values.set(`model.layers.${l}.${name}`, lw[key]!);
  });
  values.set(FINAL_NORM_NAME, weights.finalNorm);
  if (weights.lmHead !== weights.embed) weights.lmHead.chunks.forEach((ch, i) => values.set(chunkName(LM_HEAD_NAME, ch, i), ch.tensor));
  const params: TrainableParam[] = weightSpecs(layout).map((s) => ({
    name: s.name,
    value: values.get(s.name)!,
    grad: t[`${s.name}.grad`]!,
    m: t[`${s.name}.m`]!,
    v: t[`${s.name}.v`]!,
  }));
  const batch = ctx.batch('full grads init');
  for (const x of Object.values(t)) batch.clear(x);
  batch.submit();
  return {
    layers,
    embed,
    lmHead,
    finalNorm: t[`${FINAL_NORM_NAME}.grad`]!,
    params,
    release() {
      for (const x of Object.values(t)) x.release();
    },
  };
}

export function zeroFullGrads(batch: CommandBatch, grads: FullGrads): void {
  for (const p of grads.params) batch.clear(p.grad);
}

function allTensors(w: ModelWeights): Tensor[] {
  return [
    ...w.embed.chunks.map((c) => c.tensor),
    ...w.layers.flatMap((l) => Object.values(l) as Tensor[]),
    w.finalNorm,
    ...w.lmHead.chunks.map((c) => c.tensor),
  ];
}
