import { describe, expect, it } from 'vitest';
import { parseEvalItems } from '../eval/items';
import { endpointPreset } from '../data/sources';
import { EXAMPLE_CHOICES, judgeChoice, setPrompts } from './evalStore';
import { DEFAULT_JUDGE, newSourceEntry, useSourcesStore } from './sourcesStore';

describe('the Evaluate page’s inputs', () => {
  it('takes the Sources page’s judge, says why when it cannot, and never puts the key in its label', () => {
    useSourcesStore.setState({ judge: DEFAULT_JUDGE, entries: [] });
    expect(judgeChoice(null)).toEqual({ problem: expect.stringContaining('No judge is configured') });
    const entry = { ...newSourceEntry(endpointPreset('openrouter'), 'j1'), model: 'judge-model', apiKey: 'sk-secret-123' };
    useSourcesStore.setState({ judge: { ...DEFAULT_JUDGE, kind: 'judge', sourceId: 'j1' }, entries: [] });
    expect(judgeChoice(null)).toEqual({ problem: expect.stringContaining('incomplete') });
    useSourcesStore.setState({ entries: [entry] });
    const c = judgeChoice('my prompt');
    if (!('judge' in c)) throw new Error(c.problem);
    expect(c.judge.spec.type).toBe('judge');
    expect(c.judge.prompt).toBe('my prompt');
    expect(c.judge.label).toBe('judge-model at https://openrouter.ai/api/v1 (chat judge: each pair in both orders)');
    expect(c.judge.label).not.toContain('sk-secret');
    useSourcesStore.setState({ judge: { ...DEFAULT_JUDGE, kind: 'local-reward', localReward: { model: 'Skywork/Reward' } } });
    const r = judgeChoice('ignored');
    expect('judge' in r && r.judge.label).toBe('Skywork/Reward (local reward model: the higher reward wins)');
    expect('judge' in r && r.judge.prompt).toBeNull();
  });

  it('reads the training prompts of TRL SFT and DPO sets (for the duplicate flags)', () => {
    const sft = JSON.stringify({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hi.' }, { role: 'assistant', content: 'Hi!' }] });
    const dpo = JSON.stringify({ prompt: [{ role: 'user', content: 'Name a colour.' }], chosen: [{ role: 'assistant', content: 'Blue.' }], rejected: [{ role: 'assistant', content: 'No.' }] });
    expect(setPrompts(`${sft}\n{oops\n`, dpo)).toEqual([{ text: 'Say hi.', system: 'Be brief.' }, { text: 'Name a colour.' }]);
    expect(setPrompts(undefined, undefined)).toEqual([]);
  });

  it('ships a built-in multiple-choice example that parses as multiple-choice rows', async () => {
    const set = await parseEvalItems(EXAMPLE_CHOICES, 'example-choices.jsonl');
    expect(set.items.length).toBeGreaterThan(3);
    expect(set.items.every((it) => it.kind === 'choice')).toBe(true);
  });
});
