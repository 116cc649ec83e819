// A decoder model (any family of families.ts) on the GPU: the frozen weights plus what every pass shares (RoPE inverse
// frequencies). The passes live beside it: forward.ts (training / scoring), backward.ts,
// kv-cache.ts (generation); layer.ts holds one decoder layer's forward and backward.
import type { GpuContext } from '../gpu/context';
import type { Tensor } from '../gpu/tensor';
import { uploadInverseFrequencies } from '../engine/rope';
import type { ModelConfig } from './config';
import type { LoraAdapters } from './lora';
import type { TensorSpec } from './specs';
import { layoutOf, type WeightLayout } from './weight-layout';
import type { ModelWeights } from './weights';

export interface DecoderModel {
  ctx: GpuContext;
  config: ModelConfig;
  weights: ModelWeights;
  layout: WeightLayout;
  /** f32 [headDim / 2]: rope_theta with the config's llama3 scaling. */
  invFreq: Tensor;
  /** Frees what the model added (not the weights: see releaseWeights). */
  release(): void;
}

/** The model's own tensors besides the weights (for the memory plan). */
export function modelSpecs(c: ModelConfig): TensorSpec[] {
  return [{ name: 'rope inv_freq', shape: [c.headDim / 2], dtype: 'f32' }];
}

export function createDecoderModel(ctx: GpuContext, weights: ModelWeights): DecoderModel {
  const c = weights.config;
  const invFreq = uploadInverseFrequencies(ctx, { headDim: c.headDim, ropeTheta: c.ropeTheta, ropeScaling: c.ropeScaling });
  return { ctx, config: c, weights, layout: layoutOf(weights), invFreq, release: () => invFreq.release() };
}

/** The adapter a pass should apply: null when absent or switched off. */
export function activeAdapter(lora: LoraAdapters | null | undefined): LoraAdapters | null {
  return lora && lora.enabled ? lora : null;
}
