// Step accounting: what one training step and one decoded token cost in GPU work and round
// trips. None of these rows depends on the adapter's speed (a CPU adapter runs the same
// dispatches), so they hold for any GPU; all are counted on the real code paths.
//   step.demo.sft.dispatches        compute dispatches per SFT optimizer step (src/train/trainer.ts:
//                                   forward, loss, backward, gradient norm, AdamW), demo model,
//                                   B1 x `--seq` tokens, LoRA r16 on all seven projections
//   step.demo.sft.submits           queue submits per step
//   step.demo.sft.readbacks         buffers mapped back to the host per step (loss, norms)
//   step.demo.sft.readback-bytes    bytes those readbacks copy
//   decode.demo.greedy.dispatches   dispatches per decoded token (greedy, GPU argmax)
//   decode.demo.weight-bytes        bytes of weights one decoded token reads: every layer weight and
//                                   the final norm once, the lm_head in full, one embedding row (a
//                                   tied embedding is read in full as the lm_head)
//   step.<model>.flops-over-model   a checkpointed LoRA step's executed FLOPs (`stepFlops`,
//                                   bench/model-step.ts) over the model's FLOPs (`modelFlops`
//                                   below: the same step without the layers' recomputation and
//                                   with the lm_head once forward, once for its input gradient),
//                                   for the Llama-3.2 presets at T 512; a formula of the step's
//                                   structure, no GPU work
// All rows: unit count or bytes, no peer.
import { CommandBatch } from '../src/gpu/batch';
import type { GpuContext } from '../src/gpu/context';
import type { Tensor } from '../src/gpu/tensor';
import { LLAMA_3_2_PRESETS, type ModelConfig } from '../src/model/config';
import { generate } from '../src/model/generate';
import { createLoraAdapters, resolveLoraConfig, targetDims, type LoraConfig } from '../src/model/lora';
import { seededRandom } from '../src/model/random';
import type { ModelWeights } from '../src/model/weights';
import { Trainer, type SftTask } from '../src/train/trainer';
import { describeDemo, loadDemoModel } from './demo-model';
import { result, type BenchContext, type Benchmark, type Result } from './harness';
import { stepFlops } from './model-step';

const SEED = 20250105;
const LORA = { rank: 16, alpha: 32 } satisfies LoraConfig;
const FLOPS_SEQ = 512;

export interface GpuWork {
  dispatches: number;
  submits: number;
  readbacks: number;
  readBytes: number;
}

/** Counts dispatches, queue submits and readbacks (count and bytes) while `f` runs; `mark()` reads the counts so far. */
export async function countGpuWork<T>(gpu: GpuContext, f: (mark: () => GpuWork) => Promise<T>): Promise<T> {
  const queue = gpu.device.queue;
  const submit = queue.submit.bind(queue);
  const proto = CommandBatch.prototype;
  const dispatch = proto.dispatch;
  const copy = proto.copyToReadable;
  const c: GpuWork = { dispatches: 0, submits: 0, readbacks: 0, readBytes: 0 };
  queue.submit = (cbs: Iterable<GPUCommandBuffer>) => {
    c.submits++;
    submit(cbs);
  };
  proto.dispatch = function (this: CommandBatch, d) {
    const before = this.dispatches;
    dispatch.call(this, d);
    c.dispatches += this.dispatches - before; // empty grids are skipped by dispatch itself
  };
  proto.copyToReadable = function (this: CommandBatch, src: GPUBuffer, offset: number, size: number) {
    c.readbacks++;
    c.readBytes += size;
    return copy.call(this, src, offset, size);
  };
  try {
    return await f(() => ({ ...c }));
  } finally {
    queue.submit = submit;
    proto.dispatch = dispatch;
    proto.copyToReadable = copy;
  }
}

/** Bytes of weights one decoded token reads (see the header). */
export function weightBytesPerToken(w: ModelWeights): number {
  const c = w.config;
  const bytes = (t: Tensor) => t.byteLength;
  let n = bytes(w.finalNorm);
  for (const l of w.layers) for (const t of Object.values(l)) n += bytes(t as Tensor);
  for (const ch of w.lmHead.chunks) n += bytes(ch.tensor);
  if (w.lmHead !== w.embed) {
    const table = w.embed.chunks.reduce((s, ch) => s + bytes(ch.tensor), 0);
    n += table / c.vocabSize; // one row
  }
  return n;
}

/**
 * The model's FLOPs of one LoRA step, what `stepFlops` executes minus the waste it names: each
 * layer's forward is computed once (stepFlops: again in the backward, 1 of its 3 projection
 * passes, 1 of its 4.5 attention units and 1 of its 4 LoRA units), and the lm_head once forward and
 * once for its input gradient (stepFlops: three times).
 */
export function modelFlops(c: ModelConfig, B: number, T: number, lora: LoraConfig): number {
  const N = B * T;
  const H = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const proj = 2 * N * (H * qd + 2 * H * kvd + qd * H + 3 * H * c.intermediateSize);
  const attn = 2 * 2 * N * ((T + 1) / 2) * qd;
  const { rank, targets } = resolveLoraConfig(lora);
  const adapters = targets.reduce((s, t) => s + 2 * N * rank * targetDims(c, t).reduce((a, b) => a + b, 0), 0);
  const lmHead = 2 * N * c.vocabSize * H;
  return stepFlops(c, B, T, lora) - c.numLayers * (proj + attn + adapters) - lmHead;
}

export const stepAccountingBench: Benchmark = {
  name: 'step-accounting',
  description: 'dispatches, submits and readbacks per training step and per decoded token, weight bytes per token, executed over model FLOPs (adapter-independent)',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const rows: Result[] = [];
    for (const [name, c] of Object.entries(LLAMA_3_2_PRESETS)) {
      const executed = stepFlops(c, 1, FLOPS_SEQ, LORA);
      const model = modelFlops(c, 1, FLOPS_SEQ, LORA);
      rows.push(
        result({
          name: `step.${name}.flops-over-model`,
          unit: 'count',
          ours: executed / model,
          shape: `B1xT${FLOPS_SEQ} r${LORA.rank} all7: ${(executed / 1e12).toFixed(2)} TFLOP executed, ${(model / 1e12).toFixed(2)} TFLOP without recompute and the extra lm_head pass`,
        }),
      );
    }
    const demo = await loadDemoModel(gpu);
    const { model } = demo;
    const desc = describeDemo(demo);
    try {
      // One SFT step through the trainer (the second: the first compiles pipelines, same counts).
      const T = options.seq;
      const next = seededRandom(SEED);
      const ids = Array.from({ length: T }, () => Math.floor(next() * model.config.vocabSize));
      const task: SftTask = { kind: 'sft', train: [{ inputIds: ids, labels: [...ids], truncated: false }] };
      const lora = createLoraAdapters(gpu, model.config, LORA, { seed: SEED });
      const trainer = new Trainer({ model, lora, task, hyper: { maxSteps: 1_000_000, microBatchSize: 1, gradientAccumulationSteps: 1, scheduler: 'constant', warmupRatio: 0, lr: 1e-4 }, seqLen: T });
      let step: GpuWork;
      try {
        await trainer.step();
        step = await countGpuWork(gpu, async (mark) => {
          const r = await trainer.step();
          if (r.nonFinite || !Number.isFinite(r.metrics.loss)) throw new Error(`step-accounting: non-finite loss ${r.metrics.loss}`);
          await gpu.flush();
          return mark();
        });
      } finally {
        trainer.release();
        lora.release();
      }
      const stepShape = `${desc} bf16, SFT B1xT${T} r${LORA.rank} all7, one optimizer step`;
      rows.push(
        result({ name: 'step.demo.sft.dispatches', unit: 'count', ours: step.dispatches, shape: stepShape }),
        result({ name: 'step.demo.sft.submits', unit: 'count', ours: step.submits, shape: stepShape }),
        result({ name: 'step.demo.sft.readbacks', unit: 'count', ours: step.readbacks, shape: stepShape }),
        result({ name: 'step.demo.sft.readback-bytes', unit: 'bytes', ours: step.readBytes, shape: stepShape }),
      );

      // Decoded tokens: counts between the first token and the last, per token.
      const N = Math.max(3, Math.min(options.decodeTokens, 16));
      const perToken = await countGpuWork(gpu, async (mark) => {
        const at: GpuWork[] = [];
        await generate(model, { promptIds: ids.slice(0, Math.min(8, T)), maxNewTokens: N, sampling: { temperature: 0 } }, () => void at.push(mark()));
        const n = at.length - 1;
        return { dispatches: (at[n]!.dispatches - at[0]!.dispatches) / n, submits: (at[n]!.submits - at[0]!.submits) / n };
      });
      const decodeShape = `${desc} bf16, B1 greedy (GPU argmax), per token after the first`;
      rows.push(
        result({ name: 'decode.demo.greedy.dispatches', unit: 'count', ours: perToken.dispatches, shape: `${decodeShape}, ${perToken.submits} submit(s)` }),
        result({ name: 'decode.demo.weight-bytes', unit: 'bytes', ours: weightBytesPerToken(demo.loaded.weights), shape: `${desc} bf16: layer weights, final norm and lm_head once, one embedding row` }),
      );
      return rows;
    } finally {
      demo.release();
      await gpu.flush();
    }
  },
};
