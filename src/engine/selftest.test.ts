import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { proveKernelPaths, runSelfTest, SELF_TEST_CASES, type SelfTestCase, type SelfTestProgress } from './selftest';
import { isProven } from './proven';
import { testContext } from './testing/gpu';
import { freshSeed } from './testing/random';

describe('GPU self-test', () => {
  it('passes every case within its stated bound', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const progress: SelfTestProgress[] = [];
    const results = await runSelfTest(ctx, (p) => progress.push(p), { seed });
    expect(results.map((r) => r.name)).toEqual(SELF_TEST_CASES.map((c) => c.name));
    for (const r of results) {
      expect(r.error, `${r.name} (seed ${seed})`).toBeUndefined();
      expect(r.pass, `${r.name}: rel err ${r.relError} > ${r.bound} (seed ${seed})`).toBe(true);
      expect(r.ms).toBeGreaterThanOrEqual(0);
      expect(r.seed).toBe(seed);
    }
    // One report before each case and one at the end.
    expect(progress.map((p) => p.running)).toEqual([...SELF_TEST_CASES.map((c) => c.name), null]);
    expect(progress.at(-1)?.done).toBe(SELF_TEST_CASES.length);
  });

  it('reports a failing or throwing case without stopping the run, and releases its tensors', async () => {
    const ctx = await testContext();
    const before = ctx.pool.stats().liveBytes;
    const cases: SelfTestCase[] = [
      {
        name: 'throws',
        run: async (_ctx, t) => {
          t.upload(t.randn(10), [10], 'x');
          throw new Error('boom');
        },
      },
      { name: 'misses its bound', run: async () => ({ relError: 0.5, bound: 1e-6 }) },
      { name: 'returns NaN', run: async () => ({ relError: NaN, bound: 1 }) },
      {
        name: 'ok',
        run: async (_ctx, t) => {
          const x = t.randn(5);
          return { relError: Math.abs(x[0]! - x[0]!), bound: 0 };
        },
      },
    ];
    const results = await runSelfTest(ctx, undefined, { cases, seed: 1 });
    expect(results.map((r) => r.pass)).toEqual([false, false, false, true]);
    expect(results[0]!.error).toMatch(/boom/);
    expect(ctx.pool.stats().liveBytes).toBe(before);
  });

  it('a passing case marks the path it proves; a failing one does not; proveKernelPaths runs only unproven proving cases', async () => {
    const ctx = await testContext();
    let runs = 0;
    const cases: SelfTestCase[] = [
      { name: 'proves a', proves: () => 'test.a', run: async () => (runs++, { relError: 0, bound: 1e-6 }) },
      { name: 'fails b', proves: () => 'test.b', run: async () => (runs++, { relError: 1, bound: 1e-6 }) },
      { name: 'proves nothing here', proves: () => null, run: async () => (runs++, { relError: 0, bound: 1e-6 }) },
    ];
    const results = await runSelfTest(ctx, undefined, { cases, seed: 2 });
    expect(results.map((r) => r.proved)).toEqual(['test.a', undefined, undefined]);
    expect([isProven(ctx, 'test.a'), isProven(ctx, 'test.b')]).toEqual([true, false]);
    runs = 0;
    const again = await proveKernelPaths(ctx, { cases, seed: 3 });
    expect(again.map((r) => r.name)).toEqual(['fails b']);
    expect(runs).toBe(1);
    // On this CPU adapter the real cases prove nothing, so model loading runs none of them.
    expect(SELF_TEST_CASES.filter((c) => c.proves).length).toBeGreaterThanOrEqual(2);
    expect(await proveKernelPaths(ctx)).toEqual([]);
  });

  it('draws the same inputs for the same seed', async () => {
    const ctx = await testContext();
    const draws: number[][] = [];
    const cases: SelfTestCase[] = [
      {
        name: 'draw',
        run: async (_ctx, t) => {
          draws.push([...t.randn(3)]);
          return { relError: 0, bound: 0 };
        },
      },
    ];
    await runSelfTest(ctx, undefined, { cases, seed: 42 });
    await runSelfTest(ctx, undefined, { cases, seed: 42 });
    expect(draws[0]).toEqual(draws[1]);
  });

  it('skips a case the device cannot run (missing feature): reported with its reason, not run, proves nothing', async () => {
    const ctx = await testContext();
    let runs = 0;
    const cases: SelfTestCase[] = [
      {
        name: 'needs a feature',
        skip: () => 'not available: adapter lacks test-feature',
        proves: () => 'test.skipped',
        run: async () => (runs++, { relError: 0, bound: 1e-6 }),
      },
    ];
    const [r] = await runSelfTest(ctx, undefined, { cases, seed: 4 });
    expect(runs).toBe(0);
    expect(r).toMatchObject({ pass: true, skipped: 'not available: adapter lacks test-feature' });
    expect(r!.proved).toBeUndefined();
    expect(isProven(ctx, 'test.skipped')).toBe(false);
    expect(await proveKernelPaths(ctx, { cases })).toEqual([]);
  });

  it('has uniquely named cases (names seed the cases and key the result rows)', () => {
    const names = SELF_TEST_CASES.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('stays browser-safe: the runner and its cases import nothing Node-only', () => {
    const dir = new URL('./selftest-cases/', import.meta.url);
    const files = [new URL('./selftest.ts', import.meta.url), ...readdirSync(dir).map((f) => new URL(f, dir))];
    for (const file of files) {
      const src = readFileSync(file, 'utf8').replace(/\/\/.*$/gm, ''); // code only, not comments
      const imports = [...src.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      const nodeOnly = imports.filter((i) => i.startsWith('node:') || /testing\/gpu$|gpu\/node$|^(fs|path|os|url|child_process)$/.test(i));
      expect(nodeOnly, file.pathname).toEqual([]);
      expect(src, file.pathname).not.toMatch(/\bprocess\.|freshSeed\(/);
    }
  });
});
