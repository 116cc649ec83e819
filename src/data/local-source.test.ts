// Local sources in runCollection, in this process, on Dawn (SwiftShader without a GPU), through the
// Node host's runner: tiny generated Llama- and Qwen3-architecture demo models with their real
// tokenizers and chat templates. Few prompts and tokens: the 128k/152k vocabularies cost ~0.2 s a
// sampled token on SwiftShader.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeLocalRunner } from '../cli/local-runner';
import { FAMILIES } from '../model/families';
import { writeDemoModel } from '../model/demo-node';
import { generate } from '../model/generate';
import { planCollection, runCollection, type CollectPrompt, type CollectResult, type SourceProgress } from './collect';
import { makeLocalSource, type LocalModelRunner, type LocalSource } from './local-source';
import { parseSourcesConfig } from './pipeline-config';
import { promptMessages } from './prompts';
import { IDBKeyRange, indexedDB } from 'fake-indexeddb';
import { MemoryRunStore } from './store';
import { CollectDB, DexieRunStore } from './store-dexie';
import { startMockServer, chatCompletion, lastUser, type MockServer } from './test-server';
import { writeTinyRewardModel } from './test-reward-model';

const DATE = '26 Jul 2024';
let dir = '';
const models = { llama: '', qwen3: '', reward: '' };
let runner: NodeLocalRunner;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-local-source-'));
  models.llama = join(dir, 'llama');
  models.qwen3 = join(dir, 'qwen3');
  models.reward = join(dir, 'reward');
  await writeDemoModel(models.llama, { seed: 1 });
  await writeDemoModel(models.qwen3, { family: 'qwen3', seed: 2 });
  await writeTinyRewardModel(models.reward);
  runner = new NodeLocalRunner();
});
afterAll(async () => {
  await runner?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const PROMPTS: CollectPrompt[] = [
  { id: 'a', text: 'Write a haiku about the sea.', domain: 'instruction' },
  { id: 'b', text: 'What is 17 + 25?', system: 'You are terse.', domain: 'math' },
  { id: 'c', text: 'Name a colour.', domain: 'instruction' },
];

const local = (init: Partial<LocalSource> & { model: string }) => makeLocalSource({ max_tokens: 3, n: 2, seed: 7, ...init });

/** Collects with the shared runner; progress events kept. */
async function collect(sources: Parameters<typeof runCollection>[0]['sources'], store: MemoryRunStore, r: LocalModelRunner = runner, prompts = PROMPTS, maxRows?: number) {
  const events: SourceProgress[][] = [];
  const res = await runCollection({ sources, prompts, store, local: { runner: r, dateString: DATE, ...(maxRows ? { maxRows } : {}) }, onProgress: (p) => events.push(p) });
  return { res, events };
}

const bySource = (res: CollectResult, id: string) => res.sources.find((s) => s.sourceId === id)!;

describe('local sources', () => {
  it('batched collection equals each item generated alone with its seed (Llama, Qwen3 with its repetition penalty); the pool returns to its baseline after each model; a resumed run generates only what is missing, the same', async () => {
    const sources = [local({ id: 'llama', model: models.llama }), local({ id: 'qwen', model: models.qwen3, n: 3 })];
    const store = new MemoryRunStore();
    // At most 4 rows together: Llama's 6 rows in batches of 2 prompts × 2, Qwen's 9 in 3 of 1 × 3.
    const { res, events } = await collect(sources, store, runner, PROMPTS, 4);
    expect(res).toMatchObject({ cancelled: false, collected: 3 * 2 + 3 * 3, failed: 0, pending: 0, skippedSources: [] });
    const ctx = await runner.context();
    for (const id of ['llama', 'qwen']) {
      const p = bySource(res, id).local!;
      expect(p.state).toBe('done');
      expect(p.generated).toBe(id === 'llama' ? 6 : 9);
      expect(p.tokens).toBe([...store.responses.values()].filter((r) => r.sourceId === id).reduce((a, r) => a + r.usage!.completion_tokens, 0));
      expect(p.tokensPerSecond).toBeGreaterThan(0);
      // Loaded, the pool held the weights; released and trimmed, exactly what it held before.
      expect(p.gpu!.loadedBytes).toBeGreaterThan(p.gpu!.baselineBytes + 10_000_000);
      expect(p.gpu!.afterBytes).toBe(p.gpu!.baselineBytes);
      expect(p.batchSize).toBe(id === 'llama' ? 4 : 3);
    }
    expect(ctx.pool.stats().liveBytes).toBe(0);
    // One model at a time: the Qwen source waited while the Llama one generated.
    expect(events.some((e) => e[0]!.local!.state === 'generating' && e[1]!.local!.state === 'waiting')).toBe(true);
    expect(events.some((e) => e[0]!.local!.state === 'generating' && e[1]!.local!.state !== 'waiting')).toBe(false);
    expect(bySource(res, 'qwen').local!.sampling).toEqual({ temperature: 0.7, top_p: 0.8, repetition_penalty: 1.05 });
    expect(bySource(res, 'llama').local!.sampling).toEqual({ temperature: 0.8, top_p: 0.95, repetition_penalty: 1 });

    // Each item alone: generate() with seed + sampleIndex gives the same tokens.
    for (const [id, spec] of [['llama', models.llama], ['qwen', models.qwen3]] as const) {
      const info = await runner.inspect(spec);
      const m = await runner.load(spec);
      try {
        const tok = info.tokenizer!;
        const preset = FAMILIES[info.config.family].sampling;
        for (const rec of [...store.responses.values()].filter((r) => r.sourceId === id)) {
          const prompt = PROMPTS.find((p) => p.id === rec.promptId)!;
          const promptIds = tok.encodeChat(promptMessages(prompt).map((t) => ({ ...t })), { addGenerationPrompt: true, dateString: DATE }).ids;
          const alone = await generate(m.model, {
            promptIds,
            maxNewTokens: 3,
            sampling: { temperature: preset.temperature, topP: preset.topP, repetitionPenalty: preset.repetitionPenalty ?? 1, seed: 7 + rec.sampleIndex },
            eosTokenIds: [...new Set([...tok.eosTokenIds, ...info.config.eosTokenIds])],
          });
          expect(rec.content, rec.key).toBe(tok.decode(alone.ids, { skipSpecialTokens: true }));
          expect(rec.usage).toEqual({ prompt_tokens: promptIds.length, completion_tokens: alone.ids.length, total_tokens: promptIds.length + alone.ids.length });
          expect(rec.params).toMatchObject({ seed: 7 + rec.sampleIndex, max_tokens: 3, temperature: preset.temperature });
          expect(rec.servedModel).toBe(spec);
        }
      } finally {
        m.release();
        ctx.pool.trim();
      }
    }

    // Resume: forget some items (a whole prompt's, and the middle sample of another's); only they
    // are generated again, and they come out as before.
    const before = new Map([...store.responses].map(([k, r]) => [k, r.content]));
    const forget = [...store.responses.values()].filter((r) => (r.sourceId === 'qwen' && r.promptId === 'b' && r.sampleIndex === 1) || (r.sourceId === 'llama' && r.promptId === 'c'));
    expect(forget).toHaveLength(3);
    for (const r of forget) store.responses.delete(r.key);
    const again = await collect(sources, store);
    expect(again.res).toMatchObject({ collected: 3, skipped: 12, pending: 0 });
    expect(bySource(again.res, 'llama').local!.generated).toBe(2);
    expect(bySource(again.res, 'qwen').local!.generated).toBe(1);
    for (const [k, content] of before) expect(store.responses.get(k)?.content, k).toBe(content);
    // A source with nothing pending loads nothing.
    const none = await collect(sources, store);
    expect(none.res.collected).toBe(0);
    expect(bySource(none.res, 'llama').local).toMatchObject({ state: 'done', generated: 0 });
    expect(bySource(none.res, 'llama').local!.gpu).toBeUndefined();
  });

  it('skips, with the reason, a model that does not fit this device or is not a causal LM, and still collects the others, remote ones beside', async () => {
    const remote: MockServer = await startMockServer((req) => ({ kind: 'json', body: chatCompletion(`remote says ${lastUser(req)}`) }));
    try {
      // A runner that knows the device has 4 MiB: the Llama demo's 16 MiB of embedding cannot fit.
      const small: LocalModelRunner = { ...runner, context: () => runner.context(), inspect: (s, o) => runner.inspect(s, o), load: (s, o) => runner.load(s, o), memoryBytes: () => 4 * 1024 * 1024 };
      const sources = [
        local({ id: 'big', model: models.llama }),
        local({ id: 'rm', model: models.reward }),
        local({ id: 'gone', model: join(dir, 'nothing-here') }),
        ...parseSourcesConfig([{ name: 'remote', baseURL: remote.baseURL, model: 'm', n: 1 }], { file: 'sources.json' }),
      ];
      const store = new MemoryRunStore();
      const { res } = await collect(sources, store, small, PROMPTS.slice(0, 2));
      expect(res.collected).toBe(2);
      expect(res.pending).toBe(3 * 2 * 2);
      expect(res.cancelled).toBe(false);
      expect(res.skippedSources.map((s) => s.sourceId)).toEqual(['big', 'rm', 'gone']);
      const why = Object.fromEntries(res.skippedSources.map((s) => [s.sourceId, s.reason]));
      expect(why.big).toMatch(new RegExp(`^${models.llama} does not fit this device: generation of one row \\(\\d+ prompt \\+ 3 new tokens\\) needs [\\d.]+ MiB, more than the 4.00 MiB available`));
      expect(why.rm).toBe(`${models.reward} is a reward model (LlamaForSequenceClassification), not a causal language model (LlamaForCausalLM): a source generates answers`);
      expect(why.gone).toMatch(/could not be opened: .*nothing-here/);
      expect(bySource(res, 'big').etaSeconds).toBeNull();
      expect([...store.responses.values()].map((r) => r.content).sort()).toEqual(['remote says What is 17 + 25?', 'remote says Write a haiku about the sea.']);
      expect((await runner.context()).pool.stats().liveBytes).toBe(0);
    } finally {
      await remote.close();
    }
  });

  it('takes n per domain; a prompt too long for the model is an error record, not a crash', async () => {
    const prompts: CollectPrompt[] = [...PROMPTS, { id: 'long', text: 'word '.repeat(200), domain: 'code' }];
    const source = local({ id: 'q', model: models.qwen3, n: 1, nByDomain: { math: 2, code: 1 }, max_tokens: 2 });
    expect(planCollection([source], prompts).map((i) => `${i.prompt.id}${i.sampleIndex}`)).toEqual(['a0', 'b0', 'b1', 'c0', 'long0']);
    const store = new MemoryRunStore();
    // max_position_embeddings cut to 64 tokens: the long prompt cannot fit.
    const short: LocalModelRunner = {
      ...runner,
      context: () => runner.context(),
      memoryBytes: () => null,
      load: (s, o) => runner.load(s, o),
      inspect: async (s, o) => {
        const info = await runner.inspect(s, o);
        return { ...info, config: { ...info.config, maxPositionEmbeddings: 64 } };
      },
    };
    const { res } = await collect([source], store, short, prompts);
    expect(res).toMatchObject({ collected: 4, failed: 1, pending: 0 });
    const [err] = await store.listErrors();
    expect(err).toMatchObject({ promptId: 'long', kind: 'config' });
    expect(err!.message).toMatch(/^the prompt is \d+ tokens; with max_tokens 2 that exceeds the model's max_position_embeddings 64$/);
  });

  it('into the studio\'s IndexedDB store: cancelled after the first stored item (a reload), the model released; the next run generates only the rest', async () => {
    const db = new CollectDB(`local-${Math.random()}`, { indexedDB, IDBKeyRange });
    const store = new DexieRunStore('run', db);
    const source = local({ id: 'llama', model: models.llama, n: 2, max_tokens: 2 });
    const ctrl = new AbortController();
    const first = await runCollection({
      sources: [source],
      prompts: PROMPTS,
      store,
      signal: ctrl.signal,
      // One row a batch, so the cancel lands between items.
      local: { runner, dateString: DATE, maxRows: 1 },
      onProgress: (p) => {
        if (p[0]!.collected >= 1) ctrl.abort();
      },
    });
    expect(first.cancelled).toBe(true);
    expect(first.sources[0]!.local!.state).toBe('cancelled');
    expect(first.collected).toBeGreaterThanOrEqual(1);
    expect(first.pending).toBe(6 - first.collected);
    expect(first.sources[0]!.local!.gpu!.afterBytes).toBe(first.sources[0]!.local!.gpu!.baselineBytes);
    expect((await runner.context()).pool.stats().liveBytes).toBe(0);
    const second = await runCollection({ sources: [source], prompts: PROMPTS, store: new DexieRunStore('run', db), local: { runner, dateString: DATE } });
    expect(second).toMatchObject({ cancelled: false, collected: 6 - first.collected, skipped: first.collected, pending: 0 });
    expect(second.sources[0]!.local!.generated).toBe(6 - first.collected);
    expect(await store.list()).toHaveLength(6);
    db.close();
  });

  it('sources.json: local entries beside remote ones, n per domain, sampling left to the family, errors naming the field', () => {
    const list = parseSourcesConfig(
      [
        { name: 'qwen', local: true, model: 'qwen2.5-0.5b', n: { instruction: 4, code: 0 }, max_tokens: 256 },
        { name: 'smol', local: true, model: './models/smol', temperature: 0.5, repetition_penalty: 1.1, seed: 3 },
        { name: 'remote', baseURL: 'http://127.0.0.1:8000/v1', model: 'm', n: { math: 2 } },
      ],
      { file: 'sources.json' },
    );
    expect(list[0]).toEqual({ local: true, id: 'qwen', name: 'qwen', model: 'qwen2.5-0.5b', max_tokens: 256, n: 5, nByDomain: { instruction: 4, code: 0 } });
    expect(list[1]).toEqual({ local: true, id: 'smol', name: 'smol', model: './models/smol', max_tokens: 2048, n: 5, temperature: 0.5, repetition_penalty: 1.1, seed: 3 });
    expect(list[2]).toMatchObject({ id: 'remote', n: 5, nByDomain: { math: 2 } });
    const err = (v: unknown) => {
      try {
        parseSourcesConfig(v, { file: 'sources.json' });
      } catch (x) {
        return (x as Error).message;
      }
      throw new Error('no error');
    };
    const ok = { name: 'a', local: true, model: 'm' };
    expect(err([{ name: 'r', baseURL: 'http://h/v1', model: 'm' }, { ...ok, baseURL: 'http://h/v1' }])).toMatch(/^sources\.json: \[1\]: .*baseURL/);
    expect(err([{ ...ok, local: false }])).toMatch(/^sources\.json: \[0\]\.local: .*true/);
    expect(err([{ ...ok, n: { instruction: -1 } }])).toMatch(/^sources\.json: \[0\]\.n/);
    expect(err([{ ...ok, n: { chinese: 1 } }])).toMatch(/^sources\.json: \[0\]\.n/);
    expect(err([{ ...ok, top_p: 2 }])).toMatch(/^sources\.json: \[0\]\.top_p: /);
    expect(err([ok, { ...ok }])).toBe('sources.json: [1].name: "a" is already used by source [0]');
  });
});
