// GGUF models end to end through the real loader and decoder: generated tiny Llama (llama3 rope,
// tied, q/k rows permuted as llama.cpp writes them) and Qwen3 (q/k norms, untied) models written
// as .gguf files in Q8_0/Q4_0/Q4_K/Q6_K mixes with tokenizer metadata, loaded (a) from a local
// file and (b) over HTTP from a Hub-style server that drops the connection mid-file (Range
// resume), then again from the cache with no request for the file; against the same weights
// dequantized (each tensor's blocks decoded on the host, in Hugging Face row order) and loaded as
// an f32 safetensors folder: the same greedy tokens and log-probabilities to f32 rounding.
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testContext } from '../../engine/testing/gpu';
import { dequantize, GGML_FORMATS, type GgmlTypeName } from '../../gpu/ggml';
import { quantizeRows } from '../../gpu/ggml-quantize';
import { loadTokenizer } from '../../tokenizer/tokenizer';
import type { ModelConfig } from '../config';
import { createDecoderModel } from '../decoder';
import { generate } from '../generate';
import { loadModel, readModelMeta } from '../load';
import { hostWeightsByName, randomHostWeights, tinyConfig } from '../random';
import { writeSafetensors } from '../safetensors';
import { scoreSequences } from '../score';
import { openModelSource } from '../source-node';
import { byteLevelTokenizerMetadata, hfConfigJson, q4kmTypes, writeGgufModel } from '../testing/gguf-writer';
import { expectedTensors, releaseWeights } from '../weights';

interface Case {
  name: string;
  config: ModelConfig;
  typeOf: (hf: string, shape: number[]) => GgmlTypeName;
}

const shape = { hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 258, numLayers: 2 };
const ids = { bosTokenId: 256, eosTokenIds: [257] };
const CASES: Case[] = [
  {
    name: 'llama, tied, llama3 rope: Q4_K q/k/o, Q6_K v/down/embedding, Q4_0 gate, Q8_0 up, F32 norms',
    config: { ...tinyConfig({ ...shape, family: 'llama', tieWordEmbeddings: true, llama3Rope: true }), ...ids },
    typeOf: (n, s) => (s.length === 1 ? 'F32' : n.includes('gate') ? 'Q4_0' : n.includes('up_proj') ? 'Q8_0' : q4kmTypes(n, s)),
  },
  {
    name: 'qwen3, untied, q/k norms: Q4_K_M mix (Q4_K, Q6_K), BF16 q/k norms, F16 final norm',
    config: { ...tinyConfig({ ...shape, family: 'qwen3', tieWordEmbeddings: false }), ...ids },
    typeOf: (n, s) => (n.includes('q_norm') || n.includes('k_norm') ? 'BF16' : n === 'model.norm.weight' ? 'F16' : q4kmTypes(n, s)),
  },
];

interface Written {
  dir: string;
  gguf: Uint8Array;
  /** The f32 safetensors folder of the same weights, decoded on the host. */
  f32Dir: string;
}

async function writeCase(c: Case, root: string, i: number): Promise<Written> {
  const host = hostWeightsByName(randomHostWeights(c.config, 'f32', 100 + i));
  const gguf = writeGgufModel(c.config, (n) => host.get(n)!, {
    typeOf: c.typeOf,
    metadata: byteLevelTokenizerMetadata(c.config.family === 'llama' ? 'llama-bpe' : 'qwen2', { bos: 256, eos: 257, addBos: c.config.family === 'llama' }),
  });
  const dir = join(root, `gguf-${i}`);
  const f32Dir = join(root, `f32-${i}`);
  await mkdir(dir, { recursive: true });
  await mkdir(f32Dir, { recursive: true });
  await writeFile(join(dir, 'model.gguf'), gguf);
  // The same weights as the GGUF blocks hold them, in HF row order: quantizing is per row, so
  // the blocks of the unpermuted rows are those of the original weights.
  const tensors = [...expectedTensors(c.config)].map(([name, s]) => {
    const f = GGML_FORMATS[c.typeOf(name, s)];
    const [rows, cols] = s.length === 1 ? [1, s[0]!] : (s as [number, number]);
    const values = Float32Array.from(dequantize(f, quantizeRows(f, host.get(name)!, rows, cols), rows * cols));
    return { name, dtype: 'F32' as const, shape: s, data: new Uint8Array(values.buffer) };
  });
  await writeFile(join(f32Dir, 'model.safetensors'), writeSafetensors(tensors));
  await writeFile(join(f32Dir, 'config.json'), JSON.stringify(hfConfigJson(c.config)));
  return { dir, gguf, f32Dir };
}

// ---- a Hub-style server with Range requests that drops one connection mid-file ----------

let server: Server;
let base = '';
const files = new Map<string, Uint8Array>();
const requests: string[] = [];
let dropOnceAt: number | null = null;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    const body = files.get(decodeURIComponent(req.url ?? ''));
    if (!body) return res.writeHead(404).end();
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Number(m[2]) + 1 : body.byteLength;
    const headers: Record<string, string> = { 'Content-Length': String(end - start), 'Accept-Ranges': 'bytes' };
    if (m) headers['Content-Range'] = `bytes ${start}-${end - 1}/${body.byteLength}`;
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === 'HEAD') return res.end();
    if (dropOnceAt !== null && end - start > dropOnceAt) {
      const cut = dropOnceAt;
      dropOnceAt = null;
      res.write(body.subarray(start, start + cut), () => res.destroy());
      return;
    }
    res.end(body.subarray(start, end));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function compare(ggufSpec: string, f32Dir: string, c: Case, cacheRoot?: string) {
  const ctx = await testContext();
  const g = await loadModel(ctx, await openModelSource(ggufSpec, { cacheRoot, endpoint: base, token: '' }));
  const f = await loadModel(ctx, await openModelSource(f32Dir));
  try {
    expect(g.config).toEqual({ ...f.config, dtype: 'gguf' });
    // The blocks stay blocks on the GPU: no full-precision copy of a projection or the embedding.
    const L = g.weights.layers[0]!;
    expect([L.q.dtype, L.v.dtype, L.gate.dtype, L.up.dtype, L.inputNorm.dtype, g.weights.embed.dtype]).toEqual(
      c.config.family === 'llama' ? ['q4_k', 'q6_k', 'q4_0', 'q8_0', 'f32', 'q6_k'] : ['q4_k', 'q6_k', 'q4_k', 'q4_k', 'f32', 'q6_k'],
    );
    // The tokenizer from the metadata.
    const tok = loadTokenizer({ tokenizerJson: g.tokenizerFiles!.tokenizerJson, tokenizerConfig: g.tokenizerFiles!.tokenizerConfig, name: 'gguf' });
    const prompt = tok.encode('Hi, GGUF!');
    expect(prompt).toEqual([...(c.config.family === 'llama' ? [256] : []), ...[...'Hi, GGUF!'].map((ch) => ch.charCodeAt(0))]);
    expect(tok.decode(prompt, { skipSpecialTokens: true })).toBe('Hi, GGUF!');

    const gm = createDecoderModel(ctx, g.weights);
    const fm = createDecoderModel(ctx, f.weights);
    const seqs = [prompt, [5, 77, 200, 13, 99, 4, 250, 31, 8, 1, 64], [3, 3, 3]].map((s) => ({ ids: s }));
    const [sg, sf] = [await scoreSequences(gm, seqs), await scoreSequences(fm, seqs)];
    for (let i = 0; i < seqs.length; i++) {
      expect(sg[i]!.nTokens).toBe(sf[i]!.nTokens);
      expect(Math.abs(sg[i]!.logprobSum - sf[i]!.logprobSum), `sequence ${i}: ${sg[i]!.logprobSum} vs ${sf[i]!.logprobSum}`).toBeLessThan(1e-3);
    }
    const greedy = async (m: typeof gm) => (await generate(m, { promptIds: prompt, maxNewTokens: 8, sampling: { temperature: 0 } })).ids;
    expect(await greedy(gm)).toEqual(await greedy(fm));
    gm.release();
    fm.release();
    return g;
  } finally {
    releaseWeights(g.weights);
    releaseWeights(f.weights);
  }
}

describe('GGUF models through the real loader', () => {
  let root = '';
  const written: Written[] = [];
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'gguf-load-'));
    for (const [i, c] of CASES.entries()) written.push(await writeCase(c, root, i));
  });

  it(`${CASES[0]!.name}: a local .gguf file = the dequantized f32 safetensors`, async () => {
    const g = await compare(join(written[0]!.dir, 'model.gguf'), written[0]!.f32Dir, CASES[0]!);
    expect(g.source).toBe(join(written[0]!.dir, 'model.gguf'));
    expect(g.files).toEqual([{ name: 'model.gguf', bytes: written[0]!.gguf.byteLength }]);
  });

  it(`${CASES[1]!.name}: a Hub repo + file, resumed after a dropped connection, then from the cache`, async () => {
    files.set('/org/tiny-qwen3-GGUF/resolve/main/tiny-Q4_K_M.gguf', written[1]!.gguf);
    const cacheRoot = join(root, 'cache');
    dropOnceAt = Math.floor(written[1]!.gguf.byteLength / 3);
    requests.length = 0;
    await compare('hf://org/tiny-qwen3-GGUF/tiny-Q4_K_M.gguf', written[1]!.f32Dir, CASES[1]!, cacheRoot);
    expect(dropOnceAt).toBeNull();
    const gets = requests.filter((r) => r.startsWith('GET') && r.includes('.gguf'));
    expect(gets.length).toBe(2); // the first cut, the second resumed
    requests.length = 0;
    const again = await loadModel(await testContext(), await openModelSource('org/tiny-qwen3-GGUF/tiny-Q4_K_M.gguf', { cacheRoot, endpoint: base, token: '' }));
    releaseWeights(again.weights);
    expect(requests.filter((r) => r.includes('.gguf'))).toEqual([]);
  });

  it('readModelMeta of a remote .gguf not in the cache reads its header with Range requests and downloads nothing', async () => {
    files.set('/org/tiny-llama-GGUF/resolve/main/m.gguf', written[0]!.gguf);
    const cacheRoot = join(root, 'cache-meta');
    requests.length = 0;
    const source = await openModelSource('https://huggingface.co/org/tiny-llama-GGUF/resolve/main/m.gguf'.replace('https://huggingface.co', base), { cacheRoot, endpoint: base, token: '' });
    expect(source.ggufFile).toBe('m.gguf');
    const meta = await readModelMeta(source);
    expect(meta.config).toEqual({ ...CASES[0]!.config, dtype: 'gguf' });
    expect(meta.tokenizerFiles).not.toBeNull();
    const gets = requests.filter((q) => q.startsWith('GET'));
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.every((q) => / bytes=\d+-\d+$/.test(q)), gets.join('; ')).toBe(true);
    const cached = await readdir(cacheRoot, { recursive: true }).catch(() => [] as string[]);
    expect(cached.filter((f) => String(f).endsWith('m.gguf'))).toEqual([]);
  });
});

