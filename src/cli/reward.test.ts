// `fuse-studio reward` as a child process (vite-node on src/cli/main.ts, no build needed): a tiny
// LlamaForSequenceClassification with the real Llama 3.2 tokenizer and template
// (data/test-reward-model.ts), given as a Hub repo id served by a local Hub-style HTTP server and
// as a folder; every printed reward checked against the float64 reference on token ids made
// independently of the command's code path.
import { readFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REWARD_MODEL_EXAMPLE } from '../data/local-reward';
import { writeTinyRewardModel, type TinyRewardModel } from '../data/test-reward-model';
import { writeDemoModel } from '../model/demo-node';
import { referenceReward } from '../model/reference';
import { runCli, type CliRun } from './testing/run-cli';

const DATE = '26 Jul 2024';


let dir = '';
let rmModel: TinyRewardModel;
let server: Server;
let endpoint = '';
const requested: string[] = [];

function cli(args: string[]): Promise<CliRun> {
  return runCli(args, { env: { HF_ENDPOINT: endpoint, FUSE_STUDIO_CACHE: join(dir, 'cache'), HF_TOKEN: '' } });
}

/** float64 reward of one unpadded sequence. */
const reference = (ids: number[]) => referenceReward(rmModel.host, { batchSize: 1, seqLen: ids.length, ids, mask: new Array<number>(ids.length).fill(1) })[0]!;

const close = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want)));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-reward-cli-'));
  rmModel = await writeTinyRewardModel(join(dir, 'rm'));
  // A Hub-style server: /{org}/{name}/resolve/{revision}/{file}, with HEAD and Range.
  const files = new Map<string, Buffer>();
  for (const f of await readdir(rmModel.dir)) files.set(`test/tiny-reward/${f}`, await readFile(join(rmModel.dir, f)));
  server = createServer((req, res) => {
    const m = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    const body = m ? files.get(`${m[1]}/${decodeURIComponent(m[2]!)}`) : undefined;
    requested.push(`${req.method} ${m?.[2] ?? req.url}`);
    if (!body) return void res.writeHead(404).end();
    const r = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = r ? Number(r[1]) : 0;
    res.writeHead(r ? 206 : 200, { 'Content-Length': body.length - start, 'Accept-Ranges': 'bytes', ...(r ? { 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}) });
    if (req.method === 'HEAD') return void res.end();
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  endpoint = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

afterAll(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await rm(dir, { recursive: true, force: true });
});

const conversation = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: 'The capital of France is Paris.' },
];

describe('fuse-studio reward', () => {
  it('prints one reward per record (messages, input_ids) and chosen/rejected per DPO record, equal to the float64 reference, from a Hub repo', async () => {
    const tok = rmModel.tokenizer;
    const records = [
      { messages: conversation },
      { input_ids: [128000, 9906, 11, 1917, 0, 128009] },
      { prompt: [{ role: 'user', content: 'Name a prime number.' }], chosen: [{ role: 'assistant', content: '7' }], rejected: [{ role: 'assistant', content: '8, I think.' }] },
      { prompt: 'Two plus two is', chosen: ' four.', rejected: ' five.' },
      { prompt_input_ids: [128000, 2028], chosen_input_ids: [374, 128009], rejected_input_ids: [539, 11, 2201, 128009] },
    ];
    const data = join(dir, 'records.jsonl');
    await writeFile(data, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const r = await cli(['reward', '--model', 'test/tiny-reward', '--data', data, '--date-string', DATE, '--batch-size', '3']);
    expect(r.code, r.stderr).toBe(0);
    expect(requested).toContain('GET model.safetensors');
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(out.map((o) => Object.keys(o))).toEqual([['reward'], ['reward'], ['chosen', 'rejected'], ['chosen', 'rejected'], ['chosen', 'rejected']]);

    // The token ids, made here without the command's code: the chat through the template (as
    // transformers' apply_chat_template(conv, tokenize=True)), TRL's text rule, ids as given.
    const chat = (msgs: { role: string; content: string }[]) => tok.encodeChat(msgs as never, { dateString: DATE }).ids;
    const ids0 = chat(conversation);
    expect(ids0[0]).toBe(128000);
    expect(ids0.filter((t) => t === 128000)).toHaveLength(1);
    expect(ids0.at(-1)).toBe(128009);
    close(out[0]!.reward!, reference(ids0));
    close(out[1]!.reward!, reference(records[1]!.input_ids!));
    const p = records[2]!.prompt as { role: string; content: string }[];
    close(out[2]!.chosen!, reference(chat([...p, { role: 'assistant', content: '7' }])));
    close(out[2]!.rejected!, reference(chat([...p, { role: 'assistant', content: '8, I think.' }])));
    close(out[3]!.chosen!, reference([...tok.encode('Two plus two is four.'), 128009]));
    close(out[3]!.rejected!, reference([...tok.encode('Two plus two is five.'), 128009]));
    close(out[4]!.chosen!, reference([128000, 2028, 374, 128009]));
    close(out[4]!.rejected!, reference([128000, 2028, 539, 11, 2201, 128009]));
    // Different texts, different rewards (a head reading one fixed row would not).
    expect(new Set(out.flatMap((o) => Object.values(o)).map((v) => v.toFixed(6))).size).toBe(8);
  });

  it('refuses a causal LM, naming the kind of model it needs', async () => {
    const lm = join(dir, 'lm');
    await writeDemoModel(lm);
    const data = join(dir, 'one.jsonl');
    await writeFile(data, JSON.stringify({ messages: conversation }) + '\n');
    const r = await cli(['reward', '--model', lm, '--data', data]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${lm} is a causal language model (LlamaForCausalLM), not a reward model: scoring needs a *ForSequenceClassification reward model, such as ${REWARD_MODEL_EXAMPLE}`);
  });

  it('names a malformed line, and a conversation that does not end in the answer', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, [JSON.stringify({ messages: conversation }), '{"messages": [', JSON.stringify({ chosen: 'a' }), ''].join('\n'));
    const r = await cli(['reward', '--model', rmModel.dir, '--data', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 2: invalid JSON.*\\(and 1 more bad lines\\)`));

    const open = join(dir, 'open.jsonl');
    await writeFile(open, [JSON.stringify({ messages: conversation }), JSON.stringify({ messages: [...conversation, { role: 'user', content: 'Thanks!' }] })].join('\n'));
    const o = await cli(['reward', '--model', rmModel.dir, '--data', open]);
    expect(o.code).toBe(1);
    expect(o.stderr).toContain(`${open} line 2: the last message is the user's: a reward model scores the assistant's answer, so end the conversation with it`);
  });
});
