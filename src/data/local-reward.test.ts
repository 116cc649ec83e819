// The data pipeline with a local reward model (a *ForSequenceClassification run by the engine in
// this process): a tiny LlamaForSequenceClassification folder with the real Llama 3.2 tokenizer
// (test-reward-model.ts), loaded by the real loader onto Dawn, scoring the responses of two real
// local HTTP sources (test-fusion.ts). Rewards are checked against scoreRewards on the same texts
// and against the float64 reference; the run-fitted mapping and the DPO gap window in the run's
// reward spread against the old fixed mapping, whose [0, 1] window drops every pair.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { writeDemoModel } from '../model/demo-node';
import { createDecoderModel, type DecoderModel } from '../model/decoder';
import { loadModel, type LoadedModel } from '../model/load';
import { referenceReward } from '../model/reference';
import { scoreRewards } from '../model/reward';
import { localFolderSource } from '../model/source-node';
import { parseModelConfig } from '../model/config';
import { releaseWeights } from '../model/weights';
import { loadTokenizer, type LoadedTokenizer } from '../tokenizer';
import { buildDatasets, DEFAULT_CONSTRUCT_SETTINGS, DEFAULT_REWARD_GAP } from './construct';
import { engineRewardRunner, expectRewardConfig, rewardInputIds, REWARD_MODEL_EXAMPLE } from './local-reward';
import { runPipeline, type PipelineOptions } from './pipeline';
import { importPromptRows, promptMessages, type Prompt } from './prompts';
import type { ChatMessage } from './records';
import { normalizeReward, RewardBatcher, rewardStats, type JudgeSpec, type RewardModelRunner, type RewardNormalization } from './score';
import { makeSource } from './sources';
import { MemoryRunStore } from './store';
import { FIXTURE_PROMPTS, startFixtureServers, type FixtureServers } from './test-fusion';
import { writeTinyRewardModel, type TinyRewardModel } from './test-reward-model';

const DATE = '26 Jul 2024';
const FAST = { baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 5000, maxAttempts: 3 };

let dir = '';
let servers: FixtureServers;
let rm_: TinyRewardModel;
let loaded: LoadedModel;
let model: DecoderModel;
let tokenizer: LoadedTokenizer;
let prompts: Prompt[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-local-reward-'));
  servers = await startFixtureServers();
  // score.weight × 16: rewards several units apart, as a Skywork-Reward-V2 model's logits are.
  rm_ = await writeTinyRewardModel(join(dir, 'rm'), { scoreScale: 16 });
  const ctx = await testContext();
  loaded = await loadModel(ctx, localFolderSource(rm_.dir));
  model = createDecoderModel(ctx, loaded.weights);
  tokenizer = loadTokenizer({ ...loaded.tokenizerFiles!, name: rm_.dir });
  const imported = importPromptRows(FIXTURE_PROMPTS.filter((p) => p.domain === 'instruction'));
  expect(imported.errors).toEqual([]);
  prompts = imported.prompts;
});

afterAll(async () => {
  model?.release();
  if (loaded) releaseWeights(loaded.weights);
  await servers?.close();
  await rm(dir, { recursive: true, force: true });
});

const sources = () =>
  (['A', 'B'] as const).map((s) => makeSource({ id: s, name: `Source ${s}`, baseURL: servers.sources[s].baseURL, apiKey: '', model: `model-${s}`, seed: 0, n: 2, concurrency: 2, retry: FAST }));

/** The engine runner, recording the size of every call it gets. */
function countingRunner(calls: number[]): RewardModelRunner {
  const runner = engineRewardRunner({ model, tokenizer, description: rm_.dir }, { dateString: DATE });
  return {
    score(conversations, signal) {
      calls.push(conversations.length);
      return runner.score(conversations, signal);
    },
  };
}

const localJudge = (normalize: RewardNormalization): JudgeSpec => ({
  type: 'local-reward',
  localReward: { model: rm_.dir, normalize },
});

describe('a local reward model as the pipeline judge', () => {
  const store = new MemoryRunStore();
  const options = (judge: JudgeSpec, calls: number[]): PipelineOptions => ({
    prompts,
    sources: sources(),
    judge,
    rewardModel: countingRunner(calls),
    store,
    seed: 3,
    construct: { instructionSftFraction: 0 },
  });

  it('scores every response in batches; raw rewards equal scoreRewards (and the float64 reference) on the same texts; scores carry the run-fitted mapping; the default window keeps pairs', async () => {
    const calls: number[] = [];
    const res = await runPipeline(options(localJudge({ kind: 'run' }), calls));
    expect(res.cancelled).toBe(false);
    const responses = await store.list();
    expect(responses).toHaveLength(prompts.length * 2 * 2);
    // Batched: fewer engine calls than responses, each of several conversations.
    expect(calls.reduce((a, b) => a + b, 0)).toBe(responses.length);
    expect(Math.max(...calls)).toBeGreaterThan(1);

    // The same texts, through the same template and tokenizer, scored on their own.
    const byId = new Map(prompts.map((p) => [p.id, p]));
    const convs: ChatMessage[][] = responses.map((r) => [...promptMessages(byId.get(r.promptId)!), { role: 'assistant', content: r.content }]);
    const ids = convs.map((c) => rewardInputIds(tokenizer, c, { dateString: DATE }));
    expect(ids[0]![0]).toBe(128000); // BOS once, written by the template
    expect(ids[0]!.at(-1)).toBe(128009); // the answer's <|eot_id|>: the token the head reads
    const want = await scoreRewards(model, ids);
    const scores = new Map((await store.listScores()).map((s) => [s.key, s]));
    const raws = responses.map((r) => scores.get(r.key)!.judge!.raw!);
    expect(relError(raws, want)).toBeLessThan(1e-5);
    const ref = ids.map((x) => referenceReward(rm_.host, { batchSize: 1, seqLen: x.length, ids: x, mask: new Array<number>(x.length).fill(1) })[0]!);
    expect(relError(raws, ref)).toBeLessThan(1e-4);

    // Every score keeps its raw reward and the mapping to [0, 1]: a sigmoid on the run's median and spread.
    const stats = rewardStats(raws)!;
    expect(stats.std).toBeGreaterThan(1); // rewards several units apart
    const mapping = { kind: 'sigmoid', center: stats.median, scale: stats.std, fit: stats };
    for (const r of responses) {
      const s = scores.get(r.key)!;
      expect(s.judge).toMatchObject({ method: 'reward', model: rm_.dir, normalize: mapping });
      expect(s.score).toBe(normalizeReward(s.judge!.raw!, mapping as never));
    }
    expect(new Set(responses.map((r) => scores.get(r.key)!.score)).size).toBe(responses.length); // nothing collapses

    // DPO: the default window is [0.3, 3]×σ of the raw rewards, and it keeps pairs.
    const report = res.construct!.report;
    expect(report.gapWindows.instruction).toEqual({ min: 0.3, max: 3, unit: 'std', compares: 'raw', std: stats.std, bounds: { min: 0.3 * stats.std, max: 3 * stats.std } });
    expect(res.construct!.dpo.length).toBeGreaterThan(0);
    for (const row of res.construct!.dpo) {
      expect(row.gapUnit).toBe('raw');
      expect(row.gap).toBeCloseTo(row.chosen.raw! - row.rejected.raw!, 10);
      expect(row.gap!).toBeGreaterThanOrEqual(0.3 * stats.std - 1e-9);
      expect(row.gap!).toBeLessThanOrEqual(3 * stats.std + 1e-9);
    }
    expect(res.warnings.filter((w) => /gap window/.test(w))).toEqual([]);
    const reportJson = JSON.parse(store.artifacts.get('report.json')!);
    expect(reportJson.rewards).toMatchObject({ stats, normalize: mapping, gapWindows: { instruction: { unit: 'std' } } });
  });

  it("the old fixed mapping (raw clamped to [0, 1]) with the paper's [0.01, 0.1] window drops every pair, and the report names the window; nothing is scored again", async () => {
    const calls: number[] = [];
    const res = await runPipeline(options(localJudge({ kind: 'none' }), calls));
    expect(calls).toEqual([]); // the raw rewards stored are mapped again, not recomputed
    const scores = await store.listScores();
    expect(scores.every((s) => s.score === Math.min(1, Math.max(0, s.judge!.raw!)))).toBe(true);
    expect(res.construct!.report.gapWindows.instruction).toMatchObject({ min: 0.01, max: 0.1, unit: 'score', compares: 'score' });
    expect(res.construct!.dpo).toEqual([]);
    const c = res.construct!.report.counts;
    expect((c['dpo.dropped.gap_too_small'] ?? 0) + (c['dpo.dropped.gap_too_large'] ?? 0)).toBe(prompts.length);
    const warning = res.warnings.find((w) => w.startsWith('instruction: the DPO gap window'));
    expect(warning).toMatch(/^instruction: the DPO gap window \[0\.01, 0\.1\] in \[0, 1\] score units dropped all 8 same-source pair\(s\) it judged/);
    expect(JSON.parse(store.artifacts.get('report.json')!).warnings).toContain(warning);

    // The same stored rewards, built again with the default reward window: pairs come back.
    const back = buildDatasets({
      prompts,
      responses: responses(await store.list(), scores),
      settings: { ...DEFAULT_CONSTRUCT_SETTINGS, instructionSftFraction: 0, instructionGap: { ...DEFAULT_REWARD_GAP } },
    });
    expect(back.dpo.length).toBeGreaterThan(0);
    expect(back.report.warnings).toEqual([]);
  });

  it('refuses to run without the loaded model', async () => {
    await expect(runPipeline({ prompts, sources: sources(), judge: localJudge({ kind: 'run' }), store: new MemoryRunStore() })).rejects.toThrow(
      /the judge is the local reward model .* but it was not loaded/,
    );
  });
});

function responses(rs: Awaited<ReturnType<MemoryRunStore['list']>>, scores: Awaited<ReturnType<MemoryRunStore['listScores']>>) {
  const byKey = new Map(scores.map((s) => [s.key, s]));
  return rs.map((response) => ({ response, score: byKey.get(response.key) ?? null }));
}

describe('local reward models', () => {
  it('a causal LM is refused, naming a reward model to use instead', async () => {
    const lmDir = join(dir, 'lm');
    await writeDemoModel(lmDir, { tokenizer: false });
    const config = parseModelConfig(await localFolderSource(lmDir).json('config.json'));
    expect(() => expectRewardConfig(config, lmDir)).toThrow(
      `${lmDir} is a causal language model (LlamaForCausalLM), not a reward model: scoring needs a *ForSequenceClassification reward model, such as ${REWARD_MODEL_EXAMPLE}`,
    );
  });

  it('RewardBatcher: full batches at once, the rest after a pause, one call at a time; a failing conversation fails only itself; a cancelled request leaves', async () => {
    const calls: string[][] = [];
    let live = 0;
    let peak = 0;
    const runner: RewardModelRunner = {
      async score(convs) {
        live++;
        peak = Math.max(peak, live);
        calls.push(convs.map((c) => c[0]!.content));
        await new Promise((r) => setTimeout(r, 5));
        live--;
        if (convs.some((c) => c[0]!.content === 'bad')) throw new Error('too long');
        return convs.map((c) => c[0]!.content.length);
      },
    };
    const b = new RewardBatcher(runner, 3, 5);
    const conv = (t: string): ChatMessage[] => [{ role: 'assistant', content: t }];
    const got = await Promise.allSettled(['a', 'bb', 'ccc', 'dddd', 'bad'].map((t) => b.score(conv(t))));
    expect(got.map((g) => (g.status === 'fulfilled' ? g.value : (g.reason as Error).message))).toEqual([1, 2, 3, 4, 'too long']);
    expect(peak).toBe(1);
    // 3 at once, then the 2 left; the failing pair again one by one.
    expect(calls).toEqual([['a', 'bb', 'ccc'], ['dddd', 'bad'], ['dddd'], ['bad']]);

    const ctrl = new AbortController();
    const p = b.score(conv('x'), ctrl.signal);
    ctrl.abort();
    await expect(p).rejects.toThrow(/cancelled/);
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toHaveLength(4);
  });
});
