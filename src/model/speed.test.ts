import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { measureDeviceSpeed } from './speed';

describe('the device speed probe', () => {
  it('times the engine matmul at decode- and prefill-shaped rows, after checking its output, and frees what it allocated', async () => {
    const gpu = await testContext();
    const live = gpu.pool.stats().liveBytes;
    const s = await measureDeviceSpeed(gpu, { reps: 2, probe: { decodeRows: 3, prefillRows: 33, k: 200, n: 136 } });
    expect(s).toMatchObject({ decodeRows: 3, prefillRows: 33, shape: [200, 136] });
    for (const g of [s.decodeGflops, s.prefillGflops]) {
      expect(Number.isFinite(g)).toBe(true);
      expect(g).toBeGreaterThan(0);
    }
    expect(gpu.pool.stats().liveBytes).toBe(live);
  });

  it('stops when aborted', async () => {
    const gpu = await testContext();
    await expect(measureDeviceSpeed(gpu, { signal: AbortSignal.abort(), probe: { k: 64, n: 64 } })).rejects.toThrow(/abort/i);
  });
});
