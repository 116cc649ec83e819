// What the model commands share: open --model (a folder, URL, Hub repo or preset alias), load it
// onto the GPU with its tokenizer (if any) and an optional PEFT adapter folder (--adapter). A preset
// (src/model/presets.ts) says its download size and memory plan before its first download, and is
// refused before any download when a tensor of its plan exceeds this GPU's buffer limits.
import type { GpuContext } from '../gpu/context';
import type { ModelConfig } from '../model/config';
import { createNodeContext } from '../gpu/node';
import type { QuantDType } from '../gpu/quant';
import { parseQuant } from './quant-option';
import { createDecoderModel, type DecoderModel } from '../model/decoder';
import { loadModel, readModelMeta, type LoadedModel, type LoadProgress } from '../model/load';
import type { LoraAdapters } from '../model/lora';
import { formatBytes } from '../model/memory-plan';
import { PRESET_PLAN_DEFAULTS, presetPlan } from '../model/preset-plans';
import { downloadSize, formatDownload, presetByRepo } from '../model/presets';
import type { ModelSource } from '../model/source';
import { openModelSource } from '../model/source-node';
import { DEFAULT_BINDING_BYTES } from '../model/weight-layout';
import { releaseWeights } from '../model/weights';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer';
import { createAdaptersFromHost } from '../train/peft';
import { loadPeftAdapter } from '../train/peft-node';

export interface OpenedModel {
  ctx: GpuContext;
  loaded: LoadedModel;
  model: DecoderModel;
  /** null when the folder has no tokenizer.json. */
  tokenizer: LoadedTokenizer | null;
  /** The --adapter, inference-only, or null. */
  lora: LoraAdapters | null;
  release(): void;
}

export { openModelSource, parseQuant };

/** Whether a source has tokenizer files (checked before any weight is read). */
export async function hasTokenizer(source: ModelSource): Promise<boolean> {
  if (await source.has('tokenizer.json')) return true;
  // A GGUF file carries its tokenizer in its metadata (gguf/tokenizer.ts).
  return source.ggufFile ? (await readModelMeta(source)).tokenizerFiles !== null : false;
}

/** A one-line progress report on stderr, only when it is a terminal. */
function progressLine(): ((p: LoadProgress) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 200 && p.overall.loaded !== p.overall.total) return;
    last = now;
    const pct = p.overall.total ? ` ${((100 * p.overall.loaded) / p.overall.total).toFixed(0)}%` : '';
    process.stderr.write(`\r\x1b[K${p.phase === 'download' ? 'downloading' : 'loading'} ${p.file.label}${pct}`);
    if (p.phase === 'upload' && p.overall.loaded === p.overall.total) process.stderr.write('\r\x1b[K');
  };
}

/**
 * When `source` is a preset's Hub repo: refuse it if a tensor of its plan exceeds this GPU's buffer
 * limits, and before its first download say on stderr what it will download and need.
 */
export async function checkPreset(ctx: GpuContext, source: ModelSource): Promise<void> {
  const at = /^hf:\/\/(.+)@([^@]+)$/.exec(source.description);
  const preset = at && source.remote ? presetByRepo(at[1]!, at[2]!) : undefined;
  if (!preset) return;
  const binding = ctx.adapter.limits.maxStorageBufferBindingSize ?? DEFAULT_BINDING_BYTES;
  const bufferLimit = Math.min(binding, ctx.adapter.limits.maxBufferSize ?? binding);
  const d = PRESET_PLAN_DEFAULTS;
  const plan = presetPlan(preset, { ...d, maxBindingBytes: binding });
  if (plan.largestTensor.bytes > bufferLimit)
    throw new Error(
      `${preset.id} does not fit this GPU: ${plan.largestTensor.name} (${formatBytes(plan.largestTensor.bytes)}) exceeds its buffer limit of ${formatBytes(bufferLimit)}; nothing was downloaded (\`fuse-studio models\` lists smaller presets)`,
    );
  if (((await source.cachedBytes?.('config.json')) ?? 0) > 0) return;
  const size = downloadSize(preset);
  const needs = plan.scoring
    ? `scoring ${d.scoring.batch} × ${d.scoring.seq} tokens needs ${formatBytes(plan.scoring.bytes)}`
    : `generation (${d.generation.capacity} positions) needs ${formatBytes(plan.generation!)}, a LoRA r${d.training.loraRank} step at ${d.training.batch} × ${d.training.seq} tokens ${formatBytes(plan.training!.training)}`;
  console.error(`${preset.id}: ${source.description}, ≈ ${formatDownload(size.bytes)} to download (${size.basis}); on the GPU ${needs}`);
}

/** A PEFT adapter folder over a loaded model, inference-only; what importing it changed is said on stderr. */
export async function loadAdapterForCli(ctx: GpuContext, config: ModelConfig, dir: string): Promise<LoraAdapters> {
  const imported = await loadPeftAdapter(dir, config);
  for (const note of imported.notes) console.error(`adapter: ${note}`);
  return createAdaptersFromHost(ctx, config, imported.adapter, { trainable: false });
}

export async function loadModelForCli(source: ModelSource, o: { adapter?: string; quant?: QuantDType | null } = {}): Promise<OpenedModel> {
  const ctx = await createNodeContext();
  let loaded: LoadedModel | null = null;
  let model: DecoderModel | null = null;
  let lora: LoraAdapters | null = null;
  const release = () => {
    lora?.release();
    model?.release();
    if (loaded) releaseWeights(loaded.weights);
    ctx.destroy();
  };
  try {
    await checkPreset(ctx, source);
    loaded = await loadModel(ctx, source, { onProgress: progressLine(), quant: o.quant ?? null });
    if (loaded.quant)
      console.error(
        `base quantized to ${loaded.quant} (embedding/lm_head int8)${loaded.quantCache === 'read' ? ', read from the cache' : loaded.quantCache === 'written' ? ', cached for the next load' : ''}`,
      );
    model = createDecoderModel(ctx, loaded.weights);
    const tf = loaded.tokenizerFiles;
    const tokenizer = tf
      ? loadTokenizer({
          tokenizerJson: tf.tokenizerJson,
          tokenizerConfig: tf.tokenizerConfig,
          chatTemplate: tf.chatTemplate,
          generationConfig: loaded.generationConfig,
          name: source.description,
        })
      : null;
    if (o.adapter) lora = await loadAdapterForCli(ctx, loaded.config, o.adapter);
    return { ctx, loaded, model, tokenizer, lora, release };
  } catch (e) {
    release();
    throw e;
  }
}
