// The CLI with a .gguf file as --model: `generate` renders the chat template and tokenizes with
// the tokenizer from the GGUF metadata, and writes the tokens the engine generates from the same
// file loaded in-process (greedy); `plan` reads the shapes from the metadata.
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { testContext } from '../engine/testing/gpu';
import { createDecoderModel } from '../model/decoder';
import { generate } from '../model/generate';
import { loadModel, readModelMeta } from '../model/load';
import { planMemory } from '../model/memory-plan';
import { hostWeightsByName, randomHostWeights, seededRandom, tinyConfig } from '../model/random';
import { openModelSource } from '../model/source-node';
import { byteLevelTokenizerMetadata, q4kmTypes, writeGgufModel } from '../model/testing/gguf-writer';
import { releaseWeights } from '../model/weights';
import { loadTokenizer } from '../tokenizer/tokenizer';
import { runCommand } from './program';
import { runCli } from './testing/run-cli';

describe('CLI with a GGUF file', () => {
  it('generate --model x.gguf --prompt: the metadata tokenizer and chat template, the same greedy tokens as the engine', async () => {
    const config = { ...tinyConfig({ family: 'qwen3', hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 258, numLayers: 1, tieWordEmbeddings: true }), bosTokenId: 256, eosTokenIds: [257] };
    const host = hostWeightsByName(randomHostWeights(config, 'f32', 5));
    const dir = await mkdtemp(join(tmpdir(), 'fuse-cli-gguf-'));
    const path = join(dir, 'tiny-Q4_K_M.gguf');
    await writeFile(path, writeGgufModel(config, (n) => host.get(n)!, { typeOf: q4kmTypes, metadata: byteLevelTokenizerMetadata('qwen2', { bos: 256, eos: 257, addBos: false }) }));

    const run = await runCli(['generate', '--model', path, '--prompt', 'Hi', '--max-new-tokens', '5', '--temperature', '0', '--json'], { timeoutMs: 240_000 });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { ids: number[]; text: string };

    const ctx = await testContext();
    const loaded = await loadModel(ctx, await openModelSource(path));
    const tok = loadTokenizer({ tokenizerJson: loaded.tokenizerFiles!.tokenizerJson, tokenizerConfig: loaded.tokenizerFiles!.tokenizerConfig });
    const prompt = tok.encodeChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }).ids;
    expect(tok.decode(prompt)).toBe('user: Hi<|eos|>assistant: ');
    const model = createDecoderModel(ctx, loaded.weights);
    const want = await generate(model, { promptIds: prompt, maxNewTokens: 5, sampling: { temperature: 0 }, eosTokenIds: [257] });
    model.release();
    releaseWeights(loaded.weights);
    expect(out.ids).toEqual(want.ids);
    expect(out.text).toBe(tok.decode(want.ids, { skipSpecialTokens: true }));

    // plan counts each tensor in the file's block type (Q4_K / Q6_K / F32), not as bf16.
    const plan = await runCli(['plan', '--model', path, '--seq', '16', '--batch', '1'], { timeoutMs: 120_000 });
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/GiB|MiB/);
    for (const d of ['q4_k', 'q6_k', 'f32']) expect(plan.stdout).toMatch(new RegExp(`GGUF tensors: .*\\d+ ${d}`));
    const planJson = await runCli(['plan', '--model', path, '--seq', '16', '--batch', '1', '--json'], { timeoutMs: 120_000 });
    expect(planJson.code, planJson.stderr).toBe(0);
    const printed = JSON.parse(planJson.stdout) as { training: number; bytes: { weights: number } };
    const meta = await readModelMeta(await openModelSource(path));
    const options = { batch: 1, seq: 16, loraRank: 16, weightDType: 'bf16' as const };
    expect(printed.training).toBe(planMemory(meta.config, { ...options, tensorDTypes: meta.tensorDTypes! }).training);
    const asBf16 = planMemory(meta.config, options);
    expect(printed.bytes.weights).toBeLessThan(asBf16.bytes.weights / 3);
    expect(printed.training).toBeLessThan(asBf16.training);
  }, 400_000);

  it('train sft --model x.gguf: LoRA on the block-format base (input gradients through the blocks), a falling loss, a PEFT adapter', async () => {
    const config = { ...tinyConfig({ family: 'llama', hiddenSize: 256, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 512, vocabSize: 258, numLayers: 1, tieWordEmbeddings: true, llama3Rope: true }), bosTokenId: 256, eosTokenIds: [257] };
    const host = hostWeightsByName(randomHostWeights(config, 'f32', 9));
    const dir = await mkdtemp(join(tmpdir(), 'fuse-cli-gguf-train-'));
    const path = join(dir, 'tiny-Q4_K_M.gguf');
    await writeFile(path, writeGgufModel(config, (n) => host.get(n)!, { typeOf: q4kmTypes }));
    const next = seededRandom(3);
    const ids = (n: number) => Array.from({ length: n }, () => Math.floor(next() * 256));
    const lines = [0, 1, 2, 3].map(() => {
      const prompt = ids(5);
      const answer = ids(4);
      return JSON.stringify({ input_ids: [...prompt, ...answer], labels: [...prompt.map(() => -100), ...answer] });
    });
    const data = join(dir, 'sft.jsonl');
    await writeFile(data, lines.join('\n') + '\n');
    const out = join(dir, 'out');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    let code: number;
    try {
      code = await runCommand(['train', 'sft', '--model', path, '--data', data, '--out', out, '--max-steps', '6', '--lr', '3e-2', '--batch-size', '4', '--lora-rank', '4', '--warmup-ratio', '0', '--schedule', 'constant', '--seed', '1']);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    expect(code).toBe(0);
    expect(await readdir(out)).toContain('adapter_model.safetensors');
    const loss = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(loss).toHaveLength(6);
    expect(loss[5]!, `losses ${loss.join(', ')}`).toBeLessThan(loss[0]! - 0.3);
  }, 400_000);
});

