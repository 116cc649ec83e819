import { describe, expect, it } from 'vitest';
import { MAX_DISPATCH_FLOPS } from '../gpu/batch';
import type { GpuContext } from '../gpu/context';
import {
  ATTENTION_PATHS,
  attentionBackward,
  attentionDispatchPlan,
  attentionForward,
  attentionTiles,
  decodeChunk,
  defaultDqPath,
  defaultForwardPath,
  flashTiles,
  setAttentionPaths,
  sliceGrid,
  splitKvPathName,
  type AttentionDqPath,
  type AttentionForwardPath,
  type DecodeReduce,
} from './attention';
import { markProven } from './proven';
import { attentionBackwardRef, attentionForwardRef, type AttentionRefDims } from './reference/attention';
import { dot, finiteDifferences, relError } from './testing/compare';
import { poisoned, testContext } from './testing/gpu';
import { freshSeed, randn, rng } from './testing/random';

interface Case {
  B: number;
  T: number;
  nHeads: number;
  nKv: number;
  D: number;
  pastLen?: number;
  kvCap?: number;
  /** With padding: the last sequence is all padding (its outputs and gradients must be 0). */
  emptyLast?: boolean;
}

const CASES: Case[] = [
  { B: 2, T: 1, nHeads: 4, nKv: 2, D: 8 },
  { B: 1, T: 5, nHeads: 6, nKv: 1, D: 16 },
  { B: 2, T: 19, nHeads: 2, nKv: 2, D: 64 },
  { B: 1, T: 37, nHeads: 4, nKv: 2, D: 8 },
  { B: 2, T: 37, nHeads: 6, nKv: 1, D: 16 },
  { B: 1, T: 70, nHeads: 4, nKv: 2, D: 8 },
  { B: 1, T: 19, nHeads: 4, nKv: 2, D: 128 },
  { B: 1, T: 13, nHeads: 3, nKv: 1, D: 24 },
  { B: 3, T: 7, nHeads: 2, nKv: 1, D: 8, emptyLast: true },
  // KV-cache form: queries at positions [pastLen, pastLen + T) of a longer cache.
  { B: 2, T: 5, nHeads: 4, nKv: 2, D: 16, pastLen: 3, kvCap: 11 },
];

const FWD_BOUND = 1e-6;
const BWD_BOUND = 2e-6;

/** Mask [B, len]: each sequence gets random left and right padding (keeping >= 1 real token). */
function paddingMask(B: number, len: number, next: () => number): Int32Array {
  const mask = new Int32Array(B * len);
  for (let b = 0; b < B; b++) {
    const left = Math.floor(next() * Math.min(4, len));
    const right = Math.floor(next() * Math.min(3, len - left));
    for (let j = 0; j < len; j++) mask[b * len + j] = j >= left && j < len - right ? 1 : 0;
  }
  return mask;
}

/** k/v data whose rows past `valid` in each sequence are NaN (a cache not yet written). */
function cacheLike(x: Float64Array, B: number, cap: number, rowSize: number, valid: number): Float64Array {
  const out = x.slice();
  for (let b = 0; b < B; b++) out.fill(NaN, (b * cap + valid) * rowSize, (b + 1) * cap * rowSize);
  return out;
}

async function gpuCase(ctx: GpuContext, c: Case, seed: number, pad: boolean, dqPath?: AttentionDqPath, path?: AttentionForwardPath, maxDispatchFlops?: number) {
  const r = rng(seed);
  const pastLen = c.pastLen ?? 0;
  const kvCap = c.kvCap ?? c.T;
  const tkv = pastLen + c.T;
  const qn = c.B * c.T * c.nHeads * c.D;
  const kvRow = c.nKv * c.D;
  const q = randn(qn, r);
  const k = cacheLike(randn(c.B * kvCap * kvRow, r), c.B, kvCap, kvRow, tkv);
  const v = cacheLike(randn(c.B * kvCap * kvRow, r), c.B, kvCap, kvRow, tkv);
  const dOut = randn(qn, r);
  const mask = pad ? paddingMask(c.B, kvCap, r) : undefined;
  if (mask && c.emptyLast) mask.fill(0, (c.B - 1) * kvCap);
  const dims: AttentionRefDims = { B: c.B, tq: c.T, kvCap, nHeads: c.nHeads, nKv: c.nKv, D: c.D, pastLen, ...(mask ? { mask, maskStride: kvCap } : {}) };
  const tq = ctx.upload(q, [c.B, c.T, c.nHeads, c.D], 'f32', 'q');
  const tk = ctx.upload(k, [c.B, kvCap, c.nKv, c.D], 'f32', 'k');
  const tv = ctx.upload(v, [c.B, kvCap, c.nKv, c.D], 'f32', 'v');
  const tdo = ctx.upload(dOut, [c.B, c.T, c.nHeads, c.D], 'f32', 'dOut');
  const tmask = mask ? ctx.upload(mask, [c.B, kvCap], 'i32', 'mask') : undefined;
  const out = poisoned(ctx, [c.B, c.T, c.nHeads, c.D], 'out');
  const lse = poisoned(ctx, [c.B, c.nHeads, c.T], 'lse');
  const dq = poisoned(ctx, [c.B, c.T, c.nHeads, c.D], 'dq');
  const dk = poisoned(ctx, [c.B, kvCap, c.nKv, c.D], 'dk');
  const dv = poisoned(ctx, [c.B, kvCap, c.nKv, c.D], 'dv');
  const shape = { batchSize: c.B, nHeads: c.nHeads, nKvHeads: c.nKv, headDim: c.D, pastLen, ...(tmask ? { mask: tmask } : {}) };
  const batch = ctx.batch();
  attentionForward(batch, { ...shape, q: tq, k: tk, v: tv, out, lse }, { path, maxDispatchFlops });
  attentionBackward(batch, { ...shape, q: tq, k: tk, v: tv, out, lse, dOut: tdo, dq, dk, dv }, { dqPath, maxDispatchFlops });
  batch.submit();
  const got = {
    out: await ctx.read(out),
    lse: await ctx.read(lse),
    dq: await ctx.read(dq),
    dk: await ctx.read(dk),
    dv: await ctx.read(dv),
  };
  for (const t of [tq, tk, tv, tdo, out, lse, dq, dk, dv, ...(tmask ? [tmask] : [])]) t.release();
  return { got, mask, fwd: attentionForwardRef(q, k, v, dims), bwd: attentionBackwardRef(q, k, v, dOut, dims) };
}

/** Rows that must be exactly 0: padded queries (out, lse, dq) and padded or unused keys (dk, dv). */
function zeroRowsViolations(c: Case, mask: Int32Array | undefined, got: Awaited<ReturnType<typeof gpuCase>>['got']): string[] {
  const pastLen = c.pastLen ?? 0;
  const kvCap = c.kvCap ?? c.T;
  const bad: string[] = [];
  const allZero = (x: ArrayLike<number>, from: number, n: number) => Array.prototype.slice.call(x, from, from + n).every((e) => e === 0);
  for (let b = 0; b < c.B; b++) {
    for (let i = 0; i < c.T; i++) {
      if (!mask || mask[b * kvCap + pastLen + i]) continue;
      const row = (b * c.T + i) * c.nHeads * c.D;
      if (!allZero(got.out, row, c.nHeads * c.D)) bad.push(`out b ${b} i ${i}`);
      if (!allZero(got.dq, row, c.nHeads * c.D)) bad.push(`dq b ${b} i ${i}`);
      for (let h = 0; h < c.nHeads; h++) if (got.lse[(b * c.nHeads + h) * c.T + i] !== 0) bad.push(`lse b ${b} h ${h} i ${i}`);
    }
    for (let j = 0; j < kvCap; j++) {
      if (j < pastLen + c.T && (!mask || mask[b * kvCap + j])) continue;
      const row = (b * kvCap + j) * c.nKv * c.D;
      if (!allZero(got.dk, row, c.nKv * c.D) || !allZero(got.dv, row, c.nKv * c.D)) bad.push(`dk/dv b ${b} j ${j}`);
    }
  }
  return bad;
}

async function checkCases(pad: boolean, dqPath?: AttentionDqPath, path?: AttentionForwardPath) {
  const ctx = await testContext();
  for (const c of CASES) {
    if ((dqPath === 'rows' || dqPath === 'flash' || path === 'flash') && c.D % 4) continue;
    const seed = freshSeed();
    const { got, mask, fwd, bwd } = await gpuCase(ctx, c, seed, pad, dqPath, path);
    const msg = (what: string) => `${what} seed ${seed} case ${JSON.stringify(c)} pad ${pad} fwd ${path ?? 'default'} dq ${dqPath ?? 'default'}`;
    expect(relError(got.out, fwd.out), msg('out')).toBeLessThan(FWD_BOUND);
    expect(relError(got.lse, fwd.lse), msg('lse')).toBeLessThan(FWD_BOUND);
    expect(relError(got.dq, bwd.dq), msg('dq')).toBeLessThan(BWD_BOUND);
    expect(relError(got.dk, bwd.dk), msg('dk')).toBeLessThan(BWD_BOUND);
    expect(relError(got.dv, bwd.dv), msg('dv')).toBeLessThan(BWD_BOUND);
    expect(zeroRowsViolations(c, mask, got), msg('exact zeros')).toEqual([]);
  }
}

describe('attention', () => {
  it('tiles fit 16 KiB of workgroup memory and 256 threads for every head dim up to 128', async () => {
    const ctx = await testContext();
    for (let d = 1; d <= 128; d++) {
      for (const t of Object.values(attentionTiles(d))) {
        expect(t.workgroupBytes, `d ${d}`).toBeLessThanOrEqual(Math.min(16384, ctx.limits.maxComputeWorkgroupStorageSize));
        expect(t.threads, `d ${d}`).toBeLessThanOrEqual(Math.min(256, ctx.limits.maxComputeInvocationsPerWorkgroup));
        expect(8 * t.TC).toBeGreaterThanOrEqual(d);
      }
    }
  });

  it('reference backward matches finite differences, with padding and a cache offset (rel err < 1e-6)', () => {
    const seed = freshSeed();
    const r = rng(seed);
    const d: AttentionRefDims = { B: 2, tq: 4, kvCap: 7, nHeads: 4, nKv: 2, D: 3, pastLen: 2 };
    d.mask = Int32Array.from([0, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1]); // pads: a key, a query, a trailing slot
    d.maskStride = 7;
    const q = randn(d.B * d.tq * d.nHeads * d.D, r);
    const k = randn(d.B * d.kvCap * d.nKv * d.D, r);
    const v = randn(d.B * d.kvCap * d.nKv * d.D, r);
    const w = randn(q.length, r);
    const g = attentionBackwardRef(q, k, v, w, d);
    const all = (n: number) => Array.from({ length: n }, (_, i) => i);
    const fq = finiteDifferences((x) => dot(attentionForwardRef(x, k, v, d).out, w), q, all(q.length));
    const fk = finiteDifferences((x) => dot(attentionForwardRef(q, x, v, d).out, w), k, all(k.length));
    const fv = finiteDifferences((x) => dot(attentionForwardRef(q, k, x, d).out, w), v, all(v.length));
    expect(relError(g.dq, fq), `dq seed ${seed}`).toBeLessThan(1e-6);
    expect(relError(g.dk, fk), `dk seed ${seed}`).toBeLessThan(1e-6);
    expect(relError(g.dv, fv), `dv seed ${seed}`).toBeLessThan(1e-6);
  });

  it(`forward (out, lse rel err < ${FWD_BOUND.toExponential()}) and backward (dq, dk, dv rel err < ${BWD_BOUND.toExponential()}) match float64, no padding`, async () => {
    await checkCases(false);
  });

  it(`forward (out, lse rel err < ${FWD_BOUND.toExponential()}) and backward (dq, dk, dv rel err < ${BWD_BOUND.toExponential()}) match float64, left/right padding (padded rows exactly 0)`, async () => {
    await checkCases(true);
  });

  // The default backward passes are `rows` on CPU adapters and `tiled` on GPUs: run the others too.
  it(`the other backward passes (tiled on CPU adapters, rows on GPUs) match float64 with left/right padding (dq, dk, dv rel err < ${BWD_BOUND.toExponential()})`, async () => {
    const ctx = await testContext();
    await checkCases(true, defaultDqPath(ctx, 64) === 'rows' ? 'tiled' : 'rows');
  });

  // The GPU flash paths, forced on SwiftShader: head dims 8, 16, 24 (awkward), 64, 128 (15-key
  // tiles), GQA 1:1 to 6:1, T not a multiple of the 64-row blocks or the key tiles, a cache offset.
  it(`flash forward (out, lse rel err < ${FWD_BOUND.toExponential()}) and flash backward (dq, dk, dv rel err < ${BWD_BOUND.toExponential()}) match float64 with left/right padding (padded rows exactly 0)`, async () => {
    await checkCases(true, 'flash', 'flash');
  });

  it(`flash forward with the tiled/rows backward and tiled forward with the flash backward match float64, no padding`, async () => {
    const ctx = await testContext();
    await checkCases(false, defaultDqPath(ctx, 64), 'flash');
    await checkCases(false, 'flash', 'tiled');
  });

  it(`KV cache: prefill then decode steps equal the full causal recompute (out, lse rel err < ${FWD_BOUND.toExponential()})`, async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const r = rng(seed);
    const [B, T, cap, nHeads, nKv, D] = [2, 21, 24, 4, 2, 16];
    const q = randn(B * T * nHeads * D, r);
    const kFull = randn(B * T * nKv * D, r);
    const vFull = randn(B * T * nKv * D, r);
    const mask = paddingMask(B, cap, r).map((m, i) => (i % cap < 3 ? m : 1)); // left padding only
    const full = attentionForwardRef(q, kFull, vFull, { B, tq: T, kvCap: T, nHeads, nKv, D, mask, maskStride: cap });
    // The cache: rows < T hold the keys/values, the rest is unwritten (NaN).
    const toCache = (x: Float64Array) => {
      const c = new Float64Array(B * cap * nKv * D).fill(NaN);
      for (let b = 0; b < B; b++) c.set(x.subarray(b * T * nKv * D, (b + 1) * T * nKv * D), b * cap * nKv * D);
      return c;
    };
    const tk = ctx.upload(toCache(kFull), [B, cap, nKv, D], 'f32', 'k cache');
    const tv = ctx.upload(toCache(vFull), [B, cap, nKv, D], 'f32', 'v cache');
    const tmask = ctx.upload(mask, [B, cap], 'i32', 'mask');
    const row = nHeads * D;
    for (const [pastLen, tq] of [
      [0, 13],
      [13, 1],
      [14, 1],
      [15, 1],
      [16, 2],
      [18, 3],
    ] as const) {
      const slice = (x: ArrayLike<number>, rowLen: number, stride: number) => {
        const o = new Float64Array(B * tq * rowLen);
        for (let b = 0; b < B; b++)
          for (let i = 0; i < tq; i++)
            for (let e = 0; e < rowLen; e++) o[(b * tq + i) * rowLen + e] = x[(b * stride + pastLen + i) * rowLen + e]!;
        return o;
      };
      const tqT = ctx.upload(slice(q, row, T), [B, tq, nHeads, D], 'f32', 'q step');
      const out = poisoned(ctx, [B, tq, nHeads, D], 'out step');
      const lse = poisoned(ctx, [B, nHeads, tq], 'lse step');
      const batch = ctx.batch();
      attentionForward(batch, { batchSize: B, nHeads, nKvHeads: nKv, headDim: D, pastLen, q: tqT, k: tk, v: tv, out, lse, mask: tmask });
      batch.submit();
      const msg = `seed ${seed} pastLen ${pastLen} tq ${tq}`;
      expect(relError(await ctx.read(out), slice(full.out, row, T)), msg).toBeLessThan(FWD_BOUND);
      const want = new Float64Array(B * nHeads * tq);
      for (let bh = 0; bh < B * nHeads; bh++) for (let i = 0; i < tq; i++) want[bh * tq + i] = full.lse[bh * T + pastLen + i]!;
      expect(relError(await ctx.read(lse), want), msg).toBeLessThan(FWD_BOUND);
      lse.release();
      tqT.release();
      out.release();
    }
  });

  // Split-KV decode (one new token attends a cache of kvLen keys), forced on SwiftShader with
  // both reductions: fewer keys than one chunk, exactly one, one past it, a ragged last chunk,
  // the largest chunk; GQA 4:1, 3:1 and 1:1; head dims 64 and 24; left/right padding.
  it(`split-KV decode matches float64 for KV lengths 1 to 600, chunks 32 and 256, subgroup and workgroup reductions (out, lse rel err < ${FWD_BOUND.toExponential()}; padded queries exactly 0)`, async () => {
    const ctx = await testContext();
    const reduces: DecodeReduce[] = ctx.features.has('subgroups') ? ['subgroups', 'workgroup'] : ['workgroup'];
    const shapes = [
      { B: 2, nHeads: 8, nKv: 2, D: 64 },
      { B: 1, nHeads: 3, nKv: 1, D: 24 },
      { B: 3, nHeads: 2, nKv: 2, D: 64 },
    ];
    const runs: { kvLen: number; chunk?: number }[] = [{ kvLen: 1, chunk: 32 }, { kvLen: 20, chunk: 32 }, { kvLen: 32, chunk: 32 }, { kvLen: 33, chunk: 32 }, { kvLen: 100, chunk: 32 }, { kvLen: 600, chunk: 256 }, { kvLen: 77 }];
    for (const reduce of reduces)
      for (const [si, sh] of shapes.entries())
        for (const run of runs) {
          if (si > 0 && run.kvLen === 600) continue; // one large case is enough
          const seed = freshSeed();
          const r = rng(seed);
          const { B, nHeads, nKv, D } = sh;
          const cap = run.kvLen + 3;
          const kvRow = nKv * D;
          const q = randn(B * nHeads * D, r);
          const k = cacheLike(randn(B * cap * kvRow, r), B, cap, kvRow, run.kvLen);
          const v = cacheLike(randn(B * cap * kvRow, r), B, cap, kvRow, run.kvLen);
          const mask = new Int32Array(B * cap).fill(1);
          const pads = paddingMask(B, run.kvLen, r);
          for (let b = 0; b < B; b++) mask.set(pads.subarray(b * run.kvLen, (b + 1) * run.kvLen), b * cap);
          const pastLen = run.kvLen - 1;
          const want = attentionForwardRef(q, k, v, { B, tq: 1, kvCap: cap, nHeads, nKv, D, pastLen, mask, maskStride: cap });
          const tq = ctx.upload(q, [B, 1, nHeads, D], 'f32', 'q');
          const tk = ctx.upload(k, [B, cap, nKv, D], 'f32', 'k');
          const tv = ctx.upload(v, [B, cap, nKv, D], 'f32', 'v');
          const tmask = ctx.upload(mask, [B, cap], 'i32', 'mask');
          const out = poisoned(ctx, [B, 1, nHeads, D], 'out');
          const lse = poisoned(ctx, [B, nHeads, 1], 'lse');
          const batch = ctx.batch();
          attentionForward(batch, { batchSize: B, nHeads, nKvHeads: nKv, headDim: D, pastLen, q: tq, k: tk, v: tv, out, lse, mask: tmask }, { path: 'split', reduce, ...(run.chunk ? { chunk: run.chunk } : {}) });
          expect(batch.dispatches).toBe(2);
          batch.submit();
          const gotOut = await ctx.read(out);
          const gotLse = await ctx.read(lse);
          const msg = `seed ${seed} ${JSON.stringify({ ...sh, ...run, reduce })}`;
          expect(relError(gotOut, want.out), `out ${msg}`).toBeLessThan(FWD_BOUND);
          expect(relError(gotLse, want.lse), `lse ${msg}`).toBeLessThan(FWD_BOUND);
          for (let b = 0; b < B; b++)
            if (!mask[b * cap + pastLen]) {
              expect(Array.from(gotOut.subarray(b * nHeads * D, (b + 1) * nHeads * D)).every((x) => x === 0), `padded query out ${msg}`).toBe(true);
              expect(Array.from(gotLse.subarray(b * nHeads, (b + 1) * nHeads)).every((x) => x === 0), `padded query lse ${msg}`).toBe(true);
            }
          for (const t of [tq, tk, tv, tmask, out, lse]) t.release();
        }
  });

  // The GPU watchdog cut (attention.ts: each pass sliced into dispatches of at most
  // maxDispatchFlops): a bound of a few workgroups' work, then of 1 FLOP (one workgroup per
  // dispatch), cuts every pass into many dispatches with ragged slices; the results must be the single dispatch's bits, and float64's within the
  // usual bounds. Ragged shapes: T not a multiple of the tiles, GQA 6:1 and 2:1, head dims 8,
  // 16, 24 (tiled only), a cache offset, padding.
  it('watchdog cut: every pass sliced under a tiny FLOP bound is bit-identical to one dispatch and matches float64 (tiled, rows, flash)', async () => {
    const ctx = await testContext();
    const cases: Case[] = [
      { B: 2, T: 37, nHeads: 6, nKv: 1, D: 16 },
      { B: 1, T: 70, nHeads: 4, nKv: 2, D: 8 },
      { B: 2, T: 45, nHeads: 3, nKv: 1, D: 24 },
      { B: 2, T: 5, nHeads: 4, nKv: 2, D: 16, pastLen: 3, kvCap: 11 },
    ];
    const combos: [AttentionForwardPath, AttentionDqPath][] = [
      ['tiled', 'tiled'],
      ['tiled', 'rows'],
      ['flash', 'flash'],
    ];
    for (const c of cases)
      for (const [path, dqPath] of combos) {
        if (dqPath !== 'tiled' && c.D % 4) continue;
        const seed = freshSeed();
        const count = async (maxFlops?: number) => {
          const before = ctx.counters.dispatches;
          ctx.counters.maxAttentionFlops = 0;
          const r = await gpuCase(ctx, c, seed, true, dqPath, path, maxFlops);
          return { ...r, dispatches: ctx.counters.dispatches - before, maxFlops: ctx.counters.maxAttentionFlops };
        };
        const one = await count();
        expect(one.dispatches).toBe(4); // forward, then delta, dk/dv, dq
        // A fifth of the largest pass (a few workgroups a dispatch), and 1 FLOP (one workgroup a dispatch).
        for (const bound of [Math.floor(one.maxFlops / 5), 1]) {
          const cut = await count(bound);
          const msg = `seed ${seed} case ${JSON.stringify(c)} fwd ${path} dq ${dqPath} bound ${bound}`;
          expect(cut.dispatches, msg).toBeGreaterThan(one.dispatches);
          expect(cut.maxFlops, msg).toBeLessThan(one.maxFlops);
          for (const key of ['out', 'lse', 'dq', 'dk', 'dv'] as const)
            expect(Buffer.from(cut.got[key].buffer).equals(Buffer.from(one.got[key].buffer)), `${key} bits ${msg}`).toBe(true);
          expect(relError(cut.got.out, cut.fwd.out), msg).toBeLessThan(FWD_BOUND);
          expect(relError(cut.got.lse, cut.fwd.lse), msg).toBeLessThan(FWD_BOUND);
          expect(relError(cut.got.dq, cut.bwd.dq), msg).toBeLessThan(BWD_BOUND);
          expect(relError(cut.got.dk, cut.bwd.dk), msg).toBeLessThan(BWD_BOUND);
          expect(relError(cut.got.dv, cut.bwd.dv), msg).toBeLessThan(BWD_BOUND);
          expect(zeroRowsViolations(c, cut.mask, cut.got), msg).toEqual([]);
        }
      }
  });

  it('watchdog cut: split-KV decode sliced under a tiny FLOP bound is bit-identical to one dispatch and matches float64', async () => {
    const ctx = await testContext();
    for (const reduce of (ctx.features.has('subgroups') ? ['subgroups', 'workgroup'] : ['workgroup']) as DecodeReduce[])
      for (const [B, nHeads, nKv, D, kvLen, chunk] of [
        [2, 8, 2, 64, 600, 32],
        [3, 3, 1, 24, 77, 32],
      ] as const) {
        const seed = freshSeed();
        const r = rng(seed);
        const cap = kvLen + 5;
        const kvRow = nKv * D;
        const q = randn(B * nHeads * D, r);
        const k = cacheLike(randn(B * cap * kvRow, r), B, cap, kvRow, kvLen);
        const v = cacheLike(randn(B * cap * kvRow, r), B, cap, kvRow, kvLen);
        const mask = paddingMask(B, cap, r).map((m, i) => (i % cap < kvLen - 2 ? m : 1));
        const pastLen = kvLen - 1;
        const want = attentionForwardRef(q, k, v, { B, tq: 1, kvCap: cap, nHeads, nKv, D, pastLen, mask, maskStride: cap });
        const tq = ctx.upload(q, [B, 1, nHeads, D], 'f32', 'q');
        const tk = ctx.upload(k, [B, cap, nKv, D], 'f32', 'k');
        const tv = ctx.upload(v, [B, cap, nKv, D], 'f32', 'v');
        const tmask = ctx.upload(mask, [B, cap], 'i32', 'mask');
        const run = async (maxDispatchFlops?: number) => {
          const out = poisoned(ctx, [B, 1, nHeads, D], 'out');
          const lse = poisoned(ctx, [B, nHeads, 1], 'lse');
          const batch = ctx.batch();
          attentionForward(batch, { batchSize: B, nHeads, nKvHeads: nKv, headDim: D, pastLen, q: tq, k: tk, v: tv, out, lse, mask: tmask }, { path: 'split', reduce, chunk, maxDispatchFlops });
          const dispatches = batch.dispatches;
          batch.submit();
          const got = { out: await ctx.read(out), lse: await ctx.read(lse), dispatches };
          out.release();
          lse.release();
          return got;
        };
        const one = await run();
        // Three chunks' work per partial dispatch; the combine's workgroups a few at a time.
        const cut = await run(3 * chunk * 4 * D);
        const msg = `seed ${seed} ${JSON.stringify({ B, nHeads, nKv, D, kvLen, chunk, reduce })}`;
        expect(one.dispatches, msg).toBe(2);
        expect(cut.dispatches, msg).toBeGreaterThan(Math.floor((B * nHeads * Math.ceil(kvLen / chunk)) / 3));
        expect(Buffer.from(cut.out.buffer).equals(Buffer.from(one.out.buffer)), `out bits ${msg}`).toBe(true);
        expect(Buffer.from(cut.lse.buffer).equals(Buffer.from(one.lse.buffer)), `lse bits ${msg}`).toBe(true);
        expect(relError(cut.out, want.out), msg).toBeLessThan(FWD_BOUND);
        expect(relError(cut.lse, want.lse), msg).toBeLessThan(FWD_BOUND);
        for (const t of [tq, tk, tv, tmask]) t.release();
      }
  });

  it('at Llama-3.2-1B shapes and T 4096 the default bound cuts every pass into dispatches of at most MAX_DISPATCH_FLOPS (encoded, not run)', async () => {
    const ctx = await testContext();
    const [B, T, nHeads, nKv, D] = [1, 4096, 32, 8, 64];
    const q = ctx.tensor([B, T, nHeads, D], 'f32', 'q');
    const k = ctx.tensor([B, T, nKv, D], 'f32', 'k');
    const v = ctx.tensor([B, T, nKv, D], 'f32', 'v');
    const out = ctx.tensor([B, T, nHeads, D], 'f32', 'out');
    const dOut = ctx.tensor([B, T, nHeads, D], 'f32', 'dOut');
    const dq = ctx.tensor([B, T, nHeads, D], 'f32', 'dq');
    const dk = ctx.tensor([B, T, nKv, D], 'f32', 'dk');
    const dv = ctx.tensor([B, T, nKv, D], 'f32', 'dv');
    const lse = ctx.tensor([B, nHeads, T], 'f32', 'lse');
    const shape = { batchSize: B, nHeads, nKvHeads: nKv, headDim: D };
    // Causal forward FLOPs: 4 D per visible (row, key) pair, T (T + 1) / 2 pairs per head.
    const forwardFlops = 4 * D * nHeads * (T * (T + 1)) / 2;
    for (const [path, dqPath] of [['flash', 'flash'], ['tiled', 'tiled'], ['tiled', 'rows']] as const) {
      ctx.counters.maxAttentionFlops = 0;
      const batch = ctx.batch();
      attentionForward(batch, { ...shape, q, k, v, out, lse }, { path });
      const forward = batch.dispatches;
      attentionBackward(batch, { ...shape, q, k, v, out, lse, dOut, dq, dk, dv }, { dqPath });
      const msg = `${path} / ${dqPath}: ${forward} forward, ${batch.dispatches - forward} backward dispatches`;
      // attentionDispatchPlan (the bench's rows) says the same without a GPU.
      const plan = attentionDispatchPlan({ ...shape, tq: T }, { forward: path, backward: dqPath });
      expect([plan.forward.dispatches, plan.backward.dispatches], msg).toEqual([forward, batch.dispatches - forward]);
      expect(Math.max(plan.forward.maxFlops, plan.backward.maxFlops), msg).toBe(ctx.counters.maxAttentionFlops);
      expect(plan.forward.unsplitFlops, msg).toBeGreaterThan(forwardFlops);
      expect(ctx.counters.maxAttentionFlops, msg).toBeLessThanOrEqual(MAX_DISPATCH_FLOPS);
      expect(ctx.counters.maxAttentionFlops, msg).toBeGreaterThan(MAX_DISPATCH_FLOPS / 4); // and not cut needlessly fine
      expect(forward, msg).toBeGreaterThanOrEqual(Math.ceil(forwardFlops / MAX_DISPATCH_FLOPS));
      expect(batch.dispatches - forward, msg).toBeGreaterThan(3);
    }
    for (const t of [q, k, v, out, dOut, dq, dk, dv, lse]) t.release();
  });

  it('sliceGrid: consecutive slices covering the grid, each within the bound (a lone workgroup over it alone), greedy', () => {
    expect(sliceGrid(3, [5, 1, 2], 100)).toEqual([{ first: 0, end: 9, flops: 24 }]);
    expect(sliceGrid(2, [5, 1, 2], 6)).toEqual([
      { first: 0, end: 2, flops: 6 },
      { first: 2, end: 3, flops: 2 },
      { first: 3, end: 5, flops: 6 },
      { first: 5, end: 6, flops: 2 },
    ]);
    expect(sliceGrid(1, [10, 1, 1], 4)).toEqual([
      { first: 0, end: 1, flops: 10 },
      { first: 1, end: 3, flops: 2 },
    ]);
    expect(sliceGrid(0, [3], 1)).toEqual([{ first: 0, end: 0, flops: 0 }]);
  });

  it('path selection: CPU adapters keep tiled/rows; a GPU takes flash and split-KV only once the self-test proved them; tiles fit 16 KiB', async () => {
    const swift = await testContext();
    expect(swift.adapter.isFallback).toBe(true);
    markProven(swift, ATTENTION_PATHS.flash);
    markProven(swift, splitKvPathName('subgroups'));
    markProven(swift, splitKvPathName('workgroup'));
    expect([defaultForwardPath(swift, 64, 1), defaultForwardPath(swift, 64, 19), defaultDqPath(swift, 64), defaultDqPath(swift, 24), defaultDqPath(swift, 6)]).toEqual(['tiled', 'tiled', 'rows', 'rows', 'tiled']);
    setAttentionPaths(swift, { forward: 'flash', decode: 'split', backward: 'flash' });
    expect([defaultForwardPath(swift, 64, 1), defaultForwardPath(swift, 64, 19), defaultDqPath(swift, 64)]).toEqual(['split', 'flash', 'flash']);
    setAttentionPaths(swift, { forward: 'flash' });
    expect([defaultForwardPath(swift, 64, 1), defaultDqPath(swift, 64)]).toEqual(['flash', 'rows']);
    setAttentionPaths(swift, null);
    expect([defaultForwardPath(swift, 64, 1), defaultDqPath(swift, 64)]).toEqual(['tiled', 'rows']);
    const gpu = (features: string[]) => ({ adapter: { isFallback: false }, features: new Set(features) }) as unknown as GpuContext;
    const a = gpu(['subgroups']);
    expect([defaultForwardPath(a, 64, 1), defaultForwardPath(a, 64, 19), defaultDqPath(a, 64)]).toEqual(['tiled', 'tiled', 'tiled']);
    markProven(a, ATTENTION_PATHS.flash);
    expect([defaultForwardPath(a, 64, 1), defaultForwardPath(a, 64, 19), defaultForwardPath(a, 6, 19), defaultDqPath(a, 64), defaultDqPath(a, 6)]).toEqual(['flash', 'flash', 'tiled', 'flash', 'tiled']);
    markProven(a, splitKvPathName('workgroup')); // the variant this adapter does not use
    expect(defaultForwardPath(a, 64, 1)).toBe('flash');
    markProven(a, splitKvPathName('subgroups'));
    expect(defaultForwardPath(a, 64, 1)).toBe('split');
    const b = gpu([]);
    markProven(b, splitKvPathName('workgroup'));
    expect(defaultForwardPath(b, 128, 1)).toBe('split');
    // Chunks: ~256 workgroups, 32..256 keys, and the flash tiles within 16 KiB for every head dim.
    expect([decodeChunk(1, 32, 1000), decodeChunk(1, 32, 10_000), decodeChunk(4, 32, 100), decodeChunk(1, 4, 1)]).toEqual([128, 256, 64, 32]);
    for (let d = 4; d <= 128; d += 4) {
      const t = flashTiles(d);
      expect(t.workgroupBytes, `d ${d}`).toBeLessThanOrEqual(16384);
      expect(t.BT, `d ${d}`).toBeGreaterThanOrEqual(15);
    }
    expect(() => flashTiles(6)).toThrow(/multiple of 4.*headDim 6.*'tiled'/);
  });

  it('rejects inconsistent shapes with messages naming the tensors', async () => {
    const ctx = await testContext();
    const q = ctx.tensor([1, 4, 6, 8], 'f32', 'q');
    const k = ctx.tensor([1, 4, 4, 8], 'f32', 'k');
    const out = ctx.tensor([1, 4, 6, 8], 'f32', 'out');
    const lse = ctx.tensor([1, 6, 4], 'f32', 'lse');
    const base = { batchSize: 1, nHeads: 6, nKvHeads: 4, headDim: 8, q, k, v: k, out, lse };
    expect(() => attentionForward(ctx.batch(), base)).toThrow(/nHeads 6 is not a multiple of nKvHeads 4/);
    expect(() => attentionForward(ctx.batch(), { ...base, nKvHeads: 2, pastLen: 5 })).toThrow(/k holds 8 positions per sequence, pastLen \+ tq = 9/);
    expect(() => attentionForward(ctx.batch(), { ...base, nKvHeads: 2, out: q })).toThrow(/out \(q\) and q \(q\) share a buffer/);
    expect(() => attentionForward(ctx.batch(), { ...base, nKvHeads: 2, headDim: 256 })).toThrow(/headDim 256/);
  });
});
