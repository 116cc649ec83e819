// The official openai SDK in real Chromium against `fuse-studio serve` (the built CLI) on another
// origin, so every request is a real CORS request with a real preflight: the page (one origin)
// imports the SDK's own ESM files and calls the server through a recording pass-through proxy (a
// second origin) that notes each preflight and the headers it asks for. The SDK sends
// X-Stainless-* (its platform, retry count, timeout, and for the streaming helper its name),
// OpenAI-Organization, OpenAI-Project, OpenAI-Beta, Authorization and Content-Type: all must pass,
// and both streaming forms (the .stream() helper and create({stream: true})) must read the stream,
// logprobs included.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { expect, test } from '@playwright/test';
import { writeDemoModel } from '../src/model/demo-node';
import { watchErrors } from './helpers';

const CLI = 'bin/fuse-studio.js';
const SDK_ROOT = resolve('node_modules/openai');

let dir = '';
let serve: ChildProcess | null = null;
let servePort = 0;
let page0: Server | null = null;
let proxy: Server | null = null;
const preflights: { path: string; origin: string; headers: string[] }[] = [];

const listen = (s: Server) =>
  new Promise<number>((done) => s.listen(0, '127.0.0.1', () => done((s.address() as AddressInfo).port)));

/** Starts `fuse-studio serve` on a free port; resolves with its port once it listens. */
async function startServe(modelDir: string): Promise<number> {
  if (!existsSync('dist/cli/main.js')) throw new Error('dist/cli/main.js is missing: run `npm run build:cli` before this test');
  const child = spawn(process.execPath, [CLI, 'serve', '--model', modelDir, '--port', '0', '--model-name', 'demo', '--date-string', '26 Jul 2024'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serve = child;
  let log = '';
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`fuse-studio serve did not start in 120 s:\n${log}`)), 120_000);
    const onData = (b: Buffer) => {
      log += b.toString();
      const m = /serving "demo" at http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(log);
      if (m) {
        clearTimeout(timer);
        done(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`fuse-studio serve exited with ${code}:\n${log}`));
    });
  });
}

test.beforeAll(async () => {
  test.setTimeout(180_000);
  dir = await mkdtemp(join(tmpdir(), 'fuse-e2e-serve-'));
  await writeDemoModel(join(dir, 'demo'));
  servePort = await startServe(join(dir, 'demo'));

  // The page's origin: an empty page, and the SDK's files as the package ships them.
  page0 = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>openai SDK</title><h1>openai SDK page</h1>');
      return;
    }
    const file = resolve(SDK_ROOT, `.${path.replace(/^\/openai/, '')}`);
    if (!path.startsWith('/openai/') || !file.startsWith(SDK_ROOT + sep)) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (b) => res.writeHead(200, { 'content-type': ['.mjs', '.js'].includes(extname(file)) ? 'text/javascript' : 'application/octet-stream' }).end(b),
      () => res.writeHead(404).end(),
    );
  });
  // The API's origin: everything passes through to serve untouched; preflights are noted.
  proxy = createServer((req, res) => {
    if (req.method === 'OPTIONS')
      preflights.push({
        path: req.url ?? '',
        origin: String(req.headers.origin),
        headers: String(req.headers['access-control-request-headers'] ?? '')
          .split(',')
          .map((h) => h.trim().toLowerCase())
          .filter(Boolean),
      });
    const up = request({ host: '127.0.0.1', port: servePort, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
});

test.afterAll(async () => {
  serve?.kill('SIGTERM');
  page0?.close();
  proxy?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the openai SDK in Chromium streams from fuse-studio serve on another origin, every SDK header allowed', async ({ page }) => {
  test.setTimeout(180_000);
  const pagePort = await listen(page0!);
  const apiPort = await listen(proxy!);
  const errors = watchErrors(page);
  await page.goto(`http://127.0.0.1:${pagePort}/`);
  const baseURL = `http://127.0.0.1:${apiPort}/v1`;

  const got = await page.evaluate(async (baseURL) => {
    const { default: OpenAI } = (await import('/openai/index.mjs' as string)) as typeof import('openai');
    const client = new OpenAI({
      baseURL,
      apiKey: 'sk-local',
      organization: 'org-workshop',
      project: 'proj-fusion',
      defaultHeaders: { 'OpenAI-Beta': 'assistants=v2' },
      dangerouslyAllowBrowser: true,
      maxRetries: 0,
      timeout: 120_000,
    });
    const messages = [{ role: 'user' as const, content: 'Name a colour.' }];
    // The streaming helper (sends X-Stainless-Helper-Method).
    const helper = client.chat.completions.stream({ model: 'demo', messages, temperature: 0, max_tokens: 4, logprobs: true, top_logprobs: 2 });
    let helperText = '';
    helper.on('content', (delta) => (helperText += delta));
    const final = await helper.finalChatCompletion();
    // The plain streaming call; a per-request timeout (sends X-Stainless-Timeout).
    const stream = await client.chat.completions.create(
      { model: 'demo', messages, temperature: 0, max_tokens: 4, stream: true, stream_options: { include_usage: true } },
      { timeout: 120_000 },
    );
    let text = '';
    let usage: unknown = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    const models = await client.models.list();
    return {
      helperText,
      finalText: final.choices[0]!.message.content,
      finish: final.choices[0]!.finish_reason,
      logprobTokens: final.choices[0]!.logprobs?.content?.map((e) => e.token) ?? null,
      tops: final.choices[0]!.logprobs?.content?.map((e) => e.top_logprobs.length) ?? null,
      text,
      usage,
      models: models.data.map((m) => m.id),
    };
  }, baseURL);

  expect(got.finalText!.length).toBeGreaterThan(0);
  expect(got.helperText).toBe(got.finalText);
  expect(got.text).toBe(got.finalText);
  expect(got.finish).toBe('length');
  expect(got.logprobTokens).toHaveLength(4);
  expect(got.tops).toEqual([2, 2, 2, 2]);
  expect(got.usage).toMatchObject({ completion_tokens: 4 });
  expect(got.models).toEqual(['demo']);

  // Real preflights, from the page's origin, asking for every header the SDK sends; all granted.
  const posts = preflights.filter((p) => p.path === '/v1/chat/completions');
  expect(posts.length).toBeGreaterThanOrEqual(1);
  expect(new Set(preflights.map((p) => p.origin))).toEqual(new Set([`http://127.0.0.1:${pagePort}`]));
  const asked = new Set(preflights.flatMap((p) => p.headers));
  for (const h of [
    'authorization',
    'content-type',
    'openai-organization',
    'openai-project',
    'openai-beta',
    'x-stainless-os',
    'x-stainless-lang',
    'x-stainless-package-version',
    'x-stainless-runtime',
    'x-stainless-runtime-version',
    'x-stainless-arch',
    'x-stainless-retry-count',
    'x-stainless-timeout',
    'x-stainless-helper-method',
  ])
    expect(asked, h).toContain(h);
  expect(errors).toEqual([]);
});
