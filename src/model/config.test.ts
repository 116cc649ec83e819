import { describe, expect, it } from 'vitest';
import { checkSequenceLength, parseModelConfig } from './config';

// The config.json of meta-llama/Llama-3.2-1B-Instruct (transformers 4.x layout).
const llama32_1b = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 128256,
};

describe('parseModelConfig', () => {
  it('reads the Llama-3.2-1B-Instruct config', () => {
    const c = parseModelConfig(llama32_1b);
    expect(c).toMatchObject({ hiddenSize: 2048, numKvHeads: 8, headDim: 64, tieWordEmbeddings: true, ropeTheta: 500000 });
    expect(c.ropeScaling).toEqual({ ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009]);
  });

  it('reads the transformers 5.x rope_parameters form the same way', () => {
    const { rope_scaling, rope_theta, ...rest } = llama32_1b;
    const c = parseModelConfig({ ...rest, rope_parameters: { ...rope_scaling, rope_theta } });
    expect(c).toEqual(parseModelConfig(llama32_1b));
  });

  it('takes eos ids from generation_config.json and defaults head_dim and kv heads', () => {
    const { head_dim, num_key_value_heads, ...rest } = llama32_1b;
    void head_dim;
    void num_key_value_heads;
    const c = parseModelConfig({ ...rest, rope_scaling: null }, { eos_token_id: 7 });
    expect(c).toMatchObject({ headDim: 64, numKvHeads: 32, eosTokenIds: [7], ropeScaling: null });
  });

  it('refuses other architectures and unsupported settings, naming the field', () => {
    expect(() => parseModelConfig({ ...llama32_1b, architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2' })).toThrow(
      /"architectures" is \["Gemma2ForCausalLM"\]; Fuse Studio does not run this architecture \(supported: LlamaForCausalLM, /,
    );
    expect(() => parseModelConfig({ ...llama32_1b, architectures: ['Qwen2ForCausalLM'] })).toThrow(/"model_type" is "llama" but "architectures" says Qwen2ForCausalLM/);
    expect(() => parseModelConfig({ ...llama32_1b, architectures: undefined, model_type: 'phi3' })).toThrow(/"model_type" is "phi3"/);
    expect(() => parseModelConfig({ ...llama32_1b, num_local_experts: 8 })).toThrow(/"num_local_experts": 8 is not supported \(mixture-of-experts/);
    expect(() => parseModelConfig({ ...llama32_1b, final_logit_softcapping: 30 })).toThrow(/"final_logit_softcapping": 30 is not supported/);
    expect(() => parseModelConfig({ ...llama32_1b, rope_scaling: { rope_type: 'dynamic', factor: 2 } })).toThrow(/rope_scaling.rope_type "dynamic" is not supported \(supported: default, llama3\)/);
    expect(() => parseModelConfig({ ...llama32_1b, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/rope_scaling.rope_type "yarn"/);
    expect(() => parseModelConfig({ ...llama32_1b, attention_bias: true })).toThrow(/"attention_bias": true/);
    expect(() => parseModelConfig({ ...llama32_1b, num_key_value_heads: 5 })).toThrow(/multiple of num_key_value_heads/);
    expect(() => parseModelConfig({ ...llama32_1b, hidden_size: 'big' })).toThrow(/"hidden_size" must be a positive integer/);
    expect(() => parseModelConfig({ ...llama32_1b, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling.low_freq_factor/);
  });
});

// config.json files as the Hub ships them (trimmed of fields transformers ignores here).
const qwen25_05b = {
  architectures: ['Qwen2ForCausalLM'], attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu',
  hidden_size: 896, intermediate_size: 4864, max_position_embeddings: 32768, max_window_layers: 21, model_type: 'qwen2',
  num_attention_heads: 14, num_hidden_layers: 24, num_key_value_heads: 2, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
  sliding_window: 32768, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false, vocab_size: 151936,
};
const qwen3_06b = {
  architectures: ['Qwen3ForCausalLM'], attention_bias: false, bos_token_id: 151643, eos_token_id: 151645, head_dim: 128, hidden_act: 'silu',
  hidden_size: 1024, intermediate_size: 3072, max_position_embeddings: 40960, max_window_layers: 28, model_type: 'qwen3',
  num_attention_heads: 16, num_hidden_layers: 28, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000,
  sliding_window: null, tie_word_embeddings: true, torch_dtype: 'bfloat16', use_sliding_window: false, vocab_size: 151936,
};
const smollm2_135m = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 576,
  intermediate_size: 1536, is_llama_config: true, max_position_embeddings: 8192, mlp_bias: false, model_type: 'llama',
  num_attention_heads: 9, num_hidden_layers: 30, num_key_value_heads: 3, pad_token_id: 2, pretraining_tp: 1, rms_norm_eps: 1e-5,
  rope_interleaved: false, rope_scaling: null, rope_theta: 100000, tie_word_embeddings: true, torch_dtype: 'bfloat16', vocab_size: 49152,
};
const mistral7b_v03 = {
  architectures: ['MistralForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 4096, intermediate_size: 14336,
  max_position_embeddings: 32768, model_type: 'mistral', num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 8,
  rms_norm_eps: 1e-5, rope_theta: 1000000.0, sliding_window: null, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32768,
};
const tinyllama = {
  architectures: ['LlamaForCausalLM'], bos_token_id: 1, eos_token_id: 2, hidden_act: 'silu', hidden_size: 2048, intermediate_size: 5632,
  max_position_embeddings: 2048, model_type: 'llama', num_attention_heads: 32, num_hidden_layers: 22, num_key_value_heads: 4,
  pretraining_tp: 1, rms_norm_eps: 1e-5, rope_scaling: null, rope_theta: 10000.0, tie_word_embeddings: false, torch_dtype: 'bfloat16', vocab_size: 32000,
};

describe('model families', () => {
  it('reads SmolLM2 and TinyLlama as Llama (tied / untied, plain rope_theta, no rope_scaling)', () => {
    expect(parseModelConfig(smollm2_135m)).toMatchObject({
      family: 'llama', head: 'causal-lm', hiddenSize: 576, numHeads: 9, numKvHeads: 3, headDim: 64, tieWordEmbeddings: true,
      ropeTheta: 100000, ropeScaling: null, qkvBias: false, qkNorm: false, slidingWindow: null, padTokenId: 2, vocabSize: 49152,
    });
    expect(parseModelConfig(tinyllama)).toMatchObject({ family: 'llama', tieWordEmbeddings: false, numKvHeads: 4, ropeTheta: 10000 });
  });

  it('reads Qwen2.5 (q/k/v biases, unused sliding window) and Qwen3 (q/k norm, explicit head_dim 128 ≠ 1024/16)', () => {
    expect(parseModelConfig(qwen25_05b)).toMatchObject({ family: 'qwen2', qkvBias: true, qkNorm: false, slidingWindow: null, headDim: 64, ropeTheta: 1e6, tieWordEmbeddings: true });
    expect(parseModelConfig(qwen3_06b)).toMatchObject({ family: 'qwen3', qkvBias: false, qkNorm: true, headDim: 128, numHeads: 16, slidingWindow: null });
  });

  it('turns a sliding window that would be used into a window, and refuses longer sequences naming the field', () => {
    const m = parseModelConfig(mistral7b_v03);
    expect(m).toMatchObject({ family: 'mistral', slidingWindow: null, tieWordEmbeddings: false });
    const v01 = parseModelConfig({ ...mistral7b_v03, sliding_window: 4096 });
    expect(v01.slidingWindow).toBe(4096);
    expect(() => checkSequenceLength(v01, 4096)).not.toThrow();
    expect(() => checkSequenceLength(v01, 4097, 'a training batch')).toThrow(/"sliding_window" is 4096, and a training batch of 4097 tokens would use it/);
    expect(parseModelConfig({ ...qwen25_05b, use_sliding_window: true }).slidingWindow).toBe(32768);
    expect(parseModelConfig({ ...qwen3_06b, sliding_window: 512, layer_types: ['full_attention', 'sliding_attention'] }).slidingWindow).toBe(512);
    expect(() => checkSequenceLength(m, 1_000_000)).not.toThrow();
  });

  it('refuses what a family cannot honour, naming the field', () => {
    expect(() => parseModelConfig({ ...qwen3_06b, attention_bias: true })).toThrow(/"attention_bias": true is not supported for Qwen3ForCausalLM/);
    expect(() => parseModelConfig({ ...qwen25_05b, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } })).toThrow(/rope_scaling.rope_type "yarn"/);
    expect(() => parseModelConfig({ ...qwen25_05b, hidden_act: 'gelu' })).toThrow(/"hidden_act" is "gelu"/);
  });

  it('reads reward heads (*ForSequenceClassification, num_labels 1 from id2label) and refuses classifiers', () => {
    const reward = { ...qwen3_06b, architectures: ['Qwen3ForSequenceClassification'], id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 }, pad_token_id: 151643 };
    expect(parseModelConfig(reward)).toMatchObject({ family: 'qwen3', head: 'sequence-classification', numLabels: 1, padTokenId: 151643 });
    const llamaReward = { ...llama32_1b, architectures: ['LlamaForSequenceClassification'], num_labels: 1, pad_token_id: 128256, vocab_size: 128257 };
    expect(parseModelConfig(llamaReward)).toMatchObject({ family: 'llama', head: 'sequence-classification', numLabels: 1 });
    expect(() => parseModelConfig({ ...reward, id2label: { 0: 'neg', 1: 'pos' } })).toThrow(/num_labels = 2 is a classifier, not a reward model/);
  });
});
