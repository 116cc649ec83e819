// Loading checkpoints end to end onto the GPU, from a real local HTTP server (Hub-style
// `/{repo}/resolve/{rev}/{file}` and plain base URLs) that can drop a connection mid-shard,
// demand a token or serve a truncated shard; from a folder on disk; and from dropped files.
import { createServer, type Server } from 'node:http';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f32ToBf16Bits } from '../gpu/dtype';
import type { Tensor } from '../gpu/tensor';
import { testContext } from '../engine/testing/gpu';
import { randn, rng } from '../engine/testing/random';
import { ConfigError, parseModelConfig } from './config';
import { CheckpointError, loadModel, type LoadProgress } from './load';
import { SafetensorsError, writeSafetensors } from './safetensors';
import { blobsSource, hubSource } from './source';
import { droppedFilesSource } from './source-browser';
import { localFolderSource, openModelSource } from './source-node';
import { NodeFileStore } from '../io/node-files';
import { expectedTensors, releaseWeights, type ModelWeights } from './weights';

// ---- a tiny random Llama checkpoint --------------------------------------------------------

interface Folder {
  files: Map<string, Uint8Array>;
  /** bf16 bits of every tensor, by name. */
  tensors: Map<string, Uint16Array>;
}

function makeModel(opts: { tie: boolean; hidden: number; layers: number; shards: number; seed: number; tokenizer?: boolean; arch?: string }): Folder {
  const config = {
    architectures: [opts.arch ?? 'LlamaForCausalLM'],
    model_type: opts.arch ? 'gemma2' : 'llama',
    hidden_size: opts.hidden,
    intermediate_size: 48,
    num_hidden_layers: opts.layers,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    vocab_size: 300,
    rms_norm_eps: 1e-5,
    rope_theta: 500000,
    tie_word_embeddings: opts.tie,
    max_position_embeddings: 256,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'bfloat16',
  };
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>([['config.json', enc.encode(JSON.stringify(config))]]);
  const tensors = new Map<string, Uint16Array>();
  if (opts.arch) return { files, tensors };
  files.set('generation_config.json', enc.encode(JSON.stringify({ bos_token_id: 1, eos_token_id: [2, 3], temperature: 0.6 })));
  if (opts.tokenizer) {
    files.set('tokenizer.json', enc.encode(JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } })));
    files.set('tokenizer_config.json', enc.encode(JSON.stringify({ bos_token: '<s>' })));
    files.set('chat_template.jinja', enc.encode('{{ messages }}'));
  }
  const next = rng(opts.seed);
  const list: { name: string; dtype: 'BF16'; shape: number[]; data: Uint8Array }[] = [];
  for (const [name, shape] of expectedTensors(parseModelConfig(config))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const bits = Uint16Array.from(randn(n, next, 0.5), (x) => f32ToBf16Bits(x));
    tensors.set(name, bits);
    list.push({ name, dtype: 'BF16', shape, data: new Uint8Array(bits.buffer) });
  }
  // A stale rotary buffer, as old checkpoints carry: known-harmless extras are ignored.
  list.push({ name: 'model.layers.0.self_attn.rotary_emb.inv_freq', dtype: 'BF16', shape: [4], data: new Uint8Array(8) });
  if (opts.shards === 1) {
    files.set('model.safetensors', writeSafetensors(list, { format: 'pt' }));
    return { files, tensors };
  }
  const per = Math.ceil(list.length / opts.shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (let s = 0; s < opts.shards; s++) {
    const name = `model-0000${s + 1}-of-0000${opts.shards}.safetensors`;
    const group = list.slice(s * per, (s + 1) * per);
    for (const t of group) {
      weightMap[t.name] = name;
      total += t.data.byteLength;
    }
    files.set(name, writeSafetensors(group, { format: 'pt' }));
  }
  files.set('model.safetensors.index.json', enc.encode(JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap })));
  return { files, tensors };
}

/** Rewrite one shard of a folder without `drop` (the index still lists it). */
function withoutTensor(folder: Folder, file: string, drop: string): Folder {
  const files = new Map(folder.files);
  const src = folder.files.get(file)!;
  const headerLen = Number(new DataView(src.buffer, src.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(src.subarray(8, 8 + headerLen))) as Record<string, { dtype: 'BF16'; shape: number[]; data_offsets: [number, number] }>;
  const kept = Object.entries(header)
    .filter(([name]) => name !== '__metadata__' && name !== drop)
    .map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape, data: src.slice(8 + headerLen + e.data_offsets[0], 8 + headerLen + e.data_offsets[1]) }));
  files.set(file, writeSafetensors(kept));
  return { files, tensors: folder.tensors };
}

const tied = makeModel({ tie: true, hidden: 33, layers: 2, shards: 1, seed: 11 });
const sharded = makeModel({ tie: false, hidden: 64, layers: 3, shards: 3, seed: 12, tokenizer: true });
const gemma = makeModel({ tie: true, hidden: 32, layers: 1, shards: 1, seed: 13, arch: 'Gemma2ForCausalLM' });
const missingInShard = withoutTensor(sharded, 'model-00002-of-00003.safetensors', 'model.layers.1.mlp.up_proj.weight');
const missingInSingle = withoutTensor(tied, 'model.safetensors', 'model.layers.1.self_attn.k_proj.weight');

// ---- the server ----------------------------------------------------------------------------

interface Repo {
  folder: Folder;
  token?: string;
  /** file → bytes after which the connection is destroyed, once. */
  dropOnce?: Map<string, number>;
  /** file → bytes actually served (with a matching Content-Length). */
  truncate?: Map<string, number>;
}

const repos = new Map<string, Repo>([
  ['test/tiny', { folder: tied }],
  ['test/sharded', { folder: sharded }],
  ['test/gated', { folder: tied, token: 'hf_letmein' }],
  ['test/truncated', { folder: sharded, truncate: new Map([['model-00002-of-00003.safetensors', 9000]]) }],
  ['test/missing', { folder: missingInShard }],
  ['test/missing-single', { folder: missingInSingle }],
  ['test/gemma', { folder: gemma }],
]);
const log: { method: string; repo: string; file: string; range: string }[] = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    // Hub style /{org}/{name}/resolve/{rev}/{file}, or plain /plain/{org}/{name}/{file}.
    const m = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(url.pathname) ?? /^\/plain\/([^/]+\/[^/]+)\/(.+)$/.exec(url.pathname);
    const repoId = m?.[1] ?? '';
    const file = decodeURIComponent(m?.[2] ?? '');
    log.push({ method: req.method ?? '', repo: repoId, file, range: req.headers.range ?? '' });
    const repo = repos.get(repoId);
    if (!repo) return void res.writeHead(404).end();
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return void res.writeHead(401).end();
    let body = repo.folder.files.get(file);
    if (!body) return void res.writeHead(404).end();
    const cut = repo.truncate?.get(file);
    if (cut !== undefined) body = body.subarray(0, cut);
    const r = /bytes=(\d+)-/.exec(req.headers.range ?? '');
    const start = r ? Number(r[1]) : 0;
    if (start >= body.length && start > 0) return void res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
    const headers: Record<string, string | number> = { 'Content-Length': body.length - start, 'Accept-Ranges': 'bytes' };
    if (r) headers['Content-Range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    res.writeHead(r ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    const drop = repo.dropOnce?.get(file);
    if (drop !== undefined) {
      repo.dropOnce!.delete(file);
      res.write(body.subarray(start, start + drop));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    res.end(body.subarray(start));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function cacheRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fuse-models-'));
}

async function hub(repo: string, opts: { token?: string; root?: string } = {}) {
  const store = new NodeFileStore(join(opts.root ?? (await cacheRoot()), repo.replace('/', '--')));
  return hubSource(repo, { store, endpoint: base, token: opts.token, maxRetries: 3 });
}

// ---- checks --------------------------------------------------------------------------------

async function bitsOf(t: Tensor): Promise<Uint16Array> {
  const ctx = await testContext();
  return Uint16Array.from(await ctx.readF32(t), (x) => f32ToBf16Bits(x));
}

/** Read a few weights back from the GPU and compare their bits with the checkpoint's. */
async function expectSameWeights(w: ModelWeights, folder: Folder): Promise<void> {
  const L = w.layers.length;
  const checks: [Tensor, string][] = [
    [w.embed.chunks[0]!.tensor, 'model.embed_tokens.weight'],
    [w.layers[0]!.q, 'model.layers.0.self_attn.q_proj.weight'],
    [w.layers[L - 1]!.down, `model.layers.${L - 1}.mlp.down_proj.weight`],
    [w.layers[L - 1]!.inputNorm, `model.layers.${L - 1}.input_layernorm.weight`],
    [w.finalNorm, 'model.norm.weight'],
  ];
  if (w.lmHead !== w.embed) checks.push([w.lmHead.chunks[0]!.tensor, 'lm_head.weight']);
  expect(w.embed.chunks).toHaveLength(1);
  for (const [t, name] of checks) expect(await bitsOf(t), name).toEqual(folder.tensors.get(name));
}

function progressLog() {
  const seen: LoadProgress[] = [];
  return { seen, onProgress: (p: LoadProgress) => seen.push(p) };
}

describe('loadModel', () => {
  it('loads a single-file tied bf16 checkpoint from a Hub-style server onto the GPU', async () => {
    const ctx = await testContext();
    const { seen, onProgress } = progressLog();
    const m = await loadModel(ctx, await hub('test/tiny'), { onProgress });
    expect(m.config.tieWordEmbeddings).toBe(true);
    expect(m.config.hiddenSize).toBe(33); // odd: 16-bit norms end on a half word
    expect(m.config.eosTokenIds).toEqual([2, 3]); // from generation_config.json
    expect(m.generationConfig).toMatchObject({ temperature: 0.6 });
    expect(m.tokenizerFiles).toBeNull();
    expect(m.weights.lmHead).toBe(m.weights.embed);
    expect(m.files.map((f) => f.name)).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(m.files.at(-1)!.bytes).toBe(tied.files.get('model.safetensors')!.byteLength);
    await expectSameWeights(m.weights, tied);
    const up = seen.filter((p) => p.phase === 'upload');
    const dl = seen.filter((p) => p.phase === 'download');
    expect(dl.at(-1)!.overall).toMatchObject({ loaded: tied.files.get('model.safetensors')!.byteLength, total: tied.files.get('model.safetensors')!.byteLength });
    expect(up.at(-1)!.overall.loaded).toBe(up.at(-1)!.overall.total);
    expect(up.at(-1)!.overall.total).toBe([...tied.tensors.values()].reduce((a, t) => a + t.byteLength, 0));
    releaseWeights(m.weights);
  });

  it('loads a sharded untied checkpoint, resuming a shard whose connection dropped, then reloads from the cache with no shard requests', async () => {
    const ctx = await testContext();
    const root = await cacheRoot();
    const shard2 = 'model-00002-of-00003.safetensors';
    repos.get('test/sharded')!.dropOnce = new Map([[shard2, 20_000]]);
    const { seen, onProgress } = progressLog();
    log.length = 0;
    const m = await loadModel(ctx, await hub('test/sharded', { root }), { onProgress });
    expect(m.config.tieWordEmbeddings).toBe(false);
    expect(m.weights.lmHead).not.toBe(m.weights.embed);
    expect(m.tokenizerFiles).toEqual({
      tokenizerJson: { version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } },
      tokenizerConfig: { bos_token: '<s>' },
      chatTemplate: '{{ messages }}',
    });
    await expectSameWeights(m.weights, sharded);
    // The dropped shard was fetched again from where it stopped, with a Range request.
    const resumed = log.filter((l) => l.file === shard2 && l.method === 'GET' && l.range);
    expect(resumed.length, JSON.stringify(log)).toBe(1);
    expect(Number(/bytes=(\d+)-/.exec(resumed[0]!.range)![1])).toBeGreaterThan(0);
    // Download progress is per file and overall, and reaches the total of all shards.
    const shardBytes = [1, 2, 3].reduce((a, i) => a + sharded.files.get(`model-0000${i}-of-00003.safetensors`)!.byteLength, 0);
    const dl = seen.filter((p) => p.phase === 'download');
    expect(new Set(dl.map((p) => p.file.label))).toEqual(new Set([1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`)));
    expect(dl.at(-1)!.overall).toMatchObject({ loaded: shardBytes, total: shardBytes });
    for (let i = 1; i < dl.length; i++) expect(dl[i]!.overall.loaded).toBeGreaterThanOrEqual(dl[i - 1]!.overall.loaded);
    expect(dl.every((p) => p.overall.rate >= 0 && (p.overall.etaSeconds === null || p.overall.etaSeconds >= 0))).toBe(true);
    const up = seen.filter((p) => p.phase === 'upload');
    expect(up.at(-1)!.overall.loaded).toBe(up.at(-1)!.overall.total);
    releaseWeights(m.weights);

    // Second load, a fresh source over the same cache: nothing is requested at all.
    log.length = 0;
    const again = progressLog();
    const m2 = await loadModel(ctx, await hub('test/sharded', { root }), { onProgress: again.onProgress });
    expect(log.filter((l) => l.file.endsWith('.safetensors'))).toEqual([]);
    expect(log).toEqual([]);
    const dl2 = again.seen.filter((p) => p.phase === 'download');
    expect(dl2.at(-1)!.overall).toMatchObject({ loaded: shardBytes, total: shardBytes, resumedFrom: shardBytes });
    await expectSameWeights(m2.weights, sharded);
    releaseWeights(m2.weights);
  });

  it('names the access token for a gated repo, and loads with one', async () => {
    const ctx = await testContext();
    await expect(loadModel(ctx, await hub('test/gated'))).rejects.toThrow(/access denied \(401\).*provide a Hugging Face access token/);
    await expect(loadModel(ctx, await hub('test/gated', { token: 'hf_wrong' }))).rejects.toThrow(/access denied \(401\).*token may lack access/);
    const m = await loadModel(ctx, await hub('test/gated', { token: 'hf_letmein' }));
    await expectSameWeights(m.weights, tied);
    releaseWeights(m.weights);
  });

  it('reports a truncated shard by file and missing bytes, and drops it from the cache', async () => {
    const ctx = await testContext();
    const src = await hub('test/truncated');
    const before = ctx.pool.stats().liveBytes;
    const err = await loadModel(ctx, src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(String((err as Error).message)).toMatch(/model-00002-of-00003\.safetensors: truncated: .*\(\d+ missing\)/);
    expect(await src.store.isComplete('model-00002-of-00003.safetensors')).toBe(false);
    expect(await src.store.isComplete('model-00001-of-00003.safetensors')).toBe(true);
    expect(ctx.pool.stats().liveBytes).toBe(before);
  });

  it('names a missing tensor, and the shard the index put it in', async () => {
    const ctx = await testContext();
    await expect(loadModel(ctx, await hub('test/missing'))).rejects.toThrow(
      /tensor missing from the shards: "model\.layers\.1\.mlp\.up_proj\.weight" \(the index puts it in model-00002-of-00003\.safetensors\)/,
    );
    const err = await loadModel(ctx, await hub('test/missing-single')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointError);
    expect(String((err as Error).message)).toMatch(/model\.safetensors: tensor "model\.layers\.1\.self_attn\.k_proj\.weight" is missing/);
  });

  it('refuses an unknown architecture (Gemma2) with the ConfigError, before fetching any weights', async () => {
    const ctx = await testContext();
    log.length = 0;
    const err = await loadModel(ctx, await hub('test/gemma')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/Gemma2ForCausalLM.*does not run this architecture \(supported: LlamaForCausalLM/);
    expect(log.filter((l) => l.file.includes('safetensors'))).toEqual([]);
  });

  it('refuses weights that contradict the config (an extra layer)', async () => {
    const ctx = await testContext();
    const files = new Map([...tied.files].map(([k, v]) => [k, new Blob([v as Uint8Array<ArrayBuffer>])]));
    const cfg = JSON.parse(new TextDecoder().decode(tied.files.get('config.json')));
    files.set('config.json', new Blob([JSON.stringify({ ...cfg, num_hidden_layers: 1 })]));
    await expect(loadModel(ctx, blobsSource('mem', files))).rejects.toThrow(
      /model\.safetensors: has "model\.layers\.1\..*" but config\.json says num_hidden_layers = 1/,
    );
  });

  it('loads the same weights from a local folder, a plain http URL and dropped files', async () => {
    const ctx = await testContext();
    const dir = await mkdtemp(join(tmpdir(), 'fuse-folder-'));
    for (const [name, bytes] of sharded.files) await writeFile(join(dir, name), bytes);
    const local = await openModelSource(dir);
    expect(local.remote).toBe(false);
    const a = await loadModel(ctx, local);
    await expectSameWeights(a.weights, sharded);
    expect(a.files.map((f) => f.name)).toContain('model.safetensors.index.json');
    releaseWeights(a.weights);

    const b = await loadModel(ctx, localFolderSource(dir));
    releaseWeights(b.weights);

    const root = await cacheRoot();
    const plain = await openModelSource(`${base}/plain/test/tiny`, { cacheRoot: root, token: '' });
    const c = await loadModel(ctx, plain);
    await expectSameWeights(c.weights, tied);
    releaseWeights(c.weights);
    const [cacheDir] = await readdir(root);
    expect(cacheDir).toBe(`127.0.0.1_${new URL(base).port}_plain_test_tiny`);
    expect(await readdir(join(root, cacheDir!))).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));

    // Dropped folder: every path starts with the folder's name, which is stripped.
    const dropped = droppedFilesSource([...tied.files].map(([name, bytes]) => ({ path: `Tiny-Llama/${name}`, file: new File([bytes as Uint8Array<ArrayBuffer>], name) })));
    expect(dropped.description).toBe('Tiny-Llama');
    const d = await loadModel(ctx, dropped);
    await expectSameWeights(d.weights, tied);
    releaseWeights(d.weights);
  });

  it('stops when aborted and leaves no GPU tensors behind', async () => {
    const ctx = await testContext();
    const before = ctx.pool.stats().liveBytes;
    const ac = new AbortController();
    const p = loadModel(ctx, await hub('test/tiny'), {
      signal: ac.signal,
      onProgress: (e) => {
        if (e.phase === 'upload' && e.overall.loaded > 0) ac.abort();
      },
    });
    await expect(p).rejects.toThrow();
    expect(ctx.pool.stats().liveBytes).toBe(before);
  });
});
