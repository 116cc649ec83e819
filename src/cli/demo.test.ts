// `fuse-studio demo` end to end as a child process (vite-node on src/cli/main.ts, as the other CLI
// tests): demo models written and served, the data pipeline through /pooling, SFT then DPO on the
// target, before/after answers. Tiny settings (two instruction prompts, two samples of two
// tokens per source, one step per stage): the 128k-vocab demo models cost ~1 s a token and
// ~10-20 s a training step on an idle SwiftShader (the time limits allow for a busy machine).
// The full pipeline's checks are in src/serve/fusion-serve.test.ts.
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
    expect(await lines('scores.jsonl')).toBe(8);
    const nSft = report.counts['sft.kept'] ?? 0;
    const nDpo = report.counts['dpo.kept'] ?? 0;
    expect(await lines('sft.jsonl')).toBe(nSft);
    expect(await lines('dpo.jsonl')).toBe(nDpo);
    // The progress lines, the summary and the reasons.
    expect(r.stderr).toMatch(/serve {4}demo-a at http:\/\/127\.0\.0\.1:\d+\/v1/);
    expect(r.stderr).toMatch(/requests: demo-a 4 chat \/ 0 pooling, demo-b 4 chat \/ 0 pooling, demo-reward 0 chat \/ 8 pooling/);
    expect(r.stdout).toMatch(/demo data: done/);
    expect(r.stdout).toMatch(/why:\n {2}instruction 2 prompt\(s\)/);
    expect(r.stdout).toMatch(/timings: models \d+s, serve \d+s, data /);

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
