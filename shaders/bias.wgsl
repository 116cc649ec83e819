// Bias of a linear layer over rows [n, cols]: the forward adds the bias to every row,
// y[r, j] += b[j], with b stored as f32 or as bf16/f16 packed two per u32 (p.wdtype) — the
// frozen q/k/v biases of Qwen2 checkpoints; the backward sums the rows of the output gradient,
// db[j] (+)= Σ_r dy[r, j] (full fine-tuning), one invocation per column summing rows in order
// (deterministic; the column count is small: a projection's width).

struct Params {
  n: u32,          // rows
  cols: u32,
  wdtype: u32,     // 0 f32, 1 bf16, 2 f16
  accumulate: u32, // bias_backward: 1 adds into db, 0 overwrites
}

@group(0) @binding(0) var<uniform> p: Params;

override WG: u32 = 256;

// ---- forward: b at 1, y at 2 ----
@group(0) @binding(1) var<storage, read> bf: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn bias(j: u32) -> f32 {
  if (p.wdtype == 0u) {
    return bitcast<f32>(bf[j]);
  }
  let word = bf[j >> 1u];
  let bits = select(word & 0xffffu, word >> 16u, (j & 1u) == 1u);
  if (p.wdtype == 1u) {
    return bitcast<f32>(bits << 16u);
  }
  return unpack2x16float(bits).x;
}

@compute @workgroup_size(WG)
fn bias_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i < p.n * p.cols) {
    y[i] = y[i] + bias(i % p.cols);
  }
}

// ---- backward: dy at 1, db at 2 ----
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(WG)
fn bias_backward(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  if (j >= p.cols) {
    return;
  }
  var s = 0.0;
  for (var r = 0u; r < p.n; r++) {
    s += dy[r * p.cols + j];
  }
  db[j] = select(s, db[j] + s, p.accumulate == 1u);
}
