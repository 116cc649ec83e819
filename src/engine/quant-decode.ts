// The WGSL that decodes base weights inside kernels (int8/int4: shaders/quant.wgsl; GGUF blocks:
// shaders/gguf.wgsl; f32/bf16/f16: shaders/matmul_b.wgsl), spliced into the matmul and embedding shaders. Kept apart from
// the host code of the formats (src/gpu/quant.ts, ggml.ts), which Node tools and the e2e specs
// import without a bundler that reads .wgsl files.
import floatSnippet from '../../shaders/matmul_b.wgsl?raw';
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

/**
 * The float-weight decoders of shaders/matmul_b.wgsl for one matmul shader: `prefix` replaces
 * `FB_` (FB_at: element e; FB_at8: elements e..e+7 by 16-byte loads), `word` is the shader's
 * function returning b's u32 word i, and `vec` its vec4u binding of b (without one, no FB_at8).
 */
export function floatDecodeWgsl(prefix: string, word: string, vec?: string): string {
  const [scalar, vector] = floatSnippet.split('//-- 16-byte loads');
  const code = vec ? `${scalar}//${vector!.replaceAll('BVEC', vec)}` : scalar!;
  return code.replaceAll('FB_', prefix).replaceAll('BWORD', word);
}
