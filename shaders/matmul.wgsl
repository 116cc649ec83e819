// Matrix products for Linear layers and their gradients, in three layouts:
//   nt: out[M,N] = a[M,K] · b[N,K]ᵀ   (x·Wᵀ, forward; b is an HF [out, in] weight)
//   nn: out[M,K] = a[M,N] · b[N,K]    (dY·W, input gradient)
//   tn: out[N,K] = a[M,N]ᵀ · b[M,K]   (dYᵀ·X, weight gradient)
// and in every layout  out = alpha * product + (accumulate ? out : 0).
//
// All three are one generic product  C[P,Q] = Σ_d A(p,d) · B(d,q)  over a reduction of length D:
//   layout  P  Q  D   A(p,d)          B(d,q)
//   nt      M  N  K   a[p*D + d]      b[off + q*D + d]
//   nn      M  K  N   a[p*D + d]      b[off + d*Q + q]
//   tn      N  K  M   a[d*P + p]      b[off + d*Q + q]
//
// `a` and `out` are f32. `b` is bound as raw u32 words: f32 bits, two bf16/f16 values per word
// (element 2i in the low half), or a quantized weight (int8/int4: values then f16 group scales
// from word `scale_word`, decoded by the Q_ functions of shaders/quant.wgsl, which
// src/engine/matmul.ts splices in twice: qb_ over `b` and qb4_ over `b4`). Quantized entry
// points (<path>_<nt|nn>_<int8|int4>) are generated there too. Each entry point fixes the layout and b's type; the flags passed to
// the shared bodies are constants, so after inlining the loaders are straight-line code.
// Entry points are named <path>_<layout>_<b dtype>. The paths:
//
// tiled (hardware GPUs): a workgroup of WX×WY threads computes a (4·WY)×(4·WX) tile of C, each
//   thread a 4×4 register block. A and B are staged through workgroup memory in slices of TK along
//   d, d-major as vec4s (rows padded by one vec4 against bank conflicts), so the inner loop is two
//   vec4 reads and 16 FMAs per d. Any shape; edges are zero-filled when staging.
// regtile (hardware GPUs, float b, larger products): like tiled, with each thread an 8×8 block,
//   16-byte global loads (bf16/f16 b widened in registers), the next K tile prefetched into
//   registers while the current one is computed, and one barrier per K tile (see its section).
// gemv (hardware GPUs, nt with M ≤ 8: decode): GV_LANES threads per output column stride over d
//   reading whole words of b, for all M rows at once, then reduce through workgroup memory.
// direct / vec4 (CPU adapters such as SwiftShader, where a workgroup barrier costs about a
//   millisecond): no workgroup memory and no barriers. Each of CX×CY threads computes a 4×4 block
//   straight from global memory; rows and columns past the edge are clamped onto the last one and
//   their results dropped. `vec4` loads 4 consecutive elements at once and needs the contiguous
//   dims and bOffset to be multiples of 4; `direct` takes any shape.
// skinny (CPU adapters, nt with M ≤ 4: decode, the lm_head): each thread 4 columns for all M rows,
//   vec4 loads along d, no barriers (see its section at the end).
// narrow (hardware GPUs, Q ≤ 64: LoRA's rank-r products): NW threads, each 4 rows × 16 columns,
//   so a (4·NW)×16 tile instead of a 64×64 one that would be 75% idle at Q = 16; in nt with K and
//   bOffset multiples of 4 (narrow4) a and b are read 16 bytes at a time.
// splitk (hardware GPUs, small P·Q with long D: LoRA's weight gradients summing over all tokens):
//   `splits` slices of d each write a 4×4 block's partial sums into a scratch buffer; splitk_reduce
//   adds them in split order (deterministic) and applies alpha/accumulate.
//
// Tiles are numbered linearly (q fastest) and the grid is spread over x and y (see splitGroups);
// a big grid is cut into several dispatches, each starting at `first_group` (src/engine/matmul.ts,
// MATMUL_MAX_DISPATCH_FLOPS); workgroups past `groups` (the dispatch's end) exit at once.

struct Params {
  rows: u32,       // P (for gemv: M)
  cols: u32,       // Q (for gemv: N)
  depth: u32,      // D (for gemv: K)
  b_offset: u32,   // element offset of the operand in b
  alpha: f32,
  accumulate: u32, // 1: add the previous contents of out
  tiles_q: u32,    // tiles along Q (tiled, direct, vec4)
  groups: u32,     // workgroups that carry work
  scale_word: u32, // quantized b: word index of its f16 scales
  chunk: u32,      // splitk: reduction length per split
  splits: u32,     // splitk: number of splits (partial sums per output)
  first_group: u32, // linear index of this dispatch's first workgroup (a grid cut into several
                    // dispatches against the GPU watchdog); `groups` is then this dispatch's end
  aligned: u32,    // regtile: bit 0, a's rows start on 16 bytes; bit 1, b's rows on 16 bytes
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const F32 = 0u;
const BF16 = 1u;
const F16 = 2u;
const INT8 = 3u; // quantized formats: dt >= INT8 (shaders/quant.wgsl)

fn b_word(i: u32) -> u32 {
  return b[i];
}

// Element e of b as f32.
fn load_b(e: u32, dt: u32) -> f32 {
  if (dt >= INT8) {
    return qb_at(e, dt, p.scale_word);
  }
  return fb_at(e, dt); // shaders/matmul_b.wgsl
}

// Elements e and e+1 of b; `aligned` says e is even (both halves of one word for 16-bit types).
fn load_b2(e: u32, aligned: bool, dt: u32) -> vec2f {
  if (dt >= INT8) {
    return vec2f(qb_at(e, dt, p.scale_word), qb_at(e + 1u, dt, p.scale_word));
  }
  if (dt == F32) {
    return vec2f(bitcast<f32>(b[e]), bitcast<f32>(b[e + 1u]));
  }
  if (aligned) {
    let w = b[e >> 1u];
    if (dt == BF16) {
      return vec2f(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
    }
    return unpack2x16float(w);
  }
  let lo = b[e >> 1u];
  let hi = b[(e >> 1u) + 1u];
  if (dt == BF16) {
    return vec2f(bitcast<f32>(lo & 0xffff0000u), bitcast<f32>(hi << 16u));
  }
  return vec2f(unpack2x16float(lo).y, unpack2x16float(hi).x);
}

fn store(i: u32, v: f32) {
  var r = p.alpha * v;
  if (p.accumulate != 0u) {
    r += out[i];
  }
  out[i] = r;
}

// Writes the in-range part of a 4×4 block: acc[i][j] is C[pb + i, qb + j * qs].
fn store_block(pb: u32, qb: u32, qs: u32, acc: array<vec4f, 4>) {
  for (var i = 0u; i < 4u; i++) {
    let gp = pb + i;
    if (gp < p.rows) {
      for (var j = 0u; j < 4u; j++) {
        let gq = qb + j * qs;
        if (gq < p.cols) {
          store(gp * p.cols + gq, acc[i][j]);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// tiled

override WX: u32 = 16; // threads along Q; the tile is 4·WX wide
override WY: u32 = 16; // threads along P; the tile is 4·WY tall
override TK: u32 = 16; // reduction slice staged per step

var<workgroup> As: array<vec4f, TK * (WY + 1u)>; // [d][p/4], rows padded by one vec4
var<workgroup> Bs: array<vec4f, TK * (WX + 1u)>; // [d][q/4]

// Component c of a workgroup vec4, written with a constant swizzle: a store through a dynamic
// component index may be lowered to a read-modify-write of the whole vec4 (WGSL allows it; Tint's
// HLSL output does it), which would race with the neighbours writing the other components.
fn as_set(i: u32, c: u32, x: f32) {
  switch c {
    case 0u: { As[i].x = x; }
    case 1u: { As[i].y = x; }
    case 2u: { As[i].z = x; }
    default: { As[i].w = x; }
  }
}

fn bs_set(i: u32, c: u32, x: f32) {
  switch c {
    case 0u: { Bs[i].x = x; }
    case 1u: { Bs[i].y = x; }
    case 2u: { Bs[i].z = x; }
    default: { Bs[i].w = x; }
  }
}

// a_t: A is contiguous along p (tn). b_t: B is contiguous along d (nt).
fn tiled(wid: vec3u, nwg: vec3u, lid: vec3u, a_t: bool, b_t: bool, dt: u32) {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return;
  }
  let tp = 4u * WY;
  let tq = 4u * WX;
  let p0 = (tile / p.tiles_q) * tp;
  let q0 = (tile % p.tiles_q) * tq;
  let t = lid.y * WX + lid.x;
  let nthreads = WX * WY;
  let P = p.rows;
  let Q = p.cols;
  let D = p.depth;

  var acc: array<vec4f, 4>;
  for (var d0 = 0u; d0 < D; d0 += TK) {
    // Stage A[p0.., d0..] (tp × TK); consecutive threads read consecutive addresses.
    for (var i = t; i < tp * TK; i += nthreads) {
      var r: u32;
      var d: u32;
      if (a_t) {
        r = i % tp;
        d = i / tp;
      } else {
        d = i % TK;
        r = i / TK;
      }
      let gp = p0 + r;
      let gd = d0 + d;
      var v = 0.0;
      if (gp < P && gd < D) {
        v = a[select(gp * D + gd, gd * P + gp, a_t)];
      }
      as_set(d * (WY + 1u) + r / 4u, r % 4u, v);
    }
    // Stage B[d0.., q0..] (TK × tq).
    for (var i = t; i < tq * TK; i += nthreads) {
      var c: u32;
      var d: u32;
      if (b_t) {
        d = i % TK;
        c = i / TK;
      } else {
        c = i % tq;
        d = i / tq;
      }
      let gq = q0 + c;
      let gd = d0 + d;
      var v = 0.0;
      if (gq < Q && gd < D) {
        v = load_b(p.b_offset + select(gd * Q + gq, gq * D + gd, b_t), dt);
      }
      bs_set(d * (WX + 1u) + c / 4u, c % 4u, v);
    }
    workgroupBarrier();
    for (var d = 0u; d < TK; d++) {
      let av = As[d * (WY + 1u) + lid.y];
      let bv = Bs[d * (WX + 1u) + lid.x];
      acc[0] += av.x * bv;
      acc[1] += av.y * bv;
      acc[2] += av.z * bv;
      acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }
  store_block(p0 + lid.y * 4u, q0 + lid.x * 4u, 1u, acc);
}

@compute @workgroup_size(WX, WY)
fn tiled_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, false, true, F32);
}

@compute @workgroup_size(WX, WY)
fn tiled_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, false, true, BF16);
}

@compute @workgroup_size(WX, WY)
fn tiled_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, false, true, F16);
}

@compute @workgroup_size(WX, WY)
fn tiled_nn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, false, false, F32);
}

@compute @workgroup_size(WX, WY)
fn tiled_nn_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, false, false, BF16);
}

@compute @workgroup_size(WX, WY)
fn tiled_nn_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, false, false, F16);
}

@compute @workgroup_size(WX, WY)
fn tiled_tn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  tiled(wid, nwg, lid, true, false, F32);
}

// ---------------------------------------------------------------------------------------------
// regtile (hardware GPUs, float b): a workgroup of RX×RY threads computes an (8·RY)×(8·RX) tile
// of C, each thread an 8×8 register block: rows 4·ty..+3 and 4·(ty+RY)..+3, columns 4·tx..+3 and
// 4·(tx+RX)..+3, so neighbouring threads read neighbouring vec4s of workgroup memory (no bank
// conflicts) and the inner loop is four vec4 reads for 64 FMAs per d. A and B are staged in K
// tiles of RK along d, d-major as vec4s over p and q:
//   - global loads are 16 bytes: 4 f32 of a, and of b a vec4 of 4 f32 or of 8 bf16/f16 values,
//     which are widened to f32 in registers. Each such unit lies along the contiguous dim (d for
//     a in nt/nn and b in nt, p for a in tn, q for b in nn/tn); a unit that is fully in range and
//     aligned (`p.aligned`, set when that dim and bOffset are multiples of 4, or 8 for 16-bit b)
//     is one vector load, any other is read element by element with zero fill, so any shape works.
//   - prefetch: tile k+1's units are loaded into registers before tile k is computed from
//     workgroup memory, so global latency hides behind 64·RK FMAs per thread.
//   - workgroup memory holds two K tiles: tile k is written to half k & 1, then one barrier, and
//     no thread can overwrite that half before every thread has passed the next barrier, i.e.
//     finished computing tile k. One barrier per K tile.
// Tile sizes are override constants chosen per adapter and checked against its limits
// (src/engine/matmul.ts, regtileConstants), which also checks that no thread stages more than 4
// units per operand (regtile_fetch holds 4 in registers).

override RX: u32 = 8; // threads along Q; the tile is 8·RX wide
override RY: u32 = 8; // threads along P; the tile is 8·RY tall
override RK: u32 = 8; // K tile depth (a multiple of 8)

var<workgroup> Ra: array<vec4f, 4u * RK * RY>; // [half][d][p/4]: 2 halves × RK × 2·RY
var<workgroup> Rb: array<vec4f, 4u * RK * RX>; // [half][d][q/4]

// Element i of a, and (fb4_at(e, dt), spliced in from shaders/matmul_b.wgsl) element e of a
// float b, read through the whole-buffer vec4 bindings.
fn a4_at(i: u32) -> f32 {
  return a4[i >> 2u][i & 3u];
}

// The staging unit u of A for K tile d0: 4 consecutive elements along A's contiguous dim (d in
// nt/nn, p in tn), one 16-byte load when in range and aligned, else element by element.
fn ra_load(u: u32, p0: u32, d0: u32, a_t: bool) -> vec4f {
  var gp: u32;
  var gd: u32;
  if (a_t) {
    gd = d0 + u / (2u * RY);
    gp = p0 + 4u * (u % (2u * RY));
  } else {
    gp = p0 + u / (RK / 4u);
    gd = d0 + 4u * (u % (RK / 4u));
  }
  let i = select(gp * p.depth + gd, gd * p.rows + gp, a_t);
  if ((p.aligned & 1u) != 0u && gp < p.rows && gd < p.depth) {
    return a4[i >> 2u];
  }
  return vec4f(ra_elem(gp, gd, 0u, i, a_t), ra_elem(gp, gd, 1u, i, a_t), ra_elem(gp, gd, 2u, i, a_t), ra_elem(gp, gd, 3u, i, a_t));
}

// Element j of a unit at (gp, gd) starting at index i, or 0 past the edge.
fn ra_elem(gp: u32, gd: u32, j: u32, i: u32, a_t: bool) -> f32 {
  if (select(gp < p.rows && gd + j < p.depth, gp + j < p.rows && gd < p.depth, a_t)) {
    return a4_at(i + j);
  }
  return 0.0;
}

// v.x..v.w into component c of Ra[i], Ra[i + row], Ra[i + 2·row], Ra[i + 3·row], by constant
// swizzles (see as_set: a dynamic component store may be a racing read-modify-write).
fn ra_set4(i: u32, row: u32, c: u32, v: vec4f) {
  switch c {
    case 0u: { Ra[i].x = v.x; Ra[i + row].x = v.y; Ra[i + 2u * row].x = v.z; Ra[i + 3u * row].x = v.w; }
    case 1u: { Ra[i].y = v.x; Ra[i + row].y = v.y; Ra[i + 2u * row].y = v.z; Ra[i + 3u * row].y = v.w; }
    case 2u: { Ra[i].z = v.x; Ra[i + row].z = v.y; Ra[i + 2u * row].z = v.z; Ra[i + 3u * row].z = v.w; }
    default: { Ra[i].w = v.x; Ra[i + row].w = v.y; Ra[i + 2u * row].w = v.z; Ra[i + 3u * row].w = v.w; }
  }
}

fn rb_set4(i: u32, row: u32, c: u32, v: vec4f) {
  switch c {
    case 0u: { Rb[i].x = v.x; Rb[i + row].x = v.y; Rb[i + 2u * row].x = v.z; Rb[i + 3u * row].x = v.w; }
    case 1u: { Rb[i].y = v.x; Rb[i + row].y = v.y; Rb[i + 2u * row].y = v.z; Rb[i + 3u * row].y = v.w; }
    case 2u: { Rb[i].z = v.x; Rb[i + row].z = v.y; Rb[i + 2u * row].z = v.z; Rb[i + 3u * row].z = v.w; }
    default: { Rb[i].w = v.x; Rb[i + row].w = v.y; Rb[i + 2u * row].w = v.z; Rb[i + 3u * row].w = v.w; }
  }
}

// Writes unit u to workgroup memory half h0: as one vec4 along p (tn), or across 4 rows d (nt/nn).
fn ra_store(u: u32, h0: u32, a_t: bool, v: vec4f) {
  let row = 2u * RY;
  if (a_t) {
    Ra[h0 + u] = v; // unit u is d = u / row, p/4 = u % row
  } else {
    let r = u / (RK / 4u);
    let i = h0 + 4u * (u % (RK / 4u)) * row + r / 4u;
    ra_set4(i, row, r % 4u, v);
  }
}

// The staging unit u of B: UB = 4 (f32) or 8 (16-bit) consecutive elements along B's contiguous
// dim (d in nt, q in nn/tn), one 16-byte load when in range and aligned (8 bf16/f16 values
// widened to f32 here), else element by element; .lo holds the first 4, .hi the next 4.
struct Unit8 {
  lo: vec4f,
  hi: vec4f,
}

fn rb_load(u: u32, q0: u32, d0: u32, b_t: bool, dt: u32) -> Unit8 {
  let ub = select(8u, 4u, dt == F32);
  var gq: u32;
  var gd: u32;
  if (b_t) {
    gq = q0 + u / (RK / ub);
    gd = d0 + ub * (u % (RK / ub));
  } else {
    let per = 8u * RX / ub;
    gd = d0 + u / per;
    gq = q0 + ub * (u % per);
  }
  let e = p.b_offset + select(gd * p.cols + gq, gq * p.depth + gd, b_t);
  if ((p.aligned & 2u) != 0u && gq < p.cols && gd < p.depth) {
    if (dt == F32) {
      return Unit8(bitcast<vec4f>(b4[e >> 2u]), vec4f(0.0));
    }
    let w = unpack_b8(b4[e >> 3u], dt);
    return Unit8(w[0], w[1]);
  }
  var v = Unit8(vec4f(rb_elem(gq, gd, 0u, e, b_t, dt), rb_elem(gq, gd, 1u, e, b_t, dt), rb_elem(gq, gd, 2u, e, b_t, dt), rb_elem(gq, gd, 3u, e, b_t, dt)), vec4f(0.0));
  if (ub == 8u) {
    v.hi = vec4f(rb_elem(gq, gd, 4u, e, b_t, dt), rb_elem(gq, gd, 5u, e, b_t, dt), rb_elem(gq, gd, 6u, e, b_t, dt), rb_elem(gq, gd, 7u, e, b_t, dt));
  }
  return v;
}

fn rb_elem(gq: u32, gd: u32, j: u32, e: u32, b_t: bool, dt: u32) -> f32 {
  if (select(gq + j < p.cols && gd < p.depth, gq < p.cols && gd + j < p.depth, b_t)) {
    return fb4_at(e + j, dt);
  }
  return 0.0;
}

fn rb_store(u: u32, h0: u32, b_t: bool, dt: u32, v: Unit8) {
  let ub = select(8u, 4u, dt == F32);
  let row = 2u * RX;
  if (b_t) {
    let c = u / (RK / ub);
    let i = h0 + ub * (u % (RK / ub)) * row + c / 4u;
    rb_set4(i, row, c % 4u, v.lo);
    if (ub == 8u) {
      rb_set4(i + 4u * row, row, c % 4u, v.hi);
    }
  } else {
    let per = 8u * RX / ub;
    let i = h0 + (u / per) * row + (ub / 4u) * (u % per);
    Rb[i] = v.lo;
    if (ub == 8u) {
      Rb[i + 1u] = v.hi;
    }
  }
}

// A thread's staging units of one K tile, t + j·threads for j < 4 (unrolled by hand so they stay
// in registers, never in an indexed array; the host checks no thread has more).
struct Staged {
  a0: vec4f,
  a1: vec4f,
  a2: vec4f,
  a3: vec4f,
  b0: Unit8,
  b1: Unit8,
  b2: Unit8,
  b3: Unit8,
}

fn regtile_fetch(t: u32, n: u32, p0: u32, q0: u32, d0: u32, a_t: bool, b_t: bool, dt: u32) -> Staged {
  let ua = 2u * RY * RK;
  let ub = 8u * RX * RK / select(8u, 4u, dt == F32);
  var s: Staged;
  if (t < ua) { s.a0 = ra_load(t, p0, d0, a_t); }
  if (t + n < ua) { s.a1 = ra_load(t + n, p0, d0, a_t); }
  if (t + 2u * n < ua) { s.a2 = ra_load(t + 2u * n, p0, d0, a_t); }
  if (t + 3u * n < ua) { s.a3 = ra_load(t + 3u * n, p0, d0, a_t); }
  if (t < ub) { s.b0 = rb_load(t, q0, d0, b_t, dt); }
  if (t + n < ub) { s.b1 = rb_load(t + n, q0, d0, b_t, dt); }
  if (t + 2u * n < ub) { s.b2 = rb_load(t + 2u * n, q0, d0, b_t, dt); }
  if (t + 3u * n < ub) { s.b3 = rb_load(t + 3u * n, q0, d0, b_t, dt); }
  return s;
}

fn regtile_put(s: Staged, t: u32, n: u32, ha: u32, hb: u32, a_t: bool, b_t: bool, dt: u32) {
  let ua = 2u * RY * RK;
  let ub = 8u * RX * RK / select(8u, 4u, dt == F32);
  if (t < ua) { ra_store(t, ha, a_t, s.a0); }
  if (t + n < ua) { ra_store(t + n, ha, a_t, s.a1); }
  if (t + 2u * n < ua) { ra_store(t + 2u * n, ha, a_t, s.a2); }
  if (t + 3u * n < ua) { ra_store(t + 3u * n, ha, a_t, s.a3); }
  if (t < ub) { rb_store(t, hb, b_t, dt, s.b0); }
  if (t + n < ub) { rb_store(t + n, hb, b_t, dt, s.b1); }
  if (t + 2u * n < ub) { rb_store(t + 2u * n, hb, b_t, dt, s.b2); }
  if (t + 3u * n < ub) { rb_store(t + 3u * n, hb, b_t, dt, s.b3); }
}

fn regtile(wid: vec3u, nwg: vec3u, lid: vec3u, a_t: bool, b_t: bool, dt: u32) {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return;
  }
  let p0 = (tile / p.tiles_q) * (8u * RY);
  let q0 = (tile % p.tiles_q) * (8u * RX);
  let t = lid.y * RX + lid.x;
  let n = RX * RY;
  let nk = (p.depth + RK - 1u) / RK;

  // Registers: the next K tile's staging units, and the 8×8 block: acc[2i + h] is row i (i < 4:
  // 4·ty + i, else 4·(ty+RY) + i - 4), columns 4·tx.. (h = 0) or 4·(tx+RX).. (h = 1).
  var staged: Staged;
  if (nk > 0u) {
    staged = regtile_fetch(t, n, p0, q0, 0u, a_t, b_t, dt);
  }
  var acc: array<vec4f, 16>;
  for (var kt = 0u; kt < nk; kt++) {
    let ha = (kt & 1u) * (2u * RY * RK);
    let hb = (kt & 1u) * (2u * RX * RK);
    regtile_put(staged, t, n, ha, hb, a_t, b_t, dt);
    workgroupBarrier();
    // Prefetch: the next tile's global loads are issued before this tile's FMAs.
    if (kt + 1u < nk) {
      staged = regtile_fetch(t, n, p0, q0, (kt + 1u) * RK, a_t, b_t, dt);
    }
    for (var d = 0u; d < RK; d++) {
      let ai = ha + d * (2u * RY) + lid.y;
      let bi = hb + d * (2u * RX) + lid.x;
      let a0 = Ra[ai];
      let a1 = Ra[ai + RY];
      let b0 = Rb[bi];
      let b1 = Rb[bi + RX];
      acc[0] += a0.x * b0;
      acc[1] += a0.x * b1;
      acc[2] += a0.y * b0;
      acc[3] += a0.y * b1;
      acc[4] += a0.z * b0;
      acc[5] += a0.z * b1;
      acc[6] += a0.w * b0;
      acc[7] += a0.w * b1;
      acc[8] += a1.x * b0;
      acc[9] += a1.x * b1;
      acc[10] += a1.y * b0;
      acc[11] += a1.y * b1;
      acc[12] += a1.z * b0;
      acc[13] += a1.z * b1;
      acc[14] += a1.w * b0;
      acc[15] += a1.w * b1;
    }
  }
  let pa = p0 + 4u * lid.y;
  let pb = p0 + 4u * (lid.y + RY);
  let qa = q0 + 4u * lid.x;
  let qb = q0 + 4u * (lid.x + RX);
  store_block(pa, qa, 1u, array(acc[0], acc[2], acc[4], acc[6]));
  store_block(pa, qb, 1u, array(acc[1], acc[3], acc[5], acc[7]));
  store_block(pb, qa, 1u, array(acc[8], acc[10], acc[12], acc[14]));
  store_block(pb, qb, 1u, array(acc[9], acc[11], acc[13], acc[15]));
}

@compute @workgroup_size(RX, RY)
fn regtile_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, false, true, F32);
}

@compute @workgroup_size(RX, RY)
fn regtile_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, false, true, BF16);
}

@compute @workgroup_size(RX, RY)
fn regtile_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, false, true, F16);
}

@compute @workgroup_size(RX, RY)
fn regtile_nn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, false, false, F32);
}

@compute @workgroup_size(RX, RY)
fn regtile_nn_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, false, false, BF16);
}

@compute @workgroup_size(RX, RY)
fn regtile_nn_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, false, false, F16);
}

@compute @workgroup_size(RX, RY)
fn regtile_tn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  regtile(wid, nwg, lid, true, false, F32);
}

// ---------------------------------------------------------------------------------------------
// gemv: nt with M ≤ GV_MAX_M

const GV_MAX_M = 8u;
override GV_LANES: u32 = 64; // threads per output column (a power of two, ≥ GV_MAX_M)
override GV_ROWS: u32 = 4;   // output columns per workgroup

var<workgroup> red: array<f32, GV_MAX_M * GV_LANES * GV_ROWS>; // [m][column][lane]

fn gemv(wid: vec3u, nwg: vec3u, lid: vec3u, dt: u32) {
  let g = tile_index(wid, nwg);
  if (g >= p.groups) {
    return;
  }
  let M = p.rows;
  let N = p.cols;
  let K = p.depth;
  let lane = lid.x;
  let n = g * GV_ROWS + lid.y;

  var acc: array<f32, GV_MAX_M>;
  if (n < N) {
    let base = p.b_offset + n * K;
    let aligned = (base & 1u) == 0u;
    // Pairs of elements: a thread reads one word of a 16-bit b per step.
    for (var k = 2u * lane; k + 1u < K; k += 2u * GV_LANES) {
      let w = load_b2(base + k, aligned, dt);
      for (var m = 0u; m < GV_MAX_M; m++) {
        if (m < M) {
          let ai = m * K + k;
          acc[m] += a[ai] * w.x + a[ai + 1u] * w.y;
        }
      }
    }
    if ((K & 1u) == 1u && lane == 0u) {
      let k = K - 1u;
      let w = load_b(base + k, dt);
      for (var m = 0u; m < GV_MAX_M; m++) {
        if (m < M) {
          acc[m] += a[m * K + k] * w;
        }
      }
    }
  }

  let stride = GV_LANES * GV_ROWS;
  let slot = lid.y * GV_LANES + lane;
  for (var m = 0u; m < GV_MAX_M; m++) {
    red[m * stride + slot] = acc[m];
  }
  workgroupBarrier();
  for (var s = GV_LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      for (var m = 0u; m < GV_MAX_M; m++) {
        if (m < M) {
          red[m * stride + slot] += red[m * stride + slot + s];
        }
      }
    }
    workgroupBarrier();
  }
  // Lane m writes row m of this column.
  if (n < N && lane < M) {
    store(lane * N + n, red[lane * stride + lid.y * GV_LANES]);
  }
}

@compute @workgroup_size(GV_LANES, GV_ROWS)
fn gemv_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  gemv(wid, nwg, lid, F32);
}

@compute @workgroup_size(GV_LANES, GV_ROWS)
fn gemv_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  gemv(wid, nwg, lid, BF16);
}

@compute @workgroup_size(GV_LANES, GV_ROWS)
fn gemv_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  gemv(wid, nwg, lid, F16);
}

// ---------------------------------------------------------------------------------------------
// direct and vec4: CPU adapters
//
// SwiftShader runs 4 consecutive invocations as one SIMD group and turns a load into one vector
// load when their addresses are consecutive, or one broadcast load when they are equal; anything
// else is a 4-way gather. So neighbouring threads (lid.x) take neighbouring columns, and a thread's
// rows are shared by its neighbours.

override CX: u32 = 8; // threads along Q
override CY: u32 = 8; // threads along P

// The linear index of a workgroup's tile, every path: its place in this dispatch plus the
// dispatch's first tile.
fn tile_index(wid: vec3u, nwg: vec3u) -> u32 {
  return wid.x + wid.y * nwg.x + p.first_group;
}

// i, i+1, i+2, i+3 clamped to n - 1.
fn clamp4(i: u32, n: u32) -> vec4u {
  return min(vec4u(i) + vec4u(0u, 1u, 2u, 3u), vec4u(n - 1u));
}

// direct: any shape. A thread computes rows pb..pb+3 and columns qb + CX*j (j < 4), so the 4
// threads of a SIMD group read 4 consecutive elements of b in nn and tn. Tile: (4·CY)×(4·CX).
fn direct(wid: vec3u, nwg: vec3u, lid: vec3u, a_t: bool, b_t: bool, dt: u32) {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return;
  }
  let P = p.rows;
  let Q = p.cols;
  let D = p.depth;
  let pb = (tile / p.tiles_q) * (4u * CY) + lid.y * 4u;
  let qb = (tile % p.tiles_q) * (4u * CX) + lid.x;
  if (pb >= P || qb >= Q) {
    return;
  }
  let pr = clamp4(pb, P);
  let qr = min(vec4u(qb) + vec4u(0u, 1u, 2u, 3u) * CX, vec4u(Q - 1u));
  // A(pr[i], d) = a[ap[i] + d * as_] and B(d, qr[j]) = b[bq[j] + d * bs].
  let ap = select(pr * D, pr, a_t);
  let as_ = select(1u, P, a_t);
  let bq = select(qr, qr * D, b_t) + vec4u(p.b_offset);
  let bs = select(Q, 1u, b_t);
  var acc: array<vec4f, 4>;
  for (var d = 0u; d < D; d++) {
    let ai = ap + vec4u(d * as_);
    let bi = bq + vec4u(d * bs);
    let av = vec4f(a[ai.x], a[ai.y], a[ai.z], a[ai.w]);
    let bv = vec4f(load_b(bi.x, dt), load_b(bi.y, dt), load_b(bi.z, dt), load_b(bi.w, dt));
    acc[0] += av.x * bv;
    acc[1] += av.y * bv;
    acc[2] += av.z * bv;
    acc[3] += av.w * bv;
  }
  store_block(pb, qb, CX, acc);
}

@compute @workgroup_size(CX, CY)
fn direct_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, false, true, F32);
}

@compute @workgroup_size(CX, CY)
fn direct_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, false, true, BF16);
}

@compute @workgroup_size(CX, CY)
fn direct_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, false, true, F16);
}

@compute @workgroup_size(CX, CY)
fn direct_nn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, false, false, F32);
}

@compute @workgroup_size(CX, CY)
fn direct_nn_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, false, false, BF16);
}

@compute @workgroup_size(CX, CY)
fn direct_nn_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, false, false, F16);
}

@compute @workgroup_size(CX, CY)
fn direct_tn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_id) lid: vec3u) {
  direct(wid, nwg, lid, true, false, F32);
}

// vec4: 16-byte loads along the contiguous dims, which (with bOffset) must be multiples of 4.
// A thread computes an 8×4 block (rows pb..pb+7, columns qb..qb+3); the tile is (8·CY)×(4·CX).
// a is read as vec4s, b as vec4 words (4 f32, or 8 16-bit values of which a load uses half); both
// are bound whole so b's padded tail is addressable.
@group(0) @binding(1) var<storage, read> a4: array<vec4f>;
@group(0) @binding(2) var<storage, read> b4: array<vec4u>;

fn b4_word(i: u32) -> u32 {
  return b4[i >> 2u][i & 3u];
}

// Elements e..e+3 of b (e a multiple of 4).
fn load_b4(e: u32, dt: u32) -> vec4f {
  if (dt >= INT8) {
    return qb4_at4(e, dt, p.scale_word);
  }
  if (dt == F32) {
    return bitcast<vec4f>(b4[e >> 2u]);
  }
  let v = b4[e >> 3u];
  let w = select(v.xy, v.zw, (e & 4u) != 0u);
  if (dt == BF16) {
    return bitcast<vec4f>(vec4u(w.x << 16u, w.x & 0xffff0000u, w.y << 16u, w.y & 0xffff0000u));
  }
  return vec4f(unpack2x16float(w.x), unpack2x16float(w.y));
}

// Top-left of this thread's 8×4 block; x = rows (past the end) when the workgroup is idle.
fn block8_origin(wid: vec3u, nwg: vec3u, lid: vec3u) -> vec2u {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return vec2u(p.rows, 0u);
  }
  return vec2u((tile / p.tiles_q) * (8u * CY) + lid.y * 8u, (tile % p.tiles_q) * (4u * CX) + lid.x * 4u);
}

fn store_block8(pb: u32, qb: u32, acc: array<vec4f, 8>) {
  store_block(pb, qb, 1u, array(acc[0], acc[1], acc[2], acc[3]));
  store_block(pb + 4u, qb, 1u, array(acc[4], acc[5], acc[6], acc[7]));
}

// nt: A and B both contiguous along d: 32 dot products per 4 d.
fn vec4_nt(wid: vec3u, nwg: vec3u, lid: vec3u, dt: u32) {
  let o = block8_origin(wid, nwg, lid);
  if (o.x >= p.rows || o.y >= p.cols) {
    return;
  }
  let D4 = p.depth / 4u;
  let ar0 = clamp4(o.x, p.rows) * D4;
  let ar1 = clamp4(o.x + 4u, p.rows) * D4;
  let br = clamp4(o.y, p.cols) * p.depth + vec4u(p.b_offset);
  var acc: array<vec4f, 8>;
  for (var d = 0u; d < D4; d++) {
    let e = 4u * d;
    let b0 = load_b4(br.x + e, dt);
    let b1 = load_b4(br.y + e, dt);
    let b2 = load_b4(br.z + e, dt);
    let b3 = load_b4(br.w + e, dt);
    let x0 = a4[ar0.x + d];
    acc[0] += vec4f(dot(x0, b0), dot(x0, b1), dot(x0, b2), dot(x0, b3));
    let x1 = a4[ar0.y + d];
    acc[1] += vec4f(dot(x1, b0), dot(x1, b1), dot(x1, b2), dot(x1, b3));
    let x2 = a4[ar0.z + d];
    acc[2] += vec4f(dot(x2, b0), dot(x2, b1), dot(x2, b2), dot(x2, b3));
    let x3 = a4[ar0.w + d];
    acc[3] += vec4f(dot(x3, b0), dot(x3, b1), dot(x3, b2), dot(x3, b3));
    let x4 = a4[ar1.x + d];
    acc[4] += vec4f(dot(x4, b0), dot(x4, b1), dot(x4, b2), dot(x4, b3));
    let x5 = a4[ar1.y + d];
    acc[5] += vec4f(dot(x5, b0), dot(x5, b1), dot(x5, b2), dot(x5, b3));
    let x6 = a4[ar1.z + d];
    acc[6] += vec4f(dot(x6, b0), dot(x6, b1), dot(x6, b2), dot(x6, b3));
    let x7 = a4[ar1.w + d];
    acc[7] += vec4f(dot(x7, b0), dot(x7, b1), dot(x7, b2), dot(x7, b3));
  }
  store_block8(o.x, o.y, acc);
}

// nn: A contiguous along d, B along q. The block's 4 columns are all in range since Q % 4 == 0.
fn vec4_nn(wid: vec3u, nwg: vec3u, lid: vec3u, dt: u32) {
  let o = block8_origin(wid, nwg, lid);
  let Q = p.cols;
  if (o.x >= p.rows || o.y >= Q) {
    return;
  }
  let D4 = p.depth / 4u;
  let ar0 = clamp4(o.x, p.rows) * D4;
  let ar1 = clamp4(o.x + 4u, p.rows) * D4;
  let bq = p.b_offset + o.y;
  var acc: array<vec4f, 8>;
  for (var d = 0u; d < D4; d++) {
    let e = bq + 4u * d * Q;
    let b0 = load_b4(e, dt);
    let b1 = load_b4(e + Q, dt);
    let b2 = load_b4(e + 2u * Q, dt);
    let b3 = load_b4(e + 3u * Q, dt);
    let x0 = a4[ar0.x + d];
    acc[0] += x0.x * b0 + x0.y * b1 + x0.z * b2 + x0.w * b3;
    let x1 = a4[ar0.y + d];
    acc[1] += x1.x * b0 + x1.y * b1 + x1.z * b2 + x1.w * b3;
    let x2 = a4[ar0.z + d];
    acc[2] += x2.x * b0 + x2.y * b1 + x2.z * b2 + x2.w * b3;
    let x3 = a4[ar0.w + d];
    acc[3] += x3.x * b0 + x3.y * b1 + x3.z * b2 + x3.w * b3;
    let x4 = a4[ar1.x + d];
    acc[4] += x4.x * b0 + x4.y * b1 + x4.z * b2 + x4.w * b3;
    let x5 = a4[ar1.y + d];
    acc[5] += x5.x * b0 + x5.y * b1 + x5.z * b2 + x5.w * b3;
    let x6 = a4[ar1.z + d];
    acc[6] += x6.x * b0 + x6.y * b1 + x6.z * b2 + x6.w * b3;
    let x7 = a4[ar1.w + d];
    acc[7] += x7.x * b0 + x7.y * b1 + x7.z * b2 + x7.w * b3;
  }
  store_block8(o.x, o.y, acc);
}

// tn: A contiguous along p, B along q: an 8×4 outer product per d. P % 4 == 0, so the two row
// quads are each all in range or clamped whole onto the last one.
fn vec4_tn(wid: vec3u, nwg: vec3u, lid: vec3u) {
  let o = block8_origin(wid, nwg, lid);
  let P = p.rows;
  let Q = p.cols;
  if (o.x >= P || o.y >= Q) {
    return;
  }
  let a0 = o.x / 4u;
  let a1 = min(o.x + 4u, P - 4u) / 4u;
  let P4 = P / 4u;
  var acc: array<vec4f, 8>;
  for (var d = 0u; d < p.depth; d++) {
    let bv = load_b4(p.b_offset + d * Q + o.y, F32);
    let u = a4[d * P4 + a0];
    let v = a4[d * P4 + a1];
    acc[0] += u.x * bv;
    acc[1] += u.y * bv;
    acc[2] += u.z * bv;
    acc[3] += u.w * bv;
    acc[4] += v.x * bv;
    acc[5] += v.y * bv;
    acc[6] += v.z * bv;
    acc[7] += v.w * bv;
  }
  store_block8(o.x, o.y, acc);
}

@compute @workgroup_size(CX, CY)
fn vec4_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  vec4_nt(wid, nwg, lid, F32);
}

@compute @workgroup_size(CX, CY)
fn vec4_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  vec4_nt(wid, nwg, lid, BF16);
}

@compute @workgroup_size(CX, CY)
fn vec4_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  vec4_nt(wid, nwg, lid, F16);
}

@compute @workgroup_size(CX, CY)
fn vec4_nn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  vec4_nn(wid, nwg, lid, F32);
}

@compute @workgroup_size(CX, CY)
fn vec4_nn_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  vec4_nn(wid, nwg, lid, BF16);
}

@compute @workgroup_size(CX, CY)
fn vec4_nn_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  vec4_nn(wid, nwg, lid, F16);
}

@compute @workgroup_size(CX, CY)
fn vec4_tn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_id) lid: vec3u) {
  vec4_tn(wid, nwg, lid);
}

// ---------------------------------------------------------------------------------------------
// skinny (CPU adapters, nt with M ≤ 4: decode and its lm_head): no rows wasted. vec4 computes
// 8 rows per thread, so at M = 1 seven eighths of its work is thrown away. Here each of SW
// threads computes 4 consecutive columns for SR rows (SR = 1, 2 or 4 ≥ M, a pipeline constant,
// so the unused row blocks compile away; rows past M are clamped onto the last one and dropped).
// b's rows are read as whole vec4 words along d: f32 4 elements a load, bf16/f16 8 (so 16-bit b
// needs K and bOffset multiples of 8, f32 multiples of 4). No workgroup memory, no barriers.

override SW: u32 = 64; // threads per workgroup: a workgroup covers 4·SW columns
override SR: u32 = 1;  // rows per thread (1, 2 or 4), at least M

// Elements 8w..8w+7 of 16-bit b (word quad w) as two vec4f.
fn unpack_b8(v: vec4u, dt: u32) -> array<vec4f, 2> {
  if (dt == BF16) {
    return array(bitcast<vec4f>(vec4u(v.x << 16u, v.x & 0xffff0000u, v.y << 16u, v.y & 0xffff0000u)),
                 bitcast<vec4f>(vec4u(v.z << 16u, v.z & 0xffff0000u, v.w << 16u, v.w & 0xffff0000u)));
  }
  return array(vec4f(unpack2x16float(v.x), unpack2x16float(v.y)), vec4f(unpack2x16float(v.z), unpack2x16float(v.w)));
}

fn dot4(x: vec4f, b0: vec4f, b1: vec4f, b2: vec4f, b3: vec4f) -> vec4f {
  return vec4f(dot(x, b0), dot(x, b1), dot(x, b2), dot(x, b3));
}

fn skinny_nt(wid: vec3u, nwg: vec3u, lid: u32, dt: u32) {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return;
  }
  let qb = (tile * SW + lid) * 4u;
  if (qb >= p.cols) {
    return;
  }
  let K4 = p.depth / 4u;
  // Rows of a (in vec4s) and columns of b (in words of the vec4 view: 4 elements f32, 8 16-bit).
  let ar = min(vec4u(0u, 1u, 2u, 3u), vec4u(p.rows - 1u)) * K4;
  let bc = clamp4(qb, p.cols) * p.depth + vec4u(p.b_offset);
  var acc0: vec4f;
  var acc1: vec4f;
  var acc2: vec4f;
  var acc3: vec4f;
  if (dt == F32) {
    let br = bc / 4u;
    for (var d = 0u; d < K4; d++) {
      let b0 = bitcast<vec4f>(b4[br.x + d]);
      let b1 = bitcast<vec4f>(b4[br.y + d]);
      let b2 = bitcast<vec4f>(b4[br.z + d]);
      let b3 = bitcast<vec4f>(b4[br.w + d]);
      acc0 += dot4(a4[ar.x + d], b0, b1, b2, b3);
      if (SR >= 2u) {
        acc1 += dot4(a4[ar.y + d], b0, b1, b2, b3);
      }
      if (SR >= 4u) {
        acc2 += dot4(a4[ar.z + d], b0, b1, b2, b3);
        acc3 += dot4(a4[ar.w + d], b0, b1, b2, b3);
      }
    }
  } else if (dt >= INT8) {
    // Quantized: 8 elements (one word of int4, two of int8) per step, with their group's scale.
    let K8 = p.depth / 8u;
    for (var d = 0u; d < K8; d++) {
      let e = 8u * d;
      let b0 = qb4_at8(bc.x + e, dt, p.scale_word);
      let b1 = qb4_at8(bc.y + e, dt, p.scale_word);
      let b2 = qb4_at8(bc.z + e, dt, p.scale_word);
      let b3 = qb4_at8(bc.w + e, dt, p.scale_word);
      let f = 2u * d;
      acc0 += dot4(a4[ar.x + f], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.x + f + 1u], b0[1], b1[1], b2[1], b3[1]);
      if (SR >= 2u) {
        acc1 += dot4(a4[ar.y + f], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.y + f + 1u], b0[1], b1[1], b2[1], b3[1]);
      }
      if (SR >= 4u) {
        acc2 += dot4(a4[ar.z + f], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.z + f + 1u], b0[1], b1[1], b2[1], b3[1]);
        acc3 += dot4(a4[ar.w + f], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.w + f + 1u], b0[1], b1[1], b2[1], b3[1]);
      }
    }
  } else {
    let br = bc / 8u;
    let K8 = p.depth / 8u;
    for (var d = 0u; d < K8; d++) {
      let b0 = unpack_b8(b4[br.x + d], dt);
      let b1 = unpack_b8(b4[br.y + d], dt);
      let b2 = unpack_b8(b4[br.z + d], dt);
      let b3 = unpack_b8(b4[br.w + d], dt);
      let e = 2u * d;
      acc0 += dot4(a4[ar.x + e], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.x + e + 1u], b0[1], b1[1], b2[1], b3[1]);
      if (SR >= 2u) {
        acc1 += dot4(a4[ar.y + e], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.y + e + 1u], b0[1], b1[1], b2[1], b3[1]);
      }
      if (SR >= 4u) {
        acc2 += dot4(a4[ar.z + e], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.z + e + 1u], b0[1], b1[1], b2[1], b3[1]);
        acc3 += dot4(a4[ar.w + e], b0[0], b1[0], b2[0], b3[0]) + dot4(a4[ar.w + e + 1u], b0[1], b1[1], b2[1], b3[1]);
      }
    }
  }
  store_block(0u, qb, 1u, array(acc0, acc1, acc2, acc3));
}

@compute @workgroup_size(SW)
fn skinny_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  skinny_nt(wid, nwg, lid, F32);
}

@compute @workgroup_size(SW)
fn skinny_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  skinny_nt(wid, nwg, lid, BF16);
}

@compute @workgroup_size(SW)
fn skinny_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  skinny_nt(wid, nwg, lid, F16);
}

// ---------------------------------------------------------------------------------------------
// narrow: Q ≤ 64. Each of NW threads holds rows pb..pb+3 × columns qb..qb+15 (acc[4i + g] is row i,
// columns qb+4g..qb+4g+3); the workgroup's threads share the same 16 columns of B, so B's reads
// are broadcasts. Rows and columns past the edge are clamped and their results dropped.

override NW: u32 = 64; // threads per workgroup; the tile is (4·NW)×16

fn narrow(wid: vec3u, nwg: vec3u, lid: u32, a_t: bool, b_t: bool, dt: u32) {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return;
  }
  let P = p.rows;
  let Q = p.cols;
  let D = p.depth;
  let pb = (tile / p.tiles_q) * (4u * NW) + lid * 4u;
  let qb = (tile % p.tiles_q) * 16u;
  if (pb >= P) {
    return;
  }
  let pr = clamp4(pb, P);
  let ap = select(pr * D, pr, a_t);
  let as_ = select(1u, P, a_t);
  var bq: array<vec4u, 4>;
  for (var g = 0u; g < 4u; g++) {
    let qr = clamp4(qb + 4u * g, Q);
    bq[g] = select(qr, qr * D, b_t) + vec4u(p.b_offset);
  }
  let bs = select(Q, 1u, b_t);
  var acc: array<vec4f, 16>;
  for (var d = 0u; d < D; d++) {
    let ai = ap + vec4u(d * as_);
    let av = vec4f(a[ai.x], a[ai.y], a[ai.z], a[ai.w]);
    for (var g = 0u; g < 4u; g++) {
      let bi = bq[g] + vec4u(d * bs);
      let bv = vec4f(load_b(bi.x, dt), load_b(bi.y, dt), load_b(bi.z, dt), load_b(bi.w, dt));
      acc[g] += av.x * bv;
      acc[4u + g] += av.y * bv;
      acc[8u + g] += av.z * bv;
      acc[12u + g] += av.w * bv;
    }
  }
  for (var g = 0u; g < 4u; g++) {
    store_block(pb, qb + 4u * g, 1u, array(acc[g], acc[4u + g], acc[8u + g], acc[12u + g]));
  }
}

@compute @workgroup_size(NW)
fn narrow_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, false, true, F32);
}

@compute @workgroup_size(NW)
fn narrow_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, false, true, BF16);
}

@compute @workgroup_size(NW)
fn narrow_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, false, true, F16);
}

@compute @workgroup_size(NW)
fn narrow_nn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, false, false, F32);
}

@compute @workgroup_size(NW)
fn narrow_nn_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, false, false, BF16);
}

@compute @workgroup_size(NW)
fn narrow_nn_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, false, false, F16);
}

@compute @workgroup_size(NW)
fn narrow_tn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  narrow(wid, nwg, lid, true, false, F32);
}

// narrow4 (the narrow path for nt when K and bOffset are multiples of 4): the same tile with
// 16-byte loads of a and b along d (a4/b4, bound whole), 64 dot products per 4 d.
fn narrow4_nt(wid: vec3u, nwg: vec3u, lid: u32, dt: u32) {
  let tile = tile_index(wid, nwg);
  if (tile >= p.groups) {
    return;
  }
  let pb = (tile / p.tiles_q) * (4u * NW) + lid * 4u;
  let qb = (tile % p.tiles_q) * 16u;
  if (pb >= p.rows) {
    return;
  }
  let D4 = p.depth / 4u;
  let ar = clamp4(pb, p.rows) * D4;
  var bq: array<vec4u, 4>;
  for (var g = 0u; g < 4u; g++) {
    bq[g] = clamp4(qb + 4u * g, p.cols) * p.depth + vec4u(p.b_offset);
  }
  var acc: array<vec4f, 16>;
  for (var d = 0u; d < D4; d++) {
    let e = 4u * d;
    let x0 = a4[ar.x + d];
    let x1 = a4[ar.y + d];
    let x2 = a4[ar.z + d];
    let x3 = a4[ar.w + d];
    for (var g = 0u; g < 4u; g++) {
      let b0 = load_b4(bq[g].x + e, dt);
      let b1 = load_b4(bq[g].y + e, dt);
      let b2 = load_b4(bq[g].z + e, dt);
      let b3 = load_b4(bq[g].w + e, dt);
      acc[g] += vec4f(dot(x0, b0), dot(x0, b1), dot(x0, b2), dot(x0, b3));
      acc[4u + g] += vec4f(dot(x1, b0), dot(x1, b1), dot(x1, b2), dot(x1, b3));
      acc[8u + g] += vec4f(dot(x2, b0), dot(x2, b1), dot(x2, b2), dot(x2, b3));
      acc[12u + g] += vec4f(dot(x3, b0), dot(x3, b1), dot(x3, b2), dot(x3, b3));
    }
  }
  for (var g = 0u; g < 4u; g++) {
    store_block(pb, qb + 4u * g, 1u, array(acc[g], acc[4u + g], acc[8u + g], acc[12u + g]));
  }
}

@compute @workgroup_size(NW)
fn narrow4_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  narrow4_nt(wid, nwg, lid, F32);
}

@compute @workgroup_size(NW)
fn narrow4_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  narrow4_nt(wid, nwg, lid, BF16);
}

@compute @workgroup_size(NW)
fn narrow4_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  narrow4_nt(wid, nwg, lid, F16);
}

// ---------------------------------------------------------------------------------------------
// splitk: workgroup w works on split s = w / tiles_q (tiles_q is here the workgroups per split).
// Each thread a 4×4 block (columns contiguous) over d in [s·chunk, min(D, (s+1)·chunk)), written
// unscaled into `out`, bound to the scratch partials [splits][P][Q].

override SKW: u32 = 64; // threads per workgroup, for both dispatches

fn splitk(wid: vec3u, nwg: vec3u, lid: u32, a_t: bool, b_t: bool, dt: u32) {
  let w = tile_index(wid, nwg);
  if (w >= p.groups) {
    return;
  }
  let P = p.rows;
  let Q = p.cols;
  let D = p.depth;
  let s = w / p.tiles_q;
  let block = (w % p.tiles_q) * SKW + lid;
  let qblocks = (Q + 3u) / 4u;
  let pb = (block / qblocks) * 4u;
  let qb = (block % qblocks) * 4u;
  if (pb >= P) {
    return;
  }
  let pr = clamp4(pb, P);
  let qr = clamp4(qb, Q);
  let ap = select(pr * D, pr, a_t);
  let as_ = select(1u, P, a_t);
  let bq = select(qr, qr * D, b_t) + vec4u(p.b_offset);
  let bs = select(Q, 1u, b_t);
  let d0 = s * p.chunk;
  let d1 = min(D, d0 + p.chunk);
  var acc: array<vec4f, 4>;
  for (var d = d0; d < d1; d++) {
    let ai = ap + vec4u(d * as_);
    let bi = bq + vec4u(d * bs);
    let av = vec4f(a[ai.x], a[ai.y], a[ai.z], a[ai.w]);
    let bv = vec4f(load_b(bi.x, dt), load_b(bi.y, dt), load_b(bi.z, dt), load_b(bi.w, dt));
    acc[0] += av.x * bv;
    acc[1] += av.y * bv;
    acc[2] += av.z * bv;
    acc[3] += av.w * bv;
  }
  let base = s * P * Q;
  for (var i = 0u; i < 4u; i++) {
    let gp = pb + i;
    if (gp < P) {
      for (var j = 0u; j < 4u; j++) {
        let gq = qb + j;
        if (gq < Q) {
          out[base + gp * Q + gq] = acc[i][j];
        }
      }
    }
  }
}

@compute @workgroup_size(SKW)
fn splitk_nt_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, false, true, F32);
}

@compute @workgroup_size(SKW)
fn splitk_nt_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, false, true, BF16);
}

@compute @workgroup_size(SKW)
fn splitk_nt_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, false, true, F16);
}

@compute @workgroup_size(SKW)
fn splitk_nn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, false, false, F32);
}

@compute @workgroup_size(SKW)
fn splitk_nn_bf16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, false, false, BF16);
}

@compute @workgroup_size(SKW)
fn splitk_nn_f16(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, false, false, F16);
}

@compute @workgroup_size(SKW)
fn splitk_tn_f32(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  splitk(wid, nwg, lid, true, false, F32);
}

// The second dispatch: `a` is bound to the partials, `b` too (unused; it keeps the one layout), and
// out[i] = alpha · Σ_s part[s][i] + (accumulate ? out[i] : 0), always summed in order s = 0, 1, ….
@compute @workgroup_size(SKW)
fn splitk_reduce(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  _ = &b;
  let i = tile_index(wid, nwg) * SKW + lid;
  let n = p.rows * p.cols;
  if (i >= n) {
    return;
  }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) {
    sum += a[s * n + i];
  }
  store(i, sum);
}
