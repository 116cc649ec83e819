// matmul and the embedding gather with a GGUF block-format weight (q8_0, q4_0, q4_k, q6_k) decoded
// in the kernel in the file's own layout: every matmul path, forward (nt) and input-gradient (nn)
// layouts, ragged M and N, lm_head-like row slices (bOffset whole rows), against float64 of the
// weights as the reference decoder reads them. Random block bytes: every quant bit pattern.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { quantize as roundTo } from '../gpu/dtype';
import { dequantize, FORMAT_OF_DTYPE, GGML_DTYPES, type GgmlDType } from '../gpu/ggml';
import { embeddingForward } from './embedding';
import { GEMV_MAX_M, matmul, skinnyAligned, vec4Aligned, type MatmulLayout, type MatmulPath } from './matmul';
import { embeddingForwardRef } from './reference/embedding';
import { matmulRef } from './reference/matmul';
import { maxAbsError, relError } from './testing/compare';
import { randomBlocks } from './testing/ggml';
import { poisoned, testContext } from './testing/gpu';
import { freshSeed, randInt, randn, rng } from './testing/random';

/** A [rows, cols] weight in `dtype`: its GPU tensor and float64 values. */
function weight(ctx: GpuContext, dtype: GgmlDType, rows: number, cols: number, next: () => number) {
  const bytes = randomBlocks(FORMAT_OF_DTYPE[dtype], rows, cols, next);
  const t = ctx.tensor([rows, cols], dtype, `W ${dtype}`);
  const padded = new Uint8Array(t.buffer.size);
  padded.set(bytes);
  ctx.writeBytes(t, padded);
  return { t, values: dequantize(FORMAT_OF_DTYPE[dtype], bytes, rows * cols) };
}

async function runCase(ctx: GpuContext, dtype: GgmlDType, layout: MatmulLayout, m: number, rowsB: number, k: number, sliceRow: number, sliceRows: number, path?: MatmulPath) {
  const seed = freshSeed();
  const r = rng(seed);
  // b is a [rowsB, k] weight; the product uses rows [sliceRow, sliceRow + sliceRows) of it.
  const { t: tb, values: b } = weight(ctx, dtype, rowsB, k, r);
  const n = sliceRows;
  const [aRows, aCols] = layout === 'nt' ? [m, k] : [m, n];
  const [oRows, oCols] = layout === 'nt' ? [m, n] : [m, k];
  const a = roundTo(randn(aRows * aCols, r), 'f32');
  const ta = ctx.upload(a, [aRows, aCols], 'f32', 'a');
  const tout = poisoned(ctx, [oRows, oCols], 'out');
  const bOffset = sliceRow * k;
  const batch = ctx.batch();
  matmul(batch, { a: ta, b: tb, out: tout, layout, bOffset, m, n, k }, { path });
  batch.submit();
  const got = await ctx.read(tout);
  const want = matmulRef({ layout, a, b, m, n, k, alpha: 1, bOffset });
  for (const t of [ta, tb, tout]) t.release();
  return { err: relError(got, want), seed };
}

function pathsFor(layout: MatmulLayout, dtype: GgmlDType, m: number, n: number, k: number, bOffset: number): MatmulPath[] {
  const paths: MatmulPath[] = ['tiled', 'direct'];
  if (layout === 'nt' && m <= GEMV_MAX_M) paths.push('gemv');
  if (vec4Aligned(layout, { m, n, k }, bOffset)) paths.push('vec4');
  if (skinnyAligned(layout, { m, n, k }, dtype, bOffset)) paths.push('skinny');
  return paths;
}

describe('matmul with GGUF block-format weights', () => {
  for (const dtype of GGML_DTYPES) {
    const bs = FORMAT_OF_DTYPE[dtype].blockSize;
    // [M, rows of b, K, first row, rows used]: one block per row, several; ragged M and N; a row slice.
    const shapes: [number, number, number, number, number][] =
      bs === 32
        ? [
            [1, 13, 32, 0, 13],
            [3, 21, 96, 4, 8],
            [GEMV_MAX_M + 2, 7, 160, 0, 7],
          ]
        : [
            [1, 11, 256, 0, 11],
            [3, 9, 512, 2, 4],
          ];
    for (const layout of ['nt', 'nn'] as const)
      it(`${layout} with ${dtype} b, every path (rel err < 1e-5)`, async () => {
        const ctx = await testContext();
        const seen = new Set<MatmulPath>();
        for (const [m, rowsB, k, first, used] of shapes)
          for (const path of [undefined, ...pathsFor(layout, dtype, m, used, k, first * k)]) {
            if (path) seen.add(path);
            const { err, seed } = await runCase(ctx, dtype, layout, m, rowsB, k, first, used, path);
            expect(err, `seed ${seed} ${dtype} ${layout} m ${m} k ${k} rows ${first}+${used} ${path ?? 'default'}`).toBeLessThan(1e-5);
          }
        expect([...seen].sort()).toEqual(layout === 'nt' ? ['direct', 'gemv', 'skinny', 'tiled', 'vec4'] : ['direct', 'tiled', 'vec4']);
      });
  }
});

describe('embedding with a GGUF block-format table', () => {
  for (const dtype of GGML_DTYPES)
    it(`gathers ${dtype} rows as decoded, whole and split into row chunks`, async () => {
      const ctx = await testContext();
      const seed = freshSeed();
      const r = rng(seed);
      const h = FORMAT_OF_DTYPE[dtype].blockSize === 32 ? 96 : 256;
      const v = 23;
      const { t: whole, values } = weight(ctx, dtype, v, h, r);
      const n = 17;
      const ids = randInt(n, r, 0, v);
      const tids = ctx.upload(ids, [n], 'i32', 'ids');
      const out = poisoned(ctx, [n, h], 'out');
      const outChunked = poisoned(ctx, [n, h], 'outChunked');
      const batch = ctx.batch();
      embeddingForward(batch, { out, ids: tids, table: whole });
      // Chunks are their own tensors, uploaded from the same values re-encoded row range by row range.
      const chunks: { t: ReturnType<typeof weight>['t']; start: number }[] = [];
      for (const [start, rows] of [
        [0, 7],
        [7, 1],
        [8, 15],
      ] as const) {
        const t = ctx.upload(values.subarray(start * h, (start + rows) * h), [rows, h], dtype, `chunk ${start}`);
        chunks.push({ t, start });
        embeddingForward(batch, { out: outChunked, ids: tids, table: t, rowStart: start });
      }
      batch.submit();
      const want = embeddingForwardRef(values, ids, h);
      // The kernel decodes in f32 (one rounding of d·sc·q − dmin·m); the reference in float64.
      expect(relError(await ctx.read(out), want), `seed ${seed}`).toBeLessThan(1e-6);
      // Re-encoding decoded blocks may move a value by rounding; ctx.read of each chunk is the truth.
      const wantChunked = new Float64Array(n * h);
      const decoded = await Promise.all(chunks.map((c) => ctx.read(c.t)));
      for (let t = 0; t < n; t++) {
        const c = chunks.findLastIndex((x) => x.start <= ids[t]!);
        const row = ids[t]! - chunks[c]!.start;
        wantChunked.set(decoded[c]!.subarray(row * h, (row + 1) * h), t * h);
      }
      expect(maxAbsError(await ctx.read(outChunked), wantChunked), `seed ${seed}`).toBe(0); // the same kernel decode, chunk by chunk
      for (const t of [whole, tids, out, outChunked, ...chunks.map((c) => c.t)]) t.release();
    });
});
