// The blind A/B vote of the Compare page (workshops): each round two models answer the same
// prompt, shown as "A" and "B" in a random order; people vote A, B or tie, and the tally (kept in
// localStorage per base model) shows each model's wins, losses, ties and win rate once revealed.
// Pure: the page passes in the random number and the storage.

export type Vote = 'a' | 'b' | 'tie';

/** A round's assignment: which model answers as A and which as B. */
export interface BlindRound {
  a: string;
  b: string;
}

/** One vote as it is stored: the two models and the winner by model (null: a tie). */
export interface VoteRecord {
  a: string;
  b: string;
  winner: string | null;
  at: string;
}

export interface ModelScore {
  model: string;
  wins: number;
  losses: number;
  ties: number;
  rounds: number;
  /** (wins + ties/2) / rounds; 0 before any round. */
  winRate: number;
}

export const BLIND_TALLY_KEY = 'fuse-studio.blindTally';

/** Random order: `random` in [0, 1) (Math.random()); below 0.5 the first model answers as A. */
export function assignRound(first: string, second: string, random: number): BlindRound {
  if (first === second) throw new Error('Pick two different models to compare.');
  return random < 0.5 ? { a: first, b: second } : { a: second, b: first };
}

export function recordVote(round: BlindRound, vote: Vote, at = new Date().toISOString()): VoteRecord {
  return { a: round.a, b: round.b, winner: vote === 'tie' ? null : vote === 'a' ? round.a : round.b, at };
}

/** Each model's record over the votes, in order of win rate (then name). */
export function tally(votes: readonly VoteRecord[]): ModelScore[] {
  const by = new Map<string, ModelScore>();
  const get = (m: string) => {
    let s = by.get(m);
    if (!s) by.set(m, (s = { model: m, wins: 0, losses: 0, ties: 0, rounds: 0, winRate: 0 }));
    return s;
  };
  for (const v of votes) {
    for (const m of [v.a, v.b]) {
      const s = get(m);
      s.rounds++;
      if (v.winner === null) s.ties++;
      else if (v.winner === m) s.wins++;
      else s.losses++;
    }
  }
  const out = [...by.values()];
  for (const s of out) s.winRate = s.rounds ? (s.wins + s.ties / 2) / s.rounds : 0;
  return out.sort((x, y) => y.winRate - x.winRate || x.model.localeCompare(y.model));
}

type Stored = Record<string, VoteRecord[]>;

function isVote(v: unknown): v is VoteRecord {
  const r = v as VoteRecord;
  return typeof r === 'object' && r !== null && typeof r.a === 'string' && typeof r.b === 'string' && (r.winner === null || typeof r.winner === 'string');
}

/** The votes stored for `modelKey` (malformed storage reads as none). */
export function loadVotes(storage: Pick<Storage, 'getItem'>, modelKey: string): VoteRecord[] {
  try {
    const all = JSON.parse(storage.getItem(BLIND_TALLY_KEY) ?? '{}') as Stored;
    const list = all?.[modelKey];
    return Array.isArray(list) ? list.filter(isVote) : [];
  } catch {
    return [];
  }
}

export function saveVotes(storage: Pick<Storage, 'getItem' | 'setItem'>, modelKey: string, votes: readonly VoteRecord[]): void {
  let all: Stored = {};
  try {
    const parsed = JSON.parse(storage.getItem(BLIND_TALLY_KEY) ?? '{}') as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) all = parsed as Stored;
  } catch {
    all = {};
  }
  if (votes.length) all[modelKey] = [...votes];
  else delete all[modelKey];
  storage.setItem(BLIND_TALLY_KEY, JSON.stringify(all));
}
