// Decode GEMV with subgroup reductions (adapters with `subgroups`; src/engine/matmul-gemv-sg.ts
// compiles it with `enable subgroups;` in front):
//   out[M,N] = alpha · a[M,K] · b[N,K]ᵀ + (accumulate ? out : 0),   1 ≤ M ≤ 8 (layout nt)
//
// A workgroup of WG invocations computes COLS output columns for all M rows: its invocations
// stride along K in units of 8 elements, each unit read from the COLS columns' rows of b (weight
// rows of K values) 16 bytes at a time (8 bf16/f16 values widened in registers, 4+4 f32, or 8
// int8/int4/GGUF values decoded by the splice of shaders/quant.wgsl), neighbours reading
// neighbouring words and COLS independent loads in flight, each row of a read once per unit for
// all columns; each invocation keeps the partial dot products of the M rows and COLS columns.
// Then one subgroupAdd per (column, row) sums each subgroup's lanes, the elected lane leaves that
// in workgroup memory, and after the one barrier the subgroup holding invocation 0 adds the
// subgroups' sums (a strided share per lane, one more subgroupAdd).
// The old gemv needs log2(64) + 1 barriers for its tree. Nothing depends on the subgroup size (4
// on SwiftShader, 32 or 64 on GPUs) or on how invocations are grouped into subgroups, and the
// order of additions is fixed for a device: the same bits every run.
// (A design where each subgroup claims whole columns from a workgroup atomic counter needs no
// barrier at all, but SwiftShader gives each subgroup its own view of a workgroup atomic.)
//
// Entry points gemv_sg_<b dtype> need K and bOffset multiples of 8 (every row of b then starts
// on a 16-byte boundary, and every row of a on one of 32 bytes); gemv_sg_any_<b dtype> take any
// K and bOffset, reading b and a element by element, the last K mod 8 elements in a tail loop.

struct Params {
  rows: u32,       // M
  cols: u32,       // N
  depth: u32,      // K
  b_offset: u32,   // element offset of the operand in b
  alpha: f32,
  accumulate: u32, // 1: add the previous contents of out
  groups: u32,     // workgroups that carry work
  scale_word: u32, // quantized b: word index of its f16 scales
  first_group: u32, // first workgroup of this dispatch (a product is cut into dispatches of bounded work)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4f>;
@group(0) @binding(2) var<storage, read> b4: array<vec4u>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override WG: u32 = 64;  // threads per workgroup
override COLS: u32 = 4; // output columns per workgroup (at most MAX_COLS)
override MR: u32 = 8;   // rows of a this pipeline handles (1, 2, 4 or 8; at least M)
const MAX_M = 8u;
const MAX_COLS = 8u;

const F32 = 0u;
const BF16 = 1u;
const F16 = 2u;
const INT8 = 3u; // quantized formats: dt >= INT8 (shaders/quant.wgsl)

var<workgroup> red: array<f32, COLS * MR * WG>; // [column][row][invocation]

fn b_word(i: u32) -> u32 {
  return b4[i >> 2u][i & 3u];
}

fn a_at(i: u32) -> f32 {
  return a4[i >> 2u][i & 3u];
}

// Element e of b as f32 (any e).
fn load_b(e: u32, dt: u32) -> f32 {
  if (dt >= INT8) {
    return qs_at(e, dt, p.scale_word);
  }
  return fb_at(e, dt); // shaders/matmul_b.wgsl
}

// Elements e..e+7 of b, e a multiple of 8: one 16-byte load of 16-bit b (two of f32).
fn load_b8(e: u32, dt: u32) -> array<vec4f, 2> {
  if (dt >= INT8) {
    return qs_at8(e, dt, p.scale_word);
  }
  return fb_at8(e, dt); // shaders/matmul_b.wgsl
}

// Elements e..e+7 of b at any e.
fn load_b8_any(e: u32, dt: u32) -> array<vec4f, 2> {
  return array(vec4f(load_b(e, dt), load_b(e + 1u, dt), load_b(e + 2u, dt), load_b(e + 3u, dt)),
               vec4f(load_b(e + 4u, dt), load_b(e + 5u, dt), load_b(e + 6u, dt), load_b(e + 7u, dt)));
}

fn store(i: u32, v: f32) {
  var r = p.alpha * v;
  if (p.accumulate != 0u) {
    r += out[i];
  }
  out[i] = r;
}

// `vec`: K and bOffset are multiples of 8 (16-byte loads of a and b).
fn gemv_sg(wid: vec3u, nwg: vec3u, lid: u32, vec: bool, dt: u32) {
  let g = p.first_group + wid.x + wid.y * nwg.x;
  if (g >= p.groups) {
    return;
  }
  let M = p.rows;
  let N = p.cols;
  let K = p.depth;
  let K8 = K / 8u;
  // The workgroup's columns: COLS of them, the last workgroup's past N skipped.
  let ncols = min(COLS, N - g * COLS);
  // Zeroed explicitly (SwiftShader kept a bare `var`'s values from an earlier pass of a loop).
  var acc = array<array<f32, MAX_M>, MAX_COLS>();
  // Depth outermost: per 8-element unit, the columns' loads are independent (COLS 16-byte loads in
  // flight) and each row of a is read once for all the columns.
  for (var i = lid; i < K8; i += WG) {
    let e = 8u * i;
    var w: array<array<vec4f, 2>, MAX_COLS>;
    for (var c = 0u; c < COLS; c++) {
      if (c < ncols) {
        let base = p.b_offset + (g * COLS + c) * K + e;
        if (vec) {
          w[c] = load_b8(base, dt);
        } else {
          w[c] = load_b8_any(base, dt);
        }
      }
    }
    for (var m = 0u; m < MR; m++) {
      if (m < M) {
        let ai = m * K + e;
        var x0: vec4f;
        var x1: vec4f;
        if (vec) {
          x0 = a4[ai >> 2u];
          x1 = a4[(ai >> 2u) + 1u];
        } else {
          x0 = vec4f(a_at(ai), a_at(ai + 1u), a_at(ai + 2u), a_at(ai + 3u));
          x1 = vec4f(a_at(ai + 4u), a_at(ai + 5u), a_at(ai + 6u), a_at(ai + 7u));
        }
        for (var c = 0u; c < COLS; c++) {
          acc[c][m] += dot(x0, w[c][0]) + dot(x1, w[c][1]);
        }
      }
    }
  }
  // The last K mod 8 elements (only where K is not a multiple of 8).
  for (var k = 8u * K8 + lid; k < K; k += WG) {
    for (var c = 0u; c < COLS; c++) {
      if (c < ncols) {
        let w = load_b(p.b_offset + (g * COLS + c) * K + k, dt);
        for (var m = 0u; m < MR; m++) {
          if (m < M) {
            acc[c][m] += a_at(m * K + k) * w;
          }
        }
      }
    }
  }
  // Each subgroup's sums, left by its elected invocation (the others leave 0: every slot is written).
  let elected = subgroupElect();
  for (var c = 0u; c < COLS; c++) {
    for (var m = 0u; m < MR; m++) {
      let s = subgroupAdd(acc[c][m]);
      red[(c * MR + m) * WG + lid] = select(0.0, s, elected);
    }
  }
  workgroupBarrier();
  // The subgroup holding invocation 0 adds the subgroups' sums: each lane a strided share of the
  // WG slots, then one subgroupAdd. Lanes are numbered densely over the active invocations.
  if (subgroupAny(lid == 0u)) {
    let lane = subgroupExclusiveAdd(1u);
    let lanes = subgroupAdd(1u);
    for (var c = 0u; c < COLS; c++) {
      let n = g * COLS + c;
      for (var m = 0u; m < MR; m++) {
        let o = (c * MR + m) * WG;
        var v = 0.0;
        for (var j = lane; j < WG; j += lanes) {
          v += red[o + j];
        }
        let s = subgroupAdd(v);
        if (n < N && m < M && lane == (c * MR + m) % lanes) {
          store(m * N + n, s);
        }
      }
    }
  }
}
