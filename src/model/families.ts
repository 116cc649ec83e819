// The model families the engine runs, one declaration each (llama.cpp's architecture table):
// what a family changes relative to the Llama decoder. Config parsing, weights, the layer, the
// memory plan, PEFT and the reward head read these declarations instead of branching on names;
// a family added later is one entry here, its reference test and its checkpoints.
//
//   llama    LlamaForCausalLM (Llama 3.x, SmolLM2, TinyLlama): the base arithmetic
//   mistral  MistralForCausalLM: Llama arithmetic plus a sliding window (usable while no
//            sequence is longer than the window, where it equals full causal attention)
//   qwen2    Qwen2ForCausalLM (Qwen2, Qwen2.5): frozen biases on q/k/v
//   qwen3    Qwen3ForCausalLM: per-head RMSNorm on queries and keys before RoPE, no biases
//
// Every family also has a *ForSequenceClassification head (reward models such as
// Skywork-Reward-V2): the same decoder, then score.weight on the last real token.

export type FamilyName = 'llama' | 'mistral' | 'qwen2' | 'qwen3';
export type ModelHead = 'causal-lm' | 'sequence-classification';

/** Sampling settings of FuseChat-3.0 for a source family (FUSION.md §1). */
export interface SamplingPreset {
  temperature: number;
  topP: number;
  repetitionPenalty?: number;
}

export interface FamilySpec {
  name: FamilyName;
  /** config.json `model_type`. */
  modelType: string;
  /** config.json `architectures` entry per head. */
  architectures: Record<ModelHead, string>;
  /** Frozen biases on q_proj, k_proj and v_proj (added after the projection, before RoPE). */
  qkvBias: boolean;
  /** Config key that would turn on biases for every attention projection (refused: o_proj bias). */
  attentionBiasKey: string | null;
  /** q_norm / k_norm: RMSNorm over each head's head_dim, applied to queries and keys before RoPE. */
  qkNorm: boolean;
  /**
   * How the config says a sliding window is in use: 'always' when `sliding_window` is set
   * (Mistral), 'flag' when `use_sliding_window` (or a `layer_types` entry "sliding_attention")
   * turns it on (Qwen), 'never'.
   */
  slidingWindow: 'always' | 'flag' | 'never';
  /** transformers' default max_position_embeddings when the config omits it. */
  defaultMaxPositions: number;
  /** Chat-template keyword arguments the studio passes by default (Qwen3: no thinking). */
  templateKwargs: Record<string, unknown>;
  sampling: SamplingPreset;
}

/** The paper's default source preset (Gemma, Mistral, Llama) and the Qwen one. */
export const DEFAULT_SAMPLING: SamplingPreset = { temperature: 0.8, topP: 0.95 };
export const QWEN_SAMPLING: SamplingPreset = { temperature: 0.7, topP: 0.8, repetitionPenalty: 1.05 };

export const FAMILIES: Record<FamilyName, FamilySpec> = {
  llama: {
    name: 'llama',
    modelType: 'llama',
    architectures: { 'causal-lm': 'LlamaForCausalLM', 'sequence-classification': 'LlamaForSequenceClassification' },
    qkvBias: false,
    attentionBiasKey: 'attention_bias',
    qkNorm: false,
    slidingWindow: 'never',
    defaultMaxPositions: 2048,
    templateKwargs: {},
    sampling: DEFAULT_SAMPLING,
  },
  mistral: {
    name: 'mistral',
    modelType: 'mistral',
    architectures: { 'causal-lm': 'MistralForCausalLM', 'sequence-classification': 'MistralForSequenceClassification' },
    qkvBias: false,
    attentionBiasKey: null,
    qkNorm: false,
    slidingWindow: 'always',
    defaultMaxPositions: 4096 * 32,
    templateKwargs: {},
    sampling: DEFAULT_SAMPLING,
  },
  qwen2: {
    name: 'qwen2',
    modelType: 'qwen2',
    architectures: { 'causal-lm': 'Qwen2ForCausalLM', 'sequence-classification': 'Qwen2ForSequenceClassification' },
    qkvBias: true,
    attentionBiasKey: null,
    qkNorm: false,
    slidingWindow: 'flag',
    defaultMaxPositions: 32768,
    templateKwargs: {},
    sampling: QWEN_SAMPLING,
  },
  qwen3: {
    name: 'qwen3',
    modelType: 'qwen3',
    architectures: { 'causal-lm': 'Qwen3ForCausalLM', 'sequence-classification': 'Qwen3ForSequenceClassification' },
    qkvBias: false,
    attentionBiasKey: 'attention_bias',
    qkNorm: true,
    slidingWindow: 'flag',
    defaultMaxPositions: 32768,
    templateKwargs: { enable_thinking: false },
    sampling: QWEN_SAMPLING,
  },
};

export const FAMILY_LIST: readonly FamilySpec[] = Object.values(FAMILIES);

/** Every architecture name the engine accepts, for messages. */
export const SUPPORTED_ARCHITECTURES: readonly string[] = FAMILY_LIST.flatMap((f) => Object.values(f.architectures));

/** The family and head of an `architectures` entry, or null. */
export function familyOfArchitecture(arch: string): { family: FamilySpec; head: ModelHead } | null {
  for (const family of FAMILY_LIST)
    for (const [head, name] of Object.entries(family.architectures)) if (name === arch) return { family, head: head as ModelHead };
  return null;
}

export function familyOfModelType(modelType: string): FamilySpec | null {
  return FAMILY_LIST.find((f) => f.modelType === modelType) ?? null;
}
