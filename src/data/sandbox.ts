// Running untrusted code from responses, with a time limit: the host-independent half.
// Hosts implement `Sandbox`: sandbox-node.ts (worker_threads + vm, Pyodide in a worker) and
// sandbox-browser.ts (Web Workers, Pyodide in a worker). Both run the JS prelude below, so
// tests see the same `console` and `assert` everywhere.
//
// What the sandbox is for: runaway or broken code (infinite loops, memory blow-ups, crashes,
// stray output) must not hang or take down the job. It is not a security boundary against code
// written to escape: run hostile code in a container, not here.

export type CodeLanguage = 'javascript' | 'python';

export interface RunRequest {
  language: CodeLanguage;
  /** The whole program: solution followed by its tests. */
  program: string;
  timeoutMs: number;
  /** Heap limit for JavaScript (MB); default 256. Python's wasm heap is capped by wasm32 (see open issues). */
  memoryMb?: number;
}

export type RunStatus =
  /** Ran to the end without an uncaught error. */
  | 'ok'
  /** An uncaught error (failed assertion, syntax error, exception, out of memory). */
  | 'error'
  | 'timeout'
  /** The sandbox could not run this language here (e.g. Pyodide failed to load). */
  | 'unavailable';

export interface RunResult {
  status: RunStatus;
  stdout: string;
  stderr: string;
  /** The error (message + stack/traceback) when status is 'error' or 'unavailable'. */
  error?: string;
  durationMs: number;
}

export interface Sandbox {
  run(req: RunRequest): Promise<RunResult>;
  /** Ends workers kept warm (the Python one). */
  dispose(): Promise<void>;
}

/** Output kept per stream; the rest is cut with a marker. */
export const OUTPUT_LIMIT = 64 * 1024;

/** Grace after the time limit before a worker that ignores interruption is terminated. */
export const KILL_GRACE_MS = 400;

export const DEFAULT_MEMORY_MB = 256;

/**
 * Runs first in every JavaScript sandbox, in the realm the code runs in. Gives the code a
 * capturing `console` and a Node-like `assert` (ok, equal, strictEqual, deepStrictEqual,
 * notStrictEqual, throws); output is kept in `__fuseOut` as [stream, text] pairs.
 */
export const JS_PRELUDE = String.raw`
(function () {
  var LIMIT = ${OUTPUT_LIMIT};
  var out = [];
  var sizes = { stdout: 0, stderr: 0 };
  Object.defineProperty(globalThis, '__fuseOut', { value: out, enumerable: false });
  function fmt(v) {
    if (typeof v === 'string') return v;
    if (typeof v === 'function') return '[Function ' + (v.name || 'anonymous') + ']';
    if (v instanceof Error) return v.stack || String(v);
    try { var s = JSON.stringify(v); return s === undefined ? String(v) : s; } catch (e) { return String(v); }
  }
  function push(stream, args) {
    var s = Array.prototype.map.call(args, fmt).join(' ') + '\n';
    if (sizes[stream] >= LIMIT) return;
    if (sizes[stream] + s.length > LIMIT) s = s.slice(0, LIMIT - sizes[stream]) + '\n…[output cut]\n';
    sizes[stream] += s.length;
    out.push([stream, s]);
  }
  var con = {
    log: function () { push('stdout', arguments); },
    info: function () { push('stdout', arguments); },
    debug: function () { push('stdout', arguments); },
    warn: function () { push('stderr', arguments); },
    error: function () { push('stderr', arguments); },
  };
  Object.defineProperty(globalThis, 'console', { value: con, writable: true, configurable: true });
  function AssertionError(message) {
    var e = new Error(message);
    e.name = 'AssertionError';
    return e;
  }
  function deepEqual(a, b) {
    if (Object.is(a, b)) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (a instanceof Map || a instanceof Set) {
      if (a.size !== b.size) return false;
      var ae = Array.from(a.entries()), be = Array.from(b.entries());
      return deepEqual(ae, be);
    }
    var ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (var i = 0; i < ka.length; i++) if (!deepEqual(a[ka[i]], b[ka[i]])) return false;
    return true;
  }
  function fail(msg, dflt) { throw AssertionError(msg === undefined ? dflt : msg); }
  function assert(v, msg) { if (!v) fail(msg, 'expected a truthy value, got ' + fmt(v)); }
  assert.ok = assert;
  assert.equal = function (a, b, m) { if (a != b) fail(m, fmt(a) + ' == ' + fmt(b)); };
  assert.notEqual = function (a, b, m) { if (a == b) fail(m, fmt(a) + ' != ' + fmt(b)); };
  assert.strictEqual = function (a, b, m) { if (!Object.is(a, b)) fail(m, 'expected ' + fmt(b) + ', got ' + fmt(a)); };
  assert.notStrictEqual = function (a, b, m) { if (Object.is(a, b)) fail(m, 'expected a value other than ' + fmt(b)); };
  assert.deepEqual = assert.deepStrictEqual = function (a, b, m) { if (!deepEqual(a, b)) fail(m, 'expected ' + fmt(b) + ', got ' + fmt(a)); };
  assert.throws = function (f, m) { try { f(); } catch (e) { return; } fail(m, 'expected the function to throw'); };
  assert.fail = function (m) { fail(m, 'failed'); };
  Object.defineProperty(globalThis, 'assert', { value: assert, writable: true, configurable: true });
})();
`;

/** Reads the prelude's captured output (from JSON of `__fuseOut`). */
export function splitOutput(pairs: [string, string][]): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  for (const [s, t] of pairs) {
    if (s === 'stderr') stderr += t;
    else stdout += t;
  }
  return { stdout, stderr };
}

/** Drops Pyodide's own frames from a traceback, keeping those of the program. */
export function cleanPythonTraceback(tb: string): string {
  const lines = tb.split('\n');
  const first = lines.findIndex((l) => /^\s*File "solution\.py"/.test(l));
  if (first < 0) return tb.trim();
  return ['Traceback (most recent call last):', ...lines.slice(first)].join('\n').trim();
}

/** Caps a string for storage in a record. */
/**
 * Worker-side JavaScript shared by the browser and Node Python workers (they are source strings,
 * so they cannot import): stdout/stderr capture within OUTPUT_LIMIT, and `runProgram(py, program)`
 * running one program in a fresh `__main__` namespace, a KeyboardInterrupt (the interrupt buffer
 * set by the host on timeout) reported as 'timeout'.
 */
export const PY_RUN_SOURCE = String.raw`
let out = [];
let sizes = { stdout: 0, stderr: 0 };
function push(stream, s) {
  s = s + '\n';
  if (sizes[stream] >= ${OUTPUT_LIMIT}) return;
  sizes[stream] += s.length;
  out.push([stream, s]);
}
function runProgram(py, program) {
  out = [];
  sizes = { stdout: 0, stderr: 0 };
  let status = 'ok';
  let error;
  const ns = py.globals.get('dict')();
  ns.set('__name__', '__main__');
  const t0 = performance.now();
  try {
    py.runPython(program, { globals: ns, filename: 'solution.py' });
  } catch (e) {
    if (e && e.type === 'KeyboardInterrupt') status = 'timeout';
    else { status = 'error'; error = String((e && e.message) || e); }
  } finally {
    try { ns.destroy(); } catch (_) {}
  }
  return { status, error, out, durationMs: performance.now() - t0 };
}
`;

export function clip(s: string, limit = OUTPUT_LIMIT): string {
  return s.length <= limit ? s : s.slice(0, limit) + '\n…[output cut]';
}
