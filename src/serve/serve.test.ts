// `fuse-studio serve` in-process on port 0 with the demo model (the Llama 3.2 tokenizer and chat
// template; 128k vocab, so every request asks for a few tokens only), called through the official
// openai SDK and checked against the library's generate; and as a build-data collection source.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelForCli, openModelSource, type OpenedModel } from '../cli/model';
import { runCollection } from '../data/collect';
import { makeSource } from '../data/sources';
import { MemoryRunStore } from '../data/store';
import { writeDemoModel } from '../model/demo-node';
import { generate } from '../model/generate';
import { startServer, type RunningServer } from './model-backend';

const DATE = '26 Jul 2024';
const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Name a colour.' },
];

let dir = '';
let server: RunningServer;
let client: OpenAI;
let lib: OpenedModel;
let greedy = ''; // the server's greedy 4-token answer

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-serve-'));
  await writeDemoModel(join(dir, 'demo'));
  server = await startServer({ model: join(dir, 'demo'), port: 0, modelName: 'demo', dateString: DATE });
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  lib = await loadModelForCli(await openModelSource(join(dir, 'demo')));
}, 60_000);

afterAll(async () => {
  await server?.close();
  lib?.release();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('fuse-studio serve', () => {
  it('lists the model and answers unknown routes with 404', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => [m.id, m.object, m.owned_by])).toEqual([['demo', 'model', 'fuse-studio']]);
    expect(typeof models.data[0]!.created).toBe('number');
    const r = await fetch(`${server.baseURL}/nope`);
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/unknown route/);
  });

  it('greedy non-streaming equals the library generate, with the right usage', async () => {
    const c = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: 4 });
    const tok = lib.tokenizer!;
    const promptIds = tok.encodeChat(MESSAGES, { addGenerationPrompt: true, dateString: DATE }).ids;
    const eos = [...new Set([...tok.eosTokenIds, ...lib.loaded.config.eosTokenIds])];
    const ref = await generate(lib.model, { promptIds, maxNewTokens: 4, sampling: { temperature: 0 }, eosTokenIds: eos });
    greedy = tok.decode(ref.ids, { skipSpecialTokens: true });
    expect(c.object).toBe('chat.completion');
    expect(c.model).toBe('demo');
    expect(c.choices).toHaveLength(1);
    expect(c.choices[0]!.message).toMatchObject({ role: 'assistant', content: greedy });
    expect(c.choices[0]!.finish_reason).toBe(ref.finishReason === 'eos' ? 'stop' : 'length');
    expect(c.usage).toEqual({ prompt_tokens: promptIds.length, completion_tokens: ref.ids.length, total_tokens: promptIds.length + ref.ids.length });
    expect(greedy.length).toBeGreaterThan(2);
  }, 60_000);

  it('streams deltas that add up to the non-streaming text, then finish_reason, usage and [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'demo',
      messages: MESSAGES,
      temperature: 0,
      max_completion_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const finish: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? '';
        if (ch.finish_reason) finish.push(ch.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(greedy);
    expect(finish).toEqual(['length']);
    expect(usage?.completion_tokens).toBe(4);
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + 4);
  }, 60_000);

  it('cuts at the first stop string (finish_reason "stop"), streaming or not', async () => {
    const stop = greedy.slice(1, 3);
    const want = greedy.slice(0, greedy.indexOf(stop));
    const c = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: 4, stop: [stop, 'never-seen'] });
    expect(c.choices[0]!.message.content).toBe(want);
    expect(c.choices[0]!.finish_reason).toBe('stop');
    const s = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: 4, stop, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of s)
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? '';
        finish = ch.finish_reason ?? finish;
      }
    expect(text).toBe(want);
    expect(finish).toBe('stop');
  }, 60_000);

  it('n = 2 with a seed gives two choices, the same on every call', async () => {
    const ask = () =>
      client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 1, top_p: 0.95, seed: 7, n: 2, max_tokens: 3, repetition_penalty: 1.1 } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const [a, b] = [await ask(), await ask()];
    expect(a.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(b.choices.map((c) => c.message.content)).toEqual(a.choices.map((c) => c.message.content));
    expect(a.usage).toEqual(b.usage);
    expect(a.usage!.completion_tokens).toBeGreaterThanOrEqual(2);
    expect(a.usage!.completion_tokens).toBeLessThanOrEqual(6);
  }, 60_000);

  it('rejects bad requests with 400 naming the field, and an unknown model with 404', async () => {
    const err = async (body: Record<string, unknown>) => {
      try {
        await client.chat.completions.create({ model: 'demo', messages: MESSAGES, ...body } as OpenAI.ChatCompletionCreateParamsNonStreaming);
      } catch (e) {
        if (e instanceof OpenAI.APIError) return e;
      }
      throw new Error('no error');
    };
    const t = await err({ temperature: 5 });
    expect(t.status).toBe(400);
    expect(t.message).toMatch(/temperature/);
    const m = await err({ messages: [{ role: 'wizard', content: 'hi' }] });
    expect(m.status).toBe(400);
    expect(m.message).toMatch(/messages\.0\.role/);
    const n = await err({ max_tokens: 0 });
    expect(n.status).toBe(400);
    expect(n.message).toMatch(/max_tokens/);
    const u = await err({ model: 'gpt-4o' });
    expect(u.status).toBe(404);
    const bad = await fetch(`${server.baseURL}/chat/completions`, { method: 'POST', body: '{oops', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
  });

  it('answers a CORS preflight with the very headers it asks for (the SDK sends more every version)', async () => {
    const asked = 'authorization, content-type, openai-organization, openai-project, openai-beta, x-stainless-helper-method, x-stainless-os, x-stainless-some-future-header';
    const r = await fetch(`${server.baseURL}/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://studio.example', 'access-control-request-method': 'POST', 'access-control-request-headers': asked, 'access-control-request-private-network': 'true' },
    });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    expect(r.headers.get('access-control-allow-methods')).toContain('POST');
    expect(r.headers.get('access-control-allow-headers')).toBe(asked);
    // A page on a public origin may call this server on the loopback address (Private Network Access).
    expect(r.headers.get('access-control-allow-private-network')).toBe('true');
    const plain = await fetch(`${server.baseURL}/models`, { headers: { origin: 'https://studio.example' } });
    expect(plain.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('serves as a build-data collection source', async () => {
    const store = new MemoryRunStore();
    const source = makeSource({ id: 'local', baseURL: server.baseURL, model: 'demo', temperature: 0, top_p: 1, max_tokens: 4, n: 1, concurrency: 1, seed: 0 });
    const res = await runCollection({ sources: [source], prompts: [{ id: 'p0', text: 'Name a colour.', system: 'You are terse.' }], store });
    expect(res.failed, JSON.stringify([...store.errors.values()])).toBe(0);
    expect(res.collected).toBe(1);
    const [rec] = await store.list();
    expect(rec!.content).toBe(greedy);
  }, 60_000);
});

// The command itself (the built CLI, --port 0, SIGTERM and SIGINT during a generation): cancel.test.ts.
