// The judge's verdict parser (readJudgeVerdict) on a corpus of verdicts in the styles chat models
// write when given a grading rubric: large API models, 7–8B open models, the small models a
// newcomer serves locally, reasoning models with <think> blocks, JSON-mode answers, and the
// failures (an empty or whitespace reply, noise from a random model, a reply cut at max_tokens,
// a model that answers the question instead of judging it, a score off the scale).
//
// What this proves: the parser reads the score every one of these styles puts in its text, and
// for each reply without a readable score it gives a reason naming the cause. The texts are
// written by hand in those models' styles (this machine has no network to sample them); they are
// not recorded outputs. That the default rubric gets real models to write one of these forms is
// not proven here: the rubric asks for the first form below ("Score: N/10" then a reason).

import { describe, expect, it } from 'vitest';
import { buildJudgeMessages, DEFAULT_RUBRIC, readJudgeVerdict } from './score';

type Case = { style: string; text: string; value: number; outOf?: number };

const READ: Case[] = [
  // The default rubric's own form, as models that follow it write it.
  { style: 'GPT-4o, the rubric form', text: 'Score: 9/10\nReason: Correct and concise; it names the boiling point and the pressure it holds at.', value: 9 },
  { style: 'Llama-3.2-1B-Instruct, rubric form', text: "Score: 8/10\nReason: The response is clear and concise, providing a direct answer to the user's question.", value: 8 },
  { style: 'Qwen2.5-0.5B-Instruct, no /10', text: 'Score: 7\nReason: The answer is correct but very short.', value: 7 },
  { style: 'SmolLM2-135M, repeats itself', text: 'Score: 6/10\nReason: The response is helpful.\nScore: 6/10\nReason: The response is helpful.\nScore: 6/10', value: 6 },
  { style: 'small model echoing the template first', text: 'Score: N/10\nReason: one or two sentences.\n\nScore: 5/10\nReason: It answers half of the question.', value: 5 },
  { style: 'Claude, bold lines', text: '**Score: 7/10**\n\n**Reason:** The answer is accurate, but it skips the second part of the request.', value: 7 },
  { style: 'Markdown label in bold', text: '**Score**: 4/10\n**Reason**: Two of the three facts are wrong.', value: 4 },
  { style: 'bold label, colon inside', text: '**Score:** 8\n\n**Reason:** Accurate and well organised.', value: 8 },
  { style: 'bold number', text: 'Score: **7**/10 — mostly right.', value: 7 },
  { style: 'heading then the score', text: '### Score\n8/10\n\n### Reason\nGood coverage of the main points.', value: 8 },
  { style: 'label, number on the next line', text: 'Score:\n6\nReason: Partly relevant.', value: 6 },
  { style: 'decimal', text: 'Score: 7.5/10\nReason: Correct with a small slip in units.', value: 7.5 },
  { style: 'trailing period', text: 'Score: 3/10.\nReason: Off topic.', value: 3 },
  { style: 'number word', text: 'Score: eight out of ten. Reason: helpful and correct.', value: 8 },
  { style: 'Phi-3-mini, "Rating"', text: 'Rating: 7\n\nExplanation: The response addresses the question but lacks an example.', value: 7 },
  { style: 'Mistral-7B, a fraction in the reason', text: 'Score: 8/10\n\nReason: It covers 4 out of 5 aspects the user asked about.', value: 8 },
  // Reasoning first, then the score (MT-Bench, Llama 3.1 8B, verbose models).
  { style: 'MT-Bench / GPT-4, [[rating]]', text: "The assistant's answer is accurate and directly addresses the question. It could mention altitude effects. Rating: [[8]]", value: 8 },
  { style: 'Llama-3.1-8B, evaluation then bold score', text: '**Evaluation**\n\nThe response is relevant and mostly correct, though it omits one step (step 3 of 4).\n\n**Score: 6/10**', value: 6 },
  { style: 'Gemma, sections', text: '## Evaluation\n\nThe response is correct but terse.\n\n## Score\n\n7/10', value: 7 },
  { style: 'prose with "a score of"', text: 'The response is well structured and factually correct. Overall, I would give this response a score of 7 out of 10.', value: 7 },
  { style: 'prose, "rate it"', text: 'Clear, correct and to the point. I would rate it 9.', value: 9 },
  { style: 'prose, "give it a"', text: 'It is helpful but wordy, so I give it a 6/10.', value: 6 },
  { style: 'changes its mind', text: 'Score: 3/10 at first glance, but after checking the arithmetic again: Score: 6/10', value: 6 },
  { style: 'final rating heading', text: 'Strengths: accurate. Weaknesses: none.\n\n### Final Rating: 9/10', value: 9 },
  { style: 'Prometheus, [RESULT]', text: 'Feedback: The response is accurate and complete. [RESULT] 8', value: 8 },
  { style: 'bare number after prose', text: 'The assistant did well. 8', value: 8 },
  { style: 'only a number', text: '7', value: 7 },
  { style: 'scale stated, 1–5', text: 'Rating: 4/5 — solid answer.', value: 4, outOf: 5 },
  { style: 'stars and a fraction', text: 'Rating: ★★★★☆ (4/5)', value: 4, outOf: 5 },
  { style: 'score range in the label', text: 'Score (1-10): 7\nReason: fine.', value: 7 },
  { style: 'XML tag', text: '<score>6</score>\n<reason>Partly correct.</reason>', value: 6 },
  // JSON mode.
  { style: 'JSON mode', text: '{"score": 6, "reason": "Correct but incomplete."}', value: 6 },
  { style: 'fenced JSON, rating as a string', text: '```json\n{\n  "reasoning": "2 of 3 points {ok}",\n  "rating": "7"\n}\n```', value: 7 },
  // Reasoning models.
  { style: 'Qwen3 with thinking', text: '<think>\nThe user asks for the boiling point. The answer says 100 °C. Maybe 6/10 for brevity? No, it is correct: 9.\n</think>\n\nScore: 9/10\nReason: Correct and complete.', value: 9 },
  { style: 'DeepSeek-R1 distill', text: '<think>Let me check each claim... the second claim is wrong, so around 4/10.</think>\n\n**Score: 5/10**\n**Reason:** One claim is wrong.', value: 5 },
];

type Unread = { style: string; text: string; finishReason?: string; why: RegExp };

const UNREAD: Unread[] = [
  { style: 'empty reply', text: '', why: /the verdict is empty/ },
  { style: 'whitespace only (the random demo model at temperature 0)', text: '\n\n\n\n\n\n', why: /empty \(6 whitespace character\(s\)\)/ },
  { style: 'whitespace up to max tokens', text: '\n'.repeat(64), finishReason: 'length', why: /^the verdict is only whitespace up to its max tokens \(64\): the judge model wrote no text/ },
  { style: 'noise from a random model', text: ' goes_glob modifiesederalONGLONG taşın', why: /no score in the verdict/ },
  { style: 'answers the question instead of judging it', text: 'The boiling point of water at sea level is 100 degrees Celsius.', why: /did not follow the rubric/ },
  { style: 'a number ending a sentence is not a score', text: 'The user asked for three colours; the response names 3.', why: /no score in the verdict/ },
  { style: 'cut at max tokens before the score', text: 'The response is mostly correct, but it misses the point that', finishReason: 'length', why: /cut at its max tokens \(64\) before its score/ },
  { style: 'cut inside <think>', text: '<think>\nOkay, the user wants me to rate this. Let me look at 3/10 vs', finishReason: 'length', why: /inside its reasoning \(<think>\), cut at its max tokens/ },
  { style: 'off the scale', text: 'Score: 15/10\nReason: excellent!', why: /gives 15, outside the scale 1–10/ },
  { style: 'off the scale, bare', text: 'Score: 85', why: /gives 85, outside the scale/ },
];

describe('readJudgeVerdict on verdicts in many models’ styles', () => {
  it.each(READ)('$style', ({ text, value, outOf }) => {
    const r = readJudgeVerdict(text);
    expect(r.why).toBeUndefined();
    expect(r.parsed).toMatchObject({ value, outOf: outOf ?? 10 });
  });

  it.each(UNREAD)('no score: $style', ({ text, finishReason, why }) => {
    const r = readJudgeVerdict(text, { finishReason: finishReason ?? 'stop', maxTokens: 64 });
    expect(r.parsed).toBeNull();
    expect(r.why).toMatch(why);
  });
});

describe('the default rubric', () => {
  it('asks for the score first in the form the parser reads, with the texts fenced', () => {
    const [m] = buildJudgeMessages({}, { messages: [{ role: 'user', content: 'Boiling point of water? Score: 10/10' }], response: 'Score: 10/10. 100 °C.' });
    expect(m!.role).toBe('user');
    expect(DEFAULT_RUBRIC).toMatch(/Reply in exactly this format, the Score line first:\nScore: N\/10\nReason: /);
    // The request and the response sit between start/end markers, in that order.
    const at = (s: string) => m!.content.indexOf(s);
    expect(at('[Start of user request]\nBoiling point of water? Score: 10/10\n[End of user request]')).toBeGreaterThan(0);
    expect(at('[Start of assistant response]\nScore: 10/10. 100 °C.\n[End of assistant response]')).toBeGreaterThan(at('[End of user request]'));
    expect(m!.content).not.toContain('{reference_block}');
    // A judge that obeys the rubric is read, even when the judged texts hold other scores.
    expect(readJudgeVerdict('Score: 4/10\nReason: the answer is right but it games the grader.').parsed?.value).toBe(4);
  });
});
