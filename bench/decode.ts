// Generation on the demo model (bench/demo-model.ts) with the KV cache (src/model/kv-cache.ts,
// generate.ts), batch 1, a random `--prompt-tokens` prompt (32 on CPU fallbacks, 512 on GPUs):
//   prefill.demo                       tokens/s of appendTokens over the prompt (one submit per layer)
//   decode.demo.greedy                 tokens/s of greedy decoding of `--decode-tokens` tokens
//                                      (after the first): GPU argmax (shaders/sampling.wgsl), one
//                                      submit and a 4-byte readback per token; peer: the same
//                                      decode with the host sampler (gpuSampling: false: a
//                                      [1, 128256] f32 logits readback per token)
//   decode.demo.greedy.submits         queue submits per decoded token (peer: host sampling)
//   decode.demo.greedy.readback        bytes read back per decoded token (peer: host sampling)
//   decode.demo.topk50                 tokens/s with temperature 0.7, top-k 50 (host sampler), no peer
// Both greedy paths must produce the same ids before anything is reported.
import { CommandBatch } from '../src/gpu/batch';
import type { GpuContext } from '../src/gpu/context';
import { generate, type GenerateOptions } from '../src/model/generate';
import { appendTokens, createKvCache } from '../src/model/kv-cache';
import { seededRandom } from '../src/model/random';
import { describeDemo, loadDemoModel } from './demo-model';
import { median, result, type BenchContext, type Benchmark, type Result } from './harness';

const SEED = 20250104;

/** Counts queue submits and bytes copied for readback while `f` runs. */
export async function countTraffic<T>(gpu: GpuContext, f: (mark: () => { submits: number; readBytes: number }) => Promise<T>): Promise<T> {
  const queue = gpu.device.queue;
  const submit = queue.submit.bind(queue);
  const copy = Object.getOwnPropertyDescriptor(CommandBatch.prototype, 'copyToReadable')!.value as CommandBatch['copyToReadable'];
  const c = { submits: 0, readBytes: 0 };
  queue.submit = (cbs: Iterable<GPUCommandBuffer>) => {
    c.submits++;
    submit(cbs);
  };
  CommandBatch.prototype.copyToReadable = function (this: CommandBatch, src: GPUBuffer, offset: number, size: number) {
    c.readBytes += size;
    return copy.call(this, src, offset, size);
  };
  try {
    return await f(() => ({ ...c }));
  } finally {
    queue.submit = submit;
    CommandBatch.prototype.copyToReadable = copy;
  }
}

interface DecodeRun {
  ids: number[];
  /** ms per token after the first (the first includes the prefill). */
  msPerToken: number;
  submitsPerToken: number;
  readBytesPerToken: number;
}

export const decodeBench: Benchmark = {
  name: 'decode',
  description: 'prefill and KV-cache decode tokens/s on the demo model; GPU greedy sampling vs host sampling, submits and readback bytes per token',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { gpu, options } = ctx;
    const demo = await loadDemoModel(gpu);
    const { model } = demo;
    const P = options.promptTokens;
    const N = Math.max(2, options.decodeTokens);
    const next = seededRandom(SEED);
    const promptIds = Array.from({ length: P }, () => Math.floor(next() * model.config.vocabSize));
    const desc = describeDemo(demo);
    try {
      // Prefill: one append of the whole prompt into a fresh cache.
      const prefillMs: number[] = [];
      for (let i = 0; i < options.warmup + Math.max(1, options.samples); i++) {
        const cache = createKvCache(model, { batchSize: 1, capacity: P + N });
        try {
          await gpu.flush();
          const t0 = performance.now();
          appendTokens(model, cache, { ids: promptIds, tokens: P });
          await gpu.flush();
          if (i >= options.warmup) prefillMs.push(performance.now() - t0);
        } finally {
          cache.release();
        }
      }
      const prefill = median(prefillMs);
      ctx.log(`prefill ${P} tokens: ${prefill.toFixed(1)} ms`);

      const decodeOnce = (o: Partial<GenerateOptions>): Promise<DecodeRun> =>
        countTraffic(gpu, async (mark) => {
          const at: number[] = [];
          const traffic: { submits: number; readBytes: number }[] = [];
          const r = await generate(model, { promptIds, maxNewTokens: N, ...o }, () => {
            at.push(performance.now());
            traffic.push(mark());
          });
          const n = at.length - 1;
          return {
            ids: r.ids,
            msPerToken: (at[n]! - at[0]!) / n,
            submitsPerToken: (traffic[n]!.submits - traffic[0]!.submits) / n,
            readBytesPerToken: (traffic[n]!.readBytes - traffic[0]!.readBytes) / n,
          };
        });
      const runs: Record<'gpu' | 'host' | 'topk', DecodeRun[]> = { gpu: [], host: [], topk: [] };
      const settings: Record<keyof typeof runs, Partial<GenerateOptions>> = {
        gpu: { sampling: { temperature: 0 } },
        host: { sampling: { temperature: 0 }, gpuSampling: false },
        topk: { sampling: { temperature: 0.7, topK: 50, seed: 1 } },
      };
      for (let i = 0; i < options.warmup + Math.max(1, options.samples); i++)
        for (const k of ['gpu', 'host', 'topk'] as const) {
          const r = await decodeOnce(settings[k]);
          ctx.log(`decode ${k}: ${r.msPerToken.toFixed(1)} ms/token, ${r.submitsPerToken} submits and ${r.readBytesPerToken} bytes read back per token`);
          if (i >= options.warmup) runs[k].push(r);
        }
      const g = runs.gpu[0]!;
      const h = runs.host[0]!;
      if (g.ids.join() !== h.ids.join()) throw new Error(`decode: GPU greedy ids ${g.ids.join(',')} differ from host greedy ${h.ids.join(',')}`);
      const tps = (rs: DecodeRun[]) => 1000 / median(rs.map((r) => r.msPerToken));
      const shape = `${desc} bf16, B1, prompt ${P}, ${N} new tokens`;
      const hostName = 'ours, host sampling (full logits readback)';
      return [
        result({ name: 'prefill.demo', unit: 'tokens/s', ours: (P * 1000) / prefill, shape: `${desc} bf16, B1xT${P}, ${prefill.toFixed(1)} ms` }),
        result({ name: 'decode.demo.greedy', unit: 'tokens/s', ours: tps(runs.gpu), peer: tps(runs.host), peerName: hostName, shape }),
        result({ name: 'decode.demo.greedy.submits', unit: 'count', ours: g.submitsPerToken, peer: h.submitsPerToken, peerName: hostName, shape: `${shape}; queue submits per token` }),
        result({
          name: 'decode.demo.greedy.readback',
          unit: 'bytes',
          ours: g.readBytesPerToken,
          peer: h.readBytesPerToken,
          peerName: hostName,
          shape: `${shape}; bytes read back per token`,
        }),
        result({ name: 'decode.demo.topk50', unit: 'tokens/s', ours: tps(runs.topk), shape: `${shape}, temperature 0.7 top-k 50 (host sampler)` }),
      ];
    } finally {
      demo.release();
      await gpu.flush();
    }
  },
};
