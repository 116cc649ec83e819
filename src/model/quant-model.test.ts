// A decoder on a quantized base (int8 / int4 projections, int8 embedding = tied lm_head, split into
// row chunks): the forward's log-probs and the LoRA gradients (both matmul layouts, the embedding
// gather, the chunked lm_head + cross-entropy all decoding in the kernels) against the float64
// reference run on the DEQUANTIZED weights; and quantize-on-load (uploadWeights streaming bf16
// pieces through the quantizer) holds exactly those weights.
import { describe, expect, it } from 'vitest';
import { encode } from '../gpu/dtype';
import { dequantize, quantize } from '../gpu/quant';
import { finiteDifferences, relError, sampleIndices } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed, rng } from '../engine/testing/random';
import { backward, countTargets } from './backward';
import { forward, readLogp } from './forward';
import { generate } from './generate';
import { planMemory } from './memory-plan';
import { LORA_TARGETS } from './lora';
import { hostWeightsByName, quantizedHostWeights, randomHostWeights, tinyConfig } from './random';
import { referenceForward, referenceLoss, type HostLora } from './reference';
import { setup, type Scenario } from './testing/fixtures';
import { layoutOf } from './weight-layout';
import { quantOf, releaseWeights, uploadQuantized, uploadWeights, type TensorBytes } from './weights';

/** Tied, H = 64 (two groups a row), I = 96, vocab 500 in int8 chunks of 128 rows. */
const QUANT_TIED: Scenario = {
  name: 'quantized tied, chunked table',
  config: { hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, intermediateSize: 96, vocabSize: 500, tieWordEmbeddings: true, llama3Rope: true },
  dtype: 'bf16',
  lora: { rank: 4, alpha: 8 },
  batchSize: 2,
  seqLen: 8,
  pads: [3, 0],
  maxChunkBytes: 128 * 64 + 512, // 128 int8 rows and their f16 scales
  lmHeadChunk: 96,
};

/** Untied, H = 40 (groups straddle rows), odd intermediate size. */
const QUANT_UNTIED: Scenario = {
  name: 'quantized untied, ragged groups',
  config: { hiddenSize: 40, numHeads: 5, numKvHeads: 1, headDim: 8, intermediateSize: 53, vocabSize: 310, tieWordEmbeddings: false },
  dtype: 'f32',
  lora: { rank: 3, alpha: 6 },
  batchSize: 2,
  seqLen: 7,
  pads: [0, 2],
};

function cloneLora(h: HostLora): HostLora {
  return { ...h, layers: h.layers.map((l) => Object.fromEntries(Object.entries(l).map(([t, m]) => [t, { a: m.a.slice(), b: m.b.slice() }]))) };
}

describe('decoder on a quantized base', () => {
  for (const quant of ['int8', 'int4'] as const)
    it.each([QUANT_TIED, QUANT_UNTIED])(`${quant}: logp matches float64 of the dequantized weights, LoRA grads match its finite differences, $name`, async (s) => {
      const ctx = await testContext();
      const seed = freshSeed();
      const m = setup(ctx, s, seed, { quant });
      try {
        expect(quantOf(m.model.weights)).toBe(quant);
        expect(layoutOf(m.model.weights)).toMatchObject({ matrixDType: quant, tableDType: 'int8', dtype: s.dtype });
        if (s === QUANT_TIED) expect(m.model.weights.embed.chunks.length).toBe(4);
        const n = countTargets(m.inputs.targets);
        forward(m.model, m.ws, { lora: m.lora });
        const logp = await readLogp(m.model, m.ws);
        const ref = referenceForward(m.host, m.inputs, m.hostLora);
        expect(relError(logp, ref.logp), `seed ${seed} logp`).toBeLessThan(1e-5);
        // …and the quantization is really there: the float base gives other log-probs.
        const float = referenceForward(randomHostWeights(m.config, s.dtype, seed), m.inputs, m.hostLora);
        expect(relError(float.logp, ref.logp), `seed ${seed}`).toBeGreaterThan(quant === 'int4' ? 1e-3 : 1e-5);
        backward(m.model, m.ws, { lora: m.lora, scale: 1 / n });
        const next = rng(seed + 3);
        const got: number[] = [];
        const want: number[] = [];
        for (let l = 0; l < m.config.numLayers; l++)
          for (const t of LORA_TARGETS)
            for (const which of ['a', 'b'] as const) {
              const mod = m.lora.layers[l]![t]!;
              const grad = await ctx.readF32(which === 'a' ? mod.dA! : mod.dB!);
              const value = m.hostLora.layers[l]![t]![which];
              const idx = sampleIndices(value.length, 1, next);
              const lora = cloneLora(m.hostLora);
              got.push(...idx.map((i) => grad[i]!));
              want.push(...finiteDifferences((v) => ((lora.layers[l]![t]![which] = v), referenceLoss(m.host, m.inputs, lora, null, 1 / n)), value.slice(), idx));
            }
        expect(Math.hypot(...want)).toBeGreaterThan(1e-4);
        expect(relError(got, want), `seed ${seed} LoRA grads`).toBeLessThan(1e-4);
      } finally {
        m.release();
      }
    });

  it('quantize-on-load: uploadWeights streams bf16 pieces through the quantizer into exactly the quantized weights', async () => {
    const ctx = await testContext();
    const config = tinyConfig({ hiddenSize: 64, intermediateSize: 96, vocabSize: 300, tieWordEmbeddings: false });
    const host = randomHostWeights(config, 'bf16', freshSeed());
    const byName = hostWeightsByName(host);
    const get = async (name: string): Promise<TensorBytes> => {
      const values = byName.get(name)!;
      const bytes = encode(values, 'bf16');
      const shape = name.includes('norm') ? [values.length] : [values.length / (name.includes('down') ? 96 : 64), name.includes('down') ? 96 : 64];
      return { dtype: 'bf16', shape, read: async (o, len) => bytes.slice(o, o + len) };
    };
    const w = await uploadWeights(ctx, config, get, undefined, { quant: 'int4' });
    try {
      const want = quantizedHostWeights(host, 'int4', Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize));
      expect(w.embed.dtype).toBe('int8');
      expect(Array.from(await ctx.read(w.embed.chunks[0]!.tensor))).toEqual(Array.from(want.embed, Math.fround));
      expect(Array.from(await ctx.read(w.lmHead.chunks[0]!.tensor))).toEqual(Array.from(want.lmHead, Math.fround));
      for (const k of ['q', 'down'] as const) {
        expect(w.layers[1]![k].dtype).toBe('int4');
        expect(Array.from(await ctx.read(w.layers[1]![k]))).toEqual(Array.from(want.layers[1]![k]!, Math.fround));
      }
      expect(w.layers[0]!.inputNorm.dtype).toBe('bf16');
    } finally {
      releaseWeights(w);
    }
    // Pieces of 64 elements give the same bytes as one piece.
    const values = randomHostWeights(config, 'f32', 7).layers[0]!.gate!;
    const t = ctx.tensor([96, 64], 'int4', 'gate');
    const bytes = encode(values, 'f32');
    await uploadQuantized(ctx, t, { dtype: 'f32', shape: [96, 64], read: async (o, len) => bytes.slice(o, o + len) }, 0, 64);
    expect(Array.from(await ctx.read(t))).toEqual(Array.from(dequantize(quantize(values, 'int4'), values.length, 'int4'), Math.fround));
    t.release();
  });

  it.each(['int8', 'int4'] as const)('%s: a LoRA forward + backward step peaks exactly at the plan (quantized projections, int8 table chunks)', async (quant) => {
    const ctx = await testContext();
    ctx.pool.trim();
    const before = ctx.pool.stats().allocatedBytes;
    ctx.pool.resetPeak();
    const s = QUANT_TIED;
    const m = setup(ctx, s, freshSeed(), { quant });
    try {
      forward(m.model, m.ws, { lora: m.lora });
      backward(m.model, m.ws, { lora: m.lora, scale: 1 / countTargets(m.inputs.targets) });
      await ctx.flush();
      const measured = ctx.pool.stats().peakBytes - before;
      const plan = planMemory(m.config, {
        batch: s.batchSize,
        seq: s.seqLen,
        loraRank: s.lora.rank,
        weightDType: s.dtype,
        quant,
        maxBindingBytes: s.maxChunkBytes!,
        lmHeadChunk: s.lmHeadChunk!,
      });
      expect(measured).toBe(plan.training);
    } finally {
      m.release();
    }
  });

  it('greedy generation (KV cache, the lm_head over int8 chunks) on an int4 base follows the float64 argmax of the dequantized model', async () => {
    const ctx = await testContext();
    const m = setup(ctx, QUANT_TIED, freshSeed(), { quant: 'int4' });
    try {
      const prompt = [5, 17, 42, 99, 3];
      const got = await generate(m.model, { promptIds: prompt, maxNewTokens: 4, sampling: { temperature: 0 }, eosTokenIds: [] });
      const ids = [...prompt];
      const V = m.config.vocabSize;
      for (let i = 0; i < 4; i++) {
        const { logits } = referenceForward(m.host, { batchSize: 1, seqLen: ids.length, ids, mask: ids.map(() => 1) }, null);
        const last = logits.subarray((ids.length - 1) * V, ids.length * V);
        ids.push(last.indexOf(Math.max(...last)));
      }
      expect(got.ids).toEqual(ids.slice(prompt.length));
    } finally {
      m.release();
    }
  });
});
