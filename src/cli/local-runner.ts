// The Node host's LocalModelRunner (data/local-source.ts): local sources opened as every model
// command opens --model (a folder, an http(s) URL, a Hub repo id or a preset alias, downloaded
// from $HF_ENDPOINT into the model cache) and loaded onto one GPU context, shared by every local
// source of the run so its pool's live bytes before and after each model compare.
import type { LocalModel, LocalModelInfo, LocalModelRunner } from '../data/local-source';
import type { GpuContext } from '../gpu/context';
import { createNodeContext } from '../gpu/node';
import { createDecoderModel } from '../model/decoder';
import { loadModel, readModelMeta } from '../model/load';
import type { ModelSource } from '../model/source';
import { releaseWeights } from '../model/weights';
import { loadTokenizer } from '../tokenizer';
import { checkPreset, openModelSource } from './model';

export interface NodeLocalRunnerOptions {
  /** GPU bytes a generation may use in all; null or omitted: unknown (only buffer limits are checked). */
  memoryBytes?: number | null;
  /** A context to load onto (kept open by close()); default: one of its own. */
  context?: GpuContext;
}

export class NodeLocalRunner implements LocalModelRunner {
  private ctx: Promise<GpuContext> | null = null;
  private sources = new Map<string, ModelSource>();

  constructor(private readonly o: NodeLocalRunnerOptions = {}) {}

  context(): Promise<GpuContext> {
    this.ctx ??= this.o.context ? Promise.resolve(this.o.context) : createNodeContext();
    return this.ctx;
  }

  memoryBytes(): number | null {
    return this.o.memoryBytes ?? null;
  }

  private async source(spec: string): Promise<ModelSource> {
    let s = this.sources.get(spec);
    if (!s) this.sources.set(spec, (s = await openModelSource(spec)));
    return s;
  }

  async inspect(spec: string, o: { signal?: AbortSignal } = {}): Promise<LocalModelInfo> {
    const source = await this.source(spec);
    // A preset: refused before any download when a tensor exceeds this GPU's buffer limits; its
    // download size said before the first one.
    await checkPreset(await this.context(), source);
    const meta = await readModelMeta(source, o);
    const tf = meta.tokenizerFiles;
    const tokenizer = tf
      ? loadTokenizer({ tokenizerJson: tf.tokenizerJson, tokenizerConfig: tf.tokenizerConfig, chatTemplate: tf.chatTemplate, generationConfig: meta.generationConfig, name: source.description })
      : null;
    return { config: meta.config, tokenizer, description: source.description };
  }

  async load(spec: string, o: { signal?: AbortSignal } = {}): Promise<LocalModel> {
    const ctx = await this.context();
    const loaded = await loadModel(ctx, await this.source(spec), o);
    let model;
    try {
      model = createDecoderModel(ctx, loaded.weights);
    } catch (e) {
      releaseWeights(loaded.weights);
      throw e;
    }
    return {
      model,
      release: () => {
        model.release();
        releaseWeights(loaded.weights);
      },
    };
  }

  /** Destroys its own GPU context (every model must be released first). */
  async close(): Promise<void> {
    if (this.ctx && !this.o.context) (await this.ctx).destroy();
    this.ctx = null;
  }
}
