// Float weights b (f32, bf16 or f16: the F32, BF16 and F16 codes of the matmul shaders) decoded
// from their u32 words. Not a shader on its own: floatDecodeWgsl (src/engine/quant-decode.ts)
// splices it into the matmul shaders with `FB_` renamed to a prefix and BWORD(i) to the shader's
// function returning b's word i; FB_at8 comes only with a vec4u binding of b, BVEC renamed to it.

// Element e of b as f32.
fn FB_at(e: u32, dt: u32) -> f32 {
  if (dt == F32) {
    return bitcast<f32>(BWORD(e));
  }
  let w = BWORD(e >> 1u);
  if (dt == BF16) {
    return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (e & 1u) == 1u));
  }
  return unpack2x16float(w)[e & 1u];
}

//-- 16-byte loads (with a vec4u binding of b)

// Elements e..e+7 of b, e a multiple of 8: one 16-byte load of 16-bit b (two of f32).
fn FB_at8(e: u32, dt: u32) -> array<vec4f, 2> {
  if (dt == F32) {
    return array(bitcast<vec4f>(BVEC[e >> 2u]), bitcast<vec4f>(BVEC[(e >> 2u) + 1u]));
  }
  let v = BVEC[e >> 3u];
  if (dt == BF16) {
    return array(bitcast<vec4f>(vec4u(v.x << 16u, v.x & 0xffff0000u, v.y << 16u, v.y & 0xffff0000u)),
                 bitcast<vec4f>(vec4u(v.z << 16u, v.z & 0xffff0000u, v.w << 16u, v.w & 0xffff0000u)));
  }
  return array(vec4f(unpack2x16float(v.x), unpack2x16float(v.y)), vec4f(unpack2x16float(v.z), unpack2x16float(v.w)));
}
