import { describe, expect, it } from 'vitest';
import { estimatePromptTokens, estimateTokens, findLongPrompts, type LengthLimit } from './prompt-length';

describe('prompt lengths', () => {
  it('estimates tokens on the long side of English text (bytes / 3.5)', () => {
    const text = 'the quick brown fox jumps over the lazy dog and then runs far away '.repeat(270); // 18,090 characters
    expect(estimateTokens(text)).toBe(Math.ceil(18_090 / 3.5));
    // Llama 3 encodes this text in about 3,800 tokens: the estimate errs long.
    expect(estimateTokens(text)).toBeGreaterThan(3800);
    expect(estimateTokens('été')).toBe(2); // 5 bytes
    expect(estimatePromptTokens({ text: 'abcdefg', system: 'abc' })).toBe(Math.ceil(11 / 3.5));
  });

  it('names the limit each long prompt exceeds that matters most (a context before a budget), longest first', () => {
    const limits: LengthLimit[] = [
      { tokens: 131_072, what: 'the context of the loaded model', hard: true },
      { tokens: 2048, what: 'the long-prompt limit', hard: false },
      { tokens: 8192, what: "the reward model's context", hard: true },
      { tokens: 0, what: 'unknown', hard: true },
    ];
    const len: Record<string, number> = { a: 100, b: 5000, c: 10_000, d: 2048, e: 200_000 };
    const long = findLongPrompts(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id })), (id) => len[id]!, limits);
    expect(long.map((l) => [l.id, l.tokens, l.over.what])).toEqual([
      ['e', 200_000, "the reward model's context"],
      ['c', 10_000, "the reward model's context"],
      ['b', 5000, 'the long-prompt limit'],
    ]);
    // Without the budget, the contexts decide.
    const hard = findLongPrompts(['b', 'c', 'e'].map((id) => ({ id })), (id) => len[id]!, limits.filter((l) => l.hard));
    expect(hard.map((l) => [l.id, l.over.what])).toEqual([
      ['e', "the reward model's context"],
      ['c', "the reward model's context"],
    ]);
    expect(findLongPrompts([{ id: 'a' }], () => 1e9, [])).toEqual([]);
  });
});
