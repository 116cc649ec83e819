import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config';

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
    expect(() => parseModelConfig({ ...llama32_1b, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' })).toThrow(
      /"architectures" is \["Qwen2ForCausalLM"\]; Fuse Studio supports LlamaForCausalLM/,
    );
    expect(() => parseModelConfig({ ...llama32_1b, rope_scaling: { rope_type: 'yarn', factor: 4 } })).toThrow(/rope_scaling.rope_type "yarn"/);
    expect(() => parseModelConfig({ ...llama32_1b, attention_bias: true })).toThrow(/"attention_bias": true/);
    expect(() => parseModelConfig({ ...llama32_1b, num_key_value_heads: 5 })).toThrow(/multiple of num_key_value_heads/);
    expect(() => parseModelConfig({ ...llama32_1b, hidden_size: 'big' })).toThrow(/"hidden_size" must be a positive integer/);
    expect(() => parseModelConfig({ ...llama32_1b, rope_scaling: { rope_type: 'llama3', factor: 8 } })).toThrow(/rope_scaling.low_freq_factor/);
  });
});
