// `fuse-studio build-data` with local sources of two architectures (tiny generated Llama-3 and
// Qwen3 models with their real tokenizers and chat templates) and a local reward model (a tiny
// LlamaForSequenceClassification, data/test-reward-model.ts), as child processes (vite-node on
// src/cli/main.ts): killed with SIGKILL mid-collection and resumed, it generates no stored item
// again and ends with the uninterrupted run's sets; its scores equal `fuse-studio reward` on the same
// texts; the GPU pool is back at its baseline after each source; a source that does not fit is
// skipped with the reason. Few prompts and tokens: ~0.2 s a sampled token on SwiftShader.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyRewardModel } from '../data/test-reward-model';
import { writeDemoModel } from '../model/demo-node';
import { runCli, type CliRun } from './testing/run-cli';

const DATE = '26 Jul 2024';
const PROMPTS = [
  { id: 'i1', prompt: 'Write a haiku about the sea.', domain: 'instruction' },
  { id: 'i2', prompt: 'Give me three tips for staying focused.', domain: 'instruction' },
  { id: 'i3', prompt: 'Name a colour and say why you like it.', domain: 'instruction' },
  { id: 'm1', prompt: 'What is 17 + 25?', domain: 'math', gold: '42' },
];
// llama: 2 per instruction prompt, 1 for math (two generateSamples calls); qwen: 2 each.
const TOTAL = 3 * 2 + 1 + 4 * 2;

let dir = '';
const children = new Set<ChildProcess>();
const models = { llama: '', qwen: '', rm: '' };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-cli-local-'));
  models.llama = join(dir, 'llama');
  models.qwen = join(dir, 'qwen');
  models.rm = join(dir, 'rm');
  await writeDemoModel(models.llama, { seed: 1 });
  await writeDemoModel(models.qwen, { family: 'qwen3', seed: 2 });
  // Skywork-like reward spreads; a template without a date line.
  await writeTinyRewardModel(models.rm, { scoreScale: 16, template: 'llama-3' });
  await writeFile(join(dir, 'prompts.jsonl'), PROMPTS.map((p) => JSON.stringify(p)).join('\n') + '\n');
  await writeFile(
    join(dir, 'sources.json'),
    JSON.stringify([
      { name: 'llama', local: true, model: models.llama, n: { instruction: 2, math: 1 }, max_tokens: 3 },
      { name: 'qwen', local: true, model: models.qwen, n: 2, max_tokens: 3, seed: 5 },
    ]),
  );
  await writeFile(join(dir, 'judge.json'), JSON.stringify({ type: 'local-reward', model: models.rm }));
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

function cli(args: string[], onStart?: (child: ChildProcess) => void): Promise<CliRun> {
  return runCli(args, {
    timeoutMs: 240_000,
    onStart: (child) => {
      children.add(child);
      child.on('close', () => children.delete(child));
      onStart?.(child);
    },
  });
}

const buildData = (out: string, ...extra: string[]) =>
  ['build-data', '--prompts', join(dir, 'prompts.jsonl'), '--sources', join(dir, 'sources.json'), '--judge', join(dir, 'judge.json'), '--out', out, '--date-string', DATE, ...extra];

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');
const parsed = (text: string) =>
  lines(text).flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      return []; // a line torn by the kill
    }
  });
const read = (out: string, f: string) => readFile(join(out, f), 'utf8');

interface LocalReport {
  name: string;
  total: number;
  done: number;
  local: { state: string; generated: number; tokens: number; gpu?: { baselineBytes: number; loadedBytes: number; afterBytes: number } };
}
const localOf = async (out: string): Promise<LocalReport[]> => JSON.parse(await read(out, 'report.json')).collect.sources;

describe('fuse-studio build-data with local sources and a local reward model', () => {
  it('killed (SIGKILL) mid-collection, --resume generates only what was not stored and ends with the sets of an uninterrupted run; scores = `fuse-studio reward`; the GPU pool back at its baseline after each source', async () => {
    // The uninterrupted run.
    const full = join(dir, 'full');
    const r = await cli(buildData(full));
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stderr).toMatch(/collect {2}llama {2}7\/7 \(100%\) {2}[\d.]+ tok\/s, batch \d+ {2}[\d.]+\/min {2}ETA 0s {2}\[7 generated\]/);
    expect(r.stdout).toMatch(new RegExp(`responses {2}${TOTAL} stored \\(${TOTAL} new, 0 from earlier runs\\), 0 failed`));
    expect(r.stdout).toMatch(/local {6}llama: 7 generated, \d+ tokens in .*GPU pool 0 B → [\d.]+ MiB loaded → 0 B released/);
    expect(r.stdout).toMatch(/local {6}qwen: 8 generated, /);
    expect(r.stdout).toMatch(new RegExp(`scores {5}${TOTAL}/${TOTAL} \\(${TOTAL} new`));
    for (const s of await localOf(full)) {
      expect(s.local.state).toBe('done');
      expect(s.local.gpu!.loadedBytes).toBeGreaterThan(s.local.gpu!.baselineBytes);
      expect(s.local.gpu!.afterBytes).toBe(s.local.gpu!.baselineBytes);
    }
    const fullResponses = new Map(parsed(await read(full, 'responses.jsonl')).map((x) => [x.key as string, x]));
    expect(fullResponses.size).toBe(TOTAL);
    expect(fullResponses.get(JSON.stringify(['qwen', 'i1', 1])).params).toMatchObject({ seed: 6, temperature: 0.7, top_p: 0.8, repetition_penalty: 1.05, max_tokens: 3 });
    expect(fullResponses.get(JSON.stringify(['llama', 'm1', 0])).params).toMatchObject({ seed: 0, temperature: 0.8, top_p: 0.95 });

    // Killed as soon as the first response is stored.
    const out = join(dir, 'killed');
    const responses = join(out, 'responses.jsonl');
    const killed = await cli(buildData(out), (child) => {
      const poll = setInterval(() => {
        void readFile(responses, 'utf8').then(
          (t) => {
            if (lines(t).length >= 1) {
              clearInterval(poll);
              child.kill('SIGKILL');
            }
          },
          () => {},
        );
      }, 10);
      child.on('close', () => clearInterval(poll));
    });
    expect(killed.signal).toBe('SIGKILL');
    const stored = new Set(parsed(await readFile(responses, 'utf8')).map((x) => x.key as string));
    expect(stored.size).toBeGreaterThanOrEqual(1);
    expect(stored.size).toBeLessThan(TOTAL);
    console.log(`build-data killed after ${stored.size} of ${TOTAL} items were stored`);

    const resumed = await cli(buildData(out, '--resume'));
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    // Generated in this run: exactly the items not stored before, each once.
    const rep = await localOf(out);
    expect(rep.reduce((a, s) => a + s.local.generated, 0)).toBe(TOTAL - stored.size);
    expect(resumed.stdout).toMatch(new RegExp(`responses {2}${TOTAL} stored \\(${TOTAL - stored.size} new, ${stored.size} from earlier runs\\)`));
    const keys = parsed(await readFile(responses, 'utf8')).map((x) => x.key as string);
    expect(keys).toHaveLength(TOTAL);
    expect(new Set(keys).size).toBe(TOTAL);
    for (const s of rep) if (s.local.gpu) expect(s.local.gpu.afterBytes).toBe(s.local.gpu.baselineBytes);

    // The same answers, scores and sets as the uninterrupted run.
    const got = new Map(parsed(await read(out, 'responses.jsonl')).map((x) => [x.key as string, x.content as string]));
    for (const [k, x] of fullResponses) expect(got.get(k), k).toBe(x.content);
    const raws = async (o: string) => new Map(parsed(await read(o, 'scores.jsonl')).map((x) => [x.key as string, x.judge.raw as number]));
    const [rawFull, rawOut] = [await raws(full), await raws(out)];
    expect(rawOut.size).toBe(TOTAL);
    for (const [k, v] of rawFull) expect(Math.abs(rawOut.get(k)! - v), k).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
    for (const f of ['sft.jsonl', 'dpo.jsonl']) expect(lines(await read(out, f)).sort(), f).toEqual(lines(await read(full, f)).sort());
    expect(lines(await read(full, 'sft.jsonl')).length + lines(await read(full, 'dpo.jsonl')).length).toBeGreaterThan(0);

    // `fuse-studio reward` on the same texts gives the stored raw rewards.
    const prompt = new Map(PROMPTS.map((p) => [p.id, p.prompt]));
    const order = [...fullResponses.values()];
    const data = join(dir, 'texts.jsonl');
    await writeFile(data, order.map((x) => JSON.stringify({ messages: [{ role: 'user', content: prompt.get(x.promptId) }, { role: 'assistant', content: x.content }] })).join('\n') + '\n');
    const rw = await cli(['reward', '--model', models.rm, '--data', data]);
    expect(rw.code, rw.stderr).toBe(0);
    const rewards = lines(rw.stdout).map((l) => (JSON.parse(l) as { reward: number }).reward);
    expect(rewards).toHaveLength(TOTAL);
    order.forEach((x, i) => expect(Math.abs(rewards[i]! - rawFull.get(x.key)!), x.key).toBeLessThan(1e-4 * Math.max(1, Math.abs(rewards[i]!))));
  }, 600_000);

  it('skips a source whose generation plan does not fit the GPU memory given, with the reason in the report and the summary', async () => {
    const out = join(dir, 'small');
    const r = await cli(['build-data', '--prompts', join(dir, 'prompts.jsonl'), '--sources', join(dir, 'sources.json'), '--out', out, '--gpu-memory', '0.004']);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const why = /generation of one row \(\d+ prompt \+ 3 new tokens\) needs [\d.]+ MiB, more than the 4.10 MiB available; generate fewer tokens or use a smaller model/;
    expect(r.stdout).toMatch(new RegExp(`skipped {4}llama: ${models.llama} does not fit this device: ${why.source}`));
    expect(r.stdout).toMatch(new RegExp(`skipped {4}qwen: ${models.qwen} does not fit this device: `));
    expect(r.stdout).toMatch(new RegExp(`responses {2}0 stored \\(0 new, 0 from earlier runs\\), 0 failed, ${TOTAL} pending`));
    expect(r.stderr).toMatch(/warning: source "llama" was skipped: /);
    const report = JSON.parse(await read(out, 'report.json'));
    expect(report.collect.skippedSources.map((s: { name: string }) => s.name)).toEqual(['llama', 'qwen']);
    expect(report.collect.skippedSources[0].reason).toMatch(why);
    expect(report.warnings.some((w: string) => w.startsWith('source "qwen" was skipped'))).toBe(true);
  }, 240_000);
});
