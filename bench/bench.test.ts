// Keeps the benchmark suite from rotting: the CLI runs end to end on tiny shapes (peak, our
// matmul, the TF.js peer on the same device; model-step on a toy model) and writes a report
// with the documented schema.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { LLAMA_3_2_PRESETS } from '../src/model/config';
import { planMemory } from '../src/model/memory-plan';
import { parseCli } from './cli';
import { LLAMA_1B_SHAPES, result, select, validateReport, type Benchmark, type Report } from './harness';
import { BENCHMARKS } from './registry';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'fuse-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'node_modules/vite-node/dist/cli.mjs'), 'bench/main.ts', '--', ...args], {
      cwd: root,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench CLI did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('bench harness', () => {
  it('parses the CLI (--only lists, numbers, shapes) and rejects bad values', () => {
    const cli = parseCli(['--only', 'matmul,peak', '--only', 'x', '--json', 'out.json', '--tokens', '64', '--shapes', '2048:8192,8x4']);
    expect(cli.options.only).toEqual(['matmul', 'peak', 'x']);
    expect(cli.options.tokens).toBe(64);
    expect(cli.options.shapes).toEqual([
      [2048, 8192],
      [8, 4],
    ]);
    expect(cli.json).toBe('out.json');
    expect(parseCli([]).options.shapes).toBeUndefined();
    expect(() => parseCli(['--tokens', 'many'])).toThrow(/--tokens/);
    expect(() => parseCli(['--shapes', '12'])).toThrow(/--shapes/);
    expect(() => parseCli(['--bogus'])).toThrow();
    expect(LLAMA_1B_SHAPES).toHaveLength(3);
    expect(parseCli(['--seq', '24', '--model', 'tiny']).options).toMatchObject({ seq: 24, model: 'tiny' });
    expect(() => parseCli(['--seq', '1'])).toThrow(/--seq/);
    expect(parseCli(['--attn-seq', '64', '--prompt-tokens', '5', '--decode-tokens', '3', '--peer-layers', '2', '--peer-vocab', '512']).options).toMatchObject({
      attnSeq: 64,
      promptTokens: 5,
      decodeTokens: 3,
      peerLayers: 2,
      peerVocab: 512,
    });
    expect(() => parseCli(['--peer-layers', '0'])).toThrow(/--peer-layers/);
  });

  it('selects benchmarks by name and names the known ones for an unknown name', () => {
    expect(select(BENCHMARKS, ['matmul']).map((b) => b.name)).toEqual(['matmul']);
    expect(select(BENCHMARKS, []).length).toBe(BENCHMARKS.length);
    expect(() => select(BENCHMARKS, ['nope'])).toThrow(/unknown benchmark nope; known: .*matmul/);
    const names = BENCHMARKS.map((b: Benchmark) => b.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('derives ratio from the unit direction and nulls it without a peer', () => {
    expect(result({ name: 'a', unit: 'GFLOP/s', ours: 6, peer: 3, peerName: 'p', shape: '' }).ratio).toBe(2);
    expect(result({ name: 'a', unit: 'ms', ours: 2, peer: 6, peerName: 'p', shape: '' }).ratio).toBe(3);
    expect(result({ name: 'a', unit: 'bytes', ours: 2, peer: 6, peerName: 'p', shape: '' }).ratio).toBe(3);
    expect(result({ name: 'a', unit: 'GFLOP/s', ours: 6, peerName: 'p', shape: '' })).toMatchObject({ peer: null, peerName: null, ratio: null });
    const bad = { adapter: { vendor: 'v', architecture: 'a', description: 'd', features: [] }, date: 'x', results: [{ name: 'n' }] };
    expect(() => validateReport(bad)).toThrow(/date is not an ISO date[\s\S]*results\[0\]/);
  });

  it('runs peak and matmul end to end on a tiny shape and writes a valid report (< 30 s)', async () => {
    const json = join(dir, 'report.json');
    const args = ['--only', 'peak,matmul', '--tokens', '16', '--shapes', '64:48', '--samples', '1', '--warmup', '1', '--json', json];
    const { code, stdout, stderr } = await runCli(args, 90_000);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    validateReport(report);
    expect(Date.now() - Date.parse(report.date)).toBeLessThan(10 * 60_000);
    const byName = new Map(report.results.map((r) => [r.name, r]));
    expect([...byName.keys()].sort()).toEqual(
      [
        'peak.mad',
        'peak.fma',
        'peak.vec4',
        'matmul.f32.64x48',
        'matmul.bf16.64x48',
        'matmul.f32.64x48.peak',
        'matmul.bf16.64x48.peak',
        // the GPU paths forced beside the default (tiny products run them on CPU adapters too)
        ...['tiled', 'regtile'].flatMap((p) => ['f32', 'bf16'].flatMap((d) => [`matmul.${p}.${d}.64x48`, `matmul.${p}.${d}.64x48.peak`])),
      ].sort(),
    );
    for (const r of report.results) expect(r.ours, r.name).toBeGreaterThan(0);
    const mm = byName.get('matmul.f32.64x48')!;
    expect(mm).toMatchObject({ unit: 'GFLOP/s', shape: '16x64x48' });
    // The TF.js peer ran on the same device.
    expect(mm.peerName).toMatch(/^tfjs-webgpu \d/);
    expect(mm.peer).toBeGreaterThan(0);
    expect(byName.get('matmul.bf16.64x48.peak')!.unit).toBe('fraction of peak');
    expect(byName.get('peak.mad')!.peer).toBeNull();
    // The table on stdout lists every row.
    for (const name of byName.keys()) expect(stdout).toContain(name);
  }, 120_000);
});

describe('model-step benchmark', () => {
  it('runs a LoRA step of a toy model end to end; its peak matches the plan, and the Llama-3.2 plan rows are right (< 20 s)', async () => {
    const json = join(dir, 'model-step.json');
    const args = ['--only', 'model-step', '--model', 'tiny', '--seq', '8', '--samples', '1', '--warmup', '0', '--json', json];
    const { code, stdout, stderr } = await runCli(args, 60_000);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    validateReport(report);
    const byName = new Map(report.results.map((r) => [r.name, r]));
    for (const r of report.results) {
      expect(r.ours, r.name).toBeGreaterThan(0);
      expect(r.peer, r.name).toBeNull();
      expect(stdout).toContain(r.name);
    }
    expect(byName.get('model-step.tiny')).toMatchObject({ unit: 'tokens/s' });
    expect(byName.get('model-step.tiny')!.shape).toMatch(/^B1xT8 bf16 r16 all7/);
    expect(byName.get('model-step.tiny.gflops')).toMatchObject({ unit: 'GFLOP/s' });
    // The pool's measured peak over the step is the plan, byte for byte.
    const peak = byName.get('memory-peak.tiny')!;
    const plan = byName.get('memory-plan.tiny')!;
    expect(peak.unit).toBe('bytes');
    expect(peak.ours).toBe(plan.ours);
    expect(plan.shape).toContain('peak/plan 1.0000');
    // planMemory rows of the real models: batch 1, bf16, LoRA r16 on all seven projections.
    for (const [model, config] of Object.entries(LLAMA_3_2_PRESETS)) {
      let last = 0;
      for (const seq of [512, 1024, 2048]) {
        const row = byName.get(`memory-plan.${model}.seq${seq}.r16`);
        expect(row, `${model} seq ${seq}`).toMatchObject({ unit: 'bytes', peer: null });
        expect(row!.ours).toBe(planMemory(config, { batch: 1, seq, loraRank: 16, weightDType: 'bf16' }).training);
        expect(row!.shape).toMatch(new RegExp(`^B1xT${seq} bf16 r16 all7: `));
        expect(row!.ours).toBeGreaterThan(last);
        last = row!.ours;
      }
    }
    const at512 = (m: string) => byName.get(`memory-plan.${m}.seq512.r16`)!.ours;
    // bf16 weights dominate: ~2.3 GiB (1B) and ~6 GiB (3B).
    expect(at512('llama-3.2-1b') / 2 ** 30).toBeGreaterThan(2.3);
    expect(at512('llama-3.2-1b') / 2 ** 30).toBeLessThan(3);
    expect(at512('llama-3.2-3b') / 2 ** 30).toBeGreaterThan(6);
    expect(at512('llama-3.2-3b') / 2 ** 30).toBeLessThan(8);
  }, 90_000);
});

describe('decode and load benchmarks', () => {
  it('decode on the GPU path reads back 4 bytes per token in one submit; load serves the demo model over HTTP (< 60 s)', async () => {
    const json = join(dir, 'decode-load.json');
    const args = ['--only', 'decode,load', '--prompt-tokens', '4', '--decode-tokens', '3', '--samples', '1', '--warmup', '0', '--json', json];
    const { code, stderr } = await runCli(args, 150_000);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    validateReport(report);
    const byName = new Map(report.results.map((r) => [r.name, r]));
    expect([...byName.keys()].sort()).toEqual(
      ['prefill.demo', 'decode.demo.greedy', 'decode.demo.greedy.submits', 'decode.demo.greedy.readback', 'decode.demo.topk50', 'load.demo.http', 'load.demo.cached', 'load.demo.ttft'].sort(),
    );
    for (const r of report.results) expect(r.ours, r.name).toBeGreaterThan(0);
    expect(byName.get('decode.demo.greedy.submits')!.ours).toBe(1);
    expect(byName.get('decode.demo.greedy.readback')!).toMatchObject({ unit: 'bytes', ours: 4, peer: 128_256 * 4 });
    expect(byName.get('load.demo.http')!.unit).toBe('MB/s');
  }, 180_000);
});

describe('local-source collection benchmark', () => {
  it('collects every item of the demo model on this GPU and reports items/min and tokens/s (< 60 s)', async () => {
    const json = join(dir, 'collect-local.json');
    const { code, stderr } = await runCli(['--only', 'collect-local', '--decode-tokens', '2', '--samples', '1', '--warmup', '0', '--json', json], 150_000);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    validateReport(report);
    expect(report.results.map((r) => [r.name, r.unit])).toEqual([
      ['collect-local.demo', 'items/min'],
      ['collect-local.demo.tokens', 'tokens/s'],
    ]);
    for (const r of report.results) expect(r.ours, r.name).toBeGreaterThan(0);
  }, 180_000);
});
