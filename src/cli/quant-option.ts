// `--quant none|int8|int4` (generate, logprobs, train, serve, eval, plan) as the loader takes it.
import type { QuantDType } from '../gpu/quant';
import { UsageError } from './commands/args';

/** null: keep the base in its file's float dtype. */
export function parseQuant(value: string | undefined): QuantDType | null {
  if (value === undefined || value === 'none') return null;
  if (value === 'int8' || value === 'int4') return value;
  throw new UsageError(`--quant: "${value}" is not none, int8 or int4`);
}
