// Token embedding lookup and its backward (scatter-add of output gradients into table rows).
// A table larger than one storage binding is split into row chunks, each its own tensor; call
// the op once per chunk with that chunk's `rowStart` (ids outside the chunk are skipped).
import embeddingWgsl from '../../shaders/embedding.wgsl?raw';
import { splitGroups, type CommandBatch } from '../gpu/batch';
import type { DType } from '../gpu/dtype';
import { packParams } from '../gpu/params';
import { GGML_DTYPES } from '../gpu/ggml';
import { FORMAT_CODE, isQuantDType, QUANT_DTYPES, scaleWord0 } from '../gpu/quant';
import { quantDecodeWgsl } from './quant-decode';
import type { Tensor } from '../gpu/tensor';
import { expectDTypes, expectF32, expectShape, expectSize } from './checks';

const WG = 256;
/** The backward runs one workgroup per token; 64 invocations keep its barrier cheap everywhere. */
const WG_BACKWARD = 64;
const code = `${embeddingWgsl}\n${quantDecodeWgsl('qt_', 'table_word')}`;
const TABLE_DTYPES: readonly DType[] = ['f32', 'bf16', 'f16', ...QUANT_DTYPES, ...GGML_DTYPES];

function params(n: number, h: number, rowStart: number, rows: number, dtype: DType): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(rowStart) || rowStart < 0 || rowStart + rows > 0x7fffffff)
    throw new Error(`embedding: rowStart ${rowStart} with ${rows} rows is outside the i32 id range`);
  const format = FORMAT_CODE[dtype as keyof typeof FORMAT_CODE] ?? 0;
  const scaleWord = isQuantDType(dtype) ? scaleWord0(rows * h, dtype) : 0;
  return packParams([{ u32: n }, { u32: h }, { u32: rowStart }, { u32: rows }, { u32: format }, { u32: scaleWord }]);
}

export interface EmbeddingForwardArgs {
  /** Output [n, h] f32. Rows whose id lies in this chunk are written; others are left alone. */
  out: Tensor;
  /** Token ids [n], i32 (global row numbers of the full table). */
  ids: Tensor;
  /** Table chunk [rows, h]: f32, bf16, f16, or quantized int8/int4 (decoded in the kernel). */
  table: Tensor;
  /** Global row number of the chunk's first row (0 for an unsplit table). */
  rowStart?: number;
}

export function embeddingForward(batch: CommandBatch, a: EmbeddingForwardArgs): void {
  const op = 'embedding';
  expectShape(op, a.table, [null, null]);
  expectDTypes(op, TABLE_DTYPES, a.table);
  expectDTypes(op, ['i32'], a.ids);
  expectF32(op, a.out);
  const [rows, h] = a.table.shape as [number, number];
  const n = a.ids.size;
  expectSize(op, a.out, n * h);
  batch.dispatch({
    kernel: { name: 'embedding', code, entryPoint: 'embedding_forward', constants: { WG } },
    params: params(n, h, a.rowStart ?? 0, rows, a.table.dtype),
    buffers: [a.ids, a.table, a.out],
    groups: splitGroups(Math.ceil((n * h) / WG)),
  });
}

export interface EmbeddingBackwardArgs {
  /**
   * Gradient of the table chunk [rows, h] f32. dOut rows are ADDED to it (zero it first for a
   * fresh gradient); rows of ids not present are untouched. The sum per row runs in token
   * order, so the result is deterministic.
   */
  dTable: Tensor;
  /** Gradient of the output [n, h] f32. */
  dOut: Tensor;
  ids: Tensor;
  rowStart?: number;
}

export function embeddingBackward(batch: CommandBatch, a: EmbeddingBackwardArgs): void {
  const op = 'embedding backward';
  expectShape(op, a.dTable, [null, null]);
  expectF32(op, a.dTable, a.dOut);
  expectDTypes(op, ['i32'], a.ids);
  const [rows, h] = a.dTable.shape as [number, number];
  const n = a.ids.size;
  expectSize(op, a.dOut, n * h);
  batch.dispatch({
    kernel: { name: 'embedding', code, entryPoint: 'embedding_backward', constants: { WG: WG_BACKWARD } },
    params: params(n, h, a.rowStart ?? 0, rows, 'f32'),
    buffers: [a.ids, a.dOut, a.dTable],
    groups: splitGroups(n),
  });
}
