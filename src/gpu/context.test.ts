// The runtime itself: pool accounting, pipeline caching, GPU errors surfaced with names,
// device loss turned into a clear error, profiling, dispatch limits.
import { describe, expect, it } from 'vitest';
import { splitGroups } from './batch';
import { isSoftwareAdapter, summarize } from './context';
import { createNodeContext } from './node';
import { u32Params } from './params';

const FILL = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn fill(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + lid;
  if (i < p.n) { out[i] = i * 3u + 1u; }
}`;

describe('GpuContext', () => {
  it('recognises software adapters (SwiftShader, lavapipe, WARP) as CPU adapters, and hardware GPUs as not', async () => {
    const soft = [
      { vendor: 'google', architecture: 'swiftshader', device: '', description: '' },
      { vendor: 'mesa', architecture: '', device: '', description: '' },
      { vendor: '', architecture: '', device: 'llvmpipe (LLVM 15.0.7, 256 bits)', description: '' },
      { vendor: 'microsoft', architecture: '', device: '', description: '' },
      { vendor: '', architecture: '', device: '', description: 'Microsoft Basic Render Driver' },
      { vendor: 'nvidia', architecture: 'ampere', isFallbackAdapter: true },
    ];
    const hard = [
      { vendor: 'apple', architecture: 'metal-3', device: '', description: '' },
      { vendor: 'nvidia', architecture: 'ampere', device: '', description: 'NVIDIA GeForce RTX 3060' },
      { vendor: 'intel', architecture: 'gen-12lp', device: '', description: 'Mesa Intel(R) Xe Graphics (TGL GT2)' },
      { vendor: 'amd', architecture: 'rdna-2', device: '', description: 'AMD Radeon RX 6800 (RADV NAVI21)' },
      { vendor: 'qualcomm', architecture: 'adreno-6xx', device: '', description: '' },
    ];
    expect(soft.map(isSoftwareAdapter)).toEqual(soft.map(() => true));
    expect(hard.map(isSoftwareAdapter)).toEqual(hard.map(() => false));
    const ctx = await createNodeContext();
    expect(ctx.adapter.isFallback).toBe(isSoftwareAdapter(ctx.device.adapterInfo));
    // summarize reads the names through the info object's getters (a spread would drop them).
    const info = Object.create({ vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.7, 256 bits)', description: '', isFallbackAdapter: false }) as GPUAdapterInfo;
    expect({ ...info }).toEqual({});
    const fake = { info, features: new Set<string>(), limits: {} } as unknown as GPUAdapter;
    expect(summarize(fake).isFallback).toBe(true);
  });

  it('records the subgroup-matrix configs and max subgroup size of an adapter that reports them (chromium-experimental-subgroup-matrix)', async () => {
    // An Apple M-series adapter in Chrome: fields are prototype getters, configs interface objects.
    const config = Object.create({ componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 }) as object;
    const info = Object.create({ vendor: 'apple', architecture: 'metal-3', device: '', description: '', subgroupMaxSize: 32, subgroupMatrixConfigs: [config] }) as GPUAdapterInfo;
    const features = new Set(['subgroups', 'chromium-experimental-subgroup-matrix']);
    const s = summarize({ info, features, limits: {} } as unknown as GPUAdapter);
    expect(s.subgroupMaxSize).toBe(32);
    expect(s.subgroupMatrixConfigs).toEqual([{ componentType: 'f32', resultComponentType: 'f32', M: 8, N: 8, K: 8 }]);
    expect(structuredClone(s).subgroupMatrixConfigs).toEqual(s.subgroupMatrixConfigs); // posts to a worker intact
    // SwiftShader lacks the feature: no configs, and the feature is not requested.
    const ctx = await createNodeContext();
    expect(ctx.adapter.subgroupMatrixConfigs).toEqual([]);
    expect(ctx.features.has('chromium-experimental-subgroup-matrix')).toBe(false);
  });

  it('counts live, allocated and peak bytes, and reuses released buffers', async () => {
    const ctx = await createNodeContext();
    const before = ctx.pool.stats();
    const a = ctx.tensor([1000], 'f32', 'a'); // 4000 bytes
    const b = ctx.tensor([333], 'bf16', 'b'); // 666 -> 668 -> 672 (16-byte rounding)
    expect(ctx.pool.stats().liveBytes - before.liveBytes).toBe(4000 + 672);
    a.release();
    const c = ctx.tensor([1000], 'f32', 'c');
    expect(c.buffer).toBe(a.buffer); // same size and usage: recycled
    const s = ctx.pool.stats();
    expect(s.peakBytes - before.peakBytes).toBe(4672);
    expect(() => a.release()).toThrow(/released twice/);
    b.release();
    c.release();
    ctx.pool.trim();
    expect(ctx.pool.stats().allocatedBytes).toBe(before.allocatedBytes);
    ctx.destroy();
  });

  it('compiles a kernel once, runs grids split over y, and names kernels in timings', async () => {
    const ctx = await createNodeContext({ profile: true });
    const n = 70_000 * 64 + 5; // more than 65,535 workgroups of 64
    const out = ctx.tensor([n], 'u32', 'out');
    const kernel = { name: 'fill', code: FILL, entryPoint: 'fill' };
    const groups = splitGroups(Math.ceil(n / 64));
    expect(groups[1]).toBeGreaterThan(1);
    const batch = ctx.batch();
    batch.dispatch({ kernel, params: u32Params(n), buffers: [out], groups });
    batch.dispatch({ kernel, params: u32Params(n), buffers: [out], groups });
    batch.submit();
    expect(ctx.kernels.size).toBe(1);
    const got = (await ctx.read(out)) as Uint32Array;
    expect(got[0]).toBe(1);
    expect(got[n - 1]).toBe((n - 1) * 3 + 1);
    expect(ctx.profiler !== null).toBe(ctx.features.has('timestamp-query'));
    if (ctx.profiler) {
      const report = await ctx.profiler.report();
      expect(report[0]).toMatchObject({ name: 'fill.fill', calls: 2 });
    }
    ctx.destroy();
  });

  it('reports WGSL compile errors with the shader name and line', async () => {
    const ctx = await createNodeContext();
    const bad = { name: 'broken', code: 'fn main( { }', entryPoint: 'main' };
    try {
      ctx.kernels.pipeline(bad);
    } catch {
      // some implementations throw synchronously; the message check below still applies
    }
    expect(await ctx.kernels.compileError('broken')).toMatch(/^shaders\/broken\.wgsl:1:\d+: /);
    await expect(ctx.flush()).rejects.toThrow(/WebGPU error/);
    ctx.destroy();
  });

  it('rejects dispatches over the per-dimension limit and turns device loss into a clear error', async () => {
    const ctx = await createNodeContext();
    const out = ctx.tensor([4], 'u32', 'out');
    const kernel = { name: 'fill', code: FILL, entryPoint: 'fill' };
    expect(() => ctx.batch().dispatch({ kernel, params: u32Params(4), buffers: [out], groups: [70_000] })).toThrow(
      /exceeds 65,535 per dimension/,
    );
    ctx.device.destroy();
    await ctx.device.lost;
    expect(() => ctx.batch()).toThrow(/GPU device lost/);
    expect(() => ctx.tensor([4], 'f32', 'x')).toThrow(/GPU device lost/);
  });
});
