import { describe, expect, it } from 'vitest';
import { dequantize, formatOfType, GGML_FORMATS, GgufTypeError, q4kScaleMin, rowBytes, type GgmlTypeName } from './ggml';
import { quantizeRows } from './ggml-quantize';

const F = GGML_FORMATS;

describe('GGUF block decoders against hand-computed blocks', () => {
  it('Q8_0: x = d·qs', () => {
    const b = new Uint8Array(34);
    new DataView(b.buffer).setUint16(0, 0x3800, true); // d = 0.5
    b.set([1, 0xfe, 127, 0x80], 2); // 1, −2, 127, −128
    const x = dequantize(F.Q8_0, b, 32);
    expect([...x.slice(0, 5)]).toEqual([0.5, -1, 63.5, -64, 0]);
  });

  it('Q4_0: low nibbles are elements 0..15, high nibbles 16..31, offset 8', () => {
    const b = new Uint8Array(18);
    new DataView(b.buffer).setUint16(0, 0x4000, true); // d = 2
    b[2] = 0x9f; // el 0: (15 − 8)·2 = 14; el 16: (9 − 8)·2 = 2
    b[3] = 0x08; // el 1: 0; el 17: (0 − 8)·2 = −16
    const x = dequantize(F.Q4_0, b, 32);
    expect([x[0], x[16], x[1], x[17], x[2]]).toEqual([14, 2, 0, -16, -16]);
  });

  it('Q4_K: 6-bit scales and mins packed in 12 bytes, 64-element chunks of two sub-blocks', () => {
    const b = new Uint8Array(144);
    const v = new DataView(b.buffer);
    v.setUint16(0, 0x3c00, true); // d = 1
    v.setUint16(2, 0x3800, true); // dmin = 0.5
    const s = b.subarray(4, 16);
    s[0] = 3; // sub-block 0: sc = 3
    s[4] = 2; //              m = 2
    // sub-block 5: sc = 37 = 0b10_0101, m = 26 = 0b01_1010: low 4 bits in s[9], top 2 bits in s[1], s[5]
    s[9] = 0x05 | (0x0a << 4);
    s[1] = 2 << 6;
    s[5] = 1 << 6;
    expect(q4kScaleMin(s, 5)).toEqual([37, 26]);
    const qs = b.subarray(16);
    qs[0] = 0x07; // el 0 (sub-block 0, low nibble): 1·3·7 − 0.5·2 = 20
    qs[64] = 0xc0; // el 160 (chunk 2 high nibble = sub-block 5): 1·37·12 − 0.5·26 = 431
    const x = dequantize(F.Q4_K, b, 256);
    expect(x[0]).toBe(20);
    expect(x[1]).toBe(-1); // q = 0: −dmin·m
    expect(x[32]).toBe(0); // sub-block 1: sc = 0 (low bits of s[1]), m = 0
    expect(x[160]).toBe(431);
    expect(x[161]).toBe(-13);
    expect(x[128]).toBe(0); // sub-block 4: sc and m are 0
  });

  it('Q6_K: ql low/high nibbles, qh 2-bit pairs, int8 scales per 16, d last', () => {
    const b = new Uint8Array(210);
    const v = new DataView(b.buffer);
    v.setUint16(208, 0x3400, true); // d = 0.25
    v.setInt8(192 + 0, 2);
    v.setInt8(192 + 2, 1);
    v.setInt8(192 + 4, 4);
    v.setInt8(192 + 9, -3);
    b[0] = 0x5a; // ql[0]: el 0 low = 10, el 64 low = 5
    b[128] = 3 | (1 << 2) | (2 << 4) | (3 << 6); // qh[0]: el 0 → 3, el 32 → 1, el 64 → 2, el 96 → 3
    b[64 + 16] = 0x01; // second half, l = 16: el 144 low = 1, qh = 0
    const x = dequantize(F.Q6_K, b, 256);
    expect(x[0]).toBe(0.25 * 2 * (58 - 32)); // 13
    expect(x[1]).toBe(0.25 * 2 * -32); // q = 0
    expect(x[32]).toBe(0.25 * 1 * (16 - 32)); // −4
    expect(x[64]).toBe(0.25 * 4 * (37 - 32)); // 5
    expect(x[144]).toBe(0.25 * -3 * (1 - 32)); // 23.25
    expect(x[96]).toBe(0); // sub-block 6 has scale 0
  });

  it('F16, BF16, F32 elements', () => {
    expect([...dequantize(F.F16, new Uint8Array([0x00, 0x3c, 0x00, 0xc0]), 2)]).toEqual([1, -2]);
    expect([...dequantize(F.BF16, new Uint8Array([0x80, 0x3f, 0x40, 0xc0]), 2)]).toEqual([1, -3]);
    expect([...dequantize(F.F32, new Uint8Array(new Float32Array([1.5, -0.25]).buffer), 2)]).toEqual([1.5, -0.25]);
  });

  it('refuses unsupported types by name, and rows that are not whole blocks', () => {
    expect(() => formatOfType(13, 'blk.0.attn_q.weight')).toThrow(/blk\.0\.attn_q\.weight is stored as Q5_K.*supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K/);
    expect(() => formatOfType(3)).toThrow(GgufTypeError);
    expect(() => rowBytes(F.Q4_K, 96, 'x')).toThrow(/x: rows of 96 elements are not whole Q4_K blocks of 256/);
    expect(rowBytes(F.Q6_K, 512)).toBe(420);
  });
});

describe('encoders round-trip through the decoders', () => {
  const rand = (n: number, seed: number) => {
    let s = seed >>> 0;
    return Float64Array.from({ length: n }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return (s / 2 ** 32 - 0.5) * 2;
    });
  };
  const cases: [GgmlTypeName, number][] = [
    ['Q8_0', 0.01],
    ['Q4_0', 0.13],
    ['Q4_K', 0.15],
    ['Q6_K', 0.05],
    ['F16', 0.001],
    ['BF16', 0.005],
    ['F32', 1e-6],
  ];
  for (const [name, tol] of cases)
    it(`${name}: every element within ${tol} of its block's largest magnitude, and decoding the encoded decode changes nothing`, () => {
      const f = F[name];
      const rows = 3;
      const cols = 512;
      const x = rand(rows * cols, 7);
      // One block of all zeros and one with a single outlier: the edge cases of the scales.
      x.fill(0, 0, f.blockSize);
      x[cols + 5] = 40;
      const enc = quantizeRows(f, x, rows, cols);
      expect(enc.byteLength).toBe(rows * rowBytes(f, cols));
      const y = dequantize(f, enc, rows * cols);
      // Each element within tol × the largest magnitude of its block.
      const bs = Math.max(f.blockSize, 32);
      let worst = 0;
      for (let b = 0; b < x.length / bs; b++) {
        let amax = 0;
        for (let i = b * bs; i < (b + 1) * bs; i++) amax = Math.max(amax, Math.abs(x[i]!));
        for (let i = b * bs; i < (b + 1) * bs; i++) if (amax) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / amax);
      }
      expect(worst).toBeLessThan(tol);
      expect(worst).toBeGreaterThan(0);
      expect([...y.slice(0, f.blockSize)].every((v) => v === 0)).toBe(true);
      if (name === 'Q8_0' || name === 'Q6_K' || name.startsWith('F') || name === 'BF16') {
        const again = dequantize(f, quantizeRows(f, y, rows, cols), rows * cols);
        let maxd = 0;
        for (let i = 0; i < y.length; i++) maxd = Math.max(maxd, Math.abs(again[i]! - y[i]!));
        expect(maxd).toBeLessThan(1e-3);
      }
    });
});
