// What an adapter continues ("sft+dpo" continuing "sft"), and whether that adapter is still stored:
// a name never claims a parent that is gone without saying so.

import type { AdapterInfo } from '../worker/adapter-store';

export function Lineage({ adapter }: { adapter: Pick<AdapterInfo, 'parent' | 'parentGone'> }) {
  if (!adapter.parent) return null;
  return (
    <span className={adapter.parentGone ? 'lineage lineage--gone' : 'lineage'} data-testid="lineage">
      {' '}
      · continues “{adapter.parent}”{adapter.parentGone ? ' (no longer stored here)' : ''}
    </span>
  );
}
