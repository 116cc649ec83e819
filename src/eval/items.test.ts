import { describe, expect, it } from 'vitest';
import { EvalItemsError, flagTrainingDuplicates, parseEvalItems, trainingPrompts, type ChoiceItem, type DpoItem, type PromptItem, type SftItem } from './items';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const lines = (...rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

const GOOD = lines(
  { prompt: 'What is 2 + 3?', domain: 'math', gold: '5' },
  { prompt: 'Write add(a, b).', domain: 'code', tests: ['assert add(1, 2) == 3'] },
  { prompt: 'Say hi.' },
  { messages: [{ role: 'user', content: 'Name a colour.' }, { role: 'assistant', content: 'Blue.' }] },
  { prompt: 'Pick a fruit.', chosen: 'Apple.', rejected: 'Rock.' },
  { prompt: 'Which is a prime?', choices: ['4', '7', '9'], answer: 1 },
);

describe('eval items', () => {
  it('classifies each row kind and keeps what it needs', async () => {
    const set = await parseEvalItems(GOOD);
    expect(set.items.map((i) => i.kind)).toEqual(['prompt', 'prompt', 'prompt', 'sft', 'dpo', 'choice']);
    expect(set.items.map((i) => i.line)).toEqual([1, 2, 3, 4, 5, 6]);
    const [math, code, instr] = set.items as PromptItem[];
    expect(math!.prompt).toMatchObject({ text: 'What is 2 + 3?', domain: 'math', gold: '5' });
    expect(code!.prompt).toMatchObject({ domain: 'code', tests: ['assert add(1, 2) == 3'] });
    expect(instr!.prompt.domain).toBe('instruction');
    expect((set.items[3] as SftItem).record.kind).toBe('sft-messages');
    expect((set.items[4] as DpoItem).record).toMatchObject({ kind: 'dpo-text', prompt: 'Pick a fruit.', chosen: 'Apple.' });
    expect(set.items[5] as ChoiceItem).toMatchObject({ prompt: 'Which is a prime?', choices: ['4', '7', '9'], answer: 1 });
    // Ids are unique and stable; the hash is sha256 (64 hex digits).
    expect(new Set(set.items.map((i) => i.id)).size).toBe(6);
    expect(set.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hashes the content: the same set (keys reordered, blank lines) hashes the same; any change changes it', async () => {
    const a = await parseEvalItems(GOOD);
    const reordered = GOOD.replace('{"prompt":"Which is a prime?","choices":["4","7","9"],"answer":1}', '{"answer":1,"choices":["4","7","9"],"prompt":"Which is a prime?"}');
    expect(reordered).not.toBe(GOOD);
    const b = await parseEvalItems('\n' + reordered);
    expect(b.hash).toBe(a.hash);
    expect(b.items.map((i) => i.id)).toEqual(a.items.map((i) => i.id));
    const c = await parseEvalItems(GOOD.replace('"gold":"5"', '"gold":"6"'));
    expect(c.hash).not.toBe(a.hash);
  });

  it('names every bad line with what to write instead', async () => {
    const text = lines(
      { prompt: 'What is 2 + 3?', domain: 'math', gold: '5' },
      '{"prompt": "unclosed"',
      { prompt: 'Which?', choices: ['only one'], answer: 0 },
      { prompt: 'Which?', choices: ['a', 'b'], answer: 2 },
      { prompt: 'What is 9 - 1?', domain: 'math' },
      { foo: 'bar' },
      { prompt: 'What is 2 + 3?', domain: 'math', gold: '5' },
      { prompt: 'p', chosen: 'same', rejected: 'same' },
    );
    const err = await parseEvalItems(text, 'eval.jsonl').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EvalItemsError);
    const e = err as EvalItemsError;
    expect(e.errors.map((x) => x.line)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    const msg = (line: number) => e.errors.find((x) => x.line === line)!.message;
    expect(msg(2)).toMatch(/invalid JSON/);
    expect(msg(3)).toMatch(/"choices" must list at least 2 options \(got 1\)/);
    expect(msg(4)).toMatch(/"answer" must be the index of the right choice, an integer from 0 to 1 \(got 2\)/);
    expect(msg(5)).toMatch(/math prompt without a gold answer/);
    expect(msg(6)).toMatch(/not an eval row \(its keys: foo\); write a prompt row .* or a multiple-choice row/);
    expect(msg(7)).toMatch(/repeats the item of line 1/);
    expect(msg(8)).toMatch(/DPO record: chosen and rejected are identical/);
    expect(e.message).toMatch(/^eval\.jsonl: 7 bad lines:\n {2}line 2: invalid JSON/);
  });

  it('a multiple-choice row keeps its own "id"; two rows with one id are named', async () => {
    const set = await parseEvalItems(lines({ id: 'q1', prompt: 'Which?', choices: ['a', 'b'], answer: 0 }));
    expect(set.items[0]!.id).toBe('q1');
    await expect(parseEvalItems(lines({ id: 'q1', prompt: 'Which?', choices: ['a', 'b'], answer: 0 }, { id: 'q1', prompt: 'Other?', choices: ['a', 'b'], answer: 1 }))).rejects.toThrow(
      /line 2: repeats the item of line 1 \(id q1\)/,
    );
  });

    it('an empty file says what rows to write', async () => {
    await expect(parseEvalItems('\n\n', 'e.jsonl')).rejects.toThrow(/e\.jsonl: 1 bad line:\n {2}line 0: no items: write a prompt row/);
  });

  it('flags eval prompts that repeat training prompts (case and spacing ignored, system turn counted)', async () => {
    const set = await parseEvalItems(GOOD);
    const train = trainingPrompts([
      { kind: 'sft-messages', messages: [{ role: 'user', content: 'what is  2 + 3?' }, { role: 'assistant', content: '5' }] },
      { kind: 'dpo-text', prompt: 'Pick a fruit.', chosen: 'x', rejected: 'y' },
      { kind: 'sft-messages', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi' }] },
      { kind: 'sft-tokens', inputIds: [1, 2], labels: [1, 2] },
    ]);
    expect(train).toHaveLength(3);
    const flagged = flagTrainingDuplicates(set.items, train);
    // "Say hi." with a system turn is another prompt than the eval's bare "Say hi.".
    expect(flagged.map((f) => [f.line, f.text])).toEqual([
      [1, 'What is 2 + 3?'],
      [5, 'Pick a fruit.'],
    ]);
  });

  it('the built-in multiple-choice example parses as multiple-choice rows', async () => {
    const path = fileURLToPath(new URL('./example-choices.jsonl', import.meta.url));
    const set = await parseEvalItems(readFileSync(path, 'utf8'), path);
    expect(set.items.length).toBeGreaterThanOrEqual(5);
    expect(set.items.every((i) => i.kind === 'choice')).toBe(true);
  });
});
