// Batched command encoding: ops encode dispatches into one CommandBatch, which is submitted
// once per layer or step. Uniform parameters for every dispatch go into shared arena buffers
// written just before the submit, so encoding never waits on the GPU.

import type { GpuContext } from './context';
import type { KernelSpec } from './kernels';
import { Tensor } from './tensor';

const ARENA_BYTES = 64 * 1024;

/**
 * Running totals of the GPU work a context has encoded, for adapter-independent accounting
 * (bench/step-accounting.ts): read them before and after a step and subtract. Counting is a few
 * additions per dispatch, so it is always on.
 *   dispatches    compute dispatches encoded (empty grids are skipped, not counted)
 *   submits       queue submits
 *   readbacks     buffers copied to a mappable buffer for the host, and their bytes
 *   matmulFlops   2·P·Q·D of every `matmul` dispatch (src/engine/matmul.ts packs P, Q, D as its
 *                 params' first three words), i.e. the multiply-adds the product kernels execute
 *   bindGroups    bind groups created (the rest of the dispatches reused a cached one)
 *   maxMatmulFlops  the largest single matmul dispatch (the GPU watchdog's concern; reset by the reader)
 *   maxAttentionFlops  the largest single attention dispatch's FLOP bound (src/engine/attention.ts
 *                 states it per dispatch; reset by the reader)
 */
export interface GpuCounters {
  dispatches: number;
  maxMatmulFlops: number;
  maxAttentionFlops: number;
  bindGroups: number;
  submits: number;
  readbacks: number;
  readBytes: number;
  matmulFlops: number;
}

export function emptyCounters(): GpuCounters {
  return { dispatches: 0, maxMatmulFlops: 0, maxAttentionFlops: 0, bindGroups: 0, submits: 0, readbacks: 0, readBytes: 0, matmulFlops: 0 };
}

/**
 * Bind groups reused across batches and steps: a step encodes the same dispatches over the same
 * buffers every time (workspaces and weights are allocated once; the uniform arenas come back
 * from the pool), so a bind group is looked up by its pipeline and the exact (buffer, offset,
 * size) of every binding instead of created per dispatch. A GPUBuffer keeps its identity for its
 * whole life (the pool reuses buffers, never rebinds them), so a hit binds exactly what a fresh
 * bind group would; entries of destroyed buffers are never hit again and go when the cache is
 * cleared at BIND_GROUP_CACHE_MAX entries.
 */
export class BindGroupCache {
  private ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private groups = new WeakMap<GPUComputePipeline, Map<string, GPUBindGroup>>();
  private size = 0;

  constructor(readonly max = BIND_GROUP_CACHE_MAX) {}

  get(pipeline: GPUComputePipeline, entries: readonly { binding: number; resource: GPUBufferBinding }[], create: () => GPUBindGroup): { group: GPUBindGroup; created: boolean } {
    let key = '';
    for (const e of entries) key += `${e.binding}:${this.id(e.resource.buffer)}:${e.resource.offset ?? 0}:${e.resource.size ?? -1};`;
    let byKey = this.groups.get(pipeline);
    if (!byKey) this.groups.set(pipeline, (byKey = new Map()));
    const hit = byKey.get(key);
    if (hit) return { group: hit, created: false };
    if (this.size >= this.max) {
      this.groups = new WeakMap();
      this.size = 0;
      this.groups.set(pipeline, (byKey = new Map()));
    }
    const group = create();
    byKey.set(key, group);
    this.size++;
    return { group, created: true };
  }

  private id(b: GPUBuffer): number {
    let id = this.ids.get(b);
    if (id === undefined) this.ids.set(b, (id = this.nextId++));
    return id;
  }
}

export const BIND_GROUP_CACHE_MAX = 8192;

/**
 * GPU watchdog bound shared by the kernels whose work grows with the problem (matmul, attention,
 * the lm_head chunks): at most this many FLOPs in one dispatch; larger work is cut into several
 * dispatches. A browser resets the device when one submission runs past the OS's GPU timeout
 * (Windows TDR: 2 s; Chrome's own watchdog is of the same order). A weak integrated GPU (an
 * Intel UHD 620: ~400 GFLOP/s f32 peak) reaching 10-25 % of peak on these kernels runs 2^32
 * FLOPs in ~40-110 ms, 20-50x under 2 s, while one dispatch still holds enough workgroups to
 * fill a large GPU (thousands), so the cut costs a fast GPU nothing.
 */
export const MAX_DISPATCH_FLOPS = 2 ** 32;
const MAX_GROUPS_PER_DIM = 65535;

export type Binding = GPUBuffer | Tensor | { buffer: GPUBuffer; offset: number; size: number };

export interface Dispatch {
  kernel: KernelSpec;
  /** Uniform struct bytes bound at @binding(0), if the entry point has params. */
  params?: Uint8Array;
  /** Storage buffers bound at @binding(1), @binding(2), ... in order. */
  buffers: readonly Binding[];
  /** Workgroup counts; a count above 65,535 in x is split over y (see `splitGroups`). */
  groups: readonly [number, number?, number?];
  /**
   * FLOPs of the matrix product this dispatch computes (a product cut into several dispatches
   * gives each its share), counted in GpuCounters.matmulFlops/maxMatmulFlops; when absent, a
   * 'matmul' kernel's params count as 2·P·Q·D.
   */
  flops?: number;
}

/**
 * Spreads a linear workgroup count over x and y so neither exceeds the per-dimension limit.
 * Kernels recover the linear index as `wid.x + wid.y * nwg.x` and skip indices past the total.
 */
export function splitGroups(total: number, max = MAX_GROUPS_PER_DIM): [number, number] {
  if (total <= max) return [Math.max(1, total), 1];
  const y = Math.ceil(total / max);
  return [Math.ceil(total / y), y];
}

/** A tensor's whole buffer as a binding: kernels that read vec4 views (a vec4 of 16-bit values may reach into the buffer's padding). */
export function wholeBuffer(t: Tensor): { buffer: GPUBuffer; offset: number; size: number } {
  return { buffer: t.buffer, offset: 0, size: t.buffer.size };
}

/**
 * Encodes a grid of `groups` workgroups of `groupFlops` each as dispatches of at most `maxFlops`
 * (at least one workgroup a dispatch; the GPU watchdog bound, MAX_DISPATCH_FLOPS).
 * `paramsAt(first, end)` packs the params of the dispatch covering workgroups [first, end); the
 * kernel numbers its workgroups from `first`. Each dispatch is counted with its share of `flops`
 * (GpuCounters.matmulFlops sums to the whole, maxMatmulFlops sees the share).
 */
export function dispatchBounded(
  batch: CommandBatch,
  d: Pick<Dispatch, 'kernel' | 'buffers'>,
  grid: { groups: number; groupFlops: number; maxFlops: number; flops: number },
  paramsAt: (first: number, end: number) => Uint8Array,
): void {
  const { groups, groupFlops, maxFlops, flops } = grid;
  const per = Math.max(1, Math.floor(maxFlops / Math.max(1, groupFlops)));
  const share = (g: number) => Math.round((flops * g) / groups);
  for (let first = 0; first < groups; first += per) {
    const end = Math.min(groups, first + per);
    batch.dispatch({ ...d, params: paramsAt(first, end), groups: splitGroups(end - first), flops: share(end) - share(first) });
  }
}

interface Arena {
  buffer: GPUBuffer;
  staging: Uint8Array<ArrayBuffer>;
  used: number;
}

export class CommandBatch {
  private encoder: GPUCommandEncoder;
  private pass: GPUComputePassEncoder | null = null;
  private arenas: Arena[] = [];
  private count = 0;
  private submitted = false;

  constructor(
    readonly ctx: GpuContext,
    readonly label = 'batch',
  ) {
    ctx.throwIfLost();
    this.encoder = ctx.device.createCommandEncoder({ label });
  }

  /** Number of dispatches encoded so far. */
  get dispatches(): number {
    return this.count;
  }

  dispatch(d: Dispatch): void {
    if (this.submitted) throw new Error(`${this.label}: dispatch after submit`);
    const pipeline = this.ctx.kernels.pipeline(d.kernel);
    const [x, y = 1, z = 1] = d.groups;
    if (x > MAX_GROUPS_PER_DIM || y > MAX_GROUPS_PER_DIM || z > MAX_GROUPS_PER_DIM)
      throw new Error(`${d.kernel.name}.${d.kernel.entryPoint}: dispatch (${x}, ${y}, ${z}) exceeds 65,535 per dimension`);
    if (x === 0 || y === 0 || z === 0) return;
    const entries: { binding: number; resource: GPUBufferBinding }[] = [];
    if (d.params) entries.push({ binding: 0, resource: this.uniform(d.params) });
    d.buffers.forEach((b, i) => entries.push({ binding: i + 1, resource: asResource(b) }));
    const { group: bindGroup, created } = this.ctx.bindGroups.get(pipeline, entries, () =>
      this.ctx.device.createBindGroup({ label: `${d.kernel.name}.${d.kernel.entryPoint}`, layout: pipeline.getBindGroupLayout(0), entries }),
    );
    if (created) this.ctx.counters.bindGroups++;
    const profiler = this.ctx.profiler;
    let pass: GPUComputePassEncoder;
    if (profiler) {
      this.endPass();
      pass = this.encoder.beginComputePass({
        label: d.kernel.name,
        timestampWrites: profiler.reserve(`${d.kernel.name}.${d.kernel.entryPoint}`),
      });
    } else {
      pass = this.pass ??= this.encoder.beginComputePass({ label: this.label });
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (profiler) pass.end();
    this.count++;
    const counters = this.ctx.counters;
    counters.dispatches++;
    if (d.flops !== undefined) {
      counters.matmulFlops += d.flops;
      counters.maxMatmulFlops = Math.max(counters.maxMatmulFlops, d.flops);
    } else if (d.kernel.name === 'matmul' && d.params && d.params.byteLength >= 12) {
      const w = new DataView(d.params.buffer, d.params.byteOffset, 12);
      const flops = 2 * w.getUint32(0, true) * w.getUint32(4, true) * w.getUint32(8, true);
      counters.matmulFlops += flops;
      counters.maxMatmulFlops = Math.max(counters.maxMatmulFlops, flops);
    }
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  /** Zero a whole tensor or buffer (e.g. a gradient that kernels accumulate into). */
  clear(target: Tensor | GPUBuffer): void {
    this.endPass();
    const buffer = target instanceof Tensor ? target.buffer : target;
    this.encoder.clearBuffer(buffer);
  }

  /** Encode a readback copy of `src` into a fresh mappable buffer (mapped after submit). */
  copyToReadable(src: GPUBuffer, offset: number, size: number): GPUBuffer {
    this.ctx.counters.readbacks++;
    this.ctx.counters.readBytes += size;
    const dst = this.ctx.device.createBuffer({
      size: Math.ceil(size / 4) * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      label: `readback ${src.label}`,
    });
    this.copy(src, offset, dst, 0, Math.ceil(size / 4) * 4);
    return dst;
  }

  submit(): void {
    if (this.submitted) throw new Error(`${this.label}: submitted twice`);
    this.submitted = true;
    this.endPass();
    this.ctx.profiler?.resolve(this.encoder);
    for (const a of this.arenas) this.ctx.device.queue.writeBuffer(a.buffer, 0, a.staging, 0, a.used);
    this.ctx.device.queue.submit([this.encoder.finish()]);
    this.ctx.counters.submits++;
    // The writes above are queue-ordered before this submit and any later one, so the arena
    // buffers can be handed to the next batch right away.
    for (const a of this.arenas) this.ctx.pool.release(a.buffer);
    this.arenas = [];
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private uniform(bytes: Uint8Array): GPUBufferBinding {
    const align = this.ctx.device.limits.minUniformBufferOffsetAlignment;
    let arena = this.arenas[this.arenas.length - 1];
    if (!arena || arena.used + bytes.byteLength > ARENA_BYTES) {
      arena = {
        buffer: this.ctx.pool.acquire(ARENA_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'uniform arena'),
        staging: new Uint8Array(ARENA_BYTES),
        used: 0,
      };
      this.arenas.push(arena);
    }
    const offset = arena.used;
    arena.staging.set(bytes, offset);
    arena.used = Math.ceil((offset + bytes.byteLength) / align) * align;
    return { buffer: arena.buffer, offset, size: bytes.byteLength };
  }
}

function asResource(b: Binding): GPUBufferBinding {
  if (b instanceof Tensor) return { buffer: b.buffer, offset: 0, size: b.byteLength };
  if ('offset' in b) return b;
  return { buffer: b };
}
