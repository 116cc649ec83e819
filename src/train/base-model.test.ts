import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDemoModel } from '../model/demo';
import { parseModelConfig } from '../model/config';
import { randomHostLora } from '../model/random';
import { openModelSource } from '../model/source-node';
import { checkBaseModelName, hubRepoOf, resolveBaseModelName } from './base-model';
import { writeFolderFiles } from './files-node';
import { ADAPTER_README_FILE, exportPeftAdapter, fromHostLora, importPeftAdapter, PeftError } from './peft';
import { savePeftAdapter } from './peft-node';

const SHAPE = { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 44, vocabSize: 300, tieWordEmbeddings: false };

describe('base_model_name_or_path', () => {
  it('is the Hub repo id for the Hub and its mirrors, and nothing for folders or other URLs', () => {
    expect(hubRepoOf('hf://meta-llama/Llama-3.2-1B-Instruct@main')).toBe('meta-llama/Llama-3.2-1B-Instruct');
    expect(hubRepoOf('hf://org/m')).toBe('org/m');
    expect(hubRepoOf('https://huggingface.co/org/m')).toBe('org/m');
    expect(hubRepoOf('https://huggingface.co/org/m/tree/v1')).toBe('org/m');
    expect(hubRepoOf('https://huggingface.co/org/m/resolve/main/config.json')).toBe('org/m');
    // Any host serving the Hub's raw-file layout is a mirror of {owner}/{repo}.
    expect(hubRepoOf('http://127.0.0.1:8080/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/')).toBe('Qwen/Qwen2.5-0.5B-Instruct');
    expect(hubRepoOf('https://hf-mirror.example/some/prefix/org/m/resolve/abc123/model.safetensors')).toBe('org/m');
    expect(hubRepoOf('https://mirror.example/org/m%2Dx/resolve/refs%2Fpr%2F1')).toBe('org/m-x');
    expect(hubRepoOf('https://huggingface.co/datasets/org/d/resolve/main/x.json')).toBeNull();
    expect(hubRepoOf('https://huggingface.co/datasets/org')).toBeNull();
    expect(hubRepoOf('http://127.0.0.1:9000/models/demo/')).toBeNull();
    expect(hubRepoOf('https://example.com/resolve/main/config.json')).toBeNull();
    // Folders: never a Hub id, even when the path looks like one; except the Hub cache's layout.
    expect(hubRepoOf('models/llama')).toBeNull();
    expect(hubRepoOf('/data/llama-3.2-1b')).toBeNull();
    expect(hubRepoOf('built-in demo model')).toBeNull();
    expect(hubRepoOf('/root/.cache/huggingface/hub/models--meta-llama--Llama-3.2-1B-Instruct/snapshots/4e20de3')).toBe('meta-llama/Llama-3.2-1B-Instruct');
    expect(hubRepoOf('C:\\Users\\me\\.cache\\huggingface\\hub\\models--org--m\\snapshots\\abc')).toBe('org/m');
  });

  it('takes a user-given name, refusing URLs and relative paths', () => {
    expect(checkBaseModelName('  org/m ')).toBe('org/m');
    expect(checkBaseModelName('gpt2')).toBe('gpt2');
    expect(checkBaseModelName('/models/llama')).toBe('/models/llama');
    expect(checkBaseModelName('C:\\models\\llama')).toBe('C:\\models\\llama');
    expect(checkBaseModelName('')).toBe('');
    expect(() => checkBaseModelName('https://huggingface.co/org/m', '--base-model-name')).toThrow(/--base-model-name "https:\/\/huggingface\.co\/org\/m" is a URL: give the base model's Hub repo id/);
    expect(() => checkBaseModelName('hf://org/m')).toThrow(/is a URL/);
    for (const rel of ['./base', '../models/m', 'models/llama/3b', '~/models/m', 'a\\b']) expect(() => checkBaseModelName(rel), rel).toThrow(/not a Hub repo id \(owner\/name\) and not an absolute path/);

    expect(resolveBaseModelName('hf://org/m@main')).toEqual({ name: 'org/m', from: 'hub', warning: null });
    expect(resolveBaseModelName('/data/base', 'me/my-base')).toEqual({ name: 'me/my-base', from: 'user', warning: null });
    const unknown = resolveBaseModelName('/data/base');
    expect(unknown).toMatchObject({ name: '', from: 'unknown' });
    expect(unknown.warning).toMatch(/\(\/data\/base\) was not loaded from the Hugging Face Hub .* base_model_name_or_path is left empty/);
    // The PEFT writer refuses a URL or relative path whoever calls it.
    const host = fromHostLora(randomHostLora(parseModelConfig(JSON.parse(new TextDecoder().decode(generateDemoModel(null, SHAPE).get('config.json')))), { rank: 2, alpha: 4, targets: ['q_proj'] }, 1));
    expect(() => exportPeftAdapter(host, { baseModel: 'http://127.0.0.1:1/org/m/resolve/main' })).toThrow(PeftError);
    expect(() => exportPeftAdapter(host, { baseModel: './base' })).toThrow(/export: base_model_name_or_path "\.\/base" is not a Hub repo id/);
  });

  describe('from where the model really came from', () => {
    let server: Server;
    let port = 0;
    let root: string;
    const files = generateDemoModel(null, SHAPE);

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'base-model-'));
      // A Hub mirror: /{owner}/{repo}/resolve/{rev}/{file}, and a plain folder URL /plain/{file}.
      server = createServer((req, res) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        const m = /^\/acme\/tiny-llama\/resolve\/main\/(.+)$/.exec(path) ?? /^\/plain\/(.+)$/.exec(path);
        const body = m ? files.get(decodeURIComponent(m[1]!)) : undefined;
        if (!body) return void res.writeHead(404).end();
        res.writeHead(200, { 'Content-Length': body.length, 'Accept-Ranges': 'bytes' });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const addr = server.address();
      port = typeof addr === 'object' && addr ? addr.port : 0;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(root, { recursive: true, force: true });
    });

    /** The adapter folder an export of a model opened from `spec` writes, as the CLI's train does. */
    async function exported(spec: string, given: string, out: string, endpoint?: string) {
      const source = await openModelSource(spec, { cacheRoot: join(root, 'cache'), endpoint, token: '' });
      const config = parseModelConfig(await source.json('config.json'));
      const base = resolveBaseModelName(source.description, given);
      const host = fromHostLora(randomHostLora(config, { rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'] }, 7));
      await savePeftAdapter(join(root, out), host, { baseModel: base.name, loadedFrom: source.description });
      const cfg = JSON.parse(await readFile(join(root, out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      const readme = await readFile(join(root, out, ADAPTER_README_FILE), 'utf8').catch(() => null);
      return { base, cfg, readme, config };
    }

    it('a Hub-style URL on a local server names the repo, not the URL', async () => {
      const url = `http://127.0.0.1:${port}/acme/tiny-llama/resolve/main/`;
      const r = await exported(url, '', 'mirror-url');
      expect(r.base).toEqual({ name: 'acme/tiny-llama', from: 'hub', warning: null });
      expect(r.cfg.base_model_name_or_path).toBe('acme/tiny-llama');
      expect(r.readme).toBeNull();
      // The same repo through a mirror endpoint (HF_ENDPOINT style).
      const viaEndpoint = await exported('hf://acme/tiny-llama', '', 'mirror-endpoint', `http://127.0.0.1:${port}`);
      expect(viaEndpoint.cfg.base_model_name_or_path).toBe('acme/tiny-llama');
      // The adapter reads back, base model name included.
      const files = new Map([['adapter_config.json', new Uint8Array(await readFile(join(root, 'mirror-url', 'adapter_config.json')))], ['adapter_model.safetensors', new Uint8Array(await readFile(join(root, 'mirror-url', 'adapter_model.safetensors')))]]);
      expect(importPeftAdapter(files, r.config).baseModel).toBe('acme/tiny-llama');
    });

    it('a plain URL or a folder is unknown unless the user names it: then a warning and a README note', async () => {
      const plain = await exported(`http://127.0.0.1:${port}/plain/`, '', 'plain-url');
      expect(plain.base.from).toBe('unknown');
      expect(plain.base.warning).toMatch(/not loaded from the Hugging Face Hub/);
      expect(plain.cfg.base_model_name_or_path).toBe('');
      expect(plain.readme).toMatch(/base_model_name_or_path is empty[\s\S]*loaded from `http:\/\/127\.0\.0\.1:\d+\/plain\/`[\s\S]*--base-model-name OWNER\/NAME/);

      const folder = join(root, 'my-base');
      await writeFolderFiles(folder, files);
      const named = await exported(folder, 'acme/my-base', 'folder-named');
      expect(named.base).toEqual({ name: 'acme/my-base', from: 'user', warning: null });
      expect(named.cfg.base_model_name_or_path).toBe('acme/my-base');
      expect(named.readme).toBeNull();
      const unnamed = await exported(folder, '', 'folder-unnamed');
      expect(unnamed.cfg.base_model_name_or_path).toBe('');
      expect(unnamed.readme).toContain(`loaded from \`${folder}\``);
      await expect(exported(folder, '../my-base', 'folder-relative')).rejects.toThrow(/"\.\.\/my-base" is not a Hub repo id/);
    });
  });
});
