// Flash attention for GPUs: causal grouped-query attention, forward and backward, with one
// row (a query row, or in the dK/dV pass a key row) per invocation kept in vec4 registers and
// the other side staged in workgroup memory as vec4 tiles. Layouts, masking, padding and the
// KV-cache offset are those of shaders/attention.wgsl; head_dim must be 4 * D4.
//
//   flash_forward          one query row per invocation; BK keys of k and v per tile; online
//                          softmax with one exp per score (the tile's scores are kept in
//                          registers, the running max moves once per tile, so the rescale costs
//                          one exp per tile, not per key).
//   flash_backward_delta   delta_i = dout_i . out_i (vec4 order, see below) and lse into stats
//                          (the dq buffer, as in attention.wgsl).
//   flash_backward_kv      one key per invocation (k, v, dk, dv in registers); BQ query rows of
//                          q and dout per tile: dV += P^T dO, dK += scale dS^T Q.
//   flash_backward_q       one query row per invocation (q, dout, dq in registers), key tiles
//                          as the forward: dQ = scale dS K.
//
// Workgroup-memory traffic: each FMA of a dot product or an accumulation reads one f32 lane of
// a 16-byte tile load (0.25 loads, 4 bytes per FMA); attention.wgsl's tiled kernels read both
// operands of a score's dot product and one of each accumulation from workgroup memory as 4-byte
// loads (bench/attention.ts states both as formulas).
//
// A workgroup owns one (batch, kv head) and WG consecutive "rows" rho = token * g + head-in-
// group, so the g query heads that share a kv head read each tile once.
//
// Exact zeros: dS = P (dout . v - delta). A query row with one visible key has out = v exactly;
// delta and dout . v are summed in the same vec4 order everywhere here, so dS is exactly 0 there,
// as in the float64 reference.

struct Params {
  batch: u32,
  tq: u32,
  tkv: u32,
  q_offset: u32,
  kv_cap: u32,
  n_heads: u32,
  n_kv: u32,
  head_dim: u32,
  mask_stride: u32,  // 0: no mask
  scale: f32,
  // This dispatch runs workgroups [wg_first, wg_end) of the pass's linear grid (a long pass is
  // cut into several dispatches to stay under the GPU watchdog; src/engine/attention.ts).
  wg_first: u32,
  wg_end: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// The workgroup's index in the pass's linear grid (wg_end and past: padding of splitGroups).
fn wg_index(wid: vec3u, nwg: vec3u) -> u32 {
  return p.wg_first + wid.x + wid.y * nwg.x;
}

override WG: u32 = 64u;   // rows (invocations) per workgroup
override BT: u32 = 16u;   // rows of the staged side per tile (keys: forward and dq; queries: dk/dv)
override D4: u32 = 16u;   // head_dim / 4
override TILE_N: u32 = BT * D4;

const MAX_D4: u32 = 32u;     // head_dim <= 128
const MAX_BT: u32 = 32u;
const NEG: f32 = -3.0e38;    // score of an excluded key
const VALID: f32 = -1.0e38;  // scores above this are real

var<workgroup> t_a: array<vec4f, TILE_N>;  // k tile (forward, dq) or q tile (dk/dv)
var<workgroup> t_b: array<vec4f, TILE_N>;  // v tile (forward, dq) or dout tile (dk/dv)
var<workgroup> t_l: array<f32, MAX_BT>;
var<workgroup> t_delta: array<f32, MAX_BT>;
var<workgroup> t_ok: array<u32, MAX_BT>;

@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;

fn q_base(b: u32, tok: u32, h: u32) -> u32 {
  return ((b * p.tq + tok) * p.n_heads + h) * D4;
}

fn kv_base(b: u32, j: u32, kvh: u32) -> u32 {
  return ((b * p.kv_cap + j) * p.n_kv + kvh) * D4;
}

fn is_real(b: u32, pos: u32) -> bool {
  return p.mask_stride == 0u || mask[b * p.mask_stride + pos] != 0u;
}

fn hsum(a: vec4f) -> f32 {
  return (a.x + a.y) + (a.z + a.w);
}

// A block of WG rows of one (batch, kv head): workgroup w of b * n_kv * ceil(rows / WG).
struct RowBlock {
  b: u32,
  kvh: u32,
  r0: u32,
  rows: u32,
  g: u32,
  kend: u32,  // keys [0, kend) can be seen by some row of the block
  ok: bool,
}

fn row_block(wid: vec3u, nwg: vec3u) -> RowBlock {
  let g = p.n_heads / p.n_kv;
  let rows = p.tq * g;
  let nblk = (rows + WG - 1u) / WG;
  let w = wg_index(wid, nwg);
  let bh = w / nblk;
  let r0 = (w % nblk) * WG;
  let last_tok = (min(r0 + WG, rows) - 1u) / g;
  return RowBlock(bh / p.n_kv, bh % p.n_kv, r0, rows, g, min(p.tkv, p.q_offset + last_tok + 1u), w < p.wg_end);
}

// Stage keys [kb, kb + BT) of k and v (zeros past kend) into t_a, t_b.
fn load_kv_tile(b: u32, kvh: u32, kb: u32, kend: u32, lid: u32) {
  for (var e = lid; e < BT * D4; e += WG) {
    let j = kb + e / D4;
    var kx = vec4f();
    var vx = vec4f();
    if (j < kend) {
      let src = kv_base(b, j, kvh) + e % D4;
      kx = k[src];
      vx = v[src];
    }
    t_a[e] = kx;
    t_b[e] = vx;
  }
}

// ---------------------------------------------------------------------------------------------
// Forward. Bindings: q 1, k 2, v 3, mask 4, out 5, lse 6.

@group(0) @binding(5) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WG)
fn flash_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let t = row_block(wid, nwg);
  if (!t.ok) {
    return;
  }
  let rho = t.r0 + lid;
  let live = rho < t.rows;
  let tok = rho / t.g;
  let h = t.kvh * t.g + rho % t.g;
  let real = live && is_real(t.b, p.q_offset + tok);
  let qb = q_base(t.b, min(tok, p.tq - 1u), h);
  let last = p.q_offset + tok;  // the last key this row may see
  var qv: array<vec4f, MAX_D4>;
  var acc: array<vec4f, MAX_D4>;
  if (real) {
    for (var i = 0u; i < D4; i++) {
      qv[i] = q[qb + i] * p.scale;
    }
  }
  var m = NEG;
  var l = 0.0;
  for (var kb = 0u; kb < t.kend; kb += BT) {
    workgroupBarrier();
    load_kv_tile(t.b, t.kvh, kb, t.kend, lid);
    workgroupBarrier();
    // (No `continue` here: a loop with a barrier must keep uniform control flow.)
    var s: array<f32, MAX_BT>;
    var mb = NEG;
    if (real) {
      for (var kj = 0u; kj < BT; kj++) {
        let j = kb + kj;
        var x = NEG;
        if (j <= last && j < t.kend && is_real(t.b, j)) {
          var a = vec4f();
          for (var i = 0u; i < D4; i++) {
            a = fma(qv[i], t_a[kj * D4 + i], a);
          }
          x = hsum(a);
        }
        s[kj] = x;
        mb = max(mb, x);
      }
    }
    if (mb > VALID) {
      let mn = max(m, mb);
      let alpha = select(exp(m - mn), 0.0, m <= VALID);
      l *= alpha;
      for (var i = 0u; i < D4; i++) {
        acc[i] *= alpha;
      }
      for (var kj = 0u; kj < BT; kj++) {
        let pj = select(exp(s[kj] - mn), 0.0, s[kj] <= VALID);
        l += pj;
        for (var i = 0u; i < D4; i++) {
          acc[i] = fma(vec4f(pj), t_b[kj * D4 + i], acc[i]);
        }
      }
      m = mn;
    }
  }
  if (!live) {
    return;
  }
  let ok = real && l > 0.0;
  let inv = select(0.0, 1.0 / l, ok);
  for (var i = 0u; i < D4; i++) {
    out[qb + i] = acc[i] * inv;
  }
  lse[(t.b * p.n_heads + h) * p.tq + tok] = select(0.0, m + log(l), ok);
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 1: stats[i] = dout_i . out_i, stats[R + i] = lse[i] for the R = batch *
// n_heads * tq rows, indexed like lse. Bindings: out 1, dout 2, lse 3, stats 4.

@group(0) @binding(1) var<storage, read> d_out: array<vec4f>;
@group(0) @binding(2) var<storage, read> d_dout: array<vec4f>;
@group(0) @binding(3) var<storage, read> d_lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_stats: array<f32>;

@compute @workgroup_size(WG)
fn flash_backward_delta(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_index) lid: u32) {
  let n = p.batch * p.n_heads * p.tq;
  let w = wg_index(wid, nwg);
  let i = w * WG + lid;
  if (w >= p.wg_end || i >= n) {
    return;
  }
  let tok = i % p.tq;
  let bh = i / p.tq;
  let base = q_base(bh / p.n_heads, tok, bh % p.n_heads);
  var s = vec4f();
  for (var d = 0u; d < D4; d++) {
    s = fma(d_dout[base + d], d_out[base + d], s);
  }
  d_stats[i] = hsum(s);
  d_stats[n + i] = d_lse[i];
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 2: dK and dV, one key per invocation. Bindings: q 1, k 2, v 3, mask 4, dout 5,
// stats 6 ([delta | lse] from pass 1), dk 7, dv 8. Workgroup w of b * n_kv * ceil(kv_cap / WG).

@group(0) @binding(5) var<storage, read> dout: array<vec4f>;
@group(0) @binding(6) var<storage, read> kv_stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> dk: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> dv: array<vec4f>;

@compute @workgroup_size(WG)
fn flash_backward_kv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let g = p.n_heads / p.n_kv;
  let rows = p.tq * g;
  let nkb = (p.kv_cap + WG - 1u) / WG;
  let w = wg_index(wid, nwg);
  if (w >= p.wg_end) {
    return;
  }
  let j0 = (w % nkb) * WG;
  let bh = w / nkb;
  let kvh = bh % p.n_kv;
  let b = bh / p.n_kv;
  let n = p.batch * p.n_heads * p.tq;
  let j = j0 + lid;
  let key_ok = j < p.tkv && is_real(b, j);
  let kb = kv_base(b, min(j, p.kv_cap - 1u), kvh);
  var kr: array<vec4f, MAX_D4>;
  var vr: array<vec4f, MAX_D4>;
  var gk: array<vec4f, MAX_D4>;
  var gv: array<vec4f, MAX_D4>;
  if (key_ok) {
    for (var i = 0u; i < D4; i++) {
      kr[i] = k[kb + i] * p.scale;
      vr[i] = v[kb + i];
    }
  }
  // The first query token that can see key j0 is j0 - q_offset.
  var r_begin = rows;
  if (j0 < p.tkv) {
    r_begin = select(0u, j0 - p.q_offset, j0 > p.q_offset) * g;
  }
  for (var r0 = r_begin; r0 < rows; r0 += BT) {
    workgroupBarrier();
    for (var e = lid; e < BT * D4; e += WG) {
      let rho = r0 + e / D4;
      var qx = vec4f();
      var dx = vec4f();
      if (rho < rows) {
        let src = q_base(b, rho / g, kvh * g + rho % g) + e % D4;
        qx = q[src];
        dx = dout[src];
      }
      t_a[e] = qx;
      t_b[e] = dx;
    }
    for (var r = lid; r < BT; r += WG) {
      let rho = r0 + r;
      var ok = 0u;
      var lv = 0.0;
      var dl = 0.0;
      if (rho < rows) {
        let tok = rho / g;
        let i = (b * p.n_heads + kvh * g + rho % g) * p.tq + tok;
        ok = select(0u, 1u, is_real(b, p.q_offset + tok));
        dl = kv_stats[i];
        lv = kv_stats[n + i];
      }
      t_ok[r] = ok;
      t_l[r] = lv;
      t_delta[r] = dl;
    }
    workgroupBarrier();
    for (var r = 0u; r < BT; r++) {
      let rho = r0 + r;
      if (!key_ok || rho >= rows || t_ok[r] == 0u || p.q_offset + rho / g < j) {
        continue;
      }
      var s = vec4f();
      var tt = vec4f();
      for (var i = 0u; i < D4; i++) {
        s = fma(t_a[r * D4 + i], kr[i], s);
        tt = fma(t_b[r * D4 + i], vr[i], tt);
      }
      let pv = exp(hsum(s) - t_l[r]);
      let ds = pv * (hsum(tt) - t_delta[r]);
      for (var i = 0u; i < D4; i++) {
        gv[i] = fma(vec4f(pv), t_b[r * D4 + i], gv[i]);
        gk[i] = fma(vec4f(ds), t_a[r * D4 + i], gk[i]);
      }
    }
  }
  if (j < p.kv_cap) {
    for (var i = 0u; i < D4; i++) {
      dk[kb + i] = gk[i] * p.scale;
      dv[kb + i] = gv[i];
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 3: dQ, one query row per invocation. Bindings: q 1, k 2, v 3, mask 4, dout 5,
// out 6, lse 7, dq 8 (delta is recomputed from dout . out in the same vec4 order as pass 1).

@group(0) @binding(6) var<storage, read> q_out: array<vec4f>;
@group(0) @binding(7) var<storage, read> q_lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<vec4f>;

@compute @workgroup_size(WG)
fn flash_backward_q(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let t = row_block(wid, nwg);
  if (!t.ok) {
    return;
  }
  let rho = t.r0 + lid;
  let live = rho < t.rows;
  let tok = rho / t.g;
  let h = t.kvh * t.g + rho % t.g;
  let real = live && is_real(t.b, p.q_offset + tok);
  let qb = q_base(t.b, min(tok, p.tq - 1u), h);
  let last = p.q_offset + tok;
  var qv: array<vec4f, MAX_D4>;
  var dov: array<vec4f, MAX_D4>;
  var acc: array<vec4f, MAX_D4>;
  var delta = 0.0;
  var l = 0.0;
  if (real) {
    var ds = vec4f();
    for (var i = 0u; i < D4; i++) {
      qv[i] = q[qb + i] * p.scale;
      dov[i] = dout[qb + i];
      ds = fma(dov[i], q_out[qb + i], ds);
    }
    delta = hsum(ds);
    l = q_lse[(t.b * p.n_heads + h) * p.tq + tok];
  }
  for (var kb = 0u; kb < t.kend; kb += BT) {
    workgroupBarrier();
    load_kv_tile(t.b, t.kvh, kb, t.kend, lid);
    workgroupBarrier();
    for (var kj = 0u; kj < BT; kj++) {
      let j = kb + kj;
      if (!real || j > last || j >= t.kend || !is_real(t.b, j)) {
        continue;
      }
      var s = vec4f();
      var tt = vec4f();
      for (var i = 0u; i < D4; i++) {
        s = fma(qv[i], t_a[kj * D4 + i], s);
        tt = fma(dov[i], t_b[kj * D4 + i], tt);
      }
      let ds = exp(hsum(s) - l) * (hsum(tt) - delta);
      for (var i = 0u; i < D4; i++) {
        acc[i] = fma(vec4f(ds), t_a[kj * D4 + i], acc[i]);
      }
    }
  }
  if (live) {
    for (var i = 0u; i < D4; i++) {
      dq[qb + i] = acc[i] * p.scale;
    }
  }
}
