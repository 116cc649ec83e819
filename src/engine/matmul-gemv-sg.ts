// Decode GEMV with subgroup reductions: out[M,N] = alpha · a[M,K]·b[N,K]ᵀ (+ out), M ≤ 8, for
// adapters with the `subgroups` feature (see shaders/matmul_gemv_sg.wgsl). `matmul` takes it
// (path 'gemv-sg') in place of the workgroup-tree gemv once the self-test proved it on the device
// (MATMUL_PATHS.gemvSg); tests and benches force it, on SwiftShader too (subgroup size 4).
import gemvSgWgsl from '../../shaders/matmul_gemv_sg.wgsl?raw';
import { dispatchBounded, MAX_DISPATCH_FLOPS, wholeBuffer, type CommandBatch } from '../gpu/batch';
import type { DType } from '../gpu/dtype';
import { GGML_DTYPES } from '../gpu/ggml';
import { packParams } from '../gpu/params';
import { FORMAT_CODE, isQuantDType, QUANT_DTYPES, scaleWord0 } from '../gpu/quant';
import type { NtCall } from './matmul';
import { floatDecodeWgsl, quantDecodeWgsl } from './quant-decode';

/** WG threads per workgroup, which computes COLS output columns (at most GEMV_SG_MAX_COLS). */
export const MATMUL_GEMV_SG = { WG: 64, COLS: 4 } as const;
export const GEMV_SG_MAX_COLS = 8;
export const GEMV_SG_MAX_M = 8;
/** Every b dtype of layout nt: f32, bf16, f16, int8/int4 and GGUF's block formats. */
export const GEMV_SG_B_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16', ...QUANT_DTYPES, ...GGML_DTYPES];

/** 16-byte loads of a and b: each row of b and of a starts on a multiple of 8 elements. */
export function gemvSgAligned(k: number, bOffset: number): boolean {
  return k % 8 === 0 && bOffset % 8 === 0;
}

function entryPoints(): string {
  const args = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32';
  return GEMV_SG_B_DTYPES.map((d) => {
    const dt = `${FORMAT_CODE[d as keyof typeof FORMAT_CODE]}u`;
    return [true, false]
      .map((vec) => `@compute @workgroup_size(WG)\nfn gemv_sg_${vec ? '' : 'any_'}${d}(${args}) {\n  gemv_sg(wid, nwg, lid, ${vec}, ${dt});\n}\n`)
      .join('\n');
  }).join('\n');
}

// The final sums run in the subgroup that holds invocation 0 (subgroupAny: uniform in each
// subgroup), which WGSL's uniformity analysis cannot see: its subgroup_uniformity check is off.
const code = ['enable subgroups;\ndiagnostic(off, subgroup_uniformity);', gemvSgWgsl, floatDecodeWgsl('fb_', 'b_word', 'b4'), quantDecodeWgsl('qs_', 'b_word'), entryPoints()].join('\n');

/**
 * Encodes the product (dims already checked by matmulDims). Throws where the device lacks
 * `subgroups`, M is out of 1..8 or b's dtype has no entry point.
 */
export function matmulGemvSg(
  batch: CommandBatch,
  args: NtCall,
  constants: Record<string, number> = {},
  maxDispatchFlops = MAX_DISPATCH_FLOPS,
): void {
  const { a, b, out, m, n, k, alpha, accumulate, bOffset } = args;
  const op = 'matmul nt (gemv-sg)';
  if (!batch.ctx.features.has('subgroups'))
    throw new Error(`${op}: needs the adapter feature 'subgroups', which this device lacks; use path 'gemv'`);
  if (m < 1 || m > GEMV_SG_MAX_M) throw new Error(`${op}: needs 1 ≤ M ≤ ${GEMV_SG_MAX_M} (M = ${m}); use path 'tiled'`);
  if (!GEMV_SG_B_DTYPES.includes(b.dtype)) throw new Error(`${op}: b (${b.label}) is ${b.dtype}; it takes ${GEMV_SG_B_DTYPES.join(', ')}`);
  if (n === 0) return;
  const c = { ...MATMUL_GEMV_SG, MR: m <= 1 ? 1 : m <= 2 ? 2 : m <= 4 ? 4 : 8, ...constants };
  const max = Math.min(batch.ctx.limits.maxComputeWorkgroupSizeX, batch.ctx.limits.maxComputeInvocationsPerWorkgroup);
  if (!Number.isInteger(c.WG) || c.WG < 1 || c.WG > max) throw new Error(`${op}: WG = ${c.WG} must be an integer in 1..${max}`);
  if (!Number.isInteger(c.COLS) || c.COLS < 1 || c.COLS > GEMV_SG_MAX_COLS)
    throw new Error(`${op}: COLS = ${c.COLS} must be an integer in 1..${GEMV_SG_MAX_COLS}`);
  const bytes = 4 * c.COLS * c.MR * c.WG;
  if (bytes > batch.ctx.limits.maxComputeWorkgroupStorageSize)
    throw new Error(`${op}: WG·COLS·MR = ${bytes / 4} sums need ${bytes} bytes of workgroup memory, over this device's ${batch.ctx.limits.maxComputeWorkgroupStorageSize}; pass a smaller WG or COLS`);
  const groups = Math.ceil(n / c.COLS);
  const vec = gemvSgAligned(k, bOffset);
  // a and b bound whole: both are read as vec4 arrays (the pool rounds buffers to 16 bytes).
  dispatchBounded(
    batch,
    { kernel: { name: 'matmul_gemv_sg', code, entryPoint: `gemv_sg_${vec ? '' : 'any_'}${b.dtype}`, constants: c }, buffers: [wholeBuffer(a), wholeBuffer(b), out] },
    // whole workgroups of 2·M·COLS·K FLOPs
    { groups, groupFlops: 2 * m * c.COLS * k, maxFlops: maxDispatchFlops, flops: 2 * m * n * k },
    (first) =>
      packParams([
        { u32: m },
        { u32: n },
        { u32: k },
        { u32: bOffset },
        { f32: alpha },
        { u32: accumulate ? 1 : 0 },
        { u32: groups },
        { u32: isQuantDType(b.dtype) ? scaleWord0(b.size, b.dtype) : 0 },
        { u32: first },
      ]),
  );
}
