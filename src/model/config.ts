// LlamaForCausalLM configuration: read from a Hugging Face config.json (transformers 4.x
// `rope_theta` + `rope_scaling`, or 5.x `rope_parameters`) and generation_config.json.
// Anything we cannot honour is refused with a message naming the field.

export interface RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

export interface ModelConfig {
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

export function parseModelConfig(config: unknown, generationConfig?: unknown): ModelConfig {
  if (!config || typeof config !== 'object') throw new ConfigError('config.json must be a JSON object');
  const c = config as Json;
  const archs = c.architectures;
  if (Array.isArray(archs) && !archs.includes('LlamaForCausalLM'))
    throw new ConfigError(
      `config.json: "architectures" is ${JSON.stringify(archs)}; Fuse Studio supports LlamaForCausalLM checkpoints only`,
    );
  if (c.model_type !== undefined && c.model_type !== 'llama')
    throw new ConfigError(`config.json: "model_type" is "${String(c.model_type)}"; Fuse Studio supports "llama" only`);
  if (!Array.isArray(archs) && c.model_type === undefined)
    throw new ConfigError('config.json: neither "architectures" nor "model_type" says this is a Llama model');
  for (const flag of ['attention_bias', 'mlp_bias'] as const)
    if (c[flag] === true) throw new ConfigError(`config.json: "${flag}": true is not supported (Llama uses no biases)`);
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new ConfigError(`config.json: "hidden_act" is "${String(act)}"; only "silu" is supported`);

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
  return {
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
    maxPositionEmbeddings: int(c, 'max_position_embeddings', 2048),
    bosTokenId: bos[0] ?? null,
    eosTokenIds: eos,
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
    dtype: 'bfloat16',
  };
}
