// f16 inputs, f32 accumulation (shaders/matmul_f16.wgsl): out[M,N] = alpha · a[M,K]·b[N,K]ᵀ (+ out)
// with a and b rounded to f16 as they are staged and each product rounded to f16, sums in f32.
//
// Scope: only products no gradient flows through. Rounding inputs to f16 (11-bit significand,
// range ±65504) is harmless to a forward pass that is sampled from, but a backward pass built on
// it would differentiate a different function and its gradients would carry the rounding, so
// training never takes it: `matmul` chooses it (path 'f16') only for calls marked `inference`
// (generation's layers: src/model/layer.ts marks the projections of a pass that writes a KV
// cache), in layout nt with M above the decode GEMV's 8 rows, and on a device that has
// `shader-f16` and whose self-test case passed (MATMUL_PATHS.f16). Values beyond ±65504 do not
// fit f16; a model whose activations reach that far must keep the f32 path.
//
// The same source runs in two variants: 'real' (`enable f16`, h = f16) and 'emulated' (h = f32
// with every f16 rounding done by pack2x16float/unpack2x16float), the arithmetic of the real one
// on adapters without shader-f16. The tests force the emulated variant on SwiftShader against
// float64; the real variant compiles and runs only on a device with the feature.
import f16Wgsl from '../../shaders/matmul_f16.wgsl?raw';
import { dispatchBounded, MAX_DISPATCH_FLOPS, wholeBuffer, type CommandBatch } from '../gpu/batch';
import type { DType } from '../gpu/dtype';
import { packParams } from '../gpu/params';
import type { NtCall } from './matmul';
import { floatDecodeWgsl } from './quant-decode';

export type F16Variant = 'real' | 'emulated';

/** TK: depth of the slices staged in workgroup memory (8, 16, 24 or 32). */
export const MATMUL_F16 = { TK: 16 } as const;
/** The workgroup's output tile is F16_TILE × F16_TILE (8×8 threads, 8×8 outputs each). */
export const F16_TILE = 64;
export const F16_B_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];
/**
 * Relative L2 error the f16 path may have against the exact product. Each term a·b carries three
 * roundings to f16 (a, b and the product), each a relative error of at most u = 2^-11 and, for
 * values not aligned with f16's grid, close to uniform (rms u/√3), so a term's error has rms ≈ u.
 * The terms' errors are independent of one another and of the terms' signs, so over K terms the
 * error grows as √K like the output itself: the output's relative L2 error is ≈ u whatever K.
 * (The worst case, all roundings one way against an output that cancels to ~√K of its terms'
 * magnitude, is 3u·√K; the self-test's random inputs are the typical case.) 4u leaves room for
 * the f32 sums and unlucky draws; a kernel that drops or repeats one term in 64 is off by ~1/8.
 */
export const F16_ERROR_BOUND = 4 * 2 ** -11;

// The variant's definitions of h, to_h (f32 → h) and hmul (h · vec4<h> → vec4f).
const PRELUDE: Record<F16Variant, string> = {
  real: `enable f16;
alias h = f16;
fn to_h(x: f32) -> h {
  return h(x);
}
fn hmul(x: h, y: vec4<h>) -> vec4f {
  return vec4f(x * y);
}`,
  emulated: `alias h = f32;
// The real variant's roundings to f16, in f32 (for adapters without shader-f16).
fn to_h(x: f32) -> h {
  return unpack2x16float(pack2x16float(vec2f(x, 0.0))).x;
}
fn hmul(x: h, y: vec4<h>) -> vec4f {
  let v = x * y;
  return vec4f(unpack2x16float(pack2x16float(v.xy)), unpack2x16float(pack2x16float(v.zw)));
}`,
};

const DT_CODE: Record<string, number> = { f32: 0, bf16: 1, f16: 2 };

function entryPoints(): string {
  const args = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u';
  return F16_B_DTYPES.map((d) =>
    [true, false]
      .map((vec) => `@compute @workgroup_size(8, 8)\nfn f16_nt_${vec ? '' : 'any_'}${d}(${args}) {\n  f16_nt(wid, nwg, lid, ${vec}, ${DT_CODE[d]}u);\n}\n`)
      .join('\n'),
  ).join('\n');
}

const F16_FLOAT_DECODE = floatDecodeWgsl('fb_', 'b_word', 'b4');

/** The kernel module of a variant: its cache name and WGSL. */
export const F16_MODULES: Record<F16Variant, { name: string; code: string }> = {
  real: { name: 'matmul_f16', code: [PRELUDE.real, f16Wgsl, F16_FLOAT_DECODE, entryPoints()].join('\n') },
  emulated: { name: 'matmul_f16_emulated', code: [PRELUDE.emulated, f16Wgsl, F16_FLOAT_DECODE, entryPoints()].join('\n') },
};

export interface F16Options {
  /** 'real' (default) needs shader-f16; 'emulated' runs anywhere (tests). */
  variant?: F16Variant;
  constants?: Record<string, number>;
  /** Most FLOPs one dispatch may run (default MAX_DISPATCH_FLOPS of src/gpu/batch.ts); tests force it small. */
  maxDispatchFlops?: number;
}

/** Encodes the product (dims already checked by matmulDims), in dispatches of bounded work. */
export function matmulF16(batch: CommandBatch, args: NtCall, options: F16Options = {}): void {
  const { a, b, out, m, n, k, alpha, accumulate, bOffset } = args;
  const variant = options.variant ?? 'real';
  const op = `matmul nt (f16${variant === 'emulated' ? ', emulated' : ''})`;
  const ctx = batch.ctx;
  if (variant === 'real' && !ctx.features.has('shader-f16'))
    throw new Error(`${op}: needs the adapter feature 'shader-f16', which this device lacks; use another path (or variant 'emulated' in tests)`);
  if (!F16_B_DTYPES.includes(b.dtype)) throw new Error(`${op}: b (${b.label}) is ${b.dtype}; the f16 path takes ${F16_B_DTYPES.join(', ')}`);
  if (m === 0 || n === 0) return;
  const c = { ...MATMUL_F16, ...options.constants };
  if (!Number.isInteger(c.TK) || c.TK < 8 || c.TK > 32 || c.TK % 8) throw new Error(`${op}: TK = ${c.TK} must be 8, 16, 24 or 32`);
  const bytes = 2 * c.TK * F16_TILE * (variant === 'real' ? 2 : 4);
  if (bytes > ctx.limits.maxComputeWorkgroupStorageSize)
    throw new Error(`${op}: TK = ${c.TK} needs ${bytes} bytes of workgroup memory, over this device's ${ctx.limits.maxComputeWorkgroupStorageSize}; pass a smaller TK`);
  const tilesQ = Math.ceil(n / F16_TILE);
  const groups = Math.ceil(m / F16_TILE) * tilesQ;
  const maxFlops = options.maxDispatchFlops ?? MAX_DISPATCH_FLOPS;
  const vec = k % 8 === 0 && bOffset % 8 === 0;
  const mod = F16_MODULES[variant];
  // a and b bound whole: both are read as vec4 arrays (the pool rounds buffers to 16 bytes).
  dispatchBounded(
    batch,
    { kernel: { name: mod.name, code: mod.code, entryPoint: `f16_nt_${vec ? '' : 'any_'}${b.dtype}`, constants: c }, buffers: [wholeBuffer(a), wholeBuffer(b), out] },
    // each tile runs 2·64·64·K FLOPs
    { groups, groupFlops: 2 * F16_TILE * F16_TILE * k, maxFlops, flops: 2 * m * n * k },
    (first) =>
      packParams([
        { u32: m },
        { u32: n },
        { u32: k },
        { u32: bOffset },
        { f32: alpha },
        { u32: accumulate ? 1 : 0 },
        { u32: tilesQ },
        { u32: groups },
        { u32: first },
      ]),
  );
}
