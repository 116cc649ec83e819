// The built-in demo model (src/model/demo.ts: Llama-3 architecture, hidden 64, 2 layers, 4/2
// heads of 16, MLP 176, the full 128,256-token vocabulary, tied, bf16) for the benchmarks, loaded
// through the real loader (src/model/load.ts) from its files held in memory.
import type { GpuContext } from '../src/gpu/context';
import { generateDemoModel } from '../src/model/demo';
import { createDecoderModel, type DecoderModel } from '../src/model/decoder';
import { loadModel, type LoadedModel } from '../src/model/load';
import { blobsSource } from '../src/model/source';
import { releaseWeights } from '../src/model/weights';

/** The demo model's files (no tokenizer: the benchmarks feed ids). */
export function demoFiles(): Map<string, Uint8Array> {
  return generateDemoModel(null);
}

export interface DemoModel {
  loaded: LoadedModel;
  model: DecoderModel;
  release(): void;
}

export async function loadDemoModel(gpu: GpuContext): Promise<DemoModel> {
  const files = new Map([...demoFiles()].map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])] as const));
  const loaded = await loadModel(gpu, blobsSource('demo model', files));
  const model = createDecoderModel(gpu, loaded.weights);
  return {
    loaded,
    model,
    release() {
      model.release();
      releaseWeights(loaded.weights);
    },
  };
}

/** A short description of a config for shape strings. */
export function describeDemo(m: DemoModel): string {
  const c = m.model.config;
  return `demo h${c.hiddenSize} L${c.numLayers} ${c.numHeads}/${c.numKvHeads}x${c.headDim} mlp${c.intermediateSize} V${c.vocabSize}`;
}
