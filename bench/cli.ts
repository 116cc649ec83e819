// Command-line options of `npm run bench` (parsed with node:util parseArgs).
import { parseArgs } from 'node:util';
import type { BenchOptions } from './harness';
import { BENCHMARKS } from './registry';

export const HELP = `usage: npm run bench -- [options]

  --only NAME[,NAME]   run only these benchmarks (${BENCHMARKS.map((b) => b.name).join(', ')})
  --json FILE          also write the report as JSON
  --tokens N           activation rows for matmul (default 32 on CPU fallbacks, 512 on GPUs;
                       env FUSE_BENCH_TOKENS)
  --shapes IN:OUT,...  matmul projection shapes, x[tokens,IN]·W[OUT,IN]ᵀ
                       (default 2048:2048,2048:8192,8192:2048 = Llama-3.2-1B)
  --seq N              model-step sequence length, batch 1 (default 8 on CPU fallbacks,
                       512 on GPUs; env FUSE_BENCH_SEQ)
  --model NAME         model-step model: llama-3.2-1b (default), llama-3.2-3b, or tiny
                       (a 2-layer toy for tests; env FUSE_BENCH_MODEL)
  --attn-seq N         attention sequence length, batch 1 (default 32 on CPU fallbacks, 512 on GPUs)
  --prompt-tokens N    prefill prompt length of decode/load (default 32 on CPU fallbacks, 512 on GPUs)
  --decode-tokens N    tokens generated per decode measurement (default 8 / 128)
  --peer-layers N      layers of the Llama-3.2-1B-shaped model in train-step's TF.js comparison
                       (default 1 on CPU fallbacks, 16 = the full model on GPUs)
  --peer-vocab N       vocabulary of that model (default 8192 on CPU fallbacks, 128256 on GPUs)
                       (--peer-layers and --peer-vocab also size train-step-vs-before's model)
  --step-batch N       rows per step of train-step-vs-before, each of --seq tokens
                       (default 1 on CPU fallbacks, 4 on GPUs)
  --gpu-memory GIB     GPU memory the current step of train-step-vs-before plans with (what it
                       keeps instead of recomputing; default 16 on GPUs, on CPU fallbacks none
                       stated: the trainer's default budget)
  --samples N          timed samples per measurement (median is reported)
  --warmup N           untimed runs before timing
  --min-sample-ms MS   repeat an op within a sample until it lasts this long
  --no-peer            skip the TF.js peer
  --quiet              no progress on stderr
  --list               list the benchmarks and exit
  -h, --help           this text`;

function nonNegativeInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a non-negative integer, got "${v}"`);
  return n;
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  const n = nonNegativeInt(name, v);
  if (n === 0) throw new Error(`--${name} must be at least 1`);
  return n;
}

function parseShapes(v: string | undefined): [number, number][] | undefined {
  if (v === undefined) return undefined;
  return v.split(',').map((s) => {
    const m = /^(\d+)[:x](\d+)$/.exec(s.trim());
    if (!m || !Number(m[1]) || !Number(m[2])) throw new Error(`--shapes: "${s}" is not IN:OUT`);
    return [Number(m[1]), Number(m[2])];
  });
}

export function parseCli(argv: string[]): { options: Partial<BenchOptions>; json?: string; help: boolean; list: boolean } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      only: { type: 'string', multiple: true },
      json: { type: 'string' },
      tokens: { type: 'string' },
      shapes: { type: 'string' },
      seq: { type: 'string' },
      model: { type: 'string' },
      samples: { type: 'string' },
      'attn-seq': { type: 'string' },
      'prompt-tokens': { type: 'string' },
      'decode-tokens': { type: 'string' },
      'peer-layers': { type: 'string' },
      'peer-vocab': { type: 'string' },
      'step-batch': { type: 'string' },
      'gpu-memory': { type: 'string' },
      warmup: { type: 'string' },
      'min-sample-ms': { type: 'string' },
      'no-peer': { type: 'boolean' },
      quiet: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const only = (values.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  const tokens = nonNegativeInt('tokens', values.tokens ?? (process.env.FUSE_BENCH_TOKENS || undefined));
  if (tokens === 0) throw new Error('--tokens must be at least 1');
  const seq = nonNegativeInt('seq', values.seq ?? (process.env.FUSE_BENCH_SEQ || undefined));
  if (seq !== undefined && seq < 2) throw new Error('--seq must be at least 2 (a step needs a target)');
  const model = values.model ?? (process.env.FUSE_BENCH_MODEL || undefined);
  const gpuMemory = values['gpu-memory'];
  if (gpuMemory !== undefined && !(Number.isFinite(Number(gpuMemory)) && Number(gpuMemory) > 0)) throw new Error(`--gpu-memory: expected a number of GiB above 0, got "${gpuMemory}"`);
  return {
    options: {
      only,
      tokens,
      shapes: parseShapes(values.shapes),
      seq,
      model,
      samples: nonNegativeInt('samples', values.samples),
      attnSeq: positiveInt('attn-seq', values['attn-seq']),
      promptTokens: positiveInt('prompt-tokens', values['prompt-tokens']),
      decodeTokens: positiveInt('decode-tokens', values['decode-tokens']),
      peerLayers: positiveInt('peer-layers', values['peer-layers']),
      peerVocab: positiveInt('peer-vocab', values['peer-vocab']),
      stepBatch: positiveInt('step-batch', values['step-batch']),
      gpuMemoryGiB: gpuMemory === undefined ? undefined : Number(gpuMemory),
      warmup: nonNegativeInt('warmup', values.warmup),
      minSampleMs: nonNegativeInt('min-sample-ms', values['min-sample-ms']),
      peer: values['no-peer'] ? false : undefined,
      verbose: values.quiet ? false : undefined,
    },
    json: values.json,
    help: Boolean(values.help),
    list: Boolean(values.list),
  };
}
