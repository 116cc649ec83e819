// The Train page's settings and run records, shared by the page (trainStore, TrainPage) and the
// engine worker (worker/train-service.ts): the documented defaults of each stage with their
// sources (src/train/defaults.ts), the request that starts a run, the run record kept in
// IndexedDB, and small pure helpers (dataset checks, ETA, dates). Nothing here touches the GPU.

import { parseDpoRecord, parseJsonl, parseSftRecord, type DpoRecord, type LineError, type SftRecord } from '../data/records';
import { LORA_TARGETS, type LoraTarget } from '../model/lora';
import { DPO_DEFAULTS, LN_DPO_DEFAULTS, SFT_DEFAULTS } from '../train/defaults';
import type { SchedulerType } from '../train/schedule';
import type { Metrics, NonFiniteReport } from '../train/trainer';

export type Stage = 'sft' | 'dpo';
/** 'ln-dpo': length-normalised DPO (FuseChat-3.0's Llama recipe); 'dpo': standard sigmoid DPO. */
export type DpoLoss = 'dpo' | 'ln-dpo';

/** Every setting of a run, as the page edits it (all numbers are plain values). */
export interface TrainSettings {
  lr: number;
  scheduler: SchedulerType;
  warmupRatio: number;
  maxGradNorm: number;
  weightDecay: number;
  epochs: number;
  /** > 0: stop after this many optimizer steps (overrides epochs). */
  maxSteps: number;
  microBatchSize: number;
  gradientAccumulationSteps: number;
  seed: number;
  loraRank: number;
  loraAlpha: number;
  loraTargets: LoraTarget[];
  maxLength: number;
  /** DPO only. */
  beta: number;
  /** DPO only. */
  loss: DpoLoss;
  /** Save a checkpoint every this many steps (and at the end). */
  checkpointEvery: number;
  /** Checkpoints kept per run (the newest). */
  keepCheckpoints: number;
}

export const CHECKPOINT_EVERY_DEFAULT = 50;
export const KEEP_CHECKPOINTS_DEFAULT = 2;

/** The documented defaults of a stage (and DPO loss). */
export function defaultSettings(stage: Stage, loss: DpoLoss = 'ln-dpo'): TrainSettings {
  const d = stage === 'sft' ? SFT_DEFAULTS : loss === 'ln-dpo' ? LN_DPO_DEFAULTS : DPO_DEFAULTS;
  return {
    lr: d.lr,
    scheduler: d.scheduler,
    warmupRatio: d.warmupRatio,
    maxGradNorm: d.maxGradNorm,
    weightDecay: d.weightDecay,
    epochs: d.epochs,
    maxSteps: 0,
    microBatchSize: d.microBatchSize,
    gradientAccumulationSteps: d.gradientAccumulationSteps,
    seed: 42,
    loraRank: d.lora.rank,
    loraAlpha: d.lora.alpha,
    loraTargets: [...LORA_TARGETS],
    maxLength: d.maxLength,
    beta: loss === 'ln-dpo' ? LN_DPO_DEFAULTS.beta : DPO_DEFAULTS.beta,
    loss,
    checkpointEvery: CHECKPOINT_EVERY_DEFAULT,
    keepCheckpoints: KEEP_CHECKPOINTS_DEFAULT,
  };
}

/** Where each default comes from (the notes of src/train/defaults.ts, shortened). */
export const DEFAULT_SOURCES: Partial<Record<keyof TrainSettings, string>> = {
  loraRank: 'alignment-handbook Zephyr-7B QLoRA recipes (lora_r 16)',
  loraAlpha: 'alpha = 2·r, the common rule of thumb (Raschka 2023)',
  loraTargets: 'all linear layers match full fine-tuning (QLoRA, Dettmers et al. 2023 §4)',
  lr: 'SFT 2e-4: QLoRA Table 9 and alignment-handbook; DPO 5e-6: TRL dpo.py with PEFT; LN-DPO 1e-5: FuseChat-3.0’s 1e-6 ×10 for LoRA',
  beta: 'DPO 0.1: TRL DPOConfig and the DPO paper; LN-DPO 10: FuseChat-3.0 for Llama targets',
  epochs: 'FuseChat-3.0 §3: SFT 3 epochs, DPO 1',
  scheduler: 'FuseChat-3.0 §3: cosine',
  warmupRatio: 'FuseChat-3.0 §3: warmup ratio 0.1',
  maxGradNorm: 'transformers TrainingArguments default',
  weightDecay: 'transformers TrainingArguments default',
  microBatchSize: 'effective batch 16 as QLoRA’s 7B setting, in micro-batches a tab can hold',
  gradientAccumulationSteps: 'effective batch 16 as QLoRA’s 7B setting',
  maxLength: 'FuseChat used 2048; 1024 halves activation memory in a browser',
  loss: 'FuseChat-3.0 trains its Llama targets with length-normalised DPO',
  seed: 'transformers’ default seed',
  maxSteps: '0: train the whole epochs',
  checkpointEvery: 'the studio’s choice',
  keepCheckpoints: 'the studio’s choice',
};

/** The settings a run was started with that differ from the stage's defaults (for the run card). */
export function changedSettings(stage: Stage, s: TrainSettings): (keyof TrainSettings)[] {
  const d = defaultSettings(stage, s.loss);
  return (Object.keys(d) as (keyof TrainSettings)[]).filter((k) => JSON.stringify(d[k]) !== JSON.stringify(s[k]) && (stage === 'dpo' || (k !== 'beta' && k !== 'loss')));
}

/** What starts a run. `runId` names its checkpoints and record. */
export interface StartRequest {
  runId: string;
  stage: Stage;
  /**
   * DPO: the adapter to continue (its shape, and the reference policy), or null for a fresh one;
   * left out: the newest SFT adapter, if any.
   */
  init?: string | null;
  /** JSONL of TRL (or ShareGPT / pre-tokenized) records of the stage. */
  datasetText: string;
  /** Where the data came from ("Data page SFT set", a file name). */
  datasetLabel: string;
  settings: TrainSettings;
  /**
   * GPU memory the user stated (the Home and Model pages' "GPU memory free", in bytes): the
   * step's budget, as `fuse-studio train --gpu-memory` gives it (src/train/step-budget.ts). Left
   * out or null: not stated, the trainer's default budget.
   */
  memoryBudgetBytes?: number | null;
}

/** What the step keeps from the forward (the memory plan's choice; src/train/step-budget.ts). */
export interface StepKeeps {
  keepActivations: boolean;
  keepLogits: boolean;
  /** The chosen step's GPU bytes (weights, adapter, workspace). */
  trainingBytes: number;
  /** The budget it was checked against, and whether the user stated it (else the default). */
  budgetBytes: number | null;
  stated: boolean;
  /** planTrainingStep's reason (what is kept or recomputed, bytes against the budget). */
  reason: string;
}

/** live: this worker runs it now; interrupted: it was running when its tab went away. */
export type RunStatus = 'preparing' | 'running' | 'paused' | 'completed' | 'stopped' | 'non-finite' | 'error' | 'interrupted';

export const isLive = (s: RunStatus) => s === 'preparing' || s === 'running' || s === 'paused';

/** A run as stored (IndexedDB `fuse-studio-train`), without its dataset text and metrics. */
export interface TrainRunSummary {
  runId: string;
  modelKey: string;
  stage: Stage;
  status: RunStatus;
  settings: TrainSettings;
  datasetLabel: string;
  datasetSha256: string;
  /** Records trained on, records skipped (with line numbers). */
  examples: number;
  skipped: { line: number; reason: string }[];
  truncated: number;
  /** The chat template's date, fixed at start so a resumed run tokenizes the same. */
  dateString: string;
  /** The adapter the run started from ('sft' for DPO continuing SFT), or null (fresh). */
  init: string | null;
  /** The stored id of that adapter (what the saved adapter records as its parent). */
  initId?: string | null;
  step: number;
  totalSteps: number;
  /** Sequence length the batches are padded to. */
  seqLen: number;
  /** The stated GPU memory the run's step was planned with (bytes; null or missing: not stated). */
  memoryBudgetBytes?: number | null;
  /** What the run's step keeps from the forward, once set up. */
  stepKeeps?: StepKeeps | null;
  /** Steps of the checkpoints saved (newest last). */
  checkpoints: number[];
  /** The adapter saved at the end, by name. */
  adapterName: string | null;
  error: string | null;
  nonFinite: NonFiniteReport | null;
  createdAt: string;
  updatedAt: string;
}

/** Messages from a running stage to the page. */
export type TrainEvent =
  | { type: 'run'; run: TrainRunSummary }
  | { type: 'log'; runId: string; metrics: Metrics; etaSeconds: number | null }
  | { type: 'phase'; runId: string; phase: string | null }
  | { type: 'checkpoint'; runId: string; step: number };

/** Where the Train page keeps its settings per stage (the project bundle carries them too). */
export const TRAIN_SETTINGS_KEY = 'fuse-studio.trainSettings';
/** Where it keeps the stage last chosen (SFT or DPO), so a reload comes back to it. */
export const TRAIN_STAGE_KEY = 'fuse-studio.trainStage';

/**
 * The adapter a DPO run continues: the one chosen (null: none, a fresh adapter), or, when none
 * was chosen or the chosen one is gone, the newest SFT adapter (null when there is none).
 */
export function resolveDpoInit<T extends { name: string; kind: string }>(choice: string | null | undefined, adapters: readonly T[]): T | null {
  if (choice === null) return null;
  return (choice !== undefined ? adapters.find((a) => a.name === choice) : undefined) ?? adapters.filter((a) => a.kind === 'sft').at(-1) ?? null;
}

/** The first adapter of each stage is named so; later ones are numbered (sft-2, sft+dpo-2…). */
export const ADAPTER_NAME: Record<Stage, string> = { sft: 'sft', dpo: 'sft+dpo' };

/** What naming needs to know of a stored adapter. */
export interface AdapterNameInfo {
  name: string;
  /** The adapter it continues, by name (null: fresh or imported without one). */
  parent: string | null;
}

/**
 * `base` when free, else base-2, base-3…: never a stored adapter's name, and never a name a
 * stored adapter says it continues (so "sft+dpo" cannot come to point at a newer, different "sft").
 */
export function freeAdapterName(base: string, adapters: readonly AdapterNameInfo[]): string {
  const taken = new Set(adapters.flatMap((a) => (a.parent ? [a.name, a.parent] : [a.name])));
  if (!taken.has(base)) return base;
  for (let k = 2; ; k++) if (!taken.has(`${base}-${k}`)) return `${base}-${k}`;
}

/** What a training run says about adapter names: the one it saved, the one it continued. */
export interface RunNames {
  modelKey: string;
  adapterName: string | null;
  init: string | null;
}

/**
 * The names a new adapter of `modelKey` must not take: the stored adapters' (and what they
 * continue), and the names its training runs say they saved or continued, so no record comes to
 * mean a different adapter.
 */
export function takenNames(adapters: readonly AdapterNameInfo[], runs: readonly RunNames[], modelKey: string): AdapterNameInfo[] {
  const fromRuns = runs.filter((r) => r.modelKey === modelKey && r.adapterName).map((r) => ({ name: r.adapterName!, parent: r.init }));
  return [...adapters, ...fromRuns];
}

/**
 * The name a finished run's adapter gets: SFT "sft" (then "sft-2"…); DPO says what it continues,
 * "<init>+dpo" ("sft-2+dpo" continuing "sft-2"), or "dpo" when it starts fresh.
 */
export function runAdapterName(stage: Stage, init: string | null, adapters: readonly AdapterNameInfo[]): string {
  return freeAdapterName(stage === 'sft' ? ADAPTER_NAME.sft : init ? `${init}+dpo` : 'dpo', adapters);
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

export interface ParsedDataset {
  records: (SftRecord | DpoRecord)[];
  lines: number[];
  errors: LineError[];
}

/** Parse a stage's JSONL (the records of src/data/records.ts); bad lines come back with their number. */
export function parseDataset(text: string, stage: Stage): ParsedDataset {
  return parseJsonl<SftRecord | DpoRecord>(text, stage === 'sft' ? parseSftRecord : parseDpoRecord);
}

/** "3 malformed SFT records: line 2: …; line 7: …" (the first `max` lines), or null when there are none. */
export function describeLineErrors(errors: readonly LineError[], stage: Stage, max = 5): string | null {
  if (!errors.length) return null;
  const shown = errors.slice(0, max).map((e) => `line ${e.line}: ${e.message}`);
  const more = errors.length > max ? `; … and ${errors.length - max} more` : '';
  return `${errors.length} malformed ${stage.toUpperCase()} record${errors.length > 1 ? 's' : ''}: ${shown.join('; ')}${more}`;
}

/** Remaining seconds from the wall time of the steps done since (re)start. */
export function etaSeconds(elapsedSeconds: number, stepsDone: number, stepsLeft: number): number | null {
  if (stepsDone <= 0 || !(elapsedSeconds >= 0)) return null;
  return (elapsedSeconds / stepsDone) * Math.max(0, stepsLeft);
}

/** What a run will do, known before it starts (src/train/trainer.ts counts steps the same way). */
export interface StepPlan {
  /** Records trained on (after the ones skipped). */
  examples: number;
  stepsPerEpoch: number;
  totalSteps: number;
  /** Sequences in one optimizer step: micro-batch × accumulation (× 2 for DPO: chosen and rejected). */
  sequencesPerStep: number;
  /** Every batch is padded to this length (the longest example). */
  seqLen: number;
  /** Token positions one optimizer step computes: sequencesPerStep × seqLen. */
  positionsPerStep: number;
}

/** Steps from the set size, batch, accumulation and epochs (or max steps), as the Trainer counts them. */
export function stepPlan(stage: Stage, examples: number, seqLen: number, s: Pick<TrainSettings, 'microBatchSize' | 'gradientAccumulationSteps' | 'epochs' | 'maxSteps'>): StepPlan {
  const microBatches = Math.ceil(examples / s.microBatchSize);
  const stepsPerEpoch = Math.ceil(microBatches / s.gradientAccumulationSteps);
  const totalSteps = s.maxSteps > 0 ? s.maxSteps : s.epochs * stepsPerEpoch;
  const sequencesPerStep = s.microBatchSize * s.gradientAccumulationSteps * (stage === 'dpo' ? 2 : 1);
  return { examples, stepsPerEpoch, totalSteps, sequencesPerStep, seqLen, positionsPerStep: sequencesPerStep * seqLen };
}

/** A speed measured on this device: token positions per second of a training step. */
export interface MeasuredSpeed {
  positionsPerSecond: number;
  /** The run it was measured in. */
  runId: string;
  stage: Stage;
  createdAt: string;
  /** Steps it is the median of. */
  steps: number;
}

/**
 * The speed a finished or running run showed: the median over its steps after the first (which
 * also compiles the GPU kernels) of positions per step ÷ the step's wall time, the wall time read
 * back from the step's logged tokens ÷ tokens_per_second. Null with fewer than two such steps.
 */
export function measuredSpeed(run: Pick<TrainRunSummary, 'runId' | 'stage' | 'createdAt' | 'seqLen' | 'settings'>, history: readonly Metrics[]): MeasuredSpeed | null {
  if (!(run.seqLen > 0)) return null;
  const positions = stepPlan(run.stage, 0, run.seqLen, { ...run.settings, maxSteps: 0 }).positionsPerStep;
  const steps = stepLogs(history);
  const rates: number[] = [];
  for (let k = 1; k < steps.length; k++) {
    const m = steps[k]!;
    const tokens = (m.num_tokens ?? NaN) - (steps[k - 1]!.num_tokens ?? NaN);
    const tps = m.tokens_per_second ?? NaN;
    if ((m.step ?? 0) < 2 || !(tokens > 0) || !(tps > 0)) continue;
    rates.push(positions / (tokens / tps));
  }
  if (rates.length < 2) return null;
  rates.sort((a, b) => a - b);
  const mid = rates.length >> 1;
  const median = rates.length % 2 ? rates[mid]! : (rates[mid - 1]! + rates[mid]!) / 2;
  return { positionsPerSecond: median, runId: run.runId, stage: run.stage, createdAt: run.createdAt, steps: rates.length };
}

/** "42 s", "3 min 05 s", "1 h 02 min", or "—". */
export function formatDuration(s: number | null): string {
  if (s === null || !Number.isFinite(s) || s < 0) return '—';
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The Llama 3 chat template's date format: "26 Jul 2024". */
export function chatDateString(d: Date): string {
  return `${String(d.getDate()).padStart(2, '0')} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
}

/** Step logs (with `loss`) of a history; eval logs carry eval_* names instead. */
export const stepLogs = (history: readonly Metrics[]): Metrics[] => history.filter((m) => 'loss' in m);

/** The history kept when a run resumes from checkpoint `step`: what was logged up to it. */
export function historyUpTo(history: readonly Metrics[], step: number): Metrics[] {
  return history.filter((m) => (m.step ?? 0) <= step);
}

/** A hex SHA-256 of a text (Web Crypto: browser, worker and Node). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A new run id: stage, time, a little randomness. */
export function newRunId(stage: Stage, now = new Date()): string {
  return `${stage}-${now.toISOString().replace(/[:.]/g, '-')}-${Math.random().toString(36).slice(2, 7)}`;
}

/** Short number formatting for metrics. */
export function formatMetric(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a < 1e-3 || a >= 1e5 ? x.toExponential(2) : x.toPrecision(4);
}

/** Settings read back from storage: known keys of the right type over the stage's defaults. */
export function restoreSettings(stage: Stage, raw: unknown): TrainSettings {
  const loss: DpoLoss = raw && typeof raw === 'object' && (raw as { loss?: unknown }).loss === 'dpo' ? 'dpo' : 'ln-dpo';
  const out = defaultSettings(stage, loss);
  if (!raw || typeof raw !== 'object') return out;
  const r = raw as Record<string, unknown>;
  const target = out as unknown as Record<string, unknown>;
  for (const [k, d] of Object.entries(out)) {
    const v = r[k];
    if (typeof d === 'number' && typeof v === 'number' && Number.isFinite(v)) target[k] = v;
    else if (k === 'scheduler' && typeof v === 'string' && ['cosine', 'linear', 'constant'].includes(v)) target[k] = v;
    else if (k === 'loraTargets' && Array.isArray(v)) {
      const ts = LORA_TARGETS.filter((t) => v.includes(t));
      if (ts.length) target[k] = ts;
    }
  }
  return out;
}
