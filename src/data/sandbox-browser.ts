// Browser Sandbox: Web Workers made from Blob URLs (no bundler configuration needed).
//
// JavaScript: a fresh classic worker per run; network APIs (fetch, XMLHttpRequest, WebSocket,
// importScripts…) are removed from its global scope before the code runs; the main thread
// terminates it at the time limit (a worker stuck in `while (true)` cannot answer, but it can
// always be terminated).
//
// Python: Pyodide in one warm module worker, loaded from `pyodideIndexURL` (the studio must
// serve node_modules/pyodide there, e.g. copied to `/pyodide/` at build time; nothing is
// fetched from a CDN). At the limit: when the page is cross-origin isolated (SharedArrayBuffer
// available) KeyboardInterrupt is raised through an interrupt buffer and the worker stays warm;
// otherwise, or if Python ignores it, the worker is terminated and reloaded on the next run.

import {
  cleanPythonTraceback,
  clip,
  JS_PRELUDE,
  KILL_GRACE_MS,
  PY_RUN_SOURCE,
  splitOutput,
  type RunRequest,
  type RunResult,
  type Sandbox,
} from './sandbox';

const JS_WORKER = String.raw`
for (const k of ['fetch', 'XMLHttpRequest', 'WebSocket', 'EventSource', 'importScripts', 'indexedDB', 'caches', 'BroadcastChannel', 'Worker', 'SharedWorker']) {
  try { delete self[k]; } catch (_) {}
  try { Object.defineProperty(self, k, { value: undefined, configurable: false, writable: false }); } catch (_) {}
}
const post = self.postMessage.bind(self);
self.onmessage = (ev) => {
  const { program, prelude } = ev.data;
  (0, eval)(prelude);
  post({ type: 'started' });
  let status = 'ok';
  let error;
  const t0 = performance.now();
  try {
    (0, eval)(program + '\n//# sourceURL=solution.js');
  } catch (e) {
    status = 'error';
    error = e && e.stack ? String(e.stack) : String(e);
  }
  post({ type: 'result', status, error, out: globalThis.__fuseOut, durationMs: performance.now() - t0 });
};
`;

const PY_WORKER = String.raw`
let py = null;
let interrupt = null;
${PY_RUN_SOURCE}
self.onmessage = async (ev) => {
  const m = ev.data;
  if (m.type === 'load') {
    try {
      const { loadPyodide } = await import(m.indexURL + 'pyodide.mjs');
      py = await loadPyodide({
        indexURL: m.indexURL,
        stdout: (s) => push('stdout', s),
        stderr: (s) => push('stderr', s),
        jsglobals: { setTimeout, clearTimeout, setInterval, clearInterval },
      });
      py.setStdin({ error: true });
      if (m.interrupt) { interrupt = new Int32Array(m.interrupt); py.setInterruptBuffer(interrupt); }
      self.postMessage({ type: 'ready' });
    } catch (e) {
      self.postMessage({ type: 'load-error', message: String((e && e.stack) || e) });
    }
    return;
  }
  if (interrupt) Atomics.store(interrupt, 0, 0);
  self.postMessage({ type: 'result', id: m.id, ...runProgram(py, m.program) });
};
`;

interface Reply {
  type: string;
  id?: number;
  status?: 'ok' | 'error' | 'timeout';
  error?: string;
  message?: string;
  out?: [string, string][];
  durationMs?: number;
}

export interface BrowserSandboxOptions {
  /** Where pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip… are served (default `/pyodide/`). */
  pyodideIndexURL?: string;
  pythonLoadTimeoutMs?: number;
}

function blobWorker(source: string, type: WorkerType): { worker: Worker; url: string } {
  const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  return { worker: new Worker(url, { type }), url };
}

export class BrowserSandbox implements Sandbox {
  private py: { worker: Worker; url: string; ready: Promise<void>; interrupt: Int32Array | null } | null = null;
  private pyQueue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private readonly indexURL: string;
  private readonly loadTimeoutMs: number;

  constructor(opts: BrowserSandboxOptions = {}) {
    const base = opts.pyodideIndexURL ?? '/pyodide/';
    this.indexURL = new URL(base.endsWith('/') ? base : base + '/', location.href).href;
    this.loadTimeoutMs = opts.pythonLoadTimeoutMs ?? 120_000;
  }

  run(req: RunRequest): Promise<RunResult> {
    if (req.language === 'javascript') return this.runJs(req);
    const next = this.pyQueue.then(() => this.runPy(req));
    this.pyQueue = next.catch(() => {});
    return next;
  }

  private runJs(req: RunRequest): Promise<RunResult> {
    const t0 = performance.now();
    const { worker, url } = blobWorker(JS_WORKER, 'classic');
    return new Promise<RunResult>((resolve) => {
      let settled = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (r: RunResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(startup);
        worker.terminate();
        URL.revokeObjectURL(url);
        resolve(r);
      };
      const timeout = () => finish({ status: 'timeout', stdout: '', stderr: '', durationMs: performance.now() - t0 });
      // Until the worker says it started, allow for its start-up too.
      const startup = setTimeout(timeout, req.timeoutMs + KILL_GRACE_MS + 2000);
      worker.onmessage = (ev: MessageEvent<Reply>) => {
        const m = ev.data;
        if (m.type === 'started') {
          clearTimeout(startup);
          timer = setTimeout(timeout, req.timeoutMs);
        } else if (m.type === 'result') {
          const { stdout, stderr } = splitOutput(m.out ?? []);
          finish({ status: m.status ?? 'error', stdout, stderr, ...(m.error ? { error: clip(m.error) } : {}), durationMs: m.durationMs ?? 0 });
        }
      };
      worker.onerror = (ev) => {
        ev.preventDefault();
        finish({ status: 'error', stdout: '', stderr: '', error: `worker error: ${ev.message}`, durationMs: performance.now() - t0 });
      };
      worker.postMessage({ program: req.program, prelude: JS_PRELUDE });
    });
  }

  private pythonWorker() {
    if (this.py) return this.py;
    const { worker, url } = blobWorker(PY_WORKER, 'module');
    const canInterrupt = typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated === true;
    const interrupt = canInterrupt ? new Int32Array(new SharedArrayBuffer(4)) : null;
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Pyodide did not load within ${this.loadTimeoutMs} ms`)), this.loadTimeoutMs);
      const onMsg = (ev: MessageEvent<Reply>) => {
        if (ev.data.type === 'ready') resolve();
        else if (ev.data.type === 'load-error') reject(new Error(`Pyodide failed to load from ${this.indexURL}: ${ev.data.message}`));
        else return;
        clearTimeout(timer);
        worker.removeEventListener('message', onMsg);
      };
      worker.addEventListener('message', onMsg);
    });
    ready.catch(() => {});
    worker.postMessage({ type: 'load', indexURL: this.indexURL, interrupt: interrupt?.buffer ?? null });
    this.py = { worker, url, ready, interrupt };
    return this.py;
  }

  private dropPython(): void {
    if (!this.py) return;
    this.py.worker.terminate();
    URL.revokeObjectURL(this.py.url);
    this.py = null;
  }

  private async runPy(req: RunRequest): Promise<RunResult> {
    const py = this.pythonWorker();
    try {
      await py.ready;
    } catch (e) {
      this.dropPython();
      return { status: 'unavailable', stdout: '', stderr: '', error: (e as Error).message, durationMs: 0 };
    }
    const id = this.nextId++;
    const t0 = performance.now();
    const result = await new Promise<RunResult | 'killed'>((resolve) => {
      let killer: ReturnType<typeof setTimeout> | undefined;
      const timer = setTimeout(() => {
        if (py.interrupt) Atomics.store(py.interrupt, 0, 2);
        killer = setTimeout(() => resolve('killed'), py.interrupt ? KILL_GRACE_MS : 0);
      }, req.timeoutMs);
      const onMsg = (ev: MessageEvent<Reply>) => {
        const m = ev.data;
        if (m.type !== 'result' || m.id !== id) return;
        clearTimeout(timer);
        clearTimeout(killer);
        py.worker.removeEventListener('message', onMsg);
        const { stdout, stderr } = splitOutput(m.out ?? []);
        resolve({
          status: m.status ?? 'error',
          stdout,
          stderr,
          ...(m.error ? { error: clip(cleanPythonTraceback(m.error)) } : {}),
          durationMs: m.durationMs ?? 0,
        });
      };
      py.worker.addEventListener('message', onMsg);
      py.worker.postMessage({ type: 'run', id, program: req.program });
    });
    if (result === 'killed') {
      this.dropPython();
      return { status: 'timeout', stdout: '', stderr: '', durationMs: performance.now() - t0 };
    }
    return result;
  }

  async dispose(): Promise<void> {
    await this.pyQueue;
    this.dropPython();
  }
}
