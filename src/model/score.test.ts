import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { createDecoderModel } from './decoder';
import { createLoraAdapters } from './lora';
import { randomHostLora, randomHostWeights, seededRandom, setHostLora, tinyConfig, uploadHostWeights } from './random';
import { referenceForward, type HostLora, type HostWeights } from './reference';
import { scoreSequences, type LabelledSequence } from './score';
import { releaseWeights } from './weights';

/** Σ log p(labels[t] | ids[<t]) in float64, HF's shift. */
function referenceScore(host: HostWeights, s: LabelledSequence, lora: HostLora | null): { sum: number; n: number } {
  const T = s.ids.length;
  const targets = Array.from({ length: T }, (_, t) => (t + 1 < T ? (s.labels ? s.labels[t + 1]! : s.ids[t + 1]!) : -100));
  const { logp } = referenceForward(host, { batchSize: 1, seqLen: T, ids: s.ids, mask: new Array<number>(T).fill(1), targets }, lora);
  return { sum: logp.reduce((a, b) => a + b, 0), n: targets.filter((y) => y !== -100).length };
}

describe('scoreSequences', () => {
  it('per-sequence sums equal the float64 reference (HF label shift), any batch size, with and without the adapter', async () => {
    const ctx = await testContext();
    const config = tinyConfig({ vocabSize: 200, tieWordEmbeddings: false });
    const host = randomHostWeights(config, 'f32', 77);
    const hostLora = randomHostLora(config, { rank: 2, alpha: 4 }, 78, 0.5);
    const weights = uploadHostWeights(ctx, host);
    const model = createDecoderModel(ctx, weights);
    const lora = createLoraAdapters(ctx, config, { rank: 2, alpha: 4 }, { trainable: false });
    setHostLora(ctx, lora, hostLora);
    const next = seededRandom(5);
    const seqs: LabelledSequence[] = [5, 19, 1, 33].map((n, i) => {
      const ids = Array.from({ length: n }, () => Math.floor(next() * 200));
      return i === 1 ? { ids } : { ids, labels: ids.map((id, t) => (t % 3 === 0 ? -100 : id)) };
    });
    try {
      for (const withAdapter of [false, true]) {
        const want = seqs.map((s) => referenceScore(host, s, withAdapter ? hostLora : null));
        for (const batchSize of withAdapter ? [3] : [1, undefined]) {
          const got = await scoreSequences(model, seqs, { lora: withAdapter ? lora : null, batchSize });
          got.forEach((g, i) => {
            expect(g.nTokens, `seq ${i}`).toBe(want[i]!.n);
            expect(Math.abs(g.logprobSum - want[i]!.sum), `seq ${i} adapter ${withAdapter} batch ${batchSize}: ${g.logprobSum} vs ${want[i]!.sum}`).toBeLessThan(
              1e-5 * Math.max(1, Math.abs(want[i]!.sum)),
            );
          });
        }
      }
      expect(await scoreSequences(model, [])).toEqual([]);
      await expect(scoreSequences(model, [{ ids: [1, 200] }])).rejects.toThrow(/token 1 = 200/);
      await expect(scoreSequences(model, [{ ids: [1, 2], labels: [1] }])).rejects.toThrow(/labels/);
    } finally {
      lora.release();
      model.release();
      releaseWeights(weights);
    }
  });
});
