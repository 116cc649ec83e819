// Emulated subgroup matrices in plain WGSL, for testing shaders/matmul_sgmat.wgsl where the
// adapter lacks chromium-experimental-subgroup-matrix (SwiftShader). Same semantics as the
// hardware prelude of src/engine/matmul-sgmat.ts for an f32 8×8×8 config: every invocation of a
// subgroup holds the whole 8×8 matrix (element [r][c] at v[r * 8 + c]) and computes it
// redundantly; loads read `sh` with the builtins' addressing (row-major: off + r·stride + c,
// column-major: off + c·stride + r); a store is done by lane 0 alone (the others hold the same
// values) and, like the builtin's, is seen by the workgroup after the next workgroupBarrier.

struct SgLeft {
  v: array<f32, 64>,
}
struct SgRight {
  v: array<f32, 64>,
}
struct SgResult {
  v: array<f32, 64>,
}

fn sgm_left_rm(off: u32, stride: u32) -> SgLeft {
  var m: SgLeft;
  for (var r = 0u; r < 8u; r++) {
    for (var c = 0u; c < 8u; c++) {
      m.v[r * 8u + c] = sh[off + r * stride + c];
    }
  }
  return m;
}

fn sgm_left_cm(off: u32, stride: u32) -> SgLeft {
  var m: SgLeft;
  for (var r = 0u; r < 8u; r++) {
    for (var c = 0u; c < 8u; c++) {
      m.v[r * 8u + c] = sh[off + c * stride + r];
    }
  }
  return m;
}

fn sgm_right_rm(off: u32, stride: u32) -> SgRight {
  var m: SgRight;
  for (var r = 0u; r < 8u; r++) {
    for (var c = 0u; c < 8u; c++) {
      m.v[r * 8u + c] = sh[off + r * stride + c];
    }
  }
  return m;
}

fn sgm_right_cm(off: u32, stride: u32) -> SgRight {
  var m: SgRight;
  for (var r = 0u; r < 8u; r++) {
    for (var c = 0u; c < 8u; c++) {
      m.v[r * 8u + c] = sh[off + c * stride + r];
    }
  }
  return m;
}

// acc + l · r: left is M×K (8×8), right K×N, result M×N.
fn sgm_mma(l: SgLeft, r: SgRight, acc: SgResult) -> SgResult {
  var o = acc;
  for (var i = 0u; i < 8u; i++) {
    for (var j = 0u; j < 8u; j++) {
      var s = o.v[i * 8u + j];
      for (var k = 0u; k < 8u; k++) {
        s += l.v[i * 8u + k] * r.v[k * 8u + j];
      }
      o.v[i * 8u + j] = s;
    }
  }
  return o;
}

fn sgm_store(off: u32, stride: u32, m: SgResult, lane: u32) {
  if (lane == 0u) {
    for (var r = 0u; r < 8u; r++) {
      for (var c = 0u; c < 8u; c++) {
        sh[off + r * stride + c] = m.v[r * 8u + c];
      }
    }
  }
}
