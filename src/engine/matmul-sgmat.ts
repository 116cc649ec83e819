// Subgroup-matrix matmul: the `sgmat` path of ./matmul.ts, for adapters with
// `chromium-experimental-subgroup-matrix` (Apple M1 and later in Chrome: f32 and f16 8×8×8).
// The kernel body is shaders/matmul_sgmat.wgsl; it is written against a small prelude
// (SgLeft / SgRight / SgResult, sgm_left_rm / _cm, sgm_right_rm / _cm, sgm_mma, sgm_store) that
// this module splices in one of two ways:
//   hardware  the chromium builtins (subgroupMatrixLoad / MultiplyAccumulate / Store). This
//             variant cannot run on an adapter without the feature (SwiftShader, the only one in
//             CI): it is proven only on a device, by the self-test case that makes a GPU take it.
//   emulated  shaders/matmul_sgmat_emu.wgsl, plain WGSL with the same semantics (each invocation
//             holds whole 8×8 matrices), so the body's tiling, staging, edges and epilogue are
//             tested on SwiftShader against float64 (matmul-sgmat.test.ts).
// Chrome has shipped two spellings of the builtins (a `col_major` bool argument, later a
// row_major / col_major template argument) and subgroup_id arrived with the extension;
// `prepareSubgroupMatrix` compiles the real kernel in each form once per device and keeps the
// first that builds.
import bodyWgsl from '../../shaders/matmul_sgmat.wgsl?raw';
import emulatedWgsl from '../../shaders/matmul_sgmat_emu.wgsl?raw';
import { dispatchBounded, wholeBuffer, type CommandBatch } from '../gpu/batch';
import type { GpuContext, SubgroupMatrixConfig } from '../gpu/context';
import type { DType } from '../gpu/dtype';
import { packParams } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32 } from './checks';
import type { GenericProduct, MatmulLayout } from './matmul';
import { floatDecodeWgsl } from './quant-decode';

export const SGMAT_FEATURE = 'chromium-experimental-subgroup-matrix';
export type SgmatVariant = 'hardware' | 'emulated';
/** The dtypes b may have (widened to f32 when staged); quantized weights keep the other paths. */
export const SGMAT_B_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16'];

/**
 * SGP × SGQ subgroups per workgroup, each MI × NJ result matrices of 8×8, so a (SGP·MI·8) ×
 * (SGQ·NJ·8) tile (64 × 64); TK deep slices of d in workgroup memory (16 where the adapter's
 * workgroup storage is the 16 KiB minimum).
 */
export interface SgmatTiling {
  SGP: number;
  SGQ: number;
  MI: number;
  NJ: number;
  TK: number;
}
export const SGMAT_TILE: SgmatTiling = { SGP: 2, SGQ: 2, MI: 4, NJ: 4, TK: 32 };
/** Invocations per emulated subgroup (any size works; 4 is SwiftShader's own). */
export const SGMAT_EMULATED_SUBGROUP = 4;
/**
 * FLOPs per dispatch (the GPU watchdog; docs/KERNELS.md). Above the shared MAX_DISPATCH_FLOPS
 * (2^32, sized for weak integrated GPUs, which never have this feature): only Apple7+ GPUs do,
 * and the slowest, an 8-core M1 (2.6 TFLOP/s f32), runs 2^36 FLOPs in about 100 ms at a quarter
 * of its peak, 20× under a 2 s watchdog. At 2^32 the 1B model's down projection at M = 2048
 * (K = 8192) would be 16 dispatches of 64 workgroups, too few to fill a 32-core M1 Max; at 2^36
 * it is one. A `maxDispatchFlops` passed to `matmul` still overrides it.
 */
export const SGMAT_MAX_DISPATCH_FLOPS = 2 ** 36;

/** The config the kernel is written for: f32 in, f32 out, 8×8×8. */
export function pickSubgroupMatrixConfig(configs: readonly SubgroupMatrixConfig[] | undefined): SubgroupMatrixConfig | null {
  return configs?.find((c) => c.componentType === 'f32' && c.resultComponentType === 'f32' && c.M === 8 && c.N === 8 && c.K === 8) ?? null;
}

/** Why this device cannot run the hardware variant ("not available: …"), or null where it can. */
export function sgmatUnavailable(ctx: Pick<GpuContext, 'features' | 'adapter'>): string | null {
  if (!ctx.features.has(SGMAT_FEATURE)) return `not available: adapter lacks ${SGMAT_FEATURE}`;
  if (!ctx.features.has('subgroups')) return `not available: ${SGMAT_FEATURE} needs the subgroups feature, which this device lacks`;
  const configs = ctx.adapter.subgroupMatrixConfigs ?? [];
  if (!pickSubgroupMatrixConfig(configs)) {
    const offered = configs.map((c) => `${c.componentType}→${c.resultComponentType} ${c.M}×${c.N}×${c.K}`).join(', ') || 'none';
    return `not available: no f32 8×8×8 subgroup-matrix config on this adapter (it offers ${offered})`;
  }
  if (!ctx.adapter.subgroupMaxSize) return 'not available: the adapter does not report subgroupMaxSize';
  return null;
}

/** How the hardware prelude spells the builtins: `col_major` as a bool argument or a template argument. */
export type SgmatSyntax = 'bool' | 'template';
/** Where an invocation's subgroup index comes from: @builtin(subgroup_id), or local index / subgroup_size. */
export type SgmatSubgroupId = 'builtin' | 'divide';
export interface HardwareForm {
  syntax: SgmatSyntax;
  subgroupId: SgmatSubgroupId;
}
const FORMS: readonly HardwareForm[] = [
  { syntax: 'bool', subgroupId: 'builtin' },
  { syntax: 'template', subgroupId: 'builtin' },
  { syntax: 'bool', subgroupId: 'divide' },
  { syntax: 'template', subgroupId: 'divide' },
];
const prepared = new WeakMap<GpuContext, Promise<HardwareForm>>();
const ready = new WeakMap<GpuContext, HardwareForm>();

/**
 * Compiles the hardware kernel (nt, f32) in each spelling of the builtins and keeps the first that
 * builds a pipeline on this device; `matmul` with the sgmat path needs it to have run once per
 * context (the self-test case does). Throws, with the compiler's messages, where none builds.
 */
export function prepareSubgroupMatrix(ctx: GpuContext): Promise<HardwareForm> {
  let p = prepared.get(ctx);
  if (!p) {
    p = probe(ctx).then((form) => (ready.set(ctx, form), form));
    prepared.set(ctx, p);
    p.catch(() => prepared.delete(ctx)); // a later call may try again
  }
  return p;
}

async function probe(ctx: GpuContext): Promise<HardwareForm> {
  const why = sgmatUnavailable(ctx);
  if (why) throw new Error(`matmul sgmat: ${why}`);
  const failures: string[] = [];
  for (const form of FORMS) {
    const { code, constants } = sgmatModule({ variant: 'hardware', form, layout: 'nt', vec: true, sgSize: ctx.adapter.subgroupMaxSize!, tiling: tilingFor(ctx.limits) });
    ctx.device.pushErrorScope('validation');
    const module = ctx.device.createShaderModule({ label: 'matmul_sgmat probe', code });
    const info = await module.getCompilationInfo();
    let error = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('; ');
    if (!error) {
      try {
        await ctx.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'sgmat_f32', constants } });
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    const scoped = await ctx.device.popErrorScope();
    if (!error && !scoped) return form;
    failures.push(`${form.syntax} syntax, subgroup id ${form.subgroupId}: ${error || scoped?.message}`);
  }
  throw new Error(`matmul sgmat: no spelling of the subgroup-matrix builtins compiles on this device:\n${failures.join('\n')}`);
}

/** The tiling this device's workgroup storage allows (TK 32 needs 18 KiB, TK 16 the 16 KiB minimum). */
export function tilingFor(limits: Pick<GPUSupportedLimits, 'maxComputeWorkgroupStorageSize'>, tiling: SgmatTiling = SGMAT_TILE): SgmatTiling {
  if (sharedFloats(tiling, 'nt') * 4 <= limits.maxComputeWorkgroupStorageSize) return tiling;
  return { ...tiling, TK: 16 };
}

const TM = (t: SgmatTiling) => t.SGP * t.MI * 8;
const TN = (t: SgmatTiling) => t.SGQ * t.NJ * 8;

/** Strides of the staged A and B slices and the floats of workgroup memory (see matmul_sgmat.wgsl). */
function strides(t: SgmatTiling, layout: MatmulLayout) {
  const aT = layout === 'tn';
  const bT = layout === 'nt';
  const SA = aT ? TM(t) + 4 : t.TK + 4;
  const SB = bT ? t.TK + 4 : TN(t) + 4;
  const aFloats = aT ? t.TK * SA : TM(t) * SA;
  const bFloats = bT ? TN(t) * SB : t.TK * SB;
  return { aT, bT, SA, SB, SH: Math.max(aFloats + bFloats, TM(t) * TN(t)) };
}

function sharedFloats(t: SgmatTiling, layout: MatmulLayout): number {
  return strides(t, layout).SH;
}

/** True when the 16-byte-load kernel applies: a's and b's contiguous dims, and b's offset, aligned. */
export function sgmatVec(layout: MatmulLayout, P: number, Q: number, D: number, bOffset: number, bDtype: DType): boolean {
  const aInner = layout === 'tn' ? P : D;
  const bInner = layout === 'nt' ? D : Q;
  const q = bDtype === 'f32' ? 4 : 8;
  return aInner % 4 === 0 && bInner % q === 0 && bOffset % q === 0;
}

const DT_CODE: Record<string, string> = { f32: 'F32', bf16: 'BF16', f16: 'F16' };

function hardwarePrelude(syntax: SgmatSyntax): string {
  const L = 'subgroup_matrix_left<f32, 8, 8>';
  const R = 'subgroup_matrix_right<f32, 8, 8>';
  const C = 'subgroup_matrix_result<f32, 8, 8>';
  const load = (T: string, colMajor: boolean) =>
    syntax === 'bool'
      ? `subgroupMatrixLoad<${T}>(&sh, off, ${colMajor}, stride)`
      : `subgroupMatrixLoad<${T}, ${colMajor ? 'col_major' : 'row_major'}>(&sh, off, stride)`;
  const store = syntax === 'bool' ? 'subgroupMatrixStore(&sh, off, m, false, stride)' : 'subgroupMatrixStore<row_major>(&sh, off, m, stride)';
  return `// Hardware subgroup matrices: the chromium builtins (f32 8×8×8 config).
alias SgLeft = ${L};
alias SgRight = ${R};
alias SgResult = ${C};
fn sgm_left_rm(off: u32, stride: u32) -> SgLeft { return ${load(L, false)}; }
fn sgm_left_cm(off: u32, stride: u32) -> SgLeft { return ${load(L, true)}; }
fn sgm_right_rm(off: u32, stride: u32) -> SgRight { return ${load(R, false)}; }
fn sgm_right_cm(off: u32, stride: u32) -> SgRight { return ${load(R, true)}; }
fn sgm_mma(l: SgLeft, r: SgRight, acc: SgResult) -> SgResult { return subgroupMatrixMultiplyAccumulate(l, r, acc); }
// lane: unused here (the emulated prelude stores from lane 0 only).
fn sgm_store(off: u32, stride: u32, m: SgResult, lane: u32) { ${store}; }
`;
}

// a at binding 1, b at binding 2: one view each, scalar or 16-byte (see matmul_sgmat.wgsl).
function bindings(vec: boolean): string {
  if (vec)
    return `@group(0) @binding(1) var<storage, read> a_v: array<vec4f>;
@group(0) @binding(2) var<storage, read> b_v: array<vec4u>;
fn a_vec(i: u32) -> vec4f { return a_v[i]; }
fn a_at(i: u32) -> f32 { return a_v[i >> 2u][i & 3u]; }
fn b_vec(i: u32) -> vec4u { return b_v[i]; }
fn b_word(i: u32) -> u32 { return b_v[i >> 2u][i & 3u]; }
`;
  return `@group(0) @binding(1) var<storage, read> a_s: array<f32>;
@group(0) @binding(2) var<storage, read> b_s: array<u32>;
fn a_at(i: u32) -> f32 { return a_s[i]; }
fn a_vec(i: u32) -> vec4f { return vec4f(a_s[4u * i], a_s[4u * i + 1u], a_s[4u * i + 2u], a_s[4u * i + 3u]); }
fn b_word(i: u32) -> u32 { return b_s[i]; }
fn b_vec(i: u32) -> vec4u { return vec4u(b_s[4u * i], b_s[4u * i + 1u], b_s[4u * i + 2u], b_s[4u * i + 3u]); }
`;
}

export interface SgmatModuleSpec {
  variant: SgmatVariant;
  /** hardware only: how the builtins are spelled (see prepareSubgroupMatrix). */
  form?: HardwareForm;
  layout: MatmulLayout;
  /** 16-byte global loads (sgmatVec). */
  vec: boolean;
  /** Invocations per subgroup: the adapter's subgroupMaxSize (hardware) or SGMAT_EMULATED_SUBGROUP. */
  sgSize: number;
  tiling: SgmatTiling;
}

/** The WGSL of one sgmat module (entry points sgmat_f32 / _bf16 / _f16) and its cache name. */
export function sgmatModule(spec: SgmatModuleSpec): { name: string; code: string; constants: Record<string, number> } {
  const { variant, layout, vec, sgSize, tiling: t } = spec;
  const form = spec.form ?? FORMS[0]!;
  const { aT, bT, SA, SB, SH } = strides(t, layout);
  const wg = t.SGP * t.SGQ * sgSize;
  const consts = {
    SG_SIZE: sgSize,
    SGP: t.SGP,
    SGQ: t.SGQ,
    MI: t.MI,
    NJ: t.NJ,
    TK: t.TK,
    SA,
    SB,
    SH,
    NA: Math.ceil((TM(t) * t.TK) / 4 / wg),
    NB: Math.ceil((TN(t) * t.TK) / 8 / wg),
  };
  const header =
    variant === 'hardware'
      ? // The builtins must be called in subgroup-uniform control flow, which WGSL cannot express:
        // Tint checks workgroup uniformity instead, which per-subgroup offsets fail. Disabled, as
        // ONNX Runtime and llama.cpp do; every call here is in subgroup-uniform control flow.
        'diagnostic(off, chromium.subgroup_matrix_uniformity);\nenable subgroups;\nenable chromium_experimental_subgroup_matrix;\n'
      : '';
  const lines = [
    header,
    `// matmul_sgmat, ${variant}${variant === 'hardware' ? ` (${form.syntax} syntax, subgroup id ${form.subgroupId})` : ''}, layout ${layout}${vec ? ', 16-byte loads' : ''}`,
    `const A_T = ${aT};\nconst B_T = ${bT};\nconst VEC = ${vec};`,
    ...Object.entries(consts).map(([k, v]) => `const ${k} = ${v}u;`),
    bindings(vec),
    variant === 'hardware' ? hardwarePrelude(form.syntax) : emulatedWgsl,
    bodyWgsl,
    floatDecodeWgsl('fb_', 'b_word'),
  ];
  const base = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32';
  for (const [dtype, dt] of Object.entries(DT_CODE)) {
    let args = base;
    let call = `sgmat(wid, nwg, li, li / SG_SIZE, li % SG_SIZE, ${dt})`;
    if (variant === 'hardware' && form.subgroupId === 'builtin') {
      args += ', @builtin(subgroup_id) sg: u32';
      call = `sgmat(wid, nwg, li, sg, 0u, ${dt})`;
    } else if (variant === 'hardware') {
      args += ', @builtin(subgroup_size) sgs: u32';
      call = `sgmat(wid, nwg, li, li / sgs, li % sgs, ${dt})`;
    }
    lines.push(`@compute @workgroup_size(WG)\nfn sgmat_${dtype}(${args}) {\n  ${call};\n}\n`);
  }
  const key = [variant, variant === 'hardware' ? `${form.syntax}-${form.subgroupId}` : '', layout, vec ? 'vec' : 'any', sgSize, t.SGP, t.SGQ, t.MI, t.NJ, t.TK].join('_');
  return { name: `matmul_sgmat_${key}`, code: lines.join('\n'), constants: {} };
}

export interface SgmatCall extends GenericProduct {
  a: Tensor;
  b: Tensor;
  out: Tensor;
}

export interface SgmatOptions {
  /** hardware (default): the chromium builtins; emulated: plain WGSL, for adapters without the feature. */
  variant?: SgmatVariant;
  tiling?: SgmatTiling;
  /** Cut the product into dispatches of at most this many FLOPs (default SGMAT_MAX_DISPATCH_FLOPS). */
  maxDispatchFlops?: number;
  /** emulated: invocations per subgroup (default SGMAT_EMULATED_SUBGROUP; 32 gives the workgroup an Apple GPU runs). */
  emulatedSubgroup?: number;
}

/** Encodes out = alpha · C + (accumulate ? out : 0) on the sgmat path (called by `matmul`). */
export function matmulSgmat(batch: CommandBatch, call: SgmatCall, options: SgmatOptions = {}): void {
  const { a, b, out, layout, P, Q, D, bOffset } = call;
  const op = `matmul ${layout}`;
  expectF32(op, a, out);
  if (!SGMAT_B_DTYPES.includes(b.dtype))
    throw new Error(`${op}: the sgmat path takes b as f32, bf16 or f16 (b ${b.label} is ${b.dtype}); use tiled for quantized weights`);
  expectDTypes(op, SGMAT_B_DTYPES, b);
  const ctx = batch.ctx;
  const variant = options.variant ?? 'hardware';
  let form: HardwareForm | undefined;
  let sgSize: number;
  if (variant === 'hardware') {
    const why = sgmatUnavailable(ctx);
    if (why) throw new Error(`${op}: the sgmat path is ${why} (variant 'emulated' runs its plain-WGSL twin)`);
    form = ready.get(ctx);
    if (!form) throw new Error(`${op}: the sgmat path needs \`await prepareSubgroupMatrix(ctx)\` first (the GPU self-test runs it)`);
    sgSize = ctx.adapter.subgroupMaxSize!;
  } else if (variant === 'emulated') {
    sgSize = options.emulatedSubgroup ?? SGMAT_EMULATED_SUBGROUP;
    if (!Number.isInteger(sgSize) || sgSize < 1) throw new Error(`${op}: emulatedSubgroup = ${sgSize} must be a positive integer`);
  } else {
    throw new Error(`${op}: sgmat variant "${String(variant)}" is not 'hardware' or 'emulated'`);
  }
  const tiling = options.tiling ?? tilingFor(ctx.limits);
  const wg = tiling.SGP * tiling.SGQ * sgSize;
  const maxWg = Math.min(ctx.limits.maxComputeWorkgroupSizeX, ctx.limits.maxComputeInvocationsPerWorkgroup);
  if (wg > maxWg) throw new Error(`${op}: the sgmat workgroup of ${wg} invocations exceeds this device's limit (${maxWg})`);
  const bytes = sharedFloats(tiling, layout) * 4;
  if (bytes > ctx.limits.maxComputeWorkgroupStorageSize)
    throw new Error(`${op}: the sgmat tiling needs ${bytes} bytes of workgroup memory, over this device's ${ctx.limits.maxComputeWorkgroupStorageSize}; pass a smaller TK`);
  if (P === 0 || Q === 0) return;

  const vec = sgmatVec(layout, P, Q, D, bOffset, b.dtype);
  const mod = sgmatModule({ variant, form, layout, vec, sgSize, tiling });
  const tilesQ = Math.ceil(Q / TN(tiling));
  const tiles = Math.ceil(P / TM(tiling)) * tilesQ;
  const maxFlops = options.maxDispatchFlops ?? SGMAT_MAX_DISPATCH_FLOPS;
  if (!(maxFlops >= 1)) throw new Error(`${op}: maxDispatchFlops ${maxFlops} must be at least 1`);
  // 16-byte views read a and b whole (b's last vector may lie in the buffer's padding).
  dispatchBounded(
    batch,
    {
      kernel: { name: mod.name, code: mod.code, entryPoint: `sgmat_${b.dtype}`, constants: mod.constants },
      buffers: vec ? [wholeBuffer(a), wholeBuffer(b), out] : [a, b, out],
    },
    { groups: tiles, groupFlops: 2 * TM(tiling) * TN(tiling) * D, maxFlops, flops: 2 * P * Q * D },
    (tile0, end) =>
      packParams([
        { u32: P },
        { u32: Q },
        { u32: D },
        { u32: bOffset },
        { f32: call.alpha },
        { u32: call.accumulate ? 1 : 0 },
        { u32: tilesQ },
        { u32: end },
        { u32: tile0 },
      ]),
  );
}
