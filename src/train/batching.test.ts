import { describe, expect, it } from 'vitest';
import { parseDpoRecord, parseSftRecord, type DpoRecord, type SftRecord } from '../data/records';
import {
  collateDpo,
  collateSft,
  lastLabelledRun,
  prepareDpo,
  prepareSft,
  shuffledOrder,
  tokenizeDpo,
  tokenizeSft,
  trainableTargets,
  truncateDpo,
  truncateSft,
} from './batching';
import { loadQwenTokenizer } from '../tokenizer/qwen-node';
import { DATE, llama32Tokenizer } from './testing/fixtures';

const _ = -100;
const range = (a: number, b: number) => Array.from({ length: b - a }, (_x, i) => a + i);
/** Labels equal to ids on [s, e) (ids = 0…L−1). */
const labelled = (L: number, ...runs: [number, number][]) => range(0, L).map((i) => (runs.some(([s, e]) => i >= s && i < e) ? i : _));

describe('SFT truncation (prompt first, never the whole answer)', () => {
  const ids = range(0, 10);
  const labels = labelled(10, [6, 10]); // prompt 0…5, answer 6…9

  it('leaves a sequence that fits', () => {
    expect(truncateSft(ids, labels, 10)).toEqual({ inputIds: ids, labels, truncated: false });
  });

  it('drops tokens from the start of the prompt', () => {
    expect(truncateSft(ids, labels, 8)).toEqual({ inputIds: range(2, 10), labels: labels.slice(2), truncated: true });
    // Down to one prompt token: it predicts the first answer token.
    const t = truncateSft(ids, labels, 5);
    expect(t.inputIds).toEqual(range(5, 10));
    expect(trainableTargets(t.labels)).toBe(4);
  });

  it('cuts the end of an answer that alone exceeds maxLength, keeping at least one trained token', () => {
    const t = truncateSft(ids, labels, 4);
    expect(t.inputIds).toEqual([5, 6, 7, 8]);
    expect(t.labels).toEqual([_, 6, 7, 8]);
    expect(trainableTargets(t.labels)).toBe(3);
    const two = truncateSft(ids, labels, 2);
    expect(two).toEqual({ inputIds: [5, 6], labels: [_, 6], truncated: true });
    expect(trainableTargets(two.labels)).toBe(1);
  });

  it('multi-turn: earliest turns go first; the last assistant turn (and what follows it) stays', () => {
    const mt = labelled(12, [3, 5], [8, 10]); // answer 1 at 3…4, answer 2 at 8…9, 2 trailing tokens
    expect(lastLabelledRun(mt)).toEqual([8, 10]);
    const t = truncateSft(range(0, 12), mt, 6);
    expect(t.inputIds).toEqual(range(6, 12));
    expect(t.labels).toEqual([_, _, 8, 9, _, _]);
    const short = truncateSft(range(0, 12), mt, 3);
    expect(short.inputIds).toEqual([7, 8, 9]);
    // Keeping more of the earlier turns when they fit: answer 1 is kept whole at maxLength 10.
    expect(truncateSft(range(0, 12), mt, 10).labels).toEqual(mt.slice(2));
  });

  it('edge cases: no labels, bad maxLength, label at position 0 is not trainable', () => {
    expect(lastLabelledRun([_, _])).toEqual([-1, -1]);
    expect(truncateSft(range(0, 5), [_, _, _, _, _], 3).inputIds).toEqual([2, 3, 4]);
    expect(() => truncateSft(ids, labels, 1)).toThrow(/maxLength/);
    expect(() => truncateSft(ids, labels.slice(1), 8)).toThrow(/labels has 9/);
    expect(trainableTargets([0, _, _])).toBe(0);
    const { examples, skipped } = prepareSft(
      [
        { kind: 'sft-tokens', inputIds: [5, 6, 7], labels: [5, _, _] },
        { kind: 'sft-tokens', inputIds: [5, 6, 7], labels: [_, 6, 7] },
      ],
      null,
      { maxLength: 8 },
    );
    expect(examples).toHaveLength(1);
    expect(skipped).toEqual([{ index: 0, reason: 'no trainable (assistant) token' }]);
  });
});

describe('DPO truncation', () => {
  it('leaves a pair that fits', () => {
    expect(truncateDpo([1, 2], [3], [4, 5], 4)).toEqual({ prompt: [1, 2], chosen: [3], rejected: [4, 5], truncated: false });
  });

  it('cuts the prompt from its start for the longer response', () => {
    const p = range(0, 10);
    expect(truncateDpo(p, [100, 101, 102], [200, 201, 202, 203, 204], 12)).toEqual({
      prompt: range(3, 10),
      chosen: [100, 101, 102],
      rejected: [200, 201, 202, 203, 204],
      truncated: true,
    });
  });

  it('keeps one prompt token and cuts the ends of responses that alone are too long', () => {
    const t = truncateDpo(range(0, 10), range(100, 120), [200, 201], 8);
    expect(t).toEqual({ prompt: [9], chosen: range(100, 107), rejected: [200, 201], truncated: true });
    expect(truncateDpo([1, 2, 3], [7, 8, 9], [6, 5], 2)).toEqual({ prompt: [3], chosen: [7], rejected: [6], truncated: true });
  });
});

describe('tokenization with the Llama 3.2 chat template', () => {
  const tok = llama32Tokenizer();

  it('SFT: every assistant turn is trained (content + <|eot_id|>); system, user and headers are masked', () => {
    const record = parseSftRecord({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Bye' },
        { role: 'assistant', content: 'Goodbye.' },
      ],
    });
    const e = tokenizeSft(record, tok, { maxLength: 512, chatTemplate: DATE });
    const messages = (record as Extract<SftRecord, { kind: 'sft-messages' }>).messages.map((m) => ({ ...m }));
    expect(e.inputIds).toEqual(tok.encodeChat(messages, DATE).ids);
    expect(e.inputIds[0]).toBe(128000);
    const trained = e.labels.filter((l) => l !== -100);
    expect(tok.decode(trained)).toBe('Hello!<|eot_id|>Goodbye.<|eot_id|>');
    e.labels.forEach((l, i) => expect(l === -100 || l === e.inputIds[i]).toBe(true));
    // Two separate runs.
    const runs = e.labels.filter((l, i) => l !== -100 && e.labels[i - 1] === -100).length;
    expect(runs).toBe(2);
  });

  it('SFT truncation keeps the last answer and the end of its prompt', () => {
    const record = parseSftRecord({
      messages: [
        { role: 'user', content: 'Please repeat the word apple.' },
        { role: 'assistant', content: 'apple' },
      ],
    });
    const full = tokenizeSft(record, tok, { maxLength: 512, chatTemplate: DATE });
    const t = tokenizeSft(record, tok, { maxLength: 12, chatTemplate: DATE });
    expect(t.truncated).toBe(true);
    expect(t.inputIds).toEqual(full.inputIds.slice(-12));
    expect(tok.decode(t.labels.filter((l) => l !== -100))).toBe('apple<|eot_id|>');
  });

  it('pre-tokenized SFT records are used as given', () => {
    const r = parseSftRecord({ input_ids: [128000, 9906, 1917], labels: [-100, 9906, 1917] });
    expect(tokenizeSft(r, null, { maxLength: 8 })).toEqual({ inputIds: [128000, 9906, 1917], labels: [-100, 9906, 1917], truncated: false });
    expect(() => tokenizeSft(parseSftRecord({ messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }), null, { maxLength: 8 })).toThrow(
      /need a tokenizer/,
    );
  });

  it('DPO messages: a shared prompt ending with the assistant header; responses are the completions', () => {
    const record = parseDpoRecord({
      prompt: [{ role: 'user', content: 'Is the sky blue?' }],
      chosen: [{ role: 'assistant', content: 'Yes.' }],
      rejected: [{ role: 'assistant', content: 'No, it is green.' }],
    });
    const p = tokenizeDpo(record, tok, { maxLength: 512, chatTemplate: DATE });
    expect(p.prompt).toEqual(tok.encodeChat([{ role: 'user', content: 'Is the sky blue?' }], { ...DATE, addGenerationPrompt: true }).ids);
    expect(tok.decode(p.prompt.slice(-4))).toBe('<|start_header_id|>assistant<|end_header_id|>\n\n');
    expect(tok.decode(p.chosen)).toBe('Yes.<|eot_id|>');
    expect(tok.decode(p.rejected)).toBe('No, it is green.<|eot_id|>');
  });

  it('DPO text: BOS + prompt, responses end with eos; pre-tokenized pairs as given', () => {
    const p = tokenizeDpo(parseDpoRecord({ prompt: 'Q:', chosen: ' yes', rejected: ' no' }), tok, { maxLength: 64 });
    expect(p.prompt[0]).toBe(128000);
    expect(p.chosen.at(-1)).toBe(tok.eosTokenIds[0]);
    expect(tok.decode(p.chosen)).toBe(' yes<|eot_id|>');
    const t = parseDpoRecord({ prompt_input_ids: [1, 2], chosen_input_ids: [3], rejected_input_ids: [4, 5] });
    expect(tokenizeDpo(t, null, { maxLength: 4 })).toEqual({ prompt: [1, 2], chosen: [3], rejected: [4, 5], truncated: false });
    const bad: DpoRecord = { kind: 'dpo-tokens', promptInputIds: [], chosenInputIds: [3], rejectedInputIds: [4] };
    expect(prepareDpo([bad], null, { maxLength: 4 }).skipped[0]!.reason).toMatch(/empty prompt/);
  });
});

describe('tokenization with the Qwen3 chat template (thinking off, history without reasoning)', async () => {
  const tok = await loadQwenTokenizer('qwen3');
  const IM_END = 151645;

  it('SFT: each turn trains what the template kept of it, with <|im_end|> and without the newline after it', () => {
    const record = parseSftRecord({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: '<think>\nGreet back.\n</think>\n\nHello!' },
        { role: 'user', content: 'Bye' },
        { role: 'assistant', content: 'Goodbye.' },
      ],
    });
    const e = tokenizeSft(record, tok, { maxLength: 512 });
    const runs: number[][] = [];
    e.labels.forEach((l, i) => {
      if (l === -100) return;
      if (e.labels[i - 1] === -100) runs.push([]);
      runs.at(-1)!.push(l);
    });
    // The earlier turn's reasoning is not in the rendering; the last turn follows the generation
    // prompt's empty think block, which is the prompt's, not the answer's.
    expect(runs.map((r) => tok.decode(r))).toEqual(['Hello!<|im_end|>', 'Goodbye.<|im_end|>']);
    expect(tok.decode(e.inputIds)).not.toContain('Greet back.');
    expect(tok.decode(e.inputIds).endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\nGoodbye.<|im_end|>\n')).toBe(true);
  });

  it('DPO messages: the prompt ends with the empty think block; responses end with <|im_end|>, not the newline after it', () => {
    const record = parseDpoRecord({
      prompt: [{ role: 'user', content: 'Is the sky blue?' }],
      chosen: [{ role: 'assistant', content: 'Yes.' }],
      rejected: [{ role: 'assistant', content: 'No, it is green.' }],
    });
    const p = tokenizeDpo(record, tok, { maxLength: 512 });
    expect(tok.decode(p.prompt)).toBe('<|im_start|>user\nIs the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    expect(tok.decode(p.chosen)).toBe('Yes.<|im_end|>');
    expect(tok.decode(p.rejected)).toBe('No, it is green.<|im_end|>');
    expect(p.chosen.at(-1)).toBe(IM_END);
  });
});

describe('batches', () => {
  it('SFT: right padding, targets shifted (target[t] = label[t+1]), padding rows', () => {
    const b = collateSft(
      [
        { inputIds: [10, 11, 12, 13], labels: [_, _, 12, 13], truncated: false },
        { inputIds: [20, 21, 22], labels: [_, 21, 22], truncated: false },
      ],
      3,
      5,
      7,
    );
    expect([...b.ids]).toEqual([10, 11, 12, 13, 7, 20, 21, 22, 7, 7, 7, 7, 7, 7, 7]);
    expect([...b.mask]).toEqual([1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect([...b.targets]).toEqual([_, 12, 13, _, _, 21, 22, _, _, _, _, _, _, _, _]);
    expect(b.tokens).toBe(7);
    expect(b.targetCount).toBe(4);
    expect(() => collateSft([{ inputIds: range(0, 6), labels: range(0, 6), truncated: false }], 1, 5)).toThrow(/does not fit/);
  });

  it('DPO: chosen rows first, then rejected; labels on the response only', () => {
    const pairs = [
      { prompt: [1, 2], chosen: [3, 4], rejected: [5], truncated: false },
      { prompt: [6], chosen: [7], rejected: [8, 9], truncated: false },
    ];
    const b = collateDpo(pairs, 2, 4);
    expect([...b.ids]).toEqual([1, 2, 3, 4, 6, 7, 0, 0, 1, 2, 5, 0, 6, 8, 9, 0]);
    expect([...b.targets]).toEqual([_, 3, 4, _, 7, _, _, _, _, 5, _, _, 8, 9, _, _]);
    expect(b.targetCount).toBe(6);
  });
});

describe('shuffling', () => {
  it('is a permutation fixed by (seed, epoch), different across epochs and seeds', () => {
    const a = shuffledOrder(50, 42, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(range(0, 50));
    expect(shuffledOrder(50, 42, 0)).toEqual(a);
    expect(shuffledOrder(50, 42, 1)).not.toEqual(a);
    expect(shuffledOrder(50, 43, 0)).not.toEqual(a);
    expect(shuffledOrder(1, 0, 0)).toEqual([0]);
    expect(shuffledOrder(0, 0, 0)).toEqual([]);
  });
});
