// The memory plan of a GGUF model counts each tensor in its own block type (ModelMeta.tensorDTypes
// from the tensor table): a generated Q4_K_M-mix file (Q4_K q/k/o/gate/up, Q6_K v/down/embedding/
// lm_head, F32 norms), loaded through the real loader, peaks on a LoRA forward + backward step at
// exactly the plan; the same config planned as bf16 (what plans said before) is larger.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testContext } from '../../engine/testing/gpu';
import { createTrainWorkspace } from '../activations';
import { backward, countTargets } from '../backward';
import { createDecoderModel } from '../decoder';
import { forward } from '../forward';
import { setBatchInputs } from '../inputs';
import { loadModel, readModelMeta } from '../load';
import { createLoraAdapters } from '../lora';
import { planMemory } from '../memory-plan';
import { hostWeightsByName, randomHostWeights, tinyConfig } from '../random';
import { openModelSource } from '../source-node';
import { paddedBatch, type Scenario } from '../testing/fixtures';
import { q4kmTypes, writeGgufModel } from '../testing/gguf-writer';
import { weightSpecs } from '../weight-layout';
import { releaseWeights } from '../weights';

const config = { ...tinyConfig({ family: 'qwen3', hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 258, numLayers: 2, tieWordEmbeddings: false }), bosTokenId: 256, eosTokenIds: [257] };
const S: Scenario = { name: 'gguf q4_k_m', config: {}, dtype: 'f32', lora: { rank: 4, alpha: 8 }, batchSize: 2, seqLen: 8, pads: [2, 0] };

describe('memory plan of a GGUF model', () => {
  it('a Q4_K_M-mix file: the plan from the tensor table equals the measured peak of a LoRA step, and is below the bf16 plan', async () => {
    const host = hostWeightsByName(randomHostWeights(config, 'f32', 21));
    const dir = await mkdtemp(join(tmpdir(), 'fuse-gguf-plan-'));
    const path = join(dir, 'tiny-Q4_K_M.gguf');
    await writeFile(path, writeGgufModel(config, (n) => host.get(n)!, { typeOf: q4kmTypes }));

    const meta = await readModelMeta(await openModelSource(path));
    expect(meta.tensorDTypes).toMatchObject({
      'model.embed_tokens.weight': 'q6_k',
      'lm_head.weight': 'q6_k',
      'model.layers.0.self_attn.q_proj.weight': 'q4_k',
      'model.layers.1.mlp.down_proj.weight': 'q6_k',
      'model.norm.weight': 'f32',
    });

    const ctx = await testContext();
    ctx.pool.trim();
    const before = ctx.pool.stats().allocatedBytes;
    ctx.pool.resetPeak();
    const loaded = await loadModel(ctx, await openModelSource(path));
    const model = createDecoderModel(ctx, loaded.weights);
    const lora = createLoraAdapters(ctx, loaded.config, S.lora, { seed: 3 });
    const ws = createTrainWorkspace(model, { batchSize: S.batchSize, seqLen: S.seqLen, lora: S.lora, lmHeadChunk: 128 });
    const inputs = paddedBatch(loaded.config, S, 5);
    try {
      setBatchInputs(ctx, ws, inputs);
      forward(model, ws, { lora });
      backward(model, ws, { lora, scale: 1 / countTargets(inputs.targets) });
      await ctx.flush();
      const measured = ctx.pool.stats().peakBytes - before;
      const maxBindingBytes = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
      const options = { batch: S.batchSize, seq: S.seqLen, loraRank: S.lora.rank, weightDType: 'f32' as const, maxBindingBytes, lmHeadChunk: 128 };
      const plan = planMemory(loaded.config, { ...options, tensorDTypes: meta.tensorDTypes! });
      expect(measured).toBe(plan.training);
      // The loaded layout describes the same tensors as the planned one.
      expect(weightSpecs(model.layout)).toEqual(weightSpecs({ ...model.layout, tensorDTypes: meta.tensorDTypes! }));
      const bf16 = planMemory(loaded.config, { ...options, weightDType: 'bf16' });
      expect(plan.bytes.weights).toBeLessThan(bf16.bytes.weights / 3);
      expect(plan.training).toBeLessThan(bf16.training);
    } finally {
      ws.release();
      lora.release();
      model.release();
      releaseWeights(loaded.weights);
    }
  }, 300_000);
});
