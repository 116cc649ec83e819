// What the model commands share: open --model (a folder, URL or Hub repo), load it onto the GPU
// with its tokenizer (if any) and an optional PEFT adapter folder (--adapter).
import type { GpuContext } from '../gpu/context';
import { createNodeContext } from '../gpu/node';
import { createDecoderModel, type DecoderModel } from '../model/decoder';
import { loadModel, type LoadedModel, type LoadProgress } from '../model/load';
import type { LoraAdapters } from '../model/lora';
import type { ModelSource } from '../model/source';
import { openModelSource } from '../model/source-node';
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

export { openModelSource };

/** Whether a source has tokenizer files (checked before any weight is read). */
export function hasTokenizer(source: ModelSource): Promise<boolean> {
  return source.has('tokenizer.json');
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

export async function loadModelForCli(source: ModelSource, o: { adapter?: string } = {}): Promise<OpenedModel> {
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
    loaded = await loadModel(ctx, source, { onProgress: progressLine() });
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
    if (o.adapter) {
      const imported = await loadPeftAdapter(o.adapter, loaded.config);
      for (const note of imported.notes) console.error(`adapter: ${note}`);
      lora = createAdaptersFromHost(ctx, loaded.config, imported.adapter, { trainable: false });
    }
    return { ctx, loaded, model, tokenizer, lora, release };
  } catch (e) {
    release();
    throw e;
  }
}
