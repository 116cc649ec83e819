// Presets from the command line, as child processes: `fuse-studio models` lists them with the
// library's sizes and plans, `plan --model ALIAS` reads nothing, and `--model ALIAS` downloads the
// preset's Hub repo from $HF_ENDPOINT (a local server standing in for the Hub, counting requests).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDemoModel } from '../model/demo-node';
import { planMemory } from '../model/memory-plan';
import { PRESET_PLAN_DEFAULTS, presetPlan } from '../model/preset-plans';
import { downloadSize, formatDownload, PRESETS, presetById, presetModelConfig } from '../model/presets';
import { runCli } from './testing/run-cli';

const REPO_PATH = '/HuggingFaceTB/SmolLM2-135M-Instruct/resolve/main/';
let dir = '';
let modelDir = '';
let server: Server;
let hub = '';
const requests: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuse-cli-presets-'));
  modelDir = join(dir, 'tiny');
  await writeDemoModel(modelDir, { tokenizer: false, vocabSize: 256 });
  // The Hub's file layout, {repo}/resolve/{revision}/{file}; only the SmolLM2-135M repo is mirrored.
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    const name = path.startsWith(REPO_PATH) ? path.slice(REPO_PATH.length) : '';
    void (async () => {
      let body: Buffer;
      try {
        if (!/^[\w.-]+$/.test(name)) throw new Error('not here');
        body = await readFile(join(modelDir, name));
      } catch {
        res.writeHead(404).end();
        return;
      }
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
        res.writeHead(206, { 'Content-Length': end - start + 1, 'Content-Range': `bytes ${start}-${end}/${body.length}`, 'Accept-Ranges': 'bytes' });
        res.end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1));
        return;
      }
      res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  hub = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The CLI against the local Hub, with its own empty model cache and no token. */
const cli = (...args: string[]) => runCli(args, { env: { HF_ENDPOINT: hub, FUSE_STUDIO_CACHE: join(dir, 'cache'), HF_TOKEN: '' } });

describe('presets from the command line', () => {
  it('models --json: every preset with the library’s download size and plans; --memory says which fit', async () => {
    requests.length = 0;
    const r = await cli('models', '--json', '--memory', '4');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { id: string; repo: string; role: string; download: { bytes: number }; plan: { needed: number; training: { bytes: number } | null }; fits: boolean }[];
    expect(out.map((p) => p.id)).toEqual(PRESETS.map((p) => p.id));
    for (const o of out) {
      const p = presetById(o.id)!;
      const plan = presetPlan(p);
      expect(o.repo).toBe(p.repo);
      expect(o.download.bytes).toBe(downloadSize(p).bytes);
      expect(o.plan.needed).toBe(plan.needed);
      expect(o.plan.training?.bytes ?? null).toBe(plan.training?.training ?? null);
      expect(o.fits, o.id).toBe(plan.needed <= 4 * 2 ** 30);
    }
    expect(out.find((o) => o.id === 'llama-3.2-3b')!.fits).toBe(false);
    expect(out.find((o) => o.id === 'smollm2-135m')!.fits).toBe(true);

    const table = await cli('models', '--role', 'reward');
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^alias +role +family +download +training +generation +scoring +repo$/);
    const row = lines.find((l) => l.startsWith('skywork-reward-v2-qwen3-0.6b '))!;
    expect(row).toContain(`≈ ${formatDownload(downloadSize(presetById('skywork-reward-v2-qwen3-0.6b')!).bytes)}`);
    expect(row).toMatch(/Skywork\/Skywork-Reward-V2-Qwen3-0\.6B$/);
    expect(lines.filter((l) => / (target|source) /.test(l))).toEqual([]);
    const bad = await cli('models', '--role', 'judge');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--role: "judge" is not one of target, source, reward');
    expect(requests, 'listing presets downloads nothing').toEqual([]);
  });

  it('plan --model ALIAS is the plan of the preset’s config, without a request', async () => {
    requests.length = 0;
    const r = await cli('plan', '--model', 'qwen2.5-0.5b', '--seq', '256', '--batch', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as { training: number; bytes: Record<string, number> };
    const want = planMemory(presetModelConfig(presetById('qwen2.5-0.5b')!), { batch: 2, seq: 256, loraRank: 16, weightDType: 'bf16' });
    expect(got.training).toBe(want.training);
    expect(got.bytes).toEqual(want.bytes);
    expect(requests).toEqual([]);
  });

  it('--model ALIAS downloads the preset’s Hub repo from $HF_ENDPOINT, saying its size and plan first; an unknown name lists the presets', async () => {
    requests.length = 0;
    const args = ['--prompt-ids', '5,17,42', '--max-new-tokens', '3', '--json'];
    const viaAlias = await cli('generate', '--model', 'smollm2-135m', ...args);
    expect(viaAlias.code, viaAlias.stderr).toBe(0);
    const d = downloadSize(presetById('smollm2-135m')!);
    const g = presetPlan(presetById('smollm2-135m')!).generation!;
    expect(viaAlias.stderr).toContain(`smollm2-135m: hf://HuggingFaceTB/SmolLM2-135M-Instruct@main, ≈ ${formatDownload(d.bytes)} to download (approximate: `);
    expect(viaAlias.stderr).toMatch(new RegExp(`generation \\(${PRESET_PLAN_DEFAULTS.generation.capacity} positions\\) needs \\d`));
    expect(g).toBeGreaterThan(0);
    // Every request was for the preset's repo on the mirror; the weights were fetched once.
    expect(requests.length).toBeGreaterThan(0);
    for (const req of requests) expect(req).toMatch(/^(GET|HEAD) \/HuggingFaceTB\/SmolLM2-135M-Instruct\/resolve\/main\//);
    expect(requests.filter((q) => q === `GET ${REPO_PATH}model.safetensors`)).toHaveLength(1);
    // The same files as a folder give the same tokens.
    const viaFolder = await cli('generate', '--model', modelDir, ...args);
    expect(viaFolder.code, viaFolder.stderr).toBe(0);
    expect(JSON.parse(viaAlias.stdout)).toEqual(JSON.parse(viaFolder.stdout));
    // A second run reads the cache: no weight download, and no size notice.
    const again = await cli('generate', '--model', 'SmolLM2-135M', ...args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('to download');
    expect(requests.filter((q) => q === `GET ${REPO_PATH}model.safetensors`)).toHaveLength(1);

    // export recipe writes the preset's Hub repo, which TRL and LLaMA-Factory load, not the alias.
    const sft = join(dir, 'sft.jsonl');
    await writeFile(sft, JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }] }) + '\n');
    const recipe = await cli('export', 'recipe', '--model', 'qwen2.5-0.5b', '--sft', sft, '--out', join(dir, 'recipe'));
    expect(recipe.code, recipe.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(dir, 'recipe', 'recipe.json'), 'utf8'))).toMatchObject({ model: 'Qwen/Qwen2.5-0.5B-Instruct' });

    const unknown = await cli('generate', '--model', 'qwen9-tiny', ...args);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('"qwen9-tiny" is not a folder, an http(s) URL, a Hugging Face repo id');
    expect(unknown.stderr).toContain('smollm2-135m, smollm2-360m');
  });
});
