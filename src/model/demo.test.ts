import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32 } from '../gpu/dtype';
import { memorySource } from '../io/byte-source';
import { nodeFileSource } from '../io/node-files';
import { LLAMA_3_2_CHAT_TEMPLATE } from '../tokenizer/llama3-chat-template';
import { readLlama3TokenizerJson } from '../tokenizer/llama3-node';
import { loadTokenizer } from '../tokenizer/tokenizer';
import { parseModelConfig, type ModelConfig } from './config';
import { demoConfigJson, demoTensors, generateDemoModel, shardFileName, type DemoModelOptions } from './demo';
import { writeDemoModel } from './demo-node';
import { readSafetensorsHeader, type SafetensorsHeader } from './safetensors';
import { expectedTensors, releaseWeights } from './weights';
import { testContext } from '../engine/testing/gpu';
import { loadModel } from './load';
import { localFolderSource } from './source-node';
import { createDecoderModel } from './decoder';
import { hostWeightsFromNames } from './random';
import { referenceForward, referenceReward } from './reference';
import { scoreRewards } from './reward';
import { argmax } from './sampling';
import { generate } from './generate';

const sha256 = (b: Uint8Array | Float32Array) => createHash('sha256').update(b).digest('hex');
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);
const json = (files: Map<string, Uint8Array>, name: string) => JSON.parse(text(files.get(name)));

/** Parse a generated folder's config and every safetensors file's header. */
async function inspect(files: Map<string, Uint8Array>): Promise<{ config: ModelConfig; headers: SafetensorsHeader[] }> {
  const config = parseModelConfig(json(files, 'config.json'), json(files, 'generation_config.json'));
  const names = [...files.keys()].filter((n) => n.endsWith('.safetensors'));
  const headers = await Promise.all(names.map((n) => readSafetensorsHeader(memorySource(n, files.get(n)!))));
  return { config, headers };
}

/** Every tensor of the folder must be exactly expectedTensors(config), with the right shape and dtype. */
function expectTensorsMatch(config: ModelConfig, headers: SafetensorsHeader[], dtype: string) {
  const found = new Map<string, number[]>();
  for (const h of headers)
    for (const [name, t] of h.tensors) {
      expect(found.has(name), `${name} appears twice`).toBe(false);
      expect(t.dtype).toBe(dtype);
      found.set(name, t.shape);
    }
  const want = expectedTensors(config);
  expect([...found.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, shape] of want) expect(found.get(name), name).toEqual(shape);
}

function floats(files: Map<string, Uint8Array>, h: SafetensorsHeader, name: string): Float32Array {
  const t = h.tensors.get(name)!;
  const bytes = files.get(h.file)!.slice(t.begin, t.end);
  if (t.dtype === 'F32') return new Float32Array(bytes.buffer);
  const halves = new Uint16Array(bytes.buffer);
  return Float32Array.from(halves, t.dtype === 'BF16' ? bf16BitsToF32 : f16BitsToF32);
}

let tokenizerJson: Uint8Array;
let demo: Map<string, Uint8Array>;

beforeAll(async () => {
  tokenizerJson = await readLlama3TokenizerJson();
  demo = generateDemoModel(tokenizerJson);
});

describe('the built-in demo model', () => {
  it('is byte-identical on every generation', () => {
    const again = generateDemoModel(tokenizerJson);
    expect([...again.keys()]).toEqual([...demo.keys()]);
    for (const [name, bytes] of demo) expect(sha256(again.get(name)!), name).toBe(sha256(bytes));
    // And the weights themselves are pinned: integer PRNG + exactly rounded arithmetic, so these
    // bytes are the same on every machine and JS engine.
    const data = demoTensors().map((t) => t.data);
    const h = createHash('sha256');
    for (const d of data) h.update(d);
    expect(h.digest('hex')).toBe(DEMO_WEIGHTS_SHA256);
  });

  it('holds the files of a Hugging Face Llama-3.2 folder', () => {
    expect([...demo.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const c = json(demo, 'config.json');
    expect(c.architectures).toEqual(['LlamaForCausalLM']);
    expect(c.model_type).toBe('llama');
    expect(c.torch_dtype).toBe('bfloat16');
    // Written as transformers 4.x writes it: sorted keys, 2-space indent, Python floats.
    const raw = text(demo.get('config.json'));
    expect(raw).toContain('\n  "rms_norm_eps": 1e-05,\n');
    expect(raw).toContain('\n  "rope_theta": 500000.0,\n');
    expect(raw).toContain('"factor": 32.0');
    expect(raw.endsWith('}\n')).toBe(true);
    expect(raw).toBe(demoConfigJson());
    const g = json(demo, 'generation_config.json');
    expect(g).toMatchObject({ bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], do_sample: true, temperature: 0.6, top_p: 0.9 });
  });

  it('parses as the tiny GQA Llama-3 config', async () => {
    const { config, headers } = await inspect(demo);
    expect(config).toEqual({
      family: 'llama',
      head: 'causal-lm',
      numLabels: 0,
      qkvBias: false,
      qkNorm: false,
      slidingWindow: null,
      hiddenSize: 64,
      intermediateSize: 176,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      vocabSize: 128256,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      tieWordEmbeddings: true,
      maxPositionEmbeddings: 131072,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
      padTokenId: null,
      dtype: 'bfloat16',
    } satisfies ModelConfig);
    expect(headers).toHaveLength(1);
    expect(headers[0]!.metadata).toEqual({ format: 'pt' });
    expect(headers[0]!.dataStart % 8).toBe(0);
    expect(headers[0]!.fileSize).toBe(demo.get('model.safetensors')!.byteLength);
    expectTensorsMatch(config, headers, 'BF16');
  });

  it('draws weights with std 0.02 and sets norms to one', async () => {
    const { headers } = await inspect(demo);
    const h = headers[0]!;
    const e = floats(demo, h, 'model.embed_tokens.weight');
    let sum = 0;
    let sq = 0;
    let max = 0;
    for (const v of e) {
      sum += v;
      sq += v * v;
      max = Math.max(max, Math.abs(v));
    }
    const mean = sum / e.length;
    const std = Math.sqrt(sq / e.length - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(1e-4);
    expect(std).toBeGreaterThan(0.0198);
    expect(std).toBeLessThan(0.0202);
    expect(max).toBeLessThanOrEqual(0.02 * 2 * Math.sqrt(3) * 1.01); // Irwin–Hall(4) is bounded
    expect(floats(demo, h, 'model.norm.weight').every((v) => v === 1)).toBe(true);
    expect(floats(demo, h, 'model.layers.1.post_attention_layernorm.weight').every((v) => v === 1)).toBe(true);
    // Different tensors are different draws.
    const q0 = floats(demo, h, 'model.layers.0.self_attn.q_proj.weight');
    const q1 = floats(demo, h, 'model.layers.1.self_attn.q_proj.weight');
    expect(q0.some((v, i) => v !== q1[i])).toBe(true);
  });

  it('ships the Llama 3.2 tokenizer and chat template, loadable from the folder', () => {
    const tc = json(demo, 'tokenizer_config.json');
    expect(tc.chat_template).toBe(LLAMA_3_2_CHAT_TEMPLATE);
    expect(tc.bos_token).toBe('<|begin_of_text|>');
    expect(tc.eos_token).toBe('<|eot_id|>');
    expect(Object.keys(tc.added_tokens_decoder)).toHaveLength(256);
    expect(tc.added_tokens_decoder['128009']).toEqual({ content: '<|eot_id|>', lstrip: false, normalized: false, rstrip: false, single_word: false, special: true });
    const tok = loadTokenizer({ tokenizerJson: json(demo, 'tokenizer.json'), tokenizerConfig: tc, generationConfig: json(demo, 'generation_config.json') });
    expect(tok.vocabSize).toBe(128256);
    expect(tok.encode('Hello world')).toEqual([128000, 9906, 1917]);
    expect(tok.eosTokenIds).toEqual([128009, 128001, 128008]);
    expect(tok.tokenToId('<|eom_id|>')).toBe(128008);
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ];
    expect(tok.applyChatTemplate(messages, { dateString: '26 Jul 2024', addGenerationPrompt: false })).toBe(
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n' +
        'Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>',
    );
    const { ids, assistantMask } = tok.encodeChat(messages, { dateString: '26 Jul 2024' });
    expect(tok.decode(ids.filter((_, i) => assistantMask[i]))).toBe('Hello!<|eot_id|>');
  });

  it('writes a sharded checkpoint with a consistent index', async () => {
    const files = generateDemoModel(null, { shards: 3 });
    const shardNames = [0, 1, 2].map((i) => shardFileName(i, 3));
    expect(shardNames[0]).toBe('model-00001-of-00003.safetensors');
    expect([...files.keys()].sort()).toEqual(['config.json', 'generation_config.json', ...shardNames, 'model.safetensors.index.json'].sort());
    const index = json(files, 'model.safetensors.index.json');
    expect(Object.keys(index)).toEqual(['metadata', 'weight_map']);
    const { config, headers } = await inspect(files);
    expectTensorsMatch(config, headers, 'BF16');
    let total = 0;
    for (const h of headers) {
      expect(h.metadata).toEqual({ format: 'pt' });
      expect(h.tensors.size).toBeGreaterThan(0);
      for (const [name, t] of h.tensors) {
        expect(index.weight_map[name], name).toBe(h.file);
        total += t.end - t.begin;
      }
    }
    expect(Object.keys(index.weight_map).sort()).toEqual([...expectedTensors(config).keys()].sort());
    expect(index.metadata.total_size).toBe(total);
    // The same tensor bytes as the single-file checkpoint.
    const single = await inspect(demo);
    for (const h of headers)
      for (const name of h.tensors.keys())
        expect(sha256(floats(files, h, name)), name).toBe(sha256(floats(demo, single.headers[0]!, name)));
  });

  it('covers other test configs: untied, f32/f16, odd sizes, head_dim ≠ hidden/heads, small vocab, more layers', async () => {
    const cases: [DemoModelOptions, string][] = [
      [{ tieWordEmbeddings: false, dtype: 'f32' }, 'F32'],
      [{ dtype: 'f16', intermediateSize: 93, numLayers: 3 }, 'F16'],
      [{ hiddenSize: 48, numHeads: 4, numKvHeads: 1, headDim: 16, vocabSize: 1000, tieWordEmbeddings: false }, 'BF16'],
      [{ hiddenSize: 30, numHeads: 3, numKvHeads: 3, intermediateSize: 37, vocabSize: 333, numLayers: 1, normJitter: 0.1 }, 'BF16'],
    ];
    for (const [opts, dtype] of cases) {
      const files = generateDemoModel(null, opts);
      expect(files.has('tokenizer.json')).toBe(false);
      const { config, headers } = await inspect(files);
      expect(config.tieWordEmbeddings).toBe(opts.tieWordEmbeddings ?? true);
      expect(config.headDim).toBe(opts.headDim ?? (opts.hiddenSize ?? 64) / (opts.numHeads ?? 4));
      expect(config.numLayers).toBe(opts.numLayers ?? 2);
      expect(config.vocabSize).toBe(opts.vocabSize ?? 128256);
      expectTensorsMatch(config, headers, dtype);
      if (opts.normJitter) expect(floats(files, headers[0]!, 'model.norm.weight').some((v) => v !== 1)).toBe(true);
    }
  });

  it('keeps each tensor when other options change, and changes everything with the seed', () => {
    const base = new Map(demoTensors({ vocabSize: 512 }).map((t) => [t.name, sha256(t.data)]));
    const more = new Map(demoTensors({ vocabSize: 512, numLayers: 3 }).map((t) => [t.name, sha256(t.data)]));
    for (const [name, h] of base) expect(more.get(name), name).toBe(h);
    const seeded = new Map(demoTensors({ vocabSize: 512, seed: 7 }).map((t) => [t.name, sha256(t.data)]));
    expect(seeded.get('model.embed_tokens.weight')).not.toBe(base.get('model.embed_tokens.weight'));
  });

  it('writes transformers 5.x configs (rope_parameters, dtype) that parse the same', () => {
    const v5 = JSON.parse(demoConfigJson({ configStyle: 'transformers-5' }));
    expect(v5.rope_parameters).toEqual({ factor: 32, high_freq_factor: 4, low_freq_factor: 1, original_max_position_embeddings: 8192, rope_type: 'llama3', rope_theta: 500000 });
    expect(v5.dtype).toBe('bfloat16');
    expect(v5.rope_theta).toBeUndefined();
    expect(parseModelConfig(v5)).toEqual(parseModelConfig(JSON.parse(demoConfigJson())));
    expect(parseModelConfig(JSON.parse(demoConfigJson({ ropeScaling: false }))).ropeScaling).toBeNull();
    expect(parseModelConfig(JSON.parse(demoConfigJson({ ropeScaling: false, configStyle: 'transformers-5' }))).ropeScaling).toBeNull();
  });

  it('refuses impossible options', () => {
    expect(() => generateDemoModel(tokenizerJson, { vocabSize: 1000 })).toThrow(/smaller than the Llama 3 tokenizer/);
    expect(() => generateDemoModel(null, { vocabSize: 100, shards: 100 })).toThrow(/100 shards/);
    expect(() => generateDemoModel(null, { hiddenSize: 0 })).toThrow(RangeError);
    expect(() => generateDemoModel(null, { hiddenSize: 50, numHeads: 4 })).toThrow(/headDim/);
  });
});

describe('writeDemoModel (Node)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fuse-demo-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the same files to disk, readable through a file source', async () => {
    const written = await writeDemoModel(join(dir, 'demo'), { shards: 2 });
    const files = generateDemoModel(tokenizerJson, { shards: 2 });
    expect(written.map((w) => w.name).sort()).toEqual([...files.keys()].sort());
    expect((await readdir(join(dir, 'demo'))).sort()).toEqual([...files.keys()].sort());
    for (const [name, bytes] of files) expect(sha256(await readFile(join(dir, 'demo', name))), name).toBe(sha256(bytes));
    const h = await readSafetensorsHeader(await nodeFileSource(join(dir, 'demo', shardFileName(1, 2))));
    expect(h.tensors.size).toBeGreaterThan(0);
    const tok = loadTokenizer({
      tokenizerJson: JSON.parse(await readFile(join(dir, 'demo', 'tokenizer.json'), 'utf8')),
      tokenizerConfig: JSON.parse(await readFile(join(dir, 'demo', 'tokenizer_config.json'), 'utf8')),
    });
    expect(tok.chatTemplate).toBe(LLAMA_3_2_CHAT_TEMPLATE);
  });

  it('can leave the tokenizer out', async () => {
    await writeDemoModel(join(dir, 'bare'), { tokenizer: false, vocabSize: 256 });
    expect((await readdir(join(dir, 'bare'))).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
  });
});

const DEMO_WEIGHTS_SHA256 = '4cd6071bddc757fa6c7e18ae7c364cd0ccceb6e81edc25fc4f6fb8d641e3617f';

describe('demo models of the other families', () => {
  it.each(['qwen2', 'qwen3', 'mistral'] as const)('%s: a Hugging Face folder with the family config and tokenizer that loads, chats and generates like the float64 reference', async (family) => {
    const dir = await mkdtemp(join(tmpdir(), `fuse-demo-${family}-`));
    try {
      await writeDemoModel(dir, { family, normJitter: 0.3, seed: 11 });
      const files = new Map<string, Uint8Array>();
      for (const name of await readdir(dir)) files.set(name, new Uint8Array(await readFile(join(dir, name))));
      const { config, headers } = await inspect(files);
      expect(config.family).toBe(family);
      expectTensorsMatch(config, headers, 'BF16');
      if (family === 'qwen2') expect(headers[0]!.tensors.has('model.layers.0.self_attn.q_proj.bias')).toBe(true);
      if (family === 'qwen3') expect(headers[0]!.tensors.has('model.layers.1.self_attn.k_norm.weight')).toBe(true);

      const ctx = await testContext();
      const loaded = await loadModel(ctx, localFolderSource(dir));
      const model = createDecoderModel(ctx, loaded.weights);
      try {
        const tok = loadTokenizer(loaded.tokenizerFiles!);
        const prompt = tok.encodeChat([{ role: 'user', content: 'What is 2 + 2?' }], { addGenerationPrompt: true, dateString: '26 Jul 2024' }).ids;
        const rendered = tok.decode(prompt, { skipSpecialTokens: false });
        if (family === 'mistral') expect(rendered).toContain('<|start_header_id|>user<|end_header_id|>');
        // Qwen2.5's template adds its default system prompt; Qwen3's (thinking off) an empty think block.
        const system = family === 'qwen2' ? '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' : '';
        const think = family === 'qwen3' ? '<think>\n\n</think>\n\n' : '';
        if (family !== 'mistral') expect(rendered).toBe(`${system}<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n${think}`);
        const host = hostWeightsFromNames(config, 'bf16', (name) => Float64Array.from(floats(files, headers[0]!, name)));
        const seq = [...prompt];
        const want: number[] = [];
        for (let i = 0; i < 3; i++) {
          const T = seq.length;
          const V = config.vocabSize;
          const logits = referenceForward(host, { batchSize: 1, seqLen: T, ids: seq, mask: new Array<number>(T).fill(1) }).logits.subarray((T - 1) * V, T * V);
          seq.push(argmax(logits));
          want.push(seq.at(-1)!);
        }
        const got = await generate(model, { promptIds: prompt, maxNewTokens: 3, sampling: { temperature: 0 } });
        expect(got.ids).toEqual(want.slice(0, got.ids.length));
      } finally {
        model.release();
        releaseWeights(loaded.weights);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('demo reward models (head: sequence-classification)', () => {
  it('qwen3: Qwen3ForSequenceClassification with num_labels 1 and Qwen\'s pad token, score.weight instead of lm_head, no generation config', async () => {
    const files = generateDemoModel(null, { family: 'qwen3', head: 'sequence-classification', vocabSize: 512 });
    expect([...files.keys()].sort()).toEqual(['config.json', 'model.safetensors']);
    expect(json(files, 'config.json')).toMatchObject({ architectures: ['Qwen3ForSequenceClassification'], id2label: { '0': 'LABEL_0' }, pad_token_id: 151643 });
    const config = parseModelConfig(json(files, 'config.json'));
    expect(config).toMatchObject({ family: 'qwen3', head: 'sequence-classification', numLabels: 1, qkNorm: true });
    const header = await readSafetensorsHeader(memorySource('model.safetensors', files.get('model.safetensors')!));
    expectTensorsMatch(config, [header], 'BF16');
    expect(header.tensors.get('score.weight')!.shape).toEqual([1, 64]);
  });

  it('llama: a LlamaForSequenceClassification folder with the Llama 3.2 tokenizer whose rewards equal the float64 reference', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fuse-demo-reward-'));
    try {
      await writeDemoModel(dir, { head: 'sequence-classification', seed: 3 });
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      const raw = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
      expect(raw).toMatchObject({ architectures: ['LlamaForSequenceClassification'], id2label: { '0': 'LABEL_0' }, pad_token_id: 128004 });
      const ctx = await testContext();
      const loaded = await loadModel(ctx, localFolderSource(dir));
      const { config } = loaded;
      expect(config).toMatchObject({ head: 'sequence-classification', numLabels: 1 });
      const model = createDecoderModel(ctx, loaded.weights);
      try {
        const files = new Map([['model.safetensors', new Uint8Array(await readFile(join(dir, 'model.safetensors')))]]);
        const header = await readSafetensorsHeader(memorySource('model.safetensors', files.get('model.safetensors')!));
        expectTensorsMatch(config, [header], 'BF16');
        expect(header.tensors.has('lm_head.weight')).toBe(false);
        const host = hostWeightsFromNames(config, 'bf16', (name) => Float64Array.from(floats(files, header, name)));
        const tok = loadTokenizer(loaded.tokenizerFiles!);
        const seqs = ['The capital of France is Paris.', 'Paris.'].map((a) => tok.encodeChat([{ role: 'user', content: 'Capital of France?' }, { role: 'assistant', content: a }], { dateString: '26 Jul 2024' }).ids);
        const got = await scoreRewards(model, seqs);
        const want = seqs.map((ids) => referenceReward(host, { batchSize: 1, seqLen: ids.length, ids, mask: new Array<number>(ids.length).fill(1) })[0]!);
        for (let i = 0; i < 2; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(want[i]!)));
        expect(got[0]).not.toBeCloseTo(got[1]!, 6);
      } finally {
        model.release();
        releaseWeights(loaded.weights);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
