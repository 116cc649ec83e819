// Every model family trains with LoRA, and what it exports is a PEFT adapter that reproduces the
// trained model: the adapter read back from its files, applied in the float64 reference model,
// gives the log-probs the GPU gives with the trained adapter.
import { describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed, rng } from '../engine/testing/random';
import { createTrainWorkspace } from '../model/activations';
import type { FamilyName } from '../model/families';
import { forward, readLogp } from '../model/forward';
import { setBatchInputs } from '../model/inputs';
import { createLoraAdapters } from '../model/lora';
import { referenceForward } from '../model/reference';
import { exportPeftAdapter, importPeftAdapter, readHostAdapter, toHostLora } from './peft';
import { Trainer } from './trainer';
import { randomSft } from './testing/data';
import { randomModel } from './testing/fixtures';

const FAMILIES: { family: FamilyName; shape: Record<string, number | boolean> }[] = [
  { family: 'qwen2', shape: { hiddenSize: 40, numHeads: 5, numKvHeads: 1, headDim: 12, intermediateSize: 53, tieWordEmbeddings: true } },
  { family: 'qwen3', shape: { hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 12, intermediateSize: 45 } },
  { family: 'mistral', shape: { hiddenSize: 32, numHeads: 4, numKvHeads: 2, intermediateSize: 47 } },
];

describe('LoRA training and PEFT export for every family', () => {
  it.each(FAMILIES)('$family: SFT lowers the loss; the exported adapter, in the float64 reference, gives the trained log-probs (rel err < 1e-5)', async ({ family, shape }) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const vocab = 64;
    const m = randomModel(ctx, { family, vocabSize: vocab, ...shape }, seed);
    const lora = createLoraAdapters(ctx, m.config, { rank: 4, alpha: 8 }, { seed });
    const train = randomSft(4, vocab, rng(seed + 1));
    const trainer = new Trainer({
      model: m.model,
      lora,
      task: { kind: 'sft', train },
      hyper: { microBatchSize: 4, gradientAccumulationSteps: 1, maxSteps: 12, lr: 2e-2, scheduler: 'constant', warmupRatio: 0, maxGradNorm: 1, weightDecay: 0 },
    });
    try {
      const losses: number[] = [];
      for (let i = 0; i < 12; i++) losses.push((await trainer.step()).metrics.loss!);
      expect(losses.at(-1)!, `seed ${seed}: ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(losses[0]! * 0.8);

      // Export → files → import, then the reference with the imported adapter.
      const files = exportPeftAdapter(await readHostAdapter(ctx, lora), { baseModel: `test/${family}` });
      const back = importPeftAdapter(files, m.config);
      const T = Math.max(...train.map((e) => e.inputIds.length));
      const B = train.length;
      const ids = new Int32Array(B * T);
      const mask = new Int32Array(B * T);
      const targets = new Int32Array(B * T).fill(-100);
      train.forEach((e, b) =>
        e.inputIds.forEach((id, t) => {
          ids[b * T + t] = id;
          mask[b * T + t] = 1;
          if (t + 1 < e.inputIds.length) targets[b * T + t] = e.inputIds[t + 1]!;
        }),
      );
      const ws = createTrainWorkspace(m.model, { batchSize: B, seqLen: T, lora: lora.config, backward: false });
      try {
        setBatchInputs(ctx, ws, { ids, mask, targets });
        forward(m.model, ws, { lora });
        const got = await readLogp(m.model, ws);
        const ref = referenceForward(m.host!, { batchSize: B, seqLen: T, ids, mask, targets }, toHostLora(back.adapter));
        const base = referenceForward(m.host!, { batchSize: B, seqLen: T, ids, mask, targets }, null);
        expect(relError(got, ref.logp), `seed ${seed}`).toBeLessThan(1e-5);
        expect(relError(base.logp, ref.logp), `seed ${seed}: training changed the model`).toBeGreaterThan(1e-3);
      } finally {
        ws.release();
      }
    } finally {
      trainer.release();
      lora.release();
      m.release();
    }
  });
});
