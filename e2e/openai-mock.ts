// A local OpenAI-compatible server for the e2e tests (node:http in the Playwright process, on
// 127.0.0.1). It sends CORS headers (the studio is on another port), lists one model, answers
// chat completions after a delay, refuses the key "wrong-key" with a 401, answers judge prompts
// (the rubric's "impartial judge") with a score, and records every request it gets.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export const MOCK_MODEL = 'mock-model';

export interface ChatSeen {
  /** The last user message. */
  prompt: string;
  seed: number | undefined;
  maxTokens: number | undefined;
  kind: 'collect' | 'judge' | 'probe';
  at: number;
}

export interface MockOptions {
  /** Delay of collection answers (ms). */
  delayMs?: number;
  /** The answer to a collection request. */
  reply: (prompt: string, seed: number | undefined) => string;
  /** The judge's verdict for a rubric prompt (which embeds the response). */
  judge?: (rubricPrompt: string) => string;
}

export interface MockOpenAI {
  baseURL: string;
  chats: ChatSeen[];
  /** Collection requests answered in full. */
  answered: number;
  close(): Promise<void>;
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-max-age': '600',
};

export async function startOpenAIMock(opts: MockOptions): Promise<MockOpenAI> {
  const sockets = new Set<Socket>();
  const mock: MockOpenAI = { baseURL: '', chats: [], answered: 0, close: async () => {} };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', ...CORS });
    res.end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...CORS, 'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '*' });
      res.end();
      return;
    }
    if (path.startsWith('/nocors/')) {
      // A server that answers but sends no CORS headers: the browser must block the answer.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"object":"list","data":[]}');
      return;
    }
    if (req.headers.authorization === 'Bearer wrong-key') {
      send(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } });
      return;
    }
    if (req.method === 'GET' && path === '/v1/models') {
      send(res, 200, { object: 'list', data: [{ id: MOCK_MODEL, object: 'model', owned_by: 'test' }] });
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      const body = JSON.parse(raw) as { messages: { role: string; content: string }[]; seed?: number; max_tokens?: number; model?: string };
      const prompt = [...body.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
      const kind: ChatSeen['kind'] = /impartial judge/.test(prompt) ? 'judge' : body.max_tokens === 1 ? 'probe' : 'collect';
      mock.chats.push({ prompt, seed: body.seed, maxTokens: body.max_tokens, kind, at: Date.now() });
      let content: string;
      if (kind === 'judge') content = opts.judge ? opts.judge(prompt) : 'Score: 5/10';
      else if (kind === 'probe') content = 'Hi';
      else {
        if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
        content = opts.reply(prompt, body.seed);
      }
      if (res.destroyed || req.socket.destroyed) return;
      send(res, 200, {
        id: 'chatcmpl-mock',
        object: 'chat.completion',
        created: 1,
        model: body.model ?? MOCK_MODEL,
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 },
      });
      if (kind === 'collect') mock.answered++;
      return;
    }
    send(res, 404, { error: { message: `no route ${req.method} ${path}` } });
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => send(res, 500, { error: { message: 'mock failed' } })));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  mock.baseURL = `http://127.0.0.1:${addr.port}/v1`;
  mock.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return mock;
}
