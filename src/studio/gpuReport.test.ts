import { describe, expect, it } from 'vitest';
import type { AdapterSummary } from '../gpu/context';
import { MATMUL_PATHS } from '../engine/matmul';
import { attentionPathRows, buildGpuReport, formatBytes, formatLimit, isByteLimit, KEY_FEATURES, matmulPathRows, matmulRowProofs } from './gpuReport';

const swiftshader: AdapterSummary = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: '',
  description: 'google swiftshader',
  features: ['timestamp-query', 'subgroups', 'float32-filterable'],
  limits: {
    maxStorageBufferBindingSize: 1073741824,
    maxBufferSize: 4294967296,
    maxComputeWorkgroupStorageSize: 32768,
    maxComputeInvocationsPerWorkgroup: 256,
    maxTextureDimension2D: 8192,
    minUniformBufferOffsetAlignment: 256,
    maxBindGroups: 4,
  },
  isFallback: true,
};

describe('GPU report', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(1073741824)).toBe('1 GiB');
    expect(formatBytes(134217728)).toBe('128 MiB');
    expect(formatBytes(16384)).toBe('16 KiB');
    expect(formatBytes(256)).toBe('256 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(4294967292)).toBe('≈ 4 GiB');
  });

  it('knows which limits are bytes', () => {
    expect(isByteLimit('maxStorageBufferBindingSize')).toBe(true);
    expect(isByteLimit('maxComputeWorkgroupStorageSize')).toBe(true);
    expect(isByteLimit('minStorageBufferOffsetAlignment')).toBe(true);
    expect(isByteLimit('maxColorAttachmentBytesPerSample')).toBe(true);
    expect(isByteLimit('maxComputeWorkgroupSizeX')).toBe(false);
    expect(isByteLimit('maxComputeInvocationsPerWorkgroup')).toBe(false);
    expect(formatLimit('maxComputeWorkgroupsPerDimension', 65535)).toBe('65,535');
  });

  it('puts the training limits first, in order, and the rest alphabetically', () => {
    const r = buildGpuReport(swiftshader);
    expect(r.trainingLimits.map((l) => l.name)).toEqual([
      'maxStorageBufferBindingSize',
      'maxBufferSize',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'minUniformBufferOffsetAlignment',
    ]);
    expect(r.otherLimits.map((l) => l.name)).toEqual(['maxBindGroups', 'maxTextureDimension2D']);
    const [sb, , shared, inv] = r.trainingLimits;
    expect(sb).toMatchObject({ display: '1 GiB', specDefaultDisplay: '128 MiB', raised: true });
    expect(shared).toMatchObject({ display: '32 KiB', raised: true });
    expect(inv).toMatchObject({ display: '256', raised: false });
  });

  it('highlights the key features and flags the CPU fallback', () => {
    const r = buildGpuReport(swiftshader);
    expect(r.keyFeatures.map((f) => [f.name, f.present])).toEqual([
      ['shader-f16', false],
      ['subgroups', true],
      ...('sgmat' in MATMUL_PATHS ? [['chromium-experimental-subgroup-matrix', false]] : []),
      ['timestamp-query', true],
    ]);
    expect(r.otherFeatures).toEqual(['float32-filterable']);
    expect(r.isFallback).toBe(true);
    expect(r.title).toBe('google swiftshader');
  });

  it('lists the attention paths and which this adapter takes: CPU adapters tiled/rows, GPUs flash and split-KV once proven', () => {
    const cpu = attentionPathRows(swiftshader, []);
    expect(cpu.map((r) => r.name)).toEqual(['Tiled forward and backward', 'Barrier-free backward (rows)', 'Flash forward and backward', 'Split-KV decode']);
    expect(cpu.map((r) => r.status)).toEqual([
      expect.stringMatching(/^Forward in use/),
      expect.stringMatching(/^Backward in use/),
      expect.stringMatching(/^Not used on a CPU adapter/),
      expect.stringMatching(/^Not used on a CPU adapter/),
    ]);
    expect(cpu[3]!.what).toMatch(/subgroup operations/);
    const gpu = { isFallback: false, features: [] };
    expect(attentionPathRows(gpu, [])[2]!.status).toMatch(/once the self-test proves it/);
    const proven = attentionPathRows(gpu, ['attention.flash', 'attention.split-kv']);
    expect(proven[2]!.status).toMatch(/^In use for training and prefill: proven/);
    expect(proven[3]!.status).toMatch(/^In use for generation: proven/);
    expect(proven[3]!.what).toMatch(/workgroup memory \(no subgroups here\)/);
    // The subgroup variant is a separate proof.
    expect(attentionPathRows({ isFallback: false, features: ['subgroups'] }, ['attention.split-kv'])[3]!.status).toMatch(/once the self-test proves it/);
  });

  it('lists exactly the matmul paths that exist, each proven path once, with its gate: CPU adapters the barrier-free kernels, GPUs tiled/gemv and each newer path once proven where the feature is present', () => {
    // Every path the self-test can prove has a row, and no row names a path this build lacks.
    expect(matmulRowProofs().sort()).toEqual(Object.values(MATMUL_PATHS).sort());
    const cpu = matmulPathRows(swiftshader, Object.values(MATMUL_PATHS));
    expect(cpu.at(-1)).toMatchObject({ name: 'Barrier-free (vec4, direct, skinny)', status: 'In use on this CPU adapter.' });
    for (const r of cpu.slice(0, -1)) expect(r.status, r.name).toMatch(/^Not used on a CPU adapter/);
    const row = (rows: ReturnType<typeof matmulPathRows>, name: string) => rows.find((r) => r.name.includes(name))!;
    const bare = { isFallback: false, features: [] as string[] };
    const fresh = matmulPathRows(bare, []);
    expect(row(fresh, '(tiled)').status).toBe('In use for every product no path above takes.');
    expect(row(fresh, '(gemv)').status).toBe('In use for decode products.');
    expect(row(fresh, '(vec4').status).toMatch(/^Not used on a GPU/);
    expect(row(fresh, 'Split-K').status).toMatch(/once the self-test proves it/);
    const all = matmulPathRows({ isFallback: false, features: ['subgroups', 'shader-f16', 'chromium-experimental-subgroup-matrix'] }, Object.values(MATMUL_PATHS));
    expect(row(all, 'Split-K').status).toMatch(/^In use for small outputs with a long reduction: proven/);
    expect(row(all, 'Narrow').status).toMatch(/^In use for products with at most 64 output columns: proven/);
    if ('gemvSg' in MATMUL_PATHS) {
      expect(row(fresh, 'gemv-sg').status).toBe('Not available: this adapter lacks subgroups.');
      expect(row(all, 'gemv-sg').status).toMatch(/^In use for decode products: proven/);
      expect(row(all, '(gemv)').status).toMatch(/^Not used here: Subgroup GEMV \(gemv-sg\) is proven/);
    }
    if ('sgmat' in MATMUL_PATHS) {
      expect(row(fresh, 'sgmat').status).toBe('Not available: this adapter lacks chromium-experimental-subgroup-matrix.');
      expect(row(all, 'sgmat').status).toMatch(/^In use for large products: proven/);
    }
    if ('f16' in MATMUL_PATHS) {
      expect(row(fresh, '(f16)').status).toBe('Not available: this adapter lacks shader-f16.');
      expect(row(matmulPathRows({ isFallback: false, features: ['shader-f16'] }, []), '(f16)').status).toMatch(/once the self-test proves it/);
    }
    if ('regtile' in MATMUL_PATHS) expect(row(all, 'regtile').status).toMatch(/^In use for large products: proven/);
    expect(KEY_FEATURES.map((f) => f.name)).toContain('subgroups');
  });
});
