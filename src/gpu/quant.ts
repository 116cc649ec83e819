// Quantized weight formats (int8, int4): the exact buffer layout, the host quantizer, the float64
// dequantizer every kernel test compares against, and the WGSL decode snippet the kernels splice
// in. Layout (see /work/notes/quant-format.md, docs/QUANT.md): one buffer per tensor,
//   [ values: valueWords(n) u32 ][ scales: f16 pairs, one per group of QUANT_GROUP elements ]
// int8: element e is byte e&3 of word e>>2, signed, value = q·d.
// int4: element e is nibble e&7 of word e>>3, unsigned, value = (q − 8)·d.
// d of group e>>5 is an f16 at word scaleWord0 + (g>>1), half g&1. Groups are QUANT_GROUP
// consecutive elements of the row-major tensor: along the input dimension for [out, in] weights.
import { GGML_FORMAT_CODE } from './ggml';
import { f16BitsToF32, f32ToF16Bits } from './dtype';

export type QuantDType = 'int8' | 'int4';
export const QUANT_DTYPES: readonly QuantDType[] = ['int8', 'int4'];
export const QUANT_GROUP = 32;

/** Format codes shared by every shader that reads a weight (matmul, embedding). */
export const FORMAT_CODE = { f32: 0, bf16: 1, f16: 2, int8: 3, int4: 4, ...GGML_FORMAT_CODE } as const;
export type WeightFormat = keyof typeof FORMAT_CODE;

export function isQuantDType(d: string): d is QuantDType {
  return d === 'int8' || d === 'int4';
}

const ELEMS_PER_WORD: Record<QuantDType, number> = { int8: 4, int4: 8 };

/** Words of the value region (rounded to 4, so the scales start 16-byte aligned). */
export function valueWords(n: number, dtype: QuantDType): number {
  return Math.ceil(Math.ceil(n / ELEMS_PER_WORD[dtype]) / 4) * 4;
}

export function groupCount(n: number): number {
  return Math.ceil(n / QUANT_GROUP);
}

/** Word index where the f16 scales start (the kernels' `scale_word` / s0). */
export function scaleWord0(n: number, dtype: QuantDType): number {
  return valueWords(n, dtype);
}

/** Exact bytes of a quantized tensor of `n` elements. */
export function quantByteLength(n: number, dtype: QuantDType): number {
  return Math.max(4, 4 * (valueWords(n, dtype) + Math.ceil(groupCount(n) / 2)));
}

/** Bits a weight costs (values + its share of the f16 scale), for plans and the UI. */
export function quantBitsPerWeight(dtype: QuantDType): number {
  return (dtype === 'int8' ? 8 : 4) + 16 / QUANT_GROUP;
}

/** Half away from zero (as Math.round on |x|), without Math.sign: the quantizer's inner loop. */
const roundAway = (x: number): number => (x < 0 ? -Math.floor(0.5 - x) : Math.floor(x + 0.5));

/**
 * Quantize `values` (a whole number of groups, or the tensor's tail) into value and scale bytes,
 * to be written at value byte offset start·bits/8 and scale byte offset 2·start/QUANT_GROUP of the
 * tensor (start a multiple of 2·QUANT_GROUP, so both land on whole words). About 30 ns an element
 * on one core of a shared 2-core machine (a 1B model: about 40 s; the cache makes it once).
 */
export function quantizePiece(values: ArrayLike<number>, dtype: QuantDType): { values: Uint8Array<ArrayBuffer>; scales: Uint8Array<ArrayBuffer> } {
  const n = values.length;
  const int8 = dtype === 'int8';
  const epw = ELEMS_PER_WORD[dtype];
  const words = new Uint32Array(Math.ceil(n / epw));
  const groups = groupCount(n);
  const scales = new Uint16Array(groups + (groups & 1));
  for (let g = 0; g < groups; g++) {
    const start = g * QUANT_GROUP;
    const end = Math.min(n, start + QUANT_GROUP);
    // The largest magnitude and its signed value; NaN and ±Inf are refused.
    let m = 0;
    let am = 0;
    for (let i = start; i < end; i++) {
      const v = values[i]!;
      const a = v < 0 ? -v : v;
      if (!(a < Infinity)) throw new Error(`quantize: element ${i} is ${v}; the weights are not finite`);
      if (a > am) {
        am = a;
        m = v;
      }
    }
    // int8: symmetric over ±127. int4 (Q4_0's rule): the largest-magnitude value maps to q − 8 = −8.
    const bits = f32ToF16Bits(int8 ? am / 127 : m / -8);
    const d = f16BitsToF32(bits);
    const inv = d === 0 ? 0 : 1 / d;
    scales[g] = bits;
    // Groups are whole words (32 elements), so each word is packed from scratch.
    for (let i = start; i < end; i += epw) {
      let w = 0;
      const stop = Math.min(end, i + epw);
      if (int8)
        for (let j = i; j < stop; j++) {
          const q = roundAway(values[j]! * inv);
          w |= ((q > 127 ? 127 : q < -127 ? -127 : q) & 0xff) << (8 * (j - i));
        }
      else
        for (let j = i; j < stop; j++) {
          const q = roundAway(values[j]! * inv) + 8;
          w |= (q > 15 ? 15 : q < 0 ? 0 : q) << (4 * (j - i));
        }
      words[i / epw] = w >>> 0;
    }
  }
  return { values: new Uint8Array(words.buffer), scales: new Uint8Array(scales.buffer) };
}

/** The whole buffer of a quantized tensor: `n` = values.length elements. */
export function quantize(values: ArrayLike<number>, dtype: QuantDType): Uint8Array<ArrayBuffer> {
  const n = values.length;
  const out = new Uint8Array(quantByteLength(n, dtype));
  const piece = quantizePiece(values, dtype);
  out.set(piece.values, 0);
  out.set(piece.scales, 4 * scaleWord0(n, dtype));
  return out;
}

/** The numbers a quantized buffer stands for (the float64 reference of every quantized kernel). */
export function dequantize(bytes: ArrayBufferLike | Uint8Array, n: number, dtype: QuantDType, first = 0): Float64Array {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const s0 = scaleWord0(n, dtype);
  const out = new Float64Array(n - first);
  for (let e = first; e < n; e++) {
    const g = e >> 5;
    const d = f16BitsToF32(view.getUint16(4 * s0 + 2 * g, true));
    let q: number;
    if (dtype === 'int8') q = view.getInt8(e);
    else q = ((view.getUint8(e >> 1) >> (4 * (e & 1))) & 0xf) - 8;
    out[e - first] = q * d;
  }
  return out;
}

/**
 * Largest |x − dequant(quant(x))| in a group of largest magnitude amax: int8 half a step
 * (amax/254); int4 a whole step (amax/8), as the value opposite in sign to m may clamp at 7d.
 */
export function quantErrorBound(amax: number, dtype: QuantDType): number {
  return (dtype === 'int8' ? amax / 254 : amax / 8) * (1 + 1e-3);
}

