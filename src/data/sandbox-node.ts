// Node Sandbox.
//
// JavaScript: each run in a fresh worker_threads Worker with V8 heap limits (`resourceLimits`)
// and an empty environment; inside it the code runs in a new `vm` context holding nothing but
// the prelude (no require, process, fetch), with vm's own timeout for synchronous loops and
// microtasks drained inside that timeout. The main thread terminates the worker if it is still
// there `KILL_GRACE_MS` after the limit (e.g. a native hang), so a run always ends by
// limit + grace + worker start.
//
// Python: Pyodide (the `pyodide` npm package, loaded from node_modules: no network) in one
// long-lived Worker, since loading takes seconds. Each run gets a fresh globals dict. At the
// limit the main thread raises KeyboardInterrupt through a SharedArrayBuffer interrupt
// buffer; if Python does not stop within the grace, the worker is terminated and the next run
// loads a fresh one. The `js` module Python sees holds only timers, not Node's globals.

import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  cleanPythonTraceback,
  clip,
  DEFAULT_MEMORY_MB,
  JS_PRELUDE,
  KILL_GRACE_MS,
  PY_RUN_SOURCE,
  splitOutput,
  type RunRequest,
  type RunResult,
  type Sandbox,
} from './sandbox';

const JS_WORKER = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const vm = require('node:vm');
const { program, prelude, timeoutMs } = workerData;
const ctx = vm.createContext({}, { codeGeneration: { strings: true, wasm: false }, microtaskMode: 'afterEvaluate' });
vm.runInContext(prelude, ctx);
function describe(e) {
  try {
    if (e && typeof e === 'object' && typeof e.stack === 'string') return e.stack;
    return String(e);
  } catch (_) {
    return 'an error that cannot be described';
  }
}
let status = 'ok';
let error;
const t0 = performance.now();
try {
  vm.runInContext(program, ctx, { timeout: timeoutMs, filename: 'solution.js', breakOnSigint: false });
} catch (e) {
  if (e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') status = 'timeout';
  else { status = 'error'; error = describe(e); }
}
const durationMs = performance.now() - t0;
let out = [];
try { out = JSON.parse(vm.runInContext('JSON.stringify(__fuseOut)', ctx, { timeout: 1000 })); } catch (_) {}
parentPort.postMessage({ status, error, out, durationMs });
`;

const PY_WORKER = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
${PY_RUN_SOURCE}
(async () => {
  const { loadPyodide } = await import(workerData.moduleURL);
  const py = await loadPyodide({
    indexURL: workerData.indexURL,
    stdout: (s) => push('stdout', s),
    stderr: (s) => push('stderr', s),
    jsglobals: { setTimeout, clearTimeout, setInterval, clearInterval },
    env: { HOME: '/home/pyodide' },
  });
  py.setStdin({ error: true });
  py.setInterruptBuffer(new Int32Array(workerData.interrupt));
  parentPort.on('message', (m) => parentPort.postMessage({ type: 'result', id: m.id, ...runProgram(py, m.program) }));
  parentPort.postMessage({ type: 'ready' });
})().catch((e) => parentPort.postMessage({ type: 'load-error', message: String((e && e.stack) || e) }));
`;

interface WorkerReply {
  status: 'ok' | 'error' | 'timeout';
  error?: string;
  out: [string, string][];
  durationMs: number;
}

export interface NodeSandboxOptions {
  /** How long Pyodide may take to load before Python is reported unavailable (default 120 s). */
  pythonLoadTimeoutMs?: number;
}

function pyodideLocation(): { moduleURL: string; indexURL: string } {
  const req = createRequire(import.meta.url);
  const mod = req.resolve('pyodide/pyodide.mjs');
  return { moduleURL: pathToFileURL(mod).href, indexURL: dirname(mod) + '/' };
}

class PythonWorker {
  readonly interrupt = new Int32Array(new SharedArrayBuffer(4));
  readonly worker: Worker;
  readonly ready: Promise<void>;
  private pending = new Map<number, (r: WorkerReply | { lost: string }) => void>();
  private nextId = 1;
  dead = false;

  constructor(loadTimeoutMs: number) {
    let loc: { moduleURL: string; indexURL: string };
    try {
      loc = pyodideLocation();
    } catch (e) {
      this.worker = null as unknown as Worker;
      this.dead = true;
      this.ready = Promise.reject(new Error(`the pyodide package is not installed (${(e as Error).message})`));
      this.ready.catch(() => {});
      return;
    }
    this.worker = new Worker(PY_WORKER, {
      eval: true,
      env: {},
      stdout: true,
      stderr: true,
      workerData: { ...loc, interrupt: this.interrupt.buffer },
    });
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Pyodide did not load within ${loadTimeoutMs} ms`)), loadTimeoutMs);
      this.worker.on('message', (m: { type: string; id?: number; message?: string } & WorkerReply) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve();
        } else if (m.type === 'load-error') {
          clearTimeout(timer);
          reject(new Error(`Pyodide failed to load: ${m.message}`));
        } else if (m.type === 'result' && m.id !== undefined) {
          this.pending.get(m.id)?.(m);
          this.pending.delete(m.id);
        }
      });
      const lost = (why: string) => {
        this.dead = true;
        clearTimeout(timer);
        reject(new Error(why));
        for (const cb of this.pending.values()) cb({ lost: why });
        this.pending.clear();
      };
      this.worker.on('error', (e) => lost(`Python worker crashed: ${e.message}`));
      this.worker.on('exit', (code) => lost(`Python worker exited (${code})`));
    });
    this.ready.catch(() => {});
  }

  run(program: string): { id: number; done: Promise<WorkerReply | { lost: string }> } {
    const id = this.nextId++;
    const done = new Promise<WorkerReply | { lost: string }>((resolve) => this.pending.set(id, resolve));
    Atomics.store(this.interrupt, 0, 0);
    this.worker.postMessage({ id, program });
    return { id, done };
  }

  async terminate(): Promise<void> {
    this.dead = true;
    if (this.worker) await this.worker.terminate();
  }
}

export class NodeSandbox implements Sandbox {
  private py: PythonWorker | null = null;
  private pyQueue: Promise<unknown> = Promise.resolve();
  private readonly loadTimeoutMs: number;

  constructor(opts: NodeSandboxOptions = {}) {
    this.loadTimeoutMs = opts.pythonLoadTimeoutMs ?? 120_000;
  }

  run(req: RunRequest): Promise<RunResult> {
    if (req.language === 'javascript') return this.runJs(req);
    // One Python run at a time in the warm worker.
    const next = this.pyQueue.then(() => this.runPy(req));
    this.pyQueue = next.catch(() => {});
    return next;
  }

  /** Loads Pyodide now (it otherwise loads on the first Python run). Resolves to an error message or null. */
  async warmPython(): Promise<string | null> {
    try {
      await this.pythonWorker().ready;
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  private pythonWorker(): PythonWorker {
    if (!this.py || this.py.dead) this.py = new PythonWorker(this.loadTimeoutMs);
    return this.py;
  }

  private runJs(req: RunRequest): Promise<RunResult> {
    const memoryMb = req.memoryMb ?? DEFAULT_MEMORY_MB;
    const t0 = performance.now();
    return new Promise<RunResult>((resolve) => {
      let settled = false;
      const worker = new Worker(JS_WORKER, {
        eval: true,
        env: {},
        stdout: true,
        stderr: true,
        execArgv: [],
        workerData: { program: req.program, prelude: JS_PRELUDE, timeoutMs: req.timeoutMs },
        resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, memoryMb / 8)), stackSizeMb: 4 },
      });
      const finish = (r: RunResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(killer);
        void worker.terminate();
        resolve(r);
      };
      // vm's timeout counts from the start of the code; this one also covers worker start-up.
      const killer = setTimeout(
        () => finish({ status: 'timeout', stdout: '', stderr: '', durationMs: performance.now() - t0 }),
        req.timeoutMs + KILL_GRACE_MS + 300,
      );
      worker.on('message', (m: WorkerReply) => {
        const { stdout, stderr } = splitOutput(m.out ?? []);
        finish({ status: m.status, stdout, stderr, ...(m.error ? { error: clip(m.error) } : {}), durationMs: m.durationMs });
      });
      worker.on('error', (e: Error & { code?: string }) => {
        const oom = e.code === 'ERR_WORKER_OUT_OF_MEMORY';
        finish({
          status: 'error',
          stdout: '',
          stderr: '',
          error: oom ? `out of memory (limit ${memoryMb} MB)` : `worker error: ${e.message}`,
          durationMs: performance.now() - t0,
        });
      });
      worker.on('exit', (code) =>
        finish({ status: 'error', stdout: '', stderr: '', error: `worker exited (${code})`, durationMs: performance.now() - t0 }),
      );
    });
  }

  private async runPy(req: RunRequest): Promise<RunResult> {
    const w = this.pythonWorker();
    try {
      await w.ready;
    } catch (e) {
      return { status: 'unavailable', stdout: '', stderr: '', error: (e as Error).message, durationMs: 0 };
    }
    const t0 = performance.now();
    const { done } = w.run(req.program);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let killer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<'killed'>((resolve) => {
      timer = setTimeout(() => {
        Atomics.store(w.interrupt, 0, 2); // SIGINT → KeyboardInterrupt at the next bytecode
        killer = setTimeout(() => resolve('killed'), KILL_GRACE_MS);
      }, req.timeoutMs);
    });
    const r = await Promise.race([done, killed]);
    clearTimeout(timer);
    clearTimeout(killer);
    if (r === 'killed') {
      await w.terminate();
      return { status: 'timeout', stdout: '', stderr: '', durationMs: performance.now() - t0 };
    }
    if ('lost' in r) return { status: 'error', stdout: '', stderr: '', error: r.lost, durationMs: performance.now() - t0 };
    const { stdout, stderr } = splitOutput(r.out);
    return {
      status: r.status,
      stdout,
      stderr,
      ...(r.error ? { error: clip(cleanPythonTraceback(r.error)) } : {}),
      durationMs: r.durationMs,
    };
  }

  async dispose(): Promise<void> {
    await this.pyQueue;
    const py = this.py;
    this.py = null;
    if (py && !py.dead) await py.terminate();
  }
}
