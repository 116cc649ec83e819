import { describe, expect, it } from 'vitest';
import { readModelMeta } from '../load';
import { tinyConfig, hostWeightsByName, randomHostWeights } from '../random';
import { droppedFilesSource } from '../source-browser';
import { writeGgufModel } from '../testing/gguf-writer';
import { parseGgufSpec } from './source';

describe('parseGgufSpec', () => {
  it('reads a .gguf path, URL, Hub file URL and repo + file; anything else is not a GGUF spec', () => {
    expect(parseGgufSpec('/models/x/model-Q4_K_M.gguf')).toEqual({ kind: 'local', path: '/models/x/model-Q4_K_M.gguf' });
    expect(parseGgufSpec('./tiny.gguf')).toEqual({ kind: 'local', path: './tiny.gguf' });
    expect(parseGgufSpec('https://example.com/files/a%20b.GGUF')).toEqual({
      kind: 'remote',
      location: { kind: 'url', url: 'https://example.com/files/' },
      file: 'a b.GGUF',
    });
    expect(parseGgufSpec('https://huggingface.co/org/repo-GGUF/resolve/v2/sub/m.gguf')).toEqual({
      kind: 'remote',
      location: { kind: 'hf', repo: 'org/repo-GGUF', revision: 'v2' },
      file: 'sub/m.gguf',
    });
    expect(parseGgufSpec('https://huggingface.co/org/repo/blob/main/m.gguf')).toMatchObject({ location: { kind: 'hf', repo: 'org/repo', revision: 'main' }, file: 'm.gguf' });
    expect(parseGgufSpec('hf://org/repo@abc123/m.gguf')).toEqual({ kind: 'remote', location: { kind: 'hf', repo: 'org/repo', revision: 'abc123' }, file: 'm.gguf' });
    expect(parseGgufSpec('org/repo/m.gguf')).toEqual({ kind: 'remote', location: { kind: 'hf', repo: 'org/repo', revision: 'main' }, file: 'm.gguf' });
    expect(parseGgufSpec('org/repo')).toBeNull();
    expect(parseGgufSpec('/models/x')).toBeNull();
    expect(parseGgufSpec('hf://bad')).toBeNull();
  });
});

describe('a dropped .gguf file (the studio)', () => {
  it('is the model when the drop has one .gguf and no config.json; its config comes from the header', async () => {
    const config = tinyConfig({ hiddenSize: 64, numHeads: 2, numKvHeads: 1, headDim: 32, intermediateSize: 96, vocabSize: 40, tieWordEmbeddings: true });
    const w = hostWeightsByName(randomHostWeights(config, 'f32', 1));
    const bytes = writeGgufModel(config, (n) => w.get(n)!);
    const source = droppedFilesSource([new File([bytes], 'tiny-Q8_0.gguf'), new File(['x'], 'README.md')]);
    expect(source.ggufFile).toBe('tiny-Q8_0.gguf');
    const meta = await readModelMeta(source);
    expect(meta.config).toEqual({ ...config, dtype: 'gguf' });
    expect(meta.tokenizerFiles).toBeNull();
    expect(droppedFilesSource([new File(['{}'], 'config.json'), new File([bytes], 'a.gguf')]).ggufFile).toBeUndefined();
  });
});
