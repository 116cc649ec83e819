import { describe, expect, it } from 'vitest';
import {
  buildPairwiseMessages,
  combineOrders,
  DEFAULT_PAIRWISE_PROMPT,
  parsePairwiseVerdict,
  readPairwiseVerdict,
  verdictFromRewards,
  type PairwiseVerdict,
} from './pairwise-judge';

describe('buildPairwiseMessages', () => {
  it('fills the default prompt once, without expanding braces inside the texts', () => {
    const [m] = buildPairwiseMessages({}, { messages: [{ role: 'user', content: 'What is 2+2? {answer_a}' }], answerA: 'Four {answer_b}', answerB: '5' });
    expect(m!.role).toBe('user');
    expect(m!.content).toContain('[User Question]\nWhat is 2+2? {answer_a}\n');
    expect(m!.content).toContain("[The Start of Assistant A's Answer]\nFour {answer_b}\n[The End of Assistant A's Answer]");
    expect(m!.content).toContain("[The Start of Assistant B's Answer]\n5\n[The End of Assistant B's Answer]");
    expect(m!.content).not.toContain('Reference');
    // Reasoning first, the MT-Bench verdict format last.
    expect(m!.content.indexOf('provide a short explanation')).toBeLessThan(m!.content.indexOf('"[[A]]" if assistant A is better'));
    expect(DEFAULT_PAIRWISE_PROMPT).toContain('"[[C]]" for a tie');
  });

  it('adds a reference block and takes an edited prompt', () => {
    const input = { messages: [{ role: 'user' as const, content: 'Q' }], answerA: 'x', answerB: 'y', reference: 'R' };
    expect(buildPairwiseMessages({}, input)[0]!.content).toContain('[The Start of Reference Answer]\nR\n[The End of Reference Answer]');
    expect(buildPairwiseMessages({ prompt: 'Q={question} A={answer_a} B={answer_b} ref={reference}' }, input)[0]!.content).toBe('Q=Q A=x B=y ref=R');
  });

  it('renders a multi-turn conversation by role', () => {
    const c = buildPairwiseMessages({ prompt: '{question}' }, {
      messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }],
      answerA: 'a',
      answerB: 'b',
    })[0]!.content;
    expect(c).toBe('SYSTEM: Be brief.\n\nUSER: Hi');
  });
});

describe('readPairwiseVerdict', () => {
  const table: [text: string, verdict: PairwiseVerdict | null, pattern?: string][] = [
    ['Assistant A is more accurate.\n[[A]]', 'A', 'brackets'],
    ['A says 4, B says 5. B is wrong.\n\n**[[A]]**', 'A', 'brackets'],
    ['At first I thought [[A]], but B is complete.\n[[B]]', 'B', 'brackets'],
    ['Both are equally good.\n[[C]]', 'tie', 'brackets'],
    ['[[tie]]', 'tie', 'brackets'],
    ['<think>maybe [[A]]</think>B handles the edge case.\n[[B]]', 'B', 'brackets'],
    ['A', 'A', 'bare'],
    [' b. ', 'B', 'bare'],
    ['Tie', 'tie', 'bare'],
    ['Assistant B', 'B', 'bare'],
    ['Reasoning: B misses a step.\nA', 'A', 'bare'],
    ['**Final verdict:** A', 'A', 'labelled'],
    ['The better answer is B, since it shows the steps.', 'B', 'labelled'],
    ['Winner: tie — both are correct.', 'tie', 'labelled'],
    ['My answer is a guess at best.', null],
    ['Winner: Both are fine.', null],
    ['A good answer would mention the units.', null],
    ['', null],
    ['<think>comparing the two', null],
  ];
  it.each(table)('%j → %s', (text, verdict, pattern) => {
    const r = readPairwiseVerdict(text);
    expect(r.verdict).toBe(verdict);
    if (verdict) expect(r).toMatchObject({ pattern });
    else expect(r.why).toBeTruthy();
    expect(parsePairwiseVerdict(text)).toBe(verdict);
  });

  it('says why no verdict was read', () => {
    expect(readPairwiseVerdict('').why).toMatch(/empty/);
    expect(readPairwiseVerdict('<think>hmm').why).toMatch(/inside its reasoning/);
    expect(readPairwiseVerdict('B is longer but', { finishReason: 'length' }).why).toMatch(/cut at its max tokens/);
    expect(readPairwiseVerdict('Both fine.').why).toMatch(/no \[\[A\]\], \[\[B\]\] or \[\[C\]\] line/);
  });
});

describe('combineOrders', () => {
  // first: a shown as A, b as B; swapped: b shown as A, a as B.
  it('keeps a verdict both orders agree on', () => {
    expect(combineOrders('B', 'A')).toEqual({ outcome: 'b', inconsistent: false });
    expect(combineOrders('A', 'B')).toEqual({ outcome: 'a', inconsistent: false });
    expect(combineOrders('tie', 'tie')).toEqual({ outcome: 'tie', inconsistent: false });
  });
  it('counts a flip (or win vs tie) as an inconsistent tie', () => {
    expect(combineOrders('A', 'A')).toEqual({ outcome: 'tie', inconsistent: true }); // always the first shown
    expect(combineOrders('B', 'B')).toEqual({ outcome: 'tie', inconsistent: true });
    expect(combineOrders('B', 'tie')).toEqual({ outcome: 'tie', inconsistent: true });
  });
});

describe('verdictFromRewards', () => {
  it('higher reward wins, equal ties', () => {
    expect(verdictFromRewards(0.1, 0.9)).toBe('b');
    expect(verdictFromRewards(2, -1)).toBe('a');
    expect(verdictFromRewards(1, 1)).toBe('tie');
    expect(() => verdictFromRewards(NaN, 1)).toThrow(/finite/);
  });
});
