// A GGUF file's tokenizer (tokenizer.ggml.* and tokenizer.chat_template) as the tokenizer.json +
// tokenizer_config.json a Hugging Face folder would hold, so the same loader (tokenizer.ts, with
// @huggingface/tokenizers and the Jinja chat template) runs it.
//
// llama.cpp's converter writes a byte-level BPE tokenizer as tokenizer.ggml.model "gpt2": every id
// in `tokens` with its `token_type` (1 normal, 3 control = a special added token, 4 user-defined =
// a non-special added token, 5 unused = padding of the embedding past the tokenizer), the merges
// as "a b" strings, and `tokenizer.ggml.pre` naming the pre-tokenizer. The pre-tokenizers here are
// the ones of the supported families' tokenizer.json files: "llama-bpe" (Llama 3.x) and "qwen2"
// (Qwen2, Qwen2.5, Qwen3). Anything else is refused with its name; the model's own tokenizer.json
// beside the .gguf (or a repo that has one) is then used instead (see gguf/load.ts).

import type { TokenizerFiles } from '../load';
import type { GgufHeader } from './reader';

export class GgufTokenizerError extends Error {
  override name = 'GgufTokenizerError';
}

const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_USER_DEFINED = 4;
const TOKEN_UNUSED = 5;

interface PreTokenizer {
  regex: string;
  normalizer: Record<string, unknown> | null;
  ignoreMerges: boolean;
  trimOffsets: boolean;
  cleanUpSpaces: boolean;
}

// The Split regexes of Meta's Llama 3 and Qwen's tokenizer.json (they differ in \p{N}{1,3} vs \p{N}).
const PRE_TOKENIZERS: Record<string, PreTokenizer> = {
  'llama-bpe': {
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    normalizer: null,
    ignoreMerges: true,
    trimOffsets: true,
    cleanUpSpaces: true,
  },
  qwen2: {
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    normalizer: { type: 'NFC' },
    ignoreMerges: false,
    trimOffsets: false,
    cleanUpSpaces: false,
  },
};

export const GGUF_PRE_TOKENIZERS = Object.keys(PRE_TOKENIZERS);

function strings(v: unknown, key: string, file: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new GgufTokenizerError(`${file}: GGUF "${key}" is missing or not a list of strings`);
  return v as string[];
}

/** True when the file carries a tokenizer we can rebuild (else the caller needs tokenizer.json). */
export function ggufTokenizerProblem(h: GgufHeader): string | null {
  const m = h.metadata;
  const model = m['tokenizer.ggml.model'];
  if (model === undefined) return `${h.file} has no tokenizer (no tokenizer.ggml.model)`;
  if (model !== 'gpt2')
    return `${h.file}: GGUF tokenizer.ggml.model "${String(model)}" is not supported (only byte-level BPE, "gpt2", as Llama 3 and Qwen use)`;
  const pre = m['tokenizer.ggml.pre'];
  if (typeof pre !== 'string' || !(pre in PRE_TOKENIZERS))
    return `${h.file}: GGUF tokenizer.ggml.pre "${String(pre)}" is not supported (supported: ${GGUF_PRE_TOKENIZERS.join(', ')})`;
  return null;
}

/** tokenizer.json and tokenizer_config.json objects equivalent to the GGUF file's tokenizer. */
export function ggufTokenizerFiles(h: GgufHeader): TokenizerFiles {
  const problem = ggufTokenizerProblem(h);
  if (problem) throw new GgufTokenizerError(`${problem}; put the model's tokenizer.json beside the .gguf file (or load from a repo that has it)`);
  const m = h.metadata;
  const pre = PRE_TOKENIZERS[m['tokenizer.ggml.pre'] as string]!;
  const tokens = strings(m['tokenizer.ggml.tokens'], 'tokenizer.ggml.tokens', h.file);
  const merges = strings(m['tokenizer.ggml.merges'], 'tokenizer.ggml.merges', h.file);
  const typesRaw = m['tokenizer.ggml.token_type'];
  const types = Array.isArray(typesRaw) ? typesRaw.map(Number) : tokens.map(() => TOKEN_NORMAL);
  if (types.length !== tokens.length)
    throw new GgufTokenizerError(`${h.file}: GGUF tokenizer.ggml.token_type has ${types.length} entries for ${tokens.length} tokens`);

  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  tokens.forEach((t, id) => {
    const type = types[id];
    if (type === TOKEN_UNUSED) return;
    if (type === TOKEN_CONTROL || type === TOKEN_USER_DEFINED)
      added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type === TOKEN_CONTROL });
    else vocab[t] = id;
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: pre.trimOffsets, use_regex: false };
  const tokenAt = (key: string): string | null => {
    const id = m[key];
    if (id === undefined) return null;
    const t = tokens[Number(id)];
    if (t === undefined) throw new GgufTokenizerError(`${h.file}: GGUF ${key} = ${String(id)} is not a token id (${tokens.length} tokens)`);
    return t;
  };
  const bos = tokenAt('tokenizer.ggml.bos_token_id');
  const addBos = m['tokenizer.ggml.add_bos_token'] === true && bos !== null;
  const postProcessor = addBos
    ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: bos, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: bos, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [bos]: { id: bos, ids: [Number(m['tokenizer.ggml.bos_token_id'])], tokens: [bos] } },
      }
    : byteLevel;
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: pre.normalizer,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Split', pattern: { Regex: pre.regex }, behavior: 'Isolated', invert: false }, byteLevel],
    },
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab,
      merges: merges.map((s) => {
        const at = s.indexOf(' ');
        return [s.slice(0, at), s.slice(at + 1)];
      }),
    },
  };
  const template = m['tokenizer.chat_template'];
  const tokenizerConfig: Record<string, unknown> = {
    bos_token: bos,
    eos_token: tokenAt('tokenizer.ggml.eos_token_id'),
    pad_token: tokenAt('tokenizer.ggml.padding_token_id'),
    add_bos_token: addBos,
    clean_up_tokenization_spaces: pre.cleanUpSpaces,
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...(typeof template === 'string' ? { chat_template: template } : {}),
  };
  return { tokenizerJson, tokenizerConfig, chatTemplate: null };
}
