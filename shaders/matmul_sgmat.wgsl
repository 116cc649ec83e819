// Subgroup-matrix matmul (chromium-experimental-subgroup-matrix: Apple M1 and later in Chrome).
// The same generic product as shaders/matmul.wgsl,  C[P,Q] = Σ_d A(p,d) · B(d,q),  then
// out = alpha * C + (accumulate ? out : 0), for the layouts
//   layout  A(p,d)          B(d,q)
//   nt      a[p*D + d]      b[off + q*D + d]
//   nn      a[p*D + d]      b[off + d*Q + q]
//   tn      a[d*P + p]      b[off + d*Q + q]
// with b f32, bf16 or f16 (widened to f32 when staged).
//
// This file is the kernel body. src/engine/matmul-sgmat.ts puts in front of it
//   - consts: LAYOUT, A_T (A contiguous along p: tn), B_T (B contiguous along d: nt), SG_SIZE,
//     SGP × SGQ subgroups, each MI × NJ result matrices of 8×8, TK, the workgroup-memory strides
//     and SH, NA / NB (prefetch registers per invocation), VEC (16-byte loads)
//   - a prelude that defines SgLeft / SgRight / SgResult and
//       sgm_left_rm(off, stride) / sgm_left_cm   8×8 left matrix from sh, row- or column-major
//       sgm_right_rm(off, stride) / sgm_right_cm 8×8 right matrix from sh
//       sgm_mma(l, r, acc) -> acc + l·r
//       sgm_store(off, stride, m, lane)          8×8 result into sh, row-major
//     either over the chromium builtins (hardware) or in plain WGSL (emulated: every invocation
//     holds whole matrices and computes them redundantly; lane 0 stores), so the body below is
//     tested on SwiftShader through the emulated prelude and proven on a GPU by the self-test;
//   - the entry points, which pass the invocation's subgroup index and lane.
//
// A workgroup computes a TM × TN tile of C (TM = SGP·MI·8, TN = SGQ·NJ·8). Per TK-deep slice of
// d it stages A and B in workgroup memory (f32; strides padded by 4 against bank conflicts), the
// next slice already loaded into registers while this one is multiplied. Global loads are 16
// bytes (VEC: the contiguous dims and b's offset aligned) or bounds-checked scalars (any shape);
// out-of-range elements stage as zero. Each subgroup multiplies its MI × NJ matrices in 8-deep
// steps, then stores them through workgroup memory so the whole workgroup writes the in-range
// part of the tile with alpha and accumulate applied.

struct Params {
  rows: u32,       // P
  cols: u32,       // Q
  depth: u32,      // D
  b_offset: u32,   // element offset of the operand in b
  alpha: f32,
  accumulate: u32, // 1: add the previous contents of out
  tiles_q: u32,    // tiles along Q
  groups: u32,     // tiles in all
  tile0: u32,      // first tile of this dispatch (large products are cut into several)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// a (binding 1, f32) and b (binding 2, u32 words) are declared by matmul-sgmat.ts as scalar
// arrays or, in VEC modules, as arrays of 16-byte vectors (one view per module: a dead branch
// still counts as a use of a binding), behind a_at(i) -> f32, a_vec(i) -> vec4f (element 4i..),
// b_word(i) -> u32 and b_vec(i) -> vec4u (word 4i..).

const F32 = 0u;
const BF16 = 1u;
const F16 = 2u;

const TM = SGP * MI * 8u;
const TN = SGQ * NJ * 8u;
const WG = SGP * SGQ * SG_SIZE;
// Offsets in sh: the A tile, then the B tile; the C tile reuses the space after the last slice.
const A0 = 0u;
const B0 = select(TM * SA, TK * SA, A_T);

var<workgroup> sh: array<f32, SH>;

// Element e of b (scalar view): fb_at(e, dt), spliced in from shaders/matmul_b.wgsl.

// Four consecutive elements of a along its contiguous dim: a[outer * n_inner + inner ..+3],
// zero past n_outer / n_inner. VEC: n_inner and inner are multiples of 4.
fn a_chunk(outer: u32, inner: u32, n_outer: u32, n_inner: u32) -> vec4f {
  var v = vec4f(0.0);
  if (outer < n_outer) {
    let e = outer * n_inner + inner;
    if (VEC) {
      if (inner < n_inner) {
        v = a_vec(e >> 2u);
      }
    } else {
      for (var j = 0u; j < 4u; j++) {
        if (inner + j < n_inner) {
          v[j] = a_at(e + j);
        }
      }
    }
  }
  return v;
}

// Eight consecutive elements of b: b[off + outer * n_inner + inner ..+7] as two vec4s, zero past
// the edges. VEC: n_inner, inner and off are multiples of 4 (f32) or 8 (16-bit), so each 16-byte
// load is wholly in or out of range.
fn b_chunk(outer: u32, inner: u32, n_outer: u32, n_inner: u32, dt: u32) -> array<vec4f, 2> {
  var v: array<vec4f, 2>;
  if (outer < n_outer) {
    let e = p.b_offset + outer * n_inner + inner;
    if (VEC) {
      if (dt == F32) {
        if (inner < n_inner) {
          v[0] = bitcast<vec4f>(b_vec(e >> 2u));
        }
        if (inner + 4u < n_inner) {
          v[1] = bitcast<vec4f>(b_vec((e >> 2u) + 1u));
        }
      } else if (inner < n_inner) {
        let w = b_vec(e >> 3u);
        if (dt == BF16) {
          v[0] = vec4f(bitcast<f32>(w.x << 16u), bitcast<f32>(w.x & 0xffff0000u), bitcast<f32>(w.y << 16u), bitcast<f32>(w.y & 0xffff0000u));
          v[1] = vec4f(bitcast<f32>(w.z << 16u), bitcast<f32>(w.z & 0xffff0000u), bitcast<f32>(w.w << 16u), bitcast<f32>(w.w & 0xffff0000u));
        } else {
          v[0] = vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
          v[1] = vec4f(unpack2x16float(w.z), unpack2x16float(w.w));
        }
      }
    } else {
      for (var j = 0u; j < 8u; j++) {
        if (inner + j < n_inner) {
          v[j >> 2u][j & 3u] = fb_at(e + j, dt);
        }
      }
    }
  }
  return v;
}

// Chunk c of the A slice starting at d0: (outer, inner) in a's own layout and where it goes in sh.
//   nt/nn: TM rows p × TK/4 chunks of d, staged [p][d] (stride SA)
//   tn:    TK rows d × TM/4 chunks of p, staged [d][p] (stride SA)
fn a_fetch(c: u32, p0: u32, d0: u32) -> vec4f {
  if (A_T) {
    let r = c / (TM / 4u);
    let i = (c % (TM / 4u)) * 4u;
    return a_chunk(d0 + r, p0 + i, p.depth, p.rows);
  }
  let r = c / (TK / 4u);
  let i = (c % (TK / 4u)) * 4u;
  return a_chunk(p0 + r, d0 + i, p.rows, p.depth);
}

fn a_stash(c: u32, v: vec4f) {
  var base: u32;
  if (A_T) {
    base = A0 + (c / (TM / 4u)) * SA + (c % (TM / 4u)) * 4u;
  } else {
    base = A0 + (c / (TK / 4u)) * SA + (c % (TK / 4u)) * 4u;
  }
  sh[base] = v.x;
  sh[base + 1u] = v.y;
  sh[base + 2u] = v.z;
  sh[base + 3u] = v.w;
}

// Chunk c of the B slice:
//   nt:    TN rows q × TK/8 chunks of d, staged [q][d] (stride SB)
//   nn/tn: TK rows d × TN/8 chunks of q, staged [d][q] (stride SB)
fn b_fetch(c: u32, q0: u32, d0: u32, dt: u32) -> array<vec4f, 2> {
  if (B_T) {
    let r = c / (TK / 8u);
    let i = (c % (TK / 8u)) * 8u;
    return b_chunk(q0 + r, d0 + i, p.cols, p.depth, dt);
  }
  let r = c / (TN / 8u);
  let i = (c % (TN / 8u)) * 8u;
  return b_chunk(d0 + r, q0 + i, p.depth, p.cols, dt);
}

fn b_stash(c: u32, v: array<vec4f, 2>) {
  var base: u32;
  if (B_T) {
    base = B0 + (c / (TK / 8u)) * SB + (c % (TK / 8u)) * 8u;
  } else {
    base = B0 + (c / (TN / 8u)) * SB + (c % (TN / 8u)) * 8u;
  }
  for (var j = 0u; j < 8u; j++) {
    sh[base + j] = v[j >> 2u][j & 3u];
  }
}

// li: local invocation index; sg: its subgroup within the workgroup; lane: its index there.
fn sgmat(wid: vec3u, nwg: vec3u, li: u32, sg: u32, lane: u32, dt: u32) {
  let tile = p.tile0 + wid.x + wid.y * nwg.x;
  if (tile >= p.groups) {
    return;
  }
  let p0 = (tile / p.tiles_q) * TM;
  let q0 = (tile % p.tiles_q) * TN;
  let D = p.depth;
  // This subgroup's block of the tile: rows sp·MI·8.., columns sq·NJ·8..
  let sp = sg % SGP;
  let sq = sg / SGP;
  let computes = sg < SGP * SGQ; // more, smaller subgroups than SG_SIZE assumes: the rest idle

  var acc: array<SgResult, MI * NJ>;
  var ra: array<vec4f, NA>;
  var rb: array<array<vec4f, 2>, NB>;
  const CA = TM * TK / 4u;
  const CB = TN * TK / 8u;
  for (var i = 0u; i < NA; i++) {
    let c = li + i * WG;
    if (c < CA) {
      ra[i] = a_fetch(c, p0, 0u);
    }
  }
  for (var i = 0u; i < NB; i++) {
    let c = li + i * WG;
    if (c < CB) {
      rb[i] = b_fetch(c, q0, 0u, dt);
    }
  }
  for (var d0 = 0u; d0 < D; d0 += TK) {
    for (var i = 0u; i < NA; i++) {
      let c = li + i * WG;
      if (c < CA) {
        a_stash(c, ra[i]);
      }
    }
    for (var i = 0u; i < NB; i++) {
      let c = li + i * WG;
      if (c < CB) {
        b_stash(c, rb[i]);
      }
    }
    workgroupBarrier();
    // Load the next slice while this one is multiplied.
    if (d0 + TK < D) {
      for (var i = 0u; i < NA; i++) {
        let c = li + i * WG;
        if (c < CA) {
          ra[i] = a_fetch(c, p0, d0 + TK);
        }
      }
      for (var i = 0u; i < NB; i++) {
        let c = li + i * WG;
        if (c < CB) {
          rb[i] = b_fetch(c, q0, d0 + TK, dt);
        }
      }
    }
    if (computes) {
      for (var k = 0u; k < TK; k += 8u) {
        var left: array<SgLeft, MI>;
        for (var i = 0u; i < MI; i++) {
          let r = (sp * MI + i) * 8u;
          if (A_T) {
            left[i] = sgm_left_cm(A0 + k * SA + r, SA);
          } else {
            left[i] = sgm_left_rm(A0 + r * SA + k, SA);
          }
        }
        for (var j = 0u; j < NJ; j++) {
          let c = (sq * NJ + j) * 8u;
          var right: SgRight;
          if (B_T) {
            right = sgm_right_cm(B0 + c * SB + k, SB);
          } else {
            right = sgm_right_rm(B0 + k * SB + c, SB);
          }
          for (var i = 0u; i < MI; i++) {
            acc[i * NJ + j] = sgm_mma(left[i], right, acc[i * NJ + j]);
          }
        }
      }
    }
    workgroupBarrier();
  }

  // Through workgroup memory to out: TM × TN, row-major, stride TN.
  if (computes) {
    for (var i = 0u; i < MI; i++) {
      for (var j = 0u; j < NJ; j++) {
        sgm_store((sp * MI + i) * 8u * TN + (sq * NJ + j) * 8u, TN, acc[i * NJ + j], lane);
      }
    }
  }
  workgroupBarrier();
  let P = p.rows;
  let Q = p.cols;
  for (var e = li; e < TM * TN; e += WG) {
    let gp = p0 + e / TN;
    let gq = q0 + e % TN;
    if (gp < P && gq < Q) {
      let o = gp * Q + gq;
      var v = p.alpha * sh[e];
      if (p.accumulate != 0u) {
        v += out[o];
      }
      out[o] = v;
    }
  }
}
