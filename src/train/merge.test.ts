import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { bf16BitsToF32, decode, f32ToBf16Bits } from '../gpu/dtype';
import type { GpuContext } from '../gpu/context';
import { createTrainWorkspace } from '../model/activations';
import { generateDemoModel } from '../model/demo';
import { forward, readSequenceLogProbs } from '../model/forward';
import { setBatchInputs } from '../model/inputs';
import { createDecoderModel } from '../model/decoder';
import { loadModel } from '../model/load';
import type { LoraAdapters } from '../model/lora';
import { randomHostLora, seededRandom } from '../model/random';
import { localFolderSource } from '../model/source-node';
import { releaseWeights } from '../model/weights';
import { writeFolderFiles, nodeFolderSink } from './files-node';
import { unzipSync } from 'fflate';
import { execFileSync } from 'node:child_process';
import { zipSink } from '../studio/worker/zip-sink';
import { configWithDtype, COPIED_FILES, encodeMerged, f64ToBf16Bits, mergeAdapter } from './merge';
import { findPython } from './testing/python-calls';
import { createAdaptersFromHost, deltaWeight, fromHostLora, safetensorsHeaderOf, readTensor, type HostAdapter } from './peft';

const SHAPE = { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 44, vocabSize: 300, tieWordEmbeddings: false, initStd: 0.25, normJitter: 0.2 };
const B = 3;
const T = 10;

/** Sequence log-prob sums of a model folder on a fixed batch, with an optional adapter. */
async function sums(ctx: GpuContext, dir: string, adapter: HostAdapter | null, batch: { ids: Int32Array; mask: Int32Array; targets: Int32Array }): Promise<Float32Array> {
  const loaded = await loadModel(ctx, localFolderSource(dir));
  const model = createDecoderModel(ctx, loaded.weights);
  let lora: LoraAdapters | null = null;
  try {
    lora = adapter ? createAdaptersFromHost(ctx, loaded.config, adapter, { trainable: false }) : null;
    const ws = createTrainWorkspace(model, { batchSize: B, seqLen: T, lora: lora?.config ?? null, backward: false });
    try {
      setBatchInputs(ctx, ws, batch);
      forward(model, ws, { lora });
      return (await readSequenceLogProbs(model, ws)).sums;
    } finally {
      ws.release();
    }
  } finally {
    lora?.release();
    model.release();
    releaseWeights(loaded.weights);
  }
}

describe('merged export', () => {
  it('f64 -> bf16 rounds once (ties to even), unlike f64 -> f32 -> bf16', () => {
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7; a hair above it must round up.
    const above = 1 + 2 ** -8 + 2 ** -40;
    expect(bf16BitsToF32(f32ToBf16Bits(above))).toBe(1); // double rounding: f32 lands on the tie, even wins
    expect(bf16BitsToF32(f64ToBf16Bits(above))).toBe(1 + 2 ** -7);
    expect(bf16BitsToF32(f64ToBf16Bits(1 + 2 ** -8))).toBe(1); // a true tie: to even
    expect(bf16BitsToF32(f64ToBf16Bits(-(1 + 2 ** -8 + 2 ** -40)))).toBe(-(1 + 2 ** -7));
    expect(bf16BitsToF32(f64ToBf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6); // tie, odd below: up to even
  });

  it('W + scale·B·A (float64, rounded once) loads as a plain checkpoint: f32 merge matches base + adapter tightly, bf16 within rounding; shards', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const root = await mkdtemp(join(tmpdir(), 'merge-'));
    try {
      const baseDir = join(root, 'base');
      await writeFolderFiles(baseDir, generateDemoModel(null, { ...SHAPE, seed, dtype: 'bf16' }));
      const source = localFolderSource(baseDir);
      const config = await loadConfig(baseDir);
      const adapter = fromHostLora(randomHostLora(config, { rank: 4, alpha: 8, targets: ['q_proj', 'k_proj', 'o_proj', 'up_proj', 'down_proj'] }, seed + 1, 0.4));

      const next = seededRandom(seed + 2);
      const ids = Int32Array.from({ length: B * T }, () => Math.floor(next() * SHAPE.vocabSize));
      const mask = Int32Array.from({ length: B * T }, (_, i) => (i % T >= [0, 2, 5][Math.floor(i / T)]! ? 1 : 0));
      const targets = Int32Array.from({ length: B * T }, (_, i) => (mask[i] && i % T < T - 1 ? ids[i + 1]! : -100));
      const batch = { ids, mask, targets };

      const want = await sums(ctx, baseDir, adapter, batch);
      const base = await sums(ctx, baseDir, null, batch);
      expect(relError(base, want), `seed ${seed}: the adapter matters`).toBeGreaterThan(1e-3);

      // f32 merge: the same model up to f32 arithmetic order (GPU LoRA path vs merged weights).
      const f32Dir = join(root, 'merged-f32');
      const report = await mergeAdapter(source, adapter, nodeFolderSink(f32Dir), { dtype: 'f32' });
      expect(report.merged.length).toBe(2 * 5);
      expect((await readdir(f32Dir)).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
      expect(JSON.parse(await readFile(join(f32Dir, 'config.json'), 'utf8')).torch_dtype).toBe('float32');
      const f32Sums = await sums(ctx, f32Dir, null, batch);
      const f32Err = relError(f32Sums, want);
      expect(f32Err, `seed ${seed}`).toBeLessThan(1e-5);

      // bf16 merge, sharded: every merged value is exactly round_bf16(W + s·B·A) from float64 ...
      const bfDir = join(root, 'merged-bf16');
      await mergeAdapter(source, adapter, nodeFolderSink(bfDir), { maxShardBytes: 20_000 });
      const names = (await readdir(bfDir)).sort();
      expect(names).toContain('model.safetensors.index.json');
      expect(names.filter((n) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(n)).length).toBeGreaterThan(2);
      const index = JSON.parse(await readFile(join(bfDir, 'model.safetensors.index.json'), 'utf8'));
      const qName = 'model.layers.1.self_attn.q_proj.weight';
      const qFile = new Uint8Array(await readFile(join(bfDir, index.weight_map[qName])));
      const baseFile = new Uint8Array(await readFile(join(baseDir, 'model.safetensors')));
      const qBase = readTensor(safetensorsHeaderOf('base', baseFile), baseFile, qName, [32, 32]);
      const expected = encodeMerged(deltaWeight(adapter, 1, 'q_proj').map((d, i) => d + qBase[i]!), 'bf16');
      const qHeader = safetensorsHeaderOf('merged', qFile).tensors.get(qName)!;
      expect(qHeader.dtype).toBe('BF16');
      expect(Buffer.from(qFile.subarray(qHeader.begin, qHeader.end)).equals(Buffer.from(expected))).toBe(true);
      // ... and untouched tensors are copied bit for bit.
      const vName = 'model.layers.0.self_attn.v_proj.weight';
      const vFile = new Uint8Array(await readFile(join(bfDir, index.weight_map[vName])));
      const vH = safetensorsHeaderOf('m', vFile).tensors.get(vName)!;
      const vB = safetensorsHeaderOf('b', baseFile).tensors.get(vName)!;
      expect(Buffer.from(vFile.subarray(vH.begin, vH.end)).equals(Buffer.from(baseFile.subarray(vB.begin, vB.end)))).toBe(true);

      // bf16 rounding of the merged weights (relative 2^-9 per weight) moves the log-probs a little:
      // stated bound 5e-3 relative on the sequence sums (measured values are printed).
      const bfSums = await sums(ctx, bfDir, null, batch);
      const bfErr = relError(bfSums, want);
      console.log(`merge seed ${seed}: f32 merged rel err ${f32Err.toExponential(2)}, bf16 merged ${bfErr.toExponential(2)}, adapter effect ${relError(base, want).toExponential(2)}`);
      expect(bfErr, `seed ${seed}`).toBeLessThan(5e-3);
      expect(bfErr, `seed ${seed}: rounding is far smaller than the adapter's effect`).toBeLessThan(relError(base, want) / 5);

      // Decoding the merged shard through our dtype code gives the same numbers.
      expect([...decode(qFile.slice(qHeader.begin, qHeader.end).buffer, 32 * 32, 'bf16')].slice(0, 4)).toEqual(
        [...new Uint16Array(expected.buffer, expected.byteOffset, 4)].map(bf16BitsToF32),
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses an adapter for another model shape', async () => {
    const root = await mkdtemp(join(tmpdir(), 'merge-'));
    try {
      await writeFolderFiles(root, generateDemoModel(null, { ...SHAPE }));
      const wrong = fromHostLora(randomHostLora({ ...(await loadConfig(root)), numLayers: 3 }, { rank: 2, alpha: 4, targets: ['q_proj'] }, 1));
      await expect(mergeAdapter(localFolderSource(root), wrong, nodeFolderSink(join(root, 'out')))).rejects.toThrow(/3 layers but the model has 2/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('merged export: config and tokenizer files', () => {
  const enc = (t: string) => new TextEncoder().encode(t);
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);

  it('edits only the dtype value in config.json, whatever the layout', () => {
    const text = '{\n\t"rope_scaling": {"factor": 32.0, "torch_dtype": "float16"},\n\t"name": "a \\"torch_dtype\\": x",\n\t"rms_norm_eps": 1e-05,\n\t"torch_dtype": "bfloat16",\n\t"rope_theta": 500000.0\n}\n';
    const same = enc(text);
    expect(configWithDtype(same, 'bfloat16')).toBe(same);
    expect(dec(configWithDtype(same, 'float32'))).toBe(text.replace('\t"torch_dtype": "bfloat16"', '\t"torch_dtype": "float32"'));
    const both = '{"dtype":"bfloat16","torch_dtype":"bfloat16","x":[1.0,{"dtype":"bfloat16"}]}';
    expect(dec(configWithDtype(enc(both), 'float32'))).toBe('{"dtype":"float32","torch_dtype":"float32","x":[1.0,{"dtype":"bfloat16"}]}');
    const neither = '{\n  "factor": 32.0,\n  "eps": 1e-05\n}\n';
    expect(dec(configWithDtype(enc(neither), 'bfloat16'))).toBe('{\n  "factor": 32.0,\n  "eps": 1e-05,\n  "dtype": "bfloat16"\n}\n');
  });

  it('the merged folder keeps config.json as written and every tokenizer file; the studio zip holds the same bytes as the CLI folder', async () => {
    const root = await mkdtemp(join(tmpdir(), 'merge-files-'));
    try {
      const baseDir = join(root, 'base');
      const files = generateDemoModel(null, { ...SHAPE, seed: 3, dtype: 'bf16' });
      const configText = dec(files.get('config.json')!);
      expect(configText).toMatch(/"factor": 32\.0,/);
      // Every tokenizer file a base may have, with distinct contents, and one file that is not copied.
      const extra = new Map(COPIED_FILES.filter((f) => !files.has(f)).map((f, i) => [f, enc(`${f} contents ${i}\n`)]));
      extra.set('README.md', enc('model card'));
      await writeFolderFiles(baseDir, new Map([...files, ...extra]));
      const source = localFolderSource(baseDir);
      const adapter = fromHostLora(randomHostLora(await loadConfig(baseDir), { rank: 2, alpha: 4, targets: ['q_proj', 'down_proj'] }, 5, 0.3));

      // bf16 into the CLI's folder sink: config.json byte for byte (the base says bfloat16 already).
      const cliDir = join(root, 'cli');
      const report = await mergeAdapter(source, adapter, nodeFolderSink(cliDir), { dtype: 'bf16' });
      expect((await readdir(cliDir)).sort()).toEqual(['config.json', 'model.safetensors', ...COPIED_FILES].sort());
      expect(report.files.sort()).toEqual(['config.json', 'model.safetensors', ...COPIED_FILES].sort());
      expect(await readFile(join(cliDir, 'config.json'), 'utf8')).toBe(configText);
      for (const f of COPIED_FILES) expect(Buffer.compare(await readFile(join(cliDir, f)), await readFile(join(baseDir, f))), f).toBe(0);

      // f32: only the dtype value differs, and Python reads the rope factor back as a float.
      const f32Dir = join(root, 'f32');
      await mergeAdapter(source, adapter, nodeFolderSink(f32Dir), { dtype: 'f32' });
      const f32Config = await readFile(join(f32Dir, 'config.json'), 'utf8');
      expect(f32Config).toBe(configText.replace('"torch_dtype": "bfloat16"', '"torch_dtype": "float32"'));
      const py = findPython();
      const types = execFileSync(py, ['-c', 'import json,sys; c=json.load(open(sys.argv[1])); print(type(c["rope_scaling"]["factor"]).__name__, type(c["rope_theta"]).__name__, c["torch_dtype"])', join(f32Dir, 'config.json')], { encoding: 'utf8' });
      expect(types.trim()).toBe('float float float32');

      // The studio's merged download: the same mergeAdapter into its zip sink, same bytes per file.
      const zip = zipSink('merged');
      await mergeAdapter(source, adapter, zip, { dtype: 'bf16' });
      const unzipped = unzipSync(new Uint8Array(await zip.finish().arrayBuffer()));
      expect(Object.keys(unzipped).sort()).toEqual((await readdir(cliDir)).map((f) => `merged/${f}`).sort());
      for (const f of await readdir(cliDir)) expect(Buffer.compare(Buffer.from(unzipped[`merged/${f}`]!), await readFile(join(cliDir, f))), f).toBe(0);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

async function loadConfig(dir: string) {
  const { parseModelConfig } = await import('../model/config');
  return parseModelConfig(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
}
