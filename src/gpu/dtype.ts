// Element types the kernels understand, and host-side conversions between them.
// bf16 and f16 tensors are stored packed two per u32 (little-endian: element 2i in the low half).
// int8 and int4 are quantized weight formats (values + per-group f16 scales; see quant.ts).
// q8_0, q4_0, q4_k, q6_k are GGUF's block formats, uploaded as the file stores them (see ggml.ts).
import { dequantize as dequantizeBlocks, FORMAT_OF_DTYPE, ggmlByteLength, isGgmlDType } from './ggml';
import { quantizeRows } from './ggml-quantize';
import { dequantize, isQuantDType, quantByteLength, quantize as quantizeTo } from './quant';

export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32' | 'int8' | 'int4' | 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k';

/** Bytes of one element's value (quantized formats: without their scales; see byteLengthOf). */
/** GGML block formats: block bytes / block elements, exact for whole blocks. */
export const bytesPerElement: Record<DType, number> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  i32: 4,
  u32: 4,
  int8: 1,
  int4: 0.5,
  q8_0: 34 / 32,
  q4_0: 18 / 32,
  q4_k: 144 / 256,
  q6_k: 210 / 256,
};

/** Bytes a GPU buffer needs for `n` elements (16-bit types are padded to whole u32 words). */
export function byteLengthOf(n: number, dtype: DType): number {
  if (isQuantDType(dtype)) return quantByteLength(n, dtype);
  if (isGgmlDType(dtype)) return ggmlByteLength(n, dtype);
  const raw = n * bytesPerElement[dtype];
  return Math.max(4, Math.ceil(raw / 4) * 4);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Round-to-nearest-even f32 -> bf16 bits (NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** Round-to-nearest-even f32 -> IEEE half bits, with subnormals, overflow to inf. */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encode numbers as the bytes a GPU buffer of `dtype` holds. */
export function encode(values: ArrayLike<number>, dtype: DType): Uint8Array<ArrayBuffer> {
  if (isQuantDType(dtype)) return quantizeTo(values, dtype);
  if (isGgmlDType(dtype)) return padWords(quantizeRows(FORMAT_OF_DTYPE[dtype], values, 1, values.length));
  const n = values.length;
  const out = new Uint8Array(byteLengthOf(n, dtype));
  switch (dtype) {
    case 'f32':
      new Float32Array(out.buffer).set(values);
      break;
    case 'i32':
      new Int32Array(out.buffer).set(values);
      break;
    case 'u32':
      new Uint32Array(out.buffer).set(values);
      break;
    case 'bf16':
    case 'f16': {
      const halves = new Uint16Array(out.buffer);
      const conv = dtype === 'bf16' ? f32ToBf16Bits : f32ToF16Bits;
      for (let i = 0; i < n; i++) halves[i] = conv(values[i]!);
      break;
    }
  }
  return out;
}

/** Decode GPU buffer bytes of `dtype` into numbers (16-bit types widened to f32). */
export function decode(bytes: ArrayBuffer, n: number, dtype: DType): Float32Array | Int32Array | Uint32Array {
  switch (dtype) {
    case 'int8':
    case 'int4':
      return Float32Array.from(dequantize(bytes, n, dtype));
    case 'q8_0':
    case 'q4_0':
    case 'q4_k':
    case 'q6_k':
      return Float32Array.from(dequantizeBlocks(FORMAT_OF_DTYPE[dtype], new Uint8Array(bytes), n));
    case 'f32':
      return new Float32Array(bytes, 0, n).slice();
    case 'i32':
      return new Int32Array(bytes, 0, n).slice();
    case 'u32':
      return new Uint32Array(bytes, 0, n).slice();
    case 'bf16':
    case 'f16': {
      const halves = new Uint16Array(bytes, 0, n);
      const conv = dtype === 'bf16' ? bf16BitsToF32 : f16BitsToF32;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = conv(halves[i]!);
      return out;
    }
  }
}

/** The value a number becomes after a round trip through `dtype` storage (for references). */
export function quantize(values: ArrayLike<number>, dtype: DType): Float64Array {
  if (isQuantDType(dtype)) return dequantize(quantizeTo(values, dtype), values.length, dtype);
  if (isGgmlDType(dtype)) return dequantizeBlocks(FORMAT_OF_DTYPE[dtype], quantizeRows(FORMAT_OF_DTYPE[dtype], values, 1, values.length), values.length);
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    out[i] =
      dtype === 'bf16' ? bf16BitsToF32(f32ToBf16Bits(v)) : dtype === 'f16' ? f16BitsToF32(f32ToF16Bits(v)) : Math.fround(v);
  }
  return out;
}

/** Bytes padded with zeros to a whole number of u32 words (what writeBuffer takes). */
function padWords(b: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  if (b.byteLength % 4 === 0 && b.byteLength) return b;
  const out = new Uint8Array(Math.max(4, Math.ceil(b.byteLength / 4) * 4));
  out.set(b);
  return out;
}
