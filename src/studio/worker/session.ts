// The worker's one loaded model: the GPU context, the model on it, its tokenizer, and the named
// LoRA adapters trained or imported for it ("sft", "sft+dpo", …). Services (model, chat, train,
// export) share it; nothing here is visible to the page except through the services' results.

import { createBrowserContext } from '../../gpu/browser';
import type { GpuContext } from '../../gpu/context';
import type { LoadedModel } from '../../model/load';
import type { DecoderModel } from '../../model/decoder';
import type { LoraAdapters } from '../../model/lora';
import type { ModelSource } from '../../model/source';
import { releaseWeights } from '../../model/weights';
import type { LoadedTokenizer } from '../../tokenizer';
import { createAdaptersFromHost, type HostAdapter } from '../../train/peft';

export interface Session {
  ctx: GpuContext;
  model: DecoderModel;
  tokenizer: LoadedTokenizer | null;
  loaded: LoadedModel;
  /** Where the weights came from (re-read by the merged export). */
  source: ModelSource;
  /** Identifies the base model in stored adapters and runs ("demo", a cache id, a folder name). */
  modelKey: string;
  /** Adapters on the GPU by name. */
  adapters: Map<string, { host: HostAdapter; gpu: LoraAdapters }>;
}

let context: Promise<GpuContext> | null = null;
let session: Session | null = null;

/** The worker's GPU context, created once (a lost device makes the next call create a new one). */
export function gpuContext(): Promise<GpuContext> {
  if (!context) {
    const p = createBrowserContext();
    context = p;
    void p.then(
      (ctx) => ctx.device.lost.then(() => {
        if (context === p) context = null;
      }),
      () => {
        if (context === p) context = null;
      },
    );
  }
  return context;
}

export function currentSession(): Session | null {
  return session;
}

export function requireSession(): Session {
  if (!session) throw new Error('No model is loaded: load one on the Model page first.');
  return session;
}

export function setSession(s: Session): void {
  releaseSession();
  session = s;
}

export function releaseSession(): void {
  if (!session) return;
  for (const a of session.adapters.values()) a.gpu.release();
  session.model.release();
  releaseWeights(session.model.weights);
  session = null;
}

/** Puts `host` on the GPU under `name`, replacing an adapter of that name. */
export function installAdapter(s: Session, name: string, host: HostAdapter): LoraAdapters {
  s.adapters.get(name)?.gpu.release();
  const gpu = createAdaptersFromHost(s.ctx, s.loaded.config, host);
  s.adapters.set(name, { host, gpu });
  return gpu;
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
