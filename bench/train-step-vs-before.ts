// Issue 15's step target, measured: one LoRA SFT optimizer step through the trainer
// (src/train/trainer.ts) as the code takes it now beside the same step as the code took it
// before issue 15, on the same adapter, the same random model and the same data, in one run.
//   train-step-vs-before.llama-3.2-1b[.L<n>v<V>]   tokens/s, ours = now, peer = before
//   ….{dispatches,bind-groups,submits,readbacks}     per optimizer step (count; the step after
//                                                   the first, counted by each context's counters)
//   ….matmul-flops-over-model                        executed matmul FLOPs of a step (counted) over
//                                                   the model's (`modelMatmulFlops`): the recompute
//   ….memory-peak                                    bytes: each context's pool peak over weights,
//                                                   adapter, workspace and steps (the price of keeping)
// The model has the exact Llama-3.2-1B per-layer shapes with `--peer-layers` of its layers and a
// `--peer-vocab` vocabulary (all 16 / 128,256 on GPUs, 1 / 8192 on CPU fallbacks), bf16 weights,
// LoRA r16 alpha 32 on all seven projections, `--step-batch` rows (4 on GPUs, 1 on fallbacks) of
// `--seq` tokens (512 / 8). Each side has its own GpuContext on the same adapter, because proofs
// are per context (src/engine/proven.ts):
//   now     the self-test first (proveKernelPaths, exactly as model loading does), so every path it
//           proves on this device is taken (regtile / narrow / split-K matmul, flash attention, …);
//           the memory plan with `--gpu-memory` GiB stated (planTrainingStep keeps the lm_head
//           logits and the layers' activations that fit; default 16 GiB on GPUs)
//   before  nothing proven, so the kernel paths of before issue 15 (matmul `tiled`, attention
//           `tiled` forward and dq on GPUs); the checkpointed plan (memoryBudgetBytes null: every
//           layer recomputed in the backward, the lm_head logits computed three times); a bind
//           group created per dispatch (its context's bind-group cache holds none)
// What cannot be undone from here, the same on both sides: SFT's one readback per step (before
// issue 15 the loss came back before the backward was encoded: 3 readbacks and a stalled queue
// per step), the watchdog bounds (lm_head chunks of at most 2^32 FLOPs: at B4xT512 512 vocab rows
// where before had 8192; large matmuls cut into several dispatches). The first makes `before`
// faster than it was (the ratio is conservative); the second adds dispatches to both.
// The step-1 losses of the two sides (same weights, same data, a fresh adapter) must agree within
// LOSS_REL_TOL, and every loss must be finite, before any row is reported.
import { proveKernelPaths } from '../src/engine/selftest';
import { defaultDqPath, defaultForwardPath } from '../src/engine/attention';
import { defaultMatmulPath } from '../src/engine/matmul';
import { isProven, provenPaths } from '../src/engine/proven';
import { BindGroupCache } from '../src/gpu/batch';
import type { GpuContext } from '../src/gpu/context';
import { createNodeContext } from '../src/gpu/node';
import { LLAMA_3_2_PRESETS, type ModelConfig } from '../src/model/config';
import { createDecoderModel } from '../src/model/decoder';
import { createLoraAdapters, type LoraConfig } from '../src/model/lora';
import { formatBytes, type TrainingStepPlan } from '../src/model/memory-plan';
import { uploadRandomWeights } from '../src/model/random';
import { releaseWeights } from '../src/model/weights';
import { Trainer, type SftTask } from '../src/train/trainer';
import { result, type BenchContext, type Benchmark, type Result } from './harness';
import { countGpuWork, modelMatmulFlops, type GpuWork } from './step-accounting';
import { randomIds, timeSteps } from './train-step';

const SEED = 20250115;
const LORA = { rank: 16, alpha: 32 } satisfies LoraConfig;
/**
 * Step-1 losses of now and before may differ by float rounding only: the kept activations and
 * logits are bit-identical to the recomputed ones, and the paths each side takes differ in
 * summation order (and in f16 inputs where the f16 path is proven), ~1e-6 of a loss near ln V.
 * A wrong kernel moves a random model's loss by far more than this.
 */
export const LOSS_REL_TOL = 1e-3;

interface StepSide {
  gpu: GpuContext;
  trainer: Trainer;
  /** What the kernel defaults are on this context for the step's main products. */
  paths: string;
  step(): Promise<number>;
  release(): void;
}

/** The default paths a step of this shape takes on `gpu` (the projections, LoRA's x·Aᵀ, attention). */
function describePaths(gpu: GpuContext, c: ModelConfig, N: number, T: number): string {
  const proven = (p: string) => isProven(gpu, p);
  const fb = gpu.adapter.isFallback;
  const proj = defaultMatmulPath(fb, 'nt', { m: N, n: c.hiddenSize, k: c.hiddenSize }, 0, 'bf16', proven);
  const loraA = defaultMatmulPath(fb, 'nt', { m: N, n: LORA.rank, k: c.hiddenSize }, 0, 'f32', proven);
  const fwd = defaultForwardPath(gpu, c.headDim, T);
  const dq = defaultDqPath(gpu, c.headDim);
  const list = provenPaths(gpu);
  return `matmul ${proj} (x·Aᵀ ${loraA}), attention ${fwd}/${dq}; proven: ${list.length ? list.join(' ') : 'none'}`;
}

async function createSide(
  gpu: GpuContext,
  config: ModelConfig,
  task: SftTask,
  o: { rows: number; seq: number; memoryBudgetBytes: number | null | undefined; maxChunkBytes: number },
): Promise<StepSide> {
  const weights = await uploadRandomWeights(gpu, config, 'bf16', SEED, { maxChunkBytes: o.maxChunkBytes });
  const model = createDecoderModel(gpu, weights);
  const lora = createLoraAdapters(gpu, config, LORA, { seed: SEED });
  const hyper = { maxSteps: 1_000_000, microBatchSize: o.rows, gradientAccumulationSteps: 1, scheduler: 'constant' as const, warmupRatio: 0, lr: 1e-4 };
  const trainer = new Trainer({
    model,
    lora,
    task,
    hyper,
    seqLen: o.seq,
    ...(o.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: o.memoryBudgetBytes } : {}),
  });
  return {
    gpu,
    trainer,
    paths: describePaths(gpu, config, o.rows * o.seq, o.seq),
    async step() {
      const r = await trainer.step();
      if (r.nonFinite) throw new Error(`train step: non-finite loss/gradients at step ${r.nonFinite.step} (${r.nonFinite.tensors.slice(0, 3).join(', ')})`);
      const loss = r.metrics.loss!;
      if (!Number.isFinite(loss)) throw new Error(`train step: loss ${loss}`);
      return loss;
    },
    release() {
      trainer.release();
      lora.release();
      model.release();
      releaseWeights(weights);
    },
  };
}

/** What a step plan keeps, in a few words, and its bytes. */
function kept(p: TrainingStepPlan): string {
  const what = p.keepLogits && p.keepActivations ? 'logits + activations kept' : p.keepLogits ? 'logits kept, layers recomputed' : p.keepActivations ? 'activations kept, lm_head recomputed' : 'checkpointed (layers + lm_head recomputed)';
  return `${what}, plan ${formatBytes(p.plan.training)}`;
}

/** One step's counts on the side's own context (after its first step compiled the pipelines). */
function countStep(side: StepSide): Promise<{ work: GpuWork; loss: number }> {
  return countGpuWork(side.gpu, async (mark) => {
    const loss = await side.step();
    await side.gpu.flush();
    return { work: mark(), loss };
  });
}

export const trainStepVsBeforeBench: Benchmark = {
  name: 'train-step-vs-before',
  description: 'LoRA SFT step on Llama-3.2-1B shapes as the code takes it now (proven kernel paths, the memory plan keeping what fits) vs before issue 15 (checkpointed, unproven paths), same adapter',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { options } = ctx;
    const L = options.peerLayers;
    const V = options.peerVocab;
    const B = options.stepBatch;
    const T = options.seq;
    const config: ModelConfig = { ...LLAMA_3_2_PRESETS['llama-3.2-1b']!, numLayers: L, vocabSize: V };
    const full = L === 16 && V === 128_256;
    const name = full ? 'train-step-vs-before.llama-3.2-1b' : `train-step-vs-before.llama-3.2-1b.L${L}v${V}`;
    const model = `Llama-3.2-1B shapes${full ? '' : ` (${L} of 16 layers, vocab ${V} of 128256)`} bf16, B${B}xT${T} r${LORA.rank} all7`;
    const budget = options.gpuMemoryGiB === null ? undefined : options.gpuMemoryGiB * 2 ** 30;

    const train = Array.from({ length: B }, (_, r) => {
      const ids = randomIds(T, V, SEED + r);
      return { inputIds: ids, labels: [...ids], truncated: false };
    });
    const task: SftTask = { kind: 'sft', train };

    const contexts: GpuContext[] = [];
    const sides: StepSide[] = [];
    try {
      const before = await createNodeContext();
      contexts.push(before);
      const now = await createNodeContext();
      contexts.push(now);
      if (before.adapter.description !== now.adapter.description)
        throw new Error(`train-step-vs-before: the two contexts got different adapters (${before.adapter.description} / ${now.adapter.description})`);
      // Before issue 15 every dispatch created its bind group: a cache that keeps none.
      (before as { bindGroups: BindGroupCache }).bindGroups = new BindGroupCache(0);
      // Now: the self-test's proofs first, as model loading does; its buffers are not the step's.
      const proofs = await proveKernelPaths(now);
      const failed = proofs.filter((r) => !r.pass);
      if (failed.length) ctx.log(`train-step-vs-before: self-test cases failed on this device (their paths stay off): ${failed.map((r) => r.name).join(', ')}`);
      await now.flush();
      now.pool.trim();
      now.pool.resetPeak();

      const maxChunkBytes = Math.min(...contexts.flatMap((g) => [g.limits.maxStorageBufferBindingSize, g.limits.maxBufferSize]));
      const b = await createSide(before, config, task, { rows: B, seq: T, memoryBudgetBytes: null, maxChunkBytes });
      sides.push(b);
      const n = await createSide(now, config, task, { rows: B, seq: T, memoryBudgetBytes: budget, maxChunkBytes });
      sides.push(n);
      const plans = { now: n.trainer.stepPlan, before: b.trainer.stepPlan };

      // Step 1 (compiles the pipelines): same weights, same data, a fresh adapter on each side.
      const first = { before: await b.step(), now: await n.step() };
      const rel = Math.abs(first.now - first.before) / Math.max(1, Math.abs(first.before));
      ctx.log(`${name} step 1 loss: now ${first.now}, before ${first.before} (rel ${rel.toExponential(2)})`);
      if (!(rel <= LOSS_REL_TOL))
        throw new Error(`${name}: step-1 loss now ${first.now} vs before ${first.before} differ by ${rel.toExponential(2)} (> ${LOSS_REL_TOL}): the two steps do not compute the same thing`);
      // Step 2, counted on each context.
      const counted = { before: await countStep(b), now: await countStep(n) };
      const t = await timeSteps(ctx, name, { before: { run: () => b.step() }, now: { run: () => n.step() } }, { warmup: Math.max(0, options.warmup - 2), samples: options.samples });

      const peakNow = now.pool.stats().peakBytes;
      const peakBefore = before.pool.stats().peakBytes;
      const matmulModel = modelMatmulFlops(config, B, T, LORA);
      const peerName = 'before issue 15: checkpointed (layers + lm_head recomputed), unproven kernel paths, a bind group per dispatch';
      const tps = (ms: number) => (B * T * 1000) / ms;
      const budgetNote = budget === undefined ? 'the default budget' : `${options.gpuMemoryGiB} GiB stated`;
      const note =
        `${model}, ${t.now!.ms.toFixed(0)} ms/step (before ${t.before!.ms.toFixed(0)}); ` +
        `now: ${kept(plans.now)} (${budgetNote}), ${n.paths}; before: ${kept(plans.before)}, ${b.paths}; ` +
        `step-1 loss ${first.now.toFixed(5)} vs ${first.before.toFixed(5)} (rel ${rel.toExponential(1)}); ` +
        `both: one SFT readback per step and watchdog-bounded lm_head chunks (before had 3 readbacks: ratio conservative)`;
      // A count now at 0 (bind groups: all reused) has no ratio: before's count goes in the shape.
      const count = (k: keyof GpuWork, label: string) => {
        const ours = counted.now.work[k];
        const peer = counted.before.work[k];
        const shape = `${model}, per optimizer step (the second)`;
        return ours > 0
          ? result({ name: `${name}.${label}`, unit: 'count', ours, peer, peerName, shape })
          : result({ name: `${name}.${label}`, unit: 'count', ours, shape: `${shape}; before issue 15: ${peer}` });
      };
      const w = counted;
      return [
        result({ name, unit: 'tokens/s', ours: tps(t.now!.ms), peer: tps(t.before!.ms), peerName, shape: note }),
        count('dispatches', 'dispatches'),
        count('bindGroups', 'bind-groups'),
        count('submits', 'submits'),
        count('readbacks', 'readbacks'),
        result({
          name: `${name}.matmul-flops-over-model`,
          unit: 'count',
          ours: w.now.work.matmulFlops / matmulModel,
          peer: w.before.work.matmulFlops / matmulModel,
          peerName,
          shape: `${model}: ${(w.now.work.matmulFlops / 1e9).toFixed(2)} GFLOP executed now, ${(w.before.work.matmulFlops / 1e9).toFixed(2)} before, ${(matmulModel / 1e9).toFixed(2)} model`,
        }),
        result({
          name: `${name}.memory-peak`,
          unit: 'bytes',
          ours: peakNow,
          peer: peakBefore,
          peerName,
          shape: `${model}: pool peak over weights, adapter, workspace and steps, ${formatBytes(peakNow)} now (plan ${formatBytes(plans.now.plan.training)}), ${formatBytes(peakBefore)} before (plan ${formatBytes(plans.before.plan.training)}); the price of keeping`,
        }),
      ];
    } finally {
      for (const s of sides) s.release();
      for (const g of contexts) {
        await g.flush().catch(() => undefined);
        g.destroy();
      }
    }
  },
};
