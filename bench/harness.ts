// The benchmark harness: what a benchmark module looks like, how results are built and timed,
// and the run that drives the registered benchmarks and assembles the report.
//
// A benchmark is a module exporting a `Benchmark` ({ name, description, run }) listed in
// bench/registry.ts. `run(ctx)` returns result rows; `ctx` gives it the GPU context, the
// options, a lazily created TF.js peer on the same device, and a memo for measurements that
// several benchmarks share (the adapter's peak FLOP rate).

import type { GpuContext } from '../src/gpu/context';
import { createNodeContext } from '../src/gpu/node';
import type { TfjsPeer } from './peer-tfjs';

/** Units a result can have. Higher is better unless listed in LOWER_IS_BETTER. */
export type Unit = 'GFLOP/s' | 'tokens/s' | 'pairs/s' | 'items/min' | 'requests/s' | 'fraction of peak' | 'fraction' | 'GB/s' | 'MB/s' | 'ms' | 's' | 'MiB' | 'bytes' | 'count' | 'nats';

const LOWER_IS_BETTER: ReadonlySet<Unit> = new Set<Unit>(['ms', 's', 'MiB', 'bytes', 'count', 'nats']);

export function higherIsBetter(unit: Unit): boolean {
  return !LOWER_IS_BETTER.has(unit);
}

export interface Result {
  /** Stable identifier, `<benchmark>.<variant>.<case>`; it does not change with the problem size. */
  name: string;
  unit: Unit;
  ours: number;
  /** The same measurement for the peer implementation, or null where no peer runs. */
  peer: number | null;
  peerName: string | null;
  /** ours/peer for higher-is-better units, peer/ours for lower-is-better ones (> 1: ours wins). */
  ratio: number | null;
  /** Problem size, e.g. "64x2048x8192" (see each benchmark for its dimensions). */
  shape: string;
}

export interface AdapterReport {
  vendor: string;
  architecture: string;
  description: string;
  features: string[];
}

export interface Report {
  adapter: AdapterReport;
  date: string;
  results: Result[];
}

export interface BenchOptions {
  /** Benchmark names to run; empty runs all. */
  only: string[];
  /** Rows (tokens) of the activations in the matmul benchmarks. */
  tokens: number;
  /** Matmul projection shapes as [in, out] pairs (x[tokens, in] · W[out, in]ᵀ). */
  shapes: [number, number][];
  /** Sequence length of the model-step benchmark (batch 1). */
  seq: number;
  /** Model of the model-step benchmark: a Llama-3.2 preset name, or "tiny" (tests). */
  model: string;
  /** Sequence length of the attention benchmark (batch 1). */
  attnSeq: number;
  /** Prompt tokens of the prefill/decode benchmark. */
  promptTokens: number;
  /** Tokens generated per decode measurement. */
  decodeTokens: number;
  /** Layers of the 1B-shaped model in the train-step comparison with TF.js (full 1B: 16). */
  peerLayers: number;
  /** Vocabulary of that model (full 1B: 128,256). */
  peerVocab: number;
  /** Rows (batch) of train-step-vs-before's step, each of `seq` tokens. */
  stepBatch: number;
  /**
   * GPU memory (GiB) train-step-vs-before's current step plans with (the trainer's
   * memoryBudgetBytes, as `fuse-studio train --gpu-memory`); null: none stated, the trainer's
   * default budget (the leanest plan + 25%, at most + 256 MiB).
   */
  gpuMemoryGiB: number | null;
  /** Untimed runs before timing. */
  warmup: number;
  /** Timed samples per measurement (at least). */
  samples: number;
  /** A sample repeats the op until it lasts this long (ms), so per-submit overhead stays small. */
  minSampleMs: number;
  /** Run the TF.js peer. */
  peer: boolean;
  /** Print progress to stderr. */
  verbose: boolean;
}

/** Llama-3.2-1B projections (hidden 2048, MLP 8192): q/o, gate/up, down. */
export const LLAMA_1B_SHAPES: [number, number][] = [
  [2048, 2048],
  [2048, 8192],
  [8192, 2048],
];

/** Defaults that suit the adapter: small problems on CPU fallbacks (SwiftShader), larger on GPUs. */
export function defaultOptions(isFallback: boolean): BenchOptions {
  return {
    only: [],
    tokens: isFallback ? 32 : 512,
    shapes: LLAMA_1B_SHAPES,
    seq: isFallback ? 8 : 512,
    model: 'llama-3.2-1b',
    attnSeq: isFallback ? 32 : 512,
    promptTokens: isFallback ? 32 : 512,
    decodeTokens: isFallback ? 8 : 128,
    peerLayers: isFallback ? 1 : 16,
    peerVocab: isFallback ? 8192 : 128_256,
    stepBatch: isFallback ? 1 : 4,
    // 16 GiB: a common discrete / Apple GPU (WebGPU does not report a device's memory); the 1B
    // step at B4xT512 keeps everything in 8.6 GiB of it.
    gpuMemoryGiB: isFallback ? null : 16,
    warmup: isFallback ? 1 : 3,
    samples: isFallback ? 2 : 10,
    minSampleMs: isFallback ? 0 : 50,
    peer: true,
    verbose: true,
  };
}

export interface TimingSpec {
  /** Encode and submit one instance of the work (no waiting). */
  step: () => void;
  /** Resolve when everything submitted so far has finished on the GPU. */
  sync: () => Promise<void>;
}

export interface Timing {
  /** Median wall time of one step, submit to queue completion, in ms. */
  ms: number;
  samples: number[];
  repsPerSample: number;
}

/**
 * Wall time of each spec's `step` to queue completion: `warmup` untimed steps each, then rounds
 * in which every spec takes one sample of `reps` back-to-back steps followed by one `sync`
 * (`reps` chosen in the first round so a sample lasts at least `minSampleMs`). Interleaving the
 * samples of the things being compared (ours and the peer) spreads drift in clocks or in the
 * load of a shared machine over all of them. Our kernels and the peer are timed by this same code.
 */
export async function timeInterleaved<K extends string>(
  specs: Record<K, TimingSpec>,
  opts: Pick<BenchOptions, 'warmup' | 'samples' | 'minSampleMs'>,
): Promise<Record<K, Timing>> {
  const keys = Object.keys(specs) as K[];
  for (const k of keys) {
    for (let i = 0; i < opts.warmup; i++) specs[k].step();
    await specs[k].sync();
  }
  const sample = async (spec: TimingSpec, reps: number): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) spec.step();
    await spec.sync();
    return (performance.now() - t0) / reps;
  };
  const state = new Map<K, { reps: number; samples: number[] }>();
  for (const k of keys) {
    const first = await sample(specs[k], 1);
    if (first >= opts.minSampleMs) state.set(k, { reps: 1, samples: [first] });
    else state.set(k, { reps: Math.min(10_000, Math.ceil(opts.minSampleMs / Math.max(first, 1e-3))), samples: [] });
  }
  const wanted = Math.max(1, opts.samples);
  while (keys.some((k) => state.get(k)!.samples.length < wanted)) {
    for (const k of keys) {
      const s = state.get(k)!;
      if (s.samples.length < wanted) s.samples.push(await sample(specs[k], s.reps));
    }
  }
  const out = {} as Record<K, Timing>;
  for (const k of keys) {
    const s = state.get(k)!;
    out[k] = { ms: median(s.samples), samples: s.samples, repsPerSample: s.reps };
  }
  return out;
}

/** `timeInterleaved` for a single spec. */
export async function timeSteps(spec: TimingSpec, opts: Pick<BenchOptions, 'warmup' | 'samples' | 'minSampleMs'>): Promise<Timing> {
  return (await timeInterleaved({ only: spec }, opts)).only;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}

/** A result row with `ratio` derived from the unit's direction. */
export function result(r: {
  name: string;
  unit: Unit;
  ours: number;
  peer?: number | null;
  peerName?: string | null;
  shape: string;
}): Result {
  const peer = r.peer ?? null;
  const ratio = peer === null || !(peer > 0) || !(r.ours > 0) ? null : higherIsBetter(r.unit) ? r.ours / peer : peer / r.ours;
  return { name: r.name, unit: r.unit, ours: r.ours, peer, peerName: peer === null ? null : (r.peerName ?? null), ratio, shape: r.shape };
}

export interface BenchContext {
  gpu: GpuContext;
  options: BenchOptions;
  /** The TF.js WebGPU backend on `gpu.device`, created on first use; null when disabled or unavailable. */
  peer(): Promise<TfjsPeer | null>;
  /** Computes `make()` once per run and shares it between benchmarks. */
  memo<T>(key: string, make: () => Promise<T>): Promise<T>;
  log(message: string): void;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Result[]>;
}

export interface RunOutcome {
  report: Report;
  errors: { benchmark: string; error: unknown }[];
}

/** Selects benchmarks by name; unknown names are an error that lists the known ones. */
export function select(all: readonly Benchmark[], only: readonly string[]): Benchmark[] {
  if (!only.length) return [...all];
  const unknown = only.filter((n) => !all.some((b) => b.name === n));
  if (unknown.length)
    throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${all.map((b) => b.name).join(', ')}`);
  return all.filter((b) => only.includes(b.name));
}

/**
 * Runs the selected benchmarks on one device. A failing benchmark is recorded in `errors` and
 * the others still run. `options` missing fields take the adapter's defaults.
 */
export async function runBenchmarks(all: readonly Benchmark[], partial: Partial<BenchOptions> = {}): Promise<RunOutcome> {
  const gpu = await createNodeContext();
  const options: BenchOptions = { ...defaultOptions(gpu.adapter.isFallback), ...stripUndefined(partial) };
  const selected = select(all, options.only);
  const log = (m: string) => {
    if (options.verbose) process.stderr.write(`[bench] ${m}\n`);
  };
  const memos = new Map<string, Promise<unknown>>();
  const peerState: { peer: Promise<TfjsPeer | null> | null } = { peer: null };
  const ctx: BenchContext = {
    gpu,
    options,
    log,
    memo<T>(key: string, make: () => Promise<T>): Promise<T> {
      let p = memos.get(key) as Promise<T> | undefined;
      if (!p) memos.set(key, (p = make()));
      return p;
    },
    peer() {
      peerState.peer ??= options.peer
        ? import('./peer-tfjs').then(
            (m) => m.createTfjsPeer(gpu),
            (e: unknown) => {
              log(`TF.js peer unavailable: ${String(e)}`);
              return null;
            },
          )
        : Promise.resolve(null);
      return peerState.peer;
    },
  };
  log(`adapter: ${gpu.adapter.description} (${gpu.adapter.vendor}/${gpu.adapter.architecture})${gpu.adapter.isFallback ? ', CPU fallback' : ''}`);
  const results: Result[] = [];
  const errors: RunOutcome['errors'] = [];
  for (const b of selected) {
    const t0 = performance.now();
    log(`${b.name}: ${b.description}`);
    try {
      results.push(...(await b.run(ctx)));
      await gpu.flush();
    } catch (error) {
      errors.push({ benchmark: b.name, error });
      log(`${b.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    log(`${b.name}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const report: Report = {
    adapter: {
      vendor: gpu.adapter.vendor,
      architecture: gpu.adapter.architecture,
      description: gpu.adapter.description,
      features: gpu.adapter.features,
    },
    date: new Date().toISOString(),
    results,
  };
  (await peerState.peer)?.dispose();
  return { report, errors };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The results as an aligned text table. */
export function formatTable(report: Report): string {
  const head = ['name', 'shape', 'unit', 'ours', 'peer', 'ratio', 'peer name'];
  const rows = report.results.map((r) => [
    r.name,
    r.shape,
    r.unit,
    fmt(r.ours),
    r.peer === null ? '-' : fmt(r.peer),
    r.ratio === null ? '-' : `${fmt(r.ratio)}x`,
    r.peerName ?? '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([3, 4, 5]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const a = report.adapter;
  return [
    `adapter: ${a.description} (${a.vendor}/${a.architecture})   ${report.date}`,
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000) return x.toFixed(0);
  if (abs >= 100) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** Throws with a list of problems unless `value` has the report schema. */
export function validateReport(value: unknown): asserts value is Report {
  const problems: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const numOrNull = (v: unknown) => v === null || (typeof v === 'number' && Number.isFinite(v));
  if (!isObj(value)) throw new Error('report is not an object');
  const keys = Object.keys(value).sort().join(',');
  if (keys !== 'adapter,date,results') problems.push(`top-level keys are ${keys}, expected adapter,date,results`);
  const a = value.adapter;
  if (!isObj(a)) problems.push('adapter is not an object');
  else {
    for (const k of ['vendor', 'architecture', 'description'] as const)
      if (typeof a[k] !== 'string') problems.push(`adapter.${k} is not a string`);
    if (!Array.isArray(a.features) || !a.features.every((f) => typeof f === 'string'))
      problems.push('adapter.features is not a string array');
  }
  if (typeof value.date !== 'string' || Number.isNaN(Date.parse(value.date))) problems.push('date is not an ISO date');
  if (!Array.isArray(value.results)) problems.push('results is not an array');
  else
    value.results.forEach((r: unknown, i) => {
      if (!isObj(r)) return problems.push(`results[${i}] is not an object`);
      const at = `results[${i}] (${String(r.name)})`;
      const rk = Object.keys(r).sort().join(',');
      if (rk !== 'name,ours,peer,peerName,ratio,shape,unit') problems.push(`${at} has keys ${rk}`);
      if (typeof r.name !== 'string' || !r.name) problems.push(`${at}: name`);
      if (typeof r.unit !== 'string' || !r.unit) problems.push(`${at}: unit`);
      if (typeof r.shape !== 'string') problems.push(`${at}: shape`);
      if (typeof r.ours !== 'number' || !Number.isFinite(r.ours)) problems.push(`${at}: ours is not a finite number`);
      if (!numOrNull(r.peer) || !numOrNull(r.ratio)) problems.push(`${at}: peer/ratio must be numbers or null`);
      if (r.peer === null && (r.ratio !== null || r.peerName !== null)) problems.push(`${at}: no peer but ratio/peerName set`);
      if (r.peer !== null && (typeof r.peerName !== 'string' || r.ratio === null)) problems.push(`${at}: peer without peerName/ratio`);
      if (typeof r.peer === 'number' && typeof r.ratio === 'number' && typeof r.ours === 'number' && typeof r.unit === 'string') {
        const want = higherIsBetter(r.unit as Unit) ? r.ours / r.peer : r.peer / r.ours;
        if (Math.abs(r.ratio - want) > 1e-9 * Math.abs(want)) problems.push(`${at}: ratio ${r.ratio} != ${want}`);
      }
      return undefined;
    });
  if (problems.length) throw new Error(`invalid bench report:\n  ${problems.join('\n  ')}`);
}
