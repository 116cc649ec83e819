// QLoRA's export contract: an adapter trained on an int4 base is an ordinary adapter of the
// full-precision checkpoint, and the merged export merges it into the FULL-PRECISION weights read
// from that checkpoint (not into the dequantized int4 ones the training saw).
import { describe, expect, it } from 'vitest';
import { decode } from '../gpu/dtype';
import { testContext } from '../engine/testing/gpu';
import { rng } from '../engine/testing/random';
import { createDecoderModel } from '../model/decoder';
import { generateDemoModel } from '../model/demo';
import { loadModel } from '../model/load';
import { createLoraAdapters } from '../model/lora';
import { readSafetensorsHeader } from '../model/safetensors';
import { blobsSource } from '../model/source';
import { releaseWeights } from '../model/weights';
import { memorySource } from '../io/byte-source';
import { memorySink, mergeAdapter } from './merge';
import { deltaWeight, readHostAdapter } from './peft';
import { randomSft } from './testing/data';
import { Trainer } from './trainer';

describe('merged export of an adapter trained on an int4 base', () => {
  it('merges into the full-precision weights: merged = W_fp + ΔW to f32 rounding, far from W_int4 + ΔW', async () => {
    const ctx = await testContext();
    const files = generateDemoModel(null, { hiddenSize: 64, numLayers: 2, vocabSize: 128, intermediateSize: 96, dtype: 'f32', initStd: 0.1, tieWordEmbeddings: true });
    const blobs = new Map([...files].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])]));
    const source = blobsSource('fp model', blobs);
    const loaded = await loadModel(ctx, source, { quant: 'int4' });
    const model = createDecoderModel(ctx, loaded.weights);
    const lora = createLoraAdapters(ctx, loaded.config, { rank: 4, alpha: 8 }, { seed: 3 });
    const trainer = new Trainer({
      model,
      lora,
      task: { kind: 'sft', train: randomSft(4, 128, rng(5)) },
      hyper: { lr: 1e-2, scheduler: 'constant', warmupRatio: 0, maxSteps: 3, microBatchSize: 4, gradientAccumulationSteps: 1 },
    });
    try {
      await trainer.run();
      const adapter = await readHostAdapter(ctx, lora);
      const int4q = Float64Array.from(await ctx.read(loaded.weights.layers[0]!.q));
      const sink = memorySink();
      const report = await mergeAdapter(source, adapter, sink, { dtype: 'f32' });
      expect(report.merged).toContain('model.layers.0.self_attn.q_proj.weight');
      const read = async (bytes: Uint8Array, name: string) => {
        const h = await readSafetensorsHeader(memorySource('model.safetensors', bytes));
        const e = h.tensors.get(name)!;
        return Float64Array.from(decode(bytes.slice(e.begin, e.end).buffer, e.shape.reduce((a, b) => a * b, 1), 'f32'));
      };
      const name = 'model.layers.0.self_attn.q_proj.weight';
      const fp = await read(files.get('model.safetensors')!, name);
      const merged = await read(sink.files.get('model.safetensors')!, name);
      const delta = deltaWeight(adapter, 0, 'q_proj');
      const maxDiff = (base: Float64Array) => Math.max(...merged.map((v, i) => Math.abs(v - (base[i]! + delta[i]!))));
      const deltaNorm = Math.max(...delta.map(Math.abs));
      expect(deltaNorm).toBeGreaterThan(1e-4); // training moved the adapter
      expect(maxDiff(fp)).toBeLessThan(1e-6); // one f32 rounding
      expect(maxDiff(int4q)).toBeGreaterThan(1e-3); // the int4 base differs by its quantization error
    } finally {
      trainer.release();
      lora.release();
      model.release();
      releaseWeights(loaded.weights);
    }
  });
});
