// A tiny byte-level tokenizer for tests (imported by *.test.ts only): one token per UTF-8 byte
// (GPT-2's byte-to-character map, a BPE with no merges) plus four Llama-3-style special tokens and
// a short chat template, written as real tokenizer.json / tokenizer_config.json files. A demo model
// over its 260 tokens runs generation and training fast on SwiftShader (the Llama 3 vocabulary's
// 128,256-row lm_head costs ~0.2 s a token), while text still goes through the real loader,
// tokenizer, chat template and assistant mask.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateDemoModel, type DemoModelOptions } from '../../model/demo';
import { writeFolderFiles } from '../../train/files-node';

export const BYTE_SPECIALS = ['<|begin_of_text|>', '<|eot_id|>', '<|start_header_id|>', '<|end_header_id|>'] as const;
/** Token ids: bytes 0…255, then the specials. */
export const BYTE_VOCAB = 256 + BYTE_SPECIALS.length;

/** GPT-2's bytes_to_unicode: printable bytes as themselves, the rest shifted past 255. */
function byteChars(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let n = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + n++));
}

const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>{{ m['content'] }}<|eot_id|>{% endfor %}" +
  '{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}';

export function byteTokenizerFiles(): { tokenizerJson: object; tokenizerConfig: object } {
  const vocab: Record<string, number> = {};
  byteChars().forEach((c, b) => (vocab[c] = b));
  const added = BYTE_SPECIALS.map((content, i) => ({ id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: BYTE_SPECIALS[0], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: BYTE_SPECIALS[0], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [BYTE_SPECIALS[0]]: { id: BYTE_SPECIALS[0], ids: [256], tokens: [BYTE_SPECIALS[0]] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
  const tokenizerConfig = {
    added_tokens_decoder: Object.fromEntries(added.map((t) => [String(t.id), { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }])),
    bos_token: BYTE_SPECIALS[0],
    eos_token: BYTE_SPECIALS[1],
    clean_up_tokenization_spaces: false,
    model_max_length: 2048,
    tokenizer_class: 'PreTrainedTokenizerFast',
    chat_template: TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig };
}

/**
 * The demo model's architecture over the byte vocabulary, with the byte tokenizer, written to `dir`.
 * Weights of std 1/√hidden and jittered norms (model/random.ts's scale) rather than the demo's 0.02:
 * O(1) activations tell prompts apart, so a LoRA memorises their answers in ~15 steps.
 */
export async function writeByteModel(dir: string, o: Pick<DemoModelOptions, 'seed' | 'initStd' | 'normJitter'> = {}): Promise<void> {
  await writeFolderFiles(dir, generateDemoModel(null, { vocabSize: BYTE_VOCAB, dtype: 'f32', initStd: 0.125, normJitter: 0.2, ...o }));
  const { tokenizerJson, tokenizerConfig } = byteTokenizerFiles();
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
}
