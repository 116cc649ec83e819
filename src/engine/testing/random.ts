// Seeded random inputs for kernel tests. Each test draws a fresh seed and prints it on
// failure, so any failure can be replayed with FUSE_SEED=<seed>.

import { seededRandom } from '../../model/rng';

export function freshSeed(): number {
  const fixed = process.env.FUSE_SEED;
  return fixed ? Number(fixed) : Math.floor(Math.random() * 2 ** 31);
}

/** mulberry32, the same generator the model's initialisation uses. */
export const rng: (seed: number) => () => number = seededRandom;

/** Standard normal draws (Box-Muller), scaled; never exactly zero. */
export function randn(n: number, next: () => number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(next(), 1e-12);
    const v = next();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v) || scale * 1e-3;
  }
  return out;
}

export function randInt(n: number, next: () => number, lo: number, hi: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor(next() * (hi - lo));
  return out;
}
