// Matrix products: the forward of every Linear layer and both of its gradients.
//   nt: out[M,N] = a[M,K] · b[N,K]ᵀ   x·Wᵀ, forward (b is the weight in HF layout [out, in])
//   nn: out[M,K] = a[M,N] · b[N,K]    dY·W, input gradient
//   tn: out[N,K] = a[M,N]ᵀ · b[M,K]   dYᵀ·X, weight gradient
// out = alpha * product + (accumulate ? out : 0). See shaders/matmul.wgsl for the tiling.
// Feature-gated paths live in their own modules: gemv-sg (subgroups; ./matmul-gemv-sg.ts), f16
// (shader-f16, generation only; ./matmul-f16.ts) and sgmat (subgroup matrices; ./matmul-sgmat.ts).
// b may be a quantized weight (int8/int4, layouts nt and nn): every path decodes it in the kernel.
import matmulWgsl from '../../shaders/matmul.wgsl?raw';
import { dispatchBounded, MAX_DISPATCH_FLOPS, splitGroups, wholeBuffer, type CommandBatch } from '../gpu/batch';
import type { DType } from '../gpu/dtype';
import { packParams } from '../gpu/params';
import { GGML_DTYPES, GGML_FORMAT_CODE } from '../gpu/ggml';
import { isQuantDType, QUANT_DTYPES, scaleWord0 } from '../gpu/quant';
import { floatDecodeWgsl, quantDecodeWgsl } from './quant-decode';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32 } from './checks';
import { isProven } from './proven';
import { matmulSgmat, type SgmatVariant } from './matmul-sgmat';
import { matmulGemvSg } from './matmul-gemv-sg';
import { matmulF16, type F16Variant } from './matmul-f16';

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

const code = [
  matmulWgsl,
  floatDecodeWgsl('fb_', 'b_word'),
  floatDecodeWgsl('fb4_', 'b4_word'),
  quantDecodeWgsl('qb_', 'b_word'),
  quantDecodeWgsl('qb4_', 'b4_word'),
  quantEntryPoints(),
].join('\n');

/** The dtypes b may have in a layout: any weight format in nt and nn, f32 activations in tn. */
export const MATMUL_B_DTYPES: Record<MatmulLayout, readonly DType[]> = {
  nt: ['f32', 'bf16', 'f16', ...KERNEL_QUANT_DTYPES],
  nn: ['f32', 'bf16', 'f16', ...KERNEL_QUANT_DTYPES],
  tn: ['f32'],
};

export type MatmulLayout = 'nt' | 'nn' | 'tn';

/** M, N, K of a product and out's update: out = alpha · op(a, b) + (accumulate ? out : 0), b from element bOffset. */
export interface MatmulProduct {
  m: number;
  n: number;
  k: number;
  alpha: number;
  accumulate: boolean;
  bOffset: number;
}

/**
 * A call resolved to layout nt (dims checked by matmulDims), for the nt-only kernels (f16, gemv-sg):
 * out[M,N] = alpha · a[M,K] · b[N,K]ᵀ (b from element bOffset) + (accumulate ? out : 0).
 */
export interface NtCall extends MatmulProduct {
  a: Tensor;
  b: Tensor;
  out: Tensor;
}

/** A product in the generic form C[P,Q] = Σ_D A·B of its layout (see matmulPQD), with out's update. */
export interface GenericProduct {
  layout: MatmulLayout;
  P: number;
  Q: number;
  D: number;
  alpha: number;
  accumulate: boolean;
  bOffset: number;
}

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
export type MatmulPath = 'tiled' | 'regtile' | 'gemv' | 'gemv-sg' | 'f16' | 'direct' | 'vec4' | 'skinny' | 'narrow' | 'splitk' | 'sgmat';

/** tiled: WX×WY threads, each a 4×4 block, so a (4·WY)×(4·WX) output tile; TK deep slices in workgroup memory. */
export const MATMUL_TILE = { WX: 16, WY: 16, TK: 16 } as const;
/**
 * regtile (GPUs, float b): RX×RY threads, each an 8×8 register block, so an (8·RY)×(8·RX) tile;
 * K tiles of RK (a multiple of 8) in two halves of workgroup memory, 16-byte global loads, the next
 * K tile prefetched into registers. These are the small-tile defaults; `regtileConstants` picks
 * per adapter and product.
 */
export const MATMUL_REGTILE = { RX: 8, RY: 8, RK: 8 } as const;
/** The large tile (128×128, 256 threads) for adapters whose limits allow it and grids that fill a GPU with it. */
export const MATMUL_REGTILE_LARGE = { RX: 16, RY: 16, RK: 8 } as const;
/** regtile staging units per thread and operand (regtile_fetch in the shader holds 4): (8·RY·RK/4) / (RX·RY) ≤ this. */
const REGTILE_UNITS = 4;
/** Large tiles only when the grid still has this many of them (a GPU of ~100 cores wants a few waves). */
const REGTILE_LARGE_MIN_TILES = 128;
/** GPUs take regtile by default for outputs of at least this many elements (16 of its 64×64 tiles); tiled below. */
export const REGTILE_MIN_OUT = 16 * 64 * 64;
/** gemv (layout nt, M ≤ GEMV_MAX_M): GV_LANES threads per output column, GV_ROWS columns per workgroup. */
export const MATMUL_GEMV = { GV_LANES: 64, GV_ROWS: 4 } as const;
export const GEMV_MAX_M = 8;
/** direct and vec4 (CPU adapters): CX×CY threads, each a 4×4 (direct) or 8×4 (vec4) block, no workgroup memory. */
export const MATMUL_DIRECT = { CX: 8, CY: 8 } as const;
/** skinny (CPU adapters, layout nt, M ≤ SKINNY_MAX_M): SW threads, each 4 columns for SR ≥ M rows (SR set per call). */
export const MATMUL_SKINNY = { SW: 64 } as const;
export const SKINNY_MAX_M = 4;
/**
 * narrow (GPUs, Q ≤ NARROW_MAX_Q, any layout): NW threads, each 4 rows × 16 columns, so a (4·NW)×16
 * tile; 16-byte loads of a and b in nt when K and bOffset are multiples of 4.
 */
export const MATMUL_NARROW = { NW: 64 } as const;
export const NARROW_MAX_Q = 64;
/**
 * splitk (GPUs, any layout): SKW threads per workgroup, each a 4×4 block over one slice of the
 * reduction; partial sums in a pool scratch buffer, added in split order by a second dispatch.
 * Chosen by default when P·Q ≤ SPLITK_MAX_OUT and D ≥ SPLITK_MIN_D.
 */
export const MATMUL_SPLITK = { SKW: 64 } as const;
export const SPLITK_MAX_OUT = 64 * 1024;
export const SPLITK_MIN_D = 1024;
/** Slices of at least this many d per split; splits aim at SPLITK_TARGET_THREADS threads in all. */
const SPLITK_MIN_CHUNK = 128;
const SPLITK_TARGET_THREADS = 32 * 1024;
/** The dtypes of b narrow and splitk take (float weights; quantized b keeps the older paths). */
/** sgmat: GPUs take it by default (once proven) for outputs past split-K's with both sides at least one 64-wide tile. */
export const SGMAT_MIN_SIDE = 64;
export const NARROW_SPLITK_B_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

/** Names the self-test proves (./proven.ts) before a GPU takes these paths by default. */
export const MATMUL_PATHS = { narrow: 'matmul.narrow', narrow4: 'matmul.narrow4', splitk: 'matmul.splitk', sgmat: 'matmul.subgroup-matrix', regtile: 'matmul.regtile', gemvSg: 'matmul.gemv-sg', f16: 'matmul.f16' } as const;

/**
 * GPU watchdog bound for one matmul dispatch (MAX_DISPATCH_FLOPS of src/gpu/batch.ts, 2^32, shared
 * with attention; LM_HEAD_MAX_DISPATCH_FLOPS bounds the lm_head chunks the same): a larger grid of tiles is encoded as several
 * dispatches, each starting at its first tile (Params.first_group), so every output is computed by
 * the same workgroup code and the result is bit-identical to one dispatch. 2^32 FLOPs take about
 * 40 ms on an integrated GPU at 100 GFLOP/s, 50× under Windows' 2 s TDR and Chrome's watchdog,
 * while one dispatch still holds thousands of workgroups on a fast GPU. Only a single workgroup
 * whose own reduction exceeds the bound (D above ~500K at a 64×64 tile) runs longer.
 */
export const MATMUL_MAX_DISPATCH_FLOPS = MAX_DISPATCH_FLOPS;

export interface MatmulOptions {
  /** Force a path instead of the adapter's default (vec4 needs its alignment, gemv layout nt and M ≤ 8). */
  path?: MatmulPath;
  /** Override constants of the path (tile sizes; GV_LANES a power of two ≥ 8), e.g. for tests of very large grids. */
  constants?: Record<string, number>;
  /** splitk: how many slices D is cut into (default: enough for SPLITK_TARGET_THREADS threads). */
  splits?: number;
  /** No gradient flows through this product (generation): a GPU may take the f16-input path (./matmul-f16.ts). */
  inference?: boolean;
  /** path 'f16': 'real' (default; needs shader-f16) or 'emulated' (any adapter; tests). */
  f16Variant?: F16Variant;
  /** sgmat (./matmul-sgmat.ts): the chromium subgroup-matrix builtins (default) or their plain-WGSL emulation (tests, benches on adapters without the feature). */
  subgroupMatrix?: SgmatVariant;
  /** Most FLOPs one dispatch may run (default MATMUL_MAX_DISPATCH_FLOPS); tests force it small. */
  maxDispatchFlops?: number;
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

/** P, Q, D of the generic product C[P,Q] = Σ_D A·B for a layout's M, N, K. */
export function matmulPQD(layout: MatmulLayout, dims: MatmulDims): [number, number, number] {
  const [pd, qd, dd] = SHAPES[layout].pqd;
  return [dims[pd], dims[qd], dims[dd]];
}

/**
 * The path `matmul` takes by default: barrier-free kernels on CPU adapters, where a workgroup
 * barrier costs ~1 ms. On GPUs, splitk (small output, long reduction) and narrow (≤ 64 output
 * columns) only once `proven` says the self-test passed them on this device.
 */
export function defaultMatmulPath(
  isFallback: boolean,
  layout: MatmulLayout,
  dims: MatmulDims,
  bOffset = 0,
  dtype = 'f32',
  proven: (path: string) => boolean = () => false,
  inference = false,
): MatmulPath {
  if (isFallback) {
    if (skinnyAligned(layout, dims, dtype, bOffset)) return 'skinny';
    return vec4Aligned(layout, dims, bOffset) ? 'vec4' : 'direct';
  }
  // decode: subgroup reductions (./matmul-gemv-sg.ts) once proven, which needs `subgroups`
  if (layout === 'nt' && dims.m <= GEMV_MAX_M) return proven(MATMUL_PATHS.gemvSg) ? 'gemv-sg' : 'gemv';
  if (NARROW_SPLITK_B_DTYPES.includes(dtype as DType)) {
    const [P, Q, D] = matmulPQD(layout, dims);
    if (P * Q <= SPLITK_MAX_OUT && D >= SPLITK_MIN_D && proven(MATMUL_PATHS.splitk)) return 'splitk';
    // narrow in nt with aligned K takes the 16-byte-load kernel (narrow4), proven by its own case
    const needs4 = layout === 'nt' && vec4Aligned(layout, dims, bOffset);
    if (Q <= NARROW_MAX_Q && proven(MATMUL_PATHS.narrow) && (!needs4 || proven(MATMUL_PATHS.narrow4))) return 'narrow';
    // subgroup matrices (chromium-experimental-subgroup-matrix) once the self-test proved them on this device
    if (P * Q > SPLITK_MAX_OUT && P >= SGMAT_MIN_SIDE && Q >= SGMAT_MIN_SIDE && proven(MATMUL_PATHS.sgmat)) return 'sgmat';
    // f16 inputs, f32 sums: only where no gradient follows, once proven (which needs shader-f16)
    if (inference && layout === 'nt' && proven(MATMUL_PATHS.f16)) return 'f16';
    if (P * Q >= REGTILE_MIN_OUT && proven(MATMUL_PATHS.regtile)) return 'regtile';
  }
  return 'tiled';
}

/**
 * regtile's tile for this adapter and product: the 128×128 tile (256 threads) where the adapter's
 * limits take it and the grid still has REGTILE_LARGE_MIN_TILES of them, with K tiles of 16 where
 * workgroup memory allows (32 KiB, most discrete GPUs); else the 64×64 tile of 64 threads.
 */
export function regtileConstants(limits: GPUSupportedLimits, P: number, Q: number): Record<string, number> {
  const fits = (c: Record<string, number>) => regtileProblem(c, limits) === null;
  const large = { ...MATMUL_REGTILE_LARGE };
  if (Math.ceil(P / (8 * large.RY)) * Math.ceil(Q / (8 * large.RX)) >= REGTILE_LARGE_MIN_TILES && fits(large)) {
    const deep = { ...large, RK: 16 };
    return fits(deep) ? deep : large;
  }
  return { ...MATMUL_REGTILE };
}

/** Workgroup memory regtile uses: two K tiles of A (8·RY × RK) and B (8·RX × RK) as f32. */
export function regtileStorageBytes(c: Record<string, number>): number {
  return 2 * c.RK! * 8 * (c.RX! + c.RY!) * 4;
}

/** Why regtile's constants do not fit this device (naming the constant to change), or null. */
export function regtileProblem(c: Record<string, number>, limits: GPUSupportedLimits): string | null {
  for (const name of ['RX', 'RY', 'RK'] as const) {
    const v = c[name];
    if (!Number.isInteger(v) || v! < 1) return `${name} = ${v} must be a positive integer`;
  }
  const { RX, RY, RK } = c as { RX: number; RY: number; RK: number };
  if (RK % 8) return `RK = ${RK} must be a multiple of 8 (a K tile holds whole 16-byte loads of 16-bit b)`;
  if (RX > limits.maxComputeWorkgroupSizeX) return `RX = ${RX} exceeds this device's maxComputeWorkgroupSizeX (${limits.maxComputeWorkgroupSizeX}); pass a smaller RX`;
  if (RY > limits.maxComputeWorkgroupSizeY) return `RY = ${RY} exceeds this device's maxComputeWorkgroupSizeY (${limits.maxComputeWorkgroupSizeY}); pass a smaller RY`;
  if (RX * RY > limits.maxComputeInvocationsPerWorkgroup)
    return `RX·RY = ${RX * RY} threads exceeds this device's maxComputeInvocationsPerWorkgroup (${limits.maxComputeInvocationsPerWorkgroup}); pass a smaller RX or RY`;
  const bytes = regtileStorageBytes(c);
  if (bytes > limits.maxComputeWorkgroupStorageSize)
    return `RK = ${RK} with RX = ${RX}, RY = ${RY} needs ${bytes} bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize (${limits.maxComputeWorkgroupStorageSize}); pass a smaller RK`;
  // Staging units per thread: A (8·RY·RK/4) and B (8·RX·RK/4 for f32 b, the most) over RX·RY threads.
  const units = Math.ceil((2 * Math.max(RX, RY) * RK) / (RX * RY));
  if (units > REGTILE_UNITS)
    return `RK = ${RK} over RX·RY = ${RX * RY} threads stages ${units} 16-byte loads per thread, more than ${REGTILE_UNITS}; pass a smaller RK or more threads`;
  return null;
}

/** Splits of D for splitk: enough workgroups to fill a GPU, slices of at least SPLITK_MIN_CHUNK. */
export function splitKCount(P: number, Q: number, D: number): number {
  const blocks = Math.ceil(P / 4) * Math.ceil(Q / 4);
  const want = Math.ceil(SPLITK_TARGET_THREADS / blocks);
  return Math.max(1, Math.min(want, Math.ceil(D / SPLITK_MIN_CHUNK)));
}

/** Throws unless a workgroup of `size` threads fits this device's limits (override constants may raise it). */
function checkWorkgroup(op: string, name: string, size: number, limits: GPUSupportedLimits): void {
  if (!Number.isInteger(size) || size < 1) throw new Error(`${op}: ${name} = ${size} must be a positive integer`);
  const max = Math.min(limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup);
  if (size > max)
    throw new Error(`${op}: ${name} = ${size} threads exceeds this device's workgroup limit (${max}); pass a smaller ${name}`);
}

export function matmul(batch: CommandBatch, args: MatmulArgs, options: MatmulOptions = {}): void {
  const { a, b, out, layout } = args;
  const op = `matmul ${layout}`;
  expectF32(op, a, out);
  expectDTypes(op, MATMUL_B_DTYPES[layout] ?? ['f32'], b);
  if (out.buffer === a.buffer || out.buffer === b.buffer)
    throw new Error(`${op}: out (${out.label}) must not share a buffer with ${out.buffer === a.buffer ? `a (${a.label})` : `b (${b.label})`}`);
  const dims = matmulDims(args);
  const [P, Q, D] = matmulPQD(layout, dims);
  if (P === 0 || Q === 0) return;
  const alpha = args.alpha ?? 1;
  const accumulate = args.accumulate ? 1 : 0;
  const bOffset = args.bOffset ?? 0;

  const ctx = batch.ctx;
  const path =
    options.path ?? defaultMatmulPath(ctx.adapter.isFallback, layout, dims, bOffset, b.dtype, (name) => isProven(ctx, name), options.inference);
  const maxFlops = options.maxDispatchFlops ?? MATMUL_MAX_DISPATCH_FLOPS;
  if (!(maxFlops >= 1)) throw new Error(`${op}: maxDispatchFlops ${maxFlops} must be at least 1`);
  if ((path === 'narrow' || path === 'splitk' || path === 'regtile') && !NARROW_SPLITK_B_DTYPES.includes(b.dtype))
    throw new Error(`${op}: the ${path} path takes b as f32, bf16 or f16 (b ${b.label} is ${b.dtype}); use tiled for quantized weights`);
  if (path === 'narrow' && Q > NARROW_MAX_Q)
    throw new Error(`${op}: the narrow path needs at most ${NARROW_MAX_Q} output columns (${Q} here); use tiled`);
  if (path === 'splitk') {
    splitK(batch, args, options, { P, Q, D, alpha, accumulate, bOffset, maxFlops });
    return;
  }
  if (path === 'regtile') {
    regtile(batch, args, options, { P, Q, D, alpha, accumulate, bOffset, maxFlops });
    return;
  }
  if (path === 'f16') {
    if (layout !== 'nt') throw new Error(`${op}: the f16 path needs layout nt`);
    matmulF16(batch, { a, b, out, ...dims, alpha, accumulate: accumulate === 1, bOffset }, { variant: options.f16Variant, constants: options.constants, maxDispatchFlops: maxFlops });
    return;
  }
  if (path === 'gemv-sg') {
    if (layout !== 'nt') throw new Error(`${op}: the gemv-sg path needs layout nt and M ≤ ${GEMV_MAX_M}`);
    matmulGemvSg(batch, { a, b, out, ...dims, alpha, accumulate: accumulate === 1, bOffset }, options.constants, maxFlops);
    return;
  }
  if (path === 'sgmat') {
    matmulSgmat(batch, { a, b, out, layout, P, Q, D, alpha, accumulate: accumulate === 1, bOffset }, { variant: options.subgroupMatrix, maxDispatchFlops: options.maxDispatchFlops });
    return;
  }
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
          : path === 'narrow'
            ? MATMUL_NARROW
            : MATMUL_DIRECT;
  const constants: Record<string, number> = { ...defaults, ...options.constants };
  if (path === 'narrow') checkWorkgroup(op, 'NW', constants.NW!, ctx.limits);
  let tilesQ = 0;
  let groups: number;
  let groupFlops: number; // what one workgroup computes, edges included: 2 · its outputs · D
  if (path === 'gemv') {
    groups = Math.ceil(Q / constants.GV_ROWS!);
    groupFlops = 2 * constants.GV_ROWS! * P * D;
  } else if (path === 'skinny') {
    groups = Math.ceil(Q / (4 * constants.SW!));
    groupFlops = 2 * 4 * constants.SW! * P * D;
  } else if (path === 'narrow') {
    tilesQ = Math.ceil(Q / 16);
    groups = Math.ceil(P / (4 * constants.NW!)) * tilesQ;
    groupFlops = 2 * 4 * constants.NW! * 16 * D;
  } else {
    const [tp, tq] =
      path === 'tiled'
        ? [4 * constants.WY!, 4 * constants.WX!]
        : [(path === 'vec4' ? 8 : 4) * constants.CY!, 4 * constants.CX!];
    tilesQ = Math.ceil(Q / tq);
    groups = Math.ceil(P / tp) * tilesQ;
    groupFlops = 2 * tp * tq * D;
  }
  // narrow in nt with K and bOffset multiples of 4 reads 16 bytes at a time (narrow4).
  const narrow4 = path === 'narrow' && layout === 'nt' && vec4Aligned(layout, dims, bOffset);
  // vec4, narrow4 and skinny read a and b whole (b's last vec4 of 16-bit values may lie in the buffer's padding).
  const scaleWord = isQuantDType(b.dtype) ? scaleWord0(b.size, b.dtype) : 0;
  dispatchBounded(
    batch,
    {
      kernel: { name: 'matmul', code, entryPoint: `${narrow4 ? 'narrow4' : path}_${layout}_${b.dtype}`, constants },
      buffers: path === 'vec4' || path === 'skinny' || narrow4 ? [wholeBuffer(a), wholeBuffer(b), out] : [a, b, out],
    },
    { groups, groupFlops, maxFlops, flops: 2 * P * Q * D },
    (first, end) => matmulParams(P, Q, D, bOffset, alpha, accumulate, tilesQ, end, scaleWord, 0, 0, first),
  );
}

/** A call as `matmul` resolved it: the generic product, accumulate as the shader's 0/1, the dispatch bound. */
interface ResolvedProduct {
  P: number;
  Q: number;
  D: number;
  alpha: number;
  accumulate: number;
  bOffset: number;
  maxFlops: number;
}

/** regtile: constants picked for this adapter and product unless forced, checked against its limits. */
function regtile(batch: CommandBatch, args: MatmulArgs, options: MatmulOptions, product: ResolvedProduct): void {
  const { a, b, out, layout } = args;
  const { P, Q, D, alpha, accumulate, bOffset, maxFlops } = product;
  const limits = batch.ctx.limits;
  const constants = { ...regtileConstants(limits, P, Q), ...options.constants };
  const problem = regtileProblem(constants, limits);
  if (problem) throw new Error(`matmul ${layout}: regtile path: ${problem}`);
  const tp = 8 * constants.RY!;
  const tq = 8 * constants.RX!;
  const tilesQ = Math.ceil(Q / tq);
  const groups = Math.ceil(P / tp) * tilesQ;
  // 16-byte loads where the contiguous dim (and b's offset) keep every row on a 16-byte boundary:
  // a along d (nt, nn) or p (tn); b along d (nt) or q (nn, tn), 4 f32 or 8 16-bit values a load.
  const ub = b.dtype === 'f32' ? 4 : 8;
  const aAligned = (layout === 'tn' ? P : D) % 4 === 0;
  const bAligned = (layout === 'nt' ? D : Q) % ub === 0 && bOffset % ub === 0;
  const aligned = (aAligned ? 1 : 0) | (bAligned ? 2 : 0);
  dispatchBounded(
    batch,
    { kernel: { name: 'matmul', code, entryPoint: `regtile_${layout}_${b.dtype}`, constants }, buffers: [wholeBuffer(a), wholeBuffer(b), out] },
    { groups, groupFlops: 2 * tp * tq * D, maxFlops, flops: 2 * P * Q * D },
    (first, end) => matmulParams(P, Q, D, bOffset, alpha, accumulate, tilesQ, end, 0, 0, 0, first, aligned),
  );
}

/**
 * splitk: `splits` workgroup rows each sum one slice of D into a scratch [splits, P, Q] from the
 * pool; splitk_reduce then adds the slices in order 0, 1, … (the same bits every run).
 */
function splitK(batch: CommandBatch, args: MatmulArgs, options: MatmulOptions, product: ResolvedProduct): void {
  const { a, b, out, layout } = args;
  const { P, Q, D, alpha, accumulate, bOffset, maxFlops } = product;
  const op = `matmul ${layout}`;
  const constants: Record<string, number> = { ...MATMUL_SPLITK, ...options.constants };
  checkWorkgroup(op, 'SKW', constants.SKW!, batch.ctx.limits);
  const splits = options.splits ?? splitKCount(P, Q, D);
  if (!Number.isInteger(splits) || splits < 1) throw new Error(`${op}: splits = ${splits} must be a positive integer`);
  const chunk = Math.max(1, Math.ceil(D / splits));
  const used = Math.max(1, Math.ceil(D / chunk)); // no empty trailing slices
  const perSplit = Math.ceil((Math.ceil(P / 4) * Math.ceil(Q / 4)) / constants.SKW!);
  const part = batch.ctx.tensor([used, P * Q], 'f32', 'matmul split-K partials');
  try {
    dispatchBounded(
      batch,
      { kernel: { name: 'matmul', code, entryPoint: `splitk_${layout}_${b.dtype}`, constants }, buffers: [a, b, part] },
      { groups: perSplit * used, groupFlops: 2 * constants.SKW! * 16 * chunk, maxFlops, flops: 2 * P * Q * D },
      (first, end) => matmulParams(P, Q, D, bOffset, alpha, accumulate, perSplit, end, 0, chunk, used, first),
    );
    // No FLOPs counted: the adds of the partial sums (the product was counted above)
    batch.dispatch({
      kernel: { name: 'matmul', code, entryPoint: 'splitk_reduce', constants: { SKW: constants.SKW! } },
      flops: 0,
      params: matmulParams(P, Q, 0, 0, alpha, accumulate, 0, 0, 0, chunk, used),
      buffers: [part, part, out],
      groups: splitGroups(Math.ceil((P * Q) / constants.SKW!)),
    });
  } finally {
    // Dispatches of one batch run in order and the pool hands the buffer out again only to later work.
    part.release();
  }
}

/**
 * The Params struct of shaders/matmul.wgsl, in field order (exported for kernels that share it).
 * `groups` is the end (exclusive) of this dispatch's workgroups, `firstGroup` its first;
 * `aligned` is regtile's bit set (1: a's rows on 16 bytes, 2: b's).
 */
export function matmulParams(
  P: number,
  Q: number,
  D: number,
  bOffset: number,
  alpha: number,
  acc: number,
  tilesQ: number,
  groups: number,
  scaleWord: number,
  chunk = 0,
  splits = 0,
  firstGroup = 0,
  aligned = 0,
) {
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
    { u32: chunk },
    { u32: splits },
    { u32: firstGroup },
    { u32: aligned },
  ]);
}
