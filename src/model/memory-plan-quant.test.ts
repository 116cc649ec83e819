// Memory plans of a quantized base (issue 14): Llama-3.2-1B and 3B, LoRA r16 at seq 1024, with
// int4 projections (embedding / lm_head int8) fit 1.6 and 3.5 GiB; the weights category is the
// exact bytes of the format (values + f16 scales per 32 weights).
import { describe, expect, it } from 'vitest';
import { quantByteLength } from '../gpu/quant';
import { LLAMA_3_2_PRESETS } from './config';
import { formatBytes, planMemory } from './memory-plan';
import { layerTensors, QUANTIZED_LAYER_WEIGHTS } from './weights';

const GiB = 2 ** 30;

describe('memory plan with a quantized base', () => {
  it('Llama-3.2 LoRA r16, seq 1024, int4: 3B ≤ 3.5 GiB, 1B ≤ 1.6 GiB (and int8, bf16 alongside)', () => {
    const rows: string[] = [];
    const plans: Record<string, number> = {};
    for (const name of ['llama-3.2-1b', 'llama-3.2-3b'] as const)
      for (const quant of [null, 'int8', 'int4'] as const) {
        const plan = planMemory(LLAMA_3_2_PRESETS[name], { batch: 1, seq: 1024, loraRank: 16, weightDType: 'bf16', quant });
        plans[`${name} ${quant ?? 'bf16'}`] = plan.training;
        rows.push(`${name} ${(quant ?? 'bf16').padEnd(5)} weights ${formatBytes(plan.bytes.weights).padStart(10)}  training ${formatBytes(plan.training)}`);
      }
    console.log(rows.join('\n'));
    expect(plans['llama-3.2-3b int4']!).toBeLessThanOrEqual(3.5 * GiB);
    expect(plans['llama-3.2-1b int4']!).toBeLessThanOrEqual(1.6 * GiB);
    expect(plans['llama-3.2-3b int8']!).toBeLessThan(plans['llama-3.2-3b bf16']!);
    expect(plans['llama-3.2-3b int4']!).toBeLessThan(plans['llama-3.2-3b int8']!);
  });

  it('weights are the format exactly: int4 projections, int8 table chunks, bf16 norms', () => {
    const c = LLAMA_3_2_PRESETS['llama-3.2-1b'];
    const plan = planMemory(c, { batch: 1, seq: 16, weightDType: 'bf16', quant: 'int4' });
    const H = c.hiddenSize;
    const pool = (b: number) => Math.ceil(b / 16) * 16;
    let want = 0;
    for (const t of layerTensors(c)) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      want += c.numLayers * pool(QUANTIZED_LAYER_WEIGHTS.includes(t.key) ? quantByteLength(n, 'int4') : 2 * n);
    }
    want += pool(2 * H) + pool(4 * (c.headDim / 2)); // final norm, rope inv_freq
    const tableBytes = plan.bytes.weights - want;
    // The int8 table (8.5 bits a weight) in chunks under the binding limit, each rounded by the pool.
    expect(tableBytes).toBeGreaterThanOrEqual((c.vocabSize * H * 8.5) / 8);
    expect(tableBytes).toBeLessThan((c.vocabSize * H * 8.5) / 8 + 64);
    expect(plan.largestTensor.bytes).toBeLessThanOrEqual(128 * 1024 * 1024);
    expect(() => planMemory(c, { batch: 1, seq: 16, weightDType: 'bf16', quant: 'int4', fullFineTune: true })).toThrow(/full fine-tuning needs a float base/);
  });
});
