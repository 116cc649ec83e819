// Training in the worker: LoRA SFT, then DPO continuing the SFT adapter, on the session's model —
// the same flow as `fuse-studio train` (src/cli/commands/train.ts), with the page as its console.
//
// A run has an id. Its record (settings, dataset text, status, checkpoints; train-runs.ts) and
// every metrics log persist in IndexedDB as they happen; checkpoints go to DexieCheckpointStore(runId)
// every `checkpointEvery` steps through checkpointHook. A tab that goes away mid-run leaves a record
// still marked running: listTrainRuns shows it as interrupted, and resumeTrainingRun rebuilds
// everything from the newest valid checkpoint (createAdaptersFromCheckpoint + trainer.setState,
// with the stored dataset and the chat-template date fixed at start), so the next losses are the
// ones the run would have produced (src/train/resume.test.ts proves the trainer side).
//
// When a stage ends (completed, or stopped by the user) its adapter is saved under a new name
// ('sft', then 'sft-2'…; DPO '<what it continues>+dpo') through adapter-store.ts, never over an
// existing one, and installed in the session for chat. DPO continues the adapter the page picks
// (the newest SFT one by default), and the reference policy is that adapter as loaded (reference
// 'initial': FuseChat's π_ref = SFT). A NaN/Inf step stops the run with the tensors named; the
// adapter and optimizer state stay those of the last good step, which is kept as the run's newest
// checkpoint.

import type { DpoRecord, SftRecord } from '../../data/records';
import { createLoraAdapters, type LoraAdapters } from '../../model/lora';
import { dpoSeqLen, prepareDpo, prepareSft, sftSeqLen, type DpoPair, type SftExample } from '../../train/batching';
import { checkpointHook, createAdaptersFromCheckpoint, loadLatestCheckpoint, type Checkpoint } from '../../train/checkpoint';
import { DexieCheckpointStore } from '../../train/checkpoint-store-browser';
import { TrainingControl } from '../../train/control';
import { createAdaptersFromHost, readHostAdapter, type HostAdapter } from '../../train/peft';
import { stepBudgetFor, trainingStepPlanFor, type StepShape } from '../../train/step-budget';
import { Trainer, type Hyperparams, type Metrics, type TrainerState } from '../../train/trainer';
import type { TrainingStepPlan } from '../../model/memory-plan';
import {
  chatDateString,
  describeLineErrors,
  etaSeconds,
  isLive,
  measuredSpeed,
  parseDataset,
  runAdapterName,
  sha256Hex,
  stepPlan,
  type MeasuredSpeed,
  type RunStatus,
  type StartRequest,
  type StepKeeps,
  type StepPlan,
  type TrainEvent,
  type TrainRunSummary,
  type TrainSettings,
} from '../trainConfig';
import { listAdapters, loadAdapter, namesInUse, saveAdapter } from './adapter-store';
import { afterGenerations } from './chat-service';
import { installAdapter, message, requireSession, type Session } from './session';
import { summaryOf, trainRuns, type TrainRunRow } from './train-runs';

type OnEvent = (e: TrainEvent) => void;

let active: { runId: string; control: TrainingControl; row: TrainRunRow | null; setStatus: ((status: RunStatus) => void) | null } | null = null;

function hyperOf(s: TrainSettings): Partial<Hyperparams> {
  return {
    lr: s.lr,
    scheduler: s.scheduler,
    warmupRatio: s.warmupRatio,
    maxGradNorm: s.maxGradNorm,
    weightDecay: s.weightDecay,
    epochs: s.epochs,
    maxSteps: s.maxSteps,
    microBatchSize: s.microBatchSize,
    gradientAccumulationSteps: s.gradientAccumulationSteps,
    seed: s.seed,
  };
}

/** Parse and tokenize a run's dataset; malformed lines stop it, named by number. */
function prepareData(s: Session, stage: TrainRunSummary['stage'], text: string, maxLength: number, dateString: string) {
  const parsed = parseDataset(text, stage);
  const bad = describeLineErrors(parsed.errors, stage, 10);
  if (bad) throw new Error(`The dataset has ${bad}.`);
  if (!parsed.records.length) throw new Error(`The dataset has no ${stage.toUpperCase()} records.`);
  const needsText = parsed.records.findIndex((r) => r.kind !== 'sft-tokens' && r.kind !== 'dpo-tokens');
  if (needsText >= 0 && !s.tokenizer)
    throw new Error(`Line ${parsed.lines[needsText]}: text records need a tokenizer, and this model has none; use pre-tokenized records.`);
  if (!Number.isInteger(maxLength) || maxLength < 2) throw new Error(`Max length ${maxLength} must be an integer ≥ 2.`);
  const opts = { maxLength, chatTemplate: { dateString } };
  const p = stage === 'sft' ? prepareSft(parsed.records as SftRecord[], s.tokenizer, opts) : prepareDpo(parsed.records as DpoRecord[], s.tokenizer, opts);
  const V = s.loaded.config.vocabSize;
  p.examples.forEach((ex, k) => {
    const ids = 'inputIds' in ex ? ex.inputIds : [...ex.prompt, ...ex.chosen, ...ex.rejected];
    const badId = ids.find((id) => id >= V || id < 0);
    if (badId !== undefined) throw new Error(`Line ${parsed.lines[p.indices[k]!]}: token id ${badId} is outside the model's vocabulary (${V}).`);
  });
  const skipped = p.skipped.map((x) => ({ line: parsed.lines[x.index]!, reason: x.reason }));
  if (!p.examples.length) throw new Error(`No usable records: ${skipped.slice(0, 5).map((x) => `line ${x.line}: ${x.reason}`).join('; ')}`);
  return { examples: p.examples, skipped, truncated: p.truncated };
}

/** The stored adapter `name` of the session's model (GPU copy first), or null. */
async function hostAdapter(s: Session, name: string): Promise<HostAdapter | null> {
  return s.adapters.get(name)?.host ?? (await loadAdapter(s.modelKey, name, s.loaded.config));
}

/** The stated GPU memory of a request (bytes), checked; null when not stated. */
function checkedBudget(bytes: number | null | undefined): number | null {
  if (bytes === null || bytes === undefined) return null;
  if (!Number.isFinite(bytes) || !(bytes > 0)) throw new Error(`GPU memory free: must be above 0 GiB, got ${bytes / 2 ** 30} GiB; change it on the Model page or leave it empty.`);
  return bytes;
}

/**
 * What a step of this shape keeps from the forward on the session's model, planned as the
 * Trainer plans it (step-budget.ts), with the budget and whether the user stated it.
 */
export function stepKeepsFor(s: Pick<Session, 'model'>, shape: StepShape, memoryBudgetBytes: number | null | undefined, trainerPlan?: TrainingStepPlan): StepKeeps {
  const budget = checkedBudget(memoryBudgetBytes) ?? undefined;
  const plan = trainerPlan ?? trainingStepPlanFor(s.model, shape, budget);
  return {
    keepActivations: plan.keepActivations,
    keepLogits: plan.keepLogits,
    trainingBytes: plan.plan.training,
    budgetBytes: stepBudgetFor(s.model, shape, budget),
    stated: budget !== undefined,
    reason: plan.reason,
  };
}

/** Set up and run a stage: fresh (row not yet stored) or resumed from its newest checkpoint. */
async function launch(row: TrainRunRow, resume: boolean, onEvent: OnEvent): Promise<TrainRunSummary> {
  if (active) throw new Error('A training run is already in progress: pause or stop it first.');
  const control = new TrainingControl();
  active = { runId: row.runId, control, row: null, setStatus: null };
  const emit = (e: TrainEvent) => {
    try {
      void Promise.resolve(onEvent(e) as unknown).catch(() => {});
    } catch {
      // the page went away; the run goes on and persists
    }
  };
  let lora: LoraAdapters | null = null;
  let trainer: Trainer | null = null;
  try {
    // ---- set up (errors here leave any stored record as it was) ----
    const s = requireSession();
    if (s.modelKey !== row.modelKey) throw new Error(`This run trains the model "${row.modelKey}"; the loaded model is "${s.modelKey}". Load that model first.`);
    const config = s.loaded.config;
    const data = prepareData(s, row.stage, row.datasetText, row.settings.maxLength, row.dateString);
    const store = new DexieCheckpointStore(row.runId);
    let resumeFrom: Checkpoint | null = null;
    if (resume) {
      const { checkpoint, skipped } = await loadLatestCheckpoint(store, config);
      if (!checkpoint)
        throw new Error(`This run has no usable checkpoint to resume from${skipped.length ? ` (${skipped.map((x) => `step ${x.step}: ${x.reason}`).join('; ')})` : ''}.`);
      resumeFrom = checkpoint;
      lora = createAdaptersFromCheckpoint(s.ctx, config, checkpoint);
    } else if (row.init) {
      const host = await hostAdapter(s, row.init);
      if (!host) throw new Error(`The adapter "${row.init}" this run continues is gone.`);
      lora = createAdaptersFromHost(s.ctx, config, host);
    } else {
      const st = row.settings;
      lora = createLoraAdapters(s.ctx, config, { rank: st.loraRank, alpha: st.loraAlpha, targets: st.loraTargets }, { seed: st.seed });
    }
    const st = row.settings;
    const task =
      row.stage === 'sft'
        ? { kind: 'sft' as const, train: data.examples as SftExample[] }
        : { kind: 'dpo' as const, train: data.examples as DpoPair[], lossType: st.loss === 'ln-dpo' ? ('ln' as const) : ('sigmoid' as const), beta: st.beta, reference: 'initial' as const };
    const runConfig = { stage: row.stage, model: row.modelKey, data: row.datasetLabel, dataSha256: row.datasetSha256, init: row.init, settings: st, dateString: row.dateString };
    const trainerRef: { t: Trainer | null } = { t: null };
    const save = checkpointHook({ store, model: config, lora, trainerState: () => trainerRef.t!.getState(), config: runConfig, keepLast: st.keepCheckpoints });

    // Persist, in order: metrics logs, then record updates.
    let writes: Promise<void> = Promise.resolve();
    const queue = (f: () => Promise<void>) => {
      writes = writes.then(f).catch((e: unknown) => console.error('fuse-studio: could not persist the training run', e));
    };
    const persist = (changes: Partial<TrainRunRow>) => {
      Object.assign(row, changes, { updatedAt: new Date().toISOString() });
      const snapshot = { ...row };
      queue(() => trainRuns.put(snapshot));
      emit({ type: 'run', run: summaryOf(snapshot) });
    };

    let t0 = performance.now();
    let firstStep = 0;
    const t = new Trainer({
      model: s.model,
      lora,
      task,
      hyper: hyperOf(st),
      padId: s.tokenizer?.eosTokenIds[0] ?? 0,
      // The stated GPU memory is the step's budget, as the CLI's --gpu-memory (step-budget.ts).
      ...(typeof row.memoryBudgetBytes === 'number' ? { memoryBudgetBytes: row.memoryBudgetBytes } : {}),
      checkpointEvery: Math.max(0, st.checkpointEvery),
      onCheckpoint: async (step) => {
        // The metrics up to this step are on disk before the checkpoint that a resume starts from.
        await writes;
        await save(step);
        persist({ checkpoints: (await store.list()).sort((a, b) => a - b) });
        emit({ type: 'checkpoint', runId: row.runId, step });
      },
      onLog: (m: Metrics) => {
        const isStep = 'loss' in m;
        const step = m.step ?? 0;
        const eta = isStep ? etaSeconds((performance.now() - t0) / 1000, step - firstStep, t.totalSteps - step) : null;
        const runId = row.runId;
        queue(() => trainRuns.addMetrics(runId, m));
        if (isStep) {
          row.step = step;
          queue(() => trainRuns.update(runId, { step }));
        }
        emit({ type: 'log', runId, metrics: m, etaSeconds: eta });
      },
      control,
    });
    trainer = trainerRef.t = t;
    if (resumeFrom) {
      t.setState(resumeFrom.trainer as TrainerState);
      await trainRuns.truncateMetrics(row.runId, resumeFrom.step);
      row.step = resumeFrom.step;
    }
    firstStep = t.globalStep;

    // ---- the run ----
    active.row = row;
    active.setStatus = (status) => persist({ status });
    const checkpoints = (await store.list()).sort((a, b) => a - b);
    // The plan the trainer allocated (t.stepPlan), as the page shows it.
    const keeps = stepKeepsFor(s, { rows: t.rows, seqLen: t.seqLen, loraRank: lora.config.rank, targets: lora.config.targets }, row.memoryBudgetBytes, t.stepPlan);
    persist({ status: 'preparing', error: null, nonFinite: null, totalSteps: t.totalSteps, seqLen: t.seqLen, stepKeeps: keeps, checkpoints, examples: data.examples.length, skipped: data.skipped, truncated: data.truncated });
    if (resumeFrom) emit({ type: 'phase', runId: row.runId, phase: `Resumed from the checkpoint at step ${resumeFrom.step}.` });
    try {
      if (row.stage === 'dpo') {
        if (!resumeFrom) emit({ type: 'phase', runId: row.runId, phase: 'Computing the reference log-probabilities…' });
        await t.prepare();
      }
      persist({ status: control.state === 'paused' ? 'paused' : 'running' });
      if (!resumeFrom) emit({ type: 'phase', runId: row.runId, phase: null });
      t0 = performance.now();
      const result = await t.run();
      await writes;
      if (result.status === 'non-finite') {
        const r = result.nonFinite!;
        // The adapter, moments and state are those of the last good step: keep it as a checkpoint.
        if (t.globalStep > 0 && !row.checkpoints.includes(t.globalStep)) {
          await save(t.globalStep);
          row.checkpoints = (await store.list()).sort((a, b) => a - b);
        }
        const last = row.checkpoints.at(-1);
        persist({
          status: 'non-finite',
          nonFinite: r,
          error:
            `Step ${r.step}: loss ${r.loss}, gradient norm ${r.gradNorm} (not finite); no update was made. ` +
            `Tensors: ${r.tensors.join('; ') || 'none found'}. ` +
            `${last !== undefined ? `The run stopped at its last good checkpoint, step ${last}.` : 'No step had completed.'} Try a lower learning rate.`,
        });
      } else {
        const host = await readHostAdapter(s.ctx, lora);
        // A new name, never an existing adapter's (trained or imported): nothing is overwritten.
        const name = runAdapterName(row.stage, row.init, await namesInUse(s.modelKey, await trainRuns.list()));
        const what = row.stage === 'sft' ? 'SFT' : row.init ? `DPO (${st.loss}) continuing "${row.init}"` : `DPO (${st.loss}) from the base model`;
        const note = `${what}, ${t.globalStep} of ${t.totalSteps} steps${result.status === 'stopped' ? ' (stopped)' : ''}, on ${row.datasetLabel}`;
        const parent = row.init ? { name: row.init, id: row.initId ?? '' } : null;
        await saveAdapter(s.modelKey, name, host, note, { kind: row.stage, parent });
        // Replacing an adapter frees its GPU copy: not under a generation using it.
        await afterGenerations(async () => {
          installAdapter(s, name, host);
        });
        persist({ status: result.status, adapterName: name });
      }
    } catch (e) {
      persist({ status: 'error', error: message(e) });
    }
    await writes;
    // The final record once more, awaited: events travel on their own port, so one sent earlier
    // without waiting could otherwise reach the page after this reply and show a stale status.
    const final = summaryOf(row);
    await Promise.race([Promise.resolve(onEvent({ type: 'run', run: final }) as unknown).catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
    return final;
  } finally {
    trainer?.release();
    lora?.release();
    active = null;
  }
}

/** What the Train page shows before a start: the step plan, and the speed measured on this device. */
export interface TrainEstimate {
  plan: StepPlan;
  /** What the run's step will keep from the forward against the stated (or default) memory. */
  stepKeeps: StepKeeps;
  skipped: number;
  truncated: number;
  /** The newest run of this model (of the same stage if any) with a measured speed, or null. */
  speed: MeasuredSpeed | null;
}

export const trainService = {
  /**
   * The plan of a run before it starts: its data tokenized as the run will (skipped and
   * truncated records, the padded length), the steps, and a speed measured in an earlier run of
   * this model on this device (none: the time is unknown, and the page says so).
   */
  async estimateTraining(req: Pick<StartRequest, 'stage' | 'datasetText' | 'settings' | 'memoryBudgetBytes'>): Promise<TrainEstimate> {
    const s = requireSession();
    const data = prepareData(s, req.stage, req.datasetText, req.settings.maxLength, chatDateString(new Date()));
    const seqLen = req.stage === 'sft' ? sftSeqLen(data.examples as SftExample[]) : dpoSeqLen(data.examples as DpoPair[]);
    const plan = stepPlan(req.stage, data.examples.length, seqLen, req.settings);
    // The rows of a micro-batch as the Trainer counts them (a DPO pair is two); a DPO run that
    // continues an adapter takes its rank, which the page's settings show.
    const st = req.settings;
    const shape = { rows: req.stage === 'dpo' ? 2 * st.microBatchSize : st.microBatchSize, seqLen, loraRank: st.loraRank, targets: st.loraTargets };
    const stepKeeps = stepKeepsFor(s, shape, req.memoryBudgetBytes);
    const runs = (await trainRuns.list()).filter((r) => r.modelKey === s.modelKey && r.step >= 3);
    let speed: MeasuredSpeed | null = null;
    for (const r of [...runs.filter((x) => x.stage === req.stage), ...runs.filter((x) => x.stage !== req.stage)]) {
      speed = measuredSpeed(r, await trainRuns.metrics(r.runId));
      if (speed) break;
    }
    return { plan, stepKeeps, skipped: data.skipped.length, truncated: data.truncated, speed };
  },


  /** Start a stage; resolves with the run's final record (its status says how it ended). Setup errors throw. */
  async startTraining(req: StartRequest, onEvent: OnEvent): Promise<TrainRunSummary> {
    const s = requireSession();
    let settings = { ...req.settings, loraTargets: [...req.settings.loraTargets] };
    let init: string | null = null;
    let initId: string | null = null;
    if (req.stage === 'dpo' && req.init !== null) {
      // DPO continues an adapter (the newest SFT one unless told) and it is the reference: its shape wins.
      const stored = await listAdapters(s.modelKey);
      const from = req.init === undefined ? stored.filter((a) => a.kind === 'sft').at(-1) : stored.find((a) => a.name === req.init);
      if (req.init !== undefined && !from) throw new Error(`There is no adapter "${req.init}" to continue: pick another one, or start DPO from the base model.`);
      const host = from ? await hostAdapter(s, from.name) : null;
      if (from && host) {
        init = from.name;
        initId = from.id;
        settings = { ...settings, loraRank: host.rank, loraAlpha: host.alpha, loraTargets: [...host.targets] };
      }
    }
    const now = new Date();
    const row: TrainRunRow = {
      runId: req.runId,
      modelKey: s.modelKey,
      stage: req.stage,
      status: 'preparing',
      settings,
      datasetLabel: req.datasetLabel,
      datasetSha256: await sha256Hex(req.datasetText),
      datasetText: req.datasetText,
      examples: 0,
      skipped: [],
      truncated: 0,
      dateString: chatDateString(now),
      init,
      initId,
      step: 0,
      totalSteps: 0,
      seqLen: 0,
      memoryBudgetBytes: checkedBudget(req.memoryBudgetBytes),
      stepKeeps: null,
      checkpoints: [],
      adapterName: null,
      error: null,
      nonFinite: null,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
    };
    if (await trainRuns.get(req.runId)) throw new Error(`There is already a run "${req.runId}".`);
    return launch(row, false, onEvent);
  },

  /** Continue a stored run (interrupted, stopped, failed) from its newest valid checkpoint. */
  async resumeTrainingRun(runId: string, onEvent: OnEvent): Promise<TrainRunSummary> {
    const row = await trainRuns.get(runId);
    if (!row) throw new Error(`There is no run "${runId}".`);
    if (active?.runId === runId) throw new Error('This run is running now.');
    if (row.status === 'completed') throw new Error('This run has completed.');
    return launch(row, true, onEvent);
  },

  /** Hold the running run after its current step. */
  pauseTraining(): void {
    if (!active?.row || active.control.state !== 'running') return;
    active.control.pause();
    if (active.row.status === 'running') active.setStatus?.('paused');
  },

  /** Continue a paused run. */
  continueTraining(): void {
    if (!active?.row || active.control.state !== 'paused') return;
    active.control.resume();
    if (active.row.status === 'paused') active.setStatus?.('running');
  },

  /** End the running run after its current step (it checkpoints and saves its adapter). */
  stopTraining(): void {
    active?.control.stop();
  },

  /** The id of the run this worker is training, or null. */
  activeTrainingRun(): string | null {
    return active?.runId ?? null;
  },

  /** Stored runs, newest first; a run marked live that this worker is not running is 'interrupted'. */
  async listTrainingRuns(): Promise<TrainRunSummary[]> {
    const runs = await trainRuns.list();
    return runs.map((r) => (isLive(r.status) && active?.runId !== r.runId ? { ...r, status: 'interrupted' as const } : active?.runId === r.runId && active.row ? summaryOf(active.row) : r));
  },

  /** A run's logged metrics, in order. */
  trainingMetrics(runId: string): Promise<Metrics[]> {
    return trainRuns.metrics(runId);
  },

  /** Steps of a run's stored checkpoints, ascending. */
  async listCheckpoints(runId: string): Promise<number[]> {
    return (await new DexieCheckpointStore(runId).list()).sort((a, b) => a - b);
  },

  /** Delete a run: its record, metrics and checkpoints (not the adapter it saved). */
  async discardTrainingRun(runId: string): Promise<void> {
    if (active?.runId === runId) throw new Error('Stop the run before discarding it.');
    await new DexieCheckpointStore(runId).clear();
    await trainRuns.remove(runId);
  },
};
