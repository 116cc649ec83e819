import { describe, expect, it } from 'vitest';
import { localSourceProblem, pipelineLocalSources, toLocalSource, type LocalSourceEntry } from './localSources';

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
});
