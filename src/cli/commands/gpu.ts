// fuse-studio gpu: the WebGPU adapter (vendor, features, limits) as JSON.
import { createNodeContext } from '../../gpu/node';
import type { GPU_OPTIONS } from '../commands';
import type { Parsed } from './args';

export async function run(_: Parsed<typeof GPU_OPTIONS>): Promise<number> {
  const ctx = await createNodeContext();
  console.log(JSON.stringify(ctx.adapter, null, 2));
  ctx.destroy();
  return 0;
}
