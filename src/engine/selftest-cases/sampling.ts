// Self-test case: greedy token choice on the GPU (argmax per row, lowest index among ties).
import { argmaxRowsRef } from '../reference/sampling';
import { argmaxRows } from '../sampling';
import type { SelfTestCase } from '../selftest';
import { draw, exact } from './common';

const ROWS = 3;
const COLS = 1001;

export const SAMPLING_CASES: readonly SelfTestCase[] = [
  {
    name: 'sampling argmax',
    run: async (ctx, t) => {
      const x = draw(t, ROWS * COLS, 'f32', 3);
      // A tie with each row's maximum, earlier in the row than the original.
      for (let r = 0; r < ROWS; r++) {
        const m = argmaxRowsRef(x.subarray(r * COLS, (r + 1) * COLS), 1, COLS)[0]!;
        x[r * COLS + Math.floor(t.next() * (m + 1))] = x[r * COLS + m]!;
      }
      const ids = t.poisoned([ROWS], 'ids', 'i32');
      const batch = ctx.batch('selftest sampling argmax');
      argmaxRows(batch, { logits: t.upload(x, [ROWS, COLS], 'logits'), ids, rows: ROWS, cols: COLS });
      batch.submit();
      return { relError: exact(await t.read(ids), argmaxRowsRef(x, ROWS, COLS)), bound: 0 };
    },
  },
];
