// Token embedding: gather rows of a table [rows, h] (f32, bf16/f16 packed two per u32, or a
// quantized int8/int4 table decoded by the qt_ functions of shaders/quant.wgsl, spliced in by
// src/engine/embedding.ts) by
// i32 ids [n] into f32 out [n, h], and the backward scatter-add into dTable [rows, h] (f32).
// A table too large for one binding is split into chunks of rows; each dispatch sees the
// chunk holding global rows [rowStart, rowStart + rows) and skips ids outside it, so running
// every chunk over the same ids covers every token.
//
// embedding_forward    one thread per element of out (linear index over x and y of the grid).
// embedding_backward   one workgroup per token, deterministic without atomics on floats: the
//                      first token carrying an id owns that row; it adds the dOut rows of all
//                      tokens with that id into dTable in token order. Later tokens with the
//                      same id find the earlier one and exit. Only an integer flag is atomic.

struct Params {
  n: u32,
  h: u32,
  rowStart: u32,
  rows: u32,
  dtype: u32, // table: 0 f32, 1 bf16, 2 f16, 3 int8, 4 int4 (forward only)
  scale_word: u32, // quantized table: word index of its f16 scales
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256;

fn in_chunk(id: i32) -> bool {
  let rel = id - i32(p.rowStart);
  return rel >= 0 && rel < i32(p.rows);
}

// ---- forward: ids at 1, table at 2, out at 3 ----
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn table_word(i: u32) -> u32 {
  return table[i];
}

fn table_value(e: u32) -> f32 {
  if (p.dtype >= 3u) {
    return qt_at(e, p.dtype, p.scale_word);
  }
  if (p.dtype == 0u) {
    return bitcast<f32>(table[e]);
  }
  let word = table[e >> 1u];
  let bits = select(word & 0xffffu, word >> 16u, (e & 1u) == 1u);
  if (p.dtype == 1u) {
    return bitcast<f32>(bits << 16u);
  }
  return unpack2x16float(bits).x;
}

@compute @workgroup_size(WG)
fn embedding_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.n * p.h) {
    return;
  }
  let tok = i / p.h;
  let col = i - tok * p.h;
  let id = ids[tok];
  if (in_chunk(id)) {
    out[i] = table_value(u32(id - i32(p.rowStart)) * p.h + col);
  }
}

// ---- backward: ids at 1, dOut at 2, dTable at 3 ----
@group(0) @binding(1) var<storage, read> b_ids: array<i32>;
@group(0) @binding(2) var<storage, read> b_dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> b_dtable: array<f32>;

var<workgroup> duplicate: atomic<u32>;

@compute @workgroup_size(WG)
fn embedding_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                      @builtin(local_invocation_index) lid: u32) {
  let tok = wid.x + wid.y * nwg.x;
  if (tok >= p.n) {
    return;
  }
  let id = b_ids[tok];
  let mine = in_chunk(id);
  // Workgroup memory starts zeroed, but implementations may skip that (a Dawn toggle does).
  if (lid == 0u) {
    atomicStore(&duplicate, 0u);
  }
  workgroupBarrier();
  if (mine) {
    for (var m = lid; m < tok; m += WG) {
      if (b_ids[m] == id) {
        atomicOr(&duplicate, 1u);
        break;
      }
    }
  }
  workgroupBarrier();
  if (!mine || atomicLoad(&duplicate) != 0u) {
    return;
  }
  let row = u32(id - i32(p.rowStart)) * p.h;
  for (var m = tok; m < p.n; m++) {
    if (b_ids[m] == id) {
      let src = m * p.h;
      for (var col = lid; col < p.h; col += WG) {
        b_dtable[row + col] = b_dtable[row + col] + b_dout[src + col];
      }
    }
  }
}
