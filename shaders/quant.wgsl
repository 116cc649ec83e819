// Decode of quantized weight formats: a snippet spliced into the shaders that read base weights
// (matmul, embedding) by quantDecodeWgsl (src/gpu/quant.ts), which renames `Q_` to the shader's
// prefix and `QWORD` to its function returning u32 word i of the weight buffer. Not a module.
//
// Layout (src/gpu/quant.ts): values first, then f16 scales two per word from word s0; one scale
// per group of 32 consecutive elements.
//   int8 (fmt 3): element e = signed byte e&3 of word e>>2;        value = q · d
//   int4 (fmt 4): element e = nibble e&7 of word e>>3 (low first); value = (q − 8) · d
// GGUF block formats (5 q8_0, 6 q4_0, 7 q4_k, 8 q6_k; s0 unused) branch to shaders/gguf.wgsl,
// which quantDecodeWgsl splices in after this snippet.

const Q_INT8 = 3u;
const Q_INT4 = 4u;

// The 4 signed bytes of a word (element 0 in the low byte).
fn Q_i8x4(w: u32) -> vec4f {
  let i = bitcast<i32>(w);
  return vec4f(vec4i(i << 24u, i << 16u, i << 8u, i) >> vec4u(24u));
}

fn Q_scale(g: u32, s0: u32) -> f32 {
  return unpack2x16float(QWORD(s0 + (g >> 1u)))[g & 1u];
}

// Element e.
fn Q_at(e: u32, fmt: u32, s0: u32) -> f32 {
  if (fmt >= 5u) {
    return Q_gguf_at(e, fmt);
  }
  let d = Q_scale(e >> 5u, s0);
  if (fmt == Q_INT8) {
    return f32(extractBits(bitcast<i32>(QWORD(e >> 2u)), 8u * (e & 3u), 8u)) * d;
  }
  return (f32(extractBits(QWORD(e >> 3u), 4u * (e & 7u), 4u)) - 8.0) * d;
}

// Elements e..e+3, e a multiple of 4 (one group).
fn Q_at4(e: u32, fmt: u32, s0: u32) -> vec4f {
  if (fmt >= 5u) {
    return Q_gguf_at4(e, fmt);
  }
  let d = Q_scale(e >> 5u, s0);
  if (fmt == Q_INT8) {
    return Q_i8x4(QWORD(e >> 2u)) * d;
  }
  let w = QWORD(e >> 3u) >> (4u * (e & 4u));
  let q = vec4u(w, w >> 4u, w >> 8u, w >> 12u) & vec4u(15u);
  return (vec4f(q) - 8.0) * d;
}

// Elements e..e+7, e a multiple of 8 (one group).
fn Q_at8(e: u32, fmt: u32, s0: u32) -> array<vec4f, 2> {
  if (fmt >= 5u) {
    return Q_gguf_at8(e, fmt);
  }
  let d = Q_scale(e >> 5u, s0);
  if (fmt == Q_INT8) {
    return array(Q_i8x4(QWORD(e >> 2u)) * d, Q_i8x4(QWORD((e >> 2u) + 1u)) * d);
  }
  let w = QWORD(e >> 3u);
  let lo = vec4u(w, w >> 4u, w >> 8u, w >> 12u) & vec4u(15u);
  let hi = vec4u(w >> 16u, w >> 20u, w >> 24u, w >> 28u) & vec4u(15u);
  return array((vec4f(lo) - 8.0) * d, (vec4f(hi) - 8.0) * d);
}
