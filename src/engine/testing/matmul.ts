// Operands for matmul kernel tests: the layouts' dims and shapes for the generic product
// C[P,Q] = Σ_D, and seeded random inputs with their float64 reference.
import type { GpuContext } from '../../gpu/context';
import { quantize, type DType } from '../../gpu/dtype';
import type { Tensor } from '../../gpu/tensor';
import type { GenericProduct, MatmulLayout, MatmulProduct } from '../matmul';
import { matmulRef } from '../reference/matmul';
import { poisoned } from './gpu';
import { randn } from './random';

/** A test product in the generic form, with b stored in `dtype`. */
export interface GenericCase extends GenericProduct {
  dtype: DType;
}

/** M, N, K of a layout for the generic product C[P,Q] = Σ_D (Q: the output's columns). */
export function dimsOf(layout: MatmulLayout, P: number, Q: number, D: number) {
  if (layout === 'nt') return { m: P, n: Q, k: D };
  if (layout === 'nn') return { m: P, n: D, k: Q };
  return { m: D, n: P, k: Q };
}

/** [rows, cols] of a, b and out for each layout. */
export function shapesOf(layout: MatmulLayout, m: number, n: number, k: number) {
  if (layout === 'nt') return { a: [m, k], b: [n, k], out: [m, n] };
  if (layout === 'nn') return { a: [m, n], b: [n, k], out: [m, k] };
  return { a: [m, n], b: [m, k], out: [n, k] };
}

/** A product in layout nt (out[M,N] = a[M,K] · b[N,K]ᵀ), b in `dtype`, optional kernel constants. */
export interface NtCase extends MatmulProduct {
  dtype: DType;
  constants?: Record<string, number>;
}

/** A product in any layout, b in `dtype`. */
export interface OperandSpec extends MatmulProduct {
  layout: MatmulLayout;
  dtype: DType;
}

/**
 * Draws a (f32), b (in `dtype`, with bOffset elements before it and 3 after that the kernel must
 * ignore) and, when accumulating, out's previous contents; uploads a and b and returns the
 * float64 reference. `out()` makes a fresh output: the previous contents, or poison.
 */
export function matmulOperands(ctx: GpuContext, c: OperandSpec, r: () => number) {
  const s = shapesOf(c.layout, c.m, c.n, c.k);
  const a = quantize(randn(s.a[0]! * s.a[1]!, r), 'f32');
  const b = quantize(randn(c.bOffset + s.b[0]! * s.b[1]! + 3, r), c.dtype);
  const prev = c.accumulate ? quantize(randn(s.out[0]! * s.out[1]!, r), 'f32') : undefined;
  const ta = ctx.upload(a, s.a, 'f32', 'a');
  const tb = ctx.upload(b, [b.length], c.dtype, 'b');
  const { layout, m, n, k, alpha, bOffset } = c;
  const want = matmulRef({ layout, a, b, m, n, k, alpha, c: prev, bOffset });
  const out = (): Tensor => (prev ? ctx.upload(prev, s.out, 'f32', 'out') : poisoned(ctx, s.out, 'out'));
  return { a, b, prev, ta, tb, want, out, shapes: s };
}
