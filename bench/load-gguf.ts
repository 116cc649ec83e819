// Loading a GGUF file against loading safetensors, with the real loader over local HTTP: one
// generated Llama model (h256, 4 layers, MLP 768, vocab 16,384, tied) written as a Q4_K_M-mix
// .gguf (Q4_K projections, Q6_K v/down/embedding, F32 norms: src/model/testing/gguf-writer.ts)
// and as bf16 safetensors of the same weights, served by a node:http server on 127.0.0.1:
//   load.gguf.q4km.http         MB/s (10^6 bytes/s) of the .gguf: request to weights on the GPU
//                               (download into a fresh cache, header, upload of the blocks as stored)
//   load.gguf.q4km.cached       MB/s of a second load from the complete cache
//   load.safetensors.bf16.http  the same for config.json + model.safetensors (bf16)
//   load.safetensors.bf16.cached
// The shape strings give the bytes and milliseconds, so the per-model times compare too (the GGUF
// file is ~3.4x smaller for the same parameters).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode } from '../src/gpu/dtype';
import { NodeFileStore } from '../src/io/node-files';
import { ggufModelSource } from '../src/model/gguf/source';
import { loadModel } from '../src/model/load';
import { hostWeightsByName, randomHostWeights, tinyConfig } from '../src/model/random';
import { writeSafetensors } from '../src/model/safetensors';
import { httpSource, type ModelSource } from '../src/model/source';
import { hfConfigJson, q4kmTypes, writeGgufModel } from '../src/model/testing/gguf-writer';
import { expectedTensors, releaseWeights } from '../src/model/weights';
import { median, result, type BenchContext, type Benchmark, type Result } from './harness';

export const loadGgufBench: Benchmark = {
  name: 'load-gguf',
  description: 'GGUF (Q4_K_M mix) vs bf16 safetensors of the same generated model, loaded over local HTTP (fresh cache) and from the cache, MB/s',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const config = tinyConfig({ hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 768, numLayers: 4, vocabSize: 16384, tieWordEmbeddings: true });
    const host = hostWeightsByName(randomHostWeights(config, 'f32', 7));
    const dir = mkdtempSync(join(tmpdir(), 'fuse-bench-gguf-'));
    const files = new Map<string, Uint8Array>([
      ['model.gguf', writeGgufModel(config, (n) => host.get(n)!, { typeOf: q4kmTypes })],
      ['config.json', new TextEncoder().encode(JSON.stringify(hfConfigJson(config)))],
      [
        'model.safetensors',
        writeSafetensors([...expectedTensors(config)].map(([name, shape]) => ({ name, dtype: 'BF16' as const, shape, data: encode(host.get(name)!, 'bf16').subarray(0, shape.reduce((a, b) => a * b, 1) * 2) }))),
      ],
    ]);
    for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
    const server = createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '/').slice(1));
      if (!files.has(name)) return void res.writeHead(404).end();
      readFile(join(dir, name)).then(
        (b) => res.writeHead(200, { 'Content-Length': b.byteLength }).end(req.method === 'HEAD' ? undefined : b),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
    const kinds = { gguf: { http: [] as number[], cached: [] as number[], bytes: 0 }, safetensors: { http: [] as number[], cached: [] as number[], bytes: 0 } };
    try {
      for (let i = 0; i < options.warmup + Math.max(1, options.samples); i++)
        for (const format of ['gguf', 'safetensors'] as const) {
          const cacheDir = join(dir, `.cache-${format}-${i}`);
          const source = (): ModelSource => {
            const s = httpSource(url, { store: new NodeFileStore(cacheDir) });
            return format === 'gguf' ? ggufModelSource(s, 'model.gguf') : s;
          };
          for (const kind of ['http', 'cached'] as const) {
            await gpu.flush();
            const t0 = performance.now();
            const loaded = await loadModel(gpu, source());
            await gpu.flush();
            const ms = performance.now() - t0;
            kinds[format].bytes = loaded.files.reduce((s, f) => s + f.bytes, 0);
            releaseWeights(loaded.weights);
            ctx.log(`load ${format} ${kind}: ${ms.toFixed(0)} ms for ${kinds[format].bytes} bytes`);
            if (i >= options.warmup) kinds[format][kind].push(ms);
          }
          rmSync(cacheDir, { recursive: true, force: true });
        }
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
    const shape = `llama h${config.hiddenSize} L${config.numLayers} mlp${config.intermediateSize} V${config.vocabSize} tied`;
    const rows: Result[] = [];
    for (const [format, label] of [
      ['gguf', 'gguf.q4km'],
      ['safetensors', 'safetensors.bf16'],
    ] as const) {
      const k = kinds[format];
      const mb = k.bytes / 1e6;
      for (const kind of ['http', 'cached'] as const) {
        const ms = median(k[kind]);
        rows.push(
          result({
            name: `load.${label}.${kind}`,
            unit: 'MB/s',
            ours: mb / (ms / 1000),
            shape: `${shape}, ${format === 'gguf' ? 'Q4_K_M mix .gguf' : 'bf16 safetensors + config.json'}, ${mb.toFixed(2)} MB, ${ms.toFixed(0)} ms, ${kind === 'http' ? 'local node:http, fresh cache' : 'from the complete cache'}`,
          }),
        );
      }
    }
    return rows;
  },
};
