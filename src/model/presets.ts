// Models people can load by name, without a Hugging Face token: small instruct models to train
// (targets), a few to ask (sources), and Skywork-Reward-V2 reward models to score with. Each entry
// carries the fields of its real config.json that parseModelConfig reads, so its download size and
// memory plan (preset-plans.ts) are known before a byte is downloaded; `fuse-studio models`,
// `--model <id>` and the studio's Model page all read this one table.
//
// Where each config comes from (looked up in stored copies of the Hub's pages; "revision" is
// `main`: a commit hash we could not check here would break every download if wrong):
//   SmolLM2-135M / 1.7B-Instruct  the repos' own config.json pages (bf16)
//   SmolLM2-360M-Instruct         configs of fine-tunes whose _name_or_path is this repo (all agree);
//                                 torch_dtype bfloat16 NOT verified (the 135M/1.7B siblings are bf16)
//   Qwen2.5-{0.5B,1.5B,3B}-Instruct  copies of the repos' config.json (unsloth, onnx-community),
//                                 agreeing with each other field for field
//   Qwen3-0.6B                    a verbatim copy of the repo's config.json
//   Qwen3-1.7B                    sizes from a Megatron conversion script (28 layers, 2048 hidden,
//                                 6144 MLP, 16/8 heads of 128, vocab 151936); bos/eos, max positions,
//                                 rope and tying as Qwen3-0.6B (the Qwen3 model card: 0.6B, 1.7B and 4B
//                                 tie embeddings) — those fields NOT verified from the file itself
//   Llama-3.2-{1B,3B}-Instruct    Meta's config (also in config.test.ts); unsloth's copies add
//                                 "pad_token_id": 128004 (<|finetune_right_pad_id|>), seen in every
//                                 config derived from them, so their config.json is not byte-identical
//                                 to Meta's; the weight shapes and dtype are the same
//   Skywork-Reward-V2-*           NOT verified: no copy of these config.json files was found. Each is
//                                 its base model (the model card's table) with a *ForSequenceClassification
//                                 head and one label; pad_token_id (and the Llama vocab of 128,257 with a
//                                 [PAD] row, as Skywork-Reward v0.2 had) are assumptions
//
// Memory plans of the presets: preset-plans.ts (this file stays free of GPU code, so pages, the
// CLI's `--model` parsing and tests read it cheaply).
import type { DType } from '../gpu/dtype';
import { parseModelConfig, type ModelConfig } from './config';
import type { FamilyName } from './families';
import { countParameters } from './weights';

export type PresetRole = 'target' | 'source' | 'reward';

export const PRESET_ROLES: readonly PresetRole[] = ['target', 'source', 'reward'];

export const ROLE_LABELS: Record<PresetRole, string> = {
  target: 'Targets: small models to fine-tune',
  source: 'Sources: local models to ask for answers',
  reward: 'Reward models: score the answers',
};

export interface ModelPreset {
  /** The alias: `--model smollm2-135m`. */
  id: string;
  /** The repo's model name, for people. */
  name: string;
  repo: string;
  revision: string;
  role: PresetRole;
  family: FamilyName;
  /** The official repo when `repo` is an ungated mirror of a gated original (it needs a token). */
  gatedOfficial: string | null;
  /** The fields of the repo's config.json that parseModelConfig reads, with their real values. */
  config: Readonly<Record<string, unknown>>;
  /** tokenizer.json as the Hub lists it (other tokenizer files are a few kB). */
  tokenizerBytes: number;
  /** False where some config value could not be checked against the repo's file (see the top). */
  verified: boolean;
}

// ---- config.json contents ---------------------------------------------------------------

const SMOLLM2 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, hidden_act: 'silu', bos_token_id: 1,
  eos_token_id: 2, pad_token_id: 2, rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: true, torch_dtype: 'bfloat16',
  max_position_embeddings: 8192, vocab_size: 49152,
};
const QWEN25 = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_act: 'silu', bos_token_id: 151643, eos_token_id: 151645,
  max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: null, use_sliding_window: false,
  tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 151936,
};
const QWEN3 = {
  architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', attention_bias: false, hidden_act: 'silu', bos_token_id: 151643,
  eos_token_id: 151645, head_dim: 128, max_position_embeddings: 40960, num_attention_heads: 16, num_hidden_layers: 28,
  num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000, sliding_window: null,
  use_sliding_window: false, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 151936,
};
const QWEN3_0_6B = { ...QWEN3, hidden_size: 1024, intermediate_size: 3072 };
const QWEN3_1_7B = { ...QWEN3, hidden_size: 2048, intermediate_size: 6144 };
const LLAMA32 = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, hidden_act: 'silu', mlp_bias: false,
  bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], intermediate_size: 8192, max_position_embeddings: 131072,
  num_key_value_heads: 8, rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 128256,
};
const LLAMA32_1B = { ...LLAMA32, head_dim: 64, hidden_size: 2048, num_attention_heads: 32, num_hidden_layers: 16 };
const LLAMA32_3B = { ...LLAMA32, head_dim: 128, hidden_size: 3072, num_attention_heads: 24, num_hidden_layers: 28 };
/** unsloth's re-uploads add a pad token to config.json (see the top). */
const UNSLOTH = { pad_token_id: 128004 };
const REWARD_HEAD = { id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } };
const qwen3Reward = (base: Record<string, unknown>) => ({ ...base, ...REWARD_HEAD, architectures: ['Qwen3ForSequenceClassification'], pad_token_id: 151643 });
const llamaReward = (base: Record<string, unknown>) => ({
  ...base,
  ...REWARD_HEAD,
  architectures: ['LlamaForSequenceClassification'],
  pad_token_id: 128256,
  vocab_size: 128257,
});

// tokenizer.json sizes as the Hub lists them: SmolLM2 2.1 MB, Llama 3.x 9.09 MB, Qwen2.5/Qwen3 11.4 MB.
const TOK_SMOLLM2 = 2_100_000;
const TOK_LLAMA3 = 9_090_000;
const TOK_QWEN = 11_400_000;

function preset(p: Omit<ModelPreset, 'revision' | 'gatedOfficial' | 'verified'> & Partial<Pick<ModelPreset, 'gatedOfficial' | 'verified'>>): ModelPreset {
  return { revision: 'main', gatedOfficial: null, verified: true, ...p };
}

export const PRESETS: readonly ModelPreset[] = [
  preset({
    id: 'smollm2-135m', name: 'SmolLM2-135M-Instruct', repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', role: 'target', family: 'llama',
    config: { ...SMOLLM2, hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9, num_hidden_layers: 30, num_key_value_heads: 3, rope_theta: 100000 },
    tokenizerBytes: TOK_SMOLLM2,
  }),
  preset({
    id: 'smollm2-360m', name: 'SmolLM2-360M-Instruct', repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', role: 'target', family: 'llama',
    config: { ...SMOLLM2, head_dim: 64, hidden_size: 960, intermediate_size: 2560, num_attention_heads: 15, num_hidden_layers: 32, num_key_value_heads: 5, rope_theta: 100000 },
    tokenizerBytes: TOK_SMOLLM2,
    verified: false, // torch_dtype (see the top)
  }),
  preset({
    id: 'smollm2-1.7b', name: 'SmolLM2-1.7B-Instruct', repo: 'HuggingFaceTB/SmolLM2-1.7B-Instruct', role: 'target', family: 'llama',
    config: { ...SMOLLM2, hidden_size: 2048, intermediate_size: 8192, num_attention_heads: 32, num_hidden_layers: 24, num_key_value_heads: 32, rope_theta: 130000 },
    tokenizerBytes: TOK_SMOLLM2,
  }),
  preset({
    id: 'qwen2.5-0.5b', name: 'Qwen2.5-0.5B-Instruct', repo: 'Qwen/Qwen2.5-0.5B-Instruct', role: 'target', family: 'qwen2',
    config: { ...QWEN25, hidden_size: 896, intermediate_size: 4864, num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2 },
    tokenizerBytes: TOK_QWEN,
  }),
  preset({
    id: 'qwen2.5-1.5b', name: 'Qwen2.5-1.5B-Instruct', repo: 'Qwen/Qwen2.5-1.5B-Instruct', role: 'target', family: 'qwen2',
    config: { ...QWEN25, hidden_size: 1536, intermediate_size: 8960, num_attention_heads: 12, num_hidden_layers: 28, num_key_value_heads: 2 },
    tokenizerBytes: TOK_QWEN,
  }),
  preset({
    id: 'llama-3.2-1b', name: 'Llama-3.2-1B-Instruct', repo: 'unsloth/Llama-3.2-1B-Instruct', role: 'target', family: 'llama',
    gatedOfficial: 'meta-llama/Llama-3.2-1B-Instruct',
    config: { ...LLAMA32_1B, ...UNSLOTH },
    tokenizerBytes: TOK_LLAMA3,
  }),
  preset({
    id: 'llama-3.2-3b', name: 'Llama-3.2-3B-Instruct', repo: 'unsloth/Llama-3.2-3B-Instruct', role: 'target', family: 'llama',
    gatedOfficial: 'meta-llama/Llama-3.2-3B-Instruct',
    config: { ...LLAMA32_3B, ...UNSLOTH },
    tokenizerBytes: TOK_LLAMA3,
  }),
  preset({
    id: 'qwen3-0.6b', name: 'Qwen3-0.6B', repo: 'Qwen/Qwen3-0.6B', role: 'source', family: 'qwen3',
    config: QWEN3_0_6B,
    tokenizerBytes: TOK_QWEN,
  }),
  preset({
    id: 'qwen3-1.7b', name: 'Qwen3-1.7B', repo: 'Qwen/Qwen3-1.7B', role: 'source', family: 'qwen3',
    config: QWEN3_1_7B,
    tokenizerBytes: TOK_QWEN,
    verified: false, // bos/eos, max positions, rope, tying (see the top)
  }),
  preset({
    id: 'qwen2.5-3b', name: 'Qwen2.5-3B-Instruct', repo: 'Qwen/Qwen2.5-3B-Instruct', role: 'source', family: 'qwen2',
    config: { ...QWEN25, hidden_size: 2048, intermediate_size: 11008, num_attention_heads: 16, num_hidden_layers: 36, num_key_value_heads: 2 },
    tokenizerBytes: TOK_QWEN,
  }),
  preset({
    id: 'skywork-reward-v2-qwen3-0.6b', name: 'Skywork-Reward-V2-Qwen3-0.6B', repo: 'Skywork/Skywork-Reward-V2-Qwen3-0.6B', role: 'reward', family: 'qwen3',
    config: qwen3Reward(QWEN3_0_6B),
    tokenizerBytes: TOK_QWEN,
    verified: false,
  }),
  preset({
    id: 'skywork-reward-v2-qwen3-1.7b', name: 'Skywork-Reward-V2-Qwen3-1.7B', repo: 'Skywork/Skywork-Reward-V2-Qwen3-1.7B', role: 'reward', family: 'qwen3',
    config: qwen3Reward(QWEN3_1_7B),
    tokenizerBytes: TOK_QWEN,
    verified: false,
  }),
  preset({
    id: 'skywork-reward-v2-llama-3.2-1b', name: 'Skywork-Reward-V2-Llama-3.2-1B', repo: 'Skywork/Skywork-Reward-V2-Llama-3.2-1B', role: 'reward', family: 'llama',
    config: llamaReward(LLAMA32_1B),
    tokenizerBytes: TOK_LLAMA3,
    verified: false,
  }),
  preset({
    id: 'skywork-reward-v2-llama-3.2-3b', name: 'Skywork-Reward-V2-Llama-3.2-3B', repo: 'Skywork/Skywork-Reward-V2-Llama-3.2-3B', role: 'reward', family: 'llama',
    config: llamaReward(LLAMA32_3B),
    tokenizerBytes: TOK_LLAMA3,
    verified: false,
  }),
];

export const PRESET_IDS: readonly string[] = PRESETS.map((p) => p.id);

/** The preset an alias names (case-insensitive), or undefined. */
export function presetById(id: string): ModelPreset | undefined {
  const key = id.trim().toLowerCase();
  return PRESETS.find((p) => p.id === key);
}

/** The preset whose repo (or gated official repo) this is, at its revision. */
export function presetByRepo(repo: string, revision = 'main'): ModelPreset | undefined {
  return PRESETS.find((p) => (p.repo === repo || p.gatedOfficial === repo) && p.revision === revision);
}

/** What to load: `hf://repo@revision` of the preset, or of its gated official repo. */
export function presetSpec(p: ModelPreset, o: { official?: boolean } = {}): string {
  if (o.official && !p.gatedOfficial) throw new Error(`${p.id}: there is no gated official repo for this preset`);
  return `hf://${o.official ? p.gatedOfficial! : p.repo}@${p.revision}`;
}

const parsed = new Map<string, ModelConfig>();

/** The preset's config as the engine reads it (parseModelConfig of its config.json fields). */
export function presetModelConfig(p: ModelPreset): ModelConfig {
  let c = parsed.get(p.id);
  if (!c) {
    c = parseModelConfig(p.config);
    parsed.set(p.id, c);
  }
  return c;
}

// ---- sizes ------------------------------------------------------------------------------

/** Bytes a parameter takes in the checkpoint's own dtype (torch_dtype); bfloat16 when unsaid. */
export function bytesPerParameter(torchDtype: string | null): number {
  return torchDtype === 'float32' ? 4 : 2;
}

/** The GPU dtype the weights stay in: the file's own (see DESIGN.md, numerics). */
export function weightDTypeOf(c: ModelConfig): DType {
  return c.dtype === 'float32' ? 'f32' : c.dtype === 'float16' ? 'f16' : 'bf16';
}

export interface DownloadSize {
  /** Weights + tokenizer.json, approximate (safetensors headers and small JSON files not counted). */
  bytes: number;
  weightBytes: number;
  tokenizerBytes: number;
  params: number;
  /** How the figure was made, for labels. */
  basis: string;
}

/** The download, computed from the config: parameters × bytes per parameter, plus tokenizer.json. */
export function downloadSize(p: ModelPreset): DownloadSize {
  const c = presetModelConfig(p);
  const params = countParameters(c);
  const per = bytesPerParameter(c.dtype);
  const weightBytes = params * per;
  return {
    bytes: weightBytes + p.tokenizerBytes,
    weightBytes,
    tokenizerBytes: p.tokenizerBytes,
    params,
    basis: `approximate: ${formatParams(params)} parameters × ${per} bytes (${c.dtype ?? 'bfloat16'}) + tokenizer.json`,
  };
}

/** "1.24 B" / "135 M". */
export function formatParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${Math.round(n / 1e6)} M`;
}

/** "1.2 GB" / "270 MB": decimal units, as the Hub lists file sizes. */
export function formatDownload(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.round(bytes / 1e6)} MB`;
}
