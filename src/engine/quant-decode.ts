// The WGSL that decodes quantized base weights inside kernels (int8/int4: shaders/quant.wgsl;
// GGUF blocks: shaders/gguf.wgsl), spliced into the matmul and embedding shaders. Kept apart from
// the host code of the formats (src/gpu/quant.ts, ggml.ts), which Node tools and the e2e specs
// import without a bundler that reads .wgsl files.
import quantSnippet from '../../shaders/quant.wgsl?raw';
import ggufSnippet from '../../shaders/gguf.wgsl?raw';

/** shaders/gguf.wgsl with `Q_` renamed to `prefix` and `QWORD(i)` to `wordFn(i)` (as quantDecodeWgsl). */
export function ggmlDecodeWgsl(prefix: string, wordFn: string): string {
  return ggufSnippet.replace(/\bQ_/g, prefix).replace(/\bQWORD\(/g, `${wordFn}(`);
}

/**
 * The decode functions of shaders/quant.wgsl for one shader: `prefix` replaces `Q_` in their
 * names and `word` is the shader's function returning the weight buffer's u32 word i.
 */
export function quantDecodeWgsl(prefix: string, word: string): string {
  // GGUF's block formats (fmt ≥ 5) come with it: shaders/gguf.wgsl, which Q_at* branch to.
  return `${quantSnippet.replaceAll('Q_', prefix).replaceAll('QWORD', word)}\n${ggmlDecodeWgsl(prefix, word)}`;
}
