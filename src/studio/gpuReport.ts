// Turns an AdapterSummary (src/gpu/context.ts) into what the GPU status page shows: adapter facts,
// the features the engine cares about, and limits in human units with the training-critical
// ones first. Pure functions, no React and no WebGPU calls, so they are unit-tested in Node.

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
  { name: 'shader-f16', why: 'f16 arithmetic in shaders: enables the faster half-precision kernel paths.' },
  { name: 'subgroups', why: 'subgroup operations: faster reductions (softmax, norms, logsumexp).' },
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
