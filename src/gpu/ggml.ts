// GGML tensor types a GGUF file may hold, and a CPU reference decoder for each one we load,
// written from the block definitions of ggml (ggml-common.h, dequantize_row_* in ggml-quants.c):
//
//   type  elems/block  bytes  layout (little-endian; d, dmin are IEEE halves)
//   F32        1         4    f32
//   F16        1         2    f16
//   BF16       1         2    bf16
//   Q8_0      32        34    d, qs[32] int8                 x[j] = d·qs[j]
//   Q4_0      32        18    d, qs[16] nibbles              x[j] = d·((qs[j] & 15) − 8), x[j+16] = d·((qs[j] >> 4) − 8)
//   Q4_K     256       144    d, dmin, scales[12], qs[128]   8 sub-blocks of 32 with 6-bit scale sc and min m:
//                                                            x = d·sc·q − dmin·m, q a nibble (see decodeQ4K)
//   Q6_K     256       210    ql[128], qh[64], scales[16] int8, d
//                                                            16 sub-blocks of 16: x = d·sc·(q − 32), q 6 bits
//
// A tensor is rows of ne0 elements (ne0 = the input dimension of a weight, a multiple of the
// block size); each row is its blocks one after another, rows one after another. The decoders
// here are the reference the WGSL decoders (shaders/gguf.wgsl) are tested against; they compute in
// float64 from the same stored numbers, which are exact in f32, so the GPU matches to rounding.

import { GGMLQuantizationType } from '@huggingface/gguf';
import { bf16BitsToF32, f16BitsToF32 } from './dtype';

export { GGMLQuantizationType };

/** The GGML types Fuse Studio loads. */
export type GgmlTypeName = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_K' | 'Q6_K';

export interface BlockFormat {
  name: GgmlTypeName;
  id: number;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

export const GGML_FORMATS: Record<GgmlTypeName, BlockFormat> = {
  F32: { name: 'F32', id: GGMLQuantizationType.F32, blockSize: 1, blockBytes: 4 },
  F16: { name: 'F16', id: GGMLQuantizationType.F16, blockSize: 1, blockBytes: 2 },
  BF16: { name: 'BF16', id: GGMLQuantizationType.BF16, blockSize: 1, blockBytes: 2 },
  Q8_0: { name: 'Q8_0', id: GGMLQuantizationType.Q8_0, blockSize: 32, blockBytes: 34 },
  Q4_0: { name: 'Q4_0', id: GGMLQuantizationType.Q4_0, blockSize: 32, blockBytes: 18 },
  Q4_K: { name: 'Q4_K', id: GGMLQuantizationType.Q4_K, blockSize: 256, blockBytes: 144 },
  Q6_K: { name: 'Q6_K', id: GGMLQuantizationType.Q6_K, blockSize: 256, blockBytes: 210 },
};

export const SUPPORTED_GGML_TYPES = Object.keys(GGML_FORMATS) as GgmlTypeName[];

export class GgufTypeError extends Error {
  override name = 'GgufTypeError';
}

/** The name of a GGML type id (any, supported or not), e.g. 13 → "Q5_K". */
export function ggmlTypeName(id: number): string {
  return (GGMLQuantizationType as unknown as Record<number, string>)[id] ?? `unknown type ${id}`;
}

/** The block format of a type id; unsupported types are refused by name. */
export function formatOfType(id: number, what = 'a tensor'): BlockFormat {
  const f = Object.values(GGML_FORMATS).find((x) => x.id === id);
  if (!f)
    throw new GgufTypeError(
      `${what} is stored as ${ggmlTypeName(id)}, which Fuse Studio cannot decode (supported: ${SUPPORTED_GGML_TYPES.join(', ')}); ` +
        'pick a Q8_0, Q4_0, Q4_K_M or F16/BF16 file of this model',
    );
  return f;
}

/** Bytes of one row of `cols` elements; `cols` must be whole blocks. */
export function rowBytes(f: BlockFormat, cols: number, what = 'a tensor'): number {
  if (cols % f.blockSize !== 0)
    throw new GgufTypeError(`${what}: rows of ${cols} elements are not whole ${f.name} blocks of ${f.blockSize}`);
  return (cols / f.blockSize) * f.blockBytes;
}

/** Bytes of a [rows, cols] tensor. */
export function tensorBytes(f: BlockFormat, rows: number, cols: number, what?: string): number {
  return rows * rowBytes(f, cols, what);
}

// ---- reference decoders ------------------------------------------------------------------

const half = (v: DataView, at: number) => f16BitsToF32(v.getUint16(at, true));

function decodeQ8_0(v: DataView, at: number, out: Float64Array, o: number): void {
  const d = half(v, at);
  for (let j = 0; j < 32; j++) out[o + j] = d * v.getInt8(at + 2 + j);
}

function decodeQ4_0(v: DataView, at: number, out: Float64Array, o: number): void {
  const d = half(v, at);
  for (let j = 0; j < 16; j++) {
    const b = v.getUint8(at + 2 + j);
    out[o + j] = d * ((b & 15) - 8);
    out[o + j + 16] = d * ((b >> 4) - 8);
  }
}

/** Scale and min (6 bits each) of sub-block j of a Q4_K block, from its 12 packed bytes. */
export function q4kScaleMin(scales: ArrayLike<number>, j: number): [number, number] {
  if (j < 4) return [scales[j]! & 63, scales[j + 4]! & 63];
  return [(scales[j + 4]! & 15) | ((scales[j - 4]! >> 6) << 4), (scales[j + 4]! >> 4) | ((scales[j]! >> 6) << 4)];
}

function decodeQ4K(v: DataView, at: number, out: Float64Array, o: number): void {
  const d = half(v, at);
  const dmin = half(v, at + 2);
  const scales = new Uint8Array(v.buffer, v.byteOffset + at + 4, 12);
  const qs = at + 16;
  // Four 64-element chunks; chunk c's 32 bytes hold sub-block 2c in low nibbles, 2c+1 in high.
  for (let c = 0; c < 4; c++) {
    const [sc0, m0] = q4kScaleMin(scales, 2 * c);
    const [sc1, m1] = q4kScaleMin(scales, 2 * c + 1);
    for (let l = 0; l < 32; l++) {
      const b = v.getUint8(qs + 32 * c + l);
      out[o + 64 * c + l] = d * sc0 * (b & 15) - dmin * m0;
      out[o + 64 * c + 32 + l] = d * sc1 * (b >> 4) - dmin * m1;
    }
  }
}

/** The 6-bit quant (0..63) of element i (0..255) of a Q6_K block, and its sub-block. */
function q6kQuant(v: DataView, at: number, i: number): number {
  const c = i >> 7; // 128-element half
  const r = i & 127;
  const l = r & 31;
  const part = r >> 5; // 0..3: which of the four 32-element runs
  const ql = v.getUint8(at + 64 * c + l + (part & 1) * 32);
  const low = part < 2 ? ql & 15 : ql >> 4;
  const qh = v.getUint8(at + 128 + 32 * c + l);
  return low | (((qh >> (2 * part)) & 3) << 4);
}

function decodeQ6K(v: DataView, at: number, out: Float64Array, o: number): void {
  const d = half(v, at + 208);
  for (let i = 0; i < 256; i++) {
    const sc = v.getInt8(at + 192 + (i >> 4)); // sub-blocks of 16 in order
    out[o + i] = d * sc * (q6kQuant(v, at, i) - 32);
  }
}

const BLOCK_DECODERS: Partial<Record<GgmlTypeName, (v: DataView, at: number, out: Float64Array, o: number) => void>> = {
  Q8_0: decodeQ8_0,
  Q4_0: decodeQ4_0,
  Q4_K: decodeQ4K,
  Q6_K: decodeQ6K,
};

/** Decode `count` elements (whole blocks) of a tensor stored as `f`, starting at byte 0 of `bytes`. */
export function dequantize(f: BlockFormat, bytes: Uint8Array, count: number): Float64Array {
  const out = new Float64Array(count);
  const need = tensorBytes(f, 1, count);
  if (bytes.byteLength < need) throw new GgufTypeError(`${f.name}: ${count} elements need ${need} bytes, got ${bytes.byteLength}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (f.name) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = v.getFloat32(4 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = f16BitsToF32(v.getUint16(2 * i, true));
      return out;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bf16BitsToF32(v.getUint16(2 * i, true));
      return out;
    default: {
      const dec = BLOCK_DECODERS[f.name]!;
      for (let b = 0; b < count / f.blockSize; b++) dec(v, b * f.blockBytes, out, b * f.blockSize);
      return out;
    }
  }
}

// ---- the WGSL decoders ---------------------------------------------------------------------

/** The GPU dtypes of the GGML block types (DType in dtype.ts). */
export type GgmlDType = 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k';
export const GGML_DTYPES: readonly GgmlDType[] = ['q8_0', 'q4_0', 'q4_k', 'q6_k'];

export function isGgmlDType(d: string): d is GgmlDType {
  return (GGML_DTYPES as readonly string[]).includes(d);
}

/** The block format of a GPU dtype, and the GPU dtype of a block format (null for F32/F16/BF16). */
export const FORMAT_OF_DTYPE: Record<GgmlDType, BlockFormat> = {
  q8_0: GGML_FORMATS.Q8_0,
  q4_0: GGML_FORMATS.Q4_0,
  q4_k: GGML_FORMATS.Q4_K,
  q6_k: GGML_FORMATS.Q6_K,
};

/** Format codes of the GGUF block types in every shader (after int8 = 3, int4 = 4). */
export const GGML_FORMAT_CODE: Record<GgmlDType, number> = { q8_0: 5, q4_0: 6, q4_k: 7, q6_k: 8 };

/** Exact bytes of n elements (whole blocks) of a GGML dtype, padded to a whole word. */
export function ggmlByteLength(n: number, dtype: GgmlDType): number {
  const f = FORMAT_OF_DTYPE[dtype];
  if (n % f.blockSize) throw new GgufTypeError(`${f.name}: ${n} elements are not whole blocks of ${f.blockSize}`);
  return Math.max(4, Math.ceil(((n / f.blockSize) * f.blockBytes) / 4) * 4);
}

