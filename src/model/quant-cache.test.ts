// The quantized-base cache against a real HTTP server on 127.0.0.1: the first int4 load downloads
// the bf16 shards, quantizes and writes the cache into the model's cache folder; the second reads
// the cache alone (no request for any weight file, the same weights bit for bit); another format
// quantizes again; a corrupt cache is ignored, not trusted.
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { NodeFileStore } from '../io/node-files';
import { generateDemoModel } from './demo';
import { loadModel } from './load';
import { quantCacheKey } from './quant-cache';
import { hubSource } from './source';
import { releaseWeights, type ModelWeights } from './weights';

const files = generateDemoModel(null, { hiddenSize: 64, numLayers: 2, vocabSize: 300, intermediateSize: 96, shards: 2, tieWordEmbeddings: false });
const requests: string[] = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const file = decodeURIComponent(/\/resolve\/[^/]+\/(.+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname)?.[1] ?? '');
    requests.push(`${req.method} ${file}`);
    const body = files.get(file);
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function allBytes(w: ModelWeights): Promise<number[][]> {
  const ctx = await testContext();
  const ts = [...w.embed.chunks.map((c) => c.tensor), ...w.layers.flatMap((l) => [l.q, l.down, l.inputNorm]), w.finalNorm, ...w.lmHead.chunks.map((c) => c.tensor)];
  return Promise.all(ts.map(async (t) => Array.from(await ctx.read(t))));
}

describe('quantized base cache', () => {
  it('second int4 load reads the cache: no weight file requested, same weights; int8 quantizes anew; a corrupt cache is ignored', async () => {
    const ctx = await testContext();
    const dir = join(await mkdtemp(join(tmpdir(), 'fuse-quant-')), 'test--tiny');
    const source = () => hubSource('test/tiny', { store: new NodeFileStore(dir), endpoint: base });
    const weightRequests = () => requests.filter((r) => r.startsWith('GET') && r.includes('safetensors')).length;

    const first = await loadModel(ctx, source(), { quant: 'int4' });
    expect(first.quantCache).toBe('written');
    expect(first.weights.layers[0]!.q.dtype).toBe('int4');
    expect(first.weights.embed.dtype).toBe('int8');
    const firstBytes = await allBytes(first.weights);
    releaseWeights(first.weights);
    expect(weightRequests()).toBeGreaterThan(0);
    expect(await readdir(dir)).toContain(quantCacheKey('int4'));

    requests.length = 0;
    const second = await loadModel(ctx, source(), { quant: 'int4' });
    expect(second.quantCache).toBe('read');
    expect(second.files.map((f) => f.name)).toContain(quantCacheKey('int4'));
    expect(requests.filter((r) => r.includes('safetensors'))).toEqual([]);
    expect(await allBytes(second.weights)).toEqual(firstBytes);
    releaseWeights(second.weights);

    const int8 = await loadModel(ctx, source(), { quant: 'int8' });
    expect(int8.quantCache).toBe('written');
    expect(int8.weights.layers[1]!.down.dtype).toBe('int8');
    releaseWeights(int8.weights);

    // A cache file that is not ours (here: garbage) is ignored and rewritten.
    await writeFile(join(dir, quantCacheKey('int4')), new Uint8Array(64).fill(7));
    const again = await loadModel(ctx, source(), { quant: 'int4' });
    expect(again.quantCache).toBe('written');
    expect(await allBytes(again.weights)).toEqual(firstBytes);
    releaseWeights(again.weights);
  });
});
