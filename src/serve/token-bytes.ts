// The exact bytes of a token, for OpenAI's logprobs `bytes` (a token may hold part of a UTF-8
// character, so its text alone cannot say what it adds to the output).
//
// Byte-level BPE vocabularies (GPT-2, Llama 3, Qwen) spell each byte as one character of the
// GPT-2 bytes_to_unicode table ("Ġ" is the space byte 0x20); SentencePiece vocabularies (Llama 2,
// Mistral) spell text directly with "▁" for a space and byte-fallback tokens "<0xE2>". Which one
// a token is read as is checked against the tokenizer's own decoding of it, so a SentencePiece
// piece like "é" is never misread as the single byte 0xE9. Special tokens are their text.
import type { LoadedTokenizer } from '../tokenizer';

/** GPT-2's bytes_to_unicode, inverted: character code → byte. */
const UNICODE_TO_BYTE: ReadonlyMap<number, number> = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const m = new Map<number, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) m.set(printable(b) ? b : 256 + n++, b);
  return m;
})();

const utf8 = new TextEncoder();
const lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }); // a BOM is a character here

function byteLevel(piece: string): number[] | null {
  const out: number[] = [];
  for (const ch of piece) {
    const b = UNICODE_TO_BYTE.get(ch.codePointAt(0)!);
    if (b === undefined) return null;
    out.push(b);
  }
  return out;
}

export interface TokenText {
  /** The token's bytes decoded as UTF-8 (U+FFFD for an incomplete character). */
  token: string;
  bytes: number[];
}

/** A cached id → {token, bytes} reader for one tokenizer. */
export function tokenTextReader(tok: LoadedTokenizer): (id: number) => TokenText {
  const special = new Set(tok.specialTokens.values());
  const cache = new Map<number, TokenText>();
  const bytesOf = (id: number): number[] => {
    const piece = tok.idToToken(id);
    if (piece === undefined) return [...utf8.encode(tok.decode([id], { cleanUpTokenizationSpaces: false }))];
    if (special.has(id)) return [...utf8.encode(piece)];
    const b = byteLevel(piece);
    if (b && lossy.decode(Uint8Array.from(b)) === tok.decode([id], { cleanUpTokenizationSpaces: false })) return b;
    const fallback = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (fallback) return [parseInt(fallback[1]!, 16)];
    return [...utf8.encode(piece.replaceAll('\u2581', ' '))];
  };
  return (id) => {
    let t = cache.get(id);
    if (!t) {
      const bytes = bytesOf(id);
      t = { token: lossy.decode(Uint8Array.from(bytes)), bytes };
      cache.set(id, t);
    }
    return t;
  };
}
