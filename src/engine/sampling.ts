// Token choice on the GPU (shaders/sampling.wgsl): a decode step reads back B ids (4 bytes a
// row) instead of B × vocab logits.
//
//   argmaxRows   ids[b] = argmax_v logits[b, v], the lowest v among ties (greedy decoding,
//                identical to src/model/sampling.ts `argmax` on the same f32 logits);
//                -1 for a row holding NaN or +Inf (the caller falls back to the host sampler,
//                which throws its usual error).
import code from '../../shaders/sampling.wgsl?raw';
import { splitGroups, type CommandBatch } from '../gpu/batch';
import { packParams } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32 } from './checks';

const WG = 256;

export interface ArgmaxRowsArgs {
  /** f32, row-major [rows, cols] at the start of the buffer. */
  logits: Tensor;
  /** i32, at least `rows` elements. */
  ids: Tensor;
  rows: number;
  /** Row length (vocab size). */
  cols: number;
}

/** Per-row argmax (lowest index among ties); -1 where a row holds NaN or +Inf. */
export function argmaxRows(batch: CommandBatch, a: ArgmaxRowsArgs): void {
  const op = 'argmax_rows';
  expectF32(op, a.logits);
  expectDTypes(op, ['i32'], a.ids);
  for (const [k, v] of [
    ['rows', a.rows],
    ['cols', a.cols],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${k} must be a positive integer, got ${v}`);
  if (a.logits.size < a.rows * a.cols) throw new Error(`${op}: ${a.logits.label} has ${a.logits.size} elements, needs ${a.rows}·${a.cols}`);
  if (a.ids.size < a.rows) throw new Error(`${op}: ${a.ids.label} has ${a.ids.size} elements, needs ${a.rows}`);
  batch.dispatch({
    kernel: { name: 'sampling', code, entryPoint: 'argmax_rows', constants: { WG } },
    params: packParams([{ u32: a.rows }, { u32: a.cols }]),
    buffers: [a.logits, a.ids],
    groups: splitGroups(a.rows),
  });
}
