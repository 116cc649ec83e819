// fuse-studio train sft|dpo: LoRA SFT or DPO on a JSONL file, writing a PEFT adapter folder.
//
//   OUT/adapter_config.json, adapter_model.safetensors   the trained adapter (PEFT); base_model_name_or_path
//                                                        is the Hub repo id (--model from the Hub or a
//                                                        mirror) or --base-model-name, else empty, with
//                                                        a warning and OUT/README.md saying what to do
//   OUT/metrics.jsonl                                    one JSON line per optimizer step (and per
//                                                        evaluation), TRL / transformers metric names
//   OUT/train_config.json                                the run's configuration
//   OUT/checkpoints/checkpoint-<step>/                   resumable checkpoints (--checkpoint-every)
//
// Records: the formats of src/data/records.ts (TRL messages, ShareGPT/FuseChat, pre-tokenized;
// DPO prompt/chosen/rejected, pre-tokenized). Every line is checked before the model is loaded; bad
// lines are named by number and stop the command.
//
// SFT → DPO: `train dpo --adapter SFT_DIR` continues training the SFT adapter, and the reference
// policy is that SFT adapter as loaded (its log-probs computed once before the first update). The
// adapter written to OUT is therefore SFT+DPO in one PEFT adapter of the same rank.
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDpoRecord, parseJsonl, parseSftRecord, type DpoRecord, type SftRecord } from '../../data/records';
import { createLoraAdapters, LORA_TARGETS, type LoraAdapters, type LoraTarget } from '../../model/lora';
import { prepareDpo, prepareSft, type DpoPair, type Prepared, type SftExample } from '../../train/batching';
import { checkpointHook, createAdaptersFromCheckpoint, loadLatestCheckpoint, type Checkpoint } from '../../train/checkpoint';
import { NodeCheckpointStore } from '../../train/checkpoint-store-node';
import { BaseModelNameError, checkBaseModelName, resolveBaseModelName } from '../../train/base-model';
import { DPO_DEFAULTS, LN_DPO_DEFAULTS, SFT_DEFAULTS, type DpoLossType } from '../../train/defaults';
import { createAdaptersFromHost, readHostAdapter } from '../../train/peft';
import { loadPeftAdapter, savePeftAdapter } from '../../train/peft-node';
import { SCHEDULER_TYPES, type SchedulerType } from '../../train/schedule';
import { Trainer, type Hyperparams, type Metrics, type TrainerState } from '../../train/trainer';
import type { QuantDType } from '../../gpu/quant';
import { hasTokenizer, loadModelForCli, openModelSource, parseQuant } from '../model';
import type { TRAIN_OPTIONS } from '../commands';
import { intOption, numberOption, UsageError, type Parsed } from './args';
import { statedStepBudget } from '../../train/step-budget';

type Stage = 'sft' | 'dpo';

export const METRICS_FILE = 'metrics.jsonl';
export const TRAIN_CONFIG_FILE = 'train_config.json';
export const CHECKPOINTS_DIR = 'checkpoints';

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
}

/** Parse a JSONL file of the stage's records; any bad line stops the command, the first ten named. */
function parseRecords(path: string, text: string, stage: Stage): { records: (SftRecord | DpoRecord)[]; lines: number[] } {
  const parsed = parseJsonl<SftRecord | DpoRecord>(text, stage === 'sft' ? parseSftRecord : parseDpoRecord);
  if (parsed.errors.length) {
    const shown = parsed.errors.slice(0, 10).map((e) => `  line ${e.line}: ${e.message}`);
    const more = parsed.errors.length > 10 ? `\n  … and ${parsed.errors.length - 10} more` : '';
    throw new Error(`${path}: ${parsed.errors.length} malformed ${stage.toUpperCase()} record${parsed.errors.length > 1 ? 's' : ''}:\n${shown.join('\n')}${more}`);
  }
  if (!parsed.records.length) throw new Error(`${path}: no records`);
  return parsed;
}

function parseTargets(v: string | undefined): LoraTarget[] | undefined {
  if (v === undefined) return undefined;
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  const expanded = list.length === 1 && (list[0] === 'all' || list[0] === 'all-linear') ? [...LORA_TARGETS] : list;
  for (const t of expanded) if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new UsageError(`--lora-targets: "${t}" is not one of ${LORA_TARGETS.join(', ')} (or "all")`);
  return expanded as LoraTarget[];
}

const fmt = (x: number) => (x === 0 ? '0' : Math.abs(x) < 1e-3 || Math.abs(x) >= 1e4 ? x.toExponential(2) : x.toPrecision(4));
const clock = (s: number) => {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return `${h ? `${h}:${String(m).padStart(2, '0')}` : m}:${String(sec).padStart(2, '0')}`;
};

export async function run({ values: v, positionals }: Parsed<typeof TRAIN_OPTIONS>): Promise<number> {
  const [stage, ...extra] = positionals;
  if (stage !== 'sft' && stage !== 'dpo') throw new UsageError(`train: the first argument must be sft or dpo${stage ? `, got "${stage}"` : ''}`);
  if (extra.length) throw new UsageError(`train: unexpected argument "${extra[0]}"`);
  if (!v.model) throw new UsageError('train: --model DIR|URL is required');
  if (!v.data) throw new UsageError('train: --data FILE.jsonl is required');
  if (!v.out) throw new UsageError('train: --out ADAPTER_DIR is required');
  if (v.adapter && v.resume) throw new UsageError('train: --adapter and --resume exclude each other (a checkpoint holds the adapter)');

  // ---- options (validated before anything heavy) ----
  const lossOpt = v.loss;
  if (lossOpt !== undefined && lossOpt !== 'dpo' && lossOpt !== 'ln-dpo') throw new UsageError(`--loss: "${lossOpt}" is not dpo or ln-dpo`);
  if (lossOpt !== undefined && stage === 'sft') throw new UsageError('--loss is for train dpo');
  if (v.beta !== undefined && stage === 'sft') throw new UsageError('--beta is for train dpo');
  const lossType: DpoLossType = lossOpt === 'dpo' ? 'sigmoid' : 'ln';
  const defaults = stage === 'sft' ? SFT_DEFAULTS : lossType === 'ln' ? LN_DPO_DEFAULTS : DPO_DEFAULTS;
  const schedule = v.schedule;
  if (schedule !== undefined && !SCHEDULER_TYPES.includes(schedule as SchedulerType)) throw new UsageError(`--schedule: "${schedule}" is not ${SCHEDULER_TYPES.join(', ')}`);
  const positive = (flag: string, x: number | undefined) => {
    if (x !== undefined && !(x > 0)) throw new UsageError(`--${flag}: must be > 0, got ${x}`);
    return x;
  };
  const hyper: Partial<Hyperparams> = {
    lr: numberOption('lr', v.lr),
    epochs: positive('epochs', intOption('epochs', v.epochs)),
    maxSteps: intOption('max-steps', v['max-steps']),
    microBatchSize: positive('batch-size', intOption('batch-size', v['batch-size'])),
    gradientAccumulationSteps: positive('grad-accum', intOption('grad-accum', v['grad-accum'])),
    warmupRatio: numberOption('warmup-ratio', v['warmup-ratio']),
    scheduler: schedule as SchedulerType | undefined,
    seed: intOption('seed', v.seed),
  };
  if (hyper.maxSteps !== undefined && hyper.maxSteps < 1) throw new UsageError(`--max-steps: must be ≥ 1, got ${hyper.maxSteps}`);
  if (hyper.lr !== undefined && !(hyper.lr >= 0)) throw new UsageError(`--lr: must be ≥ 0, got ${hyper.lr}`);
  const maxLength = intOption('max-length', v['max-length']) ?? defaults.maxLength;
  if (maxLength < 2) throw new UsageError(`--max-length: must be ≥ 2, got ${maxLength}`);
  const rank = positive('lora-rank', intOption('lora-rank', v['lora-rank']));
  const alpha = positive('lora-alpha', numberOption('lora-alpha', v['lora-alpha']));
  const targets = parseTargets(v['lora-targets']);
  const beta = positive('beta', numberOption('beta', v.beta));
  const evalEvery = intOption('eval-every', v['eval-every']) ?? 0;
  const checkpointEvery = intOption('checkpoint-every', v['checkpoint-every']) ?? 500;
  const keepLast = intOption('keep-checkpoints', v['keep-checkpoints']) ?? 2;
  let memoryBudgetBytes: number | undefined;
  try {
    memoryBudgetBytes = statedStepBudget(numberOption('gpu-memory', v['gpu-memory']), '--gpu-memory');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let baseModelName: string;
  try {
    baseModelName = checkBaseModelName(v['base-model-name'] ?? '', '--base-model-name');
  } catch (e) {
    if (e instanceof BaseModelNameError) throw new UsageError(e.message);
    throw e;
  }
  await trainAdapter({
    stage,
    model: v.model,
    quant: parseQuant(v.quant),
    data: v.data,
    out: v.out,
    ...(v.adapter ? { adapter: v.adapter } : {}),
    ...(v.resume ? { resume: v.resume } : {}),
    ...(v.eval ? { eval: v.eval } : {}),
    hyper,
    maxLength,
    ...(rank !== undefined ? { rank } : {}),
    ...(alpha !== undefined ? { alpha } : {}),
    ...(targets ? { targets } : {}),
    ...(beta !== undefined ? { beta } : {}),
    lossType,
    evalEvery,
    checkpointEvery,
    keepLast,
    ...(memoryBudgetBytes !== undefined ? { memoryBudgetBytes } : {}),
    ...(v['date-string'] !== undefined ? { dateString: v['date-string'] } : {}),
    ...(baseModelName ? { baseModelName } : {}),
    say: v.quiet ? () => {} : (s: string) => console.log(s),
  });
  return 0;
}

/** One `train sft|dpo` run, its options parsed (what `run` and `fuse-studio demo` call). */
export interface TrainAdapterOptions {
  stage: Stage;
  /** --model: a folder, URL or Hub repo. */
  model: string;
  /** JSONL records of the stage. */
  data: string;
  /** The adapter folder written. */
  out: string;
  /** A PEFT adapter to continue (dpo: also the reference policy). */
  adapter?: string;
  /** Keep the base quantized (QLoRA-style; the adapter stays a PEFT adapter of the full-precision base). */
  quant?: QuantDType | null;
  /** A checkpoints folder, or a run's OUT holding one. */
  resume?: string;
  eval?: string;
  hyper: Partial<Hyperparams>;
  maxLength?: number;
  rank?: number;
  alpha?: number;
  targets?: LoraTarget[];
  beta?: number;
  /** Default 'ln' (length-normalised DPO). */
  lossType?: DpoLossType;
  evalEvery?: number;
  checkpointEvery?: number;
  keepLast?: number;
  dateString?: string;
  /**
   * --base-model-name: the adapter's base_model_name_or_path (a Hub repo id or an absolute path).
   * Default: the Hub repo id when --model is from the Hub or a mirror, else empty with a warning
   * and a README.md in OUT saying what to put there (src/train/base-model.ts).
   */
  baseModelName?: string;
  /** GPU bytes the training step may use (Trainer's memoryBudgetBytes; default its own). */
  memoryBudgetBytes?: number | null;
  /** Progress lines (default console.log). */
  say?: (line: string) => void;
  /** Warnings (default console.error, also when `say` is silent). */
  warn?: (line: string) => void;
}

export interface TrainAdapterResult {
  steps: number;
  status: string;
  /** Records trained on. */
  examples: number;
  seconds: number;
  metricsPath: string;
}

/** Trains a LoRA adapter (SFT or DPO) and writes it as `train` does; throws on any failure. */
export async function trainAdapter(o: TrainAdapterOptions): Promise<TrainAdapterResult> {
  const { stage, hyper } = o;
  const v = { model: o.model, data: o.data, out: o.out, adapter: o.adapter, resume: o.resume, eval: o.eval };
  const lossType: DpoLossType = o.lossType ?? 'ln';
  const defaults = stage === 'sft' ? SFT_DEFAULTS : lossType === 'ln' ? LN_DPO_DEFAULTS : DPO_DEFAULTS;
  const maxLength = o.maxLength ?? defaults.maxLength;
  const { rank, alpha, targets, beta } = o;
  const evalEvery = o.evalEvery ?? 0;
  const checkpointEvery = o.checkpointEvery ?? 500;
  const keepLast = o.keepLast ?? 2;
  const chatTemplate = o.dateString === undefined ? undefined : { dateString: o.dateString };
  const say = o.say ?? ((s: string) => console.log(s));

  // ---- data ----
  const dataText = await readText(v.data);
  const data = parseRecords(v.data, dataText, stage);
  const evalData = v.eval ? parseRecords(v.eval, await readText(v.eval), stage) : null;
  const dataSha256 = createHash('sha256').update(dataText).digest('hex');

  // ---- resume: DIR is a checkpoints folder, or a run's OUT holding one ----
  let resumeDir: string | null = null;
  if (v.resume) {
    resumeDir = v.resume;
    if (await stat(join(resumeDir, CHECKPOINTS_DIR)).then((x) => x.isDirectory(), () => false)) resumeDir = join(resumeDir, CHECKPOINTS_DIR);
    if (!(await new NodeCheckpointStore(resumeDir).list()).length) throw new Error(`--resume ${v.resume}: no checkpoint-<step> folders`);
  }

  const source = await openModelSource(v.model);
  const needsText = data.records.findIndex((r) => r.kind !== 'sft-tokens' && r.kind !== 'dpo-tokens');
  if (needsText >= 0 && !(await hasTokenizer(source)))
    throw new Error(
      `${v.data} line ${data.lines[needsText]}: text records need a tokenizer, and ${source.description} has no tokenizer.json; ` +
        'use pre-tokenized records ({"input_ids","labels"} or {"prompt_input_ids","chosen_input_ids","rejected_input_ids"})',
    );

  const m = await loadModelForCli(source, { quant: o.quant ?? null });
  // Said before training, so a long run does not end with the surprise.
  const base = resolveBaseModelName(m.loaded.source, o.baseModelName ?? '', '--base-model-name');
  if (base.warning) (o.warn ?? ((s: string) => console.error(s)))(`warning: ${base.warning} (--base-model-name)`);
  let lora: LoraAdapters | null = null;
  let trainer: Trainer | null = null;
  let resumeFrom: Checkpoint | null = null;
  try {
    const config = m.loaded.config;
    const V = config.vocabSize;

    // ---- tokenize; skipped records are named by line ----
    const tokenize = (records: (SftRecord | DpoRecord)[], lines: number[], path: string): Prepared<SftExample> | Prepared<DpoPair> => {
      const opts = { maxLength, ...(chatTemplate ? { chatTemplate } : {}) };
      const p = stage === 'sft' ? prepareSft(records as SftRecord[], m.tokenizer, opts) : prepareDpo(records as DpoRecord[], m.tokenizer, opts);
      for (const s of p.skipped) console.error(`${path} line ${lines[s.index]}: skipped: ${s.reason}`);
      p.examples.forEach((ex, k) => {
        const ids = 'inputIds' in ex ? ex.inputIds : [...ex.prompt, ...ex.chosen, ...ex.rejected];
        const bad = ids.find((id) => id >= V);
        if (bad !== undefined) throw new Error(`${path} line ${lines[p.indices[k]!]}: token id ${bad} is outside the model's vocabulary (${V})`);
      });
      if (!p.examples.length) throw new Error(`${path}: no usable records (${p.skipped.length} skipped)`);
      if (p.truncated) say(`${path}: ${p.truncated} record(s) truncated to ${maxLength} tokens`);
      return p;
    };
    const train = tokenize(data.records, data.lines, v.data);
    const evalSet = evalData ? tokenize(evalData.records, evalData.lines, v.eval!) : null;

    // ---- the adapter: from a checkpoint, from --adapter (continued), or fresh ----
    let initNote: string;
    if (resumeDir) {
      const { checkpoint, skipped } = await loadLatestCheckpoint(new NodeCheckpointStore(resumeDir), config);
      for (const s of skipped) console.error(`--resume: skipped checkpoint-${s.step}: ${s.reason}`);
      if (!checkpoint) throw new Error(`--resume ${resumeDir}: no valid checkpoint`);
      const saved = checkpoint.config as { stage?: string; dataSha256?: string } | null;
      if (saved?.stage && saved.stage !== stage) throw new Error(`--resume: checkpoint-${checkpoint.step} is from a train ${saved.stage} run, not train ${stage}`);
      if (saved?.dataSha256 && saved.dataSha256 !== dataSha256) throw new Error(`--resume: ${v.data} is not the data checkpoint-${checkpoint.step} was trained on (its SHA-256 differs)`);
      if ((rank && rank !== checkpoint.lora.rank) || (alpha && alpha !== checkpoint.lora.alpha) || (targets && targets.join() !== checkpoint.lora.targets.join()))
        throw new UsageError('--resume: the LoRA options differ from the checkpoint (leave them out to use the checkpoint\'s)');
      resumeFrom = checkpoint;
      lora = createAdaptersFromCheckpoint(m.ctx, config, checkpoint);
      initNote = `resuming from ${join(resumeDir, `checkpoint-${checkpoint.step}`)}`;
    } else if (v.adapter) {
      const imported = await loadPeftAdapter(v.adapter, config);
      for (const note of imported.notes) console.error(`--adapter: ${note}`);
      const a = imported.adapter;
      if ((rank && rank !== a.rank) || (alpha && alpha !== a.alpha) || (targets && targets.join() !== a.targets.join()))
        throw new UsageError(`--adapter: the adapter has rank ${a.rank}, alpha ${a.alpha}, targets ${a.targets.join(',')}; training continues it, so leave --lora-* out or match them`);
      lora = createAdaptersFromHost(m.ctx, config, a);
      initNote = `continuing the adapter ${v.adapter} (r ${a.rank}, alpha ${a.alpha})${stage === 'dpo' ? '; it is also the DPO reference policy' : ''}`;
    } else {
      const r = rank ?? defaults.lora.rank;
      lora = createLoraAdapters(m.ctx, config, { rank: r, alpha: alpha ?? (rank ? 2 * r : defaults.lora.alpha), targets: targets ?? LORA_TARGETS }, { seed: hyper.seed ?? 42 });
      initNote = `a fresh LoRA adapter (r ${lora.config.rank}, alpha ${lora.config.alpha})${stage === 'dpo' ? '; the base model is the DPO reference policy' : ''}`;
    }

    // ---- the run ----
    await mkdir(v.out, { recursive: true });
    const metricsPath = join(v.out, METRICS_FILE);
    if (!resumeFrom) await writeFile(metricsPath, '');
    const runConfig = {
      stage,
      model: v.model,
      data: v.data,
      dataSha256,
      eval: v.eval ?? null,
      init: v.adapter ?? null,
      lora: lora.config,
      maxLength,
      hyper,
      ...(stage === 'dpo' ? { beta: beta ?? (lossType === 'ln' ? LN_DPO_DEFAULTS.beta : DPO_DEFAULTS.beta), loss: lossType === 'ln' ? 'ln-dpo' : 'dpo' } : {}),
    };
    const task =
      stage === 'sft'
        ? { kind: 'sft' as const, train: train.examples as SftExample[], ...(evalSet ? { eval: evalSet.examples as SftExample[] } : {}) }
        : {
            kind: 'dpo' as const,
            train: train.examples as DpoPair[],
            ...(evalSet ? { eval: evalSet.examples as DpoPair[] } : {}),
            lossType,
            ...(beta !== undefined ? { beta } : {}),
            reference: 'initial' as const,
          };
    const store = new NodeCheckpointStore(join(v.out, CHECKPOINTS_DIR));
    const saveCheckpoint = checkpointHook({ store, model: config, lora, trainerState: () => trainer!.getState(), config: runConfig, keepLast });
    const started = performance.now();
    let firstStep = 0;
    // metrics.jsonl lines are appended in order (one write after the other).
    let writes: Promise<void> = Promise.resolve();
    trainer = new Trainer({
      model: m.model,
      lora,
      task,
      hyper,
      padId: m.tokenizer?.eosTokenIds[0] ?? 0,
      evalEvery,
      checkpointEvery,
      ...(o.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: o.memoryBudgetBytes } : {}),
      onCheckpoint: (step) => saveCheckpoint(step),
      onLog: (x: Metrics) => {
        writes = writes.then(() => appendFile(metricsPath, JSON.stringify(x) + '\n'));
        if (!('loss' in x)) {
          say(`eval  step ${x.step}  ${Object.entries(x).filter(([k]) => k.startsWith('eval_')).map(([k, val]) => `${k} ${fmt(val)}`).join('  ')}`);
          return;
        }
        const done = x.step! - firstStep;
        const perStep = (performance.now() - started) / 1000 / Math.max(1, done);
        const eta = perStep * (trainer!.totalSteps - x.step!);
        const dpo = 'rewards/margins' in x ? `  margin ${fmt(x['rewards/margins']!)}  acc ${fmt(x['rewards/accuracies']!)}` : '';
        say(`step ${x.step}/${trainer!.totalSteps}  loss ${x.loss!.toFixed(4)}  lr ${fmt(x.learning_rate!)}${dpo}  ${Math.round(x.tokens_per_second!)} tok/s  ETA ${clock(eta)}`);
      },
    });
    if (resumeFrom) {
      trainer.setState(resumeFrom.trainer as TrainerState);
      firstStep = trainer.globalStep;
    }
    const examplesWord = stage === 'sft' ? 'examples' : 'pairs';
    say(`train ${stage}: ${task.train.length} ${examplesWord}${evalSet ? ` (+${evalSet.examples.length} eval)` : ''}, ${trainer.totalSteps} steps, seq ${trainer.seqLen}; ${initNote}`);
    say(`step plan: ${trainer.stepPlan.reason}`);
    if (stage === 'dpo' && !resumeFrom) say('computing reference log-probs …');

    const result = await trainer.run();
    await writes;
    if (result.status === 'non-finite') {
      const r = result.nonFinite!;
      throw new Error(`step ${r.step}: loss ${r.loss}, grad norm ${r.gradNorm} (not finite); no update was made. Tensors: ${r.tensors.join('; ') || 'none found'}. Try a lower --lr.`);
    }
    const adapter = await readHostAdapter(m.ctx, lora);
    await savePeftAdapter(v.out, adapter, { baseModel: base.name, loadedFrom: m.loaded.source });
    await writeFile(join(v.out, TRAIN_CONFIG_FILE), JSON.stringify({ ...runConfig, steps: trainer.globalStep, status: result.status }, null, 2) + '\n');
    const seconds = (performance.now() - started) / 1000;
    say(`${result.status === 'stopped' ? 'stopped' : 'done'} after ${trainer.globalStep} steps in ${clock(seconds)}: adapter in ${v.out}, metrics in ${metricsPath}`);
    return { steps: trainer.globalStep, status: result.status, examples: task.train.length, seconds, metricsPath };
  } finally {
    trainer?.release();
    lora?.release();
    m.release();
  }
}

