// The int8/int4 format on the host: exact bytes of a hand-worked group, the round-trip error
// bound (half a quantization step of the group), the byte counts the plan and the pool use.
import { describe, expect, it } from 'vitest';
import { byteLengthOf, decode, encode, f16BitsToF32, f32ToF16Bits } from './dtype';
import { dequantize, quantBitsPerWeight, quantByteLength, quantize, quantizePiece, QUANT_GROUP, scaleWord0, valueWords } from './quant';
import { freshSeed, randn, rng } from '../engine/testing/random';

describe('quantized formats', () => {
  it('int4 packs nibbles low-first with (q − 8)·d and d = f16(m / −8) for the largest-magnitude m', () => {
    const x = new Float64Array(QUANT_GROUP).fill(0);
    x[0] = -1.6; // m: maps to q = 0
    x[1] = 0.8; // 0.8 / 0.2 = 4 → q = 12
    x[2] = 0.1; // 0.5 → rounds away from zero to 1 → q = 9
    x[9] = 1.6; // 8 → clamped to q = 15 (7·0.2)
    const bytes = quantize(x, 'int4');
    const words = new Uint32Array(bytes.buffer);
    const d = f16BitsToF32(f32ToF16Bits(0.2));
    expect(words[0]! & 0xfff).toBe(0x9c0); // nibbles 0, 12, 9
    expect((words[1]! >>> 4) & 0xf).toBe(15);
    expect(new Uint16Array(bytes.buffer)[2 * scaleWord0(QUANT_GROUP, 'int4')]).toBe(f32ToF16Bits(0.2));
    const back = dequantize(bytes, QUANT_GROUP, 'int4');
    expect([back[0], back[1], back[2], back[9], back[3]]).toEqual([-8 * d, 4 * d, d, 7 * d, 0]);
  });

  it('int8 stores signed bytes with d = f16(absmax / 127)', () => {
    const x = Float64Array.from({ length: 40 }, (_, i) => (i === 5 ? -2.54 : i === 33 ? 0.5 : 0.01 * i));
    const bytes = quantize(x, 'int8');
    expect(new Int8Array(bytes.buffer)[5]).toBe(-127);
    expect(new Int8Array(bytes.buffer)[33]).toBe(127); // the second group's own scale
    expect(bytes.byteLength).toBe(4 * (valueWords(40, 'int8') + 1));
  });

  // int4 uses all 16 levels (−8d..7d, d = |m|/8): the value opposite m may clamp, so its bound is
  // a whole step amax/8; int8 rounds within half a step amax/254.
  it('round trip stays within amax/254 (int8) and amax/8 (int4) of each group, on random weights', () => {
    const seed = freshSeed();
    const r = rng(seed);
    for (const dtype of ['int8', 'int4'] as const)
      for (const n of [1, 31, 32, 33, 1000]) {
        const x = randn(n, r, 10 ** (4 * r() - 2));
        const back = dequantize(quantize(x, dtype), n, dtype);
        for (let g = 0; g * QUANT_GROUP < n; g++) {
          const sl = x.subarray(g * QUANT_GROUP, (g + 1) * QUANT_GROUP);
          const amax = Math.max(...Array.from(sl, Math.abs));
          const half = (dtype === 'int8' ? amax / 254 : amax / 8) * (1 + 1e-3); // f16 rounding of d
          for (let i = 0; i < sl.length; i++)
            expect(Math.abs(back[g * QUANT_GROUP + i]! - sl[i]!), `seed ${seed} ${dtype} n ${n}`).toBeLessThanOrEqual(half + 1e-12);
        }
      }
  });

  it('pieces quantized apart equal the whole tensor (streamed quantize-on-load)', () => {
    const r = rng(freshSeed());
    const x = randn(3 * 64 + 20, r);
    for (const dtype of ['int8', 'int4'] as const) {
      const whole = quantize(x, dtype);
      const out = new Uint8Array(quantByteLength(x.length, dtype));
      for (let s = 0; s < x.length; s += 128) {
        const p = quantizePiece(x.subarray(s, s + 128), dtype);
        out.set(p.values, (s * (dtype === 'int8' ? 8 : 4)) / 8);
        out.set(p.scales.subarray(0, Math.min(p.scales.byteLength, out.byteLength - 4 * scaleWord0(x.length, dtype) - (2 * s) / QUANT_GROUP)), 4 * scaleWord0(x.length, dtype) + (2 * s) / QUANT_GROUP);
      }
      expect(out).toEqual(whole);
    }
  });

  it('byte counts: 8.5 and 4.5 bits a weight; encode/decode route through the quantizer', () => {
    expect(quantBitsPerWeight('int8')).toBe(8.5);
    expect(quantBitsPerWeight('int4')).toBe(4.5);
    expect(byteLengthOf(2048 * 8192, 'int4')).toBe((2048 * 8192 * 4.5) / 8);
    expect(byteLengthOf(2048 * 8192, 'int8')).toBe((2048 * 8192 * 8.5) / 8);
    const x = [0.5, -0.25, 1, 2];
    expect(Array.from(decode(encode(x, 'int8').buffer, 4, 'int8'))).toEqual(Array.from(dequantize(encode(x, 'int8'), 4, 'int8'), Math.fround));
  });

  it('refuses non-finite weights, naming the element', () => {
    expect(() => quantize([1, NaN], 'int4')).toThrow(/quantize: element 1 is NaN/);
  });
});
