// The page's handle on the engine worker (src/studio/worker): one worker per tab, started on first
// use. Stores call `engine()`; callbacks they pass must be wrapped in `callback()` (comlink proxy).
import * as Comlink from 'comlink';
import type { EngineApi } from './worker/engine-api';

let remote: Comlink.Remote<EngineApi> | null = null;

export function engine(): Comlink.Remote<EngineApi> {
  if (!remote) {
    const worker = new Worker(new URL('./worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'fuse-studio-engine' });
    remote = Comlink.wrap<EngineApi>(worker);
  }
  return remote;
}

/** A function the worker may call back (progress, streamed text). */
export const callback = <T extends (...args: never[]) => unknown>(fn: T): T & Comlink.ProxyMarked => Comlink.proxy(fn);

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
