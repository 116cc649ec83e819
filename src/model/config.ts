// Decoder configuration (every family of families.ts, causal LM or reward head): read from a
// Hugging Face config.json (transformers 4.x `rope_theta` + `rope_scaling`, or 5.x
// `rope_parameters`) and generation_config.json. Anything we cannot honour is refused, before
// any weight is downloaded, with a message naming the field and its value.
import { FAMILIES, familyOfArchitecture, familyOfModelType, SUPPORTED_ARCHITECTURES, type FamilyName, type FamilySpec, type ModelHead } from './families';

export interface RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
  family: FamilyName;
  /** causal-lm: lm_head over the vocabulary; sequence-classification: score.weight [numLabels, H]. */
  head: ModelHead;
  /** Rows of score.weight (1 for reward models); 0 for causal LMs. */
  numLabels: number;
  /** Frozen q/k/v projection biases (Qwen2). */
  qkvBias: boolean;
  /** Per-head RMSNorm of queries and keys before RoPE (Qwen3). */
  qkNorm: boolean;
  /** Attention window in tokens, null when every token sees the whole causal prefix. */
  slidingWindow: number | null;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** pad_token_id of config.json (a reward head reads the last token that is not padding). */
  padTokenId: number | null;
  /** The checkpoint's own dtype string (torch_dtype / dtype), informational. */
  dtype: string | null;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = Record<string, unknown>;

function int(c: Json, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (v === undefined) throw new ConfigError(`config.json: "${key}" is missing`);
  if (!Number.isInteger(v) || (v as number) <= 0) throw new ConfigError(`config.json: "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function num(c: Json, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new ConfigError(`config.json: "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function tokenIds(v: unknown, key: string): number[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isInteger(x) && x >= 0))
    throw new ConfigError(`"${key}" must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
  return list as number[];
}

function parseRope(c: Json): { ropeTheta: number; ropeScaling: RopeScaling | null } {
  // transformers 5.x folds theta and scaling into one `rope_parameters` object.
  const params = (c.rope_parameters ?? null) as Json | null;
  const scaling = (params ?? (c.rope_scaling as Json | null | undefined) ?? null) as Json | null;
  const ropeTheta = params && params.rope_theta !== undefined ? num(params, 'rope_theta') : num(c, 'rope_theta', 10000);
  const field = params ? 'rope_parameters' : 'rope_scaling';
  if (!scaling) return { ropeTheta, ropeScaling: null };
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (type === 'default') return { ropeTheta, ropeScaling: null };
  if (type !== 'llama3')
    throw new ConfigError(`config.json: ${field}.rope_type "${String(type)}" is not supported (supported: default, llama3)`);
  const need = (k: string) => {
    const v = scaling[k];
    if (typeof v !== 'number' || !(v > 0)) throw new ConfigError(`config.json: ${field}.${k} must be a positive number for llama3 rope scaling`);
    return v;
  };
  return {
    ropeTheta,
    ropeScaling: {
      ropeType: 'llama3',
      factor: need('factor'),
      lowFreqFactor: need('low_freq_factor'),
      highFreqFactor: need('high_freq_factor'),
      originalMaxPositionEmbeddings: need('original_max_position_embeddings'),
    },
  };
}

/** Settings no family here implements: refused when present and switched on. */
const UNSUPPORTED_SETTINGS: { key: string; active: (v: unknown) => boolean; why: string }[] = [
  { key: 'attn_logit_softcapping', active: (v) => v != null, why: 'attention logit softcapping is not implemented' },
  { key: 'final_logit_softcapping', active: (v) => v != null, why: 'final logit softcapping is not implemented' },
  { key: 'num_experts', active: (v) => typeof v === 'number' && v > 0, why: 'mixture-of-experts layers are not implemented' },
  { key: 'num_local_experts', active: (v) => typeof v === 'number' && v > 0, why: 'mixture-of-experts layers are not implemented' },
  { key: 'mlp_bias', active: (v) => v === true, why: 'MLP biases are not implemented' },
  { key: 'use_mrope', active: (v) => v === true, why: 'multimodal RoPE is not implemented' },
];

/** Which family and head config.json describes (architectures first, then model_type). */
function identify(c: Json): { family: FamilySpec; head: ModelHead } {
  const archs = c.architectures;
  const supported = `supported: ${SUPPORTED_ARCHITECTURES.join(', ')}`;
  if (Array.isArray(archs) && archs.length > 0) {
    for (const a of archs) {
      const found = typeof a === 'string' ? familyOfArchitecture(a) : null;
      if (found) {
        if (c.model_type !== undefined && c.model_type !== found.family.modelType)
          throw new ConfigError(`config.json: "model_type" is "${String(c.model_type)}" but "architectures" says ${String(a)} (model_type "${found.family.modelType}")`);
        return found;
      }
    }
    throw new ConfigError(`config.json: "architectures" is ${JSON.stringify(archs)}; Fuse Studio does not run this architecture (${supported})`);
  }
  if (typeof c.model_type === 'string') {
    const family = familyOfModelType(c.model_type);
    if (family) return { family, head: 'causal-lm' };
    throw new ConfigError(`config.json: "model_type" is "${c.model_type}"; Fuse Studio does not run this architecture (${supported})`);
  }
  throw new ConfigError(`config.json: neither "architectures" nor "model_type" says which model this is (${supported})`);
}

/** The attention window that would be used, or null (see FamilySpec.slidingWindow). */
function slidingWindowOf(c: Json, f: FamilySpec): number | null {
  if (f.slidingWindow === 'never') return null;
  const layerTypes = Array.isArray(c.layer_types) ? c.layer_types : [];
  const used = f.slidingWindow === 'always' || c.use_sliding_window === true || layerTypes.includes('sliding_attention');
  if (!used || c.sliding_window == null) return null;
  return int(c, 'sliding_window');
}

function numLabelsOf(c: Json): number {
  if (c.num_labels !== undefined) return int(c, 'num_labels');
  if (c.id2label && typeof c.id2label === 'object') return Object.keys(c.id2label).length;
  return 2; // transformers' PretrainedConfig default
}

export function parseModelConfig(config: unknown, generationConfig?: unknown): ModelConfig {
  if (!config || typeof config !== 'object') throw new ConfigError('config.json must be a JSON object');
  const c = config as Json;
  const { family, head } = identify(c);
  const arch = family.architectures[head];
  for (const s of UNSUPPORTED_SETTINGS)
    if (s.active(c[s.key])) throw new ConfigError(`config.json: "${s.key}": ${JSON.stringify(c[s.key])} is not supported (${s.why})`);
  if (family.attentionBiasKey && c[family.attentionBiasKey] === true)
    throw new ConfigError(`config.json: "${family.attentionBiasKey}": true is not supported for ${arch} (it adds a bias to o_proj too)`);
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new ConfigError(`config.json: "hidden_act" is "${String(act)}"; only "silu" is supported`);
  const numLabels = head === 'sequence-classification' ? numLabelsOf(c) : 0;
  if (head === 'sequence-classification' && numLabels !== 1)
    throw new ConfigError(`config.json: a ${arch} with num_labels = ${numLabels} is a classifier, not a reward model; Fuse Studio scores with num_labels 1`);

  const hiddenSize = int(c, 'hidden_size');
  const numHeads = int(c, 'num_attention_heads');
  const numKvHeads = int(c, 'num_key_value_heads', numHeads);
  if (numHeads % numKvHeads !== 0)
    throw new ConfigError(`config.json: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  const headDim = c.head_dim == null ? hiddenSize / numHeads : int(c, 'head_dim');
  if (!Number.isInteger(headDim))
    throw new ConfigError(`config.json: hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numHeads}) and no head_dim is given`);
  if (headDim % 2 !== 0) throw new ConfigError(`config.json: head_dim must be even for rotary embeddings, got ${headDim}`);
  const { ropeTheta, ropeScaling } = parseRope(c);
  const g = (generationConfig ?? {}) as Json;
  const eos = tokenIds(g.eos_token_id ?? c.eos_token_id, 'eos_token_id');
  const bos = tokenIds(g.bos_token_id ?? c.bos_token_id, 'bos_token_id');
  const pad = tokenIds(c.pad_token_id, 'pad_token_id');
  return {
    family: family.name,
    head,
    numLabels,
    qkvBias: family.qkvBias,
    qkNorm: family.qkNorm,
    slidingWindow: slidingWindowOf(c, family),
    hiddenSize,
    intermediateSize: int(c, 'intermediate_size'),
    numLayers: int(c, 'num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int(c, 'vocab_size'),
    rmsNormEps: num(c, 'rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: c.tie_word_embeddings === true,
    maxPositionEmbeddings: int(c, 'max_position_embeddings', family.defaultMaxPositions),
    bosTokenId: bos[0] ?? null,
    eosTokenIds: eos,
    padTokenId: pad[0] ?? null,
    dtype: typeof (c.torch_dtype ?? c.dtype) === 'string' ? ((c.torch_dtype ?? c.dtype) as string) : null,
  };
}

/** The exact Llama-3.2 shapes, for memory plans and benchmarks without downloading anything. */
export const LLAMA_3_2_PRESETS: Record<'llama-3.2-1b' | 'llama-3.2-3b', ModelConfig> = {
  'llama-3.2-1b': preset(2048, 8192, 16, 32, 8, 64, true),
  'llama-3.2-3b': preset(3072, 8192, 28, 24, 8, 128, true),
};

function preset(h: number, i: number, l: number, nh: number, kv: number, hd: number, tie: boolean): ModelConfig {
  return {
    family: 'llama',
    head: 'causal-lm',
    numLabels: 0,
    qkvBias: false,
    qkNorm: false,
    slidingWindow: null,
    hiddenSize: h,
    intermediateSize: i,
    numLayers: l,
    numHeads: nh,
    numKvHeads: kv,
    headDim: hd,
    vocabSize: 128256,
    rmsNormEps: 1e-5,
    ropeTheta: 500000,
    ropeScaling: { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    tieWordEmbeddings: tie,
    maxPositionEmbeddings: 131072,
    bosTokenId: 128000,
    eosTokenIds: [128001, 128008, 128009],
    padTokenId: null,
    dtype: 'bfloat16',
  };
}

/** The family declaration a config belongs to. */
export function familyOf(c: Pick<ModelConfig, 'family'>): FamilySpec {
  return FAMILIES[c.family];
}

/**
 * Refuse a sequence the engine would attend differently from transformers: with a sliding
 * window, full causal attention equals windowed attention only while no sequence is longer.
 */
export function checkSequenceLength(c: ModelConfig, tokens: number, what = 'a sequence'): void {
  if (c.slidingWindow !== null && tokens > c.slidingWindow)
    throw new ConfigError(
      `config.json: "sliding_window" is ${c.slidingWindow}, and ${what} of ${tokens} tokens would use it; Fuse Studio implements full attention only — keep sequences at or under ${c.slidingWindow} tokens`,
    );
}
