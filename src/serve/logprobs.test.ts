// `fuse-studio serve` (in-process, port 0, the demo model) through the official openai SDK:
// logprobs / top_logprobs and presence / frequency penalties checked against the float64
// reference forward of the very same weights (src/model/reference.ts); the parameters it refuses;
// the context limit.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bf16BitsToF32 } from '../gpu/dtype';
import { loadModelForCli, openModelSource, type OpenedModel } from '../cli/model';
import { demoTensors } from '../model/demo';
import { writeDemoModel } from '../model/demo-node';
import { generate } from '../model/generate';
import { hostWeightsFromNames } from '../model/random';
import { referenceForward, type HostWeights } from '../model/reference';
import { argmax } from '../model/sampling';
import { createModelBackend, startServer, type RunningServer } from './model-backend';
import { createOpenAIHandler, listenOpenAI, type ListeningServer } from './openai-server';
import { tokenTextReader, type TokenText } from './token-bytes';

const DATE = '26 Jul 2024';
const MESSAGES = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Name a colour.' },
];
/** f32 GPU logits against float64 (the errors seen are ~2e-7 nats). */
const TOL = 1e-5;

let dir = '';
let server: RunningServer;
let client: OpenAI;
let lib: OpenedModel;
let host: HostWeights;
let promptIds: number[];
let eos: number[];
let tokenText: (id: number) => TokenText;
let idOfBytes: Map<string, number>;

/** The demo checkpoint's tensors (the bf16 values writeDemoModel wrote) as float64 host weights. */
function demoHostWeights(): HostWeights {
  const byName = new Map(demoTensors().map((t) => [t.name, t]));
  return hostWeightsFromNames(lib.model.config, 'bf16', (name) => {
    const t = byName.get(name)!;
    expect(t.dtype).toBe('BF16');
    return Float64Array.from(new Uint16Array(t.data.slice().buffer), bf16BitsToF32);
  });
}

/** Float64 log-softmax rows of the reference over `seq`: row(t) is the distribution of seq[t + 1]. */
function referenceLogSoftmax(seq: readonly number[]): (t: number) => Float64Array {
  const T = seq.length;
  const V = lib.model.config.vocabSize;
  const { logits, lse } = referenceForward(host, { batchSize: 1, seqLen: T, ids: seq, mask: new Array<number>(T).fill(1) });
  return (t) => logits.subarray(t * V, (t + 1) * V).map((x) => x - lse[t]!);
}

/** Ids of the k largest values, largest first. */
function topOf(x: Float64Array, k: number): number[] {
  return [...x.keys()].sort((a, b) => x[b]! - x[a]! || a - b).slice(0, k);
}

const bytesKey = (b: number[]) => b.join(',');

/** The served token ids, recovered from their exact bytes (unique in a BPE vocabulary). */
function idsOf(content: OpenAI.ChatCompletionTokenLogprob[]): number[] {
  return content.map((e) => {
    const id = idOfBytes.get(bytesKey(e.bytes!));
    expect(id, `no token has the bytes of ${JSON.stringify(e.token)}`).toBeDefined();
    return id!;
  });
}

/** Every served token's logprob, bytes and top_logprobs against the reference rows. */
function expectMatchesReference(content: OpenAI.ChatCompletionTokenLogprob[], ids: number[], k: number): number {
  const row = referenceLogSoftmax([...promptIds, ...ids]);
  let maxErr = 0;
  content.forEach((e, i) => {
    const ref = row(promptIds.length - 1 + i);
    const t = tokenText(ids[i]!);
    expect([e.token, e.bytes]).toEqual([t.token, t.bytes]);
    maxErr = Math.max(maxErr, Math.abs(e.logprob - ref[ids[i]!]!));
    expect(e.top_logprobs).toHaveLength(k);
    // The k largest reference values, in order (the ids may swap where two are within rounding).
    const refTop = topOf(ref, k + 8);
    e.top_logprobs.forEach((top, j) => {
      maxErr = Math.max(maxErr, Math.abs(top.logprob - ref[refTop[j]!]!));
      if (j) expect(top.logprob).toBeLessThanOrEqual(e.top_logprobs[j - 1]!.logprob);
      const id = idOfBytes.get(bytesKey(top.bytes!))!;
      expect(refTop, `top ${j} of token ${i}`).toContain(id);
      maxErr = Math.max(maxErr, Math.abs(top.logprob - ref[id]!));
      expect(top.token).toBe(tokenText(id).token);
    });
  });
  expect(maxErr).toBeLessThan(TOL);
  return maxErr;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-serve-logprobs-'));
  await writeDemoModel(join(dir, 'demo'));
  server = await startServer({ model: join(dir, 'demo'), port: 0, modelName: 'demo', dateString: DATE });
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
  lib = await loadModelForCli(await openModelSource(join(dir, 'demo')));
  host = demoHostWeights();
  const tok = lib.tokenizer!;
  promptIds = tok.encodeChat(MESSAGES, { addGenerationPrompt: true, dateString: DATE }).ids;
  eos = [...new Set([...tok.eosTokenIds, ...lib.loaded.config.eosTokenIds])];
  tokenText = tokenTextReader(tok);
  idOfBytes = new Map();
  const special = new Set(tok.specialTokens.values());
  for (let id = 0; id < tok.vocabSize; id++) if (!special.has(id)) idOfBytes.set(bytesKey(tokenText(id).bytes), id);
}, 120_000);

afterAll(async () => {
  await server?.close();
  lib?.release();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('logprobs', () => {
  it('greedy: each token and its top_logprobs are the float64 log-softmax of the raw logits; bytes rebuild the content', async () => {
    const c = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 20 });
    const ref = await generate(lib.model, { promptIds, maxNewTokens: 6, sampling: { temperature: 0 }, eosTokenIds: eos });
    const ids = ref.finishReason === 'eos' ? ref.ids.slice(0, -1) : ref.ids;
    const choice = c.choices[0]!;
    expect(choice.message.content).toBe(lib.tokenizer!.decode(ref.ids, { skipSpecialTokens: true }));
    const content = choice.logprobs!.content!;
    expect(content).toHaveLength(ids.length);
    expect(idsOf(content)).toEqual(ids);
    const err = expectMatchesReference(content, ids, 20);
    // Greedy without penalties takes the most likely token: the first of its own top_logprobs.
    for (const e of content) expect(e.top_logprobs[0]).toEqual({ token: e.token, logprob: e.logprob, bytes: e.bytes });
    expect(new TextDecoder().decode(Uint8Array.from(content.flatMap((e) => e.bytes!)))).toBe(
      lib.tokenizer!.decode(ids, { skipSpecialTokens: true, cleanUpTokenizationSpaces: false }),
    );
    console.log(`logprobs: max |served - float64 reference| = ${err.toExponential(2)} over ${ids.length} tokens × 21 values`);
  }, 120_000);

  it('streamed chunks carry the logprobs of the tokens whose text they carry; together they equal the non-streamed ones', async () => {
    const body = { model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 2 } as const;
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true });
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    let chunksWithTokens = 0;
    for await (const chunk of stream)
      for (const ch of chunk.choices) {
        const entries = ch.logprobs?.content ?? [];
        streamed.push(...entries);
        if (entries.length) {
          chunksWithTokens++;
          expect(new TextDecoder().decode(Uint8Array.from(entries.flatMap((e) => e.bytes!)))).toBe(ch.delta.content);
        }
      }
    expect(streamed).toEqual(whole.choices[0]!.logprobs!.content);
    expect(chunksWithTokens).toBeGreaterThan(1);
    expect(streamed.every((e) => e.top_logprobs.length === 2)).toBe(true);
  }, 60_000);

  it('with a stop string: the tokens whose text begins before the cut, streamed or not', async () => {
    const tok = lib.tokenizer!;
    // Sampled (the demo model's greedy text here is all newlines): the library draws the same.
    const ref = await generate(lib.model, { promptIds, maxNewTokens: 6, sampling: { temperature: 1, seed: 5 }, eosTokenIds: eos });
    const text = tok.decode(ref.ids, { skipSpecialTokens: true });
    const starts = ref.ids.map((_, i) => tok.decode(ref.ids.slice(0, i), { skipSpecialTokens: true }).length);
    // A cut inside a token's text (not at its start), where the stop string first occurs.
    const cut = [...text].map((_, c) => c).find((c) => c > 0 && !starts.includes(c) && text.indexOf(text.slice(c, c + 2)) === c);
    expect(cut, JSON.stringify(text)).toBeDefined();
    const stop = text.slice(cut, cut! + 2);
    const want = starts.filter((st) => st < cut!).length;
    const body = { model: 'demo', messages: MESSAGES, temperature: 1, top_p: 1, seed: 5, max_tokens: 6, stop, logprobs: true, top_logprobs: 1 } as const;
    const whole = await client.chat.completions.create(body);
    expect(whole.choices[0]!.message.content).toBe(text.slice(0, cut));
    expect(whole.choices[0]!.finish_reason).toBe('stop');
    expect(idsOf(whole.choices[0]!.logprobs!.content!)).toEqual(ref.ids.slice(0, want));
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    let content = '';
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true }))
      for (const ch of chunk.choices) {
        streamed.push(...(ch.logprobs?.content ?? []));
        content += ch.delta.content ?? '';
      }
    expect(content).toBe(text.slice(0, cut));
    expect(streamed).toEqual(whole.choices[0]!.logprobs!.content);
  }, 60_000);

  it('sampling (temperature 1.5, n = 2) reports the raw model log-probs, not those of the tempered distribution', async () => {
    const c = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 1.5, top_p: 1, seed: 11, n: 2, max_tokens: 4, logprobs: true, top_logprobs: 0 });
    for (const [b, choice] of c.choices.entries()) {
      const lib4 = await generate(lib.model, { promptIds, maxNewTokens: 4, sampling: { temperature: 1.5, seed: 11 + b }, eosTokenIds: eos });
      const ids = lib4.finishReason === 'eos' ? lib4.ids.slice(0, -1) : lib4.ids;
      const content = choice.logprobs!.content!;
      expect(idsOf(content)).toEqual(ids);
      expectMatchesReference(content, ids, 0);
      // The tempered distribution's log-prob of the same token is visibly different.
      const row = referenceLogSoftmax([...promptIds, ...ids]);
      const ref = row(promptIds.length - 1);
      let lse = -Infinity;
      for (const x of ref) lse = Math.max(lse, x / 1.5) + Math.log1p(Math.exp(-Math.abs(lse - x / 1.5)));
      expect(Math.abs(ref[ids[0]!]! / 1.5 - lse - content[0]!.logprob)).toBeGreaterThan(100 * TOL);
    }
  }, 120_000);

  it('logprobs: false or absent gives logprobs null', async () => {
    const c = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: 1 });
    expect(c.choices[0]!.logprobs).toBeNull();
  }, 60_000);
});

describe('presence and frequency penalties', () => {
  it("greedy under OpenAI's penalties takes argmax(logit - count·frequency - (count > 0)·presence) of the float64 reference at every step", async () => {
    const N = 10;
    const [fp, pp] = [0.3, 0.5];
    const penalised = await client.chat.completions.create({
      model: 'demo',
      messages: MESSAGES,
      temperature: 0,
      max_tokens: N,
      frequency_penalty: fp,
      presence_penalty: pp,
      logprobs: true,
    });
    const plain = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, temperature: 0, max_tokens: N, logprobs: true });
    const ids = idsOf(penalised.choices[0]!.logprobs!.content!);
    expect(ids).toHaveLength(N);
    const row = referenceLogSoftmax([...promptIds, ...ids]);
    const counts = new Map<number, number>();
    let changed = 0;
    let minMargin = Infinity;
    ids.forEach((id, i) => {
      const logp = row(promptIds.length - 1 + i); // log-softmax = logits - lse: the same argmax
      const scores = logp.slice();
      for (const [j, c] of counts) scores[j] = scores[j]! - c * fp - pp;
      const best = argmax(scores);
      expect(id, `step ${i}`).toBe(best);
      let second = -Infinity;
      for (let j = 0; j < scores.length; j++) if (j !== best) second = Math.max(second, scores[j]!);
      minMargin = Math.min(minMargin, scores[best]! - second);
      if (argmax(logp) !== best) changed++;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    });
    // The penalties decided at least one step (else this test could not tell them from nothing),
    // and no step was a near tie that float32 could have decided either way.
    expect(changed).toBeGreaterThan(0);
    expect(minMargin).toBeGreaterThan(1e-4);
    expect(penalised.choices[0]!.message.content).not.toBe(plain.choices[0]!.message.content);
    // Logprobs stay those of the raw logits.
    expectMatchesReference(penalised.choices[0]!.logprobs!.content!, ids, 0);
  }, 180_000);
});

describe('refused parameters', () => {
  const post = async (body: Record<string, unknown>) => {
    const r = await fetch(`${server.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: MESSAGES, max_tokens: 1, temperature: 0, ...body }),
    });
    return { status: r.status, body: (await r.json()) as { error?: { message: string; type: string; param: string | null; code: string | null } } };
  };

  it('answers what it does not implement with a 400 naming the parameter, in OpenAI error shape', async () => {
    const cases: [string, unknown, string][] = [
      ['tools', [{ type: 'function', function: { name: 'f', parameters: {} } }], 'unsupported_parameter'],
      ['tool_choice', 'auto', 'unsupported_parameter'],
      ['response_format', { type: 'json_object' }, 'unsupported_parameter'],
      ['functions', [{ name: 'f', parameters: {} }], 'unsupported_parameter'],
      ['function_call', 'auto', 'unsupported_parameter'],
      ['logit_bias', { '9906': 100 }, 'unsupported_parameter'],
      ['parallel_tool_calls', true, 'unsupported_parameter'],
      ['store', true, 'unsupported_parameter'],
      ['temprature', 0.5, 'unknown_parameter'],
      ['best_of', 2, 'unknown_parameter'],
    ];
    for (const [param, value, code] of cases) {
      const r = await post({ [param]: value });
      expect(r.status, param).toBe(400);
      expect(Object.keys(r.body)).toEqual(['error']);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', param, code });
      expect(r.body.error!.message).toContain(param);
    }
    expect((await post({ top_logprobs: 3 })).body.error).toMatchObject({ param: 'top_logprobs' });
    expect((await post({ logprobs: true, top_logprobs: 21 })).body.error).toMatchObject({ param: 'top_logprobs' });
    expect((await post({ presence_penalty: 2.5 })).body.error).toMatchObject({ param: 'presence_penalty' });
    expect((await post({ frequency_penalty: -3 })).body.error).toMatchObject({ param: 'frequency_penalty' });
    // Through the SDK: an APIError with the same status and param.
    const e = await client.chat.completions.create({ model: 'demo', messages: MESSAGES, max_tokens: 1, response_format: { type: 'json_object' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(OpenAI.BadRequestError);
    expect(e instanceof OpenAI.APIError && e.param).toBe('response_format');
  }, 60_000);

  it('accepts the settings that ask for nothing (null, response_format text, tool_choice none) and user', async () => {
    for (const body of [{ tools: null, logit_bias: null }, { response_format: { type: 'text' } }, { tool_choice: 'none' }, { user: 'student-7', store: false }]) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(200);
    }
  }, 60_000);
});

describe('the context limit', () => {
  let small: OpenedModel | null = null;
  let http: ListeningServer | null = null;
  let httpSmall: ListeningServer | null = null;
  afterAll(async () => {
    await http?.close();
    await httpSmall?.close();
    small?.release();
  });
  const post = async (h: ListeningServer, path: string, body: unknown) => {
    const r = await fetch(`http://127.0.0.1:${h.port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as { error: { message: string; param: string; code: string } } };
  };

  it('refuses a prompt longer than --max-context or max_position_embeddings with a 400 naming both token counts', async () => {
    const P = promptIds.length;
    const backend = createModelBackend(lib, { modelId: 'demo', dateString: DATE, maxContext: P + 4 });
    http = await listenOpenAI(createOpenAIHandler(backend), { host: '127.0.0.1', port: 0 });
    expect(backend.contextLength).toBe(P + 4);
    // It fits: P prompt + 4 tokens.
    expect((await post(http, '/v1/chat/completions', { model: 'demo', messages: MESSAGES, max_tokens: 4, temperature: 0 })).status).toBe(200);
    const over = await post(http, '/v1/chat/completions', { model: 'demo', messages: MESSAGES, max_tokens: 5 });
    expect(over.status).toBe(400);
    expect(over.body.error).toMatchObject({ param: 'max_tokens', code: 'context_length_exceeded' });
    expect(over.body.error.message).toContain('at most 4');
    const long = [{ role: 'user', content: 'Name a colour. '.repeat(40) }];
    const longIds = lib.tokenizer!.encodeChat(long, { addGenerationPrompt: true, dateString: DATE }).ids.length;
    const r = await post(http, '/v1/chat/completions', { model: 'demo', messages: long });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: 'messages', code: 'context_length_exceeded' });
    expect(r.body.error.message).toContain(`${longIds} tokens`);
    expect(r.body.error.message).toContain(`${P + 4} tokens`);
    expect(r.body.error.message).toContain('--max-context');
    const pool = await post(http, '/pooling', { model: 'demo', messages: [...long, { role: 'assistant', content: 'Red.' }] });
    expect(pool.status).toBe(400);
    expect(pool.body.error).toMatchObject({ param: 'messages', code: 'context_length_exceeded' });

    // A model whose max_position_embeddings is the limit.
    await writeDemoModel(join(dir, 'short'), { maxPositionEmbeddings: 64 });
    small = await loadModelForCli(await openModelSource(join(dir, 'short')));
    httpSmall = await listenOpenAI(createOpenAIHandler(createModelBackend(small, { modelId: 'short', dateString: DATE })), { host: '127.0.0.1', port: 0 });
    const s = await post(httpSmall, '/v1/chat/completions', { model: 'short', messages: long });
    expect(s.status).toBe(400);
    expect(s.body.error.message).toContain(`${longIds} tokens`);
    expect(s.body.error.message).toContain("64 tokens (the model's max_position_embeddings)");
  }, 120_000);
});
