// Collection from a local source (src/data/local-source.ts) as build-data and the studio run it:
// runCollection over the demo model's folder (with its Llama 3.2 tokenizer and chat template)
// through the Node host's runner on the bench's GPU context, into a memory store:
//   collect-local.demo          items/min of the whole collection: inspect, plan, load, generate
//                               every item (batched, each stored as its row finishes), release
//   collect-local.demo.tokens   tokens/s while generating (every row's tokens)
// Prompts: the demo command's built-in ones, each rendered by the chat template; n samples of
// each with the Llama preset (T 0.8, top-p 0.95), `--decode-tokens` new tokens at most. CPU
// adapters: 2 prompts × 2 samples of at most 4 tokens (one run); elsewhere 8 prompts × 4 samples
// (`--samples` runs, the median). Before anything is reported, every item must be stored once and
// the pool's live bytes must be back at their baseline.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeLocalRunner } from '../src/cli/local-runner';
import { runCollection } from '../src/data/collect';
import { makeLocalSource } from '../src/data/local-source';
import { MemoryRunStore } from '../src/data/store';
import { DEMO_DATE, DEMO_PROMPTS } from '../src/cli/commands/demo';
import { writeDemoModel } from '../src/model/demo-node';
import { median, result, type BenchContext, type Benchmark, type Result } from './harness';

interface Run {
  itemsPerMinute: number;
  tokensPerSecond: number;
  batchSize: number;
  loadSeconds: number;
}

async function collectOnce(ctx: BenchContext, dir: string, prompts: number, n: number, maxTokens: number): Promise<Run> {
  const runner = new NodeLocalRunner({ context: ctx.gpu });
  const store = new MemoryRunStore();
  const source = makeLocalSource({ id: 'demo', name: 'demo', model: dir, n, max_tokens: maxTokens });
  const t0 = performance.now();
  const res = await runCollection({ sources: [source], prompts: DEMO_PROMPTS.slice(0, prompts), store, local: { runner, dateString: DEMO_DATE } });
  const seconds = (performance.now() - t0) / 1000;
  const p = res.sources[0]!;
  const l = p.local!;
  const items = prompts * n;
  if (l.state !== 'done' || res.collected !== items || store.responses.size !== items)
    throw new Error(`collect-local: ${res.collected} of ${items} items stored (${l.state}${l.skipReason ? `: ${l.skipReason}` : ''})`);
  if (l.gpu!.afterBytes !== l.gpu!.baselineBytes) throw new Error(`collect-local: the pool holds ${l.gpu!.afterBytes} bytes after the model was released, ${l.gpu!.baselineBytes} before`);
  return { itemsPerMinute: (items * 60) / seconds, tokensPerSecond: l.tokens / l.generateSeconds!, batchSize: l.batchSize!, loadSeconds: l.loadSeconds! };
}

export const collectLocalBench: Benchmark = {
  name: 'collect-local',
  description: 'collection from a local source (the demo model on this GPU): items/min of the whole collection, tokens/s while generating',
  async run(ctx: BenchContext): Promise<Result[]> {
    const { options, gpu } = ctx;
    const fallback = gpu.adapter.isFallback;
    const [prompts, n] = fallback ? [2, 2] : [8, 4];
    const maxTokens = Math.max(2, fallback ? Math.min(4, options.decodeTokens) : options.decodeTokens);
    const dir = await mkdtemp(join(tmpdir(), 'bench-collect-local-'));
    try {
      await writeDemoModel(dir);
      // Compile the pipelines once, untimed.
      for (let i = 0; i < options.warmup; i++) await collectOnce(ctx, dir, 1, 1, 2);
      const runs: Run[] = [];
      for (let i = 0; i < (fallback ? 1 : Math.max(1, options.samples)); i++) runs.push(await collectOnce(ctx, dir, prompts, n, maxTokens));
      const ipm = median(runs.map((r) => r.itemsPerMinute));
      const tps = median(runs.map((r) => r.tokensPerSecond));
      const { batchSize, loadSeconds } = runs[0]!;
      ctx.log(`demo: ${ipm.toFixed(1)} items/min, ${tps.toFixed(2)} tokens/s generating (batch ${batchSize}, load ${loadSeconds.toFixed(2)} s)`);
      const shape = `demo model (Llama-3 architecture, V 128256, bf16) from its folder, ${prompts} chat prompts × ${n} samples, ≤ ${maxTokens} new tokens, T 0.8 top-p 0.95, batch ${batchSize}`;
      return [
        result({ name: 'collect-local.demo', unit: 'items/min', ours: ipm, shape: `${shape}; inspect + load (${loadSeconds.toFixed(2)} s) + generate + store + release` }),
        result({ name: 'collect-local.demo.tokens', unit: 'tokens/s', ours: tps, shape: `${shape}; generation only` }),
      ];
    } finally {
      await rm(dir, { recursive: true, force: true });
      await gpu.flush();
      gpu.pool.trim();
    }
  },
};
