// Prefill, decode and a LoRA step for the real small models people load (random weights with the
// exact shapes of the presets, src/model/presets.ts), on the adapter at hand:
//   family.<preset>.prefill     tokens/s of appendTokens over a `--prompt-tokens` prompt, batch 1
//   family.<preset>.decode      tokens/s of greedy KV-cache decoding (GPU argmax), `--decode-tokens`
//   family.<preset>.lora-step   tokens/s of a LoRA r16 (all seven projections) forward + backward,
//                               batch 1 × `--seq` tokens; the shape gives GFLOP/s of the work done
// Presets: SmolLM2-135M-Instruct (Llama architecture, tied, vocab 49,152) and Qwen2.5-0.5B-Instruct
// (q/k/v biases, 14/2 heads, vocab 151,936). No peer: the Llama-3.2-1B step of model-step.ts and
// the demo decode of decode.ts are the references for the same adapter.
import { createTrainWorkspace } from '../src/model/activations';
import { backward, countTargets } from '../src/model/backward';
import { createDecoderModel } from '../src/model/decoder';
import { forward, readLogp } from '../src/model/forward';
import { generate } from '../src/model/generate';
import { setBatchInputs } from '../src/model/inputs';
import { appendTokens, createKvCache } from '../src/model/kv-cache';
import { createLoraAdapters, type LoraConfig } from '../src/model/lora';
import { presetById, presetModelConfig } from '../src/model/presets';
import { seededRandom, uploadRandomWeights } from '../src/model/random';
import { releaseWeights } from '../src/model/weights';
import { gflops, median, result, type BenchContext, type Benchmark, type Result } from './harness';
import { stepFlops } from './model-step';

const SEED = 20251206;
const LORA: LoraConfig = { rank: 16, alpha: 32 };
export const FAMILY_BENCH_PRESETS = ['smollm2-135m', 'qwen2.5-0.5b'] as const;

async function timed(ctx: BenchContext, f: () => Promise<void>): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < ctx.options.warmup + Math.max(1, ctx.options.samples); i++) {
    await ctx.gpu.flush();
    const t0 = performance.now();
    await f();
    await ctx.gpu.flush();
    if (i >= ctx.options.warmup) out.push(performance.now() - t0);
  }
  return median(out);
}

export const familiesBench: Benchmark = {
  name: 'families',
  description: 'prefill, greedy decode and a LoRA r16 step for the SmolLM2-135M and Qwen2.5-0.5B shapes (random bf16 weights)',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const results: Result[] = [];
    for (const id of FAMILY_BENCH_PRESETS) {
      const preset = presetById(id)!;
      const config = presetModelConfig(preset);
      const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
      const weights = await uploadRandomWeights(gpu, config, 'bf16', SEED, { maxChunkBytes: limit });
      const model = createDecoderModel(gpu, weights);
      const next = seededRandom(SEED);
      const P = options.promptTokens;
      const N = Math.max(2, options.decodeTokens);
      const T = options.seq;
      const promptIds = Array.from({ length: P }, () => Math.floor(next() * config.vocabSize));
      const desc = `${preset.repo} shapes (${config.family}, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize.toLocaleString('en-US')}) bf16`;
      try {
        const prefillMs = await timed(ctx, async () => {
          const cache = createKvCache(model, { batchSize: 1, capacity: P + 1 });
          try {
            appendTokens(model, cache, { ids: promptIds, tokens: P });
            await gpu.flush();
          } finally {
            cache.release();
          }
        });
        ctx.log(`${id}: prefill ${P} tokens ${prefillMs.toFixed(0)} ms`);
        let perToken = 0;
        await timed(ctx, async () => {
          const at: number[] = [];
          await generate(model, { promptIds, maxNewTokens: N, sampling: { temperature: 0 } }, () => void at.push(performance.now()));
          perToken = (at.at(-1)! - at[0]!) / (at.length - 1);
        });
        ctx.log(`${id}: decode ${perToken.toFixed(0)} ms/token`);

        const lora = createLoraAdapters(gpu, config, LORA, { seed: SEED });
        const ws = createTrainWorkspace(model, { batchSize: 1, seqLen: T, lora: LORA });
        try {
          const ids = Int32Array.from({ length: T }, () => Math.floor(next() * config.vocabSize));
          const targets = Int32Array.from({ length: T }, (_, i) => (i + 1 < T ? ids[i + 1]! : -100));
          setBatchInputs(gpu, ws, { ids, mask: new Int32Array(T).fill(1), targets });
          const stepMs = await timed(ctx, async () => {
            forward(model, ws, { lora });
            backward(model, ws, { lora, scale: 1 / countTargets(targets) });
          });
          const logp = await readLogp(model, ws);
          if (logp.some((x) => !Number.isFinite(x) || x > 1e-4)) throw new Error(`families: ${id} step gave log-probs that are not finite and ≤ 0`);
          const flops = stepFlops(config, 1, T, LORA);
          ctx.log(`${id}: LoRA step B1xT${T} ${stepMs.toFixed(0)} ms`);
          results.push(
            result({ name: `family.${id}.prefill`, unit: 'tokens/s', ours: (P * 1000) / prefillMs, shape: `${desc}, B1xT${P}, ${prefillMs.toFixed(0)} ms` }),
            result({ name: `family.${id}.decode`, unit: 'tokens/s', ours: 1000 / perToken, shape: `${desc}, B1, prompt ${P}, ${N} greedy tokens` }),
            result({
              name: `family.${id}.lora-step`,
              unit: 'tokens/s',
              ours: (T * 1000) / stepMs,
              shape: `${desc}, B1xT${T} r16 all7, ${stepMs.toFixed(0)} ms/step, ${gflops(flops, stepMs).toFixed(2)} GFLOP/s`,
            }),
          );
        } finally {
          ws.release();
          lora.release();
        }
      } finally {
        model.release();
        releaseWeights(weights);
        await gpu.flush();
        gpu.pool.trim();
      }
    }
    return results;
  },
};
