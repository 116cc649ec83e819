// fuse-studio demo-model: write the built-in demo model folder.
import type { DemoDType } from '../../model/demo';
import { FAMILIES, type FamilyName } from '../../model/families';
import { writeDemoModel } from '../../model/demo-node';
import type { DEMO_MODEL_OPTIONS } from '../commands';
import { intOption, UsageError, type Parsed } from './args';

export async function run({ values }: Parsed<typeof DEMO_MODEL_OPTIONS>): Promise<number> {
  if (!values.out) throw new UsageError('demo-model: --out DIR is required');
  const shards = intOption('shards', values.shards);
  if (shards !== undefined && shards < 1) throw new UsageError(`--shards: must be at least 1, got ${shards}`);
  const dtype = values.dtype;
  if (dtype !== undefined && !['bf16', 'f16', 'f32'].includes(dtype)) throw new UsageError(`--dtype: "${dtype}" is not bf16, f16 or f32`);
  const family = values.family;
  if (family !== undefined && !(family in FAMILIES)) throw new UsageError(`--family: "${family}" is not one of ${Object.keys(FAMILIES).join(', ')}`);
  const files = await writeDemoModel(values.out, {
    family: family as FamilyName | undefined,
    shards,
    seed: intOption('seed', values.seed),
    dtype: dtype as DemoDType | undefined,
  });
  for (const f of files) console.log(`${String(f.bytes).padStart(10)}  ${f.name}`);
  console.log(`wrote the demo model to ${values.out}`);
  return 0;
}
