// The adapter store on a real IndexedDB implementation (fake-indexeddb): adapters are never
// overwritten, each knows what it continues, and a deleted parent shows.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { LORA_TARGETS } from '../../model/lora';
import type { HostAdapter } from '../../train/peft';
import { runAdapterName } from '../trainConfig';
import { AdapterExistsError, listAdapters, loadAdapter, removeAdapter, saveAdapter } from './adapter-store';
import { parseModelConfig } from '../../model/config';
import { demoConfigJson } from '../../model/demo';
import { targetDims } from '../../model/lora';

const config = parseModelConfig(JSON.parse(demoConfigJson()));

function adapter(seed: number): HostAdapter {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5);
  return {
    rank: 2,
    alpha: 4,
    targets: [...LORA_TARGETS],
    layers: Array.from({ length: config.numLayers }, () =>
      Object.fromEntries(
        LORA_TARGETS.map((t) => {
          const [inF, outF] = targetDims(config, t);
          return [t, { a: Float32Array.from({ length: 2 * inF }, rand), b: Float32Array.from({ length: outF * 2 }, rand) }];
        }),
      ),
    ),
  };
}

describe('adapter store', () => {
  it('keeps every SFT run: a second one gets a new name and the first stays as it was', async () => {
    const model = `m-${Math.random()}`;
    const first = adapter(1);
    const name1 = runAdapterName('sft', null, await listAdapters(model));
    expect(name1).toBe('sft');
    await saveAdapter(model, name1, first, 'SFT, 4 of 4 steps', { kind: 'sft' });
    // Saving under a stored name is refused, whatever made it.
    await expect(saveAdapter(model, 'sft', adapter(2), 'SFT again', { kind: 'sft' })).rejects.toThrow(AdapterExistsError);
    const name2 = runAdapterName('sft', null, await listAdapters(model));
    expect(name2).toBe('sft-2');
    await saveAdapter(model, name2, adapter(2), 'SFT, 2 of 2 steps', { kind: 'sft' });
    const list = await listAdapters(model);
    expect(list.map((a) => [a.name, a.kind])).toEqual([
      ['sft', 'sft'],
      ['sft-2', 'sft'],
    ]);
    const back = await loadAdapter(model, 'sft', config);
    expect(Array.from(back!.layers[0]!.q_proj!.a)).toEqual(Array.from(first.layers[0]!.q_proj!.a));
  });

  it('a DPO adapter names and records what it continues; deleting that shows, and its name is not reused', async () => {
    const model = `m-${Math.random()}`;
    await saveAdapter(model, 'sft', adapter(1), 'SFT', { kind: 'sft' });
    await saveAdapter(model, 'sft-2', adapter(2), 'SFT', { kind: 'sft' });
    const sft2 = (await listAdapters(model)).find((a) => a.name === 'sft-2')!;
    const dpoName = runAdapterName('dpo', 'sft-2', await listAdapters(model));
    expect(dpoName).toBe('sft-2+dpo');
    await saveAdapter(model, dpoName, adapter(3), 'DPO (ln-dpo) continuing "sft-2"', { kind: 'dpo', parent: { name: 'sft-2', id: sft2.id } });
    let dpo = (await listAdapters(model)).find((a) => a.name === 'sft-2+dpo')!;
    expect(dpo).toMatchObject({ kind: 'dpo', parent: 'sft-2', parentGone: false });

    await removeAdapter(model, 'sft-2');
    dpo = (await listAdapters(model)).find((a) => a.name === 'sft-2+dpo')!;
    expect(dpo).toMatchObject({ parent: 'sft-2', parentGone: true });
    // A later SFT run does not take the name "sft-2+dpo" says it continues.
    expect(runAdapterName('sft', null, await listAdapters(model))).toBe('sft-3');
  });

  it('reads what made an adapter stored before kinds were kept from its note', async () => {
    const model = `m-${Math.random()}`;
    // Rows as the studio stored them before: no id, kind or parent.
    const { default: Dexie } = await import('dexie');
    const db = new Dexie('fuse-studio-adapters');
    db.version(1).stores({ adapters: '[modelKey+name], modelKey' });
    await saveAdapter(model, 'tmp', adapter(1), '', { kind: 'sft' });
    const files = (await db.table('adapters').get([model, 'tmp'])).files as Record<string, Uint8Array>;
    await removeAdapter(model, 'tmp');
    await db.table('adapters').put({ modelKey: model, name: 'sft+dpo', files, createdAt: '2025-01-02T00:00:00.000Z', note: 'DPO (ln-dpo) continuing "sft", 2 of 2 steps' });
    db.close();
    const [old] = await listAdapters(model);
    expect(old).toMatchObject({ name: 'sft+dpo', kind: 'dpo', parent: 'sft', parentGone: true, id: 'sft+dpo@2025-01-02T00:00:00.000Z' });
  });
});
