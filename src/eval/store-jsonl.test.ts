import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resultKey, type SftResult } from './store';
import { JsonlEvalStore } from './store-jsonl';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const sft = (model: string, itemId: string, logprobSum: number): SftResult => ({ key: resultKey('sft', model, itemId), kind: 'sft', model, itemId, logprobSum, nTokens: 3 });

describe('JsonlEvalStore', () => {
  it('keeps results and settings across reopening; the latest line of a key counts; a torn last line is cut off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'eval-store-'));
    dirs.push(dir);
    expect(await JsonlEvalStore.exists(dir)).toBe(false);
    const s = await JsonlEvalStore.open(dir);
    expect(await s.readRun()).toBeNull();
    await s.writeRun({ itemsHash: 'abc', decoding: { maxNewTokens: 8 }, models: [{ name: 'base', id: '' }] });
    await Promise.all([s.put(sft('base', 's1', -1)), s.put(sft('base', 's2', -2)), s.put(sft('sft', 's1', -0.5))]);
    await s.put(sft('base', 's1', -1.5));
    await s.close();
    await expect(s.put(sft('base', 's3', 0))).rejects.toThrow(/closed/);
    // A process killed mid-write.
    await appendFile(join(dir, JsonlEvalStore.RESULTS), '{"key":"sft\\u0000base\\u0000s9","kind":"sf');

    expect(await JsonlEvalStore.exists(dir)).toBe(true);
    const again = await JsonlEvalStore.open(dir);
    expect(again.recovery.tornTail).toBe(true);
    expect(await again.readRun()).toEqual({ itemsHash: 'abc', decoding: { maxNewTokens: 8 }, models: [{ name: 'base', id: '' }] });
    const list = await again.list();
    expect(list.map((r) => [r.model, r.itemId, (r as SftResult).logprobSum]).sort()).toEqual([
      ['base', 's1', -1.5],
      ['base', 's2', -2],
      ['sft', 's1', -0.5],
    ]);
    await again.close();
    expect(await readFile(join(dir, `${JsonlEvalStore.RESULTS}.torn`), 'utf8')).toMatch(/"kind":"sf/);
  });
});
