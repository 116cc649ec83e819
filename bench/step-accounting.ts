// Step accounting: what one training step and one decoded token cost in GPU work and round
// trips. None of these rows depends on the adapter's speed (a CPU adapter runs the same
// dispatches), so they hold for any GPU; all are counted on the real code paths by the context's
// counters (src/gpu/batch.ts, GpuCounters), not timed.
//   step.demo.{sft,dpo}.dispatches  compute dispatches per optimizer step (src/train/trainer.ts:
//                                   forward, loss, backward, gradient norm, AdamW), demo model,
//                                   SFT B1 x `--seq` tokens / DPO one pair (2 rows) of `--seq`,
//                                   LoRA r16 on all seven projections
//   step.demo.{sft,dpo}.bind-groups bind groups created per step (the others come from the cache)
//   step.demo.{sft,dpo}.submits     queue submits per step
//   step.demo.{sft,dpo}.max-matmul-dispatch-flops  FLOPs of the step's largest single matmul
//                                   dispatch (the GPU watchdog's concern): matmul cuts every grid
//                                   into dispatches of at most MATMUL_MAX_DISPATCH_FLOPS (2^32,
//                                   src/engine/matmul.ts), each counted with its share of the product
//   step.demo.{sft,dpo}.max-attention-dispatch-flops  the FLOP bound of the step's largest single
//                                   attention dispatch (src/engine/attention.ts cuts each pass at
//                                   MAX_DISPATCH_FLOPS, src/gpu/batch.ts)
//   step.demo.{sft,dpo}.readbacks   buffers mapped back to the host per step (loss, norms)
//   step.demo.{sft,dpo}.readback-bytes  bytes those readbacks copy
//   step.demo.{sft,dpo}.matmul-flops-over-model
//                                   executed matmul FLOPs of the step (counted: 2·P·Q·D of every
//                                   matmul dispatch) over the model's matmul FLOPs
//                                   (`modelMatmulFlops`: forward 2·params·tokens, the same again
//                                   for the input gradients, the LoRA weight gradients once), so
//                                   recomputed layers and a recomputed lm_head show up as > 1
//   decode.demo.greedy.{dispatches,submits,readbacks}  per decoded token (greedy, GPU argmax)
//   decode.demo.weight-bytes        bytes of weights one decoded token reads: every layer weight and
//                                   the final norm once, the lm_head in full, one embedding row (a
//                                   tied embedding is read in full as the lm_head)
//   step.<model>.flops-over-model.{checkpointed,default-budget,16gib}
//                                   a LoRA step's executed FLOPs (`stepFlops`, bench/model-step.ts)
//                                   over the model's FLOPs (`modelFlops` below: no recomputation,
//                                   the lm_head once forward and once for its input gradient), for
//                                   the Llama-3.2 presets at B1 x T512: the checkpointed chunked
//                                   step, and the memory plan's choices (planTrainingStep) without
//                                   a stated budget and with 16 GiB; a formula, no GPU work
//   step.<model>.lm-head-dispatch-flops  FLOPs of one lm_head chunk matmul at B1 x T512 (the
//                                   largest dispatch of a step, bounded by LM_HEAD_MAX_DISPATCH_FLOPS)
//   step.<model>.attention-dispatches.t4096  attention dispatches per layer of a B1 x T4096 step on
//                                   the GPU paths (flash forward + backward), each pass cut at
//                                   MAX_DISPATCH_FLOPS (attentionDispatchPlan, src/engine/attention.ts;
//                                   a formula, no GPU work); the shape says the largest dispatch
//                                   against the largest pass uncut (one dispatch before the cut)
//   step.<model>.max-attention-dispatch-flops.t4096  that largest dispatch's FLOPs
// All rows: unit count or bytes, no peer.
import { attentionDispatchPlan } from '../src/engine/attention';
import { MAX_DISPATCH_FLOPS, type GpuCounters } from '../src/gpu/batch';
import type { GpuContext } from '../src/gpu/context';
import type { Tensor } from '../src/gpu/tensor';
import { LLAMA_3_2_PRESETS, type ModelConfig } from '../src/model/config';
import { generate } from '../src/model/generate';
import { createLoraAdapters, resolveLoraConfig, targetDims, type LoraConfig } from '../src/model/lora';
import { seededRandom } from '../src/model/random';
import type { ModelWeights } from '../src/model/weights';
import { Trainer, type DpoTask, type SftTask } from '../src/train/trainer';
import type { DecoderModel } from '../src/model/decoder';
import { describeDemo, loadDemoModel } from './demo-model';
import { result, type BenchContext, type Benchmark, type Result } from './harness';
import { stepFlops } from './model-step';
import { LM_HEAD_MAX_DISPATCH_FLOPS } from '../src/model/activations';
import { defaultStepBudget, planMemory, planTrainingStep } from '../src/model/memory-plan';

const SEED = 20250105;
const LORA = { rank: 16, alpha: 32 } satisfies LoraConfig;
const FLOPS_SEQ = 512;
/** A long-context step, where one attention pass would be tens of GFLOP in one dispatch. */
const ATTENTION_SEQ = 4096;

export type GpuWork = GpuCounters;

/** The context's counters while `f` runs; `mark()` reads the counts so far (GpuCounters, src/gpu/batch.ts). */
export async function countGpuWork<T>(gpu: GpuContext, f: (mark: () => GpuWork) => Promise<T>): Promise<T> {
  gpu.counters.maxMatmulFlops = 0;
  gpu.counters.maxAttentionFlops = 0;
  const start = { ...gpu.counters };
  const mark = (): GpuWork => {
    const now = gpu.counters;
    return {
      dispatches: now.dispatches - start.dispatches,
      maxMatmulFlops: now.maxMatmulFlops,
      maxAttentionFlops: now.maxAttentionFlops,
      bindGroups: now.bindGroups - start.bindGroups,
      submits: now.submits - start.submits,
      readbacks: now.readbacks - start.readbacks,
      readBytes: now.readBytes - start.readBytes,
      matmulFlops: now.matmulFlops - start.matmulFlops,
    };
  };
  return f(mark);
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

/**
 * The model's matmul FLOPs of one LoRA step over B rows of T tokens, what no step can do without:
 * every projection and the lm_head once forward (2·params·tokens) and once for its input gradient
 * (the frozen weights get no weight gradient), the LoRA products three times their forward's
 * FLOPs (forward: x·Aᵀ and ·Bᵀ; backward: dB, dTmp, dA and dX, four products of the same sizes).
 */
export function modelMatmulFlops(c: ModelConfig, B: number, T: number, lora: LoraConfig): number {
  const N = B * T;
  const H = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const proj = 2 * N * (H * qd + 2 * H * kvd + qd * H + 3 * H * c.intermediateSize);
  const { rank, targets } = resolveLoraConfig(lora);
  const adapters = targets.reduce((s, t) => s + 2 * N * rank * targetDims(c, t).reduce((a, b) => a + b, 0), 0);
  const lmHead = 2 * N * c.vocabSize * H;
  return c.numLayers * (2 * proj + 3 * adapters) + 2 * lmHead;
}

type Hyper = ConstructorParameters<typeof Trainer>[0]['hyper'];
const HYPER: Hyper = { maxSteps: 1_000_000, microBatchSize: 1, gradientAccumulationSteps: 1, scheduler: 'constant', warmupRatio: 0, lr: 1e-4 };

/** The counts of one optimizer step (the second: the first compiles pipelines and, for DPO, scores the reference). */
async function countStep(gpu: GpuContext, model: DecoderModel, task: SftTask | DpoTask, T: number): Promise<GpuWork> {
  const lora = createLoraAdapters(gpu, model.config, LORA, { seed: SEED });
  const trainer = new Trainer({ model, lora, task, hyper: HYPER, seqLen: T });
  try {
    await trainer.step();
    return await countGpuWork(gpu, async (mark) => {
      const r = await trainer.step();
      if (r.nonFinite || !Number.isFinite(r.metrics.loss)) throw new Error(`step-accounting: non-finite loss ${r.metrics.loss}`);
      await gpu.flush();
      return mark();
    });
  } finally {
    trainer.release();
    lora.release();
  }
}

function stepRows(kind: 'sft' | 'dpo', w: GpuWork, model: number, shape: string): Result[] {
  return [
    result({ name: `step.demo.${kind}.dispatches`, unit: 'count', ours: w.dispatches, shape }),
    result({ name: `step.demo.${kind}.bind-groups`, unit: 'count', ours: w.bindGroups, shape: `${shape}; created, the rest reused` }),
    result({ name: `step.demo.${kind}.submits`, unit: 'count', ours: w.submits, shape }),
    result({ name: `step.demo.${kind}.max-matmul-dispatch-flops`, unit: 'count', ours: w.maxMatmulFlops, shape: `${shape}; the largest single matmul dispatch` }),
    result({ name: `step.demo.${kind}.max-attention-dispatch-flops`, unit: 'count', ours: w.maxAttentionFlops, shape: `${shape}; the largest single attention dispatch (bound ${MAX_DISPATCH_FLOPS})` }),
    result({ name: `step.demo.${kind}.readbacks`, unit: 'count', ours: w.readbacks, shape }),
    result({ name: `step.demo.${kind}.readback-bytes`, unit: 'bytes', ours: w.readBytes, shape }),
    result({
      name: `step.demo.${kind}.matmul-flops-over-model`,
      unit: 'count',
      ours: w.matmulFlops / model,
      shape: `${shape}: ${(w.matmulFlops / 1e9).toFixed(3)} GFLOP executed, ${(model / 1e9).toFixed(3)} GFLOP model`,
    }),
  ];
}

export const stepAccountingBench: Benchmark = {
  name: 'step-accounting',
  description: 'dispatches, submits and readbacks per training step (SFT, DPO) and per decoded token, executed over model matmul FLOPs, weight bytes per token (adapter-independent)',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const rows: Result[] = [];
    for (const [name, c] of Object.entries(LLAMA_3_2_PRESETS)) {
      const model = modelFlops(c, 1, FLOPS_SEQ, LORA);
      // The checkpointed, chunked step (before issue 15), and what the memory plan now picks
      // without a stated budget (defaultStepBudget) and with a 16 GiB one.
      const o = { batch: 1, seq: FLOPS_SEQ, loraRank: LORA.rank, weightDType: 'bf16' as const };
      const variants = [
        ['checkpointed', {}],
        ['default-budget', planTrainingStep(c, o, defaultStepBudget(c, o))],
        ['16gib', planTrainingStep(c, o, 16 * 2 ** 30)],
      ] as const;
      for (const [variant, keep] of variants) {
        const executed = stepFlops(c, 1, FLOPS_SEQ, LORA, keep);
        const plan = 'plan' in keep ? `, ${keep.reason}` : ', layers recomputed, lm_head three times';
        rows.push(
          result({
            name: `step.${name}.flops-over-model.${variant}`,
            unit: 'count',
            ours: executed / model,
            shape: `B1xT${FLOPS_SEQ} r${LORA.rank} all7: ${(executed / 1e12).toFixed(2)} TFLOP executed, ${(model / 1e12).toFixed(2)} TFLOP model${plan}`,
          }),
        );
      }
      const dims = { batchSize: 1, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: c.headDim, tq: ATTENTION_SEQ };
      const cut = attentionDispatchPlan(dims, { forward: 'flash', backward: 'flash' });
      const largest = Math.max(cut.forward.maxFlops, cut.backward.maxFlops);
      const uncut = Math.max(cut.forward.unsplitFlops, cut.backward.unsplitFlops);
      const at = `B1xT${ATTENTION_SEQ} h${c.numHeads}/${c.numKvHeads}x${c.headDim}, flash forward + backward, per layer`;
      rows.push(
        result({
          name: `step.${name}.attention-dispatches.t${ATTENTION_SEQ}`,
          unit: 'count',
          ours: cut.forward.dispatches + cut.backward.dispatches,
          shape: `${at}: forward ${cut.forward.dispatches}, backward ${cut.backward.dispatches} (4 uncut); largest ${(largest / 1e9).toFixed(2)} GFLOP vs ${(uncut / 1e9).toFixed(1)} GFLOP for the largest pass in one`,
        }),
        result({ name: `step.${name}.max-attention-dispatch-flops.t${ATTENTION_SEQ}`, unit: 'count', ours: largest, shape: `${at} (bound ${MAX_DISPATCH_FLOPS})` }),
      );
      const chunk = planMemory(c, o).lmHeadChunk;
      rows.push(
        result({
          name: `step.${name}.lm-head-dispatch-flops`,
          unit: 'count',
          ours: 2 * FLOPS_SEQ * chunk * c.hiddenSize,
          shape: `B1xT${FLOPS_SEQ}: one lm_head chunk matmul, ${chunk} vocab rows (bound ${LM_HEAD_MAX_DISPATCH_FLOPS} FLOPs per dispatch)`,
        }),
      );
    }
    const demo = await loadDemoModel(gpu);
    const { model } = demo;
    const c = model.config;
    const desc = describeDemo(demo);
    try {
      const T = options.seq;
      const next = seededRandom(SEED);
      const draw = (n: number) => Array.from({ length: n }, () => Math.floor(next() * c.vocabSize));
      const ids = draw(T);
      const sft: SftTask = { kind: 'sft', train: [{ inputIds: ids, labels: [...ids], truncated: false }] };
      const sftWork = await countStep(gpu, model, sft, T);
      rows.push(...stepRows('sft', sftWork, modelMatmulFlops(c, 1, T, LORA), `${desc} bf16, SFT B1xT${T} r${LORA.rank} all7, one optimizer step`));

      // DPO: one pair, prompt half the length, answers filling the rest (2 rows of T).
      const half = Math.max(1, Math.floor(T / 2));
      const dpo: DpoTask = { kind: 'dpo', train: [{ prompt: draw(half), chosen: draw(T - half), rejected: draw(T - half), truncated: false }], beta: 0.1, lossType: 'sigmoid' };
      const dpoWork = await countStep(gpu, model, dpo, T);
      rows.push(...stepRows('dpo', dpoWork, modelMatmulFlops(c, 2, T, LORA), `${desc} bf16, DPO 1 pair (2 rows x T${T}) r${LORA.rank} all7, one optimizer step`));

      // Decoded tokens: counts between the first token and the last, per token.
      const N = Math.max(3, Math.min(options.decodeTokens, 16));
      const perToken = await countGpuWork(gpu, async (mark) => {
        const at: GpuWork[] = [];
        await generate(model, { promptIds: ids.slice(0, Math.min(8, T)), maxNewTokens: N, sampling: { temperature: 0 } }, () => void at.push(mark()));
        const n = at.length - 1;
        const per = (k: keyof GpuWork) => (at[n]![k] - at[0]![k]) / n;
        return { dispatches: per('dispatches'), submits: per('submits'), readbacks: per('readbacks') };
      });
      const decodeShape = `${desc} bf16, B1 greedy (GPU argmax), per token after the first`;
      rows.push(
        result({ name: 'decode.demo.greedy.dispatches', unit: 'count', ours: perToken.dispatches, shape: decodeShape }),
        result({ name: 'decode.demo.greedy.submits', unit: 'count', ours: perToken.submits, shape: decodeShape }),
        result({ name: 'decode.demo.greedy.readbacks', unit: 'count', ours: perToken.readbacks, shape: decodeShape }),
        result({ name: 'decode.demo.weight-bytes', unit: 'bytes', ours: weightBytesPerToken(demo.loaded.weights), shape: `${desc} bf16: layer weights, final norm and lm_head once, one embedding row` }),
      );
      return rows;
    } finally {
      demo.release();
      await gpu.flush();
    }
  },
};
