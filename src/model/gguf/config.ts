// GGUF metadata → ModelConfig, and GGUF tensor names ↔ Hugging Face names.
//
// llama.cpp's converter (convert_hf_to_gguf.py) writes `{arch}.*` keys for the shapes and
// `tokenizer.ggml.*` for the tokens; it renames tensors (blk.N.attn_q.weight, token_embd.weight,
// output.weight, ...) and, for the llama architecture only, permutes the rows of q_proj and
// k_proj so that llama.cpp's rope can rotate adjacent pairs:
//   permute(w, n_head) = w.reshape(n_head, 2, rows / n_head / 2, cols).swapaxes(1, 2).reshape(rows, cols)
// (k_proj with n_head = n_kv_heads). So GGUF row h·hd + 2i + s holds HF row h·hd + s·hd/2 + i;
// `unpermuteRows` undoes it, so the loaded weights equal the Hugging Face model's. Qwen2/Qwen3 use
// NEOX-style rope in llama.cpp and are written unpermuted. Llama 3 rope scaling is not in the
// metadata: the converter writes the per-frequency factors as the tensor rope_freqs.weight, which
// `ropeScalingFromFreqs` matches against the llama3 rule.

import { ConfigError, type ModelConfig, type RopeScaling } from '../config';
import { FAMILIES, type FamilyName } from '../families';
import { expectedTensors, LAYER_TENSOR_NAMES, type LayerWeightName } from '../weights';
import type { GgufHeader } from './reader';

export const GGUF_ARCHITECTURES: Record<string, FamilyName> = { llama: 'llama', qwen2: 'qwen2', qwen3: 'qwen3' };

const LAYER_GGUF_NAMES: Record<LayerWeightName, string> = {
  inputNorm: 'attn_norm.weight',
  q: 'attn_q.weight',
  k: 'attn_k.weight',
  v: 'attn_v.weight',
  o: 'attn_output.weight',
  postNorm: 'ffn_norm.weight',
  gate: 'ffn_gate.weight',
  up: 'ffn_up.weight',
  down: 'ffn_down.weight',
  qBias: 'attn_q.bias',
  kBias: 'attn_k.bias',
  vBias: 'attn_v.bias',
  qNorm: 'attn_q_norm.weight',
  kNorm: 'attn_k_norm.weight',
};
const HF_OF_LAYER = new Map(Object.entries(LAYER_TENSOR_NAMES).map(([k, hf]) => [hf, LAYER_GGUF_NAMES[k as LayerWeightName]]));

/** The GGUF name of a Hugging Face tensor name (those expectedTensors lists). */
export function ggufTensorName(hf: string): string {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  const g = m && HF_OF_LAYER.get(m[2]!);
  if (!m || !g) throw new ConfigError(`no GGUF name for tensor "${hf}"`);
  return `blk.${m[1]}.${g}`;
}

/** Tensors a GGUF file may hold that the engine does not read (they carry no weights we need). */
export const IGNORED_GGUF_TENSORS = new Set(['rope_freqs.weight']);

/** How many heads a tensor's rows are permuted by (llama only): q by numHeads, k by numKvHeads. */
export function permutedHeads(config: ModelConfig, arch: string, hf: string): number | null {
  if (arch !== 'llama') return null;
  if (hf.endsWith('.self_attn.q_proj.weight')) return config.numHeads;
  if (hf.endsWith('.self_attn.k_proj.weight')) return config.numKvHeads;
  return null;
}

/** The Hugging Face row r of a tensor permuted by `heads` sits at GGUF row ggufRowOf(r). */
export function ggufRowOf(r: number, rows: number, heads: number): number {
  const hd = rows / heads;
  const h = Math.floor(r / hd);
  const j = r % hd;
  const s = j < hd / 2 ? 0 : 1;
  const i = j - (s * hd) / 2;
  return h * hd + 2 * i + s;
}

/** Reorder whole rows (each `rowBytes` long) from GGUF order to Hugging Face order. */
export function unpermuteRows(bytes: Uint8Array, rows: number, heads: number): Uint8Array<ArrayBuffer> {
  const rb = bytes.byteLength / rows;
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    const g = ggufRowOf(r, rows, heads);
    out.set(bytes.subarray(g * rb, (g + 1) * rb), r * rb);
  }
  return out;
}

/** Hugging Face order → GGUF order (what llama.cpp's converter does; for the test writer). */
export function permuteRows(bytes: Uint8Array, rows: number, heads: number): Uint8Array<ArrayBuffer> {
  const rb = bytes.byteLength / rows;
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    const g = ggufRowOf(r, rows, heads);
    out.set(bytes.subarray(r * rb, (r + 1) * rb), g * rb);
  }
  return out;
}

/** The llama3 per-frequency factors llama.cpp stores in rope_freqs.weight (HF's rule). */
export function llama3RopeFactors(headDim: number, theta: number, s: RopeScaling): Float64Array {
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const out = new Float64Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/**
 * The llama3 rope scaling whose factors are `freqs` (rope_freqs.weight). The factor is the largest
 * entry and the low/high frequency factors Llama 3.1/3.2's (1, 4); the original context is the
 * metadata's when given, else the one (8192 for Llama 3.x, any power of two) whose rule gives these
 * factors. Refused when none does.
 */
export function ropeScalingFromFreqs(freqs: ArrayLike<number>, headDim: number, theta: number, originalContext: number | null): RopeScaling {
  const factor = Math.max(...Array.from(freqs));
  const candidates = originalContext ? [originalContext] : [8192, ...Array.from({ length: 20 }, (_, i) => 2 ** (i + 4))];
  for (const original of candidates) {
    const s: RopeScaling = { ropeType: 'llama3', factor, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: original };
    const want = llama3RopeFactors(headDim, theta, s);
    if (freqs.length === want.length && want.every((w, i) => Math.abs(w - freqs[i]!) <= 1e-3 * w)) return s;
  }
  throw new ConfigError(
    `GGUF: rope_freqs.weight holds rope factors that are not Llama 3's rule (factor ${factor}, low/high frequency factors 1/4); this rope scaling is not supported — use the model's safetensors repo`,
  );
}

/** The shortest decimal of an f32 metadata value (1e-5 stored as f32 reads back as 1e-5). */
function shortF32(x: number): number {
  const short = Number(x.toPrecision(7));
  return Math.fround(short) === Math.fround(x) ? short : x;
}

type Meta = GgufHeader['metadata'];

function metaNum(meta: Meta, key: string, fallback?: number): number {
  const v = meta[key] ?? fallback;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new ConfigError(`GGUF metadata: "${key}" is ${v === undefined ? 'missing' : `not a number (${String(v)})`}`);
  return n;
}

function metaInt(meta: Meta, key: string, fallback?: number): number {
  const n = metaNum(meta, key, fallback);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`GGUF metadata: "${key}" must be a positive integer, got ${n}`);
  return n;
}

function metaId(meta: Meta, key: string): number | null {
  const v = meta[key];
  if (v === undefined) return null;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/** The GGUF architecture name (general.architecture), refused unless a family here runs it. */
export function ggufArchitecture(h: GgufHeader): string {
  const arch = h.metadata['general.architecture'];
  if (typeof arch !== 'string') throw new ConfigError(`${h.file}: GGUF metadata has no "general.architecture"`);
  if (!(arch in GGUF_ARCHITECTURES))
    throw new ConfigError(
      `${h.file}: GGUF architecture "${arch}" is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(', ')}); ` +
        'use a Llama- or Qwen-architecture GGUF, or the model\'s safetensors repo',
    );
  return arch;
}

/**
 * The ModelConfig a GGUF file describes. `ropeFreqs` is the content of rope_freqs.weight when
 * the file has it (Llama 3.1+ rope scaling).
 */
export function ggufModelConfig(h: GgufHeader, ropeFreqs: ArrayLike<number> | null = null): ModelConfig {
  const arch = ggufArchitecture(h);
  const family = FAMILIES[GGUF_ARCHITECTURES[arch]!];
  const m = h.metadata;
  const k = (s: string) => `${arch}.${s}`;
  const experts = m[k('expert_count')];
  if (experts !== undefined && Number(experts) > 0)
    throw new ConfigError(`${h.file}: GGUF "${k('expert_count')}" is ${String(experts)}; mixture-of-experts models are not supported`);
  const hiddenSize = metaInt(m, k('embedding_length'));
  const numHeads = metaInt(m, k('attention.head_count'));
  const numKvHeads = metaInt(m, k('attention.head_count_kv'), numHeads);
  if (numHeads % numKvHeads !== 0)
    throw new ConfigError(`${h.file}: GGUF ${k('attention.head_count')} (${numHeads}) is not a multiple of ${k('attention.head_count_kv')} (${numKvHeads})`);
  const headDim = metaInt(m, k('attention.key_length'), hiddenSize / numHeads);
  const valueDim = metaInt(m, k('attention.value_length'), headDim);
  if (valueDim !== headDim) throw new ConfigError(`${h.file}: GGUF key_length ${headDim} ≠ value_length ${valueDim}; not supported`);
  if (headDim % 2 !== 0) throw new ConfigError(`${h.file}: GGUF head dimension ${headDim} must be even for rotary embeddings`);
  const ropeDims = metaInt(m, k('rope.dimension_count'), headDim);
  if (ropeDims !== headDim)
    throw new ConfigError(`${h.file}: GGUF ${k('rope.dimension_count')} is ${ropeDims} but the head dimension is ${headDim}; partial rotary embeddings are not supported`);
  const ropeTheta = shortF32(metaNum(m, k('rope.freq_base'), 10000));
  const scalingType = m[k('rope.scaling.type')];
  if (scalingType !== undefined && scalingType !== 'none')
    throw new ConfigError(`${h.file}: GGUF ${k('rope.scaling.type')} "${String(scalingType)}" is not supported (only none, or Llama 3's rope_freqs)`);
  const originalContext = m[k('rope.scaling.original_context_length')];
  const ropeScaling = ropeFreqs
    ? ropeScalingFromFreqs(ropeFreqs, headDim, ropeTheta, originalContext === undefined ? null : Number(originalContext))
    : null;
  const tokens = m['tokenizer.ggml.tokens'];
  const embed = h.tensors.get('token_embd.weight');
  const vocabSize = metaInt(m, k('vocab_size'), Array.isArray(tokens) ? tokens.length : embed?.shape[0]);
  const eos = [metaId(m, 'tokenizer.ggml.eos_token_id'), metaId(m, 'tokenizer.ggml.eot_token_id'), metaId(m, 'tokenizer.ggml.eom_token_id')];
  return {
    family: family.name,
    head: 'causal-lm',
    numLabels: 0,
    qkvBias: family.qkvBias,
    qkNorm: family.qkNorm,
    slidingWindow: null,
    hiddenSize,
    intermediateSize: metaInt(m, k('feed_forward_length')),
    numLayers: metaInt(m, k('block_count')),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: shortF32(metaNum(m, k('attention.layer_norm_rms_epsilon'), 1e-6)),
    ropeTheta,
    ropeScaling,
    tieWordEmbeddings: !h.tensors.has('output.weight'),
    maxPositionEmbeddings: metaInt(m, k('context_length'), family.defaultMaxPositions),
    bosTokenId: metaId(m, 'tokenizer.ggml.bos_token_id'),
    eosTokenIds: [...new Set(eos.filter((x): x is number => x !== null))],
    padTokenId: metaId(m, 'tokenizer.ggml.padding_token_id'),
    dtype: 'gguf',
  };
}

/** Every tensor the config needs, by GGUF name, with its Hugging Face name and shape. */
export function expectedGgufTensors(config: ModelConfig): { gguf: string; hf: string; shape: number[] }[] {
  return [...expectedTensors(config)].map(([hf, shape]) => ({ gguf: ggufTensorName(hf), hf, shape }));
}
