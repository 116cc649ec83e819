// `--quant` on the CLI, as child processes: `plan --quant int4` gives the Llama-3.2 plans of issue 14
// (1B ≤ 1.6 GiB, 3B ≤ 3.5 GiB at LoRA r16, seq 1024), `generate --quant int4` on a model folder
// greedy-decodes what the library decodes on the same int4 base, a bad value is refused by name;
// `train sft --quant int4` trains and writes its adapter.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { createDecoderModel } from '../model/decoder';
import { generateDemoModel } from '../model/demo';
import { generate } from '../model/generate';
import { loadModel } from '../model/load';
import { localFolderSource } from '../model/source-node';
import { seededRandom } from '../model/random';
import { releaseWeights } from '../model/weights';
import { runCommand } from './program';
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

  it('train sft --quant int4 (in process): the loss falls and a PEFT adapter is written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fuse-quant-train-'));
    for (const [name, bytes] of generateDemoModel(null, { vocabSize: 512 })) await writeFile(join(dir, name), bytes);
    const next = seededRandom(5);
    const ids = (n: number) => Array.from({ length: n }, () => 1 + Math.floor(next() * 511));
    const data = join(dir, 'sft.jsonl');
    const lines = [0, 1, 2, 3].map(() => {
      const [prompt, answer] = [ids(6), ids(5)];
      return JSON.stringify({ input_ids: [...prompt, ...answer], labels: [...prompt.map(() => -100), ...answer] });
    });
    await writeFile(data, lines.join('\n') + '\n');
    const out = join(dir, 'out');
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
    let code: number;
    try {
      code = await runCommand(['train', 'sft', '--model', dir, '--quant', 'int4', '--data', data, '--out', out, '--max-steps', '6', '--lr', '2e-2', '--batch-size', '4', '--lora-rank', '4', '--warmup-ratio', '0', '--schedule', 'constant', '--quiet']);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
    expect(code, err.join('\n')).toBe(0);
    expect(err.join('\n')).toMatch(/base quantized to int4/);
    expect(await readdir(out)).toContain('adapter_model.safetensors');
    const loss = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(loss.at(-1)!, loss.join(', ')).toBeLessThan(loss[0]! - 0.5);
  });
});
