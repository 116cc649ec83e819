// The WGSL block decoders against the reference decoders (ggml.ts), on generated tensors:
// random bytes (every quant bit pattern, finite random scales), ragged row counts, rows of one
// block and of many, so blocks start at every even byte offset of a word. Each element is read
// one at a time, four and eight at a time, as the kernels read them.
import { describe, expect, it } from 'vitest';
import { u32Params } from './params';
import { poisoned, testContext } from '../engine/testing/gpu';
import { randomBlocks } from '../engine/testing/ggml';
import { freshSeed, rng } from '../engine/testing/random';
import { ggmlDecodeWgsl } from '../engine/quant-decode';
import { dequantize, FORMAT_OF_DTYPE, GGML_FORMAT_CODE, type GgmlDType } from './ggml';

const CODE = /* wgsl */ `
@group(0) @binding(0) var<uniform> p: vec4u; // n, fmt
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
fn w_word(i: u32) -> u32 { return w[i]; }
${ggmlDecodeWgsl('G_', 'w_word')}
@compute @workgroup_size(64) fn at1(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < p.x) { out[g.x] = G_gguf_at(g.x, p.y); }
}
@compute @workgroup_size(64) fn at4(@builtin(global_invocation_id) g: vec3u) {
  let e = g.x * 4u;
  if (e < p.x) { let v = G_gguf_at4(e, p.y); for (var i = 0u; i < 4u; i++) { out[e + i] = v[i]; } }
}
@compute @workgroup_size(64) fn at8(@builtin(global_invocation_id) g: vec3u) {
  let e = g.x * 8u;
  if (e < p.x) { let v = G_gguf_at8(e, p.y); for (var i = 0u; i < 8u; i++) { out[e + i] = v[i / 4u][i % 4u]; } }
}
`;

describe('GGUF WGSL decoders', () => {
  const shapes: Record<GgmlDType, [number, number][]> = {
    q8_0: [[7, 96], [1, 32], [5, 32]],
    q4_0: [[5, 160], [3, 32]],
    q4_k: [[3, 512], [1, 256]],
    q6_k: [[3, 768], [2, 256]],
  };
  for (const [name, list] of Object.entries(shapes) as [GgmlDType, [number, number][]][])
    it(`${name}: every element, read 1, 4 and 8 at a time, equals the reference decoder`, async () => {
      const ctx = await testContext();
      const f = FORMAT_OF_DTYPE[name];
      for (const [rows, cols] of list) {
        const seed = freshSeed();
        const bytes = randomBlocks(f, rows, cols, rng(seed));
        const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
        padded.set(bytes);
        const w = ctx.tensor([padded.length / 4], 'u32', `${name} blocks`);
        ctx.writeBytes(w, padded);
        const n = rows * cols;
        const want = dequantize(f, bytes, n);
        for (const [entry, per] of [['at1', 1], ['at4', 4], ['at8', 8]] as const) {
          const out = poisoned(ctx, [n], 'out');
          const batch = ctx.batch();
          batch.dispatch({
            kernel: { name: 'gguf-decode-test', code: CODE, entryPoint: entry },
            params: u32Params(n, GGML_FORMAT_CODE[name]),
            buffers: [w, out],
            groups: [Math.ceil(n / per / 64)],
          });
          batch.submit();
          const got = await ctx.readF32(out);
          let worst = 0;
          for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / Math.max(1e-3, Math.abs(want[i]!)));
          expect(worst, `${name} [${rows}, ${cols}] ${entry} seed ${seed}`).toBeLessThan(1e-6);
          out.release();
        }
        w.release();
      }
    });
});
