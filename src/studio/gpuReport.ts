// Turns an AdapterSummary (src/gpu/context.ts) into what the GPU status page shows: adapter facts,
// the features the engine cares about, and limits in human units with the training-critical
// ones first. Pure functions, no React and no WebGPU calls, so they are unit-tested in Node.

import { ATTENTION_PATHS, splitKvPathName } from '../engine/attention';
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

/** Features the engine uses when present; the f32 path runs everywhere. */
export const KEY_FEATURES: readonly { name: string; why: string }[] = [
  { name: 'shader-f16', why: 'f16 arithmetic in shaders: reported, not used yet: every kernel computes in f32 (bf16/f16 weights are widened in registers).' },
  { name: 'subgroups', why: 'subgroup operations: the max and sum reductions of split-KV decode attention (once the self-test proved them here).' },
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
