import { IDBKeyRange, indexedDB } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { DexieEvalStore, EvalResultsDB } from './store-dexie';
import { resultKey, type AnswerResult, type EvalRunMeta } from './store';

const answer = (model: string, itemId: string, text: string): AnswerResult => ({
  key: resultKey('answer', model, itemId),
  kind: 'answer',
  model,
  itemId,
  text,
  nTokens: 3,
  finishReason: 'length',
  check: { type: 'math', correct: text === '4', extracted: text, detail: '' },
});

describe('DexieEvalStore', () => {
  it('keeps each evaluation’s results and settings apart, across a reopen, the latest of a key winning', async () => {
    const name = `eval-test-${Math.random()}`;
    const db = new EvalResultsDB(name, { indexedDB, IDBKeyRange });
    const a = new DexieEvalStore('e1', db);
    const b = new DexieEvalStore('e2', db);
    expect(await a.readRun()).toBeNull();
    const meta: EvalRunMeta = { itemsHash: 'abc', decoding: { maxNewTokens: 4 }, models: [{ name: 'base', id: '' }] };
    await a.writeRun(meta);
    await a.put(answer('base', 'p1', '5'));
    await a.put(answer('base', 'p1', '4'));
    await a.put(answer('sft', 'p1', '4'));
    await b.put(answer('base', 'p9', 'x'));
    db.close();

    const again = new EvalResultsDB(name, { indexedDB, IDBKeyRange });
    const a2 = new DexieEvalStore('e1', again);
    expect(await a2.readRun()).toEqual(meta);
    const list = (await a2.list()) as AnswerResult[];
    expect(list.map((r) => [r.model, r.text]).sort()).toEqual([['base', '4'], ['sft', '4']]);
    expect(await a2.count()).toBe(2);
    await a2.clear();
    expect(await a2.list()).toEqual([]);
    expect(await a2.readRun()).toBeNull();
    expect(await new DexieEvalStore('e2', again).count()).toBe(1);
    again.close();
  });
});
