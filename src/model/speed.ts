// How fast this device runs the engine's own matmul, measured in a couple of seconds, so work
// can be estimated before it starts (time-estimate.ts). Two shapes stand for the two regimes of
// a decoder: a few rows (batched decode: bound by reading the weights) and many rows (prefill,
// scoring, training: bound by arithmetic). The weights are bf16 on a Llama-3.2-1B projection
// shape, as the presets ship them; the result is checked against float64 before it is trusted.

import type { GpuContext } from '../gpu/context';
import { decode, encode } from '../gpu/dtype';
import { matmul } from '../engine/matmul';
import { seededRandom } from './rng';

export interface DeviceSpeed {
  /** GFLOP/s of x·Wᵀ with `decodeRows` rows (a decode step of a batch). */
  decodeGflops: number;
  decodeRows: number;
  /** GFLOP/s with `prefillRows` rows (prefill, scoring and training). */
  prefillGflops: number;
  prefillRows: number;
  /** K × N of the product measured. */
  shape: [number, number];
}

export const SPEED_PROBE = { decodeRows: 8, prefillRows: 128, k: 2048, n: 2048 } as const;

/** Uniform values in [-scale, scale) from a seeded generator (the probe's inputs are the same every run). */
function fill(n: number, seed: number, scale: number): Float32Array {
  const next = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * next() - 1) * scale;
  return out;
}

/**
 * Times the engine's matmul at both shapes (one warm-up, then `reps` runs each, the median) and
 * returns GFLOP/s. Throws if an output is wrong (a broken kernel must not produce a fast estimate).
 */
export async function measureDeviceSpeed(gpu: GpuContext, o: { reps?: number; signal?: AbortSignal; probe?: Partial<Record<keyof typeof SPEED_PROBE, number>> } = {}): Promise<DeviceSpeed> {
  const p = { ...SPEED_PROBE, ...o.probe };
  const reps = o.reps ?? 3;
  const w = fill(p.n * p.k, 7, 1 / Math.sqrt(p.k));
  const wSeen = decode(encode(w, 'bf16').buffer, w.length, 'bf16') as Float32Array;
  const weight = gpu.upload(w, [p.n, p.k], 'bf16', 'speed probe W');
  const rates: number[] = [];
  try {
    for (const rows of [p.decodeRows, p.prefillRows]) {
      o.signal?.throwIfAborted();
      const x = fill(rows * p.k, 11 + rows, 1);
      const tx = gpu.upload(x, [rows, p.k], 'f32', 'speed probe x');
      const out = gpu.tensor([rows, p.n], 'f32', 'speed probe out');
      try {
        const run = async () => {
          const b = gpu.batch('speed probe');
          matmul(b, { a: tx, b: weight, out, layout: 'nt' });
          b.submit();
          await gpu.flush();
        };
        await run();
        checkRow(await gpu.readF32(out), x, wSeen, rows - 1, p.k, p.n);
        const times: number[] = [];
        for (let r = 0; r < reps; r++) {
          o.signal?.throwIfAborted();
          const t0 = performance.now();
          await run();
          times.push(performance.now() - t0);
        }
        times.sort((a, b) => a - b);
        const ms = Math.max(times[times.length >> 1]!, 1e-3);
        rates.push((2 * rows * p.k * p.n) / (ms * 1e6));
      } finally {
        tx.release();
        out.release();
      }
    }
  } finally {
    weight.release();
  }
  return { decodeGflops: rates[0]!, decodeRows: p.decodeRows, prefillGflops: rates[1]!, prefillRows: p.prefillRows, shape: [p.k, p.n] };
}

function checkRow(got: Float32Array, x: Float32Array, w: Float32Array, row: number, K: number, N: number): void {
  let maxErr = 0;
  let maxRef = 0;
  for (let n = 0; n < N; n += 97) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[row * K + k]! * w[n * K + k]!;
    maxErr = Math.max(maxErr, Math.abs(got[row * N + n]! - s));
    maxRef = Math.max(maxRef, Math.abs(s));
  }
  if (!(maxErr <= 1e-3 * Math.max(1, maxRef))) throw new Error(`the speed probe's matmul gave a wrong result (error ${maxErr.toExponential(2)}): run the GPU self-test on the GPU page`);
}
