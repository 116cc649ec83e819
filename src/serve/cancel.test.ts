// `fuse-studio serve` when clients give up and when it is told to stop: a generation whose client
// disconnects stops between two tokens, a queued request (chat or /pooling) whose client went away
// is dropped, so the next request is answered at once; SIGTERM and SIGINT end the command with
// exit code 0 while a generation runs. The abandoned generations ask for 20,000 tokens (minutes on
// SwiftShader), so a later answer arriving at all proves they were stopped.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDemoModel } from '../model/demo-node';
import { startServer, type RunningServer } from './model-backend';

const DATE = '26 Jul 2024';
const MESSAGES = [{ role: 'user' as const, content: 'Tell me a very long story.' }];
const LONG = 20_000;

let dir = '';
let server: RunningServer;
let client: OpenAI;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-serve-cancel-'));
  await writeDemoModel(join(dir, 'demo'));
  server = await startServer({ model: join(dir, 'demo'), port: 0, modelName: 'demo', dateString: DATE });
  client = new OpenAI({ baseURL: server.baseURL, apiKey: 'unused', maxRetries: 0 });
}, 60_000);

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Stream {
  /** Resolves once the first content delta has arrived. */
  firstToken: Promise<void>;
  /** Resolves when the response ends, however it ends: the events received. */
  ended: Promise<string[]>;
  abort(): void;
}

/** A raw streaming request (fetch, so aborting it closes the connection as a browser tab would). */
function longStream(baseURL: string): Stream {
  const ac = new AbortController();
  const events: string[] = [];
  let first!: () => void;
  const firstToken = new Promise<void>((resolve) => (first = resolve));
  const ended = (async () => {
    try {
      const r = await fetch(`${baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', messages: MESSAGES, max_tokens: LONG, temperature: 0, stream: true }),
        signal: ac.signal,
      });
      const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
          events.push(buf.slice(0, i));
          if (/"content":"[^"]/.test(buf.slice(0, i))) first();
        }
      }
    } catch (e) {
      if (!ac.signal.aborted) events.push(`failed: ${(e as Error).message}`);
    }
    return events;
  })();
  return { firstToken, ended, abort: () => ac.abort() };
}

/** Polls until `cond` holds (the server's counters move as requests arrive). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
}

const short = () => client.chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'Hi.' }], max_tokens: 2, temperature: 0 });

describe('abandoned requests', () => {
  it('a streaming client that disconnects stops its generation, and the next request is answered', async () => {
    const before = server.stats();
    const a = longStream(server.baseURL);
    await a.firstToken;
    a.abort();
    // Queued behind the 20,000-token generation: answered only if that one stopped.
    const c = await short();
    expect(c.choices[0]!.finish_reason).toBe('length');
    expect(server.stats().cancelled).toBe(before.cancelled + 1);
    expect(await a.ended).not.toContain('data: [DONE]');
  }, 60_000);

  it('queued chat and /pooling requests whose clients went away are dropped, not run', async () => {
    const before = server.stats();
    const a = longStream(server.baseURL);
    await a.firstToken;
    // A non-streaming 20,000-token request and a reward request wait behind it; their clients leave.
    const queued = new AbortController();
    const b = client.chat.completions
      .create({ model: 'demo', messages: MESSAGES, max_tokens: LONG, temperature: 0 }, { signal: queued.signal })
      .catch((e: unknown) => e);
    const p = fetch(`${server.baseURL.replace(/\/v1$/, '')}/pooling`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', messages: [...MESSAGES, { role: 'assistant', content: 'Once upon a time.' }] }),
      signal: queued.signal,
    }).catch((e: unknown) => e);
    await until(() => server.stats().chat === before.chat + 2 && server.stats().pooling === before.pooling + 1, 'the queued requests to arrive');
    queued.abort();
    expect(await b).toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(await p).toBeInstanceOf(Error);
    a.abort();
    const c = await short();
    expect(c.choices[0]!.message.content!.length).toBeGreaterThan(0);
    // The running one stopped; the chat and the pooling request behind it never ran.
    expect(server.stats().cancelled).toBe(before.cancelled + 3);
  }, 60_000);
});

// The command as users run it: the CLI bundle (vite.cli.config.ts), built here into a private
// folder (dist/ is shared). Not vite-node: the vite server inside it exits on SIGTERM by itself.
describe('fuse-studio serve (the command) stops on a signal', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  let cliDir = '';
  beforeAll(async () => {
    // Inside the checkout, so the bundle's external imports resolve from its node_modules.
    await mkdir(join(root, 'node_modules/.cache'), { recursive: true });
    cliDir = await mkdtemp(join(root, 'node_modules/.cache/serve-cli-'));
    await build({ configFile: join(root, 'vite.cli.config.ts'), root, publicDir: false, logLevel: 'warn', build: { outDir: cliDir, sourcemap: false } });
  }, 120_000);
  afterAll(async () => {
    if (cliDir) await rm(cliDir, { recursive: true, force: true });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    it(`${signal} during a generation: exit code 0, the stream ends (and --max-context is the prompt limit)`, async () => {
      const args = ['serve', '--model', join(dir, 'demo'), '--port', '0', '--model-name', 'demo', '--max-context', String(LONG + 100)];
      const child = spawn(process.execPath, [join(cliDir, 'main.js'), ...args], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 50_000);
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      const baseURL = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /serving "demo" at (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        void exited.then((code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const tooLong = await fetch(`${baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', messages: [{ role: 'user', content: 'colour '.repeat(LONG + 100) }] }),
      });
      expect(tooLong.status).toBe(400);
      expect(((await tooLong.json()) as { error: { message: string } }).error.message).toContain(`context of ${LONG + 100} tokens (this server's --max-context`);
      const a = longStream(baseURL);
      await a.firstToken;
      child.kill(signal);
      // The 20,000-token stream ends (cut short, no [DONE]) and the process exits with 0.
      const events = await a.ended;
      expect(events).not.toContain('data: [DONE]');
      expect(await exited, stderr).toBe(0);
      clearTimeout(killer);
      expect(stderr).toContain(`serve: ${signal}, shutting down`);
    }, 60_000);
});
