// Split-KV decode attention: one new token per sequence (tq = 1) attends a long KV cache. The
// other attention kernels give a (batch, kv head) to a workgroup, so a decode step of a 1B
// Llama at batch 1 runs on 8 workgroups; here the keys are split into chunks of `chunk` keys and
// every (batch, head, chunk) gets a workgroup, which writes a partial softmax (its max m, its
// sum l = sum exp(s - m) and o = sum exp(s - m) v). decode_combine then merges the chunks of
// each row: M = max m_c, L = sum l_c exp(m_c - M), out = sum o_c exp(m_c - M) / L,
// lse = M + log L. Layouts, masking and the cache offset are those of shaders/attention.wgsl;
// head_dim = 4 * D4.
//
// The workgroup's max and sum reductions are `reduce_max` / `reduce_sum`, appended by
// src/engine/attention.ts from attention_reduce_wg.wgsl (a tree in workgroup memory) or, where
// the adapter has `subgroups`, attention_reduce_sg.wgsl (subgroupMax / subgroupAdd, then one
// pass over the subgroups' results).
//
// Partials: part[(bh * n_chunks + c) * (D4 + 1) + i] = o_c[4i .. 4i + 3] for i < D4, and
// element D4 = (m_c, l_c, 0, 0). A chunk with no visible key (or a padding query) has m = NEG,
// l = 0, o = 0.

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
  chunk: u32,        // keys per chunk, <= CHUNK_MAX
  n_chunks: u32,
  wg_first: u32,     // this dispatch runs workgroups [wg_first, wg_end) of the linear grid
  wg_end: u32,       // (the watchdog cut of src/engine/attention.ts)
}

@group(0) @binding(0) var<uniform> p: Params;

fn wg_index(wid: vec3u, nwg: vec3u) -> u32 {
  return p.wg_first + wid.x + wid.y * nwg.x;
}

override WD: u32 = 64u;          // invocations per workgroup (a power of two)
override D4: u32 = 16u;          // head_dim / 4
override CHUNK_MAX: u32 = 256u;
override NS: u32 = WD / D4;      // key slices of the P.V product

const MAX_D4: u32 = 32u;
const NEG: f32 = -3.0e38;
const VALID: f32 = -1.0e38;

var<workgroup> t_p: array<f32, CHUNK_MAX>;
var<workgroup> t_red: array<f32, WD>;
var<workgroup> t_o: array<vec4f, WD>;

@group(0) @binding(1) var<storage, read> q: array<vec4f>;
@group(0) @binding(2) var<storage, read> k: array<vec4f>;
@group(0) @binding(3) var<storage, read> v: array<vec4f>;
@group(0) @binding(4) var<storage, read> mask: array<u32>;
@group(0) @binding(5) var<storage, read_write> part: array<vec4f>;

fn kv_base(b: u32, j: u32, kvh: u32) -> u32 {
  return ((b * p.kv_cap + j) * p.n_kv + kvh) * D4;
}

fn is_real(b: u32, pos: u32) -> bool {
  return p.mask_stride == 0u || mask[b * p.mask_stride + pos] != 0u;
}

@compute @workgroup_size(WD)
fn decode_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let w = wg_index(wid, nwg);
  if (w >= p.wg_end) {
    return;
  }
  let c = w % p.n_chunks;
  let bh = w / p.n_chunks;
  let h = bh % p.n_heads;
  let b = bh / p.n_heads;
  let kvh = h / (p.n_heads / p.n_kv);
  let real = is_real(b, p.q_offset);
  let j0 = c * p.chunk;
  let nk = select(0u, min(p.chunk, p.tkv - j0), j0 < p.tkv);
  // Scores: one key per invocation at a time, q in registers (pre-scaled).
  var qv: array<vec4f, MAX_D4>;
  let qb = bh * D4;  // q is [batch, 1, n_heads, head_dim]
  for (var i = 0u; i < D4; i++) {
    qv[i] = q[qb + i] * p.scale;
  }
  var mloc = NEG;
  for (var e = lid; e < CHUNK_MAX; e += WD) {
    var x = NEG;
    if (real && e < nk && is_real(b, j0 + e)) {
      let kb = kv_base(b, j0 + e, kvh);
      var a = vec4f();
      for (var i = 0u; i < D4; i++) {
        a = fma(qv[i], k[kb + i], a);
      }
      x = (a.x + a.y) + (a.z + a.w);
    }
    t_p[e] = x;
    mloc = max(mloc, x);
  }
  let m = reduce_max(mloc, lid);
  // One exp per score; t_p now holds the probabilities (unnormalised, relative to m).
  var lsum = 0.0;
  for (var e = lid; e < CHUNK_MAX; e += WD) {
    let x = t_p[e];
    let pj = select(exp(x - m), 0.0, x <= VALID);
    t_p[e] = pj;
    lsum += pj;
  }
  let l = reduce_sum(lsum, lid);  // its barriers also publish t_p
  // P.V: invocation (slice, column): column i of the keys e = slice, slice + NS, ...
  let i = lid % D4;
  let sl = lid / D4;
  var o = vec4f();
  if (sl < NS && m > VALID) {
    for (var e = sl; e < nk; e += NS) {
      o = fma(vec4f(t_p[e]), v[kv_base(b, j0 + e, kvh) + i], o);
    }
  }
  t_o[lid] = o;
  workgroupBarrier();
  let pb = w * (D4 + 1u);
  if (lid < D4) {
    var s = vec4f();
    for (var z = 0u; z < NS; z++) {
      s += t_o[z * D4 + lid];
    }
    part[pb + lid] = s;
  }
  if (lid == 0u) {
    part[pb + D4] = vec4f(m, l, 0.0, 0.0);
  }
}

// Combine: one invocation per (row, vec4 column). Bindings: part 1, out 2, lse 3.

@group(0) @binding(1) var<storage, read> c_part: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(WD)
fn decode_combine(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                  @builtin(local_invocation_index) lid: u32) {
  let w = wg_index(wid, nwg);
  let idx = w * WD + lid;
  if (w >= p.wg_end || idx >= p.batch * p.n_heads * D4) {
    return;
  }
  let i = idx % D4;
  let bh = idx / D4;
  let base = bh * p.n_chunks * (D4 + 1u);
  var mx = NEG;
  for (var c = 0u; c < p.n_chunks; c++) {
    mx = max(mx, c_part[base + c * (D4 + 1u) + D4].x);
  }
  var l = 0.0;
  var o = vec4f();
  if (mx > VALID) {
    for (var c = 0u; c < p.n_chunks; c++) {
      let cb = base + c * (D4 + 1u);
      let ml = c_part[cb + D4];
      if (ml.x > VALID) {
        let wgt = exp(ml.x - mx);
        l = fma(ml.y, wgt, l);
        o = fma(c_part[cb + i], vec4f(wgt), o);
      }
    }
  }
  let ok = l > 0.0;
  out[bh * D4 + i] = o * select(0.0, 1.0 / l, ok);
  if (i == 0u) {
    lse[bh] = select(0.0, mx + log(l), ok);
  }
}
