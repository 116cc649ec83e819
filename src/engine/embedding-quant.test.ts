// Embedding gather from a quantized table (int8/int4), whole and split into row chunks (each
// chunk its own quantized tensor, as the loader splits tables over the binding limit): exactly
// the dequantized rows.
import { describe, expect, it } from 'vitest';
import { dequantize, quantize, type QuantDType } from '../gpu/quant';
import type { Tensor } from '../gpu/tensor';
import { embeddingForward } from './embedding';
import { embeddingForwardRef } from './reference/embedding';
import { maxAbsError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { groupedWeights } from './testing/quant';
import { freshSeed, randInt, rng } from './testing/random';

// h = 64 (whole groups per row), h = 40 and 37 (groups straddle rows), chunks of ragged rows.
const CASES: { v: number; h: number; n: number; cuts: number[] }[] = [
  { v: 5, h: 64, n: 9, cuts: [] },
  { v: 37, h: 40, n: 29, cuts: [8, 24] },
  { v: 301, h: 37, n: 200, cuts: [64, 257] },
];

describe('embedding with a quantized table', () => {
  for (const dtype of ['int8', 'int4'] as QuantDType[]) {
    it(`gathers ${dtype} rows as dequantized, whole and chunked tables (max abs err 0)`, async () => {
      const ctx = await testContext();
      for (const { v, h, n, cuts } of CASES) {
        const seed = freshSeed();
        const r = rng(seed);
        const values = groupedWeights(v * h, r);
        const ids = randInt(n, r, 0, v);
        const tids = ctx.upload(ids, [n], 'i32', 'ids');
        const upload = (start: number, rows: number, label: string) => {
          const bytes = quantize(values.subarray(start * h, (start + rows) * h), dtype);
          const t = ctx.tensor([rows, h], dtype, label);
          ctx.writeBytes(t, bytes);
          return { t, deq: dequantize(bytes, rows * h, dtype) };
        };
        const whole = upload(0, v, 'table');
        const out = poisoned(ctx, [n, h], 'out');
        const outChunked = poisoned(ctx, [n, h], 'outChunked');
        const batch = ctx.batch();
        embeddingForward(batch, { out, ids: tids, table: whole.t });
        const bounds = [0, ...cuts, v];
        const parts: Tensor[] = [];
        const chunkedDeq = new Float64Array(v * h);
        for (let i = 0; i + 1 < bounds.length; i++) {
          const [start, end] = [bounds[i]!, bounds[i + 1]!];
          const part = upload(start, end - start, `table[${start}:]`);
          chunkedDeq.set(part.deq, start * h);
          parts.push(part.t);
          embeddingForward(batch, { out: outChunked, ids: tids, table: part.t, rowStart: start });
        }
        batch.submit();
        const msg = `seed ${seed} ${dtype} v ${v} h ${h}`;
        expect(maxAbsError(await ctx.read(out), embeddingForwardRef(whole.deq, ids, h)), msg).toBe(0);
        expect(maxAbsError(await ctx.read(outChunked), embeddingForwardRef(chunkedDeq, ids, h)), msg).toBe(0);
        for (const t of [tids, whole.t, out, outChunked, ...parts]) t.release();
      }
    });
  }
});
