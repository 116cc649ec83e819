// Test tensors in GGUF block formats: random bytes (every quant bit pattern) with finite random
// f16 scales, rows of whole blocks.
import { f32ToF16Bits } from '../../gpu/dtype';
import { rowBytes, type BlockFormat } from '../../gpu/ggml';

/** Random blocks of a [rows, cols] tensor; scale halves (d, dmin) are finite, |d| ≤ scale/2. */
export function randomBlocks(f: BlockFormat, rows: number, cols: number, next: () => number, scale = 0.1): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(rows * rowBytes(f, cols));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
  const v = new DataView(bytes.buffer);
  const halves = f.name === 'Q4_K' ? [0, 2] : f.name === 'Q6_K' ? [208] : [0];
  for (let b = 0; b < bytes.length / f.blockBytes; b++)
    for (const h of halves) v.setUint16(b * f.blockBytes + h, f32ToF16Bits((next() - 0.5) * scale), true);
  return bytes;
}
