// Tensor specs: the one description of what a structure allocates. The GPU code allocates
// from these lists and the memory plan sums them, so the plan is the allocation, not an
// estimate of it (see memory-plan.ts).
import type { GpuContext } from '../gpu/context';
import { byteLengthOf, bytesPerElement, type DType } from '../gpu/dtype';
import { isQuantDType, QUANT_GROUP } from '../gpu/quant';
import type { Tensor } from '../gpu/tensor';

export interface TensorSpec {
  /** Key of the tensor in the structure that allocates it, also its GPU label. */
  name: string;
  shape: readonly number[];
  dtype: DType;
}

/** Bytes the buffer pool takes for a tensor of `n` elements (it rounds to 16 bytes, at least 16). */
export function poolBytes(n: number, dtype: DType): number {
  return Math.max(16, Math.ceil(byteLengthOf(n, dtype) / 16) * 16);
}

export function specBytes(specs: readonly TensorSpec[]): number {
  return specs.reduce((s, t) => s + poolBytes(t.shape.reduce((a, b) => a * b, 1), t.dtype), 0);
}

/** Allocate every spec from the pool, keyed by name. */
export function allocateSpecs<K extends string>(ctx: GpuContext, specs: readonly TensorSpec[], prefix = ''): Record<K, Tensor> {
  const out = {} as Record<string, Tensor>;
  for (const s of specs) {
    if (out[s.name]) throw new Error(`duplicate tensor spec "${s.name}"`);
    out[s.name] = ctx.tensor(s.shape, s.dtype, prefix + s.name);
  }
  return out as Record<K, Tensor>;
}

/** The row ranges a [rows, cols] table is split into so each fits `limitBytes` (as uploadWeights splits). */
export function rowChunks(rows: number, cols: number, dtype: DType, limitBytes: number): { rowStart: number; rows: number }[] {
  const bytesPerRow = cols * bytesPerElement[dtype];
  let per = Math.max(1, Math.floor(limitBytes / bytesPerRow));
  if (isQuantDType(dtype)) {
    // Quantized chunks also hold their scales, and hold whole scale words (64 elements) but the last.
    while (per > 1 && byteLengthOf(per * cols, dtype) > limitBytes) per--;
    if (per < rows) while (per > 1 && (per * cols) % (2 * QUANT_GROUP)) per--;
  }
  // 16-bit chunks must start on a u32 boundary.
  else if (per < rows && (per * bytesPerRow) % 4) per = Math.max(2, per - 1);
  const out: { rowStart: number; rows: number }[] = [];
  for (let r = 0; r < rows; r += per) out.push({ rowStart: r, rows: Math.min(per, rows - r) });
  return out;
}

/**
 * The buffer pool's accounting (src/gpu/pool.ts) replayed without a GPU: a released buffer is
 * reused by the next request of the same size (all tensors share one usage), and the peak is
 * the most bytes ever allocated. Plans use it where allocations come and go.
 */
export class PoolModel {
  private free = new Map<number, number>();
  allocated = 0;
  peak = 0;

  acquire(specs: readonly TensorSpec[]): void {
    for (const s of specs) {
      const size = poolBytes(s.shape.reduce((a, b) => a * b, 1), s.dtype);
      const cached = this.free.get(size) ?? 0;
      if (cached) this.free.set(size, cached - 1);
      else this.allocated += size;
      this.peak = Math.max(this.peak, this.allocated);
    }
  }

  release(specs: readonly TensorSpec[]): void {
    for (const s of specs) {
      const size = poolBytes(s.shape.reduce((a, b) => a * b, 1), s.dtype);
      this.free.set(size, (this.free.get(size) ?? 0) + 1);
    }
  }
}
