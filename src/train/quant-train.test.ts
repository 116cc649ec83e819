// Training on an int4 base (QLoRA-style): LoRA SFT memorises, DPO separates, and the exported PEFT
// adapter is an ordinary adapter of the FULL-PRECISION base: applied to it in the float64
// reference it scores the trained answers as training did, to within the quantization error.
//
// The bound: the base's quantization error is measured with the adapter off, per token,
//   e₀ = max_t |logp_fp(t) − logp_int4(t)|   (float64 reference, full-precision vs dequantized base);
// with the exported adapter A on, the gap on the trained answer tokens stays within it,
//   max_t |logp_fp+A(t) − logp_int4+A(t)| ≤ e₀,
// and every trained answer token stays the top-1 prediction on the full-precision base. (Measured
// here: e₀ ≈ 1.5 nats on this random 64-wide model, 0.003 with the adapter: a memorised answer's
// near-one probability is insensitive to the base's int4 error.)
import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { freshSeed, rng } from '../engine/testing/random';
import type { ChatMessage } from '../data/records';
import { createDecoderModel } from '../model/decoder';
import { generateBatch } from '../model/generate';
import { createLoraAdapters } from '../model/lora';
import { quantizedHostWeights, randomHostWeights, tinyConfig, uploadHostWeights } from '../model/random';
import { referenceForward, type RefInputs } from '../model/reference';
import { DEFAULT_BINDING_BYTES } from '../model/weight-layout';
import { releaseWeights } from '../model/weights';
import { prepareSft } from './batching';
import { exportPeftAdapter, importPeftAdapter, readHostAdapter, toHostLora } from './peft';
import { Trainer } from './trainer';
import { randomPairs } from './testing/data';
import { compactTokenizer, DATE, llama32Tokenizer } from './testing/fixtures';

const CHATS: [string, string][] = [
  ['What is the capital of France?', 'Paris.'],
  ['Say hi.', 'Hi there!'],
  ['What color is the sky?', 'Blue.'],
];

function int4Model(ctx: Awaited<ReturnType<typeof testContext>>, options: Parameters<typeof tinyConfig>[0], seed: number) {
  const config = tinyConfig(options);
  const float = randomHostWeights(config, 'f32', seed);
  const weights = uploadHostWeights(ctx, float, DEFAULT_BINDING_BYTES, 'int4');
  const model = createDecoderModel(ctx, weights);
  return { config, float, deq: quantizedHostWeights(float, 'int4'), model, release: () => (model.release(), releaseWeights(weights)) };
}

describe('training on an int4 base', () => {
  it('SFT memorises; the exported PEFT adapter on the full-precision base scores the answers within the quantization error', async () => {
    const ctx = await testContext();
    const chats: ChatMessage[][] = CHATS.map(([q, a]) => [
      { role: 'user', content: q },
      { role: 'assistant', content: a },
    ]);
    const tok = compactTokenizer(llama32Tokenizer(), chats);
    const m = int4Model(ctx, { hiddenSize: 64, intermediateSize: 176, numHeads: 4, numKvHeads: 2, vocabSize: tok.vocabSize, tieWordEmbeddings: true, llama3Rope: true }, 7);
    const lora = createLoraAdapters(ctx, m.config, { rank: 16, alpha: 32 }, { seed: 1 });
    const { examples } = prepareSft(chats.map((messages) => ({ kind: 'sft-messages', messages })), tok, { maxLength: 128, chatTemplate: DATE });
    const trainer = new Trainer({
      model: m.model,
      lora,
      task: { kind: 'sft', train: examples },
      hyper: { lr: 1e-2, scheduler: 'constant', warmupRatio: 0, maxSteps: 40, microBatchSize: 4, gradientAccumulationSteps: 1 },
    });
    const prompts = CHATS.map(([q]) => tok.encodeChat([{ role: 'user', content: q }], { ...DATE, addGenerationPrompt: true }).ids);
    const decode = async () =>
      (await generateBatch(m.model, { prompts, maxNewTokens: 8, sampling: { temperature: 0 }, eosTokenIds: tok.eosTokenIds, lora })).map((o) => tok.decode(o.ids));
    const want = CHATS.map(([, a]) => `${a}<|eot_id|>`);
    try {
      let got: string[] = [];
      let loss = Infinity;
      while (trainer.globalStep < trainer.totalSteps) {
        loss = (await trainer.step()).metrics.loss!;
        if (trainer.globalStep % 4 === 0 && loss < 0.1 && (got = await decode()).every((g, i) => g === want[i])) break;
      }
      expect(got).toEqual(want);

      // Export as PEFT files, import them back as any adapter of this (full-precision) architecture.
      const files = exportPeftAdapter(await readHostAdapter(ctx, lora));
      const adapter = toHostLora(importPeftAdapter(files, m.config).adapter);
      const T = Math.max(...examples.map((e) => e.inputIds.length));
      const x: RefInputs & { targets: number[] } = { batchSize: examples.length, seqLen: T, ids: [], mask: [], targets: [] };
      for (const e of examples)
        for (let t = 0; t < T; t++) {
          (x.ids as number[]).push(e.inputIds[t] ?? 0);
          (x.mask as number[]).push(t < e.inputIds.length ? 1 : 0);
          x.targets.push(t + 1 < e.labels.length ? e.labels[t + 1]! : -100);
        }
      const counted = x.targets.flatMap((v, i) => (v === -100 ? [] : [i]));
      const gap = (a: Float64Array, b: Float64Array) => Math.max(...counted.map((i) => Math.abs(a[i]! - b[i]!)));
      const e0 = gap(referenceForward(m.float, x, null).logp, referenceForward(m.deq, x, null).logp);
      const fp = referenceForward(m.float, x, adapter);
      const q = referenceForward(m.deq, x, adapter);
      const e = gap(fp.logp, q.logp);
      const V = m.config.vocabSize;
      const top1 = counted.filter((i) => {
        const row = fp.logits.subarray(i * V, (i + 1) * V);
        return row.indexOf(Math.max(...row)) === x.targets[i];
      }).length;
      const meanFp = counted.reduce((s, i) => s + fp.logp[i]!, 0) / counted.length;
      const meanQ = counted.reduce((s, i) => s + q.logp[i]!, 0) / counted.length;
      console.log(
        `int4 SFT: ${trainer.globalStep} steps, loss ${loss.toFixed(4)}; answer tokens ${counted.length}: mean logp int4+A ${meanQ.toFixed(4)}, ` +
          `fp+A ${meanFp.toFixed(4)}; max |Δlogp| base e0 = ${e0.toFixed(4)}, with adapter ${e.toFixed(4)}; top-1 on fp+A ${top1}/${counted.length}`,
      );
      expect(meanQ).toBeGreaterThan(-0.1); // the reference of the exported adapter = the trained model
      expect(e0).toBeGreaterThan(1e-3); // the base really is quantized
      expect(e).toBeLessThanOrEqual(e0);
      expect(top1).toBe(counted.length);
    } finally {
      trainer.release();
      lora.release();
      m.release();
    }
  });

  it('DPO separates: rewards/accuracies reaches 1 with growing margins', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = int4Model(ctx, { hiddenSize: 32, intermediateSize: 64, vocabSize: 64 }, seed);
    const lora = createLoraAdapters(ctx, m.config, { rank: 8, alpha: 16 }, { seed });
    const pairs = randomPairs(4, 64, rng(seed + 1));
    const trainer = new Trainer({
      model: m.model,
      lora,
      task: { kind: 'dpo', train: pairs, beta: 0.1, lossType: 'sigmoid' },
      hyper: { lr: 1e-2, scheduler: 'constant', warmupRatio: 0, epochs: 8, microBatchSize: 2, gradientAccumulationSteps: 2 },
    });
    try {
      const r = await trainer.run();
      expect(r.status).toBe('completed');
      const margins = r.history.map((h) => h['rewards/margins']!);
      console.log(`int4 DPO: margins ${margins.map((v) => v.toFixed(3)).join(' ')} (seed ${seed})`);
      expect(margins[0]).toBe(0);
      expect(r.history.at(-1)!['rewards/accuracies']).toBe(1);
      expect(margins.at(-1)!).toBeGreaterThan(margins[3]!);
      expect(margins[3]!).toBeGreaterThan(0);
    } finally {
      trainer.release();
      lora.release();
      m.release();
    }
  });
});
