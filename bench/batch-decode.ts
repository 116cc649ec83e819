// Batched sampling (src/model/generate.ts generateSamples) as local-source collection runs it, on
// the demo model (bench/demo-model.ts) and random bf16 weights with the SmolLM2-135M-Instruct
// shapes (src/model/presets.ts):
//   decode-batch.<model>.b1    1 prompt × 1 sample
//   decode-batch.<model>.b4    1 prompt × 4 samples (one prefill, its cache rows copied to 4 rows)
//   decode-batch.<model>.b16   4 prompts × 4 samples
// Each: tokens/s of all rows together, (rows × decoded tokens after the first) / the time from the
// first token to the last, sampling with temperature 0.8, top-k 50, top-p 0.95 (host sampler: one
// [rows, V] logits readback a step). Prompts of `--prompt-tokens` (at most 8 on CPU adapters),
// `--decode-tokens` new tokens (at most 4 on CPU adapters, where a SmolLM2 step takes seconds, and
// one timed run per batch there; `--samples` runs, the median, elsewhere).
// Before anything is reported, row (0, 0) of every batch must equal the batch-1 run's ids (the
// seed rule makes a row's draws independent of its batch).
import { createDecoderModel, type DecoderModel } from '../src/model/decoder';
import { generateSamples } from '../src/model/generate';
import { presetById, presetModelConfig } from '../src/model/presets';
import { seededRandom, uploadRandomWeights } from '../src/model/random';
import type { SamplingOptions } from '../src/model/sampling';
import { releaseWeights } from '../src/model/weights';
import { describeDemo, loadDemoModel } from './demo-model';
import { median, result, type BenchContext, type Benchmark, type Result } from './harness';

const SEED = 20250611;
const SAMPLING: SamplingOptions = { temperature: 0.8, topK: 50, topP: 0.95, seed: 3 };
/** [prompts, samples per prompt] of each row. */
export const BATCH_SHAPES = [
  [1, 1],
  [1, 4],
  [4, 4],
] as const;

interface Run {
  ids: number[][];
  tokensPerSecond: number;
}

async function decodeRun(model: DecoderModel, prompts: number[][], n: number, N: number): Promise<Run> {
  const at: number[] = [];
  const out = await generateSamples(model, { prompts, samplesPerPrompt: n, maxNewTokens: N, sampling: SAMPLING }, (_i, _j, _id, step) => {
    at[step] = performance.now();
  });
  const rows = out.flat();
  for (const r of rows) if (r.ids.length !== N) throw new Error(`decode-batch: a row generated ${r.ids.length} tokens, expected ${N}`);
  return { ids: rows.map((r) => r.ids), tokensPerSecond: (rows.length * (N - 1) * 1000) / (at[N - 1]! - at[0]!) };
}

async function benchModel(ctx: BenchContext, name: string, model: DecoderModel, desc: string): Promise<Result[]> {
  const { options, gpu } = ctx;
  const fallback = gpu.adapter.isFallback;
  const P = fallback ? Math.min(8, options.promptTokens) : options.promptTokens;
  const N = Math.max(2, fallback ? Math.min(4, options.decodeTokens) : options.decodeTokens);
  const next = seededRandom(SEED);
  const prompts = Array.from({ length: 4 }, () => Array.from({ length: P }, () => Math.floor(next() * model.config.vocabSize)));
  // Compile the pipelines once, untimed (the timing starts after the first token, so what a larger
  // batch compiles in its prefill stays out of it). CPU adapters: one timed run per batch.
  for (let i = 0; i < options.warmup; i++) await decodeRun(model, prompts.slice(0, 1), 1, 2);
  const samples = fallback ? 1 : Math.max(1, options.samples);
  const results: Result[] = [];
  let single: number[] | null = null;
  for (const [p, n] of BATCH_SHAPES) {
    const runs: Run[] = [];
    for (let i = 0; i < samples; i++) runs.push(await decodeRun(model, prompts.slice(0, p), n, N));
    const rows = p * n;
    single ??= runs[0]!.ids[0]!;
    for (const r of runs)
      if (r.ids[0]!.join() !== single.join()) throw new Error(`decode-batch: ${name} row (0, 0) at batch ${rows} drew ${r.ids[0]!.join(',')}, alone ${single.join(',')}`);
    const tps = median(runs.map((r) => r.tokensPerSecond));
    ctx.log(`${name} batch ${rows}: ${tps.toFixed(2)} tokens/s`);
    results.push(
      result({
        name: `decode-batch.${name}.b${rows}`,
        unit: 'tokens/s',
        ours: tps,
        shape: `${desc}, ${p} prompt${p > 1 ? 's' : ''} × ${n} sample${n > 1 ? 's' : ''} of ${P} tokens (${rows} row${rows > 1 ? 's' : ''}), ${N} new tokens each, T 0.8 top-k 50 top-p 0.95`,
      }),
    );
  }
  return results;
}

export const batchDecodeBench: Benchmark = {
  name: 'decode-batch',
  description: 'batched sampling (generateSamples: shared prefill, rows decoding together) tokens/s at batch 1, 4 and 16 on the demo model and the SmolLM2-135M shapes',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu } = ctx;
    const results: Result[] = [];
    const demo = await loadDemoModel(gpu);
    try {
      results.push(...(await benchModel(ctx, 'demo', demo.model, `${describeDemo(demo)} bf16`)));
    } finally {
      demo.release();
      await gpu.flush();
    }
    const preset = presetById('smollm2-135m')!;
    const config = presetModelConfig(preset);
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const weights = await uploadRandomWeights(gpu, config, 'bf16', SEED, { maxChunkBytes: limit });
    const model = createDecoderModel(gpu, weights);
    try {
      const desc = `${preset.repo} shapes (${config.numLayers} layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize.toLocaleString('en-US')}) bf16`;
      results.push(...(await benchModel(ctx, 'smollm2-135m', model, desc)));
    } finally {
      model.release();
      releaseWeights(weights);
      await gpu.flush();
      gpu.pool.trim();
    }
    return results;
  },
};
