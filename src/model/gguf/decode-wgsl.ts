// The WGSL decoders of GGUF block types (shaders/gguf.wgsl), spliced into a kernel with that
// kernel's own word accessor and name prefix, as quant.wgsl is for int8/int4.
import snippet from '../../../shaders/gguf.wgsl?raw';
import type { GgmlTypeName } from './blocks';

/** Format codes of the GGUF block types in every shader (shared with int8/int4's 3 and 4). */
export const GGUF_FORMAT_CODE = { Q8_0: 5, Q4_0: 6, Q4_K: 7, Q6_K: 8 } as const satisfies Partial<Record<GgmlTypeName, number>>;

/** shaders/gguf.wgsl with `Q_` renamed to `prefix` and `QWORD(i)` to `wordFn(i)`. */
export function ggufDecodeWgsl(prefix: string, wordFn: string): string {
  return snippet.replace(/\bQ_/g, prefix).replace(/\bQWORD\(/g, `${wordFn}(`);
}
