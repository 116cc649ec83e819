// `fuse-studio eval` end to end: the demo model's architecture over the byte tokenizer
// (src/eval/testing/byte-tokenizer.ts: real tokenizer files, 260 tokens, so SwiftShader trains and
// decodes it in seconds), a LoRA adapter trained with `fuse-studio train sft` to memorise the answers
// to three math prompts, then `fuse-studio eval` as a child process (vite-node on src/cli/main.ts)
// with a pairwise chat judge behind a real HTTP server that checks answers against the reference.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatCompletion, lastUser, startMockServer, type MockServer } from '../data/test-server';
import type { EvalReport } from '../eval/report';
import { writeByteModel } from '../eval/testing/byte-tokenizer';
import { parseAdapterFlags } from './commands/eval';
import { createProgram, runCommand } from './program';
import { runCli } from './testing/run-cli';

const MATH: [string, string][] = [
  ['What is 2 + 3?', '5'],
  ['What is 4 + 4?', '8'],
  ['What is 9 - 3?', '6'],
];

let root = '';
let judge: MockServer;
const answerIn = (text: string, which: 'A' | 'B') => new RegExp(`\\[The Start of Assistant ${which}'s Answer\\]\\n([\\s\\S]*?)\\n\\[The End of Assistant ${which}'s Answer\\]`).exec(text)![1]!;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cli-eval-'));
  // A judge that checks each answer against the reference: the one that gives it wins, else a tie.
  judge = await startMockServer((req) => {
    const u = lastUser(req);
    const ref = /\[The Start of Reference Answer\]\n([\s\S]*?)\n\[The End of Reference Answer\]/.exec(u)![1]!;
    const [a, b] = [answerIn(u, 'A').trim() === ref, answerIn(u, 'B').trim() === ref];
    return { kind: 'json', body: chatCompletion(`Checked against the reference.\n${a === b ? '[[C]]' : a ? '[[A]]' : '[[B]]'}`) };
  });
});
afterAll(async () => {
  await judge?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('fuse-studio eval', () => {
  it('an adapter trained on three math answers beats the base on them, "not significant" with three items; --resume redoes nothing', async () => {
    const model = join(root, 'model');
    await writeByteModel(model);
    const sft = join(root, 'sft.jsonl');
    await writeFile(sft, MATH.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n');
    const adapter = join(root, 'adapter-sft');
    const t0 = performance.now();
    expect(
      await runCommand(['train', 'sft', '--model', model, '--data', sft, '--out', adapter, '--max-steps', '20', '--lr', '2e-2', '--batch-size', '3', '--grad-accum', '1', '--lora-rank', '16', '--warmup-ratio', '0', '--schedule', 'cosine', '--date-string', '26 Jul 2024', '--quiet']),
    ).toBe(0);
    console.log(`train: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const data = join(root, 'eval.jsonl');
    await writeFile(data, MATH.map(([prompt, gold]) => JSON.stringify({ prompt, domain: 'math', gold })).join('\n') + '\n');
    const judgeFile = join(root, 'judge.json');
    await writeFile(judgeFile, JSON.stringify({ baseURL: judge.baseURL, model: 'reference-checker' }));
    const out = join(root, 'eval');
    const args = ['eval', '--model', model, '--adapter', `sft=${adapter}`, '--data', data, '--judge', judgeFile, '--max-new-tokens', '4', '--out', out];
    const t1 = performance.now();
    const r = await runCli(args, { timeoutMs: 110_000 });
    console.log(`eval: ${((performance.now() - t1) / 1000).toFixed(1)} s\n${r.stderr}\n${r.stdout}`);
    expect(r.code, r.stderr).toBe(0);

    const report = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8')) as EvalReport;
    expect(report.models).toEqual(['base', 'sft']);
    const base = report.results.base!.math!;
    const tuned = report.results.sft!.math!;
    expect(tuned.n).toBe(3);
    expect(tuned.correct, 'the adapter memorised the answers').toBe(3);
    expect(base.correct).toBeLessThan(tuned.correct);
    const pair = report.pairwise[0]!;
    expect(pair).toMatchObject({ a: 'base', b: 'sft' });
    expect(pair.math!.b_only).toBe(3 - base.correct);
    expect(pair.math!.significant).toBe(false);
    expect(pair.math!.mcnemar_p!).toBeGreaterThanOrEqual(0.05);
    // The judge saw both orders of every prompt and always preferred the adapter's right answer.
    expect(judge.requests).toHaveLength(6);
    expect(pair.judge).toMatchObject({ n: 3, wins: 3 - base.correct, inconsistent: 0 });
    expect(pair.judge!.significant).toBe(false);
    const md = await readFile(join(out, 'eval.md'), 'utf8');
    expect(md).toMatch(/not significant/);
    expect(r.stdout).toContain(md.trimEnd().split('\n')[0]!);
    // The set hashed before any answer; the prompts the adapter trained on flagged; progress on stderr.
    expect(report.eval_set.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.stderr).toContain(`sha256 ${report.eval_set.sha256}`);
    expect(report.eval_set.duplicates.map((d) => d.line)).toEqual([1, 2, 3]);
    expect(r.stderr).toMatch(/warning: 3 eval prompt\(s\) repeat training prompts/);
    expect(r.stderr).toMatch(/answers +6\/6 \(100%\)/);
    expect(r.stderr).toMatch(/results +9 computed, 0 reused/);

    // Again with --resume: nothing is generated or judged, the same report.
    const again = await runCli([...args, '--resume'], { timeoutMs: 90_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/results +0 computed, 9 reused/);
    expect(judge.requests).toHaveLength(6);
    expect(JSON.parse(await readFile(join(out, 'eval.json'), 'utf8'))).toEqual(report);

    // Without --resume the folder is not overwritten.
    const refused = await runCli(args, { timeoutMs: 60_000 });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already holds an evaluation: pass --resume to continue it, or choose another --out/);
  }, 240_000);

  it('--adapter repeats (NAME=DIR, or DIR named by its folder); "base" and a name given twice are refused', async () => {
    let values: Record<string, unknown> = {};
    const { program } = createProgram(async (_spec, parsed) => ((values = parsed.values), 0));
    await program.parseAsync(['eval', '--model', 'm', '--data', 'd.jsonl', '--out', 'o', '--adapter', 'sft=runs/a', '--adapter', 'runs/sft+dpo'], { from: 'user' });
    expect(values.adapter).toEqual(['sft=runs/a', 'runs/sft+dpo']);
    expect(parseAdapterFlags(values.adapter as string[])).toEqual([
      { name: 'sft', dir: 'runs/a' },
      { name: 'sft+dpo', dir: 'runs/sft+dpo' },
    ]);
    expect(() => parseAdapterFlags(['base=x'])).toThrow(/"base" names the model without an adapter; choose another name/);
    expect(() => parseAdapterFlags(['a=x', 'a=y'])).toThrow(/the name "a" is given twice/);
  });

    it('names the bad lines of EVAL.jsonl before loading the model', async () => {
    const data = join(root, 'bad.jsonl');
    await writeFile(data, ['{"prompt": "What is 1 + 1?", "domain": "math", "gold": "2"}', '{"prompt": "Which?", "choices": ["a"], "answer": 0}', 'not json'].join('\n'));
    const out = join(root, 'bad-out');
    const r = await runCli(['eval', '--model', join(root, 'no-such-model'), '--data', data, '--out', out], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.jsonl: 2 bad lines:\n {2}line 2: multiple-choice row: "choices" must list at least 2 options \(got 1\); write \{"prompt"/);
    expect(r.stderr).toMatch(/ {2}line 3: invalid JSON/);
    expect(existsSync(out)).toBe(false);
  }, 70_000);
});
