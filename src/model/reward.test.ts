import { describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import type { DType } from '../gpu/dtype';
import { createTrainWorkspace } from './activations';
import { createDecoderModel } from './decoder';
import { forward } from './forward';
import { randomHostWeights, seededRandom, tinyConfig, uploadHostWeights, type TinyConfigOptions } from './random';
import { referenceReward } from './reference';
import { rewardForward, scoreRewards } from './reward';
import { releaseWeights } from './weights';

const REWARD_MODELS: { name: string; config: TinyConfigOptions; dtype: DType }[] = [
  { name: 'llama bf16, pad id 7', config: { family: 'llama', head: 'sequence-classification', hiddenSize: 32, headDim: 12, vocabSize: 200, padTokenId: 7 }, dtype: 'bf16' },
  { name: 'qwen3 f32, no pad id', config: { family: 'qwen3', head: 'sequence-classification', hiddenSize: 40, numHeads: 4, numKvHeads: 1, headDim: 12, intermediateSize: 51, vocabSize: 230 }, dtype: 'f32' },
  { name: 'qwen2 f16, pad id 0', config: { family: 'qwen2', head: 'sequence-classification', hiddenSize: 24, numHeads: 3, numKvHeads: 3, vocabSize: 190, padTokenId: 0 }, dtype: 'f16' },
];

/** A padded batch; pad positions hold the pad id (or a random id when the config has none). */
function batch(vocab: number, pad: number | null, lengths: number[], T: number, side: 'left' | 'right', next: () => number) {
  const B = lengths.length;
  const ids = new Int32Array(B * T);
  const mask = new Int32Array(B * T);
  lengths.forEach((n, b) => {
    for (let t = 0; t < T; t++) {
      const real = side === 'left' ? t >= T - n : t < n;
      // Real ids avoid the pad id, as text from a tokenizer does.
      let id = Math.floor(next() * vocab);
      if (real && id === pad) id = (id + 1) % vocab;
      ids[b * T + t] = real ? id : (pad ?? Math.floor(next() * vocab));
      mask[b * T + t] = real ? 1 : 0;
    }
  });
  return { ids, mask };
}

describe('reward heads (*ForSequenceClassification)', () => {
  it.each(REWARD_MODELS)('pool the last real token and match the float64 reference, left and right padding, batch 3: $name (rel err < 1e-5)', async (m) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const config = tinyConfig(m.config);
    const host = randomHostWeights(config, m.dtype, seed);
    const weights = uploadHostWeights(ctx, host);
    const model = createDecoderModel(ctx, weights);
    const T = 9;
    const ws = createTrainWorkspace(model, { batchSize: 3, seqLen: T, lora: null, backward: false, lmHeadChunk: 1 });
    const next = seededRandom(seed + 1);
    try {
      for (const side of ['left', 'right'] as const) {
        const x = batch(config.vocabSize, config.padTokenId, [9, 4, 6], T, side, next);
        const got = await rewardForward(model, ws, x);
        const want = referenceReward(host, { batchSize: 3, seqLen: T, ...x });
        expect(got.length).toBe(3);
        expect(relError(got, want), `seed ${seed} ${side}`).toBeLessThan(1e-5);
        // The rows differ (a pooling bug that reads one row for all would not).
        expect(new Set(Array.from(got, (v) => v.toFixed(5))).size, `seed ${seed}`).toBe(3);
      }
    } finally {
      ws.release();
      model.release();
      releaseWeights(weights);
    }
  });

  it('scoreRewards batches sequences of any length and returns, in order, what each gives alone', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const config = tinyConfig(REWARD_MODELS[0]!.config);
    const host = randomHostWeights(config, 'bf16', seed);
    const weights = uploadHostWeights(ctx, host);
    const model = createDecoderModel(ctx, weights);
    const next = seededRandom(seed + 2);
    const seqs = [5, 17, 3, 12, 30, 1].map((n) => Int32Array.from({ length: n }, () => 8 + Math.floor(next() * (config.vocabSize - 8))));
    try {
      const progress: number[] = [];
      const got = await scoreRewards(model, seqs, { onProgress: (d) => progress.push(d) });
      const want = seqs.map((ids) => referenceReward(host, { batchSize: 1, seqLen: ids.length, ids, mask: new Int32Array(ids.length).fill(1) })[0]!);
      expect(relError(got, want), `seed ${seed}`).toBeLessThan(1e-5);
      expect(progress.at(-1)).toBe(seqs.length);
      expect(await scoreRewards(model, seqs, { batchSize: 1 })).toEqual(got.map((v) => expect.closeTo(v, 5)));
      await expect(scoreRewards(model, [new Int32Array(0)])).rejects.toThrow(/sequence 0 is empty/);
    } finally {
      model.release();
      releaseWeights(weights);
    }
  });

  it('a causal LM is refused as a reward model, and a reward model has no LM forward', async () => {
    const ctx = await testContext();
    const lm = uploadHostWeights(ctx, randomHostWeights(tinyConfig({ family: 'qwen2' }), 'f32', 1));
    const rm = uploadHostWeights(ctx, randomHostWeights(tinyConfig({ head: 'sequence-classification' }), 'f32', 2));
    const lmModel = createDecoderModel(ctx, lm);
    const rmModel = createDecoderModel(ctx, rm);
    try {
      await expect(scoreRewards(lmModel, [[1, 2, 3]])).rejects.toThrow(/qwen2 causal language model, not a reward model/);
      const ws = createTrainWorkspace(rmModel, { batchSize: 1, seqLen: 4, lora: null, backward: false, lmHeadChunk: 1 });
      expect(() => forward(rmModel, ws)).toThrow(/has no language-model head/);
      ws.release();
      expect(() => createTrainWorkspace(rmModel, { batchSize: 1, seqLen: 4, lora: null })).toThrow(/Fuse Studio does not train it/);
    } finally {
      lmModel.release();
      rmModel.release();
      releaseWeights(lm);
      releaseWeights(rm);
    }
  });
});
