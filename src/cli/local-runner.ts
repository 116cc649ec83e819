// The Node host's LocalModelRunner (data/local-source.ts): local sources opened as every model
// command opens --model (a folder, an http(s) URL, a Hub repo id or a preset alias, downloaded
// from $HF_ENDPOINT into the model cache) and loaded onto one GPU context, shared by every local
// source of the run so its pool's live bytes before and after each model compare.
import { inspectModelSource, loadModelSource, type LocalModel, type LocalModelInfo, type LocalModelRunner } from '../data/local-source';
import type { GpuContext } from '../gpu/context';
import { createNodeContext } from '../gpu/node';
import type { ModelSource } from '../model/source';
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
    return inspectModelSource(source, o);
  }

  async load(spec: string, o: { signal?: AbortSignal } = {}): Promise<LocalModel> {
    return loadModelSource(await this.context(), await this.source(spec), o);
  }

  /** Destroys its own GPU context (every model must be released first). */
  async close(): Promise<void> {
    if (this.ctx && !this.o.context) (await this.ctx).destroy();
    this.ctx = null;
  }
}
