// Self-test cases: a linear layer's bias (Qwen2's frozen q/k/v biases are bf16) and its row sum.
import { biasBackward, biasForward } from '../bias';
import { biasBackwardRef, biasForwardRef } from '../reference/bias';
import type { SelfTestCase } from '../selftest';
import { draw, rel, worst } from './common';

export const BIAS_CASES: readonly SelfTestCase[] = [
  {
    name: 'bias forward (bf16) + backward',
    run: async (ctx, t) => {
      const [n, cols] = [37, 131];
      const y0 = t.randn(n * cols);
      const b = draw(t, cols, 'bf16');
      const y = t.upload(y0, [n, cols], 'y');
      const db = t.poisoned([cols], 'db');
      const batch = ctx.batch('selftest bias');
      biasForward(batch, y, t.upload(b, [cols], 'b', 'bf16'));
      biasBackward(batch, db, t.upload(y0, [n, cols], 'dy'));
      batch.submit();
      return worst(rel(await t.read(y), biasForwardRef(y0, b), 1e-6), rel(await t.read(db), biasBackwardRef(y0, cols), 1e-5));
    },
  },
];
