import { afterAll, describe, expect, it } from 'vitest';
import { importPromptRows } from './prompts';
import { NodeSandbox } from './sandbox-node';
import STARTER from './starter-prompts.json';
import { verifyMath } from './verify-math';
import { detectTestLanguage, verifyCode } from './verify-code';

// The bundled starter prompts of the "Fusion with no API key" recipe: they import as prompts of the
// three verifiable kinds, every math gold is the right answer, and every code prompt's tests pass
// for a correct solution (and fail for a wrong one) in the sandbox the pipeline uses.

const sandbox = new NodeSandbox();
afterAll(() => sandbox.dispose());

const SOLUTIONS: Record<string, string> = {
  'starter-code-01': "function reverseWords(s) { return s.split(/\\s+/).filter(Boolean).reverse().join(' '); }",
  'starter-code-02': "function isPalindrome(s) { const t = s.toLowerCase().replace(/[^a-z]/g, ''); return t === [...t].reverse().join(''); }",
  'starter-code-03': "function fizzBuzz(n) { return Array.from({ length: n }, (_, k) => { const i = k + 1; return i % 15 === 0 ? 'FizzBuzz' : i % 3 === 0 ? 'Fizz' : i % 5 === 0 ? 'Buzz' : String(i); }); }",
  'starter-code-04': 'function sumOfSquares(xs) { return xs.reduce((a, x) => a + x * x, 0); }',
  'starter-code-05': 'function countVowels(s) { return (s.match(/[aeiou]/gi) ?? []).length; }',
  'starter-code-06': 'function fib(n) { let a = 0, b = 1; for (let i = 0; i < n; i++) [a, b] = [b, a + b]; return a; }',
  'starter-code-07': 'function unique(xs) { return [...new Set(xs)]; }',
  'starter-code-08': 'function maxSubarraySum(xs) { let best = xs[0], cur = 0; for (const x of xs) { cur = Math.max(x, cur + x); best = Math.max(best, cur); } return best; }',
};

// Each math prompt's answer, worked out here independently of the gold in the file.
const MATH: Record<string, number> = {
  'starter-math-01': 17 * 23,
  'starter-math-02': (24 / 3) * 2,
  'starter-math-03': (50 * 51) / 2,
  'starter-math-04': (38 + 7) / 5,
  'starter-math-05': 5 * (30 / 2 - 5),
  'starter-math-06': 2024 % 7,
  'starter-math-07': 180 / 2.5,
  'starter-math-08': [...Array(36).keys()].filter((d) => 36 % (d + 1) === 0).length,
  'starter-math-09': 0.15 * 240,
  'starter-math-10': (47 - 11) / 2,
};

const { prompts, errors } = importPromptRows(STARTER);

describe('starter prompts', () => {
  it('import as a few dozen instruction, math-with-gold and code-with-tests prompts', () => {
    expect(errors).toEqual([]);
    expect(prompts).toHaveLength(STARTER.length);
    const count = (d: string) => prompts.filter((p) => p.domain === d).length;
    expect([count('instruction'), count('math'), count('code')]).toEqual([12, 10, 8]);
    for (const p of prompts.filter((x) => x.domain === 'math')) expect(p.gold, p.id).toBeTruthy();
    for (const p of prompts.filter((x) => x.domain === 'code')) expect(detectTestLanguage(p.tests ?? []), p.id).toBe('javascript');
  });

  it('every math gold is the answer', () => {
    for (const p of prompts.filter((x) => x.domain === 'math')) {
      expect(Number(p.gold), p.id).toBe(MATH[p.id]);
      expect(verifyMath(`So the answer is \\boxed{${MATH[p.id]}}.`, p.gold!).correct, p.id).toBe(true);
    }
  });

  it('every code prompt has tests that a correct solution passes and a wrong one fails', async () => {
    for (const p of prompts.filter((x) => x.domain === 'code')) {
      const good = await verifyCode(sandbox, '```javascript\n' + SOLUTIONS[p.id] + '\n```', { language: 'javascript', tests: p.tests! }, { timeoutMs: 5000 });
      expect(good.status, `${p.id}: ${JSON.stringify(good)}`).toBe('pass');
      const name = /`(\w+)\(/.exec(p.text)![1]!;
      const bad = await verifyCode(sandbox, '```javascript\nfunction ' + name + '() { return 0; }\n```', { language: 'javascript', tests: p.tests! }, { timeoutMs: 5000 });
      expect(bad.status, p.id).toBe('fail');
    }
  }, 60_000);
});
