// Training checkpoints: the adapter weights, their AdamW moments (m, v), the trainer's state (step,
// epoch, position in the shuffled order, RNG, schedule — whatever trainer.getState() returns, as
// JSON) and the run's config, saved into a CheckpointStore (Node folder: checkpoint-store-node.ts;
// browser IndexedDB: checkpoint-store-browser.ts).
//
// A checkpoint is a small set of files:
//   adapter_config.json, adapter_model.safetensors   the adapter as PEFT (f32): a checkpoint folder
//                                                    loads as an adapter anywhere, peft included
//   optimizer.safetensors                            <PEFT tensor name>.exp_avg / .exp_avg_sq (f32)
//   trainer_state.json                               {step, lora, trainer, config}
//   manifest.json                                    byte length and SHA-256 of every other file,
//                                                    written last
// Loading walks the checkpoints newest first and takes the first whose manifest is present and
// whose files all match it; a torn or partial checkpoint (crash mid-write, quota, a half-copied
// folder) is skipped with the reason and never loaded.

import type { GpuContext } from '../gpu/context';
import { encode } from '../gpu/dtype';
import type { ModelConfig } from '../model/config';
import { createLoraAdapters, peftTensorName, resolveLoraConfig, type LoraAdapters, type LoraConfig } from '../model/lora';
import { writeSafetensors } from '../model/safetensors';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  checkAdapterFitsModel,
  exportPeftAdapter,
  importPeftAdapter,
  readTensor,
  safetensorsHeaderOf,
  type HostAdapter,
} from './peft';

export const CHECKPOINT_FORMAT = 'fuse-studio-checkpoint';
export const CHECKPOINT_VERSION = 1;
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'trainer_state.json';
export const MANIFEST_FILE = 'manifest.json';

/** Where checkpoints live. Steps identify checkpoints; writing a step again replaces it. */
export interface CheckpointStore {
  /** A description for messages (a folder path, a database name). */
  readonly description: string;
  /** Steps of the checkpoints present, complete or not, in any order. */
  list(): Promise<number[]>;
  /** Store every file of checkpoint `step` (as atomically as the medium allows). */
  write(step: number, files: ReadonlyMap<string, Uint8Array>): Promise<void>;
  /** The files of checkpoint `step`, or null when it is gone. */
  read(step: number): Promise<Map<string, Uint8Array> | null>;
  remove(step: number): Promise<void>;
}

/** One trainable tensor with its AdamW moments (host copies). */
export interface CheckpointParam {
  name: string;
  value: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

export interface Checkpoint {
  /** Optimizer steps taken. */
  step: number;
  /** The adapter's shape (and its values, ordered as the adapters' params). */
  lora: Required<LoraConfig>;
  params: CheckpointParam[];
  /** trainer.getState(): JSON-serializable. */
  trainer: unknown;
  /** The run's configuration (hyperparameters, data, model), JSON-serializable. */
  config: unknown;
}

export class CheckpointCorruptError extends Error {
  override name = 'CheckpointCorruptError';
}

// ---------------------------------------------------------------------------------------------
// GPU <-> checkpoint

/** Read the adapter values and moments off the GPU. */
export async function captureCheckpoint(ctx: GpuContext, lora: LoraAdapters, meta: { step: number; trainer: unknown; config: unknown }): Promise<Checkpoint> {
  if (!lora.params.length) throw new Error('checkpoint: the adapter is not trainable (no moments to save)');
  const params: CheckpointParam[] = [];
  for (const p of lora.params) params.push({ name: p.name, value: await ctx.readF32(p.value), m: await ctx.readF32(p.m), v: await ctx.readF32(p.v) });
  return { step: meta.step, lora: { ...lora.config, targets: [...lora.config.targets] }, params, trainer: meta.trainer, config: meta.config };
}

/** Write a checkpoint's values and moments into trainable adapters of the same shape (gradients are zeroed). */
export function restoreCheckpoint(ctx: GpuContext, lora: LoraAdapters, ckpt: Checkpoint): void {
  const c = lora.config;
  if (c.rank !== ckpt.lora.rank || c.alpha !== ckpt.lora.alpha || c.targets.join() !== ckpt.lora.targets.join())
    throw new Error(
      `checkpoint: step ${ckpt.step} is for LoRA rank ${ckpt.lora.rank}, alpha ${ckpt.lora.alpha} on ${ckpt.lora.targets.join(',')}; ` +
        `the adapters are rank ${c.rank}, alpha ${c.alpha} on ${c.targets.join(',')}`,
    );
  const byName = new Map(ckpt.params.map((p) => [p.name, p]));
  if (byName.size !== lora.params.length) throw new Error(`checkpoint: has ${byName.size} tensors, the adapters ${lora.params.length}`);
  for (const p of lora.params) {
    const saved = byName.get(p.name);
    if (!saved) throw new Error(`checkpoint: no tensor ${p.name}`);
    for (const [t, v, what] of [
      [p.value, saved.value, 'value'],
      [p.m, saved.m, 'exp_avg'],
      [p.v, saved.v, 'exp_avg_sq'],
    ] as const) {
      if (v.length !== t.size) throw new Error(`checkpoint: ${p.name} ${what} has ${v.length} values, the adapter ${t.size}`);
      ctx.writeBytes(t, encode(v, 'f32'));
    }
  }
  const batch = ctx.batch('checkpoint restore');
  for (const p of lora.params) batch.clear(p.grad);
  batch.submit();
}

/** Fresh trainable adapters for `model` holding a checkpoint's values and moments. */
export function createAdaptersFromCheckpoint(ctx: GpuContext, model: ModelConfig, ckpt: Checkpoint): LoraAdapters {
  checkAdapterFitsModel(checkpointAdapter(ckpt, model), model, `checkpoint step ${ckpt.step}`);
  const lora = createLoraAdapters(ctx, model, ckpt.lora, { trainable: true });
  try {
    restoreCheckpoint(ctx, lora, ckpt);
  } catch (e) {
    lora.release();
    throw e;
  }
  return lora;
}

/** The adapter a checkpoint holds (values only), for export. */
export function checkpointAdapter(ckpt: Checkpoint, model: ModelConfig): HostAdapter {
  const byName = new Map(ckpt.params.map((p) => [p.name, p.value]));
  const { rank, alpha, targets } = ckpt.lora;
  const layers: HostAdapter['layers'] = [];
  for (let l = 0; l < model.numLayers; l++) {
    const layer: HostAdapter['layers'][number] = {};
    for (const t of targets) {
      const a = byName.get(peftTensorName(l, t, 'A'));
      const b = byName.get(peftTensorName(l, t, 'B'));
      if (!a || !b) throw new CheckpointCorruptError(`checkpoint step ${ckpt.step}: no layer ${l} ${t} adapter`);
      layer[t] = { a, b };
    }
    layers.push(layer);
  }
  return { rank, alpha, targets: [...targets], layers };
}

// ---------------------------------------------------------------------------------------------
// (De)serialization

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

const exact = (v: Float32Array) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);

/** The files of a checkpoint, manifest included. */
export async function serializeCheckpoint(ckpt: Checkpoint, model: ModelConfig): Promise<Map<string, Uint8Array>> {
  if (!Number.isInteger(ckpt.step) || ckpt.step < 0) throw new Error(`checkpoint: step ${ckpt.step} must be a non-negative integer`);
  const files = exportPeftAdapter(checkpointAdapter(ckpt, model), { dtype: 'f32', metadata: { step: String(ckpt.step) } });
  const moments = ckpt.params.flatMap((p) => [
    { name: `${p.name}.exp_avg`, dtype: 'F32' as const, shape: [p.m.length], data: exact(p.m) },
    { name: `${p.name}.exp_avg_sq`, dtype: 'F32' as const, shape: [p.v.length], data: exact(p.v) },
  ]);
  files.set(OPTIMIZER_FILE, writeSafetensors(moments, { format: 'pt', step: String(ckpt.step) }));
  const state = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step: ckpt.step, lora: ckpt.lora, params: ckpt.params.map((p) => p.name), trainer: ckpt.trainer, config: ckpt.config };
  let text: string;
  try {
    text = JSON.stringify(state, null, 1);
  } catch (e) {
    throw new Error(`checkpoint: the trainer state or config is not JSON-serializable (${(e as Error).message})`, { cause: e });
  }
  files.set(STATE_FILE, new TextEncoder().encode(text + '\n'));
  const manifest: Record<string, { bytes: number; sha256: string }> = {};
  for (const [name, bytes] of files) manifest[name] = { bytes: bytes.byteLength, sha256: await sha256(bytes) };
  files.set(MANIFEST_FILE, new TextEncoder().encode(JSON.stringify({ format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step: ckpt.step, files: manifest }, null, 1) + '\n'));
  return files;
}

/** Check a checkpoint's files against its manifest and parse them; throws CheckpointCorruptError saying what is wrong. */
export async function deserializeCheckpoint(files: ReadonlyMap<string, Uint8Array>, model: ModelConfig): Promise<Checkpoint> {
  const bad = (msg: string) => new CheckpointCorruptError(msg);
  const manifestBytes = files.get(MANIFEST_FILE);
  if (!manifestBytes) throw bad(`no ${MANIFEST_FILE} (the checkpoint was never finished)`);
  let manifest: { format?: unknown; version?: unknown; step?: unknown; files?: Record<string, { bytes: number; sha256: string }> };
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch (e) {
    throw bad(`${MANIFEST_FILE} is not valid JSON (${(e as Error).message})`);
  }
  if (manifest.format !== CHECKPOINT_FORMAT) throw bad(`${MANIFEST_FILE}: format ${JSON.stringify(manifest.format)} is not ${CHECKPOINT_FORMAT}`);
  if (manifest.version !== CHECKPOINT_VERSION) throw bad(`${MANIFEST_FILE}: version ${JSON.stringify(manifest.version)} is not supported (expected ${CHECKPOINT_VERSION})`);
  const listed = manifest.files ?? {};
  for (const need of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, OPTIMIZER_FILE, STATE_FILE])
    if (!listed[need]) throw bad(`${MANIFEST_FILE} does not list ${need}`);
  for (const [name, want] of Object.entries(listed)) {
    const bytes = files.get(name);
    if (!bytes) throw bad(`${name} is missing`);
    if (bytes.byteLength !== want.bytes) throw bad(`${name} has ${bytes.byteLength} bytes, the manifest says ${want.bytes} (torn write)`);
    if ((await sha256(bytes)) !== want.sha256) throw bad(`${name} does not match its SHA-256 in the manifest (corrupt)`);
  }

  let state: { step: number; lora: Required<LoraConfig>; params: string[]; trainer: unknown; config: unknown };
  try {
    state = JSON.parse(new TextDecoder().decode(files.get(STATE_FILE)!));
  } catch (e) {
    throw bad(`${STATE_FILE} is not valid JSON (${(e as Error).message})`);
  }
  if (state.step !== manifest.step) throw bad(`${STATE_FILE} says step ${state.step}, the manifest ${String(manifest.step)}`);
  const lora = resolveLoraConfig(state.lora);
  const { adapter } = importPeftAdapter(files, model);
  if (adapter.rank !== lora.rank || adapter.alpha !== lora.alpha || adapter.targets.join() !== lora.targets.join())
    throw bad(`the adapter files (rank ${adapter.rank}, alpha ${adapter.alpha}) disagree with ${STATE_FILE} (rank ${lora.rank}, alpha ${lora.alpha})`);
  const opt = files.get(OPTIMIZER_FILE)!;
  const optHeader = safetensorsHeaderOf(OPTIMIZER_FILE, opt);
  const values = new Map<string, Float32Array>();
  adapter.layers.forEach((layer, l) => {
    for (const t of adapter.targets) {
      values.set(peftTensorName(l, t, 'A'), layer[t]!.a);
      values.set(peftTensorName(l, t, 'B'), layer[t]!.b);
    }
  });
  const params = state.params.map((name) => {
    const value = values.get(name);
    if (!value) throw bad(`${STATE_FILE} lists ${name}, which the adapter file lacks`);
    return {
      name,
      value,
      m: readTensor(optHeader, opt, `${name}.exp_avg`, [value.length], 'exp_avg'),
      v: readTensor(optHeader, opt, `${name}.exp_avg_sq`, [value.length], 'exp_avg_sq'),
    };
  });
  return { step: state.step, lora, params, trainer: state.trainer, config: state.config };
}

// ---------------------------------------------------------------------------------------------
// Save / load through a store

export interface SaveOptions {
  /** Keep only the newest `keepLast` checkpoints (by step); default 3. 0 or Infinity keeps all. */
  keepLast?: number;
}

/** Serialize and store a checkpoint, then drop the oldest beyond keepLast. */
export async function saveCheckpoint(store: CheckpointStore, ckpt: Checkpoint, model: ModelConfig, options: SaveOptions = {}): Promise<void> {
  const files = await serializeCheckpoint(ckpt, model);
  await store.write(ckpt.step, files);
  const keep = options.keepLast ?? 3;
  if (keep > 0 && Number.isFinite(keep)) {
    const steps = (await store.list()).sort((a, b) => b - a);
    for (const s of steps.slice(keep)) if (s !== ckpt.step) await store.remove(s);
  }
}

export interface LoadedCheckpoint {
  /** The newest valid checkpoint, or null when there is none. */
  checkpoint: Checkpoint | null;
  /** Newer checkpoints that were not usable, and why. */
  skipped: { step: number; reason: string }[];
}

/** The newest valid checkpoint (torn or corrupt ones are skipped, with the reason). */
export async function loadLatestCheckpoint(store: CheckpointStore, model: ModelConfig): Promise<LoadedCheckpoint> {
  const skipped: LoadedCheckpoint['skipped'] = [];
  for (const step of (await store.list()).sort((a, b) => b - a)) {
    try {
      const files = await store.read(step);
      if (!files) throw new CheckpointCorruptError('vanished while reading');
      const checkpoint = await deserializeCheckpoint(files, model);
      if (checkpoint.step !== step) throw new CheckpointCorruptError(`is stored as step ${step} but holds step ${checkpoint.step}`);
      return { checkpoint, skipped };
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      skipped.push({ step, reason: e.message });
    }
  }
  return { checkpoint: null, skipped };
}

export interface CheckpointHookOptions extends SaveOptions {
  store: CheckpointStore;
  /** The model the adapter belongs to (shapes are checked against it). */
  model: ModelConfig;
  lora: LoraAdapters;
  /** The trainer's state at save time (trainer.getState()); called when a checkpoint is taken. */
  trainerState: () => unknown;
  /** The run's configuration saved with every checkpoint. */
  config: unknown;
  /** Told about each checkpoint written. */
  onSaved?: (step: number, store: CheckpointStore) => void;
}

/**
 * The Trainer's onCheckpoint: capture the adapter, its moments and the trainer state and save
 * them (the trainer calls it between steps, so all three agree).
 *
 *   let trainer: Trainer;
 *   const onCheckpoint = checkpointHook({ store, model: config, lora, trainerState: () => trainer.getState(), config: run });
 *   trainer = new Trainer({ …, checkpointEvery: 50, onCheckpoint });
 */
export function checkpointHook(o: CheckpointHookOptions): (step: number) => Promise<void> {
  return async (step) => {
    const ckpt = await captureCheckpoint(o.lora.params[0]!.value.ctx, o.lora, { step, trainer: o.trainerState(), config: o.config });
    await saveCheckpoint(o.store, ckpt, o.model, o);
    o.onSaved?.(step, o.store);
  };
}
