// `fuse-studio demo` end to end as a child process (vite-node on src/cli/main.ts, as the other CLI
// tests): demo models written (Llama-3 and Qwen3 sources, a Llama reward head), the data pipeline
// with both sources and the reward model on this GPU, SFT then DPO on the target, before/after
// answers. Tiny settings (two instruction prompts, two samples of two tokens per source, one step
// per stage): the 128k/152k-vocab demo models cost ~0.2 s a sampled token and ~10-20 s a training
// step on an idle SwiftShader (the time limits allow for a busy machine). Local sources in depth:
// src/data/local-source.test.ts and src/cli/build-data-local.test.ts.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../model/config';
import { loadPeftAdapter } from '../train/peft-node';
import { UsageError } from './commands/args';
import { DEMO_PROMPTS } from './commands/demo';
import { runCommand } from './program';
import { runCli, type CliRun } from './testing/run-cli';

/** `fuse-studio demo ARGV` parsed as the CLI does, run in this process. */
const demoCommand = (argv: string[]) => runCommand(['demo', ...argv]);

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-demo-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function cli(args: string[], timeoutMs: number): Promise<CliRun> {
  return runCli(args, { timeoutMs });
}

describe('fuse-studio demo', () => {
  it('runs the recipe offline: data files, report, SFT and DPO adapters, before/after answers', async () => {
    const out = join(dir, 'run');
    const t0 = performance.now();
    const r = await cli(['demo', '--out', out, '--prompts', '2', '--samples', '2', '--max-tokens', '2', '--sft-steps', '1', '--dpo-steps', '1'], 840_000);
    console.log(`demo: ${((performance.now() - t0) / 1000).toFixed(1)} s\n${r.stdout}`);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);

    for (const f of ['responses.jsonl', 'scores.jsonl', 'sft.jsonl', 'dpo.jsonl', 'fusechat_sft.jsonl', 'fusechat_dpo.jsonl', 'report.json', 'run.json'])
      expect(existsSync(join(out, f)), f).toBe(true);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as { counts: Record<string, number> };
    expect(report.counts).toMatchObject({ prompts: 2, responses: 2 * 2 * 2 });
    const lines = async (f: string) => (await readFile(join(out, f), 'utf8')).split('\n').filter((l) => l.trim()).length;
    expect(await lines('responses.jsonl')).toBe(8);
    // Each response scored once; its score rewritten once the run's mapping was fitted (the latest record of a key counts).
    const scoreKeys = (await readFile(join(out, 'scores.jsonl'), 'utf8')).split('\n').filter((l) => l.trim()).map((l) => (JSON.parse(l) as { key: string }).key);
    expect(new Set(scoreKeys).size).toBe(8);
    const nSft = report.counts['sft.kept'] ?? 0;
    const nDpo = report.counts['dpo.kept'] ?? 0;
    expect(await lines('sft.jsonl')).toBe(nSft);
    expect(await lines('dpo.jsonl')).toBe(nDpo);
    // The progress lines, the summary and the reasons.
    expect(r.stderr).toMatch(/collect {2}llama-demo {2}4\/4 \(100%\) {2}[\d.]+ tok\/s, batch 4 /);
    expect(r.stderr).toMatch(/collect {2}qwen3-demo {2}4\/4 \(100%\) {2}[\d.]+ tok\/s, batch 4 /);
    expect(r.stdout).toMatch(/demo data: done/);
    expect(r.stdout).toMatch(/local {6}llama-demo: 4 generated, 8 tokens .*; GPU pool 0 B → [\d.]+ MiB loaded → 0 B released/);
    expect(r.stdout).toMatch(/local {6}qwen3-demo: 4 generated, 8 tokens .*; GPU pool 0 B → [\d.]+ MiB loaded → 0 B released/);
    expect(r.stdout).toMatch(/why:\n {2}instruction 2 prompt\(s\)/);
    expect(r.stdout).toMatch(/timings: models \d+s, data \d+s, /);
    // Two families, each with its paper preset; every response scored by the local reward model.
    const run = JSON.parse(await readFile(join(out, 'run.json'), 'utf8')) as { sources: { name: string; local: boolean }[]; judge: { type: string } };
    expect(run.sources.map((s) => [s.name, s.local])).toEqual([['llama-demo', true], ['qwen3-demo', true]]);
    expect(run.judge.type).toBe('local-reward');
    const collected = (report as unknown as { collect: { sources: { local: { sampling: object; gpu: { baselineBytes: number; afterBytes: number } } }[] } }).collect.sources;
    expect(collected.map((s) => s.local.sampling)).toEqual([{ temperature: 0.8, top_p: 0.95, repetition_penalty: 1 }, { temperature: 0.7, top_p: 0.8, repetition_penalty: 1.05 }]);
    for (const s of collected) expect(s.local.gpu.afterBytes).toBe(s.local.gpu.baselineBytes);
    const scored = (await readFile(join(out, 'scores.jsonl'), 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as { judge: { method: string; raw: number } });
    expect(scored.every((x) => x.judge.method === 'reward' && Number.isFinite(x.judge.raw))).toBe(true);

    // Two instruction prompts split 4:6 give one SFT-side and one DPO-side prompt.
    const config = parseModelConfig(JSON.parse(await readFile(join(out, 'models/target/config.json'), 'utf8')));
    expect(nSft).toBe(1);
    expect(r.stdout).toMatch(/SFT: 1 step\(s\) on 1 row\(s\)/);
    const sft = await loadPeftAdapter(join(out, 'adapter-sft'), config);
    expect(sft.adapter.rank).toBe(8);
    let final = join(out, 'adapter-sft');
    if (nDpo > 0) {
      expect(r.stdout).toMatch(/DPO: 1 step\(s\) on 1 pair\(s\) .*\(SFT\+DPO\)/);
      expect(r.stderr).toMatch(/reference: the SFT model/);
      final = join(out, 'adapter-dpo');
      const dpo = await loadPeftAdapter(final, config);
      expect(dpo.adapter.rank).toBe(8);
      expect(JSON.parse(await readFile(join(final, 'train_config.json'), 'utf8'))).toMatchObject({ stage: 'dpo', loss: 'ln-dpo', init: join(out, 'adapter-sft') });
    } else expect(r.stdout).toMatch(/DPO: skipped, the DPO set is empty/);
    expect(r.stdout).toContain(`before/after (greedy, 2 tokens; base vs base + ${nDpo > 0 ? 'SFT+DPO' : 'SFT'} adapter ${final})`);
    expect(r.stdout).toMatch(new RegExp(`prompt: ${DEMO_PROMPTS[0]!.text}\\n {4}before: ".*"\\n {4}after: {2}".*"`));
    expect(r.stdout).toContain(`demo: done → ${out} (adapter: ${final})`);
  }, 900_000);

  it('refuses bad options and an --out that holds a run, before any work', async () => {
    await expect(demoCommand(['--prompts', '99'])).rejects.toThrow(/--prompts: the built-in set has 10 prompts/);
    await expect(demoCommand(['--samples', '0'])).rejects.toThrow(UsageError);
    await expect(demoCommand(['--max-tokens', 'x'])).rejects.toThrow(/not an integer/);
    await expect(demoCommand(['--nope'])).rejects.toThrow(UsageError);
    await expect(demoCommand(['--sft-step', '1'])).rejects.toThrow(/unknown option '--sft-step'\n\(Did you mean --sft-steps\?\)/);
    const used = join(dir, 'used');
    await mkdir(used, { recursive: true });
    await writeFile(join(used, 'responses.jsonl'), '');
    await expect(demoCommand(['--out', used])).rejects.toThrow(/already holds a run/);
  });
});
