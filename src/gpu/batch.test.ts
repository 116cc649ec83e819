// Bind groups are cached by pipeline and exact bindings: a later batch over the same buffers
// reuses the group (and still sees its own uniform values), other bindings get their own.
import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { BindGroupCache } from './batch';
import { u32Params } from './params';

const WRITE = `
struct P { value: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn write() { out[0] = p.value; }`;
const kernel = { name: 'bind-group-cache-test', code: WRITE, entryPoint: 'write' };

describe('bind group cache', () => {
  it('reuses a bind group for the same bindings across batches, with each batch its own uniform values', async () => {
    const ctx = await testContext();
    const a = ctx.tensor([4], 'u32', 'a');
    const b = ctx.tensor([4], 'u32', 'b');
    try {
      const run = async (t: typeof a, value: number) => {
        const before = ctx.counters.bindGroups;
        const batch = ctx.batch();
        batch.dispatch({ kernel, params: u32Params(value), buffers: [t], groups: [1] });
        batch.submit();
        expect((await ctx.read(t))[0]).toBe(value);
        return ctx.counters.bindGroups - before;
      };
      await run(a, 11); // may create (arena or buffer not seen before)
      expect(await run(a, 12)).toBe(0); // same arena buffer and offset, same tensor: reused
      expect(await run(a, 13)).toBe(0);
      expect(await run(b, 14)).toBe(1); // another buffer: its own group
      expect(await run(b, 15)).toBe(0);
      expect(await run(a, 16)).toBe(0);
    } finally {
      a.release();
      b.release();
    }
  });

  it('clears itself at its size limit and keeps working', async () => {
    const ctx = await testContext();
    const cache = new BindGroupCache(2);
    const pipeline = ctx.kernels.pipeline(kernel);
    const bufs = [0, 1, 2].map((i) => ctx.tensor([4], 'u32', `t${i}`));
    try {
      // The cache never looks inside a group: a stand-in object is enough to count creations.
      const make = (i: number) => cache.get(pipeline, [{ binding: 1, resource: { buffer: bufs[i]!.buffer } }], () => ({ label: `g${i}` }) as GPUBindGroup);
      expect(make(0).created).toBe(true);
      expect(make(0).created).toBe(false);
      expect(make(1).created).toBe(true);
      expect(make(2).created).toBe(true); // over the limit: cleared, then added
      expect(make(0).created).toBe(true);
      expect(make(2).created).toBe(false);
    } finally {
      for (const t of bufs) t.release();
    }
  });
});
