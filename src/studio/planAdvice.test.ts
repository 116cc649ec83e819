import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../model/config';
import { planMemory } from '../model/memory-plan';
import { PRESETS, presetById, presetModelConfig } from '../model/presets';
import { planVerdict, presetVerdicts } from './planAdvice';

// Llama-3.2-1B / 3B shapes (config.json fields as on the Hub).
const llama = (hidden: number, layers: number, heads: number, kv: number, inter: number) =>
  parseModelConfig({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: hidden,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kv,
    intermediate_size: inter,
    vocab_size: 128256,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: true,
    rope_scaling: { rope_type: 'llama3', factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192 },
  });
const ONE_B = llama(2048, 16, 32, 8, 8192);
const THREE_B = llama(3072, 28, 24, 8, 8192);
const GiB = 2 ** 30;
const big = { maxStorageBufferBindingSize: GiB, maxBufferSize: GiB };

describe('planVerdict', () => {
  it('fits when the limits and the stated memory hold the plan', () => {
    const v = planVerdict(ONE_B, 'bf16', { seq: 1024, rank: 16 }, { ...big, memoryBytes: 8 * GiB });
    expect(v.fits).toBe(true);
    expect(v.problems).toEqual([]);
    expect(v.plan.training).toBe(planMemory(ONE_B, { batch: 1, seq: 1024, loraRank: 16, weightDType: 'bf16', maxBindingBytes: GiB }).training);
  });

  it('names the problem and offers a shorter sequence or a smaller rank that fit', () => {
    const need = planMemory(ONE_B, { batch: 1, seq: 2048, loraRank: 16, weightDType: 'bf16', maxBindingBytes: GiB }).training;
    const v = planVerdict(ONE_B, 'bf16', { seq: 2048, rank: 16 }, { ...big, memoryBytes: need - 1 });
    expect(v.fits).toBe(false);
    expect(v.problems.join()).toMatch(/more than the .* you said this GPU has/);
    expect(v.alternatives[0]).toMatch(/^sequence length 1024 at rank 16/);
    // Every alternative offered really fits.
    const seq = Number(/sequence length (\d+)/.exec(v.alternatives[0]!)![1]);
    expect(planMemory(ONE_B, { batch: 1, seq, loraRank: 16, weightDType: 'bf16', maxBindingBytes: GiB }).training).toBeLessThanOrEqual(need - 1);
  });

  it('suggests the 1B when the 3B cannot fit at any setting', () => {
    const v = planVerdict(THREE_B, 'bf16', { seq: 512, rank: 16 }, { ...big, memoryBytes: 4 * GiB });
    expect(v.fits).toBe(false);
    expect(v.alternatives).toEqual(['a smaller model: Llama-3.2-1B-Instruct instead of the 3B']);
  });

  it('checks the buffer limit without a stated memory', () => {
    const v = planVerdict(ONE_B, 'f32', { seq: 512, rank: 16 }, { maxStorageBufferBindingSize: 4 * 2 ** 20, maxBufferSize: 4 * 2 ** 20, memoryBytes: null });
    expect(v.fits).toBe(false);
    expect(v.problems[0]).toMatch(/exceeds this device’s buffer limit of 4/);
  });
});

describe('presetVerdicts (before any download)', () => {
  const choice = { seq: 512, rank: 16 };

  it('with no stated memory and roomy limits every preset fits', () => {
    const v = presetVerdicts(choice, { ...big, memoryBytes: null });
    expect(v.size).toBe(PRESETS.length);
    for (const p of PRESETS) expect(v.get(p.id)!.fits, p.id).toBe(true);
  });

  it('a preset too large for the stated memory says so, and names the largest preset of its role that fits', () => {
    const v = presetVerdicts(choice, { ...big, memoryBytes: 4 * GiB });
    const big3b = v.get('llama-3.2-3b')!;
    expect(big3b.fits).toBe(false);
    expect(big3b.problems.join()).toMatch(/^a training step needs .* more than the 4\.00 GiB you said this GPU has/);
    const instead = big3b.instead!;
    expect(instead.role).toBe('target');
    expect(v.get(instead.id)!.fits).toBe(true);
    // No fitting target needs more than the one offered.
    for (const p of PRESETS.filter((q) => q.role === 'target' && v.get(q.id)!.fits)) expect(v.get(p.id)!.needed).toBeLessThanOrEqual(v.get(instead.id)!.needed);
    // The target's figure is planVerdict's, so the loaded-model panel and the preset agree.
    const c = presetModelConfig(presetById('llama-3.2-3b')!);
    expect(big3b.needed).toBe(planVerdict(c, 'bf16', choice, { ...big, memoryBytes: 4 * GiB }).plan.training);
    // Sources are checked for generation, reward models for scoring.
    const tight = presetVerdicts(choice, { ...big, memoryBytes: 0.5 * GiB });
    expect(tight.get('qwen2.5-3b')!.problems.join()).toMatch(/^generation \(2,048 positions\) needs/);
    expect(tight.get('skywork-reward-v2-llama-3.2-3b')!.problems.join()).toMatch(/^scoring \(2 × 2,048 tokens\) needs/);
    expect(tight.get('skywork-reward-v2-llama-3.2-3b')!.instead).toBeNull();
    expect(tight.get('smollm2-135m')!.fits).toBe(true);
  });
});
