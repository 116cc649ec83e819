// `fuse-studio build-data` as a child process (through vite-node on src/cli/main.ts, so the test
// needs no build) against the scripted local sources and reward model of data/test-fusion.ts.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REWARD_MODEL_EXAMPLE } from '../data/local-reward';
import { rewardStats } from '../data/score';
import { EXPECTED, FIXTURE_PROMPTS, SAMPLES_PER_SOURCE, startFixtureServers, tagOf, type FixtureServers } from '../data/test-fusion';
import { writeTinyRewardModel } from '../data/test-reward-model';
import { writeDemoModel } from '../model/demo-node';
import { referenceReward } from '../model/reference';
import { runCli, type CliRun } from './testing/run-cli';

const KEY = 'sk-cli-SECRET-0123456789abcdef';
const N_RESPONSES = FIXTURE_PROMPTS.length * 2 * SAMPLES_PER_SOURCE;
const N_JUDGED = FIXTURE_PROMPTS.filter((p) => p.domain !== 'other').length * 2 * SAMPLES_PER_SOURCE;

let servers: FixtureServers | null = null;
let dir = '';
const children = new Set<ChildProcess>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-cli-'));
});
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await servers?.close();
  servers = null;
  await rm(dir, { recursive: true, force: true });
});


/** Starts `fuse-studio <args>`; `onStart` may watch or kill it. Resolves when it exits (`limitMs`, 20 s by default, at most). */
function cli(args: string[], onStart?: (child: ChildProcess) => void, limitMs = 20_000): Promise<CliRun> {
  return runCli(args, {
    env: { FUSE_TEST_KEY: KEY },
    timeoutMs: limitMs,
    onStart: (child) => {
      children.add(child);
      child.on('close', () => children.delete(child));
      onStart?.(child);
    },
  });
}

async function writeInputs(s: FixtureServers, opts: { concurrency?: number } = {}) {
  await writeFile(join(dir, 'prompts.jsonl'), FIXTURE_PROMPTS.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const source = (name: 'A' | 'B', apiKey: string) => ({
    name,
    baseURL: s.sources[name].baseURL,
    apiKey,
    model: `model-${name.toLowerCase()}`,
    temperature: 0.8,
    top_p: 0.95,
    max_tokens: 256,
    n: SAMPLES_PER_SOURCE,
    concurrency: opts.concurrency ?? 2,
    seed: 0,
  });
  await writeFile(join(dir, 'sources.json'), JSON.stringify([source('A', '$FUSE_TEST_KEY'), source('B', KEY)], null, 2));
  // The fixture's rewards are in ArmoRM's [0, 1] units, where the paper's window is set: the
  // ArmoRM mapping (raw as is), not the default fitted to the run.
  await writeFile(
    join(dir, 'judge.json'),
    JSON.stringify({ type: 'reward', baseURL: s.reward.baseURL, apiKey: '${FUSE_TEST_KEY}', model: 'reward-model', normalize: { kind: 'none' }, concurrency: 3 }),
  );
}

const args = (out: string, ...extra: string[]) => [
  'build-data',
  '--prompts',
  join(dir, 'prompts.jsonl'),
  '--sources',
  join(dir, 'sources.json'),
  '--judge',
  join(dir, 'judge.json'),
  '--out',
  out,
  ...extra,
];

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

describe('fuse-studio build-data (child process)', () => {
  it('builds the sets into DIR with progress and summary, keys from env never written; --resume asks nothing again', async () => {
    servers = await startFixtureServers();
    await writeInputs(servers);
    const out = join(dir, 'run');
    const r = await cli(args(out, '--eval-fraction', '0.2', '--seed', '3'));
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.code).toBe(0);
    // Progress per source (done/total, rate, ETA) on stderr; the summary on stdout.
    expect(r.stderr).toMatch(/collect {2}A {2}20\/20 \(100%\) {2}[\d.]+\/min {2}ETA 0s/);
    expect(r.stderr).toMatch(/collect {2}B {2}20\/20 \(100%\)/);
    expect(r.stderr).toMatch(/score {4}36\/36 \(100%\)/);
    expect(r.stdout).toMatch(/^build-data: done → /);
    expect(r.stdout).toMatch(/responses {2}40 stored \(40 new, 0 from earlier runs\), 0 failed/);
    expect(r.stdout).toMatch(/scores {5}36\/36 \(36 new, 0 from earlier runs\), 0 failed, 36 judge calls/);
    expect(servers.asked()).toHaveLength(N_RESPONSES);
    expect(servers.judged('reward')).toHaveLength(N_JUDGED);

    const files = await readdir(out);
    for (const f of ['responses.jsonl', 'scores.jsonl', 'sft.jsonl', 'dpo.jsonl', 'fusechat_sft.jsonl', 'fusechat_dpo.jsonl', 'report.json', 'run.json', 'prompts.jsonl', 'eval_prompts.jsonl', 'sft_eval.jsonl', 'dpo_eval.jsonl'])
      expect(files).toContain(f);
    const read = (f: string) => readFile(join(out, f), 'utf8');
    const report = JSON.parse(await read('report.json'));
    expect(report.prompts).toMatchObject({ total: 10, train: 8, eval: 2 });
    const sft = lines(await read('sft.jsonl')).map((l) => JSON.parse(l));
    const dpo = lines(await read('dpo.jsonl')).map((l) => JSON.parse(l));
    expect(sft).toHaveLength(report.counts['sft.kept']);
    expect(dpo).toHaveLength(report.counts['dpo.kept']);
    expect(lines(await read('sft_eval.jsonl'))).toHaveLength(report.eval.counts['sft.kept'] ?? 0);
    expect(lines(await read('fusechat_dpo.jsonl'))).toHaveLength(dpo.length);
    // Each row is the recipe's pick for its prompt; eval prompts stay out of training files.
    const evalIds = new Set(lines(await read('eval_prompts.jsonl')).map((l) => JSON.parse(l).id));
    expect(evalIds.size).toBe(2);
    for (const row of sft) {
      const tag = tagOf(row.messages.at(-1).content)!;
      const promptId = tag.split('/')[0]!;
      expect(evalIds.has(promptId)).toBe(false);
      expect(tag).toBe(EXPECTED[promptId]!.sft);
    }
    for (const row of dpo) {
      const pair = [tagOf(row.chosen[0].content), tagOf(row.rejected[0].content)];
      expect(pair).toEqual(EXPECTED[pair[0]!.split('/')[0]!]!.dpo);
    }
    // Keys: never in any output, nor in what the CLI printed.
    for (const f of files) expect(await read(f)).not.toContain('SECRET');
    expect(r.stdout + r.stderr).not.toContain('SECRET');

    // The same DIR again: refused without --resume; with it, nothing is asked or scored again.
    const dpoText = await read('dpo.jsonl');
    const again = await cli(args(out));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already holds a run: pass --resume/);
    const resumed = await cli(args(out, '--resume', '--eval-fraction', '0.2', '--seed', '3'));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/responses {2}40 stored \(0 new, 40 from earlier runs\)/);
    expect(resumed.stdout).toMatch(/scores {5}36\/36 \(0 new, 36 from earlier runs\), 0 failed, 0 judge calls/);
    expect(servers.asked()).toHaveLength(N_RESPONSES);
    expect(servers.judged('reward')).toHaveLength(N_JUDGED);
    expect(await read('dpo.jsonl')).toBe(dpoText);
  });

  it('killed midway (SIGKILL), --resume finishes without asking for anything stored', async () => {
    servers = await startFixtureServers({ delayMs: 60 });
    await writeInputs(servers, { concurrency: 1 });
    const out = join(dir, 'run');
    const responses = join(out, 'responses.jsonl');
    const killed = await cli(args(out), (child) => {
      const poll = setInterval(() => {
        void readFile(responses, 'utf8').then(
          (t) => {
            if (lines(t).length >= 6) {
              clearInterval(poll);
              child.kill('SIGKILL');
            }
          },
          () => {},
        );
      }, 15);
      child.on('close', () => clearInterval(poll));
    });
    expect(killed.signal).toBe('SIGKILL');
    const stored = new Set(
      lines(await readFile(responses, 'utf8'))
        .map((l) => {
          try {
            const r = JSON.parse(l);
            return `${r.promptId}/${r.sourceId}/${r.sampleIndex}`;
          } catch {
            return ''; // a line torn by the kill: the store cuts it off on open
          }
        })
        .filter(Boolean),
    );
    expect(stored.size).toBeGreaterThanOrEqual(6);
    expect(stored.size).toBeLessThan(N_RESPONSES);
    expect(existsSync(join(out, 'sft.jsonl'))).toBe(false);
    const before = servers.asked().length;

    const resumed = await cli(args(out, '--resume'));
    expect(resumed.code).toBe(0);
    const after = servers.asked().slice(before);
    // (A request the killed process had in flight may be logged late: compare as sets.)
    for (const t of after) expect(stored.has(t)).toBe(false);
    expect(after.length).toBeGreaterThanOrEqual(N_RESPONSES - stored.size);
    expect(after.length).toBeLessThanOrEqual(N_RESPONSES - stored.size + 2);
    expect(resumed.stdout).toMatch(new RegExp(`responses {2}40 stored \\(${N_RESPONSES - stored.size} new, ${stored.size} from earlier runs\\)`));
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(lines(await readFile(join(out, 'dpo.jsonl'), 'utf8'))).toHaveLength(report.counts['dpo.kept']);
  });

  it('a local reward model as the judge: raw rewards = the float64 reference, stored with the run-fitted mapping, DPO pairs under the default window; its gapWindow in raw units, with a warning naming it when it drops every pair; a causal LM refused', async () => {
    servers = await startFixtureServers();
    await writeInputs(servers);
    const instruction = FIXTURE_PROMPTS.filter((p) => p.domain === 'instruction');
    await writeFile(join(dir, 'prompts.jsonl'), instruction.map((p) => JSON.stringify(p)).join('\n') + '\n');
    // Skywork-like reward spreads; a template without a date line (the run renders with today's).
    const rm = await writeTinyRewardModel(join(dir, 'rm'), { scoreScale: 16, template: 'llama-3' });
    await writeFile(join(dir, 'judge.json'), JSON.stringify({ type: 'local-reward', model: rm.dir }));
    const out = join(dir, 'run');
    const r = await cli(args(out), undefined, 150_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/scores {5}16\/16 \(16 new/);
    expect(r.stderr).not.toMatch(/warning: instruction/);

    const read = async (f: string) => lines(await readFile(join(out, f), 'utf8')).map((l) => JSON.parse(l));
    const responses = await read('responses.jsonl');
    const scores = new Map((await read('scores.jsonl')).map((s) => [s.key, s])); // the latest record of a key counts
    const text = new Map(instruction.map((p) => [p.id, p.prompt]));
    const raws: number[] = [];
    for (const resp of responses) {
      const ids = rm.tokenizer.encodeChat([
        { role: 'user', content: text.get(resp.promptId)! },
        { role: 'assistant', content: resp.content },
      ]).ids;
      const want = referenceReward(rm.host, { batchSize: 1, seqLen: ids.length, ids, mask: new Array<number>(ids.length).fill(1) })[0]!;
      const raw = scores.get(resp.key).judge.raw as number;
      expect(Math.abs(raw - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));
      raws.push(raw);
    }
    const stats = rewardStats(raws)!;
    const mapping = { kind: 'sigmoid', center: stats.median, scale: stats.std, fit: stats };
    for (const s of scores.values()) {
      expect(s.judge.normalize).toEqual(mapping);
      expect(s.score).toBeCloseTo(1 / (1 + Math.exp(-(s.judge.raw - stats.median) / stats.std)), 12);
    }
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8'));
    expect(report.rewards.gapWindows.instruction).toMatchObject({ min: 0.3, max: 3, unit: 'std', std: stats.std });
    const dpo = await read('dpo.jsonl');
    expect(dpo.length).toBeGreaterThan(0);
    expect(dpo).toHaveLength(report.counts['dpo.kept']);

    // The judge's window in raw units: nothing is scored again; far too wide a gap asked, every pair dropped, and said.
    await writeFile(join(dir, 'judge.json'), JSON.stringify({ type: 'local-reward', model: rm.dir, gapWindow: { min: 1000, max: 2000, unit: 'raw' } }));
    const again = await cli(args(out, '--resume'), undefined, 150_000);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/scores {5}16\/16 \(0 new, 16 from earlier runs\)/);
    expect(again.stdout).toMatch(/DPO {8}0 pairs/);
    expect(again.stderr).toMatch(/warning: instruction: the DPO gap window \[1000, 2000\] in raw reward units dropped all \d+ same-source pair\(s\) it judged/);
    expect(JSON.parse(await readFile(join(out, 'report.json'), 'utf8')).construct.gapWindows.instruction).toMatchObject({ min: 1000, max: 2000, unit: 'raw' });

    // A causal LM as the reward model: refused before anything is asked.
    const lm = join(dir, 'lm');
    await writeDemoModel(lm, { tokenizer: false });
    await writeFile(join(dir, 'judge.json'), JSON.stringify({ type: 'local-reward', model: lm }));
    const asked = servers.asked().length;
    const refused = await cli(args(join(dir, 'run2')));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${lm} is a causal language model (LlamaForCausalLM), not a reward model: scoring needs a *ForSequenceClassification reward model, such as ${REWARD_MODEL_EXAMPLE}`);
    expect(existsSync(join(dir, 'run2'))).toBe(false);
    expect(servers.asked()).toHaveLength(asked);
  });

  it('names the file and field of a bad config, and a missing environment variable', async () => {
    servers = await startFixtureServers();
    await writeInputs(servers);
    const bad = JSON.parse(await readFile(join(dir, 'sources.json'), 'utf8'));
    bad[1].temperature = 'hot';
    await writeFile(join(dir, 'sources.json'), JSON.stringify(bad));
    const r = await cli(args(join(dir, 'out')));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${join(dir, 'sources.json')}: [1].temperature: `);
    bad[1].temperature = 0.8;
    bad[0].apiKey = '$FUSE_TEST_MISSING_KEY';
    await writeFile(join(dir, 'sources.json'), JSON.stringify(bad));
    const r2 = await cli(args(join(dir, 'out')));
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('[0].apiKey: environment variable FUSE_TEST_MISSING_KEY is not set');
    expect(r2.stderr + r2.stdout).not.toContain('SECRET');
    expect(servers.asked()).toEqual([]);
  });
});
