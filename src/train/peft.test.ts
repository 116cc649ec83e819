import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { relError } from '../engine/testing/compare';
import { testContext } from '../engine/testing/gpu';
import { freshSeed } from '../engine/testing/random';
import { encode, quantize } from '../gpu/dtype';
import { forward, readLogp, readSequenceLogProbs } from '../model/forward';
import { peftTensorName, LORA_TARGETS, targetDims, type LoraTarget } from '../model/lora';
import { randomHostLora, tinyConfig } from '../model/random';
import { createTrainWorkspace } from '../model/activations';
import { setBatchInputs } from '../model/inputs';
import { referenceForward, type HostLora, type HostWeights } from '../model/reference';
import { writeSafetensors } from '../model/safetensors';
import { F32_UNTIED, BF16_TIED, setup } from '../model/testing/fixtures';
import {
  combineAdapters,
  createAdaptersFromHost,
  deltaWeight,
  exportPeftAdapter,
  fromHostLora,
  importPeftAdapter,
  PeftError,
  readHostAdapter,
  toHostLora,
  writeHostAdapter,
  type HostAdapter,
} from './peft';
import { loadPeftAdapter, savePeftAdapter } from './peft-node';

const enc = new TextEncoder();
const exactBytes = (v: ArrayLike<number>, dtype: 'f32' | 'bf16') => {
  const b = encode(v, dtype);
  return b.subarray(0, v.length * (dtype === 'f32' ? 4 : 2));
};

/** adapter_config.json exactly as PEFT 0.15 writes it (newer fields included, sorted, indent 2). */
function hfAdapterConfig(over: Record<string, unknown>): string {
  const c: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: 'meta-llama/Llama-3.2-1B-Instruct',
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 16,
    lora_bias: false,
    lora_dropout: 0.05,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: 8,
    rank_pattern: {},
    revision: null,
    target_modules: ['v_proj', 'q_proj'],
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: false,
    ...over,
  };
  return JSON.stringify(Object.fromEntries(Object.keys(c).sort().map((k) => [k, c[k]])), null, 2);
}

/** A PEFT folder written by hand: tensors sorted by name (as safetensors' Python writer orders them). */
function handWrittenFolder(host: HostLora, targets: LoraTarget[], config: string, dtype: 'f32' | 'bf16'): Map<string, Uint8Array> {
  const tensors: { name: string; dtype: 'F32' | 'BF16'; shape: number[]; data: Uint8Array }[] = [];
  host.layers.forEach((layer, l) => {
    for (const t of targets) {
      const m = layer[t]!;
      const inF = m.a.length / host.rank;
      const outF = m.b.length / host.rank;
      tensors.push({ name: peftTensorName(l, t, 'A'), dtype: dtype === 'f32' ? 'F32' : 'BF16', shape: [host.rank, inF], data: exactBytes(m.a, dtype) });
      tensors.push({ name: peftTensorName(l, t, 'B'), dtype: dtype === 'f32' ? 'F32' : 'BF16', shape: [outF, host.rank], data: exactBytes(m.b, dtype) });
    }
  });
  tensors.sort((a, b) => (a.name < b.name ? -1 : 1));
  return new Map([
    ['adapter_config.json', enc.encode(config)],
    ['adapter_model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
  ]);
}

function sameAdapter(a: HostAdapter, b: HostAdapter): void {
  expect([a.rank, a.alpha, a.targets]).toEqual([b.rank, b.alpha, b.targets]);
  a.layers.forEach((layer, l) => {
    for (const t of a.targets) {
      expect(Buffer.from(layer[t]!.a.buffer).equals(Buffer.from(b.layers[l]![t]!.a.buffer)), `layer ${l} ${t} A`).toBe(true);
      expect(Buffer.from(layer[t]!.b.buffer).equals(Buffer.from(b.layers[l]![t]!.b.buffer)), `layer ${l} ${t} B`).toBe(true);
    }
  });
}

describe('PEFT adapters', () => {
  it('export → import round trip: identical tensors, the same log-probs; files as PEFT writes them; Node folders', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, F32_UNTIED, seed);
    const dir = await mkdtemp(join(tmpdir(), 'peft-'));
    try {
      const host = await readHostAdapter(ctx, m.lora);
      const files = exportPeftAdapter(host, { baseModel: 'meta-llama/Llama-3.2-1B-Instruct' });
      const config = JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')));
      expect(config).toMatchObject({
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        r: 3,
        lora_alpha: 6,
        target_modules: ['q_proj', 'v_proj', 'o_proj', 'down_proj'],
        lora_dropout: 0,
        bias: 'none',
        fan_in_fan_out: false,
        inference_mode: true,
        use_rslora: false,
        use_dora: false,
        modules_to_save: null,
        base_model_name_or_path: 'meta-llama/Llama-3.2-1B-Instruct',
      });
      expect(Object.keys(config)).toEqual(Object.keys(config).sort());

      const back = importPeftAdapter(files, m.config);
      expect(back.baseModel).toBe('meta-llama/Llama-3.2-1B-Instruct');
      expect(back.notes).toEqual([]);
      sameAdapter(back.adapter, host);

      forward(m.model, m.ws, { lora: m.lora });
      const want = await readSequenceLogProbs(m.model, m.ws);
      const again = createAdaptersFromHost(ctx, m.config, back.adapter, { trainable: false });
      try {
        forward(m.model, m.ws, { lora: again });
        const got = await readSequenceLogProbs(m.model, m.ws);
        expect([...got.sums], `seed ${seed}`).toEqual([...want.sums]);
        expect(relError(got.sums, referenceSums(m.host, m.inputs, toHostLora(back.adapter))), `seed ${seed}`).toBeLessThan(1e-5);
      } finally {
        again.release();
      }

      // bf16 export: every value is the bf16 rounding of the f32 one.
      const bf = importPeftAdapter(exportPeftAdapter(host, { dtype: 'bf16' }), m.config).adapter;
      expect([...bf.layers[1]!.o_proj!.b]).toEqual([...quantize(host.layers[1]!.o_proj!.b, 'bf16')]);

      // Node folder helpers.
      await savePeftAdapter(dir, host, { baseModel: 'x/y' });
      expect((await readdir(dir)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
      const loaded = await loadPeftAdapter(dir, m.config);
      sameAdapter(loaded.adapter, host);
      expect(loaded.baseModel).toBe('x/y');
    } finally {
      m.release();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([false, true])('a hand-written PEFT folder (HF key order, bf16, use_rslora %s) gives the float64 reference log-probs', async (rslora) => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, BF16_TIED, seed);
    try {
      const targets: LoraTarget[] = ['q_proj', 'v_proj'];
      const r = 8;
      const loraAlpha = 16;
      // The true adapter in float64, its values bf16-exact (the file is BF16).
      const raw = randomHostLora(m.config, { rank: r, alpha: loraAlpha, targets }, seed + 7, 0.5);
      for (const layer of raw.layers) for (const t of targets) layer[t] = { a: quantize(layer[t]!.a, 'bf16'), b: quantize(layer[t]!.b, 'bf16') };
      const files = handWrittenFolder(raw, targets, hfAdapterConfig({ r, lora_alpha: loraAlpha, use_rslora: rslora }), 'bf16');
      const imported = importPeftAdapter(files, m.config);
      expect(imported.adapter.targets).toEqual(['q_proj', 'v_proj']);
      expect(imported.notes.length).toBe(rslora ? 1 : 0);
      const scale = rslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
      expect(imported.adapter.alpha / imported.adapter.rank).toBeCloseTo(scale, 12);

      // Reference: the PEFT definition, W + scale·B·A, written as an alpha for scale·r.
      const ref = referenceForward(m.host, m.inputs, { ...raw, alpha: scale * r });
      const lora = createAdaptersFromHost(ctx, m.config, imported.adapter, { trainable: false });
      // A workspace for the imported rank (the fixture's serves its own adapter's rank).
      const ws = createTrainWorkspace(m.model, { batchSize: BF16_TIED.batchSize, seqLen: BF16_TIED.seqLen, lora: lora.config, backward: false, lmHeadChunk: BF16_TIED.lmHeadChunk });
      try {
        setBatchInputs(ctx, ws, m.inputs);
        forward(m.model, ws, { lora });
        const logp = await readLogp(m.model, ws);
        expect(relError(logp, ref.logp), `seed ${seed}`).toBeLessThan(1e-5);
        const base = referenceForward(m.host, m.inputs, null);
        expect(relError(base.logp, ref.logp), `seed ${seed}: the adapter matters`).toBeGreaterThan(1e-3);
      } finally {
        ws.release();
        lora.release();
      }
    } finally {
      m.release();
    }
  });

  it('refuses what it cannot reproduce, naming the field or tensor', () => {
    const config = tinyConfig(F32_UNTIED.config);
    const targets: LoraTarget[] = ['q_proj', 'v_proj'];
    const host = randomHostLora(config, { rank: 4, alpha: 8, targets }, 1);
    const folder = (over: Record<string, unknown>) => handWrittenFolder(host, targets, hfAdapterConfig({ r: 4, lora_alpha: 8, ...over }), 'f32');
    expect(() => importPeftAdapter(folder({}), config)).not.toThrow();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ use_dora: true }, /DoRA/],
      [{ modules_to_save: ['lm_head'] }, /modules_to_save/],
      [{ bias: 'lora_only' }, /trained biases/],
      [{ rank_pattern: { q_proj: 2 } }, /rank_pattern/],
      [{ alpha_pattern: { q_proj: 2 } }, /alpha_pattern/],
      [{ peft_type: 'PREFIX_TUNING' }, /only LoRA/],
      [{ task_type: 'SEQ_CLS' }, /CAUSAL_LM/],
      [{ r: 8 }, /q_proj\.lora_A\.weight" has shape \[4, 32\].*\[8, 32\]/],
      [{ target_modules: ['q_proj'] }, /does not list v_proj/],
      [{ target_modules: ['q_proj', 'v_proj', 'k_proj'] }, /lists k_proj but the file has no k_proj/],
      [{ layer_replication: [[0, 1]] }, /layer_replication/],
    ];
    for (const [over, re] of cases) expect(() => importPeftAdapter(folder(over), config), JSON.stringify(over)).toThrow(re);

    const withTensor = (name: string, shape: number[]) => {
      const f = folder({});
      const extra = { name, dtype: 'F32' as const, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * 4) };
      const tensors = [extra, ...handTensors(host, targets)];
      f.set('adapter_model.safetensors', writeSafetensors(tensors));
      return f;
    };
    expect(() => importPeftAdapter(withTensor('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', [32]), config)).toThrow(/DoRA/);
    expect(() => importPeftAdapter(withTensor('base_model.model.lm_head.weight', [300, 32]), config)).toThrow(/modules_to_save/);
    expect(() => importPeftAdapter(withTensor('base_model.model.model.layers.5.self_attn.k_proj.lora_A.weight', [4, 32]), config)).toThrow(/layer 5 but the model has 2 layers/);
    expect(() => importPeftAdapter(withTensor('base_model.model.model.layers.0.mlp.q_proj.lora_A.weight', [4, 32]), config)).toThrow(/lives in self_attn/);
    expect(() => importPeftAdapter(withTensor('base_model.model.model.embed_tokens.lora_embedding_A', [4, 300]), config)).toThrow(/embedding/);

    const noB = folder({});
    noB.set('adapter_model.safetensors', writeSafetensors(handTensors(host, targets).filter((t) => t.name !== peftTensorName(1, 'v_proj', 'B'))));
    expect(() => importPeftAdapter(noB, config)).toThrow(/layer 1 v_proj has lora_A but no lora_B/);
    const bin = new Map([['adapter_config.json', enc.encode(hfAdapterConfig({}))], ['adapter_model.bin', new Uint8Array(1)]]);
    expect(() => importPeftAdapter(bin, config)).toThrow(/adapter_model.bin.*convert/);
    expect(() => importPeftAdapter(new Map(), config)).toThrow(PeftError);

    // layers_to_transform: the left-out layer gets a zero (no-op) adapter.
    const partial = folder({ layers_to_transform: [1] });
    partial.set('adapter_model.safetensors', writeSafetensors(handTensors(host, targets).filter((t) => !t.name.includes('layers.0.'))));
    const got = importPeftAdapter(partial, config);
    expect(got.adapter.layers[0]!.q_proj!.b.every((x) => x === 0)).toBe(true);
    expect(got.notes.join()).toMatch(/layers 0 have no adapter/);
    // Keys with the adapter name kept (some tools save ….lora_A.default.weight) are accepted.
    const named = folder({});
    named.set('adapter_model.safetensors', writeSafetensors(handTensors(host, targets).map((t) => ({ ...t, name: t.name.replace('.weight', '.default.weight') }))));
    expect(importPeftAdapter(named, config).adapter.rank).toBe(4);
  });

  it('two-stage combination: one rank r1+r2 adapter whose update is exactly s1·B1·A1 + s2·B2·A2; same log-probs as both merged', async () => {
    const ctx = await testContext();
    const seed = freshSeed();
    const m = setup(ctx, F32_UNTIED, seed);
    try {
      const sft = fromHostLora(randomHostLora(m.config, { rank: 3, alpha: 6, targets: ['q_proj', 'v_proj', 'o_proj', 'down_proj'] }, seed + 11));
      const dpo = fromHostLora(randomHostLora(m.config, { rank: 2, alpha: 8, targets: ['q_proj', 'gate_proj'] }, seed + 12));
      const both = combineAdapters(sft, dpo);
      expect([both.rank, both.alpha / both.rank]).toEqual([5, 2]);
      expect(both.targets).toEqual(['q_proj', 'v_proj', 'o_proj', 'gate_proj', 'down_proj']);
      // s2/s1 = 2: scaling A2 is exact, so A and B are the concatenations bit for bit.
      const q = both.layers[1]!.q_proj!;
      expect([...q.a.subarray(0, 3 * 32)]).toEqual([...sft.layers[1]!.q_proj!.a]);
      expect([...q.a.subarray(3 * 32)]).toEqual([...dpo.layers[1]!.q_proj!.a].map((x) => 2 * x));
      for (let l = 0; l < m.config.numLayers; l++)
        for (const t of LORA_TARGETS) {
          const [inF, outF] = targetDims(m.config, t);
          const want = new Float64Array(inF * outF);
          for (const a of [sft, dpo]) if (a.targets.includes(t)) deltaWeight(a, l, t).forEach((x, i) => (want[i] += x));
          const got = both.targets.includes(t) ? deltaWeight(both, l, t) : new Float64Array(inF * outF);
          expect(relError(got, want) < 1e-14 || want.every((x) => x === 0), `layer ${l} ${t}`).toBe(true);
        }
      // A ratio that is not a power of two rounds (s2/s1)·A2 once: still within f32 rounding.
      const odd = combineAdapters(sft, { ...dpo, alpha: 7 });
      const d = deltaWeight(odd, 0, 'q_proj');
      const w = deltaWeight(sft, 0, 'q_proj').map((x, i) => x + deltaWeight({ ...dpo, alpha: 7 }, 0, 'q_proj')[i]!);
      expect(relError(d, w)).toBeLessThan(1e-7);

      // On the GPU: the combined adapter vs the base weights with both updates merged in float64.
      const merged: HostWeights = { ...m.host, layers: m.host.layers.map((layer) => ({ ...layer })) };
      const field = { q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down' } as const;
      merged.layers.forEach((layer, l) => {
        for (const a of [sft, dpo])
          for (const t of a.targets) {
            const dw = deltaWeight(a, l, t);
            layer[field[t]] = layer[field[t]]!.map((x, i) => x + dw[i]!);
          }
      });
      const ref = referenceForward(merged, m.inputs, null);
      const lora = createAdaptersFromHost(ctx, m.config, both, { trainable: false });
      const ws = createTrainWorkspace(m.model, { batchSize: F32_UNTIED.batchSize, seqLen: F32_UNTIED.seqLen, lora: lora.config, backward: false });
      try {
        setBatchInputs(ctx, ws, m.inputs);
        forward(m.model, ws, { lora });
        expect(relError(await readLogp(m.model, ws), ref.logp), `seed ${seed}`).toBeLessThan(1e-5);
      } finally {
        ws.release();
        lora.release();
      }
      // Writing into adapters of another shape is refused.
      expect(() => writeHostAdapter(ctx, m.lora, both)).toThrow(/does not fit/);
    } finally {
      m.release();
    }
  });
});

function handTensors(host: HostLora, targets: LoraTarget[]) {
  const out: { name: string; dtype: 'F32'; shape: number[]; data: Uint8Array }[] = [];
  host.layers.forEach((layer, l) => {
    for (const t of targets) {
      const m = layer[t]!;
      out.push({ name: peftTensorName(l, t, 'A'), dtype: 'F32', shape: [host.rank, m.a.length / host.rank], data: exactBytes(m.a, 'f32') });
      out.push({ name: peftTensorName(l, t, 'B'), dtype: 'F32', shape: [m.b.length / host.rank, host.rank], data: exactBytes(m.b, 'f32') });
    }
  });
  return out;
}

function referenceSums(host: HostWeights, inputs: Parameters<typeof referenceForward>[1], lora: HostLora): number[] {
  const { logp } = referenceForward(host, inputs, lora);
  const T = inputs.seqLen;
  return Array.from({ length: inputs.batchSize }, (_, b) => {
    let s = 0;
    for (let t = 0; t < T; t++) if (inputs.targets![b * T + t] !== -100) s += logp[b * T + t]!;
    return s;
  });
}
