// f16 inputs, f32 accumulation, for products that no gradient flows through (generation's
// prefill, layout nt):  out[M,N] = alpha · a[M,K] · b[N,K]ᵀ + (accumulate ? out : 0).
//
// The source is written over the type alias `h`, which src/engine/matmul-f16.ts defines together
// with to_h (f32 → h) and hmul (h · vec4<h> → vec4f):
//   real      (adapters with `shader-f16`): `enable f16; alias h = f16;`, to_h = f16(x), hmul the
//             f16 product widened to f32;
//   emulated  (any adapter; how the tests run this kernel on SwiftShader, which lacks shader-f16):
//             `alias h = f32;`, with to_h and hmul rounding their results to f16 through
//             pack2x16float/unpack2x16float, so the arithmetic is that of the real variant:
//             inputs rounded to f16, each product rounded to f16, sums in f32.
//
// Tiling (after llama.cpp's WebGPU register-tile matmul and ONNX Runtime Web's vec4 kernels: a
// 64×64 workgroup tile of 8×8 threads, each an 8×8 block of outputs in f32 registers): TK-deep
// slices of a and b are converted to h while staged in workgroup memory, d-major as vec4<h>, so
// the inner loop per d is two vec4<h> reads of a, two of b and 16 vec4 products; staged f16
// tiles take half the workgroup memory and half its traffic of the f32 kernels. The next slice
// is loaded into registers while the current one is used (one slice of prefetch). Loads are 8
// consecutive k at a time: 16 bytes of bf16/f16 b (two vec4 of f32 b or of a) where K and
// bOffset are multiples of 8 (entry points f16_nt_<b dtype>), element by element with bounds
// checks otherwise (f16_nt_any_<b dtype>). Rows and columns past the edge are zero-filled.

struct Params {
  rows: u32,        // M
  cols: u32,        // N
  depth: u32,       // K
  b_offset: u32,    // element offset of the operand in b
  alpha: f32,
  accumulate: u32,  // 1: add the previous contents of out
  tiles_q: u32,     // tiles along N
  groups: u32,      // tiles in all
  first_group: u32, // first tile of this dispatch (a product is cut into dispatches of bounded work)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a4: array<vec4f>;
@group(0) @binding(2) var<storage, read> b4: array<vec4u>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

override TK: u32 = 16; // reduction slice staged per step (a multiple of 8, at most 8·MAX_UPT)
const MAX_UPT = 4u;    // most 8-depth units a thread stages per slice (TK ≤ 32)
const T = 64u;         // the workgroup tile is T×T; 8×8 threads each 8×8 outputs

const F32 = 0u;
const BF16 = 1u;
const F16 = 2u;

var<workgroup> As: array<vec4<h>, TK * 16u>; // [d][row / 4]
var<workgroup> Bs: array<vec4<h>, TK * 16u>; // [d][column / 4]

fn a_at(i: u32) -> f32 {
  return a4[i >> 2u][i & 3u];
}

fn b_word(i: u32) -> u32 {
  return b4[i >> 2u][i & 3u];
}

// b's elements: fb_at(e, dt) and fb_at8(e, dt), spliced in from shaders/matmul_b.wgsl.

// Component c of As[i] and Bs[i], written with constant swizzles: a store through a dynamic
// component index may be lowered to a read-modify-write of the whole vec4 (WGSL allows it; Tint's
// HLSL output does it), which would race with the neighbours writing the other components.
fn stage(i: u32, c: u32, x: h, y: h) {
  switch c {
    case 0u: { As[i].x = x; Bs[i].x = y; }
    case 1u: { As[i].y = x; Bs[i].y = y; }
    case 2u: { As[i].z = x; Bs[i].z = y; }
    default: { As[i].w = x; Bs[i].w = y; }
  }
}

// Unit q of the slice at depth k0: 8 consecutive depths of row r of a and of column r of b
// (r = q / (TK/8)), zero past the edges. `vec`: K and bOffset are multiples of 8, so a unit lies
// wholly inside or outside a row and is read with 16-byte loads.
fn load_unit(q: u32, k0: u32, row0: u32, col0: u32, vec: bool, dt: u32) -> array<vec4f, 4> {
  let M = p.rows;
  let N = p.cols;
  let K = p.depth;
  let units = TK / 8u;
  let r = q / units;
  let k = k0 + (q % units) * 8u;
  let m = row0 + r;
  let n = col0 + r;
  var v = array<vec4f, 4>(); // a: v[0], v[1]; b: v[2], v[3]
  if (vec) {
    if (k < K) {
      if (m < M) {
        let ai = (m * K + k) >> 2u;
        v[0] = a4[ai];
        v[1] = a4[ai + 1u];
      }
      if (n < N) {
        let w = fb_at8(p.b_offset + n * K + k, dt);
        v[2] = w[0];
        v[3] = w[1];
      }
    }
  } else {
    for (var i = 0u; i < 8u; i++) {
      if (k + i < K) {
        if (m < M) {
          v[i >> 2u][i & 3u] = a_at(m * K + k + i);
        }
        if (n < N) {
          v[2u + (i >> 2u)][i & 3u] = fb_at(p.b_offset + n * K + k + i, dt);
        }
      }
    }
  }
  return v;
}

fn f16_nt(wid: vec3u, nwg: vec3u, lid: vec3u, vec: bool, dt: u32) {
  let g = p.first_group + wid.x + wid.y * nwg.x;
  if (g >= p.groups) {
    return;
  }
  let M = p.rows;
  let N = p.cols;
  let K = p.depth;
  let row0 = (g / p.tiles_q) * T;
  let col0 = (g % p.tiles_q) * T;
  let t = lid.y * 8u + lid.x;
  let units = TK / 8u; // 8-depth units per row of a slice
  let upt = TK / 8u;   // units per thread: T·units over the 64 threads

  // The slice's units in registers: the next slice's global loads are issued before the current
  // slice's products and land while they run (one slice of prefetch).
  var pre = array<array<vec4f, 4>, MAX_UPT>();
  for (var j = 0u; j < upt; j++) {
    pre[j] = load_unit(t + 64u * j, 0u, row0, col0, vec, dt);
  }
  var acc = array<vec4f, 16>(); // row i: acc[2i] columns 0..3, acc[2i + 1] columns 4..7
  for (var k0 = 0u; k0 < K; k0 += TK) {
    for (var j = 0u; j < upt; j++) {
      let q = t + 64u * j;
      let r = q / units;
      let d = (q % units) * 8u;
      for (var i = 0u; i < 8u; i++) {
        stage((d + i) * 16u + (r >> 2u), r & 3u, to_h(pre[j][i >> 2u][i & 3u]), to_h(pre[j][2u + (i >> 2u)][i & 3u]));
      }
    }
    workgroupBarrier();
    if (k0 + TK < K) {
      for (var j = 0u; j < upt; j++) {
        pre[j] = load_unit(t + 64u * j, k0 + TK, row0, col0, vec, dt);
      }
    }
    for (var d = 0u; d < TK; d++) {
      let a0 = As[d * 16u + lid.y * 2u];
      let a1 = As[d * 16u + lid.y * 2u + 1u];
      let b0 = Bs[d * 16u + lid.x * 2u];
      let b1 = Bs[d * 16u + lid.x * 2u + 1u];
      for (var i = 0u; i < 4u; i++) {
        acc[2u * i] += hmul(a0[i], b0);
        acc[2u * i + 1u] += hmul(a0[i], b1);
        acc[2u * i + 8u] += hmul(a1[i], b0);
        acc[2u * i + 9u] += hmul(a1[i], b1);
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 8u; i++) {
    let m = row0 + lid.y * 8u + i;
    if (m < M) {
      for (var j = 0u; j < 8u; j++) {
        let n = col0 + lid.x * 8u + j;
        if (n < N) {
          var v = p.alpha * acc[2u * i + (j >> 2u)][j & 3u];
          if (p.accumulate != 0u) {
            v += out[m * N + n];
          }
          out[m * N + n] = v;
        }
      }
    }
  }
}
