// The classroom load bench runs and reports its three rows (its own checks: every byte to every
// student, every request answered, the upstream asked once per item).
import { describe, expect, it } from 'vitest';
import { classroomBench, measureClassroom } from './classroom';
import type { BenchContext } from './harness';

describe('classroom bench', () => {
  it('30 students download and collect at once: MB/s, requests/s, p95', async () => {
    const logs: string[] = [];
    const rows = await classroomBench.run({ log: (m: string) => logs.push(m) } as unknown as BenchContext);
    expect(rows.map((r) => [r.name, r.unit])).toEqual([
      ['classroom.mirror', 'MB/s'],
      ['classroom.proxy', 'requests/s'],
      ['classroom.proxy.p95', 'ms'],
    ]);
    for (const r of rows) expect(r.ours).toBeGreaterThan(0);
    expect(logs[0]).toMatch(/20 upstream calls/);
  }, 90_000);

  it('fails rather than report when the run overruns its time limit', async () => {
    await expect(measureClassroom({ students: 3, prompts: 3, limitMs: 1 })).rejects.toThrow();
  });
});
