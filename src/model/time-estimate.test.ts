import { describe, expect, it } from 'vitest';
import { parseModelConfig } from './config';
import { presetById, presetModelConfig } from './presets';
import { estimateGeneration, estimateSequences, forwardFlopsPerToken, formatEstimate, matmulParams } from './time-estimate';
import { countParameters } from './weights';
import type { DeviceSpeed } from './speed';

const speed: DeviceSpeed = { decodeGflops: 100, decodeRows: 8, prefillGflops: 1000, prefillRows: 128, shape: [2048, 2048] };

describe('time estimates from FLOPs', () => {
  it('counts the matmul parameters of Llama-3.2-1B: every parameter but the gather, the tied lm_head once', () => {
    const c = presetModelConfig(presetById('llama-3.2-1b')!);
    // Llama-3.2-1B: 16 layers, H 2048, 32 heads / 8 KV heads of 64, MLP 8192, vocab 128256, tied.
    const perLayer = 2048 * 2048 * 2 + 2048 * 512 * 2 + 3 * 2048 * 8192;
    expect(matmulParams(c, 'lm')).toBe(16 * perLayer + 128256 * 2048);
    // Tied: the same as all parameters less the norms (the embedding counted once, as lm_head).
    const norms = 16 * 2 * 2048 + 2048;
    expect(matmulParams(c, 'lm')).toBe(countParameters(c) - norms);
  });

  it('a reward head is one row, not the vocabulary', () => {
    const c = presetModelConfig(presetById('skywork-reward-v2-qwen3-0.6b')!);
    expect(matmulParams(c, 'lm') - matmulParams(c, 'reward')).toBe((c.vocabSize - 1) * c.hiddenSize);
  });

  it('prefill at the prefill rate, decode at the decode rate, attention growing with the context', () => {
    const c = parseModelConfig({ architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100, max_position_embeddings: 512, rms_norm_eps: 1e-5, tie_word_embeddings: false });
    const P = 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 128) + 100 * 64;
    expect(forwardFlopsPerToken(c, 'lm', 0)).toBe(2 * P);
    expect(forwardFlopsPerToken(c, 'lm', 10) - forwardFlopsPerToken(c, 'lm', 0)).toBe(4 * 2 * 4 * 16 * 10);
    const g = estimateGeneration('g', { config: c, prompts: 3, n: 2, promptTokens: 20, maxNewTokens: 10 }, speed);
    const prefill = 3 * 20 * forwardFlopsPerToken(c, 'lm', 10);
    const decode = 3 * 2 * 10 * forwardFlopsPerToken(c, 'lm', 25);
    expect(g.flops).toBe(prefill + decode);
    expect(g.seconds).toBeCloseTo(prefill / 1e12 + decode / 1e11, 15);
    const t = estimateSequences('t', { config: c, sequences: 4, tokens: 30 }, 'lm', 3, speed);
    expect(t.flops).toBe(3 * 4 * 30 * forwardFlopsPerToken(c, 'lm', 15));
    expect(t.seconds).toBeCloseTo(t.flops / 1e12, 15);
  });

  it('formats seconds, minutes and hours', () => {
    expect(formatEstimate(0.2)).toBe('about 1 s');
    expect(formatEstimate(42)).toBe('about 42 s');
    expect(formatEstimate(125)).toBe('about 2 min');
    expect(formatEstimate(9000)).toBe('about 2.5 h');
  });
});
