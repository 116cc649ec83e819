// The tokenizer rebuilt from GGUF metadata against the original tokenizer.json: the real Llama 3.2
// and Qwen3 tokenizers written into a GGUF file as llama.cpp's converter writes them, read back,
// and run through the same loader: the same ids, the same text back, the same chat rendering.
import { describe, expect, it } from 'vitest';
import { memorySource } from '../../io/byte-source';
import { llama32TokenizerConfig, toLlama32TokenizerJson } from '../../tokenizer/llama3';
import { readLlama3TokenizerJson } from '../../tokenizer/llama3-node';
import { readQwenTokenizerFiles } from '../../tokenizer/qwen-node';
import { loadTokenizer } from '../../tokenizer/tokenizer';
import { ggufTokenizerMetadata, str, writeGguf } from '../testing/gguf-writer';
import { readGgufHeader } from './reader';
import { ggufTokenizerFiles, ggufTokenizerProblem } from './tokenizer';

const TEXTS = [
  'Hello world',
  '  leading spaces\n\nand newlines\t\ttabs   ',
  'numbers 1234567 and 3.14159, 2024-01-01',
  'unicode: café naïve 日本語 Ελληνικά 🤖🎉',
  "don't I'll we've THEY'RE",
  'combining: e\u0301 a\u0308',
  'function f(x) {\n  return x ** 2; // square\n}',
];

const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'What is 2+2?' },
  { role: 'assistant' as const, content: '4' },
  { role: 'user' as const, content: 'And 3+3?' },
];

async function roundTrip(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>, meta: ReturnType<typeof ggufTokenizerMetadata>) {
  const file = writeGguf({ 'general.architecture': str('llama'), ...meta }, []);
  const h = await readGgufHeader(memorySource('tok.gguf', file));
  expect(ggufTokenizerProblem(h)).toBeNull();
  const original = loadTokenizer({ tokenizerJson, tokenizerConfig, name: 'original' });
  const files = ggufTokenizerFiles(h);
  const rebuilt = loadTokenizer({ tokenizerJson: files.tokenizerJson, tokenizerConfig: files.tokenizerConfig, name: 'gguf' });
  return { original, rebuilt, h };
}

describe('tokenizer from GGUF metadata', () => {
  it('Llama 3.2: same ids (BOS added), decode, special tokens and chat template', async () => {
    const tj = toLlama32TokenizerJson(JSON.parse(new TextDecoder().decode(await readLlama3TokenizerJson())));
    const cfg = llama32TokenizerConfig(tj);
    const meta = ggufTokenizerMetadata(tj, cfg, 'llama-bpe', 128256, { bos: 128000, eos: 128009, addBos: true });
    const { original, rebuilt } = await roundTrip(tj, cfg, meta);
    for (const t of [...TEXTS, 'special <|eot_id|> inside<|start_header_id|>']) {
      const ids = original.encode(t);
      expect(rebuilt.encode(t), t).toEqual(ids);
      expect(rebuilt.decode(ids), t).toBe(original.decode(ids));
      expect(rebuilt.decode(ids, { skipSpecialTokens: true }), t).toBe(original.decode(ids, { skipSpecialTokens: true }));
    }
    expect(rebuilt.encode('hi')[0]).toBe(128000);
    expect(rebuilt.applyChatTemplate(MESSAGES, { addGenerationPrompt: true })).toBe(original.applyChatTemplate(MESSAGES, { addGenerationPrompt: true }));
    expect(rebuilt.encodeChat(MESSAGES)).toEqual(original.encodeChat(MESSAGES));
    expect(rebuilt.eosTokenIds).toEqual([128009]);
    expect(rebuilt.vocabSize).toBe(original.vocabSize);
  });

  it('Qwen3: same ids (NFC, single digits, no BOS), padding ids past the tokenizer unused, chat template with thinking off', async () => {
    const f = await readQwenTokenizerFiles('qwen3');
    const meta = ggufTokenizerMetadata(f.tokenizerJson, f.tokenizerConfig, 'qwen2', 151936, { bos: 151643, eos: 151645, pad: 151643 });
    const { original, rebuilt, h } = await roundTrip(f.tokenizerJson, f.tokenizerConfig, meta);
    expect((h.metadata['tokenizer.ggml.tokens'] as string[])[151900]).toBe('[PAD151900]');
    for (const t of [...TEXTS, '<|im_start|>user\nhi<|im_end|> <think>x</think>']) {
      const ids = original.encode(t);
      expect(rebuilt.encode(t), t).toEqual(ids);
      expect(rebuilt.decode(ids), t).toBe(original.decode(ids));
    }
    expect(rebuilt.encode('12345')).toEqual([16, 17, 18, 19, 20]);
    expect(rebuilt.applyChatTemplate(MESSAGES, { addGenerationPrompt: true })).toBe(original.applyChatTemplate(MESSAGES, { addGenerationPrompt: true }));
    expect(rebuilt.encodeChat(MESSAGES)).toEqual(original.encodeChat(MESSAGES));
    expect(rebuilt.vocabSize).toBe(original.vocabSize);
  });

  it('refuses tokenizers it cannot rebuild, by name', async () => {
    const sp = await readGgufHeader(memorySource('sp.gguf', writeGguf({ 'tokenizer.ggml.model': str('llama') }, [])));
    expect(ggufTokenizerProblem(sp)).toMatch(/tokenizer\.ggml\.model "llama" is not supported/);
    expect(() => ggufTokenizerFiles(sp)).toThrow(/put the model's tokenizer\.json beside the \.gguf/);
    const pre = await readGgufHeader(memorySource('p.gguf', writeGguf({ 'tokenizer.ggml.model': str('gpt2'), 'tokenizer.ggml.pre': str('deepseek-llm') }, [])));
    expect(ggufTokenizerProblem(pre)).toMatch(/tokenizer\.ggml\.pre "deepseek-llm" is not supported \(supported: llama-bpe, qwen2\)/);
  });
});
