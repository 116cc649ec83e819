// Turns an AdapterSummary (src/gpu/context.ts) into what the GPU status page shows: adapter facts,
// the features the engine cares about, and limits in human units with the training-critical
// ones first. Pure functions, no React and no WebGPU calls, so they are unit-tested in Node.

import { ATTENTION_PATHS, splitKvPathName } from '../engine/attention';
import { MATMUL_PATHS } from '../engine/matmul';
import type { AdapterSummary } from '../gpu/context';

export interface FeatureRow {
  name: string;
  present: boolean;
  why: string;
}

export interface LimitRow {
  name: string;
  value: number;
  /** The value in human units: "1 GiB", "16 KiB", "65,535". */
  display: string;
  /** The WebGPU spec's default (what a device gets unless it asks for more), if known. */
  specDefault: number | null;
  specDefaultDisplay: string;
  /** Whether the adapter offers more than the spec default (less, for alignments). */
  raised: boolean;
  why?: string;
}

export interface GpuReport {
  title: string;
  facts: { label: string; value: string }[];
  isFallback: boolean;
  keyFeatures: FeatureRow[];
  otherFeatures: string[];
  trainingLimits: LimitRow[];
  otherLimits: LimitRow[];
}

const HAS_MATMUL_PATH = (key: string) => key in MATMUL_PATHS;

/** Features the engine uses when present (each path that needs one is listed below); the f32 paths run everywhere. */
export const KEY_FEATURES: readonly { name: string; why: string }[] = [
  {
    name: 'shader-f16',
    why: HAS_MATMUL_PATH('f16')
      ? 'f16 arithmetic in shaders: the f16-input, f32-sum matmul of generation’s projections, once the self-test proved it here. Training computes in f32 (bf16/f16 weights are widened in registers).'
      : 'f16 arithmetic in shaders: reported, not used yet: every kernel computes in f32 (bf16/f16 weights are widened in registers).',
  },
  {
    name: 'subgroups',
    why: `subgroup operations: the max and sum reductions of split-KV decode attention${HAS_MATMUL_PATH('gemvSg') ? ' and the decode GEMV’s sums' : ''} (once the self-test proved them here).`,
  },
  ...(HAS_MATMUL_PATH('sgmat')
    ? [{ name: 'chromium-experimental-subgroup-matrix', why: 'hardware 8×8 matrix multiply-accumulate (Apple M1 and later in Chrome): the subgroup-matrix matmul of large products, once the self-test proved it here.' }]
    : []),
  { name: 'timestamp-query', why: 'GPU timestamps: per-kernel timings in the profiler and benchmarks.' },
];

/** Limits that decide what fits and how kernels tile, shown first, with why they matter. */
export const TRAINING_LIMITS: readonly { name: string; why: string }[] = [
  {
    name: 'maxStorageBufferBindingSize',
    why: 'Largest tensor one kernel can bind; bigger tensors (e.g. the 525 MB bf16 embedding of Llama-3.2-1B) are split.',
  },
  { name: 'maxBufferSize', why: 'Largest single GPU allocation.' },
  { name: 'maxComputeWorkgroupStorageSize', why: 'Shared memory per workgroup: bounds matmul and attention tile sizes.' },
  { name: 'maxComputeInvocationsPerWorkgroup', why: 'Threads per workgroup: bounds workgroup sizes of every kernel.' },
  { name: 'maxComputeWorkgroupSizeX', why: 'Largest workgroup size in x.' },
  { name: 'maxComputeWorkgroupSizeY', why: 'Largest workgroup size in y.' },
  { name: 'maxComputeWorkgroupSizeZ', why: 'Largest workgroup size in z.' },
  { name: 'maxComputeWorkgroupsPerDimension', why: 'Dispatches larger than this are split over x and y.' },
  { name: 'maxStorageBuffersPerShaderStage', why: 'Storage buffers one kernel may bind.' },
  { name: 'maxUniformBufferBindingSize', why: 'Size of a kernel parameter block.' },
  { name: 'minStorageBufferOffsetAlignment', why: 'Alignment of a binding into the middle of a buffer (tensor views).' },
  { name: 'minUniformBufferOffsetAlignment', why: 'Alignment of packed kernel parameters.' },
];

/** WebGPU spec defaults ("core" tier): what requestDevice() grants without requiredLimits. */
export const SPEC_DEFAULT_LIMITS: Readonly<Record<string, number>> = {
  maxTextureDimension1D: 8192,
  maxTextureDimension2D: 8192,
  maxTextureDimension3D: 2048,
  maxTextureArrayLayers: 256,
  maxBindGroups: 4,
  maxBindGroupsPlusVertexBuffers: 24,
  maxBindingsPerBindGroup: 1000,
  maxDynamicUniformBuffersPerPipelineLayout: 8,
  maxDynamicStorageBuffersPerPipelineLayout: 4,
  maxSampledTexturesPerShaderStage: 16,
  maxSamplersPerShaderStage: 16,
  maxStorageBuffersPerShaderStage: 8,
  maxStorageTexturesPerShaderStage: 4,
  maxUniformBuffersPerShaderStage: 12,
  maxUniformBufferBindingSize: 65536,
  maxStorageBufferBindingSize: 134217728,
  minUniformBufferOffsetAlignment: 256,
  minStorageBufferOffsetAlignment: 256,
  maxVertexBuffers: 8,
  maxBufferSize: 268435456,
  maxVertexAttributes: 16,
  maxVertexBufferArrayStride: 2048,
  maxInterStageShaderVariables: 16,
  maxColorAttachments: 8,
  maxColorAttachmentBytesPerSample: 32,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupSizeZ: 64,
  maxComputeWorkgroupsPerDimension: 65535,
};

const BYTE_LIMIT = /(BufferBindingSize|BufferSize|WorkgroupStorageSize|OffsetAlignment|ArrayStride|BytesPerSample|ImmediateSize)$/;

/** Whether a limit is measured in bytes (by its name in the WebGPU spec). */
export function isByteLimit(name: string): boolean {
  return BYTE_LIMIT.test(name);
}

const numberFormat = new Intl.NumberFormat('en-US');

/** 1073741824 -> "1 GiB", 16384 -> "16 KiB", 1536 -> "1.5 KiB", 4294967292 -> "≈ 4 GiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (Number.isInteger(v)) return `${numberFormat.format(v)} ${units[u]}`;
  const rounded = v >= 100 ? Math.round(v) : Math.round(v * 10) / 10;
  // Limits such as 4 GiB - 4 bytes would print as "4 GiB"; say when a figure is rounded.
  return `${Math.abs(rounded - v) > 1e-9 ? '≈ ' : ''}${numberFormat.format(rounded)} ${units[u]}`;
}

export function formatCount(n: number): string {
  return numberFormat.format(n);
}

export function formatLimit(name: string, value: number): string {
  return isByteLimit(name) ? formatBytes(value) : formatCount(value);
}

function limitRow(name: string, value: number, why?: string): LimitRow {
  const specDefault = SPEC_DEFAULT_LIMITS[name] ?? null;
  const lowerIsBetter = name.startsWith('min');
  const raised = specDefault !== null && (lowerIsBetter ? value < specDefault : value > specDefault);
  return {
    name,
    value,
    display: formatLimit(name, value),
    specDefault,
    specDefaultDisplay: specDefault === null ? '—' : formatLimit(name, specDefault),
    raised,
    ...(why ? { why } : {}),
  };
}

export function buildGpuReport(summary: AdapterSummary): GpuReport {
  const features = new Set(summary.features);
  const keyNames = new Set(KEY_FEATURES.map((f) => f.name));
  const trainingNames = new Set(TRAINING_LIMITS.map((l) => l.name));
  const title = summary.description || [summary.vendor, summary.architecture].filter(Boolean).join(' ') || 'Unknown adapter';
  return {
    title,
    isFallback: summary.isFallback,
    facts: [
      { label: 'Vendor', value: summary.vendor || '(not reported)' },
      { label: 'Architecture', value: summary.architecture || '(not reported)' },
      { label: 'Device', value: summary.device || '(not reported)' },
      { label: 'Description', value: summary.description || '(not reported)' },
      {
        label: 'Adapter type',
        value: summary.isFallback ? 'CPU fallback (software rendering: SwiftShader, lavapipe or WARP)' : 'Hardware GPU',
      },
    ],
    keyFeatures: KEY_FEATURES.map((f) => ({ ...f, present: features.has(f.name) })),
    otherFeatures: summary.features.filter((f) => !keyNames.has(f)).sort(),
    trainingLimits: TRAINING_LIMITS.filter((l) => l.name in summary.limits).map((l) =>
      limitRow(l.name, summary.limits[l.name]!, l.why),
    ),
    otherLimits: Object.keys(summary.limits)
      .filter((name) => !trainingNames.has(name))
      .sort()
      .map((name) => limitRow(name, summary.limits[name]!)),
  };
}

/** One attention kernel path as the GPU status page lists it: what it is and whether this adapter takes it. */
export interface KernelPathRow {
  name: string;
  shader: string;
  what: string;
  /** Whether the engine takes it by default here, and why (or why not). */
  status: string;
}

/**
 * The attention paths that exist (src/engine/attention.ts) and which this adapter takes:
 * CPU adapters keep the tiled forward and the barrier-free backward; GPUs take the flash and
 * split-KV paths once the self-test proved them on the device (`proved`: the paths the page's
 * self-test run proved), the tiled ones until then.
 */
export function attentionPathRows(summary: Pick<AdapterSummary, 'isFallback' | 'features'>, proved: readonly string[]): KernelPathRow[] {
  const cpu = summary.isFallback;
  const subgroups = summary.features.includes('subgroups');
  const split = splitKvPathName(subgroups ? 'subgroups' : 'workgroup');
  const gated = (path: string, what: string) =>
    cpu
      ? 'Not used on a CPU adapter (its barriers cost more there; the tests force it).'
      : proved.includes(path)
        ? `In use for ${what}: proven on this device by the self-test.`
        : `Used for ${what} once the self-test proves it on this device (it runs when a model loads, or with the button below).`;
  return [
    {
      name: 'Tiled forward and backward',
      shader: 'attention.wgsl',
      what: 'A few invocations per query row, scalar workgroup tiles of q, k and v; any head dim up to 128.',
      status: cpu ? 'Forward in use on this CPU adapter.' : 'In use until the flash paths are proven, and for head dims not a multiple of 4.',
    },
    {
      name: 'Barrier-free backward (rows)',
      shader: 'attention.wgsl',
      what: 'One invocation per key (dK, dV), then per query row (dQ), in vec4 registers, no workgroup memory; head dims a multiple of 4.',
      status: cpu ? 'Backward in use on this CPU adapter.' : 'Not used on a GPU (made for CPU adapters, where a barrier costs about a millisecond).',
    },
    {
      name: 'Flash forward and backward',
      shader: 'attention_flash.wgsl',
      what: 'One query row (or key, for dK/dV) per invocation in vec4 registers, vec4 key/value tiles in workgroup memory, one exp per score; head dims a multiple of 4.',
      status: gated(ATTENTION_PATHS.flash, 'training and prefill'),
    },
    {
      name: 'Split-KV decode',
      shader: 'attention_decode.wgsl',
      what: `One new token's keys cut into chunks, one workgroup per (sequence, head, chunk), then a pass that merges the partial softmaxes; reductions ${subgroups ? 'with subgroup operations' : 'in workgroup memory (no subgroups here)'}.`,
      status: gated(split, 'generation'),
    },
  ];
}

/** A matmul path as the page describes it; `proves`: its MATMUL_PATHS key (GPU paths a self-test case proves). */
interface MatmulPathSpec {
  name: string;
  shader: string;
  what: string;
  /** cpu: CPU adapters only; gpu: GPUs, no proof needed; proven: GPUs once proven (and `feature`, if any). */
  kind: 'cpu' | 'gpu' | 'proven';
  proves?: string;
  feature?: string;
  /** What it computes when taken ("LoRA's rank-r products"). */
  use: string;
  /** A proven path that takes its place where proven (gemv: the subgroup GEMV). */
  supersededBy?: string;
}

// Every path of src/engine/matmul.ts (MatmulPath), in the order `defaultMatmulPath` tries them
// on a GPU, then the CPU adapters' paths. A proven path whose key is not in MATMUL_PATHS does
// not exist in this build and gets no row (gpuReport.test.ts checks both ways).
const MATMUL_PATH_SPECS: readonly MatmulPathSpec[] = [
  {
    name: 'Subgroup GEMV (gemv-sg)',
    shader: 'matmul_gemv_sg.wgsl',
    what: 'Decode products (x·Wᵀ, at most 8 rows): a workgroup per few output columns, lanes split K with 16-byte loads of the weight, one subgroupAdd per column.',
    kind: 'proven',
    proves: 'gemvSg',
    feature: 'subgroups',
    use: 'decode products',
  },
  {
    name: 'GEMV (gemv)',
    shader: 'matmul.wgsl',
    what: 'Decode products (at most 8 rows): 64 threads per output column, a tree reduction in workgroup memory.',
    kind: 'gpu',
    use: 'decode products',
    supersededBy: 'gemvSg',
  },
  {
    name: 'Split-K (splitk)',
    shader: 'matmul.wgsl',
    what: 'Small outputs with a long reduction (≤ 65,536 outputs, K ≥ 1,024: LoRA weight gradients): the reduction cut over workgroups, partial sums added in a fixed order by a second dispatch (deterministic).',
    kind: 'proven',
    proves: 'splitk',
    use: 'small outputs with a long reduction',
  },
  {
    name: 'Narrow (narrow, narrow4)',
    shader: 'matmul.wgsl',
    what: 'At most 64 output columns (LoRA’s rank-r products): 4 rows × 16 columns per thread; in x·Wᵀ with K a multiple of 4, 16-byte loads (narrow4, proven apart).',
    kind: 'proven',
    proves: 'narrow',
    use: 'products with at most 64 output columns',
  },
  {
    name: 'Subgroup matrices (sgmat)',
    shader: 'matmul_sgmat.wgsl',
    what: 'Large products: 64×64 tiles of 4 subgroups × 4×4 hardware 8×8 f32 matrices, K slices staged in workgroup memory with the next one prefetched (Apple M1 and later in Chrome).',
    kind: 'proven',
    proves: 'sgmat',
    feature: 'chromium-experimental-subgroup-matrix',
    use: 'large products',
  },
  {
    name: 'f16 inputs, f32 sums (f16)',
    shader: 'matmul_f16.wgsl',
    what: 'Generation’s projections only (no gradient flows through them): inputs rounded to f16 as they are staged, sums in f32, 64×64 tiles of 8×8 outputs per thread.',
    kind: 'proven',
    proves: 'f16',
    feature: 'shader-f16',
    use: 'generation’s projections',
  },
  {
    name: 'Register tiles (regtile)',
    shader: 'matmul.wgsl',
    what: 'Large products: 8×8 outputs per thread, 16-byte global loads, the next K tile prefetched into registers while the current one is used; 64×64 or 128×128 tiles chosen from the adapter’s limits.',
    kind: 'proven',
    proves: 'regtile',
    use: 'large products',
  },
  {
    name: 'Tiled (tiled)',
    shader: 'matmul.wgsl',
    what: 'The f32 reference path on GPUs: 16×16 threads of 4×4 outputs (64×64 tiles), 16-deep K slices in workgroup memory; every weight format, quantized ones included.',
    kind: 'gpu',
    use: 'every product no path above takes',
  },
  {
    name: 'Barrier-free (vec4, direct, skinny)',
    shader: 'matmul.wgsl',
    what: 'No workgroup memory: 8×4 (vec4) or 4×4 (direct) outputs per thread read straight from global memory; skinny: 4 output columns for all rows of a decode product, 16-byte loads along K.',
    kind: 'cpu',
    use: 'every product',
  },
];

/**
 * The matmul paths that exist (src/engine/matmul.ts) and which this adapter takes: CPU adapters
 * the barrier-free kernels; GPUs the tiled and gemv kernels, and each newer path once the
 * self-test proved it on the device (`proved`) and the adapter has the feature it needs.
 */
export function matmulPathRows(summary: Pick<AdapterSummary, 'isFallback' | 'features'>, proved: readonly string[]): KernelPathRow[] {
  const cpu = summary.isFallback;
  const names = MATMUL_PATHS as Readonly<Record<string, string>>;
  const isProved = (key: string) => proved.includes(names[key]!);
  return MATMUL_PATH_SPECS.filter((p) => p.proves === undefined || p.proves in names).map((p) => {
    let status: string;
    if (p.kind === 'cpu') status = cpu ? 'In use on this CPU adapter.' : 'Not used on a GPU (made for CPU adapters, where a barrier costs about a millisecond).';
    else if (cpu) status = p.kind === 'gpu' ? 'Not used on a CPU adapter.' : 'Not used on a CPU adapter (its barriers cost more there; the tests force it).';
    else if (p.kind === 'gpu') {
      const by = p.supersededBy && p.supersededBy in names && isProved(p.supersededBy) ? MATMUL_PATH_SPECS.find((q) => q.proves === p.supersededBy) : undefined;
      status = by ? `Not used here: ${by.name} is proven on this device and takes its ${p.use}.` : `In use for ${p.use}.`;
    }
    else if (p.feature && !summary.features.includes(p.feature)) status = `Not available: this adapter lacks ${p.feature}.`;
    else if (isProved(p.proves!)) status = `In use for ${p.use}: proven on this device by the self-test.`;
    else status = `Used for ${p.use} once the self-test proves it on this device (it runs when a model loads, or with the button below).`;
    return { name: p.name, shader: p.shader, what: p.what, status };
  });
}

/** The MATMUL_PATHS names a row stands for (narrow's row stands for narrow4 too). */
export function matmulRowProofs(): string[] {
  const names = MATMUL_PATHS as Readonly<Record<string, string>>;
  return MATMUL_PATH_SPECS.flatMap((p) => (p.proves && p.proves in names ? [names[p.proves]!, ...(p.proves === 'narrow' && 'narrow4' in names ? [names.narrow4!] : [])] : []));
}
