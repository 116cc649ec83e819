// Token choice on the GPU, so a decode step reads back one id per row instead of [B, V] logits.
//
//   argmax_rows   ids[row] = argmax over logits[row, 0..cols) with the LOWEST index among ties
//                 (torch.argmax and src/model/sampling.ts `argmax`). A row holding a NaN or +Inf
//                 gets id -1: the caller falls back to the host sampler, which reports the bad
//                 logit exactly as before. A row of all -Inf gets 0, as the host's argmax.
//
// One workgroup per row (rows over x and y, see splitGroups): each invocation scans a strided
// slice keeping its first maximum, then a tree reduction over (value, index) pairs takes the
// larger value, or the lower index on equal values. Special values are recognised from their
// bits, never by float comparisons a compiler may assume NaN-free.

struct Params {
  rows: u32,  // B
  cols: u32,  // V (row stride of the logits)
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> ids: array<i32>;

var<workgroup> redV: array<f32, WG>;
var<workgroup> redI: array<u32, WG>;
var<workgroup> redBad: array<u32, WG>;

const NONE: u32 = 0xffffffffu;

// (v1, i1) beats (v2, i2): larger value, or the lower index among equal values. NONE (no
// element) loses to any element.
fn better(v1: f32, i1: u32, v2: f32, i2: u32) -> bool {
  if (i1 == NONE) { return false; }
  if (i2 == NONE) { return true; }
  return v1 > v2 || (v1 == v2 && i1 < i2);
}

@compute @workgroup_size(WG)
fn argmax_rows(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
               @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) {
    return;  // uniform per workgroup: the barriers below are never split
  }
  let base = row * p.cols;
  var bv = 0.0;
  var bi = NONE;
  var bad = 0u;
  for (var c = lid; c < p.cols; c += WG) {
    let x = logits[base + c];
    let bits = bitcast<u32>(x);
    if ((bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u) {
      bad = 1u;  // NaN or +Inf
    } else if (bi == NONE || x > bv) {
      bv = x;
      bi = c;
    }
  }
  redV[lid] = bv;
  redI[lid] = bi;
  redBad[lid] = bad;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let v2 = redV[lid + s];
      let i2 = redI[lid + s];
      if (better(v2, i2, redV[lid], redI[lid])) {
        redV[lid] = v2;
        redI[lid] = i2;
      }
      redBad[lid] = redBad[lid] | redBad[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    ids[row] = select(i32(redI[0]), -1, redBad[0] != 0u || redI[0] == NONE);
  }
}
