// A tiny reward model folder for tests (not shipped: imported by *.test.ts only): a
// LlamaForSequenceClassification config.json (num_labels 1, pad_token_id <|finetune_right_pad_id|>,
// as Skywork-Reward-V2-Llama-3.2 has), random f32 weights with O(1) activations (model/random.ts)
// in model.safetensors, and the real Llama 3.2 tokenizer and chat template, so text goes through
// the same tokenizer, template and loader as a real reward model. The host weights come back for
// the float64 reference (referenceReward).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseModelConfig, type ModelConfig } from '../model/config';
import { hostWeightsByName, randomHostWeights } from '../model/random';
import type { HostWeights } from '../model/reference';
import { writeSafetensors } from '../model/safetensors';
import { expectedTensors } from '../model/weights';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer';
import { llama32TokenizerConfig, LLAMA3_TOKENS, LLAMA3_VOCAB_SIZE, toLlama32TokenizerJson } from '../tokenizer/llama3';
import { readLlama3TokenizerJson } from '../tokenizer/llama3-node';

/** <|finetune_right_pad_id|>: Llama 3.2's padding token. */
export const PAD_ID = LLAMA3_TOKENS.finetuneRightPad;

export interface TinyRewardModel {
  dir: string;
  config: ModelConfig;
  host: HostWeights;
  tokenizer: LoadedTokenizer;
}

/** config.json of a tiny LlamaForSequenceClassification over the Llama 3 vocabulary. */
function configJson(): Record<string, unknown> {
  return {
    architectures: ['LlamaForSequenceClassification'],
    model_type: 'llama',
    hidden_size: 32,
    intermediate_size: 56,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    vocab_size: LLAMA3_VOCAB_SIZE,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    max_position_embeddings: 2048,
    tie_word_embeddings: false,
    bos_token_id: LLAMA3_TOKENS.beginOfText,
    eos_token_id: LLAMA3_TOKENS.endOfTurn,
    pad_token_id: PAD_ID,
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    torch_dtype: 'float32',
  };
}

export interface TinyRewardOptions {
  seed?: number;
  /**
   * score.weight × this (a power of two keeps f32 values exact): 16 gives rewards several units
   * apart, as Skywork-Reward-V2's unbounded logits are; 1 gives O(1) rewards.
   */
  scoreScale?: number;
  /**
   * 'llama-3.2' (default): Llama 3.2's template, whose system header carries today's date unless a
   * date string is given; 'llama-3': Llama 3's (Skywork-Reward-Llama-3.1's style), no date line, so
   * a run through build-data (which renders with today's date, as transformers) is the same any day.
   */
  template?: 'llama-3.2' | 'llama-3';
}

/** meta-llama/Meta-Llama-3-8B-Instruct's chat template. */
const LLAMA_3_CHAT_TEMPLATE =
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

/** Writes the reward model folder into `dir`. */
export async function writeTinyRewardModel(dir: string, o: TinyRewardOptions = {}): Promise<TinyRewardModel> {
  const json = configJson();
  const config = parseModelConfig(json);
  const host = randomHostWeights(config, 'f32', o.seed ?? 11);
  host.score = host.score!.map((v) => v * (o.scoreScale ?? 1));
  const byName = hostWeightsByName(host);
  const tensors = [...expectedTensors(config)].map(([name, shape]) => ({
    name,
    dtype: 'F32' as const,
    shape,
    data: new Uint8Array(Float32Array.from(byName.get(name)!).buffer),
  }));
  const tj = toLlama32TokenizerJson(JSON.parse(new TextDecoder().decode(await readLlama3TokenizerJson())));
  const tc = { ...llama32TokenizerConfig(tj), ...(o.template === 'llama-3' ? { chat_template: LLAMA_3_CHAT_TEMPLATE } : {}) };
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(json, null, 2));
  await writeFile(join(dir, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tj));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tc, null, 2));
  return { dir, config, host, tokenizer: loadTokenizer({ tokenizerJson: tj, tokenizerConfig: tc, name: dir }) };
}
