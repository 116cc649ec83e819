// Self-test cases: matmul in its three layouts (Linear forward, input and weight gradients) and
// the LoRA adapter built on it. Ragged shapes, so CPU adapters take the `direct` path and GPUs
// `tiled` (or `gemv` for M ≤ 8); LoRA reuses the same pipelines. The narrow and split-K cases
// force their path and prove it (./proven.ts) on GPUs, which take it by default only afterwards.
import type { GpuContext } from '../../gpu/context';
import type { DType } from '../../gpu/dtype';
import { loraBackward, loraForward } from '../lora';
import { MATMUL_PATHS, matmul, type MatmulLayout, type MatmulPath, type MatmulProduct } from '../matmul';
import { loraBackwardRef, loraForwardRef } from '../reference/lora';
import { prepareSubgroupMatrix, sgmatUnavailable } from '../matmul-sgmat';
import { F16_ERROR_BOUND } from '../matmul-f16';
import { matmulRef } from '../reference/matmul';
import type { SelfTestCase, SelfTestCheck, SelfTestTools } from '../selftest';
import { draw, plus, rel, worst } from './common';

const MATMUL_BOUND = 1e-5;
const LORA_BOUND = 1e-5;

interface MatmulCase extends MatmulProduct {
  layout: MatmulLayout;
  /** dtype of b (the weight for nt and nn). */
  dtype: DType;
  /** Force this path and prove it on GPUs (the self-test is what lets a GPU choose it). */
  path?: 'narrow' | 'splitk';
  /** The name this case proves (default: the path's); narrow's aligned-nt kernel is proven apart. */
  proves?: keyof typeof MATMUL_PATHS;
}

/** [rows, cols] of a, b and out for each layout. */
function shapesOf({ layout, m, n, k }: Product) {
  if (layout === 'nt') return { a: [m, k], b: [n, k], out: [m, n] };
  if (layout === 'nn') return { a: [m, n], b: [n, k], out: [m, k] };
  return { a: [m, n], b: [m, k], out: [n, k] };
}

/** One product without the proof fields; `label` names it in its batch. */
type Product = Omit<MatmulCase, 'path' | 'proves'> & { label?: string };

/**
 * Runs each product on `path` (default: the one `matmul` picks) against float64 and returns the
 * worst check: a, b (with bOffset elements before it and 3 after that must be ignored) and, when
 * accumulating, out's previous contents drawn from the case's stream.
 */
async function checkProducts(
  ctx: GpuContext,
  t: SelfTestTools,
  products: readonly Product[],
  path: MatmulPath | undefined,
  batchLabel: string,
  bound = MATMUL_BOUND,
): Promise<SelfTestCheck> {
  const checks = [];
  for (const c of products) {
    const s = shapesOf(c);
    const size = (shape: number[]) => shape[0]! * shape[1]!;
    const a = draw(t, size(s.a));
    const b = draw(t, c.bOffset + size(s.b) + 3, c.dtype);
    const prev = c.accumulate ? draw(t, size(s.out)) : undefined;
    const out = prev ? t.upload(prev, s.out, 'out') : t.poisoned(s.out, 'out');
    const { layout, m, n, k, alpha, accumulate, bOffset } = c;
    const batch = ctx.batch(c.label ? `${batchLabel} ${c.label}` : batchLabel);
    matmul(batch, { a: t.upload(a, s.a, 'a'), b: t.upload(b, [b.length], 'b', c.dtype), out, layout, m, n, k, alpha, accumulate, bOffset }, { path });
    batch.submit();
    checks.push(rel(await t.read(out), matmulRef({ layout, a, b, m, n, k, alpha, c: prev, bOffset }), bound));
  }
  return worst(...checks);
}

function matmulCase(name: string, c: MatmulCase): SelfTestCase {
  const path: MatmulPath | undefined = c.path;
  return {
    name,
    proves: path ? (ctx) => (ctx.adapter.isFallback ? null : MATMUL_PATHS[c.proves ?? path]) : undefined,
    run: (ctx, t) => checkProducts(ctx, t, [c], path, `selftest ${name}`),
  };
}

// LoRA on a Linear layer of 37 → 29 features, rank 3, over 7 tokens.
const LORA = { m: 7, inF: 37, outF: 29, r: 3 };

export const MATMUL_CASES: readonly SelfTestCase[] = [
  matmulCase('matmul nt, f32 weight', { layout: 'nt', dtype: 'f32', m: 37, n: 29, k: 45, alpha: 1, accumulate: false, bOffset: 0 }),
  matmulCase('matmul nt, bf16 weight slice, accumulate', { layout: 'nt', dtype: 'bf16', m: 5, n: 67, k: 33, alpha: -0.75, accumulate: true, bOffset: 3 }),
  matmulCase('matmul nn, accumulate', { layout: 'nn', dtype: 'f32', m: 19, n: 29, k: 37, alpha: 1, accumulate: true, bOffset: 0 }),
  matmulCase('matmul tn', { layout: 'tn', dtype: 'f32', m: 23, n: 29, k: 37, alpha: 0.5, accumulate: false, bOffset: 0 }),
  // LoRA's rank-16 products: x·Aᵀ (narrow) and the A gradient dTmpᵀ·x summed over tokens (split-K).
  matmulCase('matmul narrow nn, bf16 weight, 16 columns', { layout: 'nn', dtype: 'bf16', m: 261, n: 45, k: 16, alpha: 1, accumulate: true, bOffset: 1, path: 'narrow' }),
  matmulCase('matmul narrow nt, 16-byte loads, bf16 weight, 16 columns', {
    layout: 'nt',
    dtype: 'bf16',
    m: 261,
    n: 16,
    k: 44,
    alpha: -0.5,
    accumulate: true,
    bOffset: 4,
    path: 'narrow',
    proves: 'narrow4',
  }),
  matmulCase('matmul split-K tn, long reduction', { layout: 'tn', dtype: 'f32', m: 1031, n: 16, k: 37, alpha: 0.5, accumulate: true, bOffset: 0, path: 'splitk' }),
  regtileCase(),
  {
    name: 'lora forward',
    run: async (ctx, t) => {
      const { m, inF, outF, r } = LORA;
      const x = draw(t, m * inF);
      const a = draw(t, r * inF, 'f32', 0.3);
      const b = draw(t, outF * r, 'f32', 0.3);
      const base = draw(t, m * outF);
      const scale = 0.5 + t.next();
      const out = t.upload(base, [m, outF], 'out');
      const tmp = t.poisoned([m, r], 'tmp');
      const batch = ctx.batch('selftest lora forward');
      loraForward(batch, { x: t.upload(x, [m, inF], 'x'), a: t.upload(a, [r, inF], 'A'), b: t.upload(b, [outF, r], 'B'), out, scale, tmp });
      batch.submit();
      const want = loraForwardRef(x, a, b, base, scale, LORA);
      return worst(rel(await t.read(out), want.out, LORA_BOUND), rel(await t.read(tmp), want.tmp, LORA_BOUND));
    },
  },
  {
    name: 'lora backward, accumulated grads',
    run: async (ctx, t) => {
      const { m, inF, outF, r } = LORA;
      const x = draw(t, m * inF);
      const a = draw(t, r * inF, 'f32', 0.3);
      const b = draw(t, outF * r, 'f32', 0.3);
      const dOut = draw(t, m * outF);
      const scale = 0.5 + t.next();
      const [prevA, prevB, prevX] = [draw(t, r * inF), draw(t, outF * r), draw(t, m * inF)];
      const tx = t.upload(x, [m, inF], 'x');
      const ta = t.upload(a, [r, inF], 'A');
      const tb = t.upload(b, [outF, r], 'B');
      const tmp = t.poisoned([m, r], 'tmp');
      const dTmp = t.poisoned([m, r], 'dTmp');
      const dA = t.upload(prevA, [r, inF], 'dA');
      const dB = t.upload(prevB, [outF, r], 'dB');
      const dX = t.upload(prevX, [m, inF], 'dX');
      const batch = ctx.batch('selftest lora backward');
      loraForward(batch, { x: tx, a: ta, b: tb, out: t.poisoned([m, outF], 'out'), scale, tmp });
      loraBackward(batch, { x: tx, a: ta, b: tb, dOut: t.upload(dOut, [m, outF], 'dOut'), tmp, dA, dB, dX, dTmp, scale, accumulate: true });
      batch.submit();
      const g = loraBackwardRef(x, a, b, dOut, scale, LORA);
      return worst(
        rel(await t.read(dTmp), g.dTmp, LORA_BOUND),
        rel(await t.read(dA), plus(g.dA, prevA), LORA_BOUND),
        rel(await t.read(dB), plus(g.dB, prevB), LORA_BOUND),
        rel(await t.read(dX), plus(g.dX, prevX), LORA_BOUND),
      );
    },
  },
  gemvSgCase(),
  f16Case(),
  sgmatCase(),
];

/**
 * Decode with subgroup reductions (./matmul-gemv-sg.ts): a bf16 weight slice read 16 bytes at a
 * time and a ragged f32 one read element by element, M = 3 and 8. Skipped without `subgroups`
 * (such a GPU keeps the workgroup-tree gemv, which the bf16 slice case above covers).
 */
function gemvSgCase(): SelfTestCase {
  const products: Product[] = [
    { layout: 'nt', dtype: 'bf16', m: 3, n: 37, k: 72, bOffset: 8, alpha: -0.5, accumulate: true },
    { layout: 'nt', dtype: 'f32', m: 8, n: 13, k: 45, bOffset: 3, alpha: 1, accumulate: false },
  ];
  return {
    name: 'matmul nt decode, subgroup reductions (gemv-sg), 16-byte and ragged loads',
    skip: (ctx) => (ctx.features.has('subgroups') ? null : 'not available: adapter lacks subgroups'),
    proves: (ctx) => (ctx.adapter.isFallback ? null : MATMUL_PATHS.gemvSg),
    run: (ctx, t) => checkProducts(ctx, t, products, 'gemv-sg', 'selftest matmul gemv-sg'),
  };
}

/**
 * f16 inputs, f32 sums (./matmul-f16.ts), the real variant: a ragged bf16 weight slice read
 * element by element and an f16 one read 16 bytes at a time, against the exact product within
 * F16_ERROR_BOUND (the f16 roundings of inputs and products). Skipped without shader-f16.
 */
function f16Case(): SelfTestCase {
  const products: Product[] = [
    { layout: 'nt', dtype: 'bf16', m: 67, n: 70, k: 37, bOffset: 3, alpha: 1, accumulate: false },
    { layout: 'nt', dtype: 'f16', m: 72, n: 65, k: 72, bOffset: 8, alpha: -0.5, accumulate: true },
  ];
  return {
    name: 'matmul nt, f16 inputs with f32 sums (shader-f16; generation only), ragged and 16-byte loads',
    skip: (ctx) => (ctx.features.has('shader-f16') ? null : 'not available: adapter lacks shader-f16'),
    proves: (ctx) => (ctx.adapter.isFallback ? null : MATMUL_PATHS.f16),
    run: (ctx, t) => checkProducts(ctx, t, products, 'f16', 'selftest matmul f16', F16_ERROR_BOUND),
  };
}

/**
 * Subgroup matrices (./matmul-sgmat.ts, chromium-experimental-subgroup-matrix): the hardware
 * kernels a GPU then takes by default, each layout with 16-byte loads and ragged (element by
 * element, odd offsets), over several 64 × 64 tiles and 32-deep slices. Skipped where the adapter
 * lacks the feature (SwiftShader); only here is the real variant ever run and proven.
 */
function sgmatCase(): SelfTestCase {
  const products: Product[] = [
    { label: 'nt bf16, 16-byte loads', layout: 'nt', dtype: 'bf16', m: 72, n: 130, k: 72, alpha: 1, accumulate: false, bOffset: 8 },
    { label: 'nt bf16 slice, ragged', layout: 'nt', dtype: 'bf16', m: 67, n: 75, k: 45, alpha: -0.75, accumulate: true, bOffset: 3 },
    { label: 'nt f32, 16-byte loads', layout: 'nt', dtype: 'f32', m: 130, n: 68, k: 36, alpha: 0.5, accumulate: true, bOffset: 4 },
    { label: 'nn bf16, 16-byte loads', layout: 'nn', dtype: 'bf16', m: 66, n: 40, k: 72, alpha: 1, accumulate: true, bOffset: 8 },
    { label: 'nn f32, ragged', layout: 'nn', dtype: 'f32', m: 70, n: 41, k: 77, alpha: 1, accumulate: false, bOffset: 1 },
    { label: 'tn f32, 16-byte loads', layout: 'tn', dtype: 'f32', m: 36, n: 68, k: 72, alpha: 1, accumulate: true, bOffset: 0 },
    { label: 'tn f32, ragged', layout: 'tn', dtype: 'f32', m: 67, n: 69, k: 71, alpha: 0.5, accumulate: false, bOffset: 0 },
  ];
  return {
    name: 'matmul subgroup-matrix (sgmat) nt/nn/tn, bf16 and f32 b, 16-byte and ragged loads',
    skip: (ctx) => sgmatUnavailable(ctx),
    proves: (ctx) => (ctx.adapter.isFallback ? null : MATMUL_PATHS.sgmat),
    run: async (ctx, t) => {
      await prepareSubgroupMatrix(ctx);
      return checkProducts(ctx, t, products, 'sgmat', 'selftest matmul sgmat');
    },
  };
}

/**
 * regtile (8×8 register blocks, 16-byte loads, register prefetch, one barrier per K tile): a bf16
 * weight in nt with every contiguous dim and bOffset a multiple of 8, so 16-byte loads inside and
 * zero fill at the ragged tile edges (70 × 72 over 64×64 tiles), and a ragged tn product read
 * element by element (the transposed staging of a, the row staging of b). CPU adapters run it
 * too but prove nothing (they never take regtile by default).
 */
function regtileCase(): SelfTestCase {
  const products: Product[] = [
    { layout: 'nt', dtype: 'bf16', m: 70, n: 72, k: 48, alpha: -0.5, accumulate: true, bOffset: 8 },
    { layout: 'tn', dtype: 'f32', m: 21, n: 67, k: 37, alpha: 1, accumulate: false, bOffset: 0 },
  ];
  return {
    name: 'matmul regtile nt bf16 (16-byte loads) and tn (ragged)',
    proves: (ctx) => (ctx.adapter.isFallback ? null : MATMUL_PATHS.regtile),
    run: (ctx, t) => checkProducts(ctx, t, products, 'regtile', 'selftest matmul regtile'),
  };
}
