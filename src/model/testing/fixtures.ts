// Shared fixtures of the model tests: tiny random models in a few shapes, padded batches, and
// their GPU setup (weights, adapters, workspace).
import type { GpuContext } from '../../gpu/context';
import { Tensor } from '../../gpu/tensor';
import { poison } from '../../engine/testing/gpu';
import type { DType } from '../../gpu/dtype';
import type { QuantDType } from '../../gpu/quant';
import { createTrainWorkspace, type TrainWorkspace } from '../activations';
import { setBatchInputs } from '../inputs';
import type { ModelConfig } from '../config';
import { createDecoderModel, type DecoderModel } from '../decoder';
import { createLoraAdapters, type LoraAdapters, type LoraConfig } from '../lora';
import { quantizedHostWeights, randomHostLora, randomHostWeights, seededRandom, setHostLora, tinyConfig, uploadHostWeights, type TinyConfigOptions } from '../random';
import type { HostLora, HostWeights } from '../reference';
import { releaseWeights } from '../weights';

export interface Scenario {
  name: string;
  config: TinyConfigOptions;
  dtype: DType;
  lora: LoraConfig;
  batchSize: number;
  seqLen: number;
  /** Padding tokens per row. */
  pads: number[];
  /** Default left (as generation needs). */
  padding?: 'left' | 'right';
  /** Split the embedding / lm_head into tensors of at most this many bytes. */
  maxChunkBytes?: number;
  lmHeadChunk?: number;
}

/** bf16, tied, llama3 RoPE, head_dim 16 ≠ H / heads = 12, chunked vocab (3 tensors, 128-row chunks across them). */
export const BF16_TIED: Scenario = {
  name: 'bf16 tied llama3-rope hd16',
  config: { hiddenSize: 48, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 56, vocabSize: 500, tieWordEmbeddings: true, llama3Rope: true },
  dtype: 'bf16',
  lora: { rank: 4, alpha: 8 },
  batchSize: 2,
  seqLen: 9,
  pads: [3, 0],
  maxChunkBytes: 192 * 48 * 2,
  lmHeadChunk: 128,
};

/** f32, untied, plain RoPE, head_dim 8 = H / heads, adapter on four targets with rank 3. */
export const F32_UNTIED: Scenario = {
  name: 'f32 untied hd8',
  config: { hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 44, vocabSize: 300, tieWordEmbeddings: false },
  dtype: 'f32',
  lora: { rank: 3, alpha: 6, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] },
  batchSize: 3,
  seqLen: 7,
  pads: [0, 2, 4],
};

/**
 * Qwen2 (q/k/v biases ~ N(0, 0.5²)), bf16, untied, head_dim 12 ≠ H / heads = 10, odd
 * intermediate size, a 5-to-1 GQA group.
 */
export const QWEN2_BF16: Scenario = {
  name: 'qwen2 bf16 untied biases hd12',
  config: { family: 'qwen2', hiddenSize: 40, numHeads: 5, numKvHeads: 1, headDim: 12, intermediateSize: 53, vocabSize: 310, tieWordEmbeddings: false },
  dtype: 'bf16',
  lora: { rank: 4, alpha: 8 },
  batchSize: 2,
  seqLen: 8,
  pads: [3, 0],
};

/** Qwen3 (q/k norm weights in 0.3 .. 2.3), f32, tied, head_dim 12 ≠ H / heads = 8, right padding. */
export const QWEN3_F32: Scenario = {
  name: 'qwen3 f32 tied qk-norm hd12',
  config: { family: 'qwen3', hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 12, intermediateSize: 45, vocabSize: 290, tieWordEmbeddings: true },
  dtype: 'f32',
  lora: { rank: 3, alpha: 6 },
  batchSize: 2,
  seqLen: 7,
  pads: [0, 2],
  padding: 'right',
};

/** Mistral, f16, untied, a sliding window (16) no sequence reaches, so it equals full attention. */
export const MISTRAL_F16: Scenario = {
  name: 'mistral f16 untied window 16',
  config: { family: 'mistral', hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 47, vocabSize: 280, slidingWindow: 16 },
  dtype: 'f16',
  lora: { rank: 2, alpha: 4 },
  batchSize: 2,
  seqLen: 6,
  pads: [1, 0],
};

/** One scenario per family besides the Llama ones above. */
export const FAMILY_SCENARIOS: readonly Scenario[] = [QWEN2_BF16, QWEN3_F32, MISTRAL_F16];

export interface TestBatch {
  batchSize: number;
  seqLen: number;
  ids: Int32Array;
  mask: Int32Array;
  targets: Int32Array;
  positions: Int32Array;
}

/** Padded batch: random ids, next-token targets on real positions (the first real one and the last ignored). */
export function paddedBatch(config: ModelConfig, s: Scenario, seed: number): TestBatch {
  const next = seededRandom(seed);
  const { batchSize: B, seqLen: T } = s;
  const ids = new Int32Array(B * T);
  const mask = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(-100);
  const positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const pad = s.pads[b] ?? 0;
    const [first, end] = s.padding === 'right' ? [0, T - pad] : [pad, T];
    for (let t = 0; t < T; t++) {
      const real = t >= first && t < end;
      ids[b * T + t] = real ? Math.floor(next() * config.vocabSize) : 0;
      mask[b * T + t] = real ? 1 : 0;
      // Hugging Face: cumsum(mask) - 1, clamped at 0 (padding positions do not matter).
      positions[b * T + t] = Math.max(0, Math.min(t, end - 1) - first);
    }
    for (let t = first + 1; t < end - 1; t++) targets[b * T + t] = ids[b * T + t + 1]!;
  }
  return { batchSize: B, seqLen: T, ids, mask, targets, positions };
}

export interface Setup {
  config: ModelConfig;
  host: HostWeights;
  hostLora: HostLora;
  inputs: TestBatch;
  model: DecoderModel;
  lora: LoraAdapters;
  ws: TrainWorkspace;
  release(): void;
}

/** `quant`: a quantized base; `host` is then what the GPU holds (the dequantized weights). */
export function setup(
  ctx: GpuContext,
  s: Scenario,
  seed: number,
  options: { fullFineTune?: boolean; dtype?: DType; quant?: QuantDType; keepActivations?: boolean; keepLogits?: boolean } = {},
): Setup {
  const config = tinyConfig(s.config);
  const float = randomHostWeights(config, options.dtype ?? s.dtype, seed);
  const hostLora = randomHostLora(config, s.lora, seed + 1);
  const inputs = paddedBatch(config, s, seed + 2);
  const weights = uploadHostWeights(ctx, float, s.maxChunkBytes, options.quant ?? null);
  const host = options.quant ? quantizedHostWeights(float, options.quant, s.maxChunkBytes) : float;
  const model = createDecoderModel(ctx, weights);
  const lora = createLoraAdapters(ctx, config, s.lora, { seed });
  setHostLora(ctx, lora, hostLora);
  const ws = createTrainWorkspace(model, {
    batchSize: s.batchSize,
    seqLen: s.seqLen,
    lora: s.lora,
    fullFineTune: options.fullFineTune ?? false,
    keepActivations: options.keepActivations ?? false,
    keepLogits: options.keepLogits ?? false,
    ...(s.lmHeadChunk ? { lmHeadChunk: s.lmHeadChunk } : {}),
  });
  // Nothing may read what a pass has not written: workspace and gradients start as NaN.
  poisonAll(ctx, ws);
  for (const p of lora.params) poison(ctx, p.grad);
  setBatchInputs(ctx, ws, inputs);
  return {
    config,
    host,
    hostLora,
    inputs,
    model,
    lora,
    ws,
    release() {
      ws.release();
      lora.release();
      model.release();
      releaseWeights(weights);
    },
  };
}

/** Fill every tensor reachable from `x` (objects, arrays) with NaN. */
export function poisonAll(ctx: GpuContext, x: unknown, seen = new Set<unknown>()): void {
  if (!x || typeof x !== 'object' || seen.has(x)) return;
  seen.add(x);
  if (x instanceof Tensor) return poison(ctx, x);
  for (const v of Object.values(x)) poisonAll(ctx, v, seen);
}
