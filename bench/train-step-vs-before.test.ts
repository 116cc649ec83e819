// The now-vs-before step benchmark end to end through the CLI on a small 1B-shaped model
// (one layer, vocab 512, 2 rows of 4 tokens): both steps compute the same loss (the benchmark
// throws otherwise), the current plan keeps what the stated memory allows and executes exactly
// the model's matmul FLOPs, the checkpointed one 1.5x, and the counts come from each side's own
// context.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCli } from './cli';
import { defaultOptions, validateReport, type Report } from './harness';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'fuse-bench-vs-before-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'node_modules/vite-node/dist/cli.mjs'), 'bench/main.ts', '--', ...args], { cwd: root });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench CLI did not finish in ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('train-step-vs-before benchmark', () => {
  it('parses --step-batch and --gpu-memory; GPU defaults are issue 15 target size', () => {
    expect(parseCli(['--step-batch', '4', '--gpu-memory', '6.5']).options).toMatchObject({ stepBatch: 4, gpuMemoryGiB: 6.5 });
    expect(() => parseCli(['--step-batch', '0'])).toThrow(/--step-batch/);
    expect(() => parseCli(['--gpu-memory', '0'])).toThrow(/--gpu-memory: expected a number of GiB above 0, got "0"/);
    expect(() => parseCli(['--gpu-memory', 'lots'])).toThrow(/--gpu-memory/);
    expect(() => parseCli(['--gpu-memory', 'Infinity'])).toThrow(/--gpu-memory/);
    expect(defaultOptions(false)).toMatchObject({ stepBatch: 4, seq: 512, peerLayers: 16, peerVocab: 128_256, gpuMemoryGiB: 16 });
    expect(defaultOptions(true)).toMatchObject({ stepBatch: 1, gpuMemoryGiB: null });
  });

  it('runs now and before on their own contexts: same step-1 loss, the plan keeps what fits, counts per side (< 90 s)', async () => {
    const json = join(dir, 'report.json');
    const args = ['--only', 'train-step-vs-before', '--peer-layers', '1', '--peer-vocab', '512', '--seq', '4', '--step-batch', '2', '--gpu-memory', '1', '--samples', '1', '--warmup', '0', '--json', json];
    const { code, stderr } = await runCli(args, 170_000);
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    validateReport(report);
    const name = 'train-step-vs-before.llama-3.2-1b.L1v512';
    const byName = new Map(report.results.map((r) => [r.name, r]));
    expect([...byName.keys()].sort()).toEqual(
      ['', '.dispatches', '.bind-groups', '.submits', '.readbacks', '.matmul-flops-over-model', '.memory-peak'].map((s) => name + s).sort(),
    );
    const step = byName.get(name)!;
    expect(step).toMatchObject({ unit: 'tokens/s' });
    expect(step.ours).toBeGreaterThan(0);
    expect(step.peer).toBeGreaterThan(0);
    expect(step.shape).toMatch(/B2xT4 r16 all7/);
    expect(step.shape).toMatch(/now: logits \+ activations kept, plan [\d.]+ MiB \(1 GiB stated\)/);
    expect(step.shape).toMatch(/before: checkpointed \(layers \+ lm_head recomputed\)/);
    // The benchmark compared the step-1 losses before reporting; the shape shows them.
    const [, a, b] = /step-1 loss ([\d.]+) vs ([\d.]+)/.exec(step.shape)!;
    expect(Math.abs(Number(a) - Number(b))).toBeLessThanOrEqual(1e-3 * Number(b));
    // Nothing recomputed now: the model's matmul FLOPs exactly; before: every layer's forward and
    // the lm_head again.
    const flops = byName.get(`${name}.matmul-flops-over-model`)!;
    expect(flops.ours).toBeCloseTo(1, 9);
    expect(flops.peer!).toBeGreaterThan(1.3);
    const dispatches = byName.get(`${name}.dispatches`)!;
    expect(dispatches.ours).toBeLessThan(dispatches.peer!);
    // Before creates a bind group per dispatch; now reuses every one from the first step.
    const groups = byName.get(`${name}.bind-groups`)!;
    expect(groups).toMatchObject({ ours: 0, peer: null });
    expect(groups.shape).toContain(`before issue 15: ${dispatches.peer}`);
    expect(byName.get(`${name}.readbacks`)).toMatchObject({ ours: 1, peer: 1 });
    // Keeping costs memory: now's peak is at least before's.
    const peak = byName.get(`${name}.memory-peak`)!;
    expect(peak.ours).toBeGreaterThanOrEqual(peak.peer!);
  }, 180_000);
});
