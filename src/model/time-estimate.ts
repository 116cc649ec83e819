// Time of a piece of work before it starts: its floating-point operations (from the model's
// config and the token counts) over the speed this device measured for the engine's matmul
// (speed.ts). Decoders spend nearly all their time in matmuls, so this is a fair first figure;
// it leaves out the time to download and load models, and assumes every answer runs to its token
// limit (so it is an upper bound for generation). Runs show their own measured ETA as they go.

import type { ModelConfig } from './config';
import type { DeviceSpeed } from './speed';

/** Parameters a token passes through as matmul weights: all but the embedding gather (the tied lm_head counts once). */
export function matmulParams(c: ModelConfig, head: 'lm' | 'reward'): number {
  const H = c.hiddenSize;
  const kv = c.numKvHeads * c.headDim;
  const attn = H * c.numHeads * c.headDim * 2 + H * kv * 2;
  const mlp = 3 * H * c.intermediateSize;
  const out = head === 'lm' ? c.vocabSize * H : H * Math.max(1, c.numLabels);
  return c.numLayers * (attn + mlp) + out;
}

/** FLOPs of one token's forward pass with `context` earlier positions attended (QKᵀ and A·V). */
export function forwardFlopsPerToken(c: ModelConfig, head: 'lm' | 'reward', context: number): number {
  return 2 * matmulParams(c, head) + 4 * c.numLayers * c.numHeads * c.headDim * context;
}

/**
 * Backward-pass cost relative to a forward: a LoRA step recomputes each layer's forward
 * (activation checkpointing) and computes input gradients through the frozen weights (another
 * forward's worth); the frozen weights need no weight gradients. So a step ≈ 3 forwards.
 */
export const TRAIN_FORWARDS = 3;

export interface GenerationWork {
  config: ModelConfig;
  prompts: number;
  /** Samples per prompt (they share one prefill). */
  n: number;
  promptTokens: number;
  maxNewTokens: number;
}

export interface SequenceWork {
  config: ModelConfig;
  /** Sequences and their (padded) length. */
  sequences: number;
  tokens: number;
}

export interface PhaseEstimate {
  phase: string;
  flops: number;
  seconds: number;
}

/** Prefill of each prompt once, then n × maxNewTokens decode steps at the decode-shaped rate. */
export function estimateGeneration(name: string, w: GenerationWork, speed: DeviceSpeed): PhaseEstimate {
  const prefill = w.prompts * w.promptTokens * forwardFlopsPerToken(w.config, 'lm', w.promptTokens / 2);
  const decode = w.prompts * w.n * w.maxNewTokens * forwardFlopsPerToken(w.config, 'lm', w.promptTokens + w.maxNewTokens / 2);
  return { phase: name, flops: prefill + decode, seconds: prefill / (speed.prefillGflops * 1e9) + decode / (speed.decodeGflops * 1e9) };
}

/** Forward passes over whole sequences (scoring, reference log-probs) and training steps (× TRAIN_FORWARDS). */
export function estimateSequences(name: string, w: SequenceWork, head: 'lm' | 'reward', forwards: number, speed: DeviceSpeed): PhaseEstimate {
  const flops = forwards * w.sequences * w.tokens * forwardFlopsPerToken(w.config, head, w.tokens / 2);
  return { phase: name, flops, seconds: flops / (speed.prefillGflops * 1e9) };
}

/** "about 40 s" / "about 12 min" / "about 2.5 h". */
export function formatEstimate(seconds: number): string {
  if (seconds < 90) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `about ${Math.round(seconds / 60)} min`;
  return `about ${(seconds / 3600).toFixed(1)} h`;
}
