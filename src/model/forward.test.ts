import { describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { forward, readLogp, readSequenceLogProbs } from './forward';
import { createTrainWorkspace } from './activations';
import { parseModelConfig } from './config';
import { demoConfigJson, demoTensors } from './demo';
import { setBatchInputs } from './inputs';
import { createDecoderModel } from './decoder';
import { createLoraAdapters } from './lora';
import { hostWeightsFromNames, randomHostLora, setHostLora } from './random';
import { releaseWeights, uploadWeights } from './weights';
import { decode } from '../gpu/dtype';
import { referenceForward } from './reference';
import { positionIdsFromMask } from './inputs';
import { BF16_TIED, F32_UNTIED, FAMILY_SCENARIOS, paddedBatch, setup, type Scenario } from './testing/fixtures';

const RIGHT_PADDED: Scenario = { ...F32_UNTIED, name: 'f32 untied, right padding', padding: 'right' };

describe('decoder forward', () => {
  it.each([BF16_TIED, F32_UNTIED, RIGHT_PADDED, ...FAMILY_SCENARIOS])('per-token logp and lse match float64 with LoRA, $name (rel err < 1e-5)', async (s) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, s, seed);
    try {
      const t0 = performance.now();
      forward(m.model, m.ws, { lora: m.lora });
      const logp = await readLogp(m.model, m.ws);
      const lse = await ctx.readF32(m.ws.lse);
      const gpuMs = performance.now() - t0;
      const ref = referenceForward(m.host, m.inputs, m.hostLora);
      const real = [...m.inputs.mask.keys()].filter((i) => m.inputs.mask[i]);
      console.log(`${s.name}: logp rel err ${relError(logp, ref.logp).toExponential(2)}`);
      expect(relError(logp, ref.logp), `seed ${seed} logp`).toBeLessThan(1e-5);
      expect(relError(real.map((i) => lse[i]!), real.map((i) => ref.lse[i]!)), `seed ${seed} lse`).toBeLessThan(1e-5);
      // The adapter matters (so the comparison above tests it).
      const base = referenceForward(m.host, m.inputs, null);
      expect(relError(base.logp, ref.logp), `seed ${seed}`).toBeGreaterThan(1e-3);
      const { sums, counts } = await readSequenceLogProbs(m.model, m.ws);
      for (let b = 0; b < s.batchSize; b++) {
        let want = 0;
        let n = 0;
        for (let t = 0; t < s.seqLen; t++)
          if (m.inputs.targets[b * s.seqLen + t] !== -100) {
            want += ref.logp[b * s.seqLen + t]!;
            n++;
          }
        expect(counts[b], `seed ${seed} row ${b}`).toBe(n);
        expect(Math.abs(sums[b]! - want), `seed ${seed} row ${b} sum`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
      }
      console.log(`${s.name}: GPU forward ${gpuMs.toFixed(0)} ms`);
    } finally {
      m.release();
    }
  });

  it('position ids follow Hugging Face (cumsum(mask) - 1, clamped) for left and right padding', () => {
    const mask = [0, 0, 1, 1, 1, /**/ 1, 1, 1, 0, 0];
    expect([...positionIdsFromMask(mask, 2, 5)]).toEqual([0, 0, 0, 1, 2, /**/ 0, 1, 2, 2, 2]);
  });

  it('adapter switched off gives the base model exactly, back on the adapted one (rel err < 1e-5 vs float64); a fresh adapter changes nothing', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, F32_UNTIED, seed);
    try {
      forward(m.model, m.ws, { lora: null });
      const base = await readLogp(m.model, m.ws);
      m.lora.enabled = false;
      forward(m.model, m.ws, { lora: m.lora });
      const off = await readLogp(m.model, m.ws);
      expect([...off], `seed ${seed}`).toEqual([...base]);
      expect(relError(off, referenceForward(m.host, m.inputs, null).logp), `seed ${seed}`).toBeLessThan(1e-5);
      m.lora.enabled = true;
      forward(m.model, m.ws, { lora: m.lora });
      const on = await readLogp(m.model, m.ws);
      expect(relError(on, referenceForward(m.host, m.inputs, m.hostLora).logp), `seed ${seed}`).toBeLessThan(1e-5);
      // A freshly initialised adapter (B = 0, PEFT) leaves the model exactly unchanged.
      const fresh = createLoraAdapters(ctx, m.config, F32_UNTIED.lora, { seed, trainable: false });
      try {
        forward(m.model, m.ws, { lora: fresh });
        expect([...(await readLogp(m.model, m.ws))], `seed ${seed}`).toEqual([...base]);
      } finally {
        fresh.release();
      }
    } finally {
      m.release();
    }
  });

  it('runs a checkpoint uploaded by uploadWeights (the built-in demo model, f16, vocab 320) like the float64 reference (rel err < 1e-5)', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const options = { vocabSize: 320, dtype: 'f16' as const, initStd: 0.15, normJitter: 0.1, seed };
    const config = parseModelConfig(JSON.parse(demoConfigJson(options)));
    const tensors = new Map(demoTensors(options).map((t) => [t.name, t]));
    const dtypeOf = { F32: 'f32', F16: 'f16', BF16: 'bf16' } as const;
    const weights = await uploadWeights(ctx, config, async (name) => {
      const t = tensors.get(name)!;
      return { dtype: dtypeOf[t.dtype], shape: t.shape, read: async (o, n) => t.data.slice(o, o + n) };
    });
    const host = (name: string) => {
      const t = tensors.get(name)!;
      return Float64Array.from(decode(t.data.slice().buffer, t.shape.reduce((a, b) => a * b, 1), dtypeOf[t.dtype]));
    };
    const hostWeights = hostWeightsFromNames(config, 'f16', host);
    const model = createDecoderModel(ctx, weights);
    const s: Scenario = { ...BF16_TIED, batchSize: 2, seqLen: 6, pads: [2, 0] };
    const inputs = paddedBatch(config, s, seed + 1);
    const lora = createLoraAdapters(ctx, config, { rank: 4, alpha: 8 }, { seed });
    const hostLora = randomHostLora(config, { rank: 4, alpha: 8 }, seed + 2);
    setHostLora(ctx, lora, hostLora);
    const ws = createTrainWorkspace(model, { batchSize: 2, seqLen: 6, lora: lora.config, backward: false });
    try {
      setBatchInputs(ctx, ws, inputs);
      forward(model, ws, { lora });
      const ref = referenceForward(hostWeights, inputs, hostLora);
      expect(relError(await readLogp(model, ws), ref.logp), `seed ${seed}`).toBeLessThan(1e-5);
    } finally {
      ws.release();
      lora.release();
      model.release();
      releaseWeights(weights);
    }
  });
});
