// A model file server on 127.0.0.1 for e2e specs, as the Hub or any static host serves files:
// CORS open (the studio fetches cross-origin), Range requests (resumable downloads), HEAD, and a
// log of every request so a spec can count downloads.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The bytes at a URL path, or undefined for a 404. */
export type Resolve = (path: string) => Buffer | undefined | Promise<Buffer | undefined>;

export interface FileServer {
  base: string;
  /** "METHOD /path" of every request answered, in order. */
  requests: string[];
  close(): Promise<void>;
}

export async function startFileServer(resolve: Resolve): Promise<FileServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'Range, Authorization');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Length, Content-Range, Accept-Ranges');
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    void (async () => {
      const body = await Promise.resolve(resolve(path)).catch(() => undefined);
      if (!body) return void res.writeHead(404).end();
      res.setHeader('Accept-Ranges', 'bytes');
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
        if (start >= body.length) return void res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${body.length}` });
        return void res.end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1));
      }
      res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
      res.end(req.method === 'HEAD' ? undefined : body);
    })();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

/** A file name safe to join under a folder (no separators, no dot-dot). */
export const isPlainName = (name: string): boolean => /^[\w.-]+$/.test(name) && name !== '..';
