// Encoders for the GGML block types of blocks.ts: float rows → blocks. Used to write generated
// GGUF files for tests and benchmarks (src/model/testing/gguf-writer.ts), and ctx.upload of a
// GGML dtype. Plain round-to-nearest with
// each block's range, not llama.cpp's error-minimising searches: any valid block is a fair test
// of a decoder, and the loaded model is compared with these very blocks decoded.

import { f32ToBf16Bits, f32ToF16Bits, f16BitsToF32 } from './dtype';
import { rowBytes, type BlockFormat } from './ggml';

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function putHalf(v: DataView, at: number, x: number): number {
  const bits = f32ToF16Bits(x);
  v.setUint16(at, bits, true);
  return f16BitsToF32(bits); // the scale the decoder will see
}

function encodeQ8_0(x: ArrayLike<number>, o: number, v: DataView, at: number): void {
  let amax = 0;
  for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[o + j]!));
  const d = putHalf(v, at, amax / 127);
  for (let j = 0; j < 32; j++) v.setInt8(at + 2 + j, d ? clamp(Math.round(x[o + j]! / d), -127, 127) : 0);
}

function encodeQ4_0(x: ArrayLike<number>, o: number, v: DataView, at: number): void {
  // As ggml: the value of largest magnitude maps to −8, so its sign picks the direction.
  let max = 0;
  for (let j = 0; j < 32; j++) if (Math.abs(x[o + j]!) > Math.abs(max)) max = x[o + j]!;
  const d = putHalf(v, at, max / -8);
  const q = (j: number) => (d ? clamp(Math.round(x[o + j]! / d) + 8, 0, 15) : 8);
  for (let j = 0; j < 16; j++) v.setUint8(at + 2 + j, q(j) | (q(j + 16) << 4));
}

function encodeQ4K(x: ArrayLike<number>, o: number, v: DataView, at: number): void {
  // Per sub-block of 32: scale s = (max − min)/15 and min m = −min (x ≈ s·q − m, q in 0..15).
  const s: number[] = [];
  const m: number[] = [];
  for (let j = 0; j < 8; j++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let l = 0; l < 32; l++) {
      lo = Math.min(lo, x[o + 32 * j + l]!);
      hi = Math.max(hi, x[o + 32 * j + l]!);
    }
    lo = Math.min(lo, 0);
    s.push((hi - lo) / 15);
    m.push(-lo);
  }
  const d = putHalf(v, at, Math.max(...s) / 63);
  const dmin = putHalf(v, at + 2, Math.max(...m) / 63);
  const sc = s.map((x) => (d ? clamp(Math.round(x / d), 0, 63) : 0));
  const mq = m.map((x) => (dmin ? clamp(Math.round(x / dmin), 0, 63) : 0));
  // Pack 8 six-bit scales and mins into 12 bytes (the inverse of q4kScaleMin).
  const scales = new Uint8Array(12);
  for (let j = 0; j < 4; j++) {
    scales[j] = sc[j]!;
    scales[j + 4] = mq[j]!;
  }
  for (let j = 4; j < 8; j++) {
    scales[j + 4] = (sc[j]! & 15) | ((mq[j]! & 15) << 4);
    scales[j - 4]! |= (sc[j]! >> 4) << 6;
    scales[j]! |= (mq[j]! >> 4) << 6;
  }
  for (let i = 0; i < 12; i++) v.setUint8(at + 4 + i, scales[i]!);
  const q = (i: number) => {
    const j = i >> 5;
    const step = d * sc[j]!;
    return step ? clamp(Math.round((x[o + i]! + dmin * mq[j]!) / step), 0, 15) : 0;
  };
  for (let c = 0; c < 4; c++)
    for (let l = 0; l < 32; l++) v.setUint8(at + 16 + 32 * c + l, q(64 * c + l) | (q(64 * c + 32 + l) << 4));
}

function encodeQ6K(x: ArrayLike<number>, o: number, v: DataView, at: number): void {
  const s: number[] = [];
  for (let j = 0; j < 16; j++) {
    let amax = 0;
    for (let l = 0; l < 16; l++) amax = Math.max(amax, Math.abs(x[o + 16 * j + l]!));
    s.push(amax / 31);
  }
  const d = putHalf(v, at + 208, Math.max(...s) / 127);
  const sc = s.map((x) => (d ? clamp(Math.round(x / d), -128, 127) : 0));
  for (let j = 0; j < 16; j++) v.setInt8(at + 192 + j, sc[j]!);
  const q = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    const step = d * sc[i >> 4]!;
    q[i] = step ? clamp(Math.round(x[o + i]! / step), -32, 31) + 32 : 32;
  }
  // Each 128-element half: ql[64] low nibbles of runs 0,1 | 2,3; qh[32] two high bits of all four runs.
  for (let c = 0; c < 2; c++)
    for (let l = 0; l < 32; l++) {
      const [q1, q2, q3, q4] = [0, 32, 64, 96].map((r) => q[128 * c + r + l]!) as [number, number, number, number];
      v.setUint8(at + 64 * c + l, (q1 & 15) | ((q3 & 15) << 4));
      v.setUint8(at + 64 * c + 32 + l, (q2 & 15) | ((q4 & 15) << 4));
      v.setUint8(at + 128 + 32 * c + l, (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
}

const ENCODERS = { Q8_0: encodeQ8_0, Q4_0: encodeQ4_0, Q4_K: encodeQ4K, Q6_K: encodeQ6K } as const;

/** Encode a [rows, cols] row-major matrix (or a vector, rows = 1) as GGML type `f`. */
export function quantizeRows(f: BlockFormat, values: ArrayLike<number>, rows: number, cols: number): Uint8Array<ArrayBuffer> {
  if (values.length !== rows * cols) throw new Error(`quantizeRows: ${values.length} values for [${rows}, ${cols}]`);
  const out = new Uint8Array(rows * rowBytes(f, cols));
  const v = new DataView(out.buffer);
  const n = rows * cols;
  switch (f.name) {
    case 'F32':
      for (let i = 0; i < n; i++) v.setFloat32(4 * i, values[i]!, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) v.setUint16(2 * i, f32ToF16Bits(values[i]!), true);
      return out;
    case 'BF16':
      for (let i = 0; i < n; i++) v.setUint16(2 * i, f32ToBf16Bits(values[i]!), true);
      return out;
    default: {
      const enc = ENCODERS[f.name];
      for (let b = 0; b < n / f.blockSize; b++) enc(values, b * f.blockSize, v, b * f.blockBytes);
      return out;
    }
  }
}
