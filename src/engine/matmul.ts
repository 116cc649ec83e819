// Matrix products: the forward of every Linear layer and both of its gradients.
//   nt: out[M,N] = a[M,K] · b[N,K]ᵀ   x·Wᵀ, forward (b is the weight in HF layout [out, in])
//   nn: out[M,K] = a[M,N] · b[N,K]    dY·W, input gradient
//   tn: out[N,K] = a[M,N]ᵀ · b[M,K]   dYᵀ·X, weight gradient
// out = alpha * product + (accumulate ? out : 0). See shaders/matmul.wgsl for the tiling.
// b may be a quantized weight (int8/int4, layouts nt and nn): every path decodes it in the kernel.
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import { splitGroups, type CommandBatch } from '../gpu/batch';
import type { DType } from '../gpu/dtype';
import { packParams } from '../gpu/params';
import { GGML_DTYPES, GGML_FORMAT_CODE } from '../gpu/ggml';
import { isQuantDType, QUANT_DTYPES, scaleWord0 } from '../gpu/quant';
import { quantDecodeWgsl } from './quant-decode';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32 } from './checks';

/** dt code of a quantized format in matmul.wgsl (FORMAT_CODE of quant.ts). */
const QUANT_DT: Record<string, string> = {
  int8: 'INT8',
  int4: 'INT8 + 1u',
  ...Object.fromEntries(GGML_DTYPES.map((d) => [d, `${GGML_FORMAT_CODE[d]}u`])),
};
/** Quantized weight dtypes with entry points: int8/int4 and GGUF's block formats. */
const KERNEL_QUANT_DTYPES = [...QUANT_DTYPES, ...GGML_DTYPES];

// Entry points of the quantized formats: the same bodies as the float ones, b decoded per format.
function quantEntryPoints(): string {
  const out: string[] = [];
  const wg = { tiled: 'WX, WY', gemv: 'GV_LANES, GV_ROWS', direct: 'CX, CY', vec4: 'CX, CY' };
  const args = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u';
  for (const q of KERNEL_QUANT_DTYPES) {
    const dt = QUANT_DT[q]!;
    const entry = (name: string, size: string, body: string, a = args) =>
      out.push(`@compute @workgroup_size(${size})\nfn ${name}_${q}(${a}) {\n  ${body};\n}\n`);
    for (const [layout, bt] of [['nt', 'true'], ['nn', 'false']] as const) {
      entry(`tiled_${layout}`, wg.tiled, `tiled(wid, nwg, lid, false, ${bt}, ${dt})`);
      entry(`direct_${layout}`, wg.direct, `direct(wid, nwg, lid, false, ${bt}, ${dt})`);
      entry(`vec4_${layout}`, wg.vec4, `vec4_${layout}(wid, nwg, lid, ${dt})`);
    }
    entry('gemv_nt', wg.gemv, `gemv(wid, nwg, lid, ${dt})`);
    entry(
      'skinny_nt',
      'SW',
      `skinny_nt(wid, nwg, lid, ${dt})`,
      '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32',
    );
  }
  return out.join('\n');
}

const code = [matmulWgsl, quantDecodeWgsl('qb_', 'b_word'), quantDecodeWgsl('qb4_', 'b4_word'), quantEntryPoints()].join('\n');

/** The dtypes b may have in a layout: any weight format in nt and nn, f32 activations in tn. */
export const MATMUL_B_DTYPES: Record<MatmulLayout, readonly DType[]> = {
  nt: ['f32', 'bf16', 'f16', ...KERNEL_QUANT_DTYPES],
  nn: ['f32', 'bf16', 'f16', ...KERNEL_QUANT_DTYPES],
  tn: ['f32'],
};

export type MatmulLayout = 'nt' | 'nn' | 'tn';

export interface MatmulArgs {
  a: Tensor;
  b: Tensor;
  out: Tensor;
  layout: MatmulLayout;
  /** out = alpha * op(a, b) + (accumulate ? out : 0) */
  alpha?: number;
  accumulate?: boolean;
  /** Element offset into b where the operand starts (row slices of a weight, e.g. a vocab chunk of lm_head); default 0. */
  bOffset?: number;
  /** Logical dims, required when a tensor's shape is not already 2-D [rows, cols] matching. */
  m?: number;
  n?: number;
  k?: number;
}

/** How a product is computed (see shaders/matmul.wgsl). `matmul` picks one; tests and benches may force one. */
export type MatmulPath = 'tiled' | 'gemv' | 'direct' | 'vec4' | 'skinny';

/** tiled: WX×WY threads, each a 4×4 block, so a (4·WY)×(4·WX) output tile; TK deep slices in workgroup memory. */
export const MATMUL_TILE = { WX: 16, WY: 16, TK: 16 } as const;
/** gemv (layout nt, M ≤ GEMV_MAX_M): GV_LANES threads per output column, GV_ROWS columns per workgroup. */
export const MATMUL_GEMV = { GV_LANES: 64, GV_ROWS: 4 } as const;
export const GEMV_MAX_M = 8;
/** direct and vec4 (CPU adapters): CX×CY threads, each a 4×4 (direct) or 8×4 (vec4) block, no workgroup memory. */
export const MATMUL_DIRECT = { CX: 8, CY: 8 } as const;
/** skinny (CPU adapters, layout nt, M ≤ SKINNY_MAX_M): SW threads, each 4 columns for SR ≥ M rows (SR set per call). */
export const MATMUL_SKINNY = { SW: 64 } as const;
export const SKINNY_MAX_M = 4;

export interface MatmulOptions {
  /** Force a path instead of the adapter's default (vec4 needs its alignment, gemv layout nt and M ≤ 8). */
  path?: MatmulPath;
  /** Override constants of the path (tile sizes; GV_LANES a power of two ≥ 8), e.g. for tests of very large grids. */
  constants?: Record<string, number>;
}

type Dim = 'm' | 'n' | 'k';

// For each layout: the dims of a, b and out as [rows, cols], and of the generic product
// C[P,Q] = Σ_D A·B the kernel computes.
const SHAPES: Record<MatmulLayout, { a: [Dim, Dim]; b: [Dim, Dim]; out: [Dim, Dim]; pqd: [Dim, Dim, Dim] }> = {
  nt: { a: ['m', 'k'], b: ['n', 'k'], out: ['m', 'n'], pqd: ['m', 'n', 'k'] },
  nn: { a: ['m', 'n'], b: ['n', 'k'], out: ['m', 'k'], pqd: ['m', 'k', 'n'] },
  tn: { a: ['m', 'n'], b: ['m', 'k'], out: ['n', 'k'], pqd: ['n', 'k', 'm'] },
};

export interface MatmulDims {
  m: number;
  n: number;
  k: number;
}

/** Resolves and validates M, N, K for a call (exported for ops that build on matmul). */
export function matmulDims(args: MatmulArgs): MatmulDims {
  const { a, b, out, layout } = args;
  const op = `matmul ${layout}`;
  const shapes = SHAPES[layout];
  if (!shapes) throw new Error(`matmul: unknown layout "${String(layout)}" (expected nt, nn or tn)`);
  const explicit = args.m !== undefined || args.n !== undefined || args.k !== undefined;
  const dims: Partial<MatmulDims> = { m: args.m, n: args.n, k: args.k };
  // Infer missing dims from 2-D shapes; out before b for N so a row slice of b (bOffset) works.
  const sources: [Tensor, [Dim, Dim]][] = [
    [a, shapes.a],
    [out, shapes.out],
    [b, shapes.b],
  ];
  for (const [t, [r, c]] of sources) {
    if (t.shape.length !== 2) continue;
    dims[r] ??= t.shape[0]!;
    dims[c] ??= t.shape[1]!;
  }
  for (const d of ['m', 'n', 'k'] as const) {
    const v = dims[d];
    if (v === undefined)
      throw new Error(`${op}: cannot infer ${d.toUpperCase()} from the shapes of ${a.label}, ${b.label}, ${out.label}; pass ${d}`);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${op}: ${d.toUpperCase()} = ${v} is not a non-negative integer`);
  }
  const full = dims as MatmulDims;
  const bOffset = args.bOffset ?? 0;
  if (!Number.isInteger(bOffset) || bOffset < 0) throw new Error(`${op}: bOffset ${bOffset} is not a non-negative integer`);

  const check = (t: Tensor, role: 'a' | 'b' | 'out', offset: number) => {
    const [r, c] = shapes[role];
    const rows = full[r];
    const cols = full[c];
    const need = offset + rows * cols;
    const what = `${role} (${t.label})`;
    const want = `[${r.toUpperCase()}=${rows}, ${c.toUpperCase()}=${cols}]`;
    if (t.shape.length === 2) {
      if (t.shape[1] !== cols) throw new Error(`${op}: ${what} has shape [${t.shape.join(', ')}], expected ${want}`);
      // a and out must match exactly unless the caller passed dims for a view; b may have more
      // rows (a slice of a larger weight).
      if (role !== 'b' && !explicit && t.shape[0] !== rows)
        throw new Error(`${op}: ${what} has shape [${t.shape.join(', ')}], expected ${want}`);
    }
    if (need > t.size)
      throw new Error(
        `${op}: ${what} has ${t.size} elements, needs ${offset ? `bOffset ${offset} + ` : ''}${rows}·${cols} = ${need} for ${want}`,
      );
  };
  check(a, 'a', 0);
  check(b, 'b', bOffset);
  check(out, 'out', 0);
  return full;
}

/** True when the vec4 path's alignment holds: contiguous dims and bOffset multiples of 4. */
export function vec4Aligned(layout: MatmulLayout, dims: MatmulDims, bOffset = 0): boolean {
  const { n, k } = dims;
  if (bOffset % 4) return false;
  return layout === 'nt' ? k % 4 === 0 : n % 4 === 0 && k % 4 === 0;
}

/**
 * True when the skinny path applies: layout nt, 1 ≤ M ≤ SKINNY_MAX_M, and K and bOffset multiples
 * of 4 (f32 b) or 8 (16-bit b, read 8 per 16-byte load).
 */
export function skinnyAligned(layout: MatmulLayout, dims: MatmulDims, dtype: string, bOffset = 0): boolean {
  const q = dtype === 'f32' ? 4 : 8;
  return layout === 'nt' && dims.m >= 1 && dims.m <= SKINNY_MAX_M && dims.k % q === 0 && bOffset % q === 0;
}

/** The path `matmul` takes by default: barrier-free kernels on CPU adapters, where a workgroup barrier costs ~1 ms. */
export function defaultMatmulPath(isFallback: boolean, layout: MatmulLayout, dims: MatmulDims, bOffset = 0, dtype = 'f32'): MatmulPath {
  if (isFallback) {
    if (skinnyAligned(layout, dims, dtype, bOffset)) return 'skinny';
    return vec4Aligned(layout, dims, bOffset) ? 'vec4' : 'direct';
  }
  return layout === 'nt' && dims.m <= GEMV_MAX_M ? 'gemv' : 'tiled';
}

export function matmul(batch: CommandBatch, args: MatmulArgs, options: MatmulOptions = {}): void {
  const { a, b, out, layout } = args;
  const op = `matmul ${layout}`;
  expectF32(op, a, out);
  expectDTypes(op, MATMUL_B_DTYPES[layout] ?? ['f32'], b);
  if (out.buffer === a.buffer || out.buffer === b.buffer)
    throw new Error(`${op}: out (${out.label}) must not share a buffer with ${out.buffer === a.buffer ? `a (${a.label})` : `b (${b.label})`}`);
  const dims = matmulDims(args);
  const [pd, qd, dd] = SHAPES[layout].pqd;
  const P = dims[pd];
  const Q = dims[qd];
  const D = dims[dd];
  if (P === 0 || Q === 0) return;
  const alpha = args.alpha ?? 1;
  const accumulate = args.accumulate ? 1 : 0;
  const bOffset = args.bOffset ?? 0;

  const path = options.path ?? defaultMatmulPath(batch.ctx.adapter.isFallback, layout, dims, bOffset, b.dtype);
  if (path === 'gemv' && (layout !== 'nt' || dims.m > GEMV_MAX_M))
    throw new Error(`${op}: the gemv path needs layout nt and M ≤ ${GEMV_MAX_M} (M = ${dims.m})`);
  if (path === 'vec4' && !vec4Aligned(layout, dims, bOffset))
    throw new Error(`${op}: the vec4 path needs the contiguous dims and bOffset to be multiples of 4`);
  if (path === 'skinny' && !skinnyAligned(layout, dims, b.dtype, bOffset))
    throw new Error(
      `${op}: the skinny path needs layout nt, M ≤ ${SKINNY_MAX_M} (M = ${dims.m}), and K and bOffset multiples of ${b.dtype === 'f32' ? 4 : 8}`,
    );
  const defaults =
    path === 'tiled'
      ? MATMUL_TILE
      : path === 'gemv'
        ? MATMUL_GEMV
        : path === 'skinny'
          ? { ...MATMUL_SKINNY, SR: dims.m === 1 ? 1 : dims.m === 2 ? 2 : 4 }
          : MATMUL_DIRECT;
  const constants: Record<string, number> = { ...defaults, ...options.constants };
  let tilesQ = 0;
  let groups: number;
  if (path === 'gemv') {
    groups = Math.ceil(Q / constants.GV_ROWS!);
  } else if (path === 'skinny') {
    groups = Math.ceil(Q / (4 * constants.SW!));
  } else {
    const [tp, tq] =
      path === 'tiled'
        ? [4 * constants.WY!, 4 * constants.WX!]
        : [(path === 'vec4' ? 8 : 4) * constants.CY!, 4 * constants.CX!];
    tilesQ = Math.ceil(Q / tq);
    groups = Math.ceil(P / tp) * tilesQ;
  }
  // vec4 and skinny read a and b whole (b's last vec4 of 16-bit values may lie in the buffer's padding).
  const whole = (t: Tensor) => ({ buffer: t.buffer, offset: 0, size: t.buffer.size });
  batch.dispatch({
    kernel: { name: 'matmul', code, entryPoint: `${path}_${layout}_${b.dtype}`, constants },
    params: params(P, Q, D, bOffset, alpha, accumulate, tilesQ, groups, isQuantDType(b.dtype) ? scaleWord0(b.size, b.dtype) : 0),
    buffers: path === 'vec4' || path === 'skinny' ? [whole(a), whole(b), out] : [a, b, out],
    groups: splitGroups(groups),
  });
}

function params(P: number, Q: number, D: number, bOffset: number, alpha: number, acc: number, tilesQ: number, groups: number, scaleWord: number) {
  return packParams([
    { u32: P },
    { u32: Q },
    { u32: D },
    { u32: bOffset },
    { f32: alpha },
    { u32: acc },
    { u32: tilesQ },
    { u32: groups },
    { u32: scaleWord },
  ]);
}
