// `--quant` on the CLI, as child processes: `plan --quant int4` gives the Llama-3.2 plans of issue 14
// (1B ≤ 1.6 GiB, 3B ≤ 3.5 GiB at LoRA r16, seq 1024), `generate --quant int4` on a model folder
// greedy-decodes what the library decodes on the same int4 base, a bad value is refused by name.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { createDecoderModel } from '../model/decoder';
import { generateDemoModel } from '../model/demo';
import { generate } from '../model/generate';
import { loadModel } from '../model/load';
import { localFolderSource } from '../model/source-node';
import { releaseWeights } from '../model/weights';
import { runCli } from './testing/run-cli';

const GiB = 2 ** 30;

describe('--quant', () => {
  it('plan --quant int4: Llama-3.2-1B ≤ 1.6 GiB and 3B ≤ 3.5 GiB for LoRA r16 at seq 1024', async () => {
    for (const [preset, bound] of [
      ['llama-3.2-1b', 1.6],
      ['llama-3.2-3b', 3.5],
    ] as const) {
      const r = await runCli(['plan', '--model', preset, '--quant', 'int4', '--seq', '1024', '--batch', '1', '--lora-rank', '16', '--json'], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const plan = JSON.parse(r.stdout) as { training: number; options: { quant: string } };
      expect(plan.options.quant).toBe('int4');
      expect(plan.training).toBeLessThanOrEqual(bound * GiB);
    }
    const bad = await runCli(['plan', '--model', 'llama-3.2-1b', '--quant', 'int3'], { timeoutMs: 60_000 });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--quant: "int3" is not none, int8 or int4/);
  });

  it('generate --quant int4 decodes greedily what the library decodes on the same int4 base', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fuse-quant-cli-'));
    for (const [name, bytes] of generateDemoModel(null, { hiddenSize: 64, numLayers: 2, vocabSize: 300, intermediateSize: 96, initStd: 0.3 })) await writeFile(join(dir, name), bytes);
    const r = await runCli(['generate', '--model', dir, '--quant', 'int4', '--prompt-ids', '5,17,42,99', '--max-new-tokens', '6', '--temperature', '0', '--json'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/base quantized to int4/);
    const ctx = await testContext();
    const loaded = await loadModel(ctx, localFolderSource(dir), { quant: 'int4' });
    const model = createDecoderModel(ctx, loaded.weights);
    try {
      const want = await generate(model, { promptIds: [5, 17, 42, 99], maxNewTokens: 6, sampling: { temperature: 0 }, eosTokenIds: loaded.config.eosTokenIds });
      expect((JSON.parse(r.stdout) as { ids: number[] }).ids).toEqual(want.ids);
    } finally {
      model.release();
      releaseWeights(loaded.weights);
    }
  });
});
