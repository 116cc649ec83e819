// The training loop: LoRA SFT or DPO with AdamW, gradient accumulation, clipping, an LR
// schedule, evaluation, host controls and a serializable state.
//
//   const trainer = new Trainer({ model, lora, task: { kind: 'sft', train, eval }, hyper: { lr: 2e-4 } });
//   const result = await trainer.run();       // or trainer.step() for one optimizer update
//
// One optimizer step:
//   1. up to `gradientAccumulationSteps` micro-batches of `microBatchSize` examples (DPO: pairs,
//      2 rows each) from the epoch's shuffled order; a step never spans two epochs, so the last
//      step of an epoch may be smaller (drop_last = false)
//   2. per micro-batch: forward, backward with gradients accumulated. SFT encodes every
//      micro-batch's backward before reading anything back: the per-sequence log-prob sums stay on
//      the GPU (copied beside the gradient norm) and come back in the step's one readback after
//      step 3; DPO reads them back between forward and backward (its row weights need them). The loss is normalised over the whole step, so accumulation changes
//      nothing but memory: SFT scale = 1/N with N the step's counted targets (transformers ≥ 4.46
//      semantics), DPO weights 1/P with P the step's pairs
//   3. the global gradient norm (GPU, read back: `grad_norm`, before clipping); a NaN/Inf loss or
//      norm stops the run here: the update is skipped, the tensors holding NaN/Inf are named, and
//      adapter, moments and state stay those of the last good step
//   4. AdamW on every adapter tensor (decoupled weight decay, bias correction with the 1-based
//      update count) with clipping to max_grad_norm fused in (min(1, max / (‖g‖ + 1e-6)), as
//      torch.nn.utils.clip_grad_norm_), at the schedule's rate for this update
//
// Metrics (TRL / transformers names), logged after every step through `onLog`:
//   step, epoch (fractional), loss, learning_rate (the rate this update used), grad_norm,
//   tokens_per_second (real input tokens / step wall time), num_tokens (cumulative),
//   memory/peak_bytes (the GPU pool's peak), and for DPO rewards/{chosen,rejected,margins,
//   accuracies}, logps/{chosen,rejected} (losses.ts). Evaluation logs the same names with an
//   `eval_` prefix (eval_loss, eval_rewards/margins, …).
//
// State for checkpoints (getState / setState): the checkpoint engineer saves the adapter values,
// the AdamW moments (lora.params[i].m, .v) and this JSON object; restoring all three and calling
// setState before run() continues exactly where the run stopped (same data order, same learning
// rates, same bias correction, same reference log-probs: the same next losses).
import { adamwStep, gradNormSlots, gradNormSquared, NON_FINITE_INF, NON_FINITE_NAN, nonFiniteCheck } from '../engine/adamw';
import type { Tensor } from '../gpu/tensor';
import { createTrainWorkspace, type TrainWorkspace } from '../model/activations';
import type { TrainingStepPlan } from '../model/memory-plan';
import { trainingStepPlanFor } from './step-budget';
import { backward } from '../model/backward';
import { BatchChain } from '../model/chain';
import { forward } from '../model/forward';
import { sequenceLogProbSums } from '../engine/cross-entropy';
import { setBatchInputs } from '../model/inputs';
import type { DecoderModel } from '../model/decoder';
import type { LoraAdapters } from '../model/lora';
import { collateDpo, collateSft, dpoSeqLen, sftSeqLen, shuffledOrder, type DpoPair, type ReferenceLogps, type SftExample, type TokenBatch } from './batching';
import { TrainingControl } from './control';
import { DPO_DEFAULTS, LN_DPO_DEFAULTS, SFT_DEFAULTS, type DpoLossType, type StageDefaults } from './defaults';
import { DpoMetricSums, dpoPairLoss, precomputeReferenceLogps, rowScaleFromSequenceGrads, type DpoLossOptions, type DpoPairLogps } from './losses';
import { learningRateAt, makeSchedule, type Schedule, type SchedulerType } from './schedule';

export interface Hyperparams {
  lr: number;
  scheduler: SchedulerType;
  warmupRatio: number;
  /** Global gradient-norm clip; 0 turns clipping off. */
  maxGradNorm: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  epochs: number;
  /** > 0: stop after this many optimizer steps (overrides epochs, as transformers' max_steps). */
  maxSteps: number;
  /** Examples (SFT) or pairs (DPO) per forward. */
  microBatchSize: number;
  gradientAccumulationSteps: number;
  /** Seed of the per-epoch shuffle. */
  seed: number;
}

export interface SftTask {
  kind: 'sft';
  train: SftExample[];
  eval?: SftExample[];
}

export interface DpoTask {
  kind: 'dpo';
  /** Pairs; those without `reference` get it computed at the start of run(). */
  train: DpoPair[];
  eval?: DpoPair[];
  beta?: number;
  /** Default 'ln' (FuseChat-3.0's Llama recipe). */
  lossType?: DpoLossType;
  /**
   * Reference policy for pairs without reference log-probs: 'initial' (default) = the policy
   * adapter as it is when run() starts (a fresh PEFT adapter has B = 0, so this is the base
   * model; an adapter continued from SFT makes the SFT model the reference, as FuseChat),
   * 'base' = the adapter switched off, or a frozen adapter (e.g. a separately loaded SFT adapter).
   */
  reference?: 'initial' | 'base' | LoraAdapters;
}

export type Metrics = Record<string, number>;

export interface TrainerOptions {
  model: DecoderModel;
  /** The trainable adapter (lora.params: value, grad, m, v). */
  lora: LoraAdapters;
  task: SftTask | DpoTask;
  /** Missing values come from SFT_DEFAULTS, DPO_DEFAULTS or LN_DPO_DEFAULTS (defaults.ts). */
  hyper?: Partial<Hyperparams>;
  /** Padded sequence length of every batch; default the longest train/eval example. */
  seqLen?: number;
  /** Token id written on padding positions (masked; default 0). */
  padId?: number;
  /**
   * GPU bytes the training step may use (weights, adapter, workspace: the memory plan's
   * `training` figure). The plan keeps the lm_head logits and the layers' activations from the
   * forward when they fit (planTrainingStep), else recomputes them. Omitted: the leanest step's
   * bytes + 25%, at most + 256 MiB (defaultStepBudget); null: keep nothing.
   */
  memoryBudgetBytes?: number | null;
  /** Evaluate every this many steps (0: only at the end of the run). Needs task.eval. */
  evalEvery?: number;
  /** Call onCheckpoint every this many steps (0: only at the end). */
  checkpointEvery?: number;
  /** Called at the interval and once when the run ends (completed or stopped; not after a NaN). */
  onCheckpoint?: (step: number, info: { final: boolean }) => void | Promise<void>;
  onLog?: (metrics: Metrics) => void;
  control?: TrainingControl;
  /** Aborting stops the run after the current step. */
  signal?: AbortSignal;
}

export interface TrainerState {
  version: 1;
  kind: 'sft' | 'dpo';
  /** Optimizer updates done (transformers' global_step); AdamW's next bias-correction step is step + 1. */
  step: number;
  /** Epoch the next micro-batch comes from (0-based). */
  epoch: number;
  /** Micro-batches of that epoch already consumed. */
  microBatchInEpoch: number;
  /** RNG: the order of epoch e is shuffledOrder(numExamples, seed, e); there is no other randomness (no dropout). */
  seed: number;
  numExamples: number;
  microBatchSize: number;
  gradientAccumulationSteps: number;
  /** The schedule's position is `step`; its shape is checked on restore. */
  schedule: Schedule;
  /** Real input tokens trained on so far. */
  numTokens: number;
  /** DPO: the reference log-probs of every train (and eval) pair, so a resumed run never recomputes them. */
  reference?: { train: ReferenceLogps[]; eval?: ReferenceLogps[] };
}

export interface NonFiniteReport {
  /** The update that was skipped (1-based, as `step` would have become). */
  step: number;
  loss: number;
  gradNorm: number;
  /** e.g. "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight (grad: NaN)". */
  tensors: string[];
}

export interface StepResult {
  metrics: Metrics;
  /** Set when the step found a NaN/Inf; no update was made. */
  nonFinite?: NonFiniteReport;
}

export interface TrainResult {
  status: 'completed' | 'stopped' | 'non-finite';
  step: number;
  /** Metrics of every step, then of every evaluation (with eval_ names), in order. */
  history: Metrics[];
  nonFinite?: NonFiniteReport;
}

function resolveHyper(task: SftTask | DpoTask, h: Partial<Hyperparams> = {}): Hyperparams {
  const d: StageDefaults = task.kind === 'sft' ? SFT_DEFAULTS : (task.lossType ?? 'ln') === 'ln' ? LN_DPO_DEFAULTS : DPO_DEFAULTS;
  const out: Hyperparams = {
    lr: d.lr,
    scheduler: d.scheduler,
    warmupRatio: d.warmupRatio,
    maxGradNorm: d.maxGradNorm,
    weightDecay: d.weightDecay,
    beta1: d.beta1,
    beta2: d.beta2,
    eps: d.eps,
    epochs: d.epochs,
    maxSteps: 0,
    microBatchSize: d.microBatchSize,
    gradientAccumulationSteps: d.gradientAccumulationSteps,
    seed: 42,
    ...Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)),
  };
  for (const k of ['microBatchSize', 'gradientAccumulationSteps'] as const)
    if (!Number.isInteger(out[k]) || out[k] < 1) throw new RangeError(`trainer: ${k} ${out[k]} must be a positive integer`);
  if (!Number.isInteger(out.maxSteps) || out.maxSteps < 0) throw new RangeError(`trainer: maxSteps ${out.maxSteps} must be an integer >= 0`);
  if (out.maxSteps === 0 && !(out.epochs > 0 && Number.isInteger(out.epochs))) throw new RangeError(`trainer: epochs ${out.epochs} must be a positive integer`);
  if (!(out.maxGradNorm >= 0)) throw new RangeError(`trainer: maxGradNorm ${out.maxGradNorm} must be >= 0 (0 = no clipping)`);
  return out;
}

const sumOf = (xs: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
};

export class Trainer {
  readonly model: DecoderModel;
  readonly lora: LoraAdapters;
  readonly task: SftTask | DpoTask;
  readonly hyper: Hyperparams;
  readonly schedule: Schedule;
  readonly control: TrainingControl;
  /** Micro-batches in one epoch, and optimizer steps in one epoch. */
  readonly microBatchesPerEpoch: number;
  readonly stepsPerEpoch: number;
  readonly seqLen: number;
  /** Rows per forward: microBatchSize, or 2·microBatchSize for DPO. */
  readonly rows: number;
  readonly history: Metrics[] = [];

  private readonly options: TrainerOptions;
  private readonly dpo: DpoLossOptions | null;
  private state: TrainerState;
  private ws: TrainWorkspace | null = null;
  private plan: TrainingStepPlan | null = null;
  private normBuf: Tensor | null = null;
  private orderCache: { epoch: number; order: number[] } | null = null;
  private referenceReady = false;

  constructor(options: TrainerOptions) {
    const { model, lora, task } = options;
    if (!lora.params.length) throw new Error('trainer: the adapter is not trainable (made with trainable: false)');
    if (!task.train.length) throw new Error('trainer: no training examples');
    this.options = options;
    this.model = model;
    this.lora = lora;
    this.task = task;
    this.hyper = resolveHyper(task, options.hyper);
    this.control = options.control ?? new TrainingControl(options.signal);
    if (options.control && options.signal) options.signal.addEventListener('abort', () => this.control.stop(), { once: true });
    const lossType = task.kind === 'dpo' ? (task.lossType ?? 'ln') : null;
    this.dpo = task.kind === 'dpo' ? { lossType: lossType!, beta: task.beta ?? (lossType === 'ln' ? LN_DPO_DEFAULTS.beta : DPO_DEFAULTS.beta) } : null;
    const h = this.hyper;
    this.microBatchesPerEpoch = Math.ceil(task.train.length / h.microBatchSize);
    this.stepsPerEpoch = Math.ceil(this.microBatchesPerEpoch / h.gradientAccumulationSteps);
    const totalSteps = h.maxSteps > 0 ? h.maxSteps : h.epochs * this.stepsPerEpoch;
    this.schedule = makeSchedule(h.scheduler, h.lr, totalSteps, h.warmupRatio);
    this.rows = task.kind === 'dpo' ? 2 * h.microBatchSize : h.microBatchSize;
    const all = [...task.train, ...(task.eval ?? [])];
    const needed = task.kind === 'sft' ? sftSeqLen(all as SftExample[]) : dpoSeqLen(all as DpoPair[]);
    this.seqLen = options.seqLen ?? needed;
    if (this.seqLen < needed) throw new Error(`trainer: seqLen ${this.seqLen} is shorter than the longest example (${needed} tokens)`);
    this.state = {
      version: 1,
      kind: task.kind,
      step: 0,
      epoch: 0,
      microBatchInEpoch: 0,
      seed: h.seed,
      numExamples: task.train.length,
      microBatchSize: h.microBatchSize,
      gradientAccumulationSteps: h.gradientAccumulationSteps,
      schedule: this.schedule,
      numTokens: 0,
    };
  }

  get totalSteps(): number {
    return this.schedule.totalSteps;
  }

  /** Optimizer steps done (transformers' global_step). */
  get globalStep(): number {
    return this.state.step;
  }

  // -------------------------------------------------------------------------------------------
  // State

  /** A JSON-serializable copy of the trainer's position (see TrainerState). */
  getState(): TrainerState {
    const s: TrainerState = structuredClone(this.state);
    if (this.task.kind === 'dpo' && this.task.train.every((p) => p.reference)) {
      s.reference = { train: this.task.train.map((p) => ({ ...p.reference! })) };
      if (this.task.eval?.every((p) => p.reference)) s.reference.eval = this.task.eval.map((p) => ({ ...p.reference! }));
    }
    return s;
  }

  /** Restore a position from getState() (same data and hyperparameters); call before run(). */
  setState(s: TrainerState): void {
    const bad = (what: string, got: unknown, want: unknown) => {
      throw new Error(`trainer state: ${what} is ${JSON.stringify(got)}, this run has ${JSON.stringify(want)}`);
    };
    if (s.version !== 1) bad('version', s.version, 1);
    if (s.kind !== this.task.kind) bad('kind', s.kind, this.task.kind);
    if (s.numExamples !== this.task.train.length) bad('the number of training examples', s.numExamples, this.task.train.length);
    if (s.microBatchSize !== this.hyper.microBatchSize) bad('microBatchSize', s.microBatchSize, this.hyper.microBatchSize);
    if (s.gradientAccumulationSteps !== this.hyper.gradientAccumulationSteps)
      bad('gradientAccumulationSteps', s.gradientAccumulationSteps, this.hyper.gradientAccumulationSteps);
    if (JSON.stringify(s.schedule) !== JSON.stringify(this.schedule)) bad('the schedule', s.schedule, this.schedule);
    if (!(Number.isInteger(s.step) && s.step >= 0 && s.step <= this.totalSteps)) bad('step', s.step, `0…${this.totalSteps}`);
    if (!(Number.isInteger(s.microBatchInEpoch) && s.microBatchInEpoch >= 0 && s.microBatchInEpoch <= this.microBatchesPerEpoch))
      bad('microBatchInEpoch', s.microBatchInEpoch, `0…${this.microBatchesPerEpoch}`);
    if (this.task.kind === 'dpo' && s.reference) {
      const { train, eval: ev } = s.reference;
      if (train.length !== this.task.train.length) bad('the number of reference log-probs', train.length, this.task.train.length);
      this.task.train.forEach((p, i) => (p.reference = { ...train[i]! }));
      if (ev && this.task.eval && ev.length === this.task.eval.length) this.task.eval.forEach((p, i) => (p.reference = { ...ev[i]! }));
    }
    const { reference: _reference, ...rest } = structuredClone(s);
    this.state = rest;
    this.orderCache = null;
  }

  // -------------------------------------------------------------------------------------------
  // Resources

  /** What the step keeps from the forward and why (the memory plan's choice for this model, batch and budget). */
  get stepPlan(): TrainingStepPlan {
    this.plan ??= trainingStepPlanFor(
      this.model,
      { rows: this.rows, seqLen: this.seqLen, loraRank: this.lora.config.rank, targets: this.lora.config.targets },
      this.options.memoryBudgetBytes,
    );
    return this.plan;
  }

  private workspace(): TrainWorkspace {
    const { keepActivations, keepLogits } = this.stepPlan;
    this.ws ??= createTrainWorkspace(this.model, { batchSize: this.rows, seqLen: this.seqLen, lora: this.lora.config, keepActivations, keepLogits });
    return this.ws;
  }

  /**
   * f32: the gradient norm's slots (gradNormSlots; [0] the squared norm), then room for the
   * per-sequence log-prob sums of a step's micro-batches (SFT), read back together, or for one
   * batch's sums and counts (DPO, evaluation).
   */
  private gradNormBuffer(): Tensor {
    this.normBuf ??= this.model.ctx.tensor([this.normSlots() + Math.max(2, this.hyper.gradientAccumulationSteps) * this.rows], 'f32', 'trainer grad norm');
    return this.normBuf;
  }

  private normSlots(): number {
    return gradNormSlots(this.lora.params.map((p) => p.grad));
  }

  /**
   * Encodes the squared gradient norm into the norm buffer and, in the same submit, the copy
   * of its slot 0 and of `sums` floats after the slots to a mappable buffer: one readback.
   */
  private async readNormAndSums(sums: number, withNorm: boolean): Promise<{ gradNorm: number; sums: Float32Array }> {
    const ctx = this.model.ctx;
    const normBuf = this.gradNormBuffer();
    const slots = this.normSlots();
    const nb = ctx.batch(withNorm ? 'grad norm' : 'step sums');
    if (withNorm) gradNormSquared(nb, this.lora.params.map((p) => p.grad), normBuf);
    // Slot 0 and the sums are not contiguous (the partial slots lie between): read from 0.
    const staging = nb.copyToReadable(normBuf.buffer, 0, (slots + sums) * 4);
    nb.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const v = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return { gradNorm: withNorm ? Math.sqrt(v[0]!) : NaN, sums: v.subarray(slots, slots + sums) };
    } finally {
      staging.destroy();
      await ctx.flush();
    }
  }

  /** Free the workspace and scratch (the adapter and model are the caller's). */
  release(): void {
    this.ws?.release();
    this.normBuf?.release();
    this.ws = null;
    this.normBuf = null;
  }

  /** DPO: compute the reference log-probs of pairs that lack them (once; before the first update). */
  async prepare(): Promise<void> {
    if (this.task.kind !== 'dpo' || this.referenceReady) return;
    const t = this.task;
    const ref = t.reference ?? 'initial';
    const scorer: 'base' | LoraAdapters = ref === 'initial' ? this.lora : ref;
    // The trainer's workspace serves the reference forward when the adapter shapes allow.
    const shareable = scorer === 'base' || (scorer.config.rank === this.lora.config.rank && scorer.config.targets.every((x) => this.lora.config.targets.includes(x)));
    if (ref === 'initial' && this.state.step > 0 && !t.train.every((p) => p.reference))
      throw new Error("trainer: reference 'initial' after step 0 needs the reference log-probs saved in the state (setState)");
    for (const pairs of [t.train, t.eval ?? []]) {
      const missing = pairs.map((p, i) => (p.reference ? -1 : i)).filter((i) => i >= 0);
      if (!missing.length) continue;
      const scored = await precomputeReferenceLogps(
        this.model,
        missing.map((i) => pairs[i]!),
        { reference: scorer, pairsPerBatch: this.hyper.microBatchSize, padId: this.options.padId, ...(shareable ? { workspace: this.workspace() } : {}) },
      );
      missing.forEach((i, k) => (pairs[i]!.reference = scored[k]!.reference));
    }
    this.referenceReady = true;
  }

  // -------------------------------------------------------------------------------------------
  // Data order

  private orderOf(epoch: number): number[] {
    if (this.orderCache?.epoch !== epoch) this.orderCache = { epoch, order: shuffledOrder(this.task.train.length, this.state.seed, epoch) };
    return this.orderCache.order;
  }

  /** The micro-batches (as example index lists) of the next step, and the position after it. */
  private nextStepIndices(): { groups: number[][]; epoch: number; after: number } {
    let { epoch, microBatchInEpoch: m } = this.state;
    if (m >= this.microBatchesPerEpoch) {
      epoch++;
      m = 0;
    }
    const order = this.orderOf(epoch);
    const B = this.hyper.microBatchSize;
    const k = Math.min(this.hyper.gradientAccumulationSteps, this.microBatchesPerEpoch - m);
    const groups = Array.from({ length: k }, (_, j) => order.slice((m + j) * B, (m + j + 1) * B));
    return { groups, epoch, after: m + k };
  }

  private collate(indices: readonly number[], from: 'train' | 'eval'): TokenBatch {
    const src = from === 'train' ? this.task.train : (this.task.eval ?? []);
    const padId = this.options.padId ?? 0;
    if (this.task.kind === 'sft') return collateSft(indices.map((i) => src[i] as SftExample), this.rows, this.seqLen, padId);
    return collateDpo(indices.map((i) => src[i] as DpoPair), this.hyper.microBatchSize, this.seqLen, padId);
  }

  // -------------------------------------------------------------------------------------------
  // One micro-batch

  /** Forward one batch; the sums and counts of its rows. */
  private async forwardBatch(b: TokenBatch): Promise<{ sums: Float32Array; counts: Float32Array }> {
    const ctx = this.model.ctx;
    const ws = this.workspace();
    setBatchInputs(ctx, ws, b);
    forward(this.model, ws, { lora: this.lora });
    // Sums and counts side by side after the norm slots: one submit, one readback.
    const normBuf = this.gradNormBuffer();
    const slots = this.normSlots();
    const batch = ctx.batch('sequence log-probs');
    sequenceLogProbSums(batch, { logp: ws.logp, mask: ws.targets, kind: 'labels', seqLen: ws.seqLen, sums: ws.seqSums, counts: ws.seqCounts });
    batch.copy(ws.seqSums.buffer, 0, normBuf.buffer, slots * 4, this.rows * 4);
    batch.copy(ws.seqCounts.buffer, 0, normBuf.buffer, (slots + this.rows) * 4, this.rows * 4);
    batch.submit();
    const { sums } = await this.readNormAndSums(2 * this.rows, false);
    return { sums: sums.slice(0, this.rows), counts: sums.slice(this.rows, 2 * this.rows) };
  }

  /** The DPO numbers of pair k of a batch made by collateDpo. */
  private pairLogps(pair: DpoPair, k: number, sums: Float32Array, counts: Float32Array): DpoPairLogps {
    const P = this.hyper.microBatchSize;
    if (!pair.reference) throw new Error('trainer: a DPO pair has no reference log-probs (call prepare() or run())');
    return {
      policyChosen: sums[k]!,
      policyRejected: sums[P + k]!,
      refChosen: pair.reference.chosen,
      refRejected: pair.reference.rejected,
      chosenCount: counts[k]!,
      rejectedCount: counts[P + k]!,
    };
  }

  // -------------------------------------------------------------------------------------------
  // One optimizer step

  /**
   * Forward and backward of one step's micro-batches: the step loss (and DPO metrics) on the
   * host, the step's gradients accumulated in lora.params[i].grad.
   */
  private async accumulate(groups: number[][], withNorm: boolean): Promise<{ loss: number; metrics: Metrics; tokens: number; gradNorm: number }> {
    const batches = groups.map((g) => this.collate(g, 'train'));
    const tokens = batches.reduce((s, b) => s + b.tokens, 0);
    if (this.task.kind === 'sft') {
      // Every micro-batch's forward and backward are encoded before the one readback.
      const N = batches.reduce((s, b) => s + b.targetCount, 0);
      const ctx = this.model.ctx;
      const ws = this.workspace();
      const normBuf = this.gradNormBuffer();
      const slots = this.normSlots();
      for (let j = 0; j < batches.length; j++) {
        setBatchInputs(ctx, ws, batches[j]!);
        forward(this.model, ws, { lora: this.lora });
        const batch = ctx.batch('sequence log-probs');
        sequenceLogProbSums(batch, { logp: ws.logp, mask: ws.targets, kind: 'labels', seqLen: ws.seqLen, sums: ws.seqSums, counts: ws.seqCounts });
        batch.copy(ws.seqSums.buffer, 0, normBuf.buffer, (slots + j * this.rows) * 4, this.rows * 4);
        batch.submit();
        backward(this.model, ws, { lora: this.lora, scale: 1 / N, accumulate: j > 0 });
      }
      const { gradNorm, sums } = await this.readNormAndSums(batches.length * this.rows, withNorm);
      // The same sum, in the same order, as reading each micro-batch's sums back in turn.
      let sum = 0;
      for (let j = 0; j < batches.length; j++) sum -= sumOf(sums.subarray(j * this.rows, (j + 1) * this.rows));
      return { loss: sum / N, metrics: {}, tokens, gradNorm };
    }
    const pairs = groups.map((g) => g.map((i) => this.task.train[i] as DpoPair));
    const P = pairs.reduce((s, g) => s + g.length, 0);
    const acc = new DpoMetricSums();
    for (let j = 0; j < batches.length; j++) {
      const b = batches[j]!;
      const { sums, counts } = await this.forwardBatch(b);
      const rowGrad = new Float64Array(this.rows);
      pairs[j]!.forEach((pair, k) => {
        const x = this.pairLogps(pair, k, sums, counts);
        const r = dpoPairLoss(x, this.dpo!);
        acc.add(x, r);
        rowGrad[k] = r.dPolicyChosen / P;
        rowGrad[this.hyper.microBatchSize + k] = r.dPolicyRejected / P;
      });
      const rowScale = rowScaleFromSequenceGrads(b.targets, this.seqLen, rowGrad);
      backward(this.model, this.workspace(), { lora: this.lora, rowScale, accumulate: j > 0 });
    }
    const metrics = acc.mean();
    const gradNorm = withNorm ? (await this.readNormAndSums(0, true)).gradNorm : NaN;
    return { loss: metrics.loss, metrics, tokens, gradNorm };
  }

  /**
   * The next step's loss and gradients (into lora.params[i].grad) without updating anything or
   * moving on: what step() would compute before its optimizer update (tests, inspection).
   */
  async computeGradients(): Promise<{ loss: number; metrics: Metrics }> {
    await this.prepare();
    const { loss, metrics } = await this.accumulate(this.nextStepIndices().groups, false);
    await this.model.ctx.flush();
    return { loss, metrics };
  }

  /** Run one optimizer step (ignores the control; run() checks it between steps). */
  async step(): Promise<StepResult> {
    await this.prepare();
    if (this.state.step >= this.totalSteps) throw new Error(`trainer: all ${this.totalSteps} steps are done`);
    const ctx = this.model.ctx;
    const t0 = performance.now();
    const { groups, epoch, after } = this.nextStepIndices();
    // Loss and global gradient norm (before clipping), then the NaN/Inf guard.
    const { loss, metrics, tokens, gradNorm } = await this.accumulate(groups, true);
    const normBuf = this.gradNormBuffer();
    const nextStep = this.state.step + 1;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const tensors = await this.nonFiniteTensors();
      const nonFinite: NonFiniteReport = { step: nextStep, loss, gradNorm, tensors };
      return { metrics: { ...metrics, step: nextStep, loss, grad_norm: gradNorm }, nonFinite };
    }

    const lr = learningRateAt(this.schedule, this.state.step);
    const h = this.hyper;
    const chain = new BatchChain(ctx, 'adamw');
    for (const p of this.lora.params)
      adamwStep(chain.batch, {
        param: p.value,
        grad: p.grad,
        m: p.m,
        v: p.v,
        lr,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        weightDecay: h.weightDecay,
        step: nextStep,
        ...(h.maxGradNorm > 0 ? { clip: { normSquared: normBuf, maxNorm: h.maxGradNorm } } : {}),
      });
    chain.submit();
    await ctx.flush();

    this.state.step = nextStep;
    this.state.epoch = epoch;
    this.state.microBatchInEpoch = after;
    this.state.numTokens += tokens;
    const seconds = (performance.now() - t0) / 1000;
    return {
      metrics: {
        step: nextStep,
        epoch: epoch + after / this.microBatchesPerEpoch,
        loss,
        learning_rate: lr,
        grad_norm: gradNorm,
        tokens_per_second: tokens / seconds,
        num_tokens: this.state.numTokens,
        'memory/peak_bytes': ctx.pool.stats().peakBytes,
        ...metrics, // DPO: rewards/*, logps/* (and loss again, the same value)
      },
    };
  }

  /** Names of adapter gradients and values holding NaN or Inf, e.g. "…lora_B.weight (grad: NaN)". */
  private async nonFiniteTensors(): Promise<string[]> {
    const ctx = this.model.ctx;
    const named = this.lora.params.flatMap((p) => [
      { name: `${p.name} (grad`, t: p.grad },
      { name: `${p.name} (value`, t: p.value },
    ]);
    const flags = ctx.tensor([named.length], 'u32', 'trainer non-finite flags');
    try {
      const batch = ctx.batch('non-finite check');
      nonFiniteCheck(batch, named.map((x) => x.t), flags);
      batch.submit();
      const f = await ctx.read(flags);
      return named.flatMap((x, i) => (f[i] ? [`${x.name}: ${[f[i]! & NON_FINITE_NAN ? 'NaN' : '', f[i]! & NON_FINITE_INF ? 'Inf' : ''].filter(Boolean).join(', ')})`] : []));
    } finally {
      flags.release();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Evaluation

  /** Metrics over the whole eval split with `eval_` names (empty without one). */
  async evaluate(): Promise<Metrics> {
    const ev = this.task.eval;
    if (!ev?.length) return {};
    await this.prepare();
    const B = this.hyper.microBatchSize;
    const out: Metrics = {};
    if (this.task.kind === 'sft') {
      let sum = 0;
      let n = 0;
      for (let i = 0; i < ev.length; i += B) {
        const b = this.collate(Array.from({ length: Math.min(B, ev.length - i) }, (_, k) => i + k), 'eval');
        const { sums } = await this.forwardBatch(b);
        sum -= sumOf(sums);
        n += b.targetCount;
      }
      out.eval_loss = sum / n;
    } else {
      const acc = new DpoMetricSums();
      for (let i = 0; i < ev.length; i += B) {
        const idx = Array.from({ length: Math.min(B, ev.length - i) }, (_, k) => i + k);
        const { sums, counts } = await this.forwardBatch(this.collate(idx, 'eval'));
        idx.forEach((j, k) => {
          const x = this.pairLogps(ev[j] as DpoPair, k, sums, counts);
          acc.add(x, dpoPairLoss(x, this.dpo!));
        });
      }
      for (const [k, v] of Object.entries(acc.mean())) out[`eval_${k}`] = v;
    }
    out.step = this.state.step;
    out.epoch = this.state.epoch + this.state.microBatchInEpoch / this.microBatchesPerEpoch;
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // The loop

  private log(m: Metrics): void {
    this.history.push(m);
    this.options.onLog?.(m);
  }

  /** Train until totalSteps, a stop, or a NaN/Inf (see the file comment). */
  async run(): Promise<TrainResult> {
    const o = this.options;
    const evalEvery = o.evalEvery ?? 0;
    const ckptEvery = o.checkpointEvery ?? 0;
    let status: TrainResult['status'] = 'completed';
    let nonFinite: NonFiniteReport | undefined;
    let lastEval = -1;
    let lastCheckpoint = -1;
    await this.prepare();
    while (this.state.step < this.totalSteps) {
      if (!(await this.control.proceed())) {
        status = 'stopped';
        break;
      }
      const r = await this.step();
      if (r.nonFinite) {
        status = 'non-finite';
        nonFinite = r.nonFinite;
        break;
      }
      this.log(r.metrics);
      const s = this.state.step;
      if (evalEvery > 0 && s % evalEvery === 0 && this.task.eval?.length) {
        this.log(await this.evaluate());
        lastEval = s;
      }
      if (ckptEvery > 0 && s % ckptEvery === 0 && o.onCheckpoint) {
        await o.onCheckpoint(s, { final: false });
        lastCheckpoint = s;
      }
    }
    if (status === 'completed' && this.task.eval?.length && lastEval !== this.state.step) this.log(await this.evaluate());
    if (status !== 'non-finite' && o.onCheckpoint && lastCheckpoint !== this.state.step) await o.onCheckpoint(this.state.step, { final: true });
    return { status, step: this.state.step, history: this.history, ...(nonFinite ? { nonFinite } : {}) };
  }
}
