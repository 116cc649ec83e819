// fuse-studio selftest: every kernel on random inputs against its float64 reference.
import { runSelfTest } from '../../engine/selftest';
import { createNodeContext } from '../../gpu/node';
import type { SELFTEST_OPTIONS } from '../commands';
import { intOption, type Parsed } from './args';

export async function run({ values }: Parsed<typeof SELFTEST_OPTIONS>): Promise<number> {
  const seed = intOption('seed', values.seed);
  const ctx = await createNodeContext();
  const results = await runSelfTest(ctx, undefined, seed === undefined ? {} : { seed });
  console.log(`adapter: ${ctx.adapter.description}${ctx.adapter.isFallback ? ' (CPU fallback)' : ''}`);
  console.log(`seed: ${results[0]?.seed ?? '-'} (replay with --seed)`);
  console.table(
    results.map((r) => ({
      op: r.name,
      'rel error': r.relError,
      bound: r.bound,
      result: r.skipped ? `skipped (${r.skipped})` : r.pass ? 'pass' : `FAIL${r.error ? `: ${r.error}` : ''}`,
      ms: Math.round(r.ms),
    })),
  );
  ctx.destroy();
  return results.every((r) => r.pass) ? 0 : 1;
}
