// runEvaluation through its real parts: a tiny random model over the byte tokenizer (testing/
// byte-tokenizer.ts) on SwiftShader, a base and a random LoRA adapter, every row kind, code run in
// the Node sandbox, and a chat judge behind a real HTTP server (data/test-server.ts) that always
// prefers the answer shown first. A run stopped midway resumes over its store without generating,
// scoring or judging anything twice (counted from the store's rows, the progress events and the
// judge server's requests).
import { mkdtemp, rm as rm_ } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineRewardRunner } from '../data/local-reward';
import { writeTinyRewardModel } from '../data/test-reward-model';
import { createDecoderModel } from '../model/decoder';
import { loadModel } from '../model/load';
import { localFolderSource } from '../model/source-node';
import { releaseWeights } from '../model/weights';
import { parseJudgeConfig } from '../data/pipeline-config';
import { NodeSandbox } from '../data/sandbox-node';
import { chatCompletion, lastUser, startMockServer, type MockServer } from '../data/test-server';
import { testContext } from '../engine/testing/gpu';
import type { GpuContext } from '../gpu/context';
import { createLoraAdapters, type LoraAdapters } from '../model/lora';
import { randomHostLora, setHostLora } from '../model/random';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer';
import { randomModel, type TestModel } from '../train/testing/fixtures';
import { parseEvalItems, type EvalItemSet, type PromptItem } from './items';
import { runEvaluation, type EvalProgress, type RunEvaluationOptions } from './run';
import { MemoryEvalStore, type AnswerResult, type JudgeResult } from './store';
import { BYTE_VOCAB, byteTokenizerFiles } from './testing/byte-tokenizer';

const EVAL = [
  { prompt: 'What is 2 + 3?', domain: 'math', gold: '5' },
  { prompt: 'What is 4 + 4?', domain: 'math', gold: '8' },
  { prompt: 'Say hi.' },
  { prompt: 'Name a colour.' },
  { prompt: 'Write add(a, b).', domain: 'code', tests: ['assert.strictEqual(add(1, 2), 3);'] },
  { messages: [{ role: 'user', content: 'Hi?' }, { role: 'assistant', content: 'Hello.' }] },
  { prompt: 'Pick one.', chosen: 'Yes.', rejected: 'No!' },
  { prompt: 'Which is larger?', choices: ['one', 'two', 'ten'], answer: 2 },
]
  .map((r) => JSON.stringify(r))
  .join('\n');

let ctx: GpuContext;
let m: TestModel;
let tok: LoadedTokenizer;
let lora: LoraAdapters;
let items: EvalItemSet;
let judge: MockServer;
const sandbox = new NodeSandbox();

beforeAll(async () => {
  ctx = await testContext();
  m = randomModel(ctx, { hiddenSize: 32, intermediateSize: 56, numHeads: 4, numKvHeads: 2, vocabSize: BYTE_VOCAB, tieWordEmbeddings: true, llama3Rope: true }, 11);
  const f = byteTokenizerFiles();
  tok = loadTokenizer({ tokenizerJson: f.tokenizerJson, tokenizerConfig: f.tokenizerConfig });
  lora = createLoraAdapters(ctx, m.config, { rank: 4, alpha: 8 }, { trainable: false });
  setHostLora(ctx, lora, randomHostLora(m.config, { rank: 4, alpha: 8 }, 3, 1));
  items = await parseEvalItems(EVAL);
  // A judge with a position bias: whatever it is shown first wins.
  judge = await startMockServer(() => ({ kind: 'json', body: chatCompletion('Assistant A is better.\n[[A]]') }));
});
afterAll(async () => {
  await judge?.close();
  await sandbox.dispose();
  lora?.release();
  m?.release();
});

function options(store: MemoryEvalStore, extra: Partial<RunEvaluationOptions> = {}): RunEvaluationOptions {
  return {
    model: m.model,
    tokenizer: tok,
    models: [
      { name: 'base', lora: null },
      { name: 'tuned', lora, id: 'random-lora-3' },
    ],
    items,
    decoding: { maxNewTokens: 6 },
    judge: parseJudgeConfig({ baseURL: judge.baseURL, model: 'judge', concurrency: 2 }, { file: 'judge.json' }).spec,
    sandbox,
    store,
    batchSize: 2,
    ...extra,
  };
}

const count = (store: MemoryEvalStore, kind: string) => [...store.results.values()].filter((r) => r.kind === kind).length;

describe('runEvaluation', () => {
  it('measures every row kind, judges both orders, and a stopped run resumes without redoing any item', async () => {
    const store = new MemoryEvalStore();
    // Run 1: stopped once 3 of the 10 answers (5 prompt rows × 2 models) are stored.
    const ac = new AbortController();
    const first = await runEvaluation(
      options(store, {
        signal: ac.signal,
        onProgress: (p) => p.phase === 'answers' && p.done >= 3 && ac.abort(),
      }),
    );
    expect(first.cancelled).toBe(true);
    expect(first.report).toBeNull();
    const answered1 = count(store, 'answer');
    expect(answered1).toBeGreaterThanOrEqual(3);
    expect(answered1).toBeLessThan(10);
    // Likelihood rows (SFT, DPO, choice) × 2 models were done first.
    expect(count(store, 'sft') + count(store, 'dpo') + count(store, 'choice')).toBe(6);
    expect(count(store, 'judge')).toBe(0);
    expect(judge.requests).toHaveLength(0);

    // Run 2 over the same store: only the rest.
    const events: EvalProgress[] = [];
    const second = await runEvaluation(options(store, { onProgress: (p) => events.push(p) }));
    expect(second.cancelled).toBe(false);
    expect(second.reused).toBe(6 + answered1);
    // The answers still missing, then 5 judged prompts: nothing stored was done again.
    expect(second.computed).toBe(10 - answered1 + 5);
    expect(count(store, 'answer')).toBe(10);
    expect(events.find((e) => e.phase === 'answers')).toMatchObject({ done: answered1, total: 10 });
    expect(events.find((e) => e.phase === 'likelihood')).toMatchObject({ done: 6, total: 6 });
    const lastAnswers = events.filter((e) => e.phase === 'answers').at(-1)!;
    expect(lastAnswers).toMatchObject({ done: 10, total: 10, etaSeconds: 0 });

    // The judge saw each prompt twice, once in each order (the answers swapped).
    expect(judge.requests).toHaveLength(10);
    const answer = (model: string, line: number) => (store.results.get(`answer\u0000${model}\u0000${items.items[line - 1]!.id}`) as AnswerResult).text;
    const prompts = items.items.filter((i) => i.kind === 'prompt');
    // The adapter changes the answers, so the two orders are told apart below.
    expect(prompts.some((it) => answer('base', it.line) !== answer('tuned', it.line))).toBe(true);
    const shownAs = (u: string) => /\[The Start of Assistant A's Answer\]\n([\s\S]*)\n\[The End of Assistant A's Answer\][\s\S]*\[The Start of Assistant B's Answer\]\n([\s\S]*)\n\[The End of Assistant B's Answer\]/.exec(u)!.slice(1, 3);
    for (const it of prompts) {
      const asked = judge.requests.map(lastUser).filter((u) => u.includes(`[User Question]\n${it.prompt.text}\n`));
      expect(asked.map(shownAs)).toEqual([
        [answer('base', it.line), answer('tuned', it.line)],
        [answer('tuned', it.line), answer('base', it.line)],
      ]);
    }
    const verdicts = [...store.results.values()].filter((r): r is JudgeResult => r.kind === 'judge');
    expect(verdicts).toHaveLength(5);
    for (const v of verdicts) expect(v).toMatchObject({ a: 'base', b: 'tuned', outcome: 'tie', inconsistent: true });

    // The report: every block, the position bias exposed.
    const r = second.report!;
    expect(r.models).toEqual(['base', 'tuned']);
    expect(r.eval_set.sha256).toBe(items.hash);
    for (const name of ['base', 'tuned']) {
      const res = r.results[name]!;
      expect(res.math!.n).toBe(2);
      expect(res.code!.n).toBe(1);
      expect(res.sft_loss!.n).toBe(1);
      expect(res.sft_loss!.mean!).toBeGreaterThan(0);
      expect(res.pref_accuracy!.n).toBe(1);
      expect(res.choice_accuracy!.n).toBe(1);
      expect(res.mean_length!).toBeGreaterThan(0);
    }
    const pair = r.pairwise[0]!;
    expect(pair.judge).toMatchObject({ n: 5, wins: 0, losses: 0, ties: 5, win_rate: 0.5, inconsistent: 1 });
    // Random weights answer no math right and no code: nothing to tell apart.
    expect(pair.math!.significant).toBe(false);
    expect(second.markdown).toMatch(/not significant/);

    // Run 3: everything is stored; nothing is generated, scored or judged, the same report.
    const rows = store.results.size;
    const third = await runEvaluation(options(store));
    expect(third.computed).toBe(0);
    expect(store.results.size).toBe(rows);
    expect(judge.requests).toHaveLength(10);
    expect(third.report).toEqual(second.report);
  });

  it('a reward-model judge prefers the higher reward (HTTP, then local); another judge judges again without regenerating', async () => {
    const store = new MemoryEvalStore();
    await runEvaluation(options(store, { judge: undefined }));
    expect(count(store, 'answer')).toBe(10);
    const answer = (model: string, id: string) => (store.results.get(`answer\u0000${model}\u0000${id}`) as AnswerResult).text;
    const judged = () => [...store.results.values()].filter((r): r is JudgeResult => r.kind === 'judge');

    // A reward model behind HTTP (vLLM's /pooling shape) whose reward is the answer's length.
    const pooling = await startMockServer((req) => {
      const messages = req.body!.messages as { role: string; content: string }[];
      return { kind: 'json', body: { data: [{ data: [messages.at(-1)!.content.length] }] } };
    });
    try {
      const spec = parseJudgeConfig({ type: 'reward', baseURL: pooling.baseURL, model: 'length' }, { file: 'judge.json' }).spec;
      const r = await runEvaluation(options(store, { judge: spec }));
      expect(r.computed).toBe(5);
      expect(pooling.requests).toHaveLength(10);
      expect(pooling.requests.every((q) => q.path === '/v1/pooling')).toBe(true);
      for (const v of judged()) {
        const [la, lb] = [answer('base', v.itemId).length, answer('tuned', v.itemId).length];
        expect(v.rewards).toEqual({ a: la, b: lb });
        expect(v.outcome).toBe(lb > la ? 'b' : la > lb ? 'a' : 'tie');
      }
      expect(r.report!.pairwise[0]!.judge!.n).toBe(5);
    } finally {
      await pooling.close();
    }

    // A local reward model run by the engine (a tiny LlamaForSequenceClassification).
    const rm = await writeTinyRewardModel(await mkdtemp(join(tmpdir(), 'eval-rm-')), { scoreScale: 16 });
    const loaded = await loadModel(ctx, localFolderSource(rm.dir));
    const rmModel = createDecoderModel(ctx, loaded.weights);
    try {
      const runner = engineRewardRunner({ model: rmModel, tokenizer: loadTokenizer({ ...loaded.tokenizerFiles!, name: rm.dir }), description: rm.dir }, { dateString: '26 Jul 2024' });
      const spec = parseJudgeConfig({ type: 'local-reward', model: rm.dir }, { file: 'judge.json' }).spec;
      const r = await runEvaluation(options(store, { judge: spec, rewardModel: runner }));
      expect(r.computed).toBe(5);
      // The stored answers and likelihoods (10 + 6) are used; the other judge's 5 verdicts are not.
      expect(r.reused).toBe(16);
      for (const v of judged()) {
        expect(v.judge).toBe(`local-reward:${rm.dir}`);
        const prompt = (items.items.find((i) => i.id === v.itemId) as PromptItem).prompt.text;
        const [ra, rb] = await runner.score(
          ['base', 'tuned'].map((m) => [
            { role: 'user', content: prompt },
            { role: 'assistant', content: answer(m, v.itemId) },
          ]),
        );
        expect(v.rewards!.a).toBeCloseTo(ra!, 3);
        expect(v.rewards!.b).toBeCloseTo(rb!, 3);
        expect(v.outcome).toBe(v.rewards!.b > v.rewards!.a ? 'b' : v.rewards!.a > v.rewards!.b ? 'a' : 'tie');
      }
      // Without a judge, the stored verdicts stay out of the report.
      const plain = await runEvaluation(options(store, { judge: undefined }));
      expect(plain.computed).toBe(0);
      expect(plain.report!.pairwise[0]!.judge).toBeUndefined();
      expect(plain.report!.pairwise[0]!.math).toBeDefined();
    } finally {
      rmModel.release();
      releaseWeights(loaded.weights);
      await rm_(rm.dir, { recursive: true, force: true });
    }
  });

  it('a store made with other settings is refused, naming the difference', async () => {
    const store = new MemoryEvalStore();
    await store.writeRun({ itemsHash: items.hash, decoding: { maxNewTokens: 99, temperature: 0, seed: 0, template: 'chat' }, models: [] });
    await expect(runEvaluation(options(store, { judge: undefined }))).rejects.toThrow(/decoded with .*"maxNewTokens":99.*this run asks for .*"maxNewTokens":6/);
    const other = new MemoryEvalStore();
    await other.writeRun({ itemsHash: items.hash, decoding: { template: 'chat', maxNewTokens: 6, temperature: 0, seed: 0, dateString: '26 Jul 2024' }, models: [{ name: 'tuned', id: 'another-adapter' }] });
    await expect(runEvaluation(options(other, { judge: undefined }))).rejects.toThrow(/model "tuned" was another-adapter in the stored evaluation and is random-lora-3 now/);
    expect(other.results.size).toBe(0);
    // Every item is tokenized and checked against the model before anything runs.
    const fresh = new MemoryEvalStore();
    await expect(runEvaluation(options(fresh, { judge: undefined, decoding: { maxNewTokens: 1_000_000 } }))).rejects.toThrow(
      /^line 1: the prompt is \d+ tokens, and with 1000000 new tokens exceeds the model's context of \d+: shorten it, or lower the token limit$/,
    );
    expect(fresh.meta).toBeNull();
  });

  it('flags eval prompts that repeat training prompts, before anything is generated', async () => {
    const store = new MemoryEvalStore();
    const ac = new AbortController();
    ac.abort();
    const r = await runEvaluation(options(store, { signal: ac.signal, trainingPrompts: [{ text: 'say HI.' }] }));
    expect(r.cancelled).toBe(true);
    expect(r.flagged.map((f) => f.line)).toEqual([3]);
    expect(r.warnings.join('\n')).toMatch(/1 eval prompt\(s\) repeat training prompts \(lines 3\)/);
    expect(store.results.size).toBe(0);
  });
});
