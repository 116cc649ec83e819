// A GpuContext is everything the engine needs from a device: the device itself, the buffer
// pool, the kernel registry, optional profiling, error reporting and host <-> GPU transfers.
// It is obtained the same way in a page, a Web Worker and Node; only the GPU object differs
// (see browser.ts and node.ts).

import { BindGroupCache, CommandBatch, emptyCounters, type GpuCounters } from './batch';
import { byteLengthOf, decode, encode, type DType } from './dtype';
import { KernelRegistry } from './kernels';
import { BufferPool } from './pool';
import { Profiler } from './profiler';
import { Tensor } from './tensor';

// 'chromium-experimental-subgroup-matrix' (Chrome on Apple M1 and later) is not in @webgpu/types'
// GPUFeatureName; like the others it is requested only where the adapter lists it.
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query', 'chromium-experimental-subgroup-matrix'] as const;

/** One of GPUAdapterInfo.subgroupMatrixConfigs (chromium-experimental-subgroup-matrix): result[M,N] += left[M,K]·right[K,N]. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

// Limits we ask for at the adapter's real value instead of the spec default.
const RAISED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
  /** True for CPU implementations: SwiftShader, lavapipe (llvmpipe), WARP (`isSoftwareAdapter`). */
  isFallback: boolean;
  /** GPUAdapterInfo.subgroupMaxSize where the adapter reports it (`subgroups`). */
  subgroupMaxSize?: number;
  /** GPUAdapterInfo.subgroupMatrixConfigs: empty unless the adapter has chromium-experimental-subgroup-matrix. */
  subgroupMatrixConfigs?: SubgroupMatrixConfig[];
}

export interface ContextOptions {
  powerPreference?: GPUPowerPreference;
  /** Time every dispatch with timestamp queries (needs `timestamp-query`). */
  profile?: boolean;
}

export class GpuError extends Error {
  override name = 'GpuError';
}

export class WebGpuUnavailableError extends Error {
  override name = 'WebGpuUnavailableError';
}

export class GpuContext {
  readonly pool: BufferPool;
  readonly kernels: KernelRegistry;
  readonly profiler: Profiler | null;
  /** Running totals of encoded work (batch.ts, GpuCounters); subtract two snapshots to count a step. */
  readonly counters: GpuCounters = emptyCounters();
  /** Bind groups reused across batches and steps (batch.ts). */
  readonly bindGroups = new BindGroupCache();
  private errors: string[] = [];
  private lostReason: string | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    options: ContextOptions = {},
  ) {
    this.pool = new BufferPool(device);
    this.kernels = new KernelRegistry(device);
    this.profiler = options.profile && device.features.has('timestamp-query') ? new Profiler(device) : null;
    device.addEventListener('uncapturederror', (e) => {
      this.errors.push((e as GPUUncapturedErrorEvent).error.message);
    });
    void device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.lostReason = `${info.reason}: ${info.message}`;
      else this.lostReason ??= 'destroyed';
    });
  }

  get features(): ReadonlySet<string> {
    return this.device.features as ReadonlySet<string>;
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  throwIfLost(): void {
    if (this.lostReason) throw new GpuError(`GPU device lost (${this.lostReason})`);
  }

  batch(label?: string): CommandBatch {
    return new CommandBatch(this, label);
  }

  /** Allocate an uninitialised tensor from the pool. */
  tensor(shape: readonly number[], dtype: DType, label: string): Tensor {
    return this.wrap(shape, dtype, label);
  }

  /** Allocate a tensor holding `values` (converted to `dtype`). */
  upload(values: ArrayLike<number>, shape: readonly number[], dtype: DType, label: string): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (values.length !== n) throw new Error(`${label}: ${values.length} values for shape [${shape.join(', ')}]`);
    const t = this.wrap(shape, dtype, label);
    this.device.queue.writeBuffer(t.buffer, 0, encode(values, dtype));
    return t;
  }

  /** Write raw bytes (already in the tensor's dtype) at a byte offset. */
  writeBytes(t: Tensor, bytes: Uint8Array<ArrayBuffer>, byteOffset = 0): void {
    this.device.queue.writeBuffer(t.buffer, byteOffset, bytes);
  }

  /** Copy a tensor back to the host, widened to f32 for 16-bit types. */
  async read(t: Tensor): Promise<Float32Array | Int32Array | Uint32Array> {
    const batch = this.batch(`read ${t.label}`);
    const staging = batch.copyToReadable(t.buffer, 0, t.byteLength);
    batch.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      await this.flush();
      throw e;
    }
    const out = decode(staging.getMappedRange().slice(0), t.size, t.dtype);
    staging.unmap();
    staging.destroy();
    await this.flush();
    return out;
  }

  async readF32(t: Tensor): Promise<Float32Array> {
    const v = await this.read(t);
    return v instanceof Float32Array ? v : Float32Array.from(v);
  }

  /** Waits for submitted work, then throws the first GPU error raised since the last flush. */
  async flush(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfLost();
    if (this.errors.length) {
      const all = this.errors.splice(0);
      throw new GpuError(`WebGPU error: ${all[0]}${all.length > 1 ? ` (and ${all.length - 1} more)` : ''}`);
    }
  }

  destroy(): void {
    this.lostReason ??= 'destroyed';
    this.device.destroy();
  }

  private wrap(shape: readonly number[], dtype: DType, label: string): Tensor {
    this.throwIfLost();
    const n = shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${label}: invalid shape [${shape.join(', ')}]`);
    const size = byteLengthOf(n, dtype);
    if (size > this.device.limits.maxBufferSize)
      throw new GpuError(
        `${label}: ${size} bytes exceeds this device's maxBufferSize (${this.device.limits.maxBufferSize}); split the tensor`,
      );
    const buffer = this.pool.acquire(size, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, label);
    return new Tensor(this, buffer, shape, dtype, label);
  }
}

/** Request an adapter and device from a GPU object, with real limits and helpful features. */
export async function createGpuContext(gpu: GPU, options: ContextOptions = {}): Promise<GpuContext> {
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new WebGpuUnavailableError('WebGPU is present but no GPU adapter is available on this system.');
  return createContextFromAdapter(adapter, options);
}

export async function createContextFromAdapter(adapter: GPUAdapter, options: ContextOptions = {}): Promise<GpuContext> {
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  const device = await adapter.requestDevice({ label: 'fuse-studio', requiredFeatures, requiredLimits });
  return new GpuContext(device, summarize(adapter), options);
}

export function summarize(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  const description = info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(' ');
  const extra = info as { subgroupMaxSize?: number; subgroupMatrixConfigs?: readonly SubgroupMatrixConfig[] };
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description,
    features: [...adapter.features].sort(),
    limits,
    subgroupMaxSize: typeof extra.subgroupMaxSize === 'number' ? extra.subgroupMaxSize : undefined,
    // Copied field by field: the configs are interface objects whose fields are getters (a page posts the summary to a worker).
    subgroupMatrixConfigs: [...(extra.subgroupMatrixConfigs ?? [])].map((c) => ({
      componentType: String(c.componentType),
      resultComponentType: String(c.resultComponentType),
      M: c.M,
      N: c.N,
      K: c.K,
    })),
    // Named fields, not a spread: GPUAdapterInfo's fields are prototype getters, which a spread drops.
    isFallback: isSoftwareAdapter({
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: (info as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    }),
  };
}

/**
 * WebGPU on the CPU, where a workgroup barrier costs ~1 ms and the engine takes its barrier-free
 * paths: the adapter says so (`isFallbackAdapter`), or its name is one of the software drivers —
 * SwiftShader (Chrome's fallback; vendor/architecture "google"/"swiftshader"), lavapipe (Mesa's
 * Vulkan on llvmpipe; vendor "mesa", device "llvmpipe (LLVM …)", which Mesa's hardware drivers
 * never report: they give the GPU's own vendor) and WARP (Direct3D 12's "Microsoft Basic Render
 * Driver", vendor "microsoft").
 */
export function isSoftwareAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }): boolean {
  if (info.isFallbackAdapter) return true;
  const names = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  return /swiftshader|llvmpipe|lavapipe|microsoft basic render driver/i.test(names) || /^(mesa|microsoft)$/i.test(info.vendor?.trim() ?? '');
}
