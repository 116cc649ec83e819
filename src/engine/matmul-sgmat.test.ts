// The subgroup-matrix path (matmul-sgmat.ts). SwiftShader lacks chromium-experimental-subgroup-matrix,
// so the kernel body runs here through its emulated prelude (plain WGSL with the builtins'
// semantics) against float64 on ragged shapes; the hardware variant cannot run here: it is proven
// on a device by the self-test case, and here only refuses clearly and is checked by Tint's parser.
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/context';
import { defaultMatmulPath, matmul, MATMUL_PATHS } from './matmul';
import {
  matmulSgmat,
  pickSubgroupMatrixConfig,
  prepareSubgroupMatrix,
  SGMAT_TILE,
  sgmatModule,
  sgmatUnavailable,
  sgmatVec,
  tilingFor,
  type SgmatOptions,
} from './matmul-sgmat';
import { relError } from './testing/compare';
import { testContext } from './testing/gpu';
import { dimsOf, matmulOperands, type GenericCase } from './testing/matmul';
import { freshSeed, rng } from './testing/random';

/** One product on the emulated sgmat path (through `matmul`, path forced) against float64. */
async function run(ctx: GpuContext, c: GenericCase, options: SgmatOptions = {}) {
  const seed = freshSeed();
  const r = rng(seed);
  const { m, n, k } = dimsOf(c.layout, c.P, c.Q, c.D);
  const { ta, tb, want, out: fresh } = matmulOperands(ctx, { ...c, m, n, k }, r);
  const out = fresh();
  const batch = ctx.batch();
  const args = { a: ta, b: tb, out, layout: c.layout, alpha: c.alpha, accumulate: c.accumulate, bOffset: c.bOffset, m, n, k };
  if (options.maxDispatchFlops || options.tiling || options.emulatedSubgroup)
    matmulSgmat(batch, { ...c, a: ta, b: tb, out }, { variant: 'emulated', ...options });
  else matmul(batch, args, { path: 'sgmat', subgroupMatrix: 'emulated' });
  const dispatches = batch.dispatches;
  batch.submit();
  const got = await ctx.read(out);
  for (const t of [ta, tb, out]) t.release();
  return { err: relError(got, want), seed, dispatches };
}

describe('matmul sgmat (subgroup matrices), emulated prelude on SwiftShader', () => {
  // Ragged: P and Q past one 64-wide tile and not multiples of 8, D past one 32-deep slice with a
  // ragged last one; and the 16-byte-load kernels (contiguous dims and bOffset aligned).
  const cases: [string, GenericCase][] = [
    ['nt f32, ragged', { layout: 'nt', dtype: 'f32', P: 70, Q: 75, D: 45, alpha: 1, accumulate: false, bOffset: 0 }],
    ['nt bf16 slice, ragged, accumulate', { layout: 'nt', dtype: 'bf16', P: 67, Q: 129, D: 37, alpha: -0.75, accumulate: true, bOffset: 3 }],
    ['nt f16, ragged, odd offset', { layout: 'nt', dtype: 'f16', P: 9, Q: 66, D: 71, alpha: 0.5, accumulate: false, bOffset: 5 }],
    ['nt f32, 16-byte loads', { layout: 'nt', dtype: 'f32', P: 72, Q: 70, D: 68, alpha: 1.5, accumulate: true, bOffset: 4 }],
    ['nt bf16, 16-byte loads', { layout: 'nt', dtype: 'bf16', P: 130, Q: 65, D: 72, alpha: 1, accumulate: false, bOffset: 8 }],
    ['nt f16, 16-byte loads, D < 8', { layout: 'nt', dtype: 'f16', P: 33, Q: 70, D: 8, alpha: 1, accumulate: true, bOffset: 16 }],
    ['nn f32, ragged', { layout: 'nn', dtype: 'f32', P: 70, Q: 77, D: 41, alpha: 1, accumulate: true, bOffset: 1 }],
    ['nn bf16, 16-byte loads', { layout: 'nn', dtype: 'bf16', P: 66, Q: 72, D: 40, alpha: -1, accumulate: false, bOffset: 8 }],
    ['tn f32, ragged', { layout: 'tn', dtype: 'f32', P: 69, Q: 71, D: 67, alpha: 0.5, accumulate: true, bOffset: 0 }],
    ['tn f32, 16-byte loads', { layout: 'tn', dtype: 'f32', P: 68, Q: 72, D: 36, alpha: 1, accumulate: false, bOffset: 4 }],
  ];

  it.each(cases)('%s matches float64 (rel err < 1e-5)', async (_name, c) => {
    const ctx = await testContext();
    expect(sgmatVec(c.layout, c.P, c.Q, c.D, c.bOffset, c.dtype)).toBe(_name.includes('16-byte'));
    const { err, seed } = await run(ctx, c);
    expect(err, `seed ${seed}`).toBeLessThan(1e-5);
  });

  it('cuts a product into dispatches of bounded FLOPs over whole tiles, still matching float64, counted once', async () => {
    const ctx = await testContext();
    const c: GenericCase = { layout: 'nt', dtype: 'bf16', P: 200, Q: 140, D: 33, alpha: 1, accumulate: true, bOffset: 2 };
    // 4 × 3 tiles of 64 × 64; 2·64·64·33 FLOPs each: a bound of 5 tiles gives dispatches of 5, 5, 2.
    const before = { ...ctx.counters };
    const { err, seed, dispatches } = await run(ctx, c, { maxDispatchFlops: 5 * 2 * 64 * 64 * 33 });
    expect(err, `seed ${seed}`).toBeLessThan(1e-5);
    expect(dispatches).toBe(3);
    // The counters see the product's FLOPs once, and the largest dispatch's share.
    expect(ctx.counters.matmulFlops - before.matmulFlops).toBe(2 * 200 * 140 * 33);
    expect(ctx.counters.maxMatmulFlops).toBeLessThanOrEqual(Math.max(before.maxMatmulFlops, 5 * 2 * 64 * 64 * 33));
  });

  it('staging and epilogue hold for the workgroup of an Apple GPU (subgroups of 32: 128 invocations)', async () => {
    const ctx = await testContext();
    for (const c of [
      { layout: 'nt', dtype: 'bf16', P: 70, Q: 75, D: 45, alpha: 1, accumulate: true, bOffset: 3 },
      { layout: 'tn', dtype: 'f32', P: 68, Q: 72, D: 40, alpha: -0.5, accumulate: false, bOffset: 4 },
    ] as const) {
      const { err, seed } = await run(ctx, c, { emulatedSubgroup: 32 });
      expect(err, `${c.layout} seed ${seed}`).toBeLessThan(1e-5);
    }
  });

  it('runs the TK = 16 tiling that a 16 KiB workgroup store allows', async () => {
    const ctx = await testContext();
    expect(tilingFor({ maxComputeWorkgroupStorageSize: 16384 }).TK).toBe(16);
    expect(tilingFor({ maxComputeWorkgroupStorageSize: 32768 })).toEqual(SGMAT_TILE);
    const c: GenericCase = { layout: 'nt', dtype: 'f32', P: 70, Q: 66, D: 50, alpha: 1, accumulate: false, bOffset: 0 };
    const { err, seed } = await run(ctx, c, { tiling: { ...SGMAT_TILE, TK: 16 } });
    expect(err, `seed ${seed}`).toBeLessThan(1e-5);
  });
});

describe('matmul sgmat, hardware variant', () => {
  it('refuses clearly on an adapter without chromium-experimental-subgroup-matrix (SwiftShader)', async () => {
    const ctx = await testContext();
    expect(sgmatUnavailable(ctx)).toBe('not available: adapter lacks chromium-experimental-subgroup-matrix');
    const a = ctx.upload(new Float32Array(64 * 8), [64, 8], 'f32', 'a');
    const b = ctx.upload(new Float32Array(64 * 8), [64, 8], 'f32', 'b');
    const out = ctx.tensor([64, 64], 'f32', 'out');
    expect(() => matmul(ctx.batch(), { a, b, out, layout: 'nt' }, { path: 'sgmat' })).toThrow(
      /matmul nt: the sgmat path is not available: adapter lacks chromium-experimental-subgroup-matrix/,
    );
    await expect(prepareSubgroupMatrix(ctx)).rejects.toThrow(/lacks chromium-experimental-subgroup-matrix/);
    for (const t of [a, b, out]) t.release();
  });

  it('names what is missing: subgroups, an f32 8×8×8 config, subgroupMaxSize', () => {
    const at = (features: string[], adapter: object) => sgmatUnavailable({ features: new Set(features), adapter } as unknown as GpuContext);
    const f32 = { componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 };
    const f16 = { componentType: 'f16', resultComponentType: 'f16', M: 8, N: 16, K: 16 };
    const both = ['subgroups', 'chromium-experimental-subgroup-matrix'];
    expect(at(['chromium-experimental-subgroup-matrix'], {})).toMatch(/needs the subgroups feature/);
    expect(at(both, { subgroupMatrixConfigs: [f16] })).toBe('not available: no f32 8×8×8 subgroup-matrix config on this adapter (it offers f16→f16 8×16×16)');
    expect(at(both, { subgroupMatrixConfigs: [f32] })).toMatch(/subgroupMaxSize/);
    expect(at(both, { subgroupMatrixConfigs: [f16, f32], subgroupMaxSize: 32 })).toBeNull();
    expect(pickSubgroupMatrixConfig([f16, f32])).toBe(f32);
    expect(pickSubgroupMatrixConfig(undefined)).toBeNull();
  });

  it('defines the same prelude as the emulation: every sgm_ function with the same signature, SgLeft/SgRight/SgResult', () => {
    const prelude = (code: string) =>
      [...code.matchAll(/fn (sgm_\w+)\(([^)]*)\)(?: -> (\w+))?/g)].map((m) => `${m[1]}(${m[2]!.replace(/\s+/g, ' ')}) -> ${m[3] ?? 'void'}`).sort();
    const types = (code: string) => [...code.matchAll(/(?:alias|struct) (Sg\w+)/g)].map((m) => m[1]).sort();
    const emu = sgmatModule({ variant: 'emulated', layout: 'nt', vec: false, sgSize: 4, tiling: SGMAT_TILE }).code;
    for (const syntax of ['bool', 'template'] as const) {
      const hw = sgmatModule({ variant: 'hardware', form: { syntax, subgroupId: 'builtin' }, layout: 'nt', vec: false, sgSize: 32, tiling: SGMAT_TILE }).code;
      expect(prelude(hw)).toEqual(prelude(emu));
      expect(prelude(hw)).toHaveLength(6);
      expect(types(hw)).toEqual(['SgLeft', 'SgResult', 'SgRight']);
      expect(types(emu)).toEqual(types(hw));
      // _cm loads are column-major, _rm loads and the store row-major, as the emulation reads and writes sh.
      const major = (name: string) => {
        const body = new RegExp(`fn ${name}\\([^{]*\\{([^}]*)\\}`).exec(hw)![1]!;
        if (/, true, stride\)|col_major>/.test(body)) return 'col';
        if (/, false, stride\)|row_major>/.test(body)) return 'row';
        return body;
      };
      expect(['sgm_left_rm', 'sgm_left_cm', 'sgm_right_rm', 'sgm_right_cm', 'sgm_store'].map(major)).toEqual(['row', 'col', 'row', 'col', 'row']);
    }
  });

  // The real builtins cannot compile without the feature, but Tint parses a module before it
  // checks its enables: a syntax error would be reported as such, so the only errors here must be
  // the extensions the device lacks.
  it.each(['bool', 'template'] as const)('parses in Tint (%s spelling of the builtins); only the missing extension is an error', async (syntax) => {
    const ctx = await testContext();
    for (const layout of ['nt', 'nn', 'tn'] as const) {
      const { code } = sgmatModule({ variant: 'hardware', form: { syntax, subgroupId: 'builtin' }, layout, vec: layout !== 'tn', sgSize: 32, tiling: SGMAT_TILE });
      expect(code).toContain('subgroupMatrixMultiplyAccumulate(l, r, acc)');
      ctx.device.pushErrorScope('validation');
      const info = await ctx.device.createShaderModule({ code }).getCompilationInfo();
      await ctx.device.popErrorScope();
      const errors = info.messages.filter((m) => m.type === 'error').map((m) => m.message);
      expect(errors.length, errors.join('\n')).toBeGreaterThan(0);
      for (const e of errors) expect(e).toMatch(/chromium_experimental_subgroup_matrix|subgroups|extension|enable/i);
    }
  });
});

describe('matmul sgmat, default path choice', () => {
  const big = { m: 2048, n: 2048, k: 2048 };
  it('is taken on a GPU only once the self-test proved it, for large outputs in any layout and float b', () => {
    const yes = (name: string) => name === MATMUL_PATHS.sgmat;
    const no = () => false;
    for (const layout of ['nt', 'nn', 'tn'] as const) {
      expect(defaultMatmulPath(false, layout, big, 0, 'f32', no)).not.toBe('sgmat'); // present but unproven (or absent)
      expect(defaultMatmulPath(false, layout, big, 0, 'f32', yes)).toBe('sgmat');
    }
    expect(defaultMatmulPath(false, 'nt', big, 0, 'bf16', yes)).toBe('sgmat');
    expect(defaultMatmulPath(false, 'nt', big, 0, 'int8', yes)).not.toBe('sgmat');
    expect(defaultMatmulPath(true, 'nt', big, 0, 'f32', yes)).not.toBe('sgmat'); // CPU adapter
    expect(defaultMatmulPath(false, 'nt', { m: 4, n: 2048, k: 2048 }, 0, 'f32', yes)).toBe('gemv'); // decode
    expect(defaultMatmulPath(false, 'nt', { m: 2048, n: 16, k: 2048 }, 0, 'f32', yes)).not.toBe('sgmat'); // LoRA rank
  });

  it('is not taken where the adapter lacks the feature: the self-test skips its case, so nothing proves it', async () => {
    const { runSelfTest } = await import('./selftest');
    const { MATMUL_CASES } = await import('./selftest-cases/matmul');
    const { isProven } = await import('./proven');
    const ctx = await testContext();
    const cases = MATMUL_CASES.filter((c) => c.name.includes('subgroup-matrix'));
    expect(cases.length).toBe(1);
    const [r] = await runSelfTest(ctx, undefined, { cases });
    expect(r!.skipped).toBe('not available: adapter lacks chromium-experimental-subgroup-matrix');
    expect(isProven(ctx, MATMUL_PATHS.sgmat)).toBe(false);
  });
});
