// The fusion data pipeline against real `fuse-studio serve` instances: two demo models (seeds 1
// and 2) as the sources, a third (seed 3) as the reward model through POST /pooling, all real
// HTTP servers on 127.0.0.1 backed by the engine (in-process; the demo command runs the same
// thing from the CLI, src/cli/demo.test.ts). The 128k-vocab demo models cost ~1 s a token on
// SwiftShader, so the run is small: one instruction, one math (gold answer) and one code (tests)
// prompt, two samples per source, two new tokens each.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelForCli, openModelSource, type OpenedModel } from '../cli/model';
import { tokenizeForScoring } from '../cli/records-tokens';
import type { ConstructReport } from '../data/construct';
import { ARTIFACTS, runPipeline, type PipelineResult } from '../data/pipeline';
import type { Prompt } from '../data/prompts';
import { NodeSandbox } from '../data/sandbox-node';
import { rewardScore, type JudgeSpec } from '../data/score';
import { makeSource, type Source } from '../data/sources';
import { JsonlRunStore } from '../data/store-jsonl';
import { responseKey, type ResponseRecord, type ScoreRecord } from '../data/types';
import { writeDemoModel } from '../model/demo-node';
import { scoreSequences } from '../model/score';
import { createModelBackend, startServer, type RunningServer } from './model-backend';
import { createOpenAIHandler, listenOpenAI, type HandlerRequest, type ListeningServer } from './openai-server';

const DATE = '26 Jul 2024';
const SAMPLES = 2;
const PROMPTS: Prompt[] = [
  { id: 'i1', domain: 'instruction', text: 'Write a haiku about the sea.' },
  { id: 'm1', domain: 'math', text: 'What is 17 + 25? Put the final answer in \\boxed{}.', gold: '42' },
  { id: 'c1', domain: 'code', text: 'Write a JavaScript function add(a, b).', tests: ['assert.strictEqual(add(2, 3), 5);'] },
];

let dir = '';
const servers: Record<'A' | 'B', RunningServer | null> = { A: null, B: null };
let judge: OpenedModel | null = null;
let judgeHttp: ListeningServer | null = null;
let judgeRoot = '';
const poolingCalls = { n: 0 };
const sandbox = new NodeSandbox();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-fusion-serve-'));
  await Promise.all([writeDemoModel(join(dir, 'a'), { seed: 1 }), writeDemoModel(join(dir, 'b'), { seed: 2 }), writeDemoModel(join(dir, 'judge'), { seed: 3 })]);
  servers.A = await startServer({ model: join(dir, 'a'), port: 0, modelName: 'demo-a', dateString: DATE });
  servers.B = await startServer({ model: join(dir, 'b'), port: 0, modelName: 'demo-b', dateString: DATE });
  // The reward model: the same backend as `serve`, on a model this test also scores with directly.
  judge = await loadModelForCli(await openModelSource(join(dir, 'judge')));
  const handler = createOpenAIHandler(createModelBackend(judge, { modelId: 'demo-reward', dateString: DATE }));
  judgeHttp = await listenOpenAI(
    (req: HandlerRequest) => {
      if (req.path.endsWith('/pooling')) poolingCalls.n++;
      return handler(req);
    },
    { host: '127.0.0.1', port: 0 },
  );
  judgeRoot = `http://127.0.0.1:${judgeHttp.port}`;
}, 300_000);

afterAll(async () => {
  await Promise.all([servers.A?.close(), servers.B?.close(), judgeHttp?.close(), sandbox.dispose()]);
  judge?.release();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const post = async (path: string, body: unknown) => {
  const r = await fetch(`${judgeRoot}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
};

describe('POST /pooling: the served model as a likelihood reward model', () => {
  it('returns the mean log-probability of the response tokens, as scoreSequences gives for the same tokens', async () => {
    const prompt = [{ role: 'user' as const, content: 'Name a colour.' }];
    const response = 'Blue, like the sky.';
    const r = await post('/pooling', { model: 'demo-reward', messages: [...prompt, { role: 'assistant', content: response }] });
    expect(r.status).toBe(200);
    const item = (r.json.data as { index: number; object: string; data: number[]; logprob_sum: number; n_tokens: number }[])[0]!;
    expect([r.json.object, r.json.model, item.index, item.object]).toEqual(['list', 'demo-reward', 0, 'pooling']);

    // The same split as a DPO record's chosen side (records-tokens.ts): prompt with the generation
    // prompt, labels on the completion's assistant tokens.
    const scored = tokenizeForScoring({ kind: 'dpo-messages', prompt, chosen: [{ role: 'assistant', content: response }], rejected: [{ role: 'assistant', content: 'x' }] }, judge!.tokenizer, { dateString: DATE });
    if (scored.kind !== 'dpo') throw new Error('expected a DPO item');
    const [ref] = await scoreSequences(judge!.model, [scored.chosen]);
    const responseTokens = judge!.tokenizer!.encode(response, { addSpecialTokens: false }).length;
    expect(ref!.nTokens).toBe(responseTokens + 1); // the content and the closing <|eot_id|>
    expect(item.n_tokens).toBe(ref!.nTokens);
    expect(item.logprob_sum).toBeCloseTo(ref!.logprobSum, 4);
    expect(item.data[0]).toBeCloseTo(ref!.logprobSum / ref!.nTokens, 6);
    expect(item.data[0]).toBeLessThan(0);
    expect(r.json.usage).toEqual({ prompt_tokens: scored.chosen.ids.length, completion_tokens: 0, total_tokens: scored.chosen.ids.length });

    // /v1/pooling is the same route; score.ts's rewardScore reads it with the default score path.
    const v1 = await post('/v1/pooling', { model: 'demo-reward', messages: [...prompt, { role: 'assistant', content: response }] });
    expect((v1.json.data as { data: number[] }[])[0]!.data[0]).toBe(item.data[0]);
    const rs = await rewardScore({ baseURL: judgeRoot, apiKey: '', model: 'demo-reward', scorePath: 'data.0.data.0', normalize: { kind: 'sigmoid', center: -12 } }, prompt, response);
    expect(rs.raw).toBe(item.data[0]);
    expect(rs.score).toBeCloseTo(1 / (1 + Math.exp(-(item.data[0]! + 12))), 12);
  }, 300_000);

  it('answers bad requests clearly', async () => {
    const noAnswer = await post('/pooling', { model: 'demo-reward', messages: [{ role: 'user', content: 'Hi' }] });
    expect(noAnswer.status).toBe(400);
    expect((noAnswer.json.error as { message: string }).message).toMatch(/last message must be the assistant response/);
    const wrongModel = await post('/pooling', { model: 'other', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] });
    expect(wrongModel.status).toBe(404);
    const input = await post('/pooling', { model: 'demo-reward', input: 'Hi' });
    expect([input.status, (input.json.error as { message: string }).message]).toEqual([400, expect.stringMatching(/only the chat form/)]);
    // `serve` (here a source) has the route too; it takes POST only.
    const get = await fetch(`${servers.A!.baseURL.replace(/\/v1$/, '')}/pooling`);
    expect(get.status).toBe(405);
  }, 60_000);
});

describe('the fusion pipeline over two serve instances and the /pooling reward model', () => {
  it('collects every (source, prompt, sample) once, scores each, builds well-formed sets; a resumed run asks nothing again', async () => {
    const source = (s: RunningServer): Source =>
      makeSource({ id: s.modelId, name: s.modelId, baseURL: s.baseURL, apiKey: '', model: s.modelId, temperature: 0.8, top_p: 0.95, max_tokens: 2, n: SAMPLES, concurrency: 2, seed: 0 });
    const sources = [source(servers.A!), source(servers.B!)];
    const judgeSpec: JudgeSpec = {
      type: 'reward',
      reward: { baseURL: judgeRoot, apiKey: '', model: 'demo-reward', scorePath: 'data.0.data.0', normalize: { kind: 'minmax', min: -17, max: -7 } },
      concurrency: 2,
    };
    const out = join(dir, 'run');
    const poolingBefore = poolingCalls.n;
    const runOnce = async (): Promise<PipelineResult> => {
      const store = await JsonlRunStore.open(out);
      try {
        return await runPipeline({ prompts: PROMPTS, sources, judge: judgeSpec, sandbox, store, seed: 0 });
      } finally {
        await store.close();
      }
    };
    const res = await runOnce();
    const nItems = PROMPTS.length * sources.length * SAMPLES;
    expect(res.cancelled).toBe(false);
    expect(res.warnings).toEqual([]);

    // Every item asked once, stored once.
    expect([servers.A!.stats().chat, servers.B!.stats().chat]).toEqual([PROMPTS.length * SAMPLES, PROMPTS.length * SAMPLES]);
    const readJsonl = async <T>(name: string): Promise<T[]> =>
      (await readFile(join(out, name), 'utf8'))
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as T);
    const responses = await readJsonl<ResponseRecord>(JsonlRunStore.RESPONSES);
    const want = sources.flatMap((s) => PROMPTS.flatMap((p) => Array.from({ length: SAMPLES }, (_, i) => responseKey(s.id, p.id, i))));
    expect(responses.map((r) => r.key).sort()).toEqual([...want].sort());
    for (const r of responses) {
      expect(r.servedModel, r.key).toBe(r.sourceId);
      expect(r.content.length, r.key).toBeGreaterThan(0);
      expect(r.usage?.completion_tokens, r.key).toBe(2);
    }
    expect(res.collect).toMatchObject({ collected: nItems, skipped: 0, failed: 0 });

    // A score for each, by the reward model (every domain here is judged), plus the verdicts.
    const scores = await readJsonl<ScoreRecord>(JsonlRunStore.SCORES);
    expect(scores.map((s) => s.key).sort()).toEqual([...want].sort());
    expect(poolingCalls.n - poolingBefore).toBe(nItems);
    for (const s of scores) {
      expect(s.error, s.key).toBeUndefined();
      expect(s.judge).toMatchObject({ method: 'reward', model: 'demo-reward' });
      expect(s.judge!.raw!, s.key).toBeLessThan(0);
      expect(s.score!, s.key).toBeCloseTo((s.judge!.raw! + 17) / 10, 12);
      if (s.domain === 'math') expect(typeof s.correct, s.key).toBe('boolean');
      if (s.domain === 'code') expect(typeof s.passed, s.key).toBe('boolean');
    }
    expect(res.score).toMatchObject({ total: nItems, done: nItems, scored: nItems, failed: 0, judgeCalls: nItems });

    // The report adds up: every prompt is kept or dropped (with a reason) on each side.
    const report = JSON.parse(await readFile(join(out, ARTIFACTS.report), 'utf8')) as { counts: Record<string, number>; construct: ConstructReport };
    const c = report.counts;
    expect(c.prompts).toBe(PROMPTS.length);
    expect(c.responses).toBe(nItems);
    const side = (k: 'sft' | 'dpo') => Object.entries(c).filter(([name]) => name.startsWith(`${k}.`)).reduce((sum, [, n]) => sum + n, 0);
    expect(side('sft')).toBe(PROMPTS.length);
    expect(side('dpo')).toBe(PROMPTS.length);
    for (const p of report.construct.prompts) {
      expect(p.responses, p.promptId).toBe(sources.length * SAMPLES);
      expect(p.sft.kept || p.sft.reason !== undefined, p.promptId).toBe(true);
      expect(p.dpo.kept || p.dpo.reason !== undefined, p.promptId).toBe(true);
    }

    // Whatever rows exist are well-formed and come from the right responses.
    const byKey = new Map(responses.map((r) => [r.key, r]));
    const scoreOf = new Map(scores.map((s) => [s.key, s]));
    const promptById = new Map(PROMPTS.map((p) => [p.id, p]));
    const sft = await readJsonl<{ messages: { role: string; content: string }[] }>(ARTIFACTS.sft);
    const sftKept = report.construct.prompts.filter((p) => p.sft.kept);
    expect(sft).toHaveLength(c['sft.kept'] ?? 0);
    expect(sft).toHaveLength(sftKept.length);
    sftKept.forEach((p, i) => {
      const r = byKey.get(p.sft.responseId!)!;
      expect(r.promptId).toBe(p.promptId);
      expect(sft[i]!.messages).toEqual([
        { role: 'user', content: promptById.get(p.promptId)!.text },
        { role: 'assistant', content: r.content },
      ]);
      if (p.domain === 'math') expect(scoreOf.get(r.key)!.correct).toBe(true);
      if (p.domain === 'code') expect(scoreOf.get(r.key)!.passed).toBe(true);
    });
    const dpo = await readJsonl<{ prompt: { role: string; content: string }[]; chosen: { role: string; content: string }[]; rejected: { role: string; content: string }[] }>(ARTIFACTS.dpo);
    const dpoKept = report.construct.prompts.filter((p) => p.dpo.kept);
    expect(dpo).toHaveLength(c['dpo.kept'] ?? 0);
    expect(dpo).toHaveLength(dpoKept.length);
    dpoKept.forEach((p, i) => {
      const chosen = byKey.get(p.dpo.chosenId!)!;
      const rejected = byKey.get(p.dpo.rejectedId!)!;
      // The same source model wrote both sides, for this prompt; chosen scored at least as high.
      expect([chosen.sourceId, rejected.sourceId]).toEqual([p.dpo.sourceId, p.dpo.sourceId]);
      expect([chosen.promptId, rejected.promptId]).toEqual([p.promptId, p.promptId]);
      expect(chosen.key).not.toBe(rejected.key);
      expect(scoreOf.get(chosen.key)!.score!).toBeGreaterThanOrEqual(scoreOf.get(rejected.key)!.score!);
      expect(dpo[i]).toEqual({
        prompt: [{ role: 'user', content: promptById.get(p.promptId)!.text }],
        chosen: [{ role: 'assistant', content: chosen.content }],
        rejected: [{ role: 'assistant', content: rejected.content }],
      });
    });
    const fusechatDpo = await readJsonl<{ source_model: string }>(ARTIFACTS.fusechatDpo);
    expect(fusechatDpo.map((r) => r.source_model)).toEqual(dpoKept.map((p) => p.dpo.sourceId));

    // Resumed over the same folder: nothing is asked or scored again, the same sets come out.
    const chatBefore = [servers.A!.stats().chat, servers.B!.stats().chat];
    const poolingAfterFirst = poolingCalls.n;
    const again = await runOnce();
    expect([servers.A!.stats().chat, servers.B!.stats().chat]).toEqual(chatBefore);
    expect(poolingCalls.n).toBe(poolingAfterFirst);
    expect(again.collect).toMatchObject({ collected: 0, skipped: nItems, failed: 0 });
    expect(again.score).toMatchObject({ skipped: nItems, scored: 0, judgeCalls: 0 });
    expect(again.construct!.report.counts).toEqual(c);
    expect(await readJsonl(ARTIFACTS.sft)).toEqual(sft);
    expect(await readJsonl(ARTIFACTS.dpo)).toEqual(dpo);
  }, 600_000);
});
