import { useEffect, useId, useMemo, type ReactNode } from 'react';
import { formatBytes } from '../../model/memory-plan';
import { LORA_TARGETS, type LoraTarget } from '../../model/lora';
import { SCHEDULER_TYPES, type SchedulerType } from '../../train/schedule';
import { describeStepKeeps } from '../../train/step-budget';
import type { Metrics } from '../../train/trainer';
import { NumberField, ProgressBar } from '../components/fields';
import { ConfirmButton } from '../components/ConfirmButton';
import { Lineage } from '../components/Lineage';
import { MetricChart } from '../components/MetricChart';
import { useModelStore } from '../modelStore';
import {
  DEFAULT_SOURCES,
  defaultSettings,
  formatDuration,
  formatMetric,
  isLive,
  resolveDpoInit,
  runAdapterName,
  stepLogs,
  takenNames,
  type DpoLoss,
  type RunStatus,
  type Stage,
  type StepKeeps,
  type TrainRunSummary,
  type TrainSettings,
} from '../trainConfig';
import { useTrainStore, type RunView } from '../trainStore';
import type { TrainEstimate } from '../worker/train-service';

const STAGE_LABEL: Record<Stage, string> = { sft: 'SFT', dpo: 'DPO' };

/** The Train page: SFT, then DPO continuing it, with live charts, checkpoints and resume. */
export function TrainPage() {
  const model = useModelStore((s) => s.model);
  const refresh = useTrainStore((s) => s.refresh);
  const error = useTrainStore((s) => s.error);
  const dismissError = useTrainStore((s) => s.dismissError);
  const modelKey = model?.modelKey ?? null;

  useEffect(() => {
    void refresh(modelKey);
  }, [refresh, modelKey]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Train</h1>
      <p className="lead">
        Fine-tune the loaded model with LoRA in two stages, as FuseChat-3.0 does: SFT on the best answers, then DPO on the
        preference pairs, continuing the SFT adapter (which is also DPO’s reference). Runs checkpoint as they go and survive a
        reload: come back, load the same model, and resume.
      </p>
      {!model && (
        <p className="notice notice--warn" data-testid="no-model">
          Training needs a loaded model: <a href="/model">load one on the Model page</a> first.
        </p>
      )}
      {error && (
        <div role="alert" className="notice notice--error train-error">
          <span>{error}</span>
          <button type="button" className="chip" onClick={dismissError}>
            Dismiss
          </button>
        </div>
      )}
      {model && <SetupCard />}
      <RunCard modelKey={modelKey} />
      <RunsCard />
      {model && <AdaptersCard />}
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// Setup: stage, dataset, settings, start

function SetupCard() {
  const stage = useTrainStore((s) => s.stage);
  const setStage = useTrainStore((s) => s.setStage);
  const adapters = useTrainStore((s) => s.adapters);
  const dpoInit = useTrainStore((s) => s.dpoInit);
  const setDpoInit = useTrainStore((s) => s.setDpoInit);
  const activeRunId = useTrainStore((s) => s.activeRunId);
  const dataset = useTrainStore((s) => s.dataset[s.stage]);
  const start = useTrainStore((s) => s.start);
  const init = resolveDpoInit(dpoInit, adapters);
  const ready = dataset.source === 'file' ? dataset.fileText !== null && !dataset.problem : true;
  const initId = useId();
  // The name the run's adapter will get: a new one, never an existing adapter's.
  const runs = useTrainStore((s) => s.runs);
  const modelKey = useModelStore((s) => s.model?.modelKey ?? '');
  const saveAs = runAdapterName(stage, stage === 'dpo' ? (init?.name ?? null) : null, takenNames(adapters, runs, modelKey));

  return (
    <section className="card" aria-labelledby="setup-title">
      <h2 id="setup-title">New training run</h2>
      <fieldset className="train-fieldset train-stage">
        <legend>Stage</legend>
        {(['sft', 'dpo'] as const).map((s) => (
          <label key={s} className="radio-option">
            <input type="radio" name="train-stage" value={s} checked={stage === s} onChange={() => setStage(s)} />
            {s === 'sft' ? '1. SFT (supervised fine-tuning)' : '2. DPO (preference optimisation)'}
          </label>
        ))}
      </fieldset>
      {stage === 'dpo' && (
        <div className="field">
          <label htmlFor={initId}>
            <span>DPO continues</span>
          </label>
          <select id={initId} value={init?.name ?? ''} onChange={(e) => setDpoInit(e.target.value || null)}>
            {adapters.map((a) => (
              <option key={a.name} value={a.name}>
                {a.name} — {a.note}
              </option>
            ))}
            <option value="">nothing: a fresh adapter, the base model as reference</option>
          </select>
        </div>
      )}
      <p className="hint" data-testid="save-as">
        {stage === 'sft'
          ? `Trains a fresh LoRA adapter on chat examples; it is saved as “${saveAs}”${adapters.length ? ', next to the adapters already here (none is replaced)' : ''}.`
          : init
            ? `Continues the “${init.name}” adapter (its rank and targets), with it as the reference policy; the result is saved as “${saveAs}”.`
            : `DPO starts from a fresh adapter with the base model as reference; the result is saved as “${saveAs}”.${adapters.some((a) => a.kind === 'sft') ? '' : ' Train SFT first to follow the recipe.'}`}
      </p>
      <DatasetPicker />
      <SettingsForm continuing={stage === 'dpo' && init !== null} continues={init?.name ?? ''} />
      <Estimate />
      <div className="actions">
        <button type="button" className="button" disabled={activeRunId !== null || !ready} onClick={() => void start()}>
          Start {STAGE_LABEL[stage]} training
        </button>
        {activeRunId !== null && <span className="hint">A run is in progress (one at a time).</span>}
      </div>
    </section>
  );
}

/**
 * The run before it starts: its steps (from the set size, batch, accumulation and epochs, the
 * data tokenized as the run will) and a time from the speed measured on this device in an earlier
 * run of this model; without one the time is said to be unknown, never guessed.
 */
function Estimate() {
  const estimate = useTrainStore((s) => s.estimate);
  const refresh = useTrainStore((s) => s.refreshEstimate);
  const stage = useTrainStore((s) => s.stage);
  const settings = useTrainStore((s) => s.settings[s.stage]);
  const dataset = useTrainStore((s) => s.dataset[s.stage]);
  const built = useTrainStore((s) => s.dataSets[s.stage]);
  const runs = useTrainStore((s) => s.runs);
  const memoryGiB = useModelStore((s) => s.planSettings.memoryGiB);
  useEffect(() => {
    // Settings are typed a key at a time: wait for a pause.
    const t = setTimeout(() => void refresh(), 250);
    return () => clearTimeout(t);
  }, [refresh, stage, settings, dataset, built, runs, memoryGiB]);
  if (estimate.state === 'none') return null;
  return (
    <div className="train-estimate" role="status" aria-live="polite" data-testid="train-estimate">
      {estimate.state === 'working' && <p className="hint">Working out the steps…</p>}
      {estimate.state === 'error' && <p className="notice notice--error">Could not plan this run: {estimate.message}</p>}
      {estimate.state === 'ready' && <EstimateText estimate={estimate.estimate} stage={stage} settings={settings} />}
    </div>
  );
}

function EstimateText({ estimate, stage, settings }: { estimate: TrainEstimate; stage: Stage; settings: TrainSettings }) {
  const { plan, speed } = estimate;
  const seconds = speed ? (plan.totalSteps * plan.positionsPerStep) / speed.positionsPerSecond : null;
  const unit = stage === 'sft' ? 'example' : 'pair';
  return (
    <>
      <p>
        <strong data-testid="planned-steps">{plan.totalSteps} step{plan.totalSteps === 1 ? '' : 's'}</strong>:{' '}
        {settings.maxSteps > 0
          ? `max steps ${settings.maxSteps} (an epoch of ${plan.examples} ${unit}s is ${plan.stepsPerEpoch} step${plan.stepsPerEpoch === 1 ? '' : 's'})`
          : `${plan.examples} ${unit}${plan.examples === 1 ? '' : 's'} in batches of ${settings.microBatchSize} × ${settings.gradientAccumulationSteps} accumulated = ${plan.stepsPerEpoch} step${plan.stepsPerEpoch === 1 ? '' : 's'} an epoch, × ${settings.epochs} epoch${settings.epochs === 1 ? '' : 's'}`}
        ; sequences padded to {plan.seqLen} tokens
        {estimate.skipped ? `; ${estimate.skipped} record(s) skipped` : ''}
        {estimate.truncated ? `; ${estimate.truncated} truncated to ${settings.maxLength}` : ''}.
      </p>
      <StepMemory keeps={estimate.stepKeeps} />
      <p className="hint" data-testid="planned-time">
        {speed
          ? `About ${formatDuration(seconds)} on this device${stage === 'dpo' ? ', plus the pass that computes the reference log-probabilities' : ''}: ${Math.round(speed.positionsPerSecond).toLocaleString('en-US')} padded tokens/s, measured in the ${STAGE_LABEL[speed.stage]} run of ${new Date(speed.createdAt).toLocaleString()} (median of ${speed.steps} steps).`
          : 'Time: unknown. No run of this model has been timed on this device yet; once a run has taken a few steps, its ETA shows, and the next run is estimated from it.'}
      </p>
    </>
  );
}

/** What the step keeps from the forward, against the memory the user stated (or the default budget). */
function StepMemory({ keeps }: { keeps: StepKeeps }) {
  const whose = keeps.budgetBytes === null ? 'no budget' : keeps.stated ? `the ${formatBytes(keeps.budgetBytes)} you stated` : `the default budget of ${formatBytes(keeps.budgetBytes)}`;
  const fits = keeps.budgetBytes !== null && keeps.trainingBytes <= keeps.budgetBytes;
  const all = keeps.keepActivations && keeps.keepLogits;
  return (
    <p className="hint" data-testid="planned-memory">
      Each step {describeStepKeeps(keeps)}: {formatBytes(keeps.trainingBytes)} of GPU memory,{' '}
      {fits ? `within ${whose}` : `the leanest step, more than ${whose}`}
      {all ? '.' : keeps.stated ? ' (keeping more needs more memory).' : '; state your GPU memory free on the Model page to keep more when it fits.'}
    </p>
  );
}

function DatasetPicker() {
  const stage = useTrainStore((s) => s.stage);
  const choice = useTrainStore((s) => s.dataset[s.stage]);
  const built = useTrainStore((s) => s.dataSets[s.stage]);
  const setSource = useTrainStore((s) => s.setDatasetSource);
  const upload = useTrainStore((s) => s.uploadDataset);
  const fileId = useId();
  return (
    <fieldset className="train-fieldset">
      <legend>{STAGE_LABEL[stage]} dataset</legend>
      <label className="radio-option">
        <input type="radio" name={`dataset-${stage}`} checked={choice.source === 'data'} onChange={() => setSource('data')} />
        The Data page’s {STAGE_LABEL[stage]} set{' '}
        <span className="muted">({built === null ? 'not built yet' : `${built} records`})</span>
      </label>
      <label className="radio-option">
        <input type="radio" name={`dataset-${stage}`} checked={choice.source === 'file'} onChange={() => setSource('file')} />
        A JSONL file
      </label>
      {choice.source === 'file' && (
        <div className="field">
          <label htmlFor={fileId}>
            <span>{STAGE_LABEL[stage]} JSONL file</span>
          </label>
          <input
            id={fileId}
            type="file"
            accept=".jsonl,.json,application/jsonl,application/x-ndjson,text/plain"
            onChange={(e) => {
              const f = e.target.files?.[0];
              if (f) void upload(f);
            }}
          />
          <small className="field-hint">
            {stage === 'sft'
              ? 'One record per line: {"messages":[{"role":"user","content":…},{"role":"assistant","content":…}]} (TRL), ShareGPT, or pre-tokenized.'
              : 'One record per line: {"prompt":…,"chosen":…,"rejected":…} (strings or message lists, TRL), or pre-tokenized.'}
          </small>
        </div>
      )}
      {choice.source === 'file' && choice.fileName && (
        <p className={choice.problem ? 'notice notice--error' : 'notice notice--ok'} data-testid="dataset-status" role={choice.problem ? 'alert' : undefined}>
          {choice.fileName}: {choice.problem ?? `${choice.records} ${stage === 'sft' ? 'examples' : 'pairs'}.`}
        </p>
      )}
      {choice.source === 'data' && built === null && (
        <p className="hint">Build the sets on the Data page, or upload a JSONL file.</p>
      )}
    </fieldset>
  );
}

const NUMBER_FIELDS: { key: keyof TrainSettings; label: string; integer?: boolean; min?: number; max?: number; dpo?: boolean; lora?: boolean }[] = [
  { key: 'lr', label: 'Learning rate', min: 0 },
  { key: 'epochs', label: 'Epochs', integer: true, min: 1 },
  { key: 'maxSteps', label: 'Max steps (0: all epochs)', integer: true, min: 0 },
  { key: 'microBatchSize', label: 'Micro-batch size', integer: true, min: 1 },
  { key: 'gradientAccumulationSteps', label: 'Gradient accumulation steps', integer: true, min: 1 },
  { key: 'maxLength', label: 'Max length (tokens)', integer: true, min: 2 },
  { key: 'warmupRatio', label: 'Warmup ratio', min: 0, max: 1 },
  { key: 'maxGradNorm', label: 'Max gradient norm (0: off)', min: 0 },
  { key: 'weightDecay', label: 'Weight decay', min: 0 },
  { key: 'seed', label: 'Seed', integer: true, min: 0 },
  { key: 'loraRank', label: 'LoRA rank', integer: true, min: 1, lora: true },
  { key: 'loraAlpha', label: 'LoRA alpha', min: 0, lora: true },
  { key: 'beta', label: 'DPO beta', min: 0, dpo: true },
  { key: 'checkpointEvery', label: 'Checkpoint every (steps)', integer: true, min: 1 },
  { key: 'keepCheckpoints', label: 'Checkpoints kept', integer: true, min: 1 },
];

const showDefault = (v: TrainSettings[keyof TrainSettings]) => (Array.isArray(v) ? (v.length === LORA_TARGETS.length ? 'all 7' : v.join(', ')) : String(v));

function SettingsForm({ continuing, continues }: { continuing: boolean; continues: string }) {
  const stage = useTrainStore((s) => s.stage);
  const settings = useTrainStore((s) => s.settings[s.stage]);
  const setSetting = useTrainStore((s) => s.setSetting);
  const setDpoLoss = useTrainStore((s) => s.setDpoLoss);
  const reset = useTrainStore((s) => s.resetSettings);
  const defaults = useMemo(() => defaultSettings(stage, settings.loss), [stage, settings.loss]);
  const fields = NUMBER_FIELDS.filter((f) => (!f.dpo || stage === 'dpo') && !(f.lora && continuing));
  const toggleTarget = (t: LoraTarget) => {
    const has = settings.loraTargets.includes(t);
    const next = has ? settings.loraTargets.filter((x) => x !== t) : LORA_TARGETS.filter((x) => x === t || settings.loraTargets.includes(x));
    if (next.length) setSetting('loraTargets', next);
  };
  return (
    <fieldset className="train-fieldset">
      <legend>{STAGE_LABEL[stage]} settings</legend>
      <div className="form-grid form-grid--numbers">
        {stage === 'dpo' && (
          <label className="field">
            <span>DPO loss</span>
            <select value={settings.loss} onChange={(e) => setDpoLoss(e.target.value as DpoLoss)}>
              <option value="ln-dpo">length-normalised DPO (FuseChat)</option>
              <option value="dpo">standard DPO (sigmoid)</option>
            </select>
            <small className="field-hint">default ln-dpo</small>
          </label>
        )}
        <label className="field">
          <span>LR schedule</span>
          <select value={settings.scheduler} onChange={(e) => setSetting('scheduler', e.target.value as SchedulerType)}>
            {SCHEDULER_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
          <small className="field-hint">default {defaults.scheduler}</small>
        </label>
        {fields.map((f) => (
          <NumberField
            key={`${stage}-${f.key}`}
            label={f.label}
            value={settings[f.key] as number}
            onChange={(v) => v !== undefined && setSetting(f.key, v as never)}
            integer={f.integer}
            min={f.min}
            max={f.max}
            hint={`default ${showDefault(defaults[f.key])}`}
          />
        ))}
      </div>
      {continuing ? (
        <p className="hint">LoRA rank, alpha and targets come from the “{continues}” adapter this stage continues.</p>
      ) : (
        <fieldset className="train-targets">
          <legend>LoRA targets</legend>
          {LORA_TARGETS.map((t) => (
            <label key={t} className="inline-check">
              <input type="checkbox" checked={settings.loraTargets.includes(t)} onChange={() => toggleTarget(t)} />
              <code>{t}</code>
            </label>
          ))}
        </fieldset>
      )}
      <div className="actions">
        <button type="button" className="button button--secondary" onClick={reset}>
          Reset to the defaults
        </button>
      </div>
      <details>
        <summary>Where the defaults come from</summary>
        <div className="table-wrap">
          <table>
            <caption className="sr-only">Default {STAGE_LABEL[stage]} settings and their sources</caption>
            <thead>
              <tr>
                <th scope="col">Setting</th>
                <th scope="col">Default</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {(Object.keys(DEFAULT_SOURCES) as (keyof TrainSettings)[])
                .filter((k) => stage === 'dpo' || (k !== 'beta' && k !== 'loss'))
                .map((k) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td className="num">{showDefault(defaults[k])}</td>
                    <td>{DEFAULT_SOURCES[k]}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
        <p className="hint">The full notes are in src/train/defaults.ts; the paper’s own settings are full fine-tuning (FUSION.md §3).</p>
      </details>
    </fieldset>
  );
}

// ---------------------------------------------------------------------------------------------
// The run on screen

const STATUS_TEXT: Record<RunStatus, string> = {
  preparing: 'preparing',
  running: 'running',
  paused: 'paused',
  completed: 'completed',
  stopped: 'stopped',
  'non-finite': 'stopped: NaN/Inf',
  error: 'failed',
  interrupted: 'interrupted',
};

function StatusBadge({ status }: { status: RunStatus }) {
  const cls = status === 'completed' ? 'badge badge--pass' : status === 'error' || status === 'non-finite' ? 'badge badge--fail' : status === 'interrupted' ? 'badge badge--warn' : 'badge';
  return <span className={cls}>{STATUS_TEXT[status]}</span>;
}

const canResume = (r: TrainRunSummary) => !isLive(r.status) && r.status !== 'completed' && r.checkpoints.length > 0 && r.step < r.totalSteps;

function RunCard({ modelKey }: { modelKey: string | null }) {
  const current = useTrainStore((s) => s.current);
  const activeRunId = useTrainStore((s) => s.activeRunId);
  const pause = useTrainStore((s) => s.pause);
  const proceed = useTrainStore((s) => s.proceed);
  const stop = useTrainStore((s) => s.stop);
  const resume = useTrainStore((s) => s.resumeRun);
  const discard = useTrainStore((s) => s.discard);
  if (!current) return null;
  const { run } = current;
  const live = activeRunId === run.runId && isLive(run.status);
  const sameModel = modelKey !== null && modelKey === run.modelKey;
  return (
    <section className="card" aria-labelledby="run-title" data-testid="run-card">
      <div className="card-head">
        <h2 id="run-title">
          {STAGE_LABEL[run.stage]} run <StatusBadge status={run.status} />
        </h2>
        <span className="hint">
          started {new Date(run.createdAt).toLocaleString()} · <code>{run.runId}</code>
        </span>
      </div>
      <p className="hint">
        {run.examples ? `${run.examples} ${run.stage === 'sft' ? 'examples' : 'pairs'} from ` : 'Data: '}
        {run.datasetLabel}
        {run.seqLen ? `, padded to ${run.seqLen} tokens` : ''}
        {run.truncated ? `, ${run.truncated} truncated to ${run.settings.maxLength}` : ''}
        {run.init ? `; continues the “${run.init}” adapter` : ''} · lr {formatMetric(run.settings.lr)}, batch {run.settings.microBatchSize}×
        {run.settings.gradientAccumulationSteps}, LoRA r {run.settings.loraRank}
        {run.stage === 'dpo' ? `, ${run.settings.loss} β ${run.settings.beta}` : ''}
        {run.stepKeeps
          ? ` · each step ${describeStepKeeps(run.stepKeeps)} (${formatBytes(run.stepKeeps.trainingBytes)}${run.stepKeeps.stated && run.stepKeeps.budgetBytes !== null ? `, ${formatBytes(run.stepKeeps.budgetBytes)} stated` : ''})`
          : ''}
      </p>
      {run.skipped.length > 0 && (
        <p className="notice notice--warn">
          Skipped {run.skipped.length} record{run.skipped.length > 1 ? 's' : ''}:{' '}
          {run.skipped
            .slice(0, 5)
            .map((s) => `line ${s.line}: ${s.reason}`)
            .join('; ')}
        </p>
      )}
      <div role="status" aria-live="polite" data-testid="train-progress" className="train-progress">
        <ProgressBar label="Training steps" value={run.step} max={run.totalSteps}>
          Step {run.step} of {run.totalSteps || '…'}
          {live && run.status === 'running' && ` · ETA ${formatDuration(current.etaSeconds)}`}
          {run.status === 'paused' && live && ' · paused after the current step'}
        </ProgressBar>
        {current.phase && <p className="hint" data-testid="train-phase">{current.phase}</p>}
      </div>
      {run.error && (
        <div role="alert" className="notice notice--error" data-testid="run-error">
          {run.error}
        </div>
      )}
      {run.status === 'interrupted' && (
        <p className="notice notice--warn" data-testid="interrupted">
          This run was interrupted at step {run.step} (the tab was closed or reloaded).{' '}
          {run.checkpoints.length
            ? `Its last checkpoint is step ${run.checkpoints.at(-1)}: resume continues from there.`
            : 'It has no checkpoint to resume from.'}
          {!sameModel && ` Load the model “${run.modelKey}” to resume it.`}
        </p>
      )}
      {run.adapterName && (
        <p className="notice notice--ok">
          Saved the adapter “{run.adapterName}”: chat with it on the Compare page, or export it.
        </p>
      )}
      <div className="actions" role="group" aria-label="Run controls">
        {live && run.status !== 'paused' && (
          <button type="button" className="button" onClick={pause}>
            Pause
          </button>
        )}
        {live && run.status === 'paused' && (
          <button type="button" className="button" onClick={proceed}>
            Continue
          </button>
        )}
        {live && (
          <button type="button" className="button button--secondary" onClick={stop}>
            Stop
          </button>
        )}
        {!live && canResume(run) && (
          <button type="button" className="button" disabled={!sameModel || activeRunId !== null} onClick={() => void resume(run.runId)}>
            Resume from step {run.checkpoints.at(-1)}
          </button>
        )}
        {!live && (
          <ConfirmButton
            title={`Discard this ${STAGE_LABEL[run.stage]} run?`}
            body={
              <p>
                Its record, its metrics and its {run.checkpoints.length} checkpoint{run.checkpoints.length === 1 ? '' : 's'} are deleted
                {canResume(run) ? ', so it can no longer be resumed' : ''}. The adapter it saved{run.adapterName ? ` (“${run.adapterName}”)` : ''} stays.
              </p>
            }
            confirmLabel="Discard run"
            onConfirm={() => discard(run.runId)}
          >
            Discard run
          </ConfirmButton>
        )}
      </div>
      <Charts view={current} />
      <StepTable history={current.history} dpo={run.stage === 'dpo'} />
      <Checkpoints steps={run.checkpoints} />
    </section>
  );
}

const COLORS = ['#3b5bdb', '#e8590c', '#2b8a3e', '#c2255c'];

function Charts({ view }: { view: RunView }) {
  const dpo = view.run.stage === 'dpo';
  const h = view.history;
  const steps = useMemo(() => stepLogs(h), [h]);
  return (
    <div className="train-charts">
      <MetricChart
        title="Loss"
        yTitle="loss"
        format={formatMetric}
        history={h}
        series={[
          { key: 'loss', label: 'train', color: COLORS[0]! },
          { key: 'eval_loss', label: 'eval', color: COLORS[1]! },
        ].filter((s) => s.key === 'loss' || h.some((m) => s.key in m))}
      />
      <MetricChart title="Learning rate" yTitle="learning rate" format={formatMetric} history={steps} series={[{ key: 'learning_rate', label: 'lr', color: COLORS[0]! }]} fromZero />
      <MetricChart title="Gradient norm" yTitle="L2 norm" format={formatMetric} history={steps} series={[{ key: 'grad_norm', label: 'grad norm', color: COLORS[0]! }]} />
      <MetricChart title="Tokens per second" yTitle="tokens / s" format={formatMetric} history={steps} series={[{ key: 'tokens_per_second', label: 'tokens/s', color: COLORS[0]! }]} fromZero />
      <MetricChart title="GPU memory peak" yTitle="memory" history={steps} series={[{ key: 'memory/peak_bytes', label: 'peak', color: COLORS[0]! }]} format={(v) => formatBytes(v)} fromZero bytes />
      {dpo && (
        <>
          <MetricChart
            title="Rewards"
            yTitle="implicit reward"
            format={formatMetric}
            history={steps}
            series={[
              { key: 'rewards/chosen', label: 'chosen', color: COLORS[2]! },
              { key: 'rewards/rejected', label: 'rejected', color: COLORS[3]! },
              { key: 'rewards/margins', label: 'margins', color: COLORS[0]! },
            ]}
          />
          <MetricChart title="Reward accuracy" yTitle="fraction" format={formatMetric} history={steps} series={[{ key: 'rewards/accuracies', label: 'accuracy', color: COLORS[0]! }]} fromZero />
          <MetricChart
            title="Log-probs"
            yTitle="log-probability"
            format={formatMetric}
            history={steps}
            series={[
              { key: 'logps/chosen', label: 'chosen', color: COLORS[2]! },
              { key: 'logps/rejected', label: 'rejected', color: COLORS[3]! },
            ]}
          />
        </>
      )}
    </div>
  );
}

const TABLE_ROWS = 100;

function StepTable({ history, dpo }: { history: Metrics[]; dpo: boolean }) {
  const rows = stepLogs(history);
  const shown = rows.slice(-TABLE_ROWS);
  const cols: [string, string, (v: number) => string][] = [
    ['loss', 'Loss', (v) => v.toFixed(4)],
    ['learning_rate', 'Learning rate', formatMetric],
    ['grad_norm', 'Grad norm', formatMetric],
    ['tokens_per_second', 'Tokens/s', (v) => v.toFixed(1)],
    ...(dpo
      ? ([
          ['rewards/margins', 'Reward margin', formatMetric],
          ['rewards/accuracies', 'Accuracy', formatMetric],
        ] as [string, string, (v: number) => string][])
      : []),
  ];
  const evals = history.filter((m) => !('loss' in m));
  return (
    <details className="train-steps" open={rows.length > 0 && rows.length <= 20}>
      <summary>
        Step log ({rows.length} step{rows.length === 1 ? '' : 's'}
        {evals.length ? `, ${evals.length} evaluations` : ''})
      </summary>
      <div className="table-wrap">
        <table aria-label="Step log">
          <thead>
            <tr>
              <th scope="col">Step</th>
              {cols.map(([, label]) => (
                <th key={label} scope="col" className="num">
                  {label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((m, i) => (
              <tr key={`${m.step}-${i}`}>
                <th scope="row" className="num">
                  {m.step}
                </th>
                {cols.map(([key, label, f]) => (
                  <td key={label} className="num">
                    {m[key] === undefined ? '—' : f(m[key]!)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {rows.length > TABLE_ROWS && <p className="hint">The last {TABLE_ROWS} steps; the charts show them all.</p>}
    </details>
  );
}

function Checkpoints({ steps }: { steps: number[] }) {
  return (
    <div className="train-checkpoints">
      <h3 id="ckpt-title">Checkpoints</h3>
      {steps.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <ul aria-labelledby="ckpt-title" className="train-chip-list">
          {steps.map((s) => (
            <li key={s} className="badge">
              step {s}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Stored runs and adapters

function RunsCard() {
  const runs = useTrainStore((s) => s.runs);
  const current = useTrainStore((s) => s.current);
  const select = useTrainStore((s) => s.select);
  if (runs.length < 2) return null;
  return (
    <section className="card" aria-labelledby="runs-title">
      <h2 id="runs-title">Runs</h2>
      <div className="table-wrap">
        <table aria-label="Training runs" className="table--stack">
          <thead>
            <tr>
              <th scope="col">Stage</th>
              <th scope="col">Started</th>
              <th scope="col">Model</th>
              <th scope="col">Status</th>
              <th scope="col" className="num">
                Steps
              </th>
              <th scope="col">
                <span className="sr-only">Show</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.runId} className={current?.run.runId === r.runId ? 'row--selected' : undefined}>
                <td>{STAGE_LABEL[r.stage]}</td>
                <td data-label="Started">{new Date(r.createdAt).toLocaleString()}</td>
                <td data-label="Model">
                  <code>{r.modelKey}</code>
                </td>
                <td>
                  <StatusBadge status={r.status} />
                </td>
                <td className="num" data-label="Steps">
                  {r.step} / {r.totalSteps}
                </td>
                <td>
                  <button
                    type="button"
                    className="chip"
                    aria-pressed={current?.run.runId === r.runId}
                    aria-label={`Show the ${STAGE_LABEL[r.stage]} run started ${new Date(r.createdAt).toLocaleString()}`}
                    onClick={() => void select(r.runId)}
                  >
                    Show
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function AdaptersCard() {
  const adapters = useTrainStore((s) => s.adapters);
  return (
    <section className="card" aria-labelledby="adapters-title">
      <h2 id="adapters-title">Adapters of this model</h2>
      {adapters.length === 0 ? (
        <p className="muted">None yet: a finished run saves its adapter here.</p>
      ) : (
        <ul className="train-adapters" aria-label="Adapters">
          {adapters.map((a) => (
            <li key={a.name}>
              <span className="train-adapter-name">{a.name}</span> <span className="muted">r {a.rank}, alpha {a.alpha}</span>
              <Small>
                {a.note} · {new Date(a.createdAt).toLocaleString()}
                {a.parentGone && <Lineage adapter={a} />}
              </Small>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Small({ children }: { children: ReactNode }) {
  return <small className="hint train-adapter-note">{children}</small>;
}
