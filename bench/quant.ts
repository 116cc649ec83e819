// Quantized base weights (issue 14): what int8 / int4 cost in quality, what they buy in memory,
// and how fast the kernels that dequantize them run.
//   quant.kl.{int8,int4}.{tiny,demo}    mean per-token KL(bf16 ‖ quantized) of the next-token
//                                       distribution, nats (lower is better)
//   quant.top1.{int8,int4}.{tiny,demo}  fraction of positions whose argmax agrees with bf16's
//     tiny: a random 64-wide Llama (W ~ N(0, 1/in), O(1) logits, vocab 512); demo: the built-in demo
//     model (hidden 64, the Llama 3 vocabulary of 128,256). Random token sequences, B = 2, T = 32.
//     Computed by the float64 reference on the dequantized weights, which every quantized kernel
//     matches to rel err < 1e-5 (src/engine/matmul-quant.test.ts, src/model/quant-model.test.ts).
//   quant.matmul.{bf16,int8,int4,q4_k}.KxN   GFLOP/s of x·Wᵀ on the Llama-3.2-1B projection shapes,
//                                       the same x, the same adapter, default path (output checked);
//                                       q4_k: GGUF's Q4_K blocks as a .gguf stores them (src/gpu/ggml.ts)
//   quant.memory-plan.{bf16,int8,int4}.{1b,3b}  bytes of a LoRA r16 training step at seq 1024
//   quant.memory-peak.int4.<model>      the pool's measured peak over a LoRA r16 forward + backward
//   quant.memory-plan.int4.<model>      step on an int4 base of `--model` (default Llama-3.2-1B, its
//                                       exact shapes; random weights), batch 1, `--seq` tokens, and
//                                       the plan for it: they must agree (the shape says peak/plan)
import { dequantize, quantize as quantizeTo, type QuantDType } from '../src/gpu/quant';
import { encode, decode } from '../src/gpu/dtype';
import { matmul } from '../src/engine/matmul';
import { relError } from '../src/engine/testing/compare';
import { rng } from '../src/engine/testing/random';
import { LLAMA_3_2_PRESETS, parseModelConfig } from '../src/model/config';
import { generateDemoModel } from '../src/model/demo';
import { planMemory } from '../src/model/memory-plan';
import { hostWeightsFromNames, quantizedHostWeights, randomHostWeights, tinyConfig } from '../src/model/random';
import { referenceForward, type HostWeights } from '../src/model/reference';
import { readSafetensorsHeader } from '../src/model/safetensors';
import { memorySource } from '../src/io/byte-source';
import { countTargets, backward } from '../src/model/backward';
import { createTrainWorkspace } from '../src/model/activations';
import { createDecoderModel } from '../src/model/decoder';
import { forward, readLogp } from '../src/model/forward';
import { setBatchInputs } from '../src/model/inputs';
import { createLoraAdapters } from '../src/model/lora';
import { formatBytes } from '../src/model/memory-plan';
import { seededRandom, uploadRandomWeights } from '../src/model/random';
import { releaseWeights } from '../src/model/weights';
import { gflops, result, timeInterleaved, type BenchContext, type Benchmark, type Result } from './harness';
import { STEP_MODELS } from './model-step';

const QUANTS: readonly QuantDType[] = ['int8', 'int4'];

/** Mean KL(p ‖ q) and top-1 agreement over the rows of two [N, V] logit tables. */
function compare(p: Float64Array, q: Float64Array, V: number): { kl: number; top1: number } {
  const N = p.length / V;
  let kl = 0;
  let agree = 0;
  for (let i = 0; i < N; i++) {
    const a = p.subarray(i * V, (i + 1) * V);
    const b = q.subarray(i * V, (i + 1) * V);
    const lse = (x: Float64Array) => {
      let m = -Infinity;
      for (const v of x) m = Math.max(m, v);
      let s = 0;
      for (const v of x) s += Math.exp(v - m);
      return m + Math.log(s);
    };
    const la = lse(a);
    const lb = lse(b);
    let row = 0;
    let ia = 0;
    let ib = 0;
    for (let v = 0; v < V; v++) {
      const lpa = a[v]! - la;
      row += Math.exp(lpa) * (lpa - (b[v]! - lb));
      if (a[v]! > a[ia]!) ia = v;
      if (b[v]! > b[ib]!) ib = v;
    }
    kl += row;
    if (ia === ib) agree++;
  }
  return { kl: kl / N, top1: agree / N };
}

/** The demo model's host weights (bf16 from its safetensors). */
async function demoHost(): Promise<HostWeights> {
  const files = generateDemoModel(null);
  const config = parseModelConfig(JSON.parse(new TextDecoder().decode(files.get('config.json')!)));
  const bytes = files.get('model.safetensors')!;
  const header = await readSafetensorsHeader(memorySource('model.safetensors', bytes));
  return hostWeightsFromNames(config, 'bf16', (name) => {
    const e = header.tensors.get(name)!;
    const n = e.shape.reduce((a, b) => a * b, 1);
    return Float64Array.from(decode(bytes.slice(e.begin, e.end).buffer, n, 'bf16'));
  });
}

function quality(name: string, host: HostWeights, log: (s: string) => void): Result[] {
  const next = rng(7);
  const [B, T] = [2, 32];
  const V = host.config.vocabSize;
  const ids = Array.from({ length: B * T }, () => Math.floor(next() * V));
  const x = { batchSize: B, seqLen: T, ids, mask: ids.map(() => 1) };
  const base = referenceForward(host, x, null).logits;
  const out: Result[] = [];
  for (const q of QUANTS) {
    const { kl, top1 } = compare(base, referenceForward(quantizedHostWeights(host, q), x, null).logits, V);
    log(`${name} ${q}: KL ${kl.toExponential(3)} nats, top-1 agreement ${(100 * top1).toFixed(1)}%`);
    const shape = `B${B}xT${T} V${V} H${host.config.hiddenSize}`;
    out.push(result({ name: `quant.kl.${q}.${name}`, unit: 'nats', ours: kl, shape }));
    out.push(result({ name: `quant.top1.${q}.${name}`, unit: 'fraction', ours: top1, shape }));
  }
  return out;
}

export const quantBench: Benchmark = {
  name: 'quant',
  description: 'int8/int4 base weights: KL and top-1 agreement vs bf16, matmul GFLOP/s vs bf16, memory plans',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const results: Result[] = [];

    // ---- quality
    const tiny = randomHostWeights(tinyConfig({ hiddenSize: 64, intermediateSize: 176, numHeads: 4, numKvHeads: 2, vocabSize: 512, tieWordEmbeddings: true, llama3Rope: true }), 'bf16', 11);
    results.push(...quality('tiny', tiny, ctx.log));
    results.push(...quality('demo', await demoHost(), ctx.log));

    // ---- matmul throughput with quantized weights
    const M = options.tokens;
    const next = rng(20250101);
    for (const [K, N] of options.shapes) {
      const x = Float32Array.from({ length: M * K }, () => 2 * next() - 1);
      const w = Float32Array.from({ length: N * K }, () => ((2 * next() - 1) * 1) / Math.sqrt(K));
      const tx = gpu.upload(x, [M, K], 'f32', 'bench x');
      const formats = ['bf16', ...QUANTS, 'q4_k'] as const;
      const weights = Object.fromEntries(
        formats.map((f) => {
          const t = gpu.tensor([N, K], f, `bench W ${f}`);
          gpu.writeBytes(t, f === 'bf16' || f === 'q4_k' ? encode(w, f) : quantizeTo(w, f));
          return [f, t];
        }),
      ) as Record<(typeof formats)[number], ReturnType<typeof gpu.tensor>>;
      const outs = Object.fromEntries(formats.map((f) => [f, gpu.tensor([M, N], 'f32', `bench out ${f}`)])) as typeof weights;
      try {
        const timings = await timeInterleaved(
          Object.fromEntries(
            formats.map((f) => [
              f,
              {
                step: () => {
                  const b = gpu.batch('bench quant matmul');
                  matmul(b, { a: tx, b: weights[f], out: outs[f], layout: 'nt' });
                  b.submit();
                },
                sync: () => gpu.flush(),
              },
            ]),
          ) as Record<(typeof formats)[number], { step: () => void; sync: () => Promise<void> }>,
          options,
        );
        const shape = `${M}x${K}x${N}`;
        for (const f of formats) {
          // Row 0 against float64 of the weights this format holds.
          const wf = f === 'bf16' || f === 'q4_k' ? decode(encode(w, f).buffer, w.length, f) : dequantize(quantizeTo(w, f), w.length, f);
          const want = new Float64Array(N);
          for (let n = 0; n < N; n++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += x[k]! * wf[n * K + k]!;
            want[n] = s;
          }
          const err = relError((await gpu.read(outs[f])).subarray(0, N), want);
          if (!(err < 1e-4)) throw new Error(`quant matmul ${f} ${shape}: rel err ${err.toExponential(2)} against float64`);
          const rate = gflops(2 * M * N * K, timings[f].ms);
          ctx.log(`matmul ${f} ${shape}: ${timings[f].ms.toFixed(2)} ms, ${rate.toFixed(3)} GFLOP/s`);
          results.push(result({ name: `quant.matmul.${f}.${K}x${N}`, unit: 'GFLOP/s', ours: rate, shape }));
        }
      } finally {
        for (const t of [tx, ...Object.values(weights), ...Object.values(outs)]) t.release();
      }
    }

    // ---- memory plans with and without quantization
    for (const [key, preset] of [
      ['1b', 'llama-3.2-1b'],
      ['3b', 'llama-3.2-3b'],
    ] as const)
      for (const q of [null, ...QUANTS]) {
        const plan = planMemory(LLAMA_3_2_PRESETS[preset], { batch: 1, seq: 1024, loraRank: 16, weightDType: 'bf16', quant: q });
        results.push(result({ name: `quant.memory-plan.${q ?? 'bf16'}.${key}`, unit: 'bytes', ours: plan.training, shape: `${preset} B1xT1024 r16 (weights ${plan.bytes.weights} bytes)` }));
      }
    results.push(...(await stepPeak(ctx, 'int4')));
    return results;
  },
};

/** One LoRA step on a quantized base of `--model`: the pool's peak against the plan. */
async function stepPeak(ctx: BenchContext, quant: QuantDType): Promise<Result[]> {
  const { gpu, options } = ctx;
  const config = STEP_MODELS[options.model];
  if (!config) throw new Error(`quant: unknown model "${options.model}" (known: ${Object.keys(STEP_MODELS).join(', ')})`);
  const [B, T] = [1, options.seq];
  const lora = { rank: 16, alpha: 32 };
  const limit = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  await gpu.flush();
  gpu.pool.trim();
  const before = gpu.pool.stats().allocatedBytes;
  gpu.pool.resetPeak();
  const t0 = performance.now();
  const weights = await uploadRandomWeights(gpu, config, 'bf16', 5, { maxChunkBytes: limit, quant });
  const model = createDecoderModel(gpu, weights);
  const adapters = createLoraAdapters(gpu, config, lora, { seed: 5 });
  const ws = createTrainWorkspace(model, { batchSize: B, seqLen: T, lora });
  try {
    const next = seededRandom(5);
    const ids = Int32Array.from({ length: B * T }, () => Math.floor(next() * config.vocabSize));
    const targets = Int32Array.from({ length: B * T }, (_, i) => ((i + 1) % T ? ids[i + 1]! : -100));
    setBatchInputs(gpu, ws, { ids, mask: new Int32Array(B * T).fill(1), targets });
    forward(model, ws, { lora: adapters });
    backward(model, ws, { lora: adapters, scale: 1 / countTargets(targets) });
    await gpu.flush();
    const peak = gpu.pool.stats().peakBytes - before;
    const logp = await readLogp(model, ws);
    if (logp.some((x) => !Number.isFinite(x) || x > 1e-4)) throw new Error(`quant: a step on the ${quant} base gave log-probs that are not log-probs`);
    const plan = planMemory(config, { batch: B, seq: T, loraRank: lora.rank, weightDType: 'bf16', quant, maxBindingBytes: limit });
    const ratio = (peak / plan.training).toFixed(4);
    const shape = `B${B}xT${T} ${quant} r16 all7`;
    ctx.log(`${options.model} ${shape}: load + step ${((performance.now() - t0) / 1000).toFixed(1)} s, peak ${formatBytes(peak)}, plan ${formatBytes(plan.training)}`);
    return [
      result({ name: `quant.memory-peak.${quant}.${options.model}`, unit: 'bytes', ours: peak, shape: `${shape}: ${formatBytes(peak)}, peak/plan ${ratio}` }),
      result({ name: `quant.memory-plan.${quant}.${options.model}`, unit: 'bytes', ours: plan.training, shape: `${shape}: ${formatBytes(plan.training)}, peak/plan ${ratio}` }),
    ];
  } finally {
    ws.release();
    adapters.release();
    model.release();
    releaseWeights(weights);
    await gpu.flush();
  }
}
