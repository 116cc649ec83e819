// GGUF block decoders: a snippet spliced into the shaders that read base weights (beside
// quant.wgsl, by quantDecodeWgsl in src/gpu/quant.ts; ggmlDecodeWgsl in src/gpu/ggml.ts), written
// against a word accessor QWORD(i) over the tensor's raw bytes and the prefix Q_. The blocks stay
// in their file layout (ggml-common.h): 34-byte Q8_0, 18-byte Q4_0, 144-byte Q4_K, 210-byte Q6_K,
// rows of whole blocks one after another, so a block may start at any even byte. e is the element
// index in the row-major tensor; src/gpu/ggml.ts has the reference decoders.
//
// fmt codes (FORMAT_CODE in src/gpu/quant.ts, GGML_FORMAT_CODE in ggml.ts): 5 q8_0, 6 q4_0, 7 q4_k, 8 q6_k.

fn Q_gbyte(i: u32) -> u32 {
  return (QWORD(i >> 2u) >> ((i & 3u) * 8u)) & 0xffu;
}

fn Q_gi8(i: u32) -> i32 {
  return (i32(Q_gbyte(i)) << 24u) >> 24u;
}

// The f16 at an even byte offset.
fn Q_ghalf(i: u32) -> f32 {
  return unpack2x16float((QWORD(i >> 2u) >> ((i & 2u) * 8u)) & 0xffffu).x;
}

// Q8_0: d, then 32 int8 quants; x = d·q.
fn Q_q8_0(e: u32) -> f32 {
  let b = (e >> 5u) * 34u;
  return Q_ghalf(b) * f32(Q_gi8(b + 2u + (e & 31u)));
}

// Q4_0: d, then 16 bytes: elements 0..15 in the low nibbles, 16..31 in the high; x = d·(q − 8).
fn Q_q4_0(e: u32) -> f32 {
  let b = (e >> 5u) * 18u;
  let j = e & 31u;
  let byte = Q_gbyte(b + 2u + (j & 15u));
  let q = select(byte & 15u, byte >> 4u, j >= 16u);
  return Q_ghalf(b) * (f32(q) - 8.0);
}

// Q4_K: d, dmin, 12 bytes of 6-bit scales and mins for 8 sub-blocks of 32, 128 bytes of nibbles
// in 64-element chunks (sub-block 2c in the low nibbles of chunk c, 2c+1 in the high ones).
fn Q_q4_k(e: u32) -> f32 {
  let b = (e >> 8u) * 144u; // 144-byte blocks start word-aligned
  let i = e & 255u;
  let sub = i >> 5u;
  let byte = Q_gbyte(b + 16u + 32u * (i >> 6u) + (i & 31u));
  let q = select(byte & 15u, byte >> 4u, (sub & 1u) == 1u);
  let s = b + 4u;
  var sc: u32;
  var m: u32;
  if (sub < 4u) {
    sc = Q_gbyte(s + sub) & 63u;
    m = Q_gbyte(s + sub + 4u) & 63u;
  } else {
    let lo = Q_gbyte(s + sub + 4u);
    sc = (lo & 15u) | ((Q_gbyte(s + sub - 4u) >> 6u) << 4u);
    m = (lo >> 4u) | ((Q_gbyte(s + sub) >> 6u) << 4u);
  }
  let dm = unpack2x16float(QWORD(b >> 2u));
  return dm.x * f32(sc) * f32(q) - dm.y * f32(m);
}

// Q6_K: ql[128] low nibbles, qh[64] high 2-bit pairs, 16 int8 scales (one per 16 elements), d.
// Each 128-element half: runs of 32 at r = 0, 32, 64, 96 take ql[l], ql[l+32], ql[l]>>4,
// ql[l+32]>>4 and bits 0-1, 2-3, 4-5, 6-7 of qh[l]; x = d·sc·(q − 32).
fn Q_q6_k(e: u32) -> f32 {
  let b = (e >> 8u) * 210u;
  let i = e & 255u;
  let c = i >> 7u;
  let l = i & 31u;
  let part = (i & 127u) >> 5u;
  let ql = Q_gbyte(b + 64u * c + l + (part & 1u) * 32u);
  let low = select(ql & 15u, ql >> 4u, part >= 2u);
  let qh = Q_gbyte(b + 128u + 32u * c + l);
  let q = i32(low | (((qh >> (2u * part)) & 3u) << 4u)) - 32;
  return Q_ghalf(b + 208u) * f32(Q_gi8(b + 192u + (i >> 4u))) * f32(q);
}

fn Q_gguf_at(e: u32, fmt: u32) -> f32 {
  switch fmt {
    case 5u: {
      return Q_q8_0(e);
    }
    case 6u: {
      return Q_q4_0(e);
    }
    case 7u: {
      return Q_q4_k(e);
    }
    default: {
      return Q_q6_k(e);
    }
  }
}

// Four consecutive elements, e % 4 == 0: one sub-block of every format (sub-blocks are 16 or 32
// elements), so the scales are read once.
fn Q_q8_0_4(e: u32) -> vec4f {
  let b = (e >> 5u) * 34u;
  let i = b + 2u + (e & 31u);
  return Q_ghalf(b) * vec4f(f32(Q_gi8(i)), f32(Q_gi8(i + 1u)), f32(Q_gi8(i + 2u)), f32(Q_gi8(i + 3u)));
}

fn Q_q4_0_4(e: u32) -> vec4f {
  let b = (e >> 5u) * 18u;
  let j = e & 31u;
  let i = b + 2u + (j & 15u);
  let sh = select(0u, 4u, j >= 16u);
  let q = vec4u(Q_gbyte(i), Q_gbyte(i + 1u), Q_gbyte(i + 2u), Q_gbyte(i + 3u)) >> vec4u(sh);
  return Q_ghalf(b) * (vec4f(q & vec4u(15u)) - 8.0);
}

fn Q_q4_k_4(e: u32) -> vec4f {
  let b = (e >> 8u) * 144u;
  let i = e & 255u;
  let sub = i >> 5u;
  let at = b + 16u + 32u * (i >> 6u) + (i & 31u);
  let sh = select(0u, 4u, (sub & 1u) == 1u);
  let q = (vec4u(Q_gbyte(at), Q_gbyte(at + 1u), Q_gbyte(at + 2u), Q_gbyte(at + 3u)) >> vec4u(sh)) & vec4u(15u);
  let s = b + 4u;
  var sc: u32;
  var m: u32;
  if (sub < 4u) {
    sc = Q_gbyte(s + sub) & 63u;
    m = Q_gbyte(s + sub + 4u) & 63u;
  } else {
    let lo = Q_gbyte(s + sub + 4u);
    sc = (lo & 15u) | ((Q_gbyte(s + sub - 4u) >> 6u) << 4u);
    m = (lo >> 4u) | ((Q_gbyte(s + sub) >> 6u) << 4u);
  }
  let dm = unpack2x16float(QWORD(b >> 2u));
  return (dm.x * f32(sc)) * vec4f(q) - vec4f(dm.y * f32(m));
}

fn Q_q6_k_4(e: u32) -> vec4f {
  let b = (e >> 8u) * 210u;
  let i = e & 255u;
  let c = i >> 7u;
  let l = i & 31u;
  let part = (i & 127u) >> 5u;
  let qa = b + 64u * c + l + (part & 1u) * 32u;
  let ha = b + 128u + 32u * c + l;
  let ql = vec4u(Q_gbyte(qa), Q_gbyte(qa + 1u), Q_gbyte(qa + 2u), Q_gbyte(qa + 3u)) >> vec4u(select(0u, 4u, part >= 2u));
  let qh = vec4u(Q_gbyte(ha), Q_gbyte(ha + 1u), Q_gbyte(ha + 2u), Q_gbyte(ha + 3u)) >> vec4u(2u * part);
  let q = vec4i((ql & vec4u(15u)) | ((qh & vec4u(3u)) << vec4u(4u))) - vec4i(32);
  return Q_ghalf(b + 208u) * f32(Q_gi8(b + 192u + (i >> 4u))) * vec4f(q);
}

fn Q_gguf_at4(e: u32, fmt: u32) -> vec4f {
  switch fmt {
    case 5u: {
      return Q_q8_0_4(e);
    }
    case 6u: {
      return Q_q4_0_4(e);
    }
    case 7u: {
      return Q_q4_k_4(e);
    }
    default: {
      return Q_q6_k_4(e);
    }
  }
}

// Eight consecutive elements, e % 8 == 0.
fn Q_gguf_at8(e: u32, fmt: u32) -> array<vec4f, 2> {
  return array<vec4f, 2>(Q_gguf_at4(e, fmt), Q_gguf_at4(e + 4u, fmt));
}
