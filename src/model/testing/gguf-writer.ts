// A GGUF writer for tests and benchmarks: generated models written as llama.cpp's converter and
// quantizer write them (metadata keys, tensor names, the llama q/k row permutation, rope_freqs for
// Llama 3 rope scaling, tokenizer.ggml.* from a tokenizer.json), with each tensor in a chosen GGML
// type. The key/value section is serialized by @huggingface/gguf; the tensor table and data here.
//
// GGUF v3 layout: "GGUF", u32 version, u64 tensor count, u64 kv count, the key/values, then per
// tensor: string name, u32 n_dims, u64 dims (ne0 first), u32 type, u64 offset into the data; then
// zero padding to the alignment (32) and the data, each tensor starting aligned.

import { GGUFValueType, serializeGgufMetadata, type GGUFTypedMetadata } from '@huggingface/gguf';
import type { ModelConfig } from '../config';
import { FAMILIES } from '../families';
import { GGML_FORMATS, type GgmlTypeName } from '../../gpu/ggml';
import { expectedGgufTensors, llama3RopeFactors, permuteRows, permutedHeads } from '../gguf/config';
import { quantizeRows } from '../../gpu/ggml-quantize';

export const GGUF_ALIGNMENT = 32;

export type GgufValue =
  | { type: 'string'; value: string }
  | { type: 'u32' | 'i32' | 'f32' | 'u64'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string[]'; value: string[] }
  | { type: 'i32[]' | 'f32[]'; value: number[] };

export const str = (value: string): GgufValue => ({ type: 'string', value });
export const u32 = (value: number): GgufValue => ({ type: 'u32', value });
export const f32 = (value: number): GgufValue => ({ type: 'f32', value });
export const bool = (value: boolean): GgufValue => ({ type: 'bool', value });

export interface GgufTensorOut {
  name: string;
  type: GgmlTypeName;
  /** ggml dims, ne0 first. */
  dims: number[];
  data: Uint8Array;
}

function typed(v: GgufValue): { value: unknown; type: GGUFValueType; subType?: GGUFValueType } {
  switch (v.type) {
    case 'string':
      return { value: v.value, type: GGUFValueType.STRING };
    case 'u32':
      return { value: v.value, type: GGUFValueType.UINT32 };
    case 'i32':
      return { value: v.value, type: GGUFValueType.INT32 };
    case 'f32':
      return { value: v.value, type: GGUFValueType.FLOAT32 };
    case 'u64':
      return { value: BigInt(v.value), type: GGUFValueType.UINT64 };
    case 'bool':
      return { value: v.value, type: GGUFValueType.BOOL };
    case 'string[]':
      return { value: v.value, type: GGUFValueType.ARRAY, subType: GGUFValueType.STRING };
    case 'i32[]':
      return { value: v.value, type: GGUFValueType.ARRAY, subType: GGUFValueType.INT32 };
    case 'f32[]':
      return { value: v.value, type: GGUFValueType.ARRAY, subType: GGUFValueType.FLOAT32 };
  }
}

const pad = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

/** A whole GGUF v3 file. */
export function writeGguf(metadata: Record<string, GgufValue>, tensors: GgufTensorOut[]): Uint8Array<ArrayBuffer> {
  const meta = {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensors.length), type: GGUFValueType.UINT64 },
    kv_count: { value: BigInt(Object.keys(metadata).length), type: GGUFValueType.UINT64 },
    ...Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, typed(v)])),
  } as unknown as GGUFTypedMetadata;
  // alignment 1: no padding after the key/values, the tensor table follows directly.
  const head = serializeGgufMetadata(meta, { alignment: 1 });
  const enc = new TextEncoder();
  const table: number[] = [];
  const u32le = (x: number) => table.push(x & 255, (x >>> 8) & 255, (x >>> 16) & 255, (x >>> 24) & 255);
  const u64le = (x: number) => {
    u32le(x % 2 ** 32);
    u32le(Math.floor(x / 2 ** 32));
  };
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const name = enc.encode(t.name);
    u64le(name.byteLength);
    table.push(...name);
    u32le(t.dims.length);
    for (const d of t.dims) u64le(d);
    u32le(GGML_FORMATS[t.type].id);
    u64le(offset);
    offsets.push(offset);
    offset = pad(offset + t.data.byteLength);
  }
  const dataStart = pad(head.byteLength + table.length);
  const out = new Uint8Array(dataStart + offset);
  out.set(head, 0);
  out.set(table, head.byteLength);
  tensors.forEach((t, i) => out.set(t.data, dataStart + offsets[i]!));
  return out;
}

/** GGUF architecture name of a config's family (Mistral is written as llama, as llama.cpp does). */
export function ggufArchOf(c: ModelConfig): string {
  return c.family === 'mistral' ? 'llama' : c.family;
}

/** The `{arch}.*` keys llama.cpp's converter writes for a config. */
export function ggufModelMetadata(c: ModelConfig, name = 'generated'): Record<string, GgufValue> {
  const a = ggufArchOf(c);
  return {
    'general.architecture': str(a),
    'general.name': str(name),
    [`${a}.block_count`]: u32(c.numLayers),
    [`${a}.context_length`]: u32(c.maxPositionEmbeddings),
    [`${a}.embedding_length`]: u32(c.hiddenSize),
    [`${a}.feed_forward_length`]: u32(c.intermediateSize),
    [`${a}.attention.head_count`]: u32(c.numHeads),
    [`${a}.attention.head_count_kv`]: u32(c.numKvHeads),
    [`${a}.attention.key_length`]: u32(c.headDim),
    [`${a}.attention.value_length`]: u32(c.headDim),
    [`${a}.rope.dimension_count`]: u32(c.headDim),
    [`${a}.rope.freq_base`]: f32(c.ropeTheta),
    [`${a}.attention.layer_norm_rms_epsilon`]: f32(c.rmsNormEps),
    [`${a}.vocab_size`]: u32(c.vocabSize),
    ...(c.bosTokenId !== null ? { 'tokenizer.ggml.bos_token_id': u32(c.bosTokenId) } : {}),
    ...(c.eosTokenIds.length ? { 'tokenizer.ggml.eos_token_id': u32(c.eosTokenIds[0]!) } : {}),
    'general.alignment': u32(GGUF_ALIGNMENT),
  };
}

export interface GgufModelOptions {
  /** The GGML type of each tensor, by Hugging Face name and shape (default: Q8_0 matrices, F32 vectors). */
  typeOf?: (hfName: string, shape: number[]) => GgmlTypeName;
  /** Extra metadata (tokenizer.ggml.*, tokenizer.chat_template, ...). */
  metadata?: Record<string, GgufValue>;
  /** Write output.weight even when the embeddings are tied (some converters do). */
  writeTiedOutput?: boolean;
}

/** A Q4_K_M-like mix: Q6_K for v, down and the embedding/lm_head, Q4_K for the other matrices, F32 norms. */
export function q4kmTypes(hfName: string, shape: number[]): GgmlTypeName {
  if (shape.length === 1) return 'F32';
  if (/v_proj|down_proj|lm_head|embed_tokens/.test(hfName)) return 'Q6_K';
  return 'Q4_K';
}

/**
 * A model as a GGUF file: `get(hfName)` gives each tensor's values in Hugging Face layout
 * (row-major [out, in]); they are quantized to their chosen type and, for llama, q/k rows are
 * permuted as llama.cpp's converter does.
 */
export function writeGgufModel(config: ModelConfig, get: (hfName: string) => ArrayLike<number>, opts: GgufModelOptions = {}): Uint8Array<ArrayBuffer> {
  const typeOf = opts.typeOf ?? ((_n: string, shape: number[]) => (shape.length === 1 ? 'F32' : 'Q8_0'));
  const arch = ggufArchOf(config);
  const tensors: GgufTensorOut[] = [];
  const list = expectedGgufTensors(config);
  if (opts.writeTiedOutput && config.tieWordEmbeddings)
    list.push({ gguf: 'output.weight', hf: 'model.embed_tokens.weight', shape: [config.vocabSize, config.hiddenSize] });
  for (const { gguf, hf, shape } of list) {
    const type = typeOf(hf, shape);
    const [rows, cols] = shape.length === 1 ? [1, shape[0]!] : (shape as [number, number]);
    let data: Uint8Array<ArrayBuffer> = quantizeRows(GGML_FORMATS[type], get(hf), rows, cols);
    const heads = permutedHeads(config, arch, hf);
    if (heads) data = permuteRows(data, rows, heads);
    tensors.push({ name: gguf, type, dims: [...shape].reverse(), data });
  }
  if (config.ropeScaling) {
    const f = llama3RopeFactors(config.headDim, config.ropeTheta, config.ropeScaling);
    tensors.push({ name: 'rope_freqs.weight', type: 'F32', dims: [f.length], data: quantizeRows(GGML_FORMATS.F32, f, 1, f.length) });
  }
  return writeGguf({ ...ggufModelMetadata(config), ...opts.metadata }, tensors);
}

/**
 * tokenizer.ggml.* and tokenizer.chat_template for a byte-level BPE tokenizer.json, as llama.cpp's
 * converter writes them: `vocabSize` ids (the model's; ids the tokenizer lacks become "[PADn]",
 * type unused), added tokens as control (special) or user-defined, merges as "a b".
 */
export function ggufTokenizerMetadata(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
  pre: 'llama-bpe' | 'qwen2',
  vocabSize: number,
  ids: { bos?: number | null; eos?: number | null; pad?: number | null; addBos?: boolean } = {},
): Record<string, GgufValue> {
  const model = tokenizerJson.model as { vocab: Record<string, number>; merges: (string | [string, string])[] };
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types: number[] = new Array<number>(vocabSize).fill(5);
  for (const [t, id] of Object.entries(model.vocab))
    if (id < vocabSize) {
      tokens[id] = t;
      types[id] = 1;
    }
  for (const t of tokenizerJson.added_tokens as { id: number; content: string; special: boolean }[])
    if (t.id < vocabSize) {
      tokens[t.id] = t.content;
      types[t.id] = t.special ? 3 : 4;
    }
  const template = tokenizerConfig.chat_template;
  const out: Record<string, GgufValue> = {
    'tokenizer.ggml.model': str('gpt2'),
    'tokenizer.ggml.pre': str(pre),
    'tokenizer.ggml.tokens': { type: 'string[]', value: tokens },
    'tokenizer.ggml.token_type': { type: 'i32[]', value: types },
    'tokenizer.ggml.merges': { type: 'string[]', value: model.merges.map((m) => (typeof m === 'string' ? m : m.join(' '))) },
    'tokenizer.ggml.add_bos_token': bool(ids.addBos ?? false),
  };
  if (ids.bos != null) out['tokenizer.ggml.bos_token_id'] = u32(ids.bos);
  if (ids.eos != null) out['tokenizer.ggml.eos_token_id'] = u32(ids.eos);
  if (ids.pad != null) out['tokenizer.ggml.padding_token_id'] = u32(ids.pad);
  if (typeof template === 'string') out['tokenizer.chat_template'] = str(template);
  return out;
}

/** GPT-2's byte → printable character map of byte-level BPE. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const out: string[] = new Array<string>(256);
  for (const b of bs) out[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (out[b] === undefined) out[b] = String.fromCharCode(256 + n++);
  return out;
}

/**
 * A minimal byte-level BPE tokenizer for generated models: ids 0..255 are the bytes (no merges),
 * 256 <|bos|> and 257 <|eos|> are control tokens, with a ChatML-like chat template.
 */
export function byteLevelTokenizerMetadata(pre: 'llama-bpe' | 'qwen2', ids: { bos: number; eos: number; addBos: boolean }): Record<string, GgufValue> {
  const tokens = [...bytesToUnicode(), '<|bos|>', '<|eos|>'];
  return {
    'tokenizer.ggml.model': str('gpt2'),
    'tokenizer.ggml.pre': str(pre),
    'tokenizer.ggml.tokens': { type: 'string[]', value: tokens },
    'tokenizer.ggml.token_type': { type: 'i32[]', value: tokens.map((_, i) => (i < 256 ? 1 : 3)) },
    'tokenizer.ggml.merges': { type: 'string[]', value: [] },
    'tokenizer.ggml.bos_token_id': u32(ids.bos),
    'tokenizer.ggml.eos_token_id': u32(ids.eos),
    'tokenizer.ggml.add_bos_token': bool(ids.addBos),
    'tokenizer.chat_template': str("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|eos|>{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"),
  };
}

/** config.json of a ModelConfig (what transformers would write for it). */
export function hfConfigJson(c: ModelConfig): Record<string, unknown> {
  const f = FAMILIES[c.family];
  return {
    architectures: [f.architectures['causal-lm']],
    model_type: f.modelType,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling && {
      rope_type: 'llama3',
      factor: c.ropeScaling.factor,
      low_freq_factor: c.ropeScaling.lowFreqFactor,
      high_freq_factor: c.ropeScaling.highFreqFactor,
      original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
    },
    tie_word_embeddings: c.tieWordEmbeddings,
    max_position_embeddings: c.maxPositionEmbeddings,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds,
  };
}

