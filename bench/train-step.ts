// Full training steps through the trainer (src/train/trainer.ts: forward, backward, gradient
// norm, AdamW update), batch 1, `--seq` tokens (8 on CPU fallbacks, 512 on GPUs), LoRA r16
// alpha 32 on all seven projections:
//   train-step.demo                  SFT tokens/s on the demo model (bench/demo-model.ts)
//   train-step.llama-3.2-1b[.L<n>v<V>]  SFT tokens/s on a random model with the exact
//                                    Llama-3.2-1B per-layer shapes, `--peer-layers` n of its 16
//                                    layers and a `--peer-vocab` V vocabulary (defaults: all of it
//                                    on GPUs; 1 layer and V 8192 on CPU fallbacks, where TF.js
//                                    needs minutes for the first step of one layer with the full
//                                    128,256 x 2048 lm_head); ours bf16 weights
//   dpo-step.demo                    DPO pairs/s on the demo model: policy log-probs of chosen
//                                    and rejected (one batch of 2 rows), the sigmoid DPO loss
//                                    against fixed reference log-probs, backward, AdamW
// Peer of the SFT rows: bench/tfjs-llama.ts, the same step written in TF.js (frozen f32
// weights, LoRA variables, tf.train.adam(...).minimize) on the same device. The DPO row has no
// peer. Every step's loss must be finite before a row is reported.
import type { GpuContext } from '../src/gpu/context';
import { LLAMA_3_2_PRESETS, type ModelConfig } from '../src/model/config';
import { createDecoderModel, type DecoderModel } from '../src/model/decoder';
import { createLoraAdapters, type LoraConfig } from '../src/model/lora';
import { seededRandom, uploadRandomWeights } from '../src/model/random';
import { releaseWeights } from '../src/model/weights';
import { Trainer, type DpoTask, type SftTask } from '../src/train/trainer';
import { describeDemo, loadDemoModel } from './demo-model';
import { median, result, type BenchContext, type Benchmark, type Result } from './harness';
import type { TfjsPeer } from './peer-tfjs';
import { createTfLlamaStep } from './tfjs-llama';

const SEED = 20250103;
const LORA = { rank: 16, alpha: 32 } satisfies LoraConfig;
/** Past this, one timed step per side is enough. */
const SLOW_STEP_MS = 30_000;

export function randomIds(n: number, vocab: number, seed: number): number[] {
  const next = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
}

const HYPER = { maxSteps: 1_000_000, microBatchSize: 1, gradientAccumulationSteps: 1, scheduler: 'constant' as const, warmupRatio: 0, lr: 1e-4 };

/** Our trainer on `model` with a fresh adapter; step() runs one optimizer step and returns its loss. */
function ourTrainer(gpu: GpuContext, model: DecoderModel, task: SftTask | DpoTask, seqLen: number) {
  const lora = createLoraAdapters(gpu, model.config, LORA, { seed: SEED });
  const trainer = new Trainer({ model, lora, task, hyper: HYPER, seqLen });
  return {
    async step(): Promise<number> {
      const r = await trainer.step();
      if (r.nonFinite) throw new Error(`train step: non-finite loss/gradients at step ${r.nonFinite.step}`);
      return r.metrics.loss!;
    },
    release() {
      trainer.release();
      lora.release();
    },
  };
}

export interface Side {
  /** One step; its loss. */
  run(): Promise<number>;
}

/** Warm-up, then interleaved timed steps of each side (ms per step, median), one each once slow. */
export async function timeSteps(
  ctx: BenchContext,
  label: string,
  sides: Record<string, Side>,
  { warmup, samples }: { warmup: number; samples: number } = ctx.options,
): Promise<Record<string, { ms: number; loss: number }>> {
  const ms: Record<string, number[]> = {};
  const loss: Record<string, number> = {};
  for (const [k, s] of Object.entries(sides)) {
    ms[k] = [];
    for (let i = 0; i < warmup; i++) {
      const t0 = performance.now();
      loss[k] = await s.run();
      ctx.log(`${label} ${k} warm-up: ${(performance.now() - t0).toFixed(0)} ms, loss ${loss[k]!.toFixed(3)}`);
    }
  }
  for (let i = 0; i < Math.max(1, samples); i++) {
    for (const [k, s] of Object.entries(sides)) {
      const last = ms[k]!.at(-1);
      if (last !== undefined && last > SLOW_STEP_MS) continue;
      const t0 = performance.now();
      loss[k] = await s.run();
      ms[k]!.push(performance.now() - t0);
      ctx.log(`${label} ${k}: ${ms[k]!.at(-1)!.toFixed(0)} ms, loss ${loss[k]!.toFixed(3)}`);
    }
  }
  const out: Record<string, { ms: number; loss: number }> = {};
  for (const k of Object.keys(sides)) {
    if (!Number.isFinite(loss[k])) throw new Error(`${label} ${k}: loss ${loss[k]}`);
    out[k] = { ms: median(ms[k]!), loss: loss[k]! };
  }
  return out;
}

/** Ours and (when available) the TF.js step on one config; tokens/s row. */
async function sftRow(ctx: BenchContext, peer: TfjsPeer | null, model: DecoderModel, name: string, shape: string): Promise<Result> {
  const { gpu, options } = ctx;
  const c = model.config;
  const T = options.seq;
  const ids = randomIds(T, c.vocabSize, SEED);
  const task: SftTask = { kind: 'sft', train: [{ inputIds: ids, labels: [...ids], truncated: false }] };
  const ours = ourTrainer(gpu, model, task, T);
  const sides: Record<string, Side> = { ours: { run: () => ours.step() } };
  let tfStep: ReturnType<typeof createTfLlamaStep> | null = null;
  try {
    if (peer) {
      const targets = Int32Array.from(ids, (_, i) => (i + 1 < T ? ids[i + 1]! : -100));
      tfStep = createTfLlamaStep(peer.tf, c, { batch: 1, seq: T, lora: LORA, seed: SEED, ids: Int32Array.from(ids), targets });
      const s = tfStep;
      sides.peer = {
        async run() {
          s.step();
          await peer.sync();
          return s.lastLoss();
        },
      };
    }
    const t = await timeSteps(ctx, name, sides);
    const tps = (ms: number) => (T * 1000) / ms;
    return result({
      name,
      unit: 'tokens/s',
      ours: tps(t.ours!.ms),
      peer: t.peer ? tps(t.peer.ms) : null,
      peerName: peer ? `${peer.name} ops + tf.train.adam().minimize, f32 weights` : null,
      shape: `${shape}, B1xT${T} r${LORA.rank} all7, ${t.ours!.ms.toFixed(0)} ms/step${t.peer ? ` (peer ${t.peer.ms.toFixed(0)})` : ''}`,
    });
  } finally {
    tfStep?.dispose();
    ours.release();
    await gpu.flush();
  }
}

export const trainStepBench: Benchmark = {
  name: 'train-step',
  description: 'LoRA SFT step (forward, backward, AdamW) on the demo model and on Llama-3.2-1B shapes vs the same step in TF.js',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const peer = await ctx.peer();
    const results: Result[] = [];
    const demo = await loadDemoModel(gpu);
    try {
      results.push(await sftRow(ctx, peer, demo.model, 'train-step.demo', `${describeDemo(demo)} bf16`));
    } finally {
      demo.release();
    }
    await gpu.flush();
    gpu.pool.trim();
    const L = options.peerLayers;
    const V = options.peerVocab;
    const config: ModelConfig = { ...LLAMA_3_2_PRESETS['llama-3.2-1b']!, numLayers: L, vocabSize: V };
    const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
    const weights = await uploadRandomWeights(gpu, config, 'bf16', SEED, { maxChunkBytes: limit });
    const model = createDecoderModel(gpu, weights);
    try {
      const full = L === 16 && V === 128_256;
      const reduced = `${L === 16 ? 'all 16 layers' : `${L} of its 16 layers`}, vocab ${V === 128_256 ? 'full 128256' : `${V} of 128256`}`;
      const name = full ? 'train-step.llama-3.2-1b' : `train-step.llama-3.2-1b.L${L}v${V}`;
      results.push(await sftRow(ctx, peer, model, name, `Llama-3.2-1B shapes${full ? '' : ` reduced: ${reduced} (same per-layer shapes)`}, ours bf16`));
    } finally {
      model.release();
      releaseWeights(weights);
      await gpu.flush();
      gpu.pool.trim();
    }
    return results;
  },
};

export const dpoStepBench: Benchmark = {
  name: 'dpo-step',
  description: 'DPO step (policy log-probs of chosen + rejected, sigmoid DPO loss, backward, AdamW) on the demo model, pairs/s',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const demo = await loadDemoModel(gpu);
    const V = demo.model.config.vocabSize;
    const T = options.seq;
    const p = Math.max(1, T >> 1);
    const pair = {
      prompt: randomIds(p, V, SEED),
      chosen: randomIds(T - p, V, SEED + 1),
      rejected: randomIds(T - p, V, SEED + 2),
      truncated: false,
      reference: { chosen: -50, rejected: -52 },
    };
    const task: DpoTask = { kind: 'dpo', train: [pair], beta: 0.1, lossType: 'sigmoid' };
    const ours = ourTrainer(gpu, demo.model, task, T);
    try {
      const t = await timeSteps(ctx, 'dpo-step.demo', { ours: { run: () => ours.step() } });
      return [
        result({
          name: 'dpo-step.demo',
          unit: 'pairs/s',
          ours: 1000 / t.ours!.ms,
          shape: `${describeDemo(demo)} bf16, 1 pair = 2 rows x T${T} (prompt ${p}), r${LORA.rank} all7, sigmoid beta 0.1, ${t.ours!.ms.toFixed(0)} ms/step`,
        }),
      ];
    } finally {
      ours.release();
      demo.release();
      await gpu.flush();
    }
  },
};
