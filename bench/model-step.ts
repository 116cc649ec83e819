// One LoRA training step of a full-size Llama, and what it takes in memory.
//
//   model-step.<model>            tokens/s of forward + backward (src/model/forward.ts, backward.ts)
//                                 of a RANDOM model with the exact shapes (`--model`, default
//                                 llama-3.2-1b: 16 layers, hidden 2048, 32/8 heads of 64, MLP 8192,
//                                 vocab 128,256, tied, bf16), batch 1, `--seq` tokens (8 on CPU
//                                 fallbacks, 512 on GPUs), LoRA r16 alpha 32 on all seven projections;
//                                 `--warmup` steps, then `--samples` timed ones (median), but only
//                                 one timed step once a step takes over a minute
//   model-step.<model>.gflops     the same step as GFLOP/s of the work it executes (stepFlops)
//   memory-peak.<model>           bytes: ctx.pool.stats().peakBytes over the step (weights, adapter,
//                                 workspace and the step itself), from an emptied pool
//   memory-plan.<model>           bytes: planMemory(...).training for the same settings; the shape
//                                 gives peak / plan (1.0000 when the plan is exact)
//   memory-plan.llama-3.2-{1b,3b}.seq{512,1024,2048}.r16
//                                 bytes: planMemory for batch 1, bf16, LoRA r16 on all projections
//                                 at WebGPU's default 128 MiB binding limit; no GPU work
//
// The weights are drawn by uploadRandomWeights (src/model/random.ts) straight into the GPU, a few
// MiB at a time: 1.24B bf16 parameters take a few seconds and never sit in JS memory. The step is
// checked before it is reported: finite log-probs ≤ 0 and finite, nonzero LoRA gradients.
// There is no peer.
import { LLAMA_3_2_PRESETS, type ModelConfig } from '../src/model/config';
import { createTrainWorkspace } from '../src/model/activations';
import { backward, countTargets } from '../src/model/backward';
import { forward, readLogp } from '../src/model/forward';
import { setBatchInputs } from '../src/model/inputs';
import { createDecoderModel } from '../src/model/decoder';
import { createLoraAdapters, LORA_TARGETS, resolveLoraConfig, targetDims, type LoraConfig } from '../src/model/lora';
import { formatBytes, planMemory } from '../src/model/memory-plan';
import { seededRandom, tinyConfig, uploadRandomWeights } from '../src/model/random';
import { releaseWeights } from '../src/model/weights';
import { gflops, median, result, type BenchContext, type Benchmark, type Result } from './harness';

const SEED = 20250101;
const LORA: LoraConfig = { rank: 16, alpha: 32 };
const PLAN_SEQS = [512, 1024, 2048];
/** Past this, one timed step is enough (SwiftShader: ~1–2 min per 1B step; keeps the run < 10 min). */
const SLOW_STEP_MS = 60_000;

/** Models the step can run: the Llama-3.2 presets, and a toy for the test of this file. */
export const STEP_MODELS: Record<string, ModelConfig> = {
  ...LLAMA_3_2_PRESETS,
  tiny: tinyConfig({ hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 512, tieWordEmbeddings: true, llama3Rope: true }),
};

/**
 * FLOPs a checkpointed LoRA step executes for B sequences of T tokens (multiply-add = 2):
 * the base projections and lm_head three times (forward, recompute, input gradient; the frozen
 * weights get no gradient), causal attention (T/2 keys per query on average) about 4.5 times
 * its forward (forward, recompute, backward ≈ 2.5×), the LoRA products four times. With the
 * memory plan's `keep` choices (planTrainingStep): kept activations drop the layers' recompute
 * (projections 2×, attention 3.5×, LoRA 3×), kept logits the lm_head's (2×).
 */
export function stepFlops(c: ModelConfig, B: number, T: number, lora: LoraConfig, keep: { keepActivations?: boolean; keepLogits?: boolean } = {}): number {
  const N = B * T;
  const H = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const proj = 2 * N * (H * qd + 2 * H * kvd + qd * H + 3 * H * I);
  const attn = 2 * 2 * N * ((T + 1) / 2) * qd;
  const { rank, targets } = resolveLoraConfig(lora);
  const adapters = targets.reduce((s, t) => s + 2 * N * rank * targetDims(c, t).reduce((a, b) => a + b, 0), 0);
  const lmHead = 2 * N * c.vocabSize * H;
  const r = keep.keepActivations ? 0 : 1;
  return c.numLayers * ((2 + r) * proj + (3.5 + r) * attn + (3 + r) * adapters) + (keep.keepLogits ? 2 : 3) * lmHead;
}

/** The memory-plan rows of the Llama-3.2 presets at training lengths (no GPU). */
export function planRows(): Result[] {
  const rows: Result[] = [];
  for (const [name, config] of Object.entries(LLAMA_3_2_PRESETS))
    for (const seq of PLAN_SEQS) {
      const plan = planMemory(config, { batch: 1, seq, loraRank: LORA.rank, weightDType: 'bf16' });
      const b = plan.bytes;
      const acts = b.savedLayerInputs + b.layerActivations + b.layerGradients + b.lmHead;
      rows.push(
        result({
          name: `memory-plan.${name}.seq${seq}.r${LORA.rank}`,
          unit: 'bytes',
          ours: plan.training,
          shape: `B1xT${seq} bf16 r${LORA.rank} all7: ${formatBytes(plan.training)} (weights ${formatBytes(b.weights)}, lora+grads+moments ${formatBytes(b.adapters + b.adapterGrads + b.optimizerMoments)}, activations ${formatBytes(acts)})`,
        }),
      );
    }
  return rows;
}

export const modelStepBench: Benchmark = {
  name: 'model-step',
  description: 'LoRA r16 forward + backward of a random Llama-3.2-1B (bf16, batch 1) in tokens/s, its memory peak vs the plan',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const results = planRows();
    const modelName = options.model;
    const config = STEP_MODELS[modelName];
    if (!config) throw new Error(`model-step: unknown model "${modelName}" (known: ${Object.keys(STEP_MODELS).join(', ')})`);
    const B = 1;
    const T = options.seq;
    const dtype = 'bf16';
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);

    // Measure from an empty pool: what other benchmarks left cached is destroyed first.
    await gpu.flush();
    gpu.pool.trim();
    const before = gpu.pool.stats().allocatedBytes;
    let t0 = performance.now();
    const weights = await uploadRandomWeights(gpu, config, dtype, SEED, { maxChunkBytes: limit });
    const model = createDecoderModel(gpu, weights);
    const lora = createLoraAdapters(gpu, config, LORA, { seed: SEED });
    const ws = createTrainWorkspace(model, { batchSize: B, seqLen: T, lora: LORA });
    await gpu.flush();
    ctx.log(`${modelName}: random ${dtype} weights (${formatBytes(gpu.pool.stats().allocatedBytes - before)} with adapter and workspace) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    try {
      const next = seededRandom(SEED);
      const ids = Int32Array.from({ length: B * T }, () => Math.floor(next() * config.vocabSize));
      const targets = Int32Array.from({ length: B * T }, (_, i) => ((i + 1) % T ? ids[i + 1]! : -100));
      setBatchInputs(gpu, ws, { ids, mask: new Int32Array(B * T).fill(1), targets });
      const scale = 1 / countTargets(targets);

      gpu.pool.resetPeak();
      const steps = { fwd: [] as number[], bwd: [] as number[], total: [] as number[] };
      const n = options.warmup + Math.max(1, options.samples);
      for (let i = 0; i < n; i++) {
        if (steps.total.length && steps.total[steps.total.length - 1]! > SLOW_STEP_MS) {
          ctx.log(`${modelName}: a step takes over ${SLOW_STEP_MS / 1000} s, so one timed step it is`);
          break;
        }
        t0 = performance.now();
        forward(model, ws, { lora });
        await gpu.flush();
        const t1 = performance.now();
        backward(model, ws, { lora, scale });
        await gpu.flush();
        const t2 = performance.now();
        const timed = i >= options.warmup;
        ctx.log(`${modelName} B${B}xT${T} step ${i + 1}/${n}${timed ? '' : ' (warm-up)'}: forward ${(t1 - t0).toFixed(0)} ms, backward ${(t2 - t1).toFixed(0)} ms`);
        if (timed) {
          steps.fwd.push(t1 - t0);
          steps.bwd.push(t2 - t1);
          steps.total.push(t2 - t0);
        }
      }
      const peak = gpu.pool.stats().peakBytes - before;

      // The step computed something sane.
      const logp = await readLogp(model, ws);
      const bad = logp.findIndex((x, i) => !Number.isFinite(x) || x > 1e-4 || (targets[i] === -100 && x !== 0));
      if (bad >= 0) throw new Error(`model-step: logp[${bad}] = ${logp[bad]} (target ${targets[bad]})`);
      const L = config.numLayers;
      for (const [l, t] of [
        [0, 'q_proj'],
        [L - 1, 'down_proj'],
      ] as const) {
        const g = await gpu.readF32(lora.layers[l]![t]!.dB!);
        const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
        if (!Number.isFinite(norm) || !(norm > 0)) throw new Error(`model-step: layer ${l} ${t} lora_B gradient norm ${norm}`);
      }
      const loss = -logp.reduce((s, x) => s + x, 0) * scale;

      const ms = median(steps.total);
      const flops = stepFlops(config, B, T, LORA);
      ctx.log(
        `${modelName} B${B}xT${T}: ${ms.toFixed(0)} ms/step (forward ${median(steps.fwd).toFixed(0)}, backward ${median(steps.bwd).toFixed(0)}), ` +
          `${((B * T * 1000) / ms).toFixed(2)} tokens/s, ${gflops(flops, ms).toFixed(3)} GFLOP/s of ${(flops / 1e9).toFixed(1)} GFLOP, loss ${loss.toFixed(3)}`,
      );
      const plan = planMemory(config, { batch: B, seq: T, loraRank: LORA.rank, weightDType: dtype, maxBindingBytes: limit });
      const ratio = (peak / plan.training).toFixed(4);
      const shape = `B${B}xT${T} ${dtype} r${LORA.rank} all${LORA_TARGETS.length}`;
      results.push(
        result({ name: `model-step.${modelName}`, unit: 'tokens/s', ours: (B * T * 1000) / ms, shape: `${shape}, ${ms.toFixed(0)} ms/step` }),
        result({ name: `model-step.${modelName}.gflops`, unit: 'GFLOP/s', ours: gflops(flops, ms), shape: `${shape}, ${(flops / 1e9).toFixed(1)} GFLOP/step` }),
        result({ name: `memory-peak.${modelName}`, unit: 'bytes', ours: peak, shape: `${shape}: ${formatBytes(peak)}, peak/plan ${ratio}` }),
        result({ name: `memory-plan.${modelName}`, unit: 'bytes', ours: plan.training, shape: `${shape}: ${formatBytes(plan.training)}, peak/plan ${ratio}` }),
      );
      return results;
    } finally {
      ws.release();
      lora.release();
      model.release();
      releaseWeights(weights);
      await gpu.flush();
      gpu.pool.trim();
    }
  },
};
