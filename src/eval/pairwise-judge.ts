// Pairwise judging (issue 13): a chat judge sees one question and two answers, A and B, and says
// which is better. The default prompt is MT-Bench's pairwise prompt (Zheng et al. 2023): reasoning
// first, then the verdict on its own line as [[A]], [[B]] or [[C]] (tie). A judge tends to favour
// one position, so every item is judged in both orders (a's answer shown first, then b's first);
// combineOrders keeps a verdict only when both orders agree and counts the rest as ties, and the
// share of such items is the judge's position bias. A local reward model judges by reward instead
// (verdictFromRewards): it scores each answer alone, so order cannot matter.

import type { ChatMessage } from '../data/records';

/**
 * The default pairwise prompt. Placeholders: {question}, {answer_a}, {answer_b}, and
 * {reference_block} (empty, or a reference answer when the item has one). Like the rubric judge's
 * (score.ts), the texts are fenced by start/end markers, so an answer that itself says "[[A]]" or
 * gives instructions reads as the thing judged.
 */
export const DEFAULT_PAIRWISE_PROMPT = `Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the user question displayed below. You should choose the assistant that follows the user's instructions and answers the user's question better. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of their responses. Begin your evaluation by comparing the two responses and provide a short explanation. Avoid any position biases and ensure that the order in which the responses were presented does not influence your decision. Do not allow the length of the responses to influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible.{reference_block}

[User Question]
{question}

[The Start of Assistant A's Answer]
{answer_a}
[The End of Assistant A's Answer]

[The Start of Assistant B's Answer]
{answer_b}
[The End of Assistant B's Answer]

After providing your explanation, output your final verdict on its own last line by strictly following this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.`;

export interface PairwiseInput {
  /** The conversation up to the answers (its last user turn is the question). */
  messages: readonly ChatMessage[];
  /** The answer shown as Assistant A. */
  answerA: string;
  /** The answer shown as Assistant B. */
  answerB: string;
  /** A reference answer, when the item has one. */
  reference?: string;
}

function renderConversation(messages: readonly ChatMessage[]): string {
  if (messages.length === 1 && messages[0]!.role === 'user') return messages[0]!.content;
  return messages.map((m) => `${m.role.toUpperCase()}: ${m.content}`).join('\n\n');
}

/** The judge's request: `cfg.prompt` (default DEFAULT_PAIRWISE_PROMPT) with the item filled in. */
export function buildPairwiseMessages(cfg: { prompt?: string }, input: PairwiseInput): ChatMessage[] {
  const tpl = cfg.prompt ?? DEFAULT_PAIRWISE_PROMPT;
  const vars: Record<string, string> = {
    question: renderConversation(input.messages),
    answer_a: input.answerA,
    answer_b: input.answerB,
    reference: input.reference ?? '',
    reference_block: input.reference
      ? `\n\nA reference answer is given; use it to check correctness.\n\n[The Start of Reference Answer]\n${input.reference}\n[The End of Reference Answer]`
      : '',
  };
  // One pass, so braces inside the substituted texts are never expanded again.
  const content = tpl.replace(/\{(question|answer_a|answer_b|reference|reference_block)\}/g, (_m, k: string) => vars[k]!);
  return [{ role: 'user', content }];
}

/** A verdict about the answers as shown: A (the first shown) better, B better, or a tie. */
export type PairwiseVerdict = 'A' | 'B' | 'tie';

export type PairwiseReading =
  | { verdict: PairwiseVerdict; pattern: 'brackets' | 'bare' | 'labelled'; why?: undefined }
  | { verdict: null; why: string };

/** The verdict without its reasoning: a <think> block is dropped, and so is an unclosed one. */
function withoutThinking(text: string): { text: string; unclosed: boolean } {
  let t = text.replace(/\r/g, '').replace(/<(think|thinking|reasoning)>[\s\S]*?<\/\1>/gi, '');
  const open = /<(think|thinking|reasoning)>/i.exec(t);
  if (open) t = t.slice(0, open.index);
  return { text: t, unclosed: open !== null };
}

function token(s: string): PairwiseVerdict | null {
  const t = s.toLowerCase();
  if (t === 'a') return 'A';
  if (t === 'b') return 'B';
  if (t === 'c' || t === 'tie' || t === 'draw' || t === 'equal') return 'tie';
  return null;
}

// "A", "[A]", "Assistant A", "Response B", "(C)", "tie", "it's a tie", with optional trailing punctuation.
const BARE = /^[\s"'([]*(?:(?:assistant|response|answer|model|output)\s+)?(a|b|c|tie|draw)[\s"')\].!]*(?:is\s+better\.?)?$/i;
const LABELLED = /\b(?:final\s+)?(?:verdict|winner|decision|answer|choice|better(?:\s+answer|\s+response)?)\s*(?:is|:|=|-|–|—)\s*[("'[]*(?:(?:assistant|response|answer)\s+)?(a|b|c|tie|draw)(?![a-z])/gi;

/**
 * Reads the judge's verdict, or says why none could be read. In order, the last occurrence counts
 * (judges reason first and conclude at the end): [[A]]/[[B]]/[[C]] (also [[tie]]) → the whole reply,
 * or its last line, a bare A / B / tie ("Assistant A", "B.", "Tie") → "Verdict: A", "Winner: B",
 * "Better answer is A" on any line. Markdown emphasis is ignored and a <think> block is skipped.
 */
export function readPairwiseVerdict(text: string, opts: { finishReason?: string | null } = {}): PairwiseReading {
  const cut = opts.finishReason === 'length';
  if (text.trim() === '') return { verdict: null, why: 'the verdict is empty: the judge model wrote nothing (use a larger chat model, or a reward model)' };
  const { text: raw, unclosed } = withoutThinking(text);
  const t = raw.replace(/\*\*|__|`/g, '');
  let last: PairwiseVerdict | null = null;
  for (const m of t.matchAll(/\[\[\s*(a|b|c|tie)\s*\]\]/gi)) last = token(m[1]!);
  if (last) return { verdict: last, pattern: 'brackets' };
  const lines = t.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const whole = BARE.exec(t.trim()) ?? (lines.length ? BARE.exec(lines[lines.length - 1]!) : null);
  if (whole) return { verdict: token(whole[1]!)!, pattern: 'bare' };
  // A labelled single letter must be a capital ("Verdict: A"), so "my answer is a guess" is no verdict.
  for (const m of t.matchAll(LABELLED)) if (m[1]!.length > 1 || m[1] === m[1]!.toUpperCase()) last = token(m[1]!);
  if (last) return { verdict: last, pattern: 'labelled' };
  if (unclosed || t.trim() === '') return { verdict: null, why: `the verdict ended inside its reasoning (<think>)${cut ? ', cut at its max tokens' : ''}, before a verdict: raise the judge's max tokens, or turn its thinking off` };
  if (cut) return { verdict: null, why: "the verdict was cut at its max tokens before its final [[A]]/[[B]]/[[C]] line: raise the judge's max tokens" };
  return { verdict: null, why: 'no verdict in the reply: it has no [[A]], [[B]] or [[C]] line (nor a bare A, B or tie), so the judge model did not follow the prompt (use a larger chat model, or a reward model)' };
}

/** The verdict, or null when none can be read (readPairwiseVerdict says why). */
export function parsePairwiseVerdict(text: string): PairwiseVerdict | null {
  return readPairwiseVerdict(text).verdict;
}

/** The outcome for the pair (a, b): which model's answer won. */
export type PairOutcome = 'a' | 'b' | 'tie';

export interface CombinedVerdict {
  outcome: PairOutcome;
  /** The two orders disagreed (the verdict depended on position); such an item counts as a tie. */
  inconsistent: boolean;
}

/**
 * Combines the two orders of one item: `first` was judged with a's answer as A and b's as B,
 * `swapped` with b's answer as A and a's as B. Agreeing verdicts stand; any disagreement (a win that
 * flips, or a win in one order and a tie in the other) is a tie marked inconsistent, as MT-Bench does.
 */
export function combineOrders(first: PairwiseVerdict, swapped: PairwiseVerdict): CombinedVerdict {
  const one: PairOutcome = first === 'A' ? 'a' : first === 'B' ? 'b' : 'tie';
  const two: PairOutcome = swapped === 'A' ? 'b' : swapped === 'B' ? 'a' : 'tie';
  return one === two ? { outcome: one, inconsistent: false } : { outcome: 'tie', inconsistent: true };
}

/** A reward model's verdict: the higher reward wins; equal rewards tie. */
export function verdictFromRewards(rewardA: number, rewardB: number): PairOutcome {
  if (!Number.isFinite(rewardA) || !Number.isFinite(rewardB)) throw new Error(`verdictFromRewards: rewards must be finite numbers (got ${rewardA}, ${rewardB})`);
  return rewardB > rewardA ? 'b' : rewardA > rewardB ? 'a' : 'tie';
}
