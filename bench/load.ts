// Loading a model over HTTP with the real loader: the demo model's files (bench/demo-model.ts,
// 16.5 MB, almost all of it the bf16 embedding) are served by a node:http server on 127.0.0.1,
// read through httpSource (src/model/source.ts) into a fresh NodeFileStore cache and uploaded to
// the GPU by loadModel (src/model/load.ts):
//   load.demo.http     MB/s (10^6 bytes/s) of the files read, request to weights on the GPU
//                      (download into the cache, parse, upload, queue drained)
//   load.demo.cached   MB/s of a second load from the now complete cache (no network)
//   load.demo.ttft     ms from the end of a load to the first generated token (a
//                      `--prompt-tokens` prompt, greedy; pipelines already compiled after the warm-up)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeFileStore } from '../src/io/node-files';
import { generate } from '../src/model/generate';
import { createDecoderModel } from '../src/model/decoder';
import { loadModel, type LoadedModel } from '../src/model/load';
import { seededRandom } from '../src/model/random';
import { httpSource } from '../src/model/source';
import { releaseWeights } from '../src/model/weights';
import { demoFiles } from './demo-model';
import { median, result, type BenchContext, type Benchmark, type Result } from './harness';

const SEED = 20250105;

/** Serves the files of `dir` (GET and HEAD, Content-Length, 404 otherwise). */
async function serve(dir: string, names: ReadonlySet<string>): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    if (!names.has(name)) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(dir, name)).then(
      (bytes) => {
        res.writeHead(200, { 'Content-Length': bytes.byteLength, 'Content-Type': 'application/octet-stream' });
        res.end(req.method === 'HEAD' ? undefined : bytes);
      },
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('load: no server address');
  return { server, url: `http://127.0.0.1:${addr.port}/` };
}

export const loadBench: Benchmark = {
  name: 'load',
  description: 'demo model load over local HTTP (real loader, fresh cache) in MB/s, from the cache, and time to first token after load',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const dir = mkdtempSync(join(tmpdir(), 'fuse-bench-load-'));
    const files = demoFiles();
    for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
    const { server, url } = await serve(dir, new Set(files.keys()));
    const times = { http: [] as number[], cached: [] as number[], ttft: [] as number[] };
    let bytes = 0;
    let config: LoadedModel['config'] | null = null;
    try {
      for (let i = 0; i < options.warmup + Math.max(1, options.samples); i++) {
        const cacheDir = join(dir, `.cache-${i}`);
        const source = () => httpSource(url, { store: new NodeFileStore(cacheDir) });
        for (const kind of ['http', 'cached'] as const) {
          await gpu.flush();
          const t0 = performance.now();
          const loaded = await loadModel(gpu, source());
          await gpu.flush();
          const t1 = performance.now();
          bytes = loaded.files.reduce((s, f) => s + f.bytes, 0);
          config = loaded.config;
          const model = createDecoderModel(gpu, loaded.weights);
          try {
            if (kind === 'cached') {
              const next = seededRandom(SEED);
              const promptIds = Array.from({ length: options.promptTokens }, () => Math.floor(next() * loaded.config.vocabSize));
              const t2 = performance.now();
              await generate(model, { promptIds, maxNewTokens: 1, sampling: { temperature: 0 } });
              const ttft = performance.now() - t2;
              if (i >= options.warmup) times.ttft.push(ttft);
            }
          } finally {
            model.release();
            releaseWeights(loaded.weights);
          }
          ctx.log(`load ${kind}: ${(t1 - t0).toFixed(0)} ms for ${bytes} bytes`);
          if (i >= options.warmup) times[kind].push(t1 - t0);
        }
        rmSync(cacheDir, { recursive: true, force: true });
      }
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
      await gpu.flush();
    }
    const mb = bytes / 1e6;
    const shape = `demo model (h${config!.hiddenSize} L${config!.numLayers} V${config!.vocabSize} bf16), ${files.size} files, ${mb.toFixed(1)} MB`;
    return [
      result({ name: 'load.demo.http', unit: 'MB/s', ours: mb / (median(times.http) / 1000), shape: `${shape}, ${median(times.http).toFixed(0)} ms, local node:http, fresh cache` }),
      result({ name: 'load.demo.cached', unit: 'MB/s', ours: mb / (median(times.cached) / 1000), shape: `${shape}, ${median(times.cached).toFixed(0)} ms, from the complete cache` }),
      result({ name: 'load.demo.ttft', unit: 'ms', ours: median(times.ttft), shape: `greedy, prompt ${options.promptTokens}, after a cached load` }),
    ];
  },
};
