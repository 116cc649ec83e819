import { describe, expect, it } from 'vitest';
import { assignRound, BLIND_TALLY_KEY, loadVotes, recordVote, saveVotes, tally } from './blindAb';

class MemStorage {
  data = new Map<string, string>();
  getItem(k: string) {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, v);
  }
}

describe('blind A/B', () => {
  it('assigns the order from the random number and refuses one model twice', () => {
    expect(assignRound('base', 'sft', 0.2)).toEqual({ a: 'base', b: 'sft' });
    expect(assignRound('base', 'sft', 0.7)).toEqual({ a: 'sft', b: 'base' });
    expect(() => assignRound('sft', 'sft', 0.1)).toThrow(/two different/);
  });

  it('records votes by model, whatever letter the model had', () => {
    expect(recordVote({ a: 'sft', b: 'base' }, 'a', 't').winner).toBe('sft');
    expect(recordVote({ a: 'sft', b: 'base' }, 'b', 't').winner).toBe('base');
    expect(recordVote({ a: 'sft', b: 'base' }, 'tie', 't').winner).toBeNull();
  });

  it('tallies wins, losses, ties and win rates', () => {
    const votes = [
      recordVote({ a: 'sft', b: 'base' }, 'a'),
      recordVote({ a: 'base', b: 'sft' }, 'b'),
      recordVote({ a: 'base', b: 'sft' }, 'a'),
      recordVote({ a: 'base', b: 'sft' }, 'tie'),
    ];
    const t = tally(votes);
    expect(t.map((s) => s.model)).toEqual(['sft', 'base']);
    expect(t[0]).toMatchObject({ model: 'sft', wins: 2, losses: 1, ties: 1, rounds: 4, winRate: 0.625 });
    expect(t[1]).toMatchObject({ model: 'base', wins: 1, losses: 2, ties: 1, rounds: 4, winRate: 0.375 });
    expect(tally([])).toEqual([]);
  });

  it('persists per model key, resets, and survives malformed storage', () => {
    const s = new MemStorage();
    const v = [recordVote({ a: 'sft', b: 'base' }, 'a')];
    saveVotes(s, 'demo', v);
    saveVotes(s, 'other', [recordVote({ a: 'x', b: 'y' }, 'tie')]);
    expect(loadVotes(s, 'demo')).toEqual(v);
    saveVotes(s, 'demo', []);
    expect(loadVotes(s, 'demo')).toEqual([]);
    expect(loadVotes(s, 'other')).toHaveLength(1);
    s.setItem(BLIND_TALLY_KEY, '{not json');
    expect(loadVotes(s, 'demo')).toEqual([]);
    saveVotes(s, 'demo', v);
    expect(loadVotes(s, 'demo')).toEqual(v);
  });
});
