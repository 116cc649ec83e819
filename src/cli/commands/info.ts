// fuse-studio info: the WebGPU adapter the engine would use, its features and limits, as text
// (--json: the same object `fuse-studio gpu` prints).
import { createNodeContext } from '../../gpu/node';
import type { INFO_OPTIONS } from '../commands';
import type { Parsed } from './args';

export async function run({ values }: Parsed<typeof INFO_OPTIONS>): Promise<number> {
  const ctx = await createNodeContext();
  try {
    const a = ctx.adapter;
    if (values.json) {
      console.log(JSON.stringify(a, null, 2));
      return 0;
    }
    console.log(`adapter:      ${a.description}${a.isFallback ? ' (CPU fallback: slow, for tests and small models)' : ''}`);
    console.log(`vendor:       ${a.vendor || '-'}`);
    console.log(`architecture: ${a.architecture || '-'}`);
    console.log(`device:       ${a.device || '-'}`);
    console.log(`features:     ${a.features.length ? a.features.join(', ') : '(none)'}`);
    console.log('limits:');
    const width = Math.max(...Object.keys(a.limits).map((k) => k.length));
    for (const k of Object.keys(a.limits).sort()) console.log(`  ${k.padEnd(width)}  ${a.limits[k]}`);
    return 0;
  } finally {
    ctx.destroy();
  }
}
