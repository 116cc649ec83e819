// Causal grouped-query attention, flash-attention style (no T x T matrix in memory).
//
// Layouts (row-major, f32):
//   q, out, dout, dq   [batch, tq, n_heads, head_dim]
//   k, v, dk, dv       [batch, kv_cap, n_kv, head_dim]   (kv_cap: sequence length, or cache capacity)
//   lse                [batch, n_heads, tq]              (log-sum-exp of each query row's scores)
//   mask               [batch, mask_stride] u32/i32      (entry j: key/position j is real if != 0)
// Query token i sits at key position q_offset + i and attends keys j <= q_offset + i, j < tkv,
// that are real. Training: q_offset = 0, tkv = kv_cap = tq. KV-cache generation: q_offset =
// past length, tkv = q_offset + tq <= kv_cap. A query whose own position is padding gets output
// 0, lse 0 and gradient 0. Scores are scale * q.k.
//
// Rows: head h uses kv head h / g (g = n_heads / n_kv). A workgroup owns one (batch, kv head)
// and a block of BQ "rows" rho = token * g + head-in-group, so the g query heads sharing a kv
// head read each K/V tile once (and a decode step with tq = 1 still fills g rows).
//
// Threads: TC threads per row; thread c of a row owns head dims c, c + TC, ..., c + 7 TC of the
// row's accumulators (head_dim <= 8 TC). Dot products (scores) are spread over all threads of
// the workgroup, one (row, key) pair each, reading q and k rows from workgroup memory. Tiles
// are stored with a row stride of 8 TC + 1 words to keep those reads free of bank conflicts.
//
// Backward (recomputes probabilities from q, k and lse; deterministic, no atomics):
//   attention_backward_delta: delta_i = dout_i . out_i and a copy of lse into a stats buffer
//     (the dq buffer serves: it is rewritten by the last pass).
//   attention_backward_kv: one workgroup per (batch, kv head, block of BK keys) loops over the
//     query rows of all g heads that can see those keys: dV += P^T dO, dK += scale dS^T Q.
//   attention_backward_q: one workgroup per row block loops over keys: dQ = scale dS K.
//   with P = exp(scale q.k - lse), dS = P * (dout . v - delta).
// On CPU adapters (SwiftShader) the dk/dv and dq passes run as attention_backward_kv_rows and
// attention_backward_q_rows instead (end of file): no workgroup memory, no barriers.

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

override BQ: u32 = 16u;   // query rows per tile
override BK: u32 = 16u;   // keys per tile
override TC: u32 = 8u;    // threads per row (forward, dq) or per key (dk/dv)
const ACC: u32 = 8u;      // accumulator dims per thread
override DC: u32 = ACC * TC;
override DS: u32 = DC + 1u;
override TQ_N: u32 = BQ * DS;
override TK_N: u32 = BK * DS;
override TS_N: u32 = BQ * BK;

const NEG: f32 = -3.0e38;    // score of an excluded key
const VALID: f32 = -1.0e38;  // scores above this are real

var<workgroup> t_q: array<f32, TQ_N>;
var<workgroup> t_do: array<f32, TQ_N>;
var<workgroup> t_k: array<f32, TK_N>;
var<workgroup> t_v: array<f32, TK_N>;
var<workgroup> t_s: array<f32, TS_N>;
var<workgroup> t_s2: array<f32, TS_N>;
var<workgroup> t_l: array<f32, BQ>;
var<workgroup> t_delta: array<f32, BQ>;
var<workgroup> t_ok: array<u32, BQ>;

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;

fn q_base(b: u32, tok: u32, h: u32) -> u32 {
  return ((b * p.tq + tok) * p.n_heads + h) * p.head_dim;
}

fn kv_base(b: u32, j: u32, kvh: u32) -> u32 {
  return ((b * p.kv_cap + j) * p.n_kv + kvh) * p.head_dim;
}

fn is_real(b: u32, pos: u32) -> bool {
  return p.mask_stride == 0u || mask[b * p.mask_stride + pos] != 0u;
}

// May query token tok attend key j?
fn allowed(b: u32, tok: u32, j: u32) -> bool {
  return j < p.tkv && j <= p.q_offset + tok && is_real(b, j);
}

// A block of BQ rows of one (batch, kv head).
struct RowTile {
  b: u32,
  kvh: u32,
  r0: u32,
  rows: u32,   // tq * g
  g: u32,
  ok: bool,    // false past the end of the grid
}

fn row_tile(wid: vec3u, nwg: vec3u) -> RowTile {
  let g = p.n_heads / p.n_kv;
  let rows = p.tq * g;
  let nblk = (rows + BQ - 1u) / BQ;
  let w = wg_index(wid, nwg);
  let bh = w / nblk;
  return RowTile(bh / p.n_kv, bh % p.n_kv, (w % nblk) * BQ, rows, g, w < p.wg_end);
}

// Keys a row tile needs: up to the last row's causal limit.
fn key_end(t: RowTile) -> u32 {
  let last = min(t.rows, t.r0 + BQ) - 1u;
  return min(p.tkv, p.q_offset + last / t.g + 1u);
}

// Where row tile element e (row e / DC, dim e % DC) comes from in a [batch, tq, n_heads,
// head_dim] tensor, or -1 for the zeros past the last row and past head_dim.
fn q_tile_src(t: RowTile, e: u32) -> i32 {
  let rho = t.r0 + e / DC;
  let d = e % DC;
  if (rho >= t.rows || d >= p.head_dim) {
    return -1;
  }
  return i32(q_base(t.b, rho / t.g, t.kvh * t.g + rho % t.g) + d);
}

fn tile_slot(e: u32) -> u32 {
  return (e / DC) * DS + e % DC;
}

fn load_q_tile(t: RowTile, lid: u32, nthreads: u32) {
  for (var e = lid; e < BQ * DC; e += nthreads) {
    let i = q_tile_src(t, e);
    t_q[tile_slot(e)] = select(0.0, q[max(i, 0)], i >= 0);
  }
}

// Copy keys and values j0 .. j0 + BK (zeros from `end` on: never read past tkv).
fn load_kv_tile(b: u32, kvh: u32, j0: u32, end: u32, lid: u32, nthreads: u32) {
  for (var e = lid; e < BK * DC; e += nthreads) {
    let jj = e / DC;
    let d = e % DC;
    let j = j0 + jj;
    var kx = 0.0;
    var vx = 0.0;
    if (j < end && d < p.head_dim) {
      let o = kv_base(b, j, kvh) + d;
      kx = k[o];
      vx = v[o];
    }
    t_k[jj * DS + d] = kx;
    t_v[jj * DS + d] = vx;
  }
}

fn dot_tiles_qk(qr: u32, kj: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < p.head_dim; d++) {
    s += t_q[qr * DS + d] * t_k[kj * DS + d];
  }
  return s;
}

fn dot_tiles_dov(qr: u32, kj: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < p.head_dim; d++) {
    s += t_do[qr * DS + d] * t_v[kj * DS + d];
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Forward. Bindings: q 1, k 2, v 3, mask 4, out 5, lse 6.

@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;

struct LseWrite {
  write: bool,
  index: u32,
  value: f32,
}

fn forward_tile(wid: vec3u, nwg: vec3u, lid: u32) -> LseWrite {
  var res = LseWrite(false, 0u, 0.0);
  let t = row_tile(wid, nwg);
  if (!t.ok) {
    return res;
  }
  let nthreads = BQ * TC;
  load_q_tile(t, lid, nthreads);
  let kend = key_end(t);
  let r = lid / TC;
  let c = lid % TC;
  let rho = t.r0 + r;
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, ACC>;
  for (var kb = 0u; kb < kend; kb += BK) {
    workgroupBarrier();
    load_kv_tile(t.b, t.kvh, kb, kend, lid, nthreads);
    workgroupBarrier();
    for (var e = lid; e < BQ * BK; e += nthreads) {
      let qr = e / BK;
      let kj = e % BK;
      let qrho = t.r0 + qr;
      var s = NEG;
      if (qrho < t.rows && allowed(t.b, qrho / t.g, kb + kj)) {
        s = dot_tiles_qk(qr, kj) * p.scale;
      }
      t_s[e] = s;
    }
    workgroupBarrier();
    // Online softmax of this row over the tile (every thread of the row does the same sums).
    if (rho < t.rows) {
      var mb = NEG;
      for (var kj = 0u; kj < BK; kj++) {
        mb = max(mb, t_s[r * BK + kj]);
      }
      if (mb > VALID) {
        let mn = max(m, mb);
        let alpha = select(exp(m - mn), 0.0, m <= VALID);
        l *= alpha;
        for (var i = 0u; i < ACC; i++) {
          acc[i] *= alpha;
        }
        for (var kj = 0u; kj < BK; kj++) {
          let sj = t_s[r * BK + kj];
          let pj = select(exp(sj - mn), 0.0, sj <= VALID);
          l += pj;
          for (var i = 0u; i < ACC; i++) {
            acc[i] += pj * t_v[kj * DS + c + TC * i];
          }
        }
        m = mn;
      }
    }
  }
  if (rho < t.rows) {
    let tok = rho / t.g;
    let h = t.kvh * t.g + rho % t.g;
    let real = l > 0.0 && is_real(t.b, p.q_offset + tok);
    let inv = select(0.0, 1.0 / l, real);
    let ob = q_base(t.b, tok, h);
    for (var i = 0u; i < ACC; i++) {
      let d = c + TC * i;
      if (d < p.head_dim) {
        out[ob + d] = acc[i] * inv;
      }
    }
    if (c == 0u) {
      res = LseWrite(true, (t.b * p.n_heads + h) * p.tq + tok, select(0.0, m + log(l), real));
    }
  }
  return res;
}

@compute @workgroup_size(BQ * TC)
fn attention_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let w = forward_tile(wid, nwg, lid);
  if (w.write) {
    lse[w.index] = w.value;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 1: stats[i] = dout_i . out_i, stats[R + i] = lse[i] for the R = batch *
// n_heads * tq rows, indexed like lse. Bindings: out 1, dout 2, lse 3, stats 4.

override WG: u32 = 256u;

@group(0) @binding(1) var<storage, read> d_out: array<f32>;
@group(0) @binding(2) var<storage, read> d_dout: array<f32>;
@group(0) @binding(3) var<storage, read> d_lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> d_stats: array<f32>;

@compute @workgroup_size(WG)
fn attention_backward_delta(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
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
  var s = 0.0;
  for (var d = 0u; d < p.head_dim; d++) {
    s += d_dout[base + d] * d_out[base + d];
  }
  d_stats[i] = s;
  d_stats[n + i] = d_lse[i];
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 2: dK and dV. Bindings: q 1, k 2, v 3, mask 4, dout 5, stats 6, dk 7, dv 8.
// Here BK keys per workgroup, TC threads per key, BQ query rows per step.

@group(0) @binding(5) var<storage, read> dout: array<f32>;
@group(0) @binding(6) var<storage, read> kv_stats: array<f32>;

fn load_do_tile(t: RowTile, lid: u32, nthreads: u32) {
  for (var e = lid; e < BQ * DC; e += nthreads) {
    let i = q_tile_src(t, e);
    t_do[tile_slot(e)] = select(0.0, dout[max(i, 0)], i >= 0);
  }
}
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;

@compute @workgroup_size(BK * TC)
fn attention_backward_kv(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                         @builtin(local_invocation_index) lid: u32) {
  let g = p.n_heads / p.n_kv;
  let rows = p.tq * g;
  let nkb = (p.kv_cap + BK - 1u) / BK;
  let w = wg_index(wid, nwg);
  if (w >= p.wg_end) {
    return;
  }
  let j0 = (w % nkb) * BK;
  let bh = w / nkb;
  let kvh = bh % p.n_kv;
  let b = bh / p.n_kv;
  let n = p.batch * p.n_heads * p.tq;
  let nthreads = BK * TC;
  load_kv_tile(b, kvh, j0, p.tkv, lid, nthreads);
  let kj = lid / TC;
  let c = lid % TC;
  var gk: array<f32, ACC>;
  var gv: array<f32, ACC>;
  // The first query token that can see key j0 is j0 - q_offset.
  var r_begin = rows;
  if (j0 < p.tkv) {
    r_begin = select(0u, j0 - p.q_offset, j0 > p.q_offset) * g;
  }
  for (var r0 = r_begin; r0 < rows; r0 += BQ) {
    workgroupBarrier();
    let t = RowTile(b, kvh, r0, rows, g, true);
    load_q_tile(t, lid, nthreads);
    load_do_tile(t, lid, nthreads);
    if (lid < BQ) {
      let rho = r0 + lid;
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
      t_ok[lid] = ok;
      t_l[lid] = lv;
      t_delta[lid] = dl;
    }
    workgroupBarrier();
    for (var e = lid; e < BK * BQ; e += nthreads) {
      let ej = e / BQ;
      let qr = e % BQ;
      var pv = 0.0;
      var ds = 0.0;
      if (t_ok[qr] != 0u && allowed(b, (r0 + qr) / g, j0 + ej)) {
        pv = exp(dot_tiles_qk(qr, ej) * p.scale - t_l[qr]);
        ds = pv * (dot_tiles_dov(qr, ej) - t_delta[qr]);
      }
      t_s[e] = pv;
      t_s2[e] = ds;
    }
    workgroupBarrier();
    for (var qr = 0u; qr < BQ; qr++) {
      let pv = t_s[kj * BQ + qr];
      let ds = t_s2[kj * BQ + qr];
      for (var i = 0u; i < ACC; i++) {
        let d = c + TC * i;
        gv[i] += pv * t_do[qr * DS + d];
        gk[i] += ds * t_q[qr * DS + d];
      }
    }
  }
  let j = j0 + kj;
  if (j < p.kv_cap) {
    let base = kv_base(b, j, kvh);
    for (var i = 0u; i < ACC; i++) {
      let d = c + TC * i;
      if (d < p.head_dim) {
        dk[base + d] = gk[i] * p.scale;
        dv[base + d] = gv[i];
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 3: dQ. Bindings: q 1, k 2, v 3, mask 4, dout 5, out 6, lse 7, dq 8.

@group(0) @binding(6) var<storage, read> q_out: array<f32>;
@group(0) @binding(7) var<storage, read> q_lse: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<f32>;

@compute @workgroup_size(BQ * TC)
fn attention_backward_q(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                        @builtin(local_invocation_index) lid: u32) {
  let t = row_tile(wid, nwg);
  if (!t.ok) {
    return;
  }
  let nthreads = BQ * TC;
  load_q_tile(t, lid, nthreads);
  load_do_tile(t, lid, nthreads);
  workgroupBarrier();
  if (lid < BQ) {
    let rho = t.r0 + lid;
    var ok = 0u;
    var lv = 0.0;
    var dl = 0.0;
    if (rho < t.rows) {
      let tok = rho / t.g;
      let h = t.kvh * t.g + rho % t.g;
      ok = select(0u, 1u, is_real(t.b, p.q_offset + tok));
      lv = q_lse[(t.b * p.n_heads + h) * p.tq + tok];
      let base = q_base(t.b, tok, h);
      for (var d = 0u; d < p.head_dim; d++) {
        dl += t_do[lid * DS + d] * q_out[base + d];
      }
    }
    t_ok[lid] = ok;
    t_l[lid] = lv;
    t_delta[lid] = dl;
  }
  let kend = key_end(t);
  let r = lid / TC;
  let c = lid % TC;
  var acc: array<f32, ACC>;
  for (var kb = 0u; kb < kend; kb += BK) {
    workgroupBarrier();
    load_kv_tile(t.b, t.kvh, kb, kend, lid, nthreads);
    workgroupBarrier();
    for (var e = lid; e < BQ * BK; e += nthreads) {
      let qr = e / BK;
      let kj = e % BK;
      var ds = 0.0;
      if (t_ok[qr] != 0u && allowed(t.b, (t.r0 + qr) / t.g, kb + kj)) {
        let pv = exp(dot_tiles_qk(qr, kj) * p.scale - t_l[qr]);
        ds = pv * (dot_tiles_dov(qr, kj) - t_delta[qr]);
      }
      t_s[e] = ds;
    }
    workgroupBarrier();
    for (var kj = 0u; kj < BK; kj++) {
      let ds = t_s[r * BK + kj];
      for (var i = 0u; i < ACC; i++) {
        acc[i] += ds * t_k[kj * DS + c + TC * i];
      }
    }
  }
  let rho = t.r0 + r;
  if (rho < t.rows) {
    let base = q_base(t.b, rho / t.g, t.kvh * t.g + rho % t.g);
    for (var i = 0u; i < ACC; i++) {
      let d = c + TC * i;
      if (d < p.head_dim) {
        dq[base + d] = acc[i] * p.scale;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 3 on CPU adapters: dQ without workgroup memory or barriers (head_dim a multiple
// of 4). On SwiftShader a kernel with a workgroupBarrier runs each invocation as a coroutine and
// the tiled pass above ran at ~3 % of the FMA peak; here one invocation owns one query row
// (batch, token, head), keeps q, dout and dq in vec4 registers and streams the keys it may see
// from global memory. Neighbouring invocations are neighbouring heads, so the g heads of a group
// read the same k/v rows (one broadcast load on SwiftShader). Same bindings as pass 3; delta is
// recomputed from dout . out, lse read directly. Rows are numbered like q: ((b tq + tok) n_heads + h).

const MAX_D4: u32 = 32u; // 128 / 4
override RW: u32 = 64u;  // invocations per workgroup

@group(0) @binding(1) var<storage, read> r_q: array<vec4f>;
@group(0) @binding(2) var<storage, read> r_k: array<vec4f>;
@group(0) @binding(3) var<storage, read> r_v: array<vec4f>;
@group(0) @binding(5) var<storage, read> r_do: array<vec4f>;
@group(0) @binding(6) var<storage, read> r_out: array<vec4f>;
@group(0) @binding(8) var<storage, read_write> r_dq: array<vec4f>;

@compute @workgroup_size(RW)
fn attention_backward_q_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                             @builtin(local_invocation_index) lid: u32) {
  let w = wg_index(wid, nwg);
  let row = w * RW + lid;
  if (w >= p.wg_end || row >= p.batch * p.tq * p.n_heads) {
    return;
  }
  let h = row % p.n_heads;
  let tok = (row / p.n_heads) % p.tq;
  let b = row / (p.n_heads * p.tq);
  let kvh = h / (p.n_heads / p.n_kv);
  let D4 = p.head_dim / 4u;
  let qb = row * D4;
  var qv: array<vec4f, MAX_D4>;
  var dv: array<vec4f, MAX_D4>;
  var acc: array<vec4f, MAX_D4>;
  // delta = dout . out, summed in the same order as dout . v below, so that a row with one
  // visible key (out = v exactly) gets dS = 0 exactly, as the float64 reference does.
  var dsum = vec4f();
  for (var i = 0u; i < D4; i++) {
    qv[i] = r_q[qb + i];
    dv[i] = r_do[qb + i];
    dsum += dv[i] * r_out[qb + i];
  }
  let delta = (dsum.x + dsum.y) + (dsum.z + dsum.w);
  let pos = p.q_offset + tok;
  if (is_real(b, pos)) {
    let l = q_lse[(b * p.n_heads + h) * p.tq + tok];
    let kend = min(p.tkv, pos + 1u);
    for (var j = 0u; j < kend; j++) {
      if (!is_real(b, j)) {
        continue;
      }
      let kb = kv_base(b, j, kvh) / 4u;
      var s = vec4f();
      var t = vec4f();
      for (var i = 0u; i < D4; i++) {
        s += qv[i] * r_k[kb + i];
        t += dv[i] * r_v[kb + i];
      }
      let pv = exp(((s.x + s.y) + (s.z + s.w)) * p.scale - l);
      let ds = pv * (((t.x + t.y) + (t.z + t.w)) - delta);
      for (var i = 0u; i < D4; i++) {
        acc[i] += ds * r_k[kb + i];
      }
    }
  }
  for (var i = 0u; i < D4; i++) {
    r_dq[qb + i] = acc[i] * p.scale;
  }
}

// ---------------------------------------------------------------------------------------------
// Backward, pass 2 on CPU adapters: dK and dV without workgroup memory or barriers (head_dim a
// multiple of 4). One invocation per key (batch, kv head, key j), keys fastest so the SIMD
// neighbours of an invocation walk the same query rows (broadcast loads): each starts at the
// first token of its 4-key group and skips the rows it may not see. Same bindings as pass 2
// (stats: [delta | lse] from pass 1).

@group(0) @binding(7) var<storage, read_write> r_dk: array<vec4f>;

@compute @workgroup_size(RW)
fn attention_backward_kv_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                              @builtin(local_invocation_index) lid: u32) {
  let w = wg_index(wid, nwg);
  let idx = w * RW + lid;
  if (w >= p.wg_end || idx >= p.batch * p.n_kv * p.kv_cap) {
    return;
  }
  let j = idx % p.kv_cap;
  let kvh = (idx / p.kv_cap) % p.n_kv;
  let b = idx / (p.kv_cap * p.n_kv);
  let g = p.n_heads / p.n_kv;
  let n = p.batch * p.n_heads * p.tq;
  let D4 = p.head_dim / 4u;
  let kb = kv_base(b, j, kvh) / 4u;
  var kv_k: array<vec4f, MAX_D4>;
  var kv_v: array<vec4f, MAX_D4>;
  var gk: array<vec4f, MAX_D4>;
  var gv: array<vec4f, MAX_D4>;
  if (j < p.tkv && is_real(b, j)) {
    for (var i = 0u; i < D4; i++) {
      kv_k[i] = r_k[kb + i];
      kv_v[i] = r_v[kb + i];
    }
    // Query token tok (position q_offset + tok) sees j when q_offset + tok >= j.
    let first = j & ~3u;
    let t0 = select(0u, first - p.q_offset, first > p.q_offset);
    for (var tok = t0; tok < p.tq; tok++) {
      let pos = p.q_offset + tok;
      if (pos < j || !is_real(b, pos)) {
        continue;
      }
      for (var hg = 0u; hg < g; hg++) {
        let h = kvh * g + hg;
        let si = (b * p.n_heads + h) * p.tq + tok;
        let qb = ((b * p.tq + tok) * p.n_heads + h) * D4;
        // dout . v summed in dim order like delta (pass 1), so that dS = 0 exactly where out = v.
        var s = vec4f();
        var t = 0.0;
        for (var i = 0u; i < D4; i++) {
          s += r_q[qb + i] * kv_k[i];
          let o = r_do[qb + i];
          let w = kv_v[i];
          t += o.x * w.x;
          t += o.y * w.y;
          t += o.z * w.z;
          t += o.w * w.w;
        }
        let pv = exp(((s.x + s.y) + (s.z + s.w)) * p.scale - kv_stats[n + si]);
        let ds = pv * (t - kv_stats[si]);
        for (var i = 0u; i < D4; i++) {
          gv[i] += pv * r_do[qb + i];
          gk[i] += ds * r_q[qb + i];
        }
      }
    }
  }
  for (var i = 0u; i < D4; i++) {
    r_dk[kb + i] = gk[i] * p.scale;
    r_dq[kb + i] = gv[i];
  }
}
