import { describe, expect, it } from 'vitest';
import { localSourceProblem, pickedFolderFiles, pipelineLocalSources, toLocalSource, useLocalSourcesStore, type LocalSourceEntry } from './localSources';

const entry = (over: Partial<LocalSourceEntry> = {}): LocalSourceEntry => ({ id: 'a1', name: 'Qwen', model: 'qwen2.5-0.5b-instruct', n: 4, max_tokens: 64, enabled: true, ...over });

describe('local source entries', () => {
  it('become LocalSources whose id joins the entry id and the model; unset sampling stays unset (the family preset applies)', () => {
    const s = toLocalSource(entry({ model: ' org/m ' }));
    expect(s).toMatchObject({ local: true, id: 'local-a1:org/m', name: 'Qwen', model: 'org/m', n: 4, max_tokens: 64, seed: 0 });
    expect('temperature' in s || 'top_p' in s || 'repetition_penalty' in s).toBe(false);
    expect(toLocalSource(entry({ temperature: 0.7, top_p: 0.8, repetition_penalty: 1.05 }))).toMatchObject({ temperature: 0.7, top_p: 0.8, repetition_penalty: 1.05 });
    // Another model under the same entry starts new items.
    expect(toLocalSource(entry({ model: 'other' })).id).not.toBe(toLocalSource(entry()).id);
  });

  it('name what is missing or wrong, and only complete, enabled ones run', () => {
    expect(localSourceProblem(entry())).toBe('');
    expect(localSourceProblem(entry({ model: ' ' }))).toMatch(/Hub repo/);
    expect(localSourceProblem(entry({ name: '' }))).toMatch(/name/);
    expect(localSourceProblem(entry({ n: 0 }))).toMatch(/Responses per prompt \(n\)/);
    expect(localSourceProblem(entry({ max_tokens: 1.5 }))).toMatch(/Max new tokens/);
    expect(pipelineLocalSources([entry(), entry({ id: 'b', enabled: false }), entry({ id: 'c', model: '' })]).map((s) => s.id)).toEqual(['local-a1:qwen2.5-0.5b-instruct']);
  });

  it('a folder chosen on this computer is a source while the tab has its files; without them it asks for the folder again', () => {
    const file = (path: string) => Object.defineProperty(new File(['{}'], path.split('/').pop()!), 'webkitRelativePath', { value: path });
    const forgotten = entry({ model: 'folder:tiny-qwen' });
    expect(localSourceProblem(forgotten)).toMatch(/^Choose the folder tiny-qwen again/);
    expect(pipelineLocalSources([forgotten])).toEqual([]);

    useLocalSourcesStore.getState().addFolder([file('tiny-qwen/config.json'), file('tiny-qwen/model.safetensors')]);
    const added = useLocalSourcesStore.getState().entries.filter((e) => e.model === 'folder:tiny-qwen');
    expect(added).toHaveLength(1);
    expect(added[0]!.name).toBe('tiny-qwen');
    expect(localSourceProblem(forgotten)).toBe('');
    expect(pickedFolderFiles('folder:tiny-qwen')!.map((f) => f.path)).toEqual(['tiny-qwen/config.json', 'tiny-qwen/model.safetensors']);
    // Chosen again: the same entry (its answers are its own), not a second one.
    useLocalSourcesStore.getState().addFolder([file('tiny-qwen/config.json')]);
    expect(useLocalSourcesStore.getState().entries.filter((e) => e.model === 'folder:tiny-qwen')).toHaveLength(1);
    expect(() => useLocalSourcesStore.getState().addFolder([])).toThrow(/The folder is empty/);
  });
});
