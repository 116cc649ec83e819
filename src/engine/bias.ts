// Linear-layer bias: y[r, :] += b (b frozen in f32/bf16/f16, as checkpoints store it) and its
// backward db (+)= Σ_r dy[r, :] (full fine-tuning only: with LoRA the bias is frozen and the
// gradient flows past it to the input unchanged).
import code from '../../shaders/bias.wgsl?raw';
import { splitGroups, type CommandBatch } from '../gpu/batch';
import { packParams } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32 } from './checks';
import { WEIGHT_DTYPES } from './rmsnorm';

const WG = 256;
const kernel = (entryPoint: string) => ({ name: 'bias', code, entryPoint, constants: { WG } });
const wdtypeCode = (t: Tensor): number => (t.dtype === 'f32' ? 0 : t.dtype === 'bf16' ? 1 : 2);

function rowsOf(op: string, y: Tensor, b: Tensor): number {
  if (b.size === 0 || y.size % b.size !== 0) throw new Error(`${op}: ${y.label} has ${y.size} elements, not a whole number of rows of ${b.label} (${b.size})`);
  return y.size / b.size;
}

/** y[r, j] += b[j] in place; y is [n, cols] f32, b is [cols]. */
export function biasForward(batch: CommandBatch, y: Tensor, b: Tensor): void {
  const op = 'bias';
  expectF32(op, y);
  expectDTypes(op, WEIGHT_DTYPES, b);
  const n = rowsOf(op, y, b);
  batch.dispatch({
    kernel: kernel('bias_forward'),
    params: packParams([{ u32: n }, { u32: b.size }, { u32: wdtypeCode(b) }, { u32: 0 }]),
    buffers: [b, y],
    groups: splitGroups(Math.ceil(y.size / WG)),
  });
}

/** db[j] (+)= Σ_r dy[r, j]; dy is [n, cols] f32, db is [cols] f32. */
export function biasBackward(batch: CommandBatch, db: Tensor, dy: Tensor, accumulate = false): void {
  const op = 'bias backward';
  expectF32(op, db, dy);
  const n = rowsOf(op, dy, db);
  batch.dispatch({
    kernel: kernel('bias_backward'),
    params: packParams([{ u32: n }, { u32: db.size }, { u32: 0 }, { u32: accumulate ? 1 : 0 }]),
    buffers: [dy, db],
    groups: [Math.ceil(db.size / WG)],
  });
}
