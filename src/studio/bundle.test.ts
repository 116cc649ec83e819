import { describe, expect, it } from 'vitest';
import { adapterImportName, adapterImportOrder, buildBundle, BundleError, keepLocalSecrets, mergeImportedSources, parseBundle, peftFilesFromUpload, sanitizeSourceEntry, unzipFiles, zipFiles, type BundleInput } from './bundle';
import type { SourceEntry } from './studioDb';

const KEY = 'sk-or-v1-0123456789abcdef-SECRET';
const KEY2 = 'hf_judgeRewardToken_987654321';

function source(id: string, apiKey: string, extra: Partial<SourceEntry> = {}): SourceEntry {
  return {
    id,
    name: `Source ${id}`,
    baseURL: 'https://openrouter.ai/api/v1',
    apiKey,
    model: 'meta-llama/llama-3.1-70b-instruct',
    temperature: 0.8,
    top_p: 0.95,
    max_tokens: 2048,
    n: 5,
    concurrency: 4,
    presetId: 'openrouter',
    enabled: true,
    createdAt: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function input(over: Partial<BundleInput> = {}): BundleInput {
  return {
    model: { key: 'demo', source: 'built-in demo model', baseModel: 'meta-llama/Llama-3.2-1B-Instruct', config: { hiddenSize: 64 } },
    sources: [
      source('a', KEY, { headers: { Authorization: `Bearer ${KEY}`, 'X-Title': 'Fuse Studio' } }),
      source('b', ''),
    ],
    settings: [
      { key: 'judge', value: { kind: 'reward', reward: { baseURL: 'http://x', apiKey: KEY2, model: 'armo', max_tokens: 5 } } },
      { key: 'train', value: { sft: { lr: 2e-4, epochs: 3 }, maxNewTokens: 64 } },
    ],
    dataRun: {
      runId: 'run-1',
      doc: { runId: 'run-1', imports: [] },
      artifacts: { 'sft.jsonl': '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n', 'report.json': '{"counts":{}}\n' },
    },
    adapters: [{ name: 'sft+dpo', note: 'trained', createdAt: 'now', files: { 'adapter_config.json': bytes('{"r":4}'), 'adapter_model.safetensors': new Uint8Array([1, 2, 3]) } }],
    training: { sft: { lr: 2e-4, loraRank: 16 }, dpo: { beta: 10, loss: 'ln-dpo' } },
    createdAt: '2026-11-25T00:00:00.000Z',
    ...over,
  };
}

describe('project bundle', () => {
  it('never contains an API key, even when sources and settings hold some', () => {
    const files = buildBundle(input());
    const zip = zipFiles(files);
    for (const [path, b] of unzipFiles(zip)) {
      const t = text(b);
      expect(t.includes(KEY), path).toBe(false);
      expect(t.includes(KEY2), path).toBe(false);
    }
    // Nor in the raw zip bytes (deflated text could hide it: check the stored files above, and the whole).
    const project = JSON.parse(text(files.get('project.json')!));
    expect(project.sources[0].apiKey).toBe('');
    expect(project.sources[0].headers).toEqual({ Authorization: '', 'X-Title': 'Fuse Studio' });
    expect(project.settings.judge.reward.apiKey).toBe('');
    // Non-secret fields that merely mention tokens survive.
    expect(project.sources[0].max_tokens).toBe(2048);
    expect(project.settings.judge.reward.max_tokens).toBe(5);
    expect(project.settings.train).toEqual({ sft: { lr: 2e-4, epochs: 3 }, maxNewTokens: 64 });
  });

  it('refuses to build when a key would still be written (e.g. quoted in a dataset)', () => {
    const leaky = input({ dataRun: { runId: 'r', doc: null, artifacts: { 'sft.jsonl': `{"messages":[{"role":"user","content":"my key is ${KEY}"}]}\n` } } });
    expect(() => buildBundle(leaky)).toThrow(BundleError);
    expect(() => buildBundle(leaky)).toThrow(/datasets\/sft\.jsonl contains an API key/);
  });

  it('round-trips through a zip: project, datasets and adapters', () => {
    const parsed = parseBundle(unzipFiles(zipFiles(buildBundle(input()))));
    expect(parsed.project.model?.key).toBe('demo');
    expect(parsed.project.sources.map((s) => s.id)).toEqual(['a', 'b']);
    expect(parsed.datasets['sft.jsonl']).toContain('"hello"');
    expect(Object.keys(parsed.datasets).sort()).toEqual(['report.json', 'sft.jsonl']);
    expect(parsed.adapters).toHaveLength(1);
    expect(parsed.adapters[0]!.name).toBe('sft+dpo');
    expect([...parsed.adapters[0]!.files['adapter_model.safetensors']!]).toEqual([1, 2, 3]);
    expect(parsed.project.dataRun?.runId).toBe('run-1');
    expect(parsed.project.training).toEqual({ sft: { lr: 2e-4, loraRank: 16 }, dpo: { beta: 10, loss: 'ln-dpo' } });
  });

  it('reads a bundle zipped inside a folder, and explains what is wrong with others', () => {
    const files = buildBundle(input());
    const nested = new Map([...files].map(([p, b]) => [`my-project/${p}`, b]));
    expect(parseBundle(nested).adapters).toHaveLength(1);
    expect(() => parseBundle(new Map([['x.txt', bytes('x')]]))).toThrow(/not a Fuse Studio project bundle/);
    expect(() => parseBundle(new Map([['project.json', bytes('{"format":"other"}')]]))).toThrow(/not a Fuse Studio project/);
    const missing = new Map(files);
    missing.delete('adapters/sft+dpo/adapter_model.safetensors');
    expect(() => parseBundle(missing)).toThrow(/adapters\/sft\+dpo\/adapter_model\.safetensors .* missing/);
    expect(() => unzipFiles(bytes('not a zip'))).toThrow(/not a readable zip/);
  });

  it('drops keys found in an imported bundle and keeps local keys of known sources', () => {
    const files = buildBundle(input());
    const project = JSON.parse(text(files.get('project.json')!));
    project.sources[0].apiKey = 'sk-smuggled-in';
    files.set('project.json', bytes(JSON.stringify(project)));
    const parsed = parseBundle(files);
    expect(parsed.project.sources[0]!.apiKey).toBe('');
    const merged = mergeImportedSources(parsed.project.sources, [source('a', 'sk-local-key')]);
    expect(merged.map((s) => s.apiKey)).toEqual(['sk-local-key', '']);
    expect(sanitizeSourceEntry(source('z', KEY)).apiKey).toBe('');
  });

  it('keeps this browser\'s secrets when an imported setting has them blanked', () => {
    const imported = { kind: 'reward', reward: { apiKey: '', model: 'armo' }, list: [{ token: '' }] };
    const local = { kind: 'judge', reward: { apiKey: 'rm-local', model: 'old' }, list: [{ token: 'tk-local' }] };
    expect(keepLocalSecrets(imported, local)).toEqual({ kind: 'reward', reward: { apiKey: 'rm-local', model: 'armo' }, list: [{ token: 'tk-local' }] });
    expect(keepLocalSecrets(imported, undefined)).toEqual(imported);
  });

  it('refuses unsafe adapter names', () => {
    const bad = input({ adapters: [{ name: '../evil', note: '', createdAt: '', files: { 'adapter_config.json': bytes('{}'), 'adapter_model.safetensors': bytes('') } }] });
    expect(() => buildBundle(bad)).toThrow(/may only hold/);
  });
});

describe('adapter upload', () => {
  it('takes the two files loose or from a zip (in a folder), and refuses others', () => {
    const cfg = bytes('{}');
    const st = new Uint8Array([9]);
    const loose = peftFilesFromUpload([
      { name: 'adapter_config.json', bytes: cfg },
      { name: 'adapter_model.safetensors', bytes: st },
    ]);
    expect([...loose.keys()].sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const zip = zipFiles(new Map([['adapter_config.json', cfg], ['adapter_model.safetensors', st]]), 'my-adapter');
    const fromZip = peftFilesFromUpload([{ name: 'my-adapter.zip', bytes: zip }]);
    expect([...fromZip.get('adapter_model.safetensors')!]).toEqual([9]);
    expect(() => peftFilesFromUpload([{ name: 'notes.txt', bytes: bytes('x') }])).toThrow(/no adapter_config\.json/);
    expect(() => peftFilesFromUpload([{ name: 'a.zip', bytes: zip }, { name: 'adapter_config.json', bytes: cfg }])).toThrow(/more than once/);
  });

  it('carries what each adapter continues, and imports a parent before its child under the parent’s new name', () => {
    const peft = { 'adapter_config.json': bytes('{}'), 'adapter_model.safetensors': bytes('x') };
    const adapters = [
      { name: 'sft+dpo', note: 'DPO', createdAt: '', files: peft, parent: 'sft', kind: 'dpo' },
      { name: 'sft', note: 'SFT', createdAt: '', files: peft, parent: null, kind: 'sft' },
      { name: 'mine', note: 'imported', createdAt: '', files: peft, parent: null },
    ];
    const back = parseBundle(buildBundle(input({ adapters }))).adapters;
    expect(back.map((a) => [a.name, a.parent, a.kind])).toEqual([
      ['sft+dpo', 'sft', 'dpo'],
      ['sft', null, 'sft'],
      ['mine', null, undefined],
    ]);
    expect(adapterImportOrder(back).map((a) => a.name)).toEqual(['sft', 'sft+dpo', 'mine']);
    // "sft" is taken here, so it came in as "sft-2": its child follows.
    const dpo = back.find((a) => a.name === 'sft+dpo')!;
    expect(adapterImportName(dpo, new Map([['sft', 'sft-2']]))).toBe('sft-2+dpo');
    expect(adapterImportName(dpo, new Map([['sft', 'sft']]))).toBe('sft+dpo');
    expect(adapterImportName(back[2]!, new Map())).toBe('mine');
  });
});
