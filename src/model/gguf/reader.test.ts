import { describe, expect, it } from 'vitest';
import { memorySource } from '../../io/byte-source';
import { hostWeightsByName, randomHostWeights, tinyConfig } from '../random';
import { bool, q4kmTypes, str, u32, writeGguf, writeGgufModel } from '../testing/gguf-writer';
import { dequantize, GGML_FORMATS } from '../../gpu/ggml';
import { expectedGgufTensors, ggufModelConfig, ggufRowOf, llama3RopeFactors, permutedHeads, permuteRows, unpermuteRows } from './config';
import { quantizeRows } from '../../gpu/ggml-quantize';
import { planGgufTensors } from './load';
import { readGgufHeader } from './reader';

describe('llama.cpp q/k permutation', () => {
  it('ggufRowOf is reshape(n_head, 2, hd/2).swapaxes(1, 2) of convert_hf_to_gguf.py', () => {
    // Build the permuted order literally: for each head h, for i < hd/2, for s < 2: HF row h·hd + s·hd/2 + i.
    const heads = 3;
    const hd = 8;
    const literal: number[] = [];
    for (let h = 0; h < heads; h++) for (let i = 0; i < hd / 2; i++) for (let s = 0; s < 2; s++) literal.push(h * hd + s * (hd / 2) + i);
    // literal[g] = the HF row at GGUF row g
    for (let r = 0; r < heads * hd; r++) expect(literal[ggufRowOf(r, heads * hd, heads)]).toBe(r);
    const bytes = Uint8Array.from({ length: heads * hd * 3 }, (_, i) => i);
    expect([...unpermuteRows(permuteRows(bytes, heads * hd, heads), heads * hd, heads)]).toEqual([...bytes]);
  });
});

describe('GGUF header and config', () => {
  for (const family of ['llama', 'qwen2', 'qwen3'] as const)
    it(`${family}: metadata → the same ModelConfig; every tensor's type, shape and byte range; q/k rows back in HF order`, async () => {
      const config = tinyConfig({ family, hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 40, tieWordEmbeddings: family !== 'qwen2', llama3Rope: family === 'llama' });
      const w = hostWeightsByName(randomHostWeights(config, 'f32', 11));
      const typeOf = (n: string, shape: number[]) => (n.includes('embed') || n.includes('lm_head') ? 'Q8_0' : q4kmTypes(n, shape));
      const file = writeGgufModel(config, (n) => w.get(n)!, {
        typeOf,
        metadata: { 'tokenizer.ggml.bos_token_id': u32(1), 'tokenizer.ggml.eos_token_id': u32(2), 'tokenizer.ggml.add_bos_token': bool(true) },
      });
      const h = await readGgufHeader(memorySource('tiny.gguf', file));
      expect(h.version).toBe(3);
      const freqs = h.tensors.get('rope_freqs.weight');
      expect(Boolean(freqs)).toBe(family === 'llama');
      const parsed = ggufModelConfig(h, freqs ? dequantize(GGML_FORMATS.F32, file.subarray(freqs.begin, freqs.end!), 32) : null);
      expect(parsed).toEqual({ ...config, dtype: 'gguf' });
      for (const { gguf, hf, shape } of expectedGgufTensors(config)) {
        const t = h.tensors.get(gguf)!;
        const type = typeOf(hf, shape);
        expect(t, gguf).toMatchObject({ typeName: type, shape });
        expect(t.begin % 32).toBe(0);
        const f = GGML_FORMATS[type];
        const n = shape.reduce((a, b) => a * b, 1);
        let bytes = file.subarray(t.begin, t.end!);
        const heads = permutedHeads(parsed, family, hf);
        expect(heads !== null).toBe(family === 'llama' && /[qk]_proj\.weight/.test(hf));
        if (heads) bytes = unpermuteRows(bytes, shape[0]!, heads);
        const want = dequantize(f, quantizeRows(f, w.get(hf)!, shape.length === 1 ? 1 : shape[0]!, shape.at(-1)!), n);
        const got = dequantize(f, bytes, n);
        expect(want.every((x, i) => x === got[i]), hf).toBe(true);
      }
    });

  it('refusals: truncated file, not GGUF, unsupported architecture, MoE, rope scaling, odd rope factors', async () => {
    const config = tinyConfig({ hiddenSize: 64, numHeads: 2, numKvHeads: 1, headDim: 32, intermediateSize: 96, vocabSize: 40, tieWordEmbeddings: true, llama3Rope: true });
    const w = hostWeightsByName(randomHostWeights(config, 'f32', 3));
    const file = writeGgufModel(config, (n) => w.get(n)!);
    const h = await readGgufHeader(memorySource('tiny.gguf', file));
    await expect(readGgufHeader(memorySource('cut.gguf', file.slice(0, file.length - 100)))).rejects.toThrow(
      /cut\.gguf: truncated: tensor "[^"]+" ends at byte \d+ but the file has only \d+ bytes .*download it again/,
    );
    await expect(readGgufHeader(memorySource('x.gguf', new Uint8Array(64)))).rejects.toThrow(/x\.gguf: not a GGUF file/);
    const gemma = await readGgufHeader(memorySource('g.gguf', writeGguf({ 'general.architecture': str('gemma2'), 'gemma2.block_count': u32(1) }, [])));
    expect(() => ggufModelConfig(gemma)).toThrow(/g\.gguf: GGUF architecture "gemma2" is not supported \(supported: llama, qwen2, qwen3\)/);
    expect(() => ggufModelConfig({ ...h, metadata: { ...h.metadata, 'llama.expert_count': 8 } })).toThrow(/expert_count" is 8; mixture-of-experts/);
    expect(() => ggufModelConfig({ ...h, metadata: { ...h.metadata, 'llama.rope.scaling.type': 'yarn' } })).toThrow(/rope\.scaling\.type "yarn" is not supported/);
    expect(() => ggufModelConfig(h, new Float64Array(16).fill(3))).toThrow(/rope_freqs\.weight holds rope factors that are not Llama 3's rule/);
    // The loader's plan: a tensor in a type we do not decode is refused by tensor and type name;
    // tensors of another layer design (MoE experts) and missing ones too.
    const cfg = ggufModelConfig(h, new Float64Array(llama3RopeFactors(32, config.ropeTheta, config.ropeScaling!)));
    expect(planGgufTensors(h, cfg).tensors.size).toBe(expectedGgufTensors(cfg).length);
    const q5 = new Map(h.tensors);
    q5.set('blk.1.attn_q.weight', { ...q5.get('blk.1.attn_q.weight')!, type: 13, typeName: 'Q5_K', end: null });
    expect(() => planGgufTensors({ ...h, tensors: q5 }, cfg)).toThrow(/tiny\.gguf: tensor "blk\.1\.attn_q\.weight" is stored as Q5_K, which Fuse Studio cannot decode \(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K\)/);
    const moe = new Map(h.tensors);
    moe.set('blk.0.ffn_gate_exps.weight', { ...moe.get('blk.0.ffn_gate.weight')!, name: 'blk.0.ffn_gate_exps.weight' });
    expect(() => planGgufTensors({ ...h, tensors: moe }, cfg)).toThrow(/"blk\.0\.ffn_gate_exps\.weight", which the llama decoder here does not use/);
    const missing = new Map(h.tensors);
    missing.delete('output_norm.weight');
    expect(() => planGgufTensors({ ...h, tensors: missing }, cfg)).toThrow(/tiny\.gguf: tensor "output_norm\.weight" missing/);
  });
});
