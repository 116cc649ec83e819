// The results board of `fuse-studio classroom`: what students send (blind A/B votes and
// evaluation results, each with the anonymous per-browser id of its sender), aggregated per model,
// per student and in total, with 95% Wilson score intervals. It stores what students send and the
// time it arrived — no address, no browser details. Pure: the server (server.ts) feeds it.
// Intervals are the evaluation's own (eval/stats.ts): Wilson, ties counted half a win.

import { z } from 'zod';
import { wilson as wilsonInterval, winRate } from '../eval/stats';

/** The 95% Wilson interval of `k` of `n` as {low, high}; [0, 1] when there is nothing yet. */
export function wilson(k: number, n: number): { low: number; high: number } {
  const ci = wilsonInterval(Math.min(k, n), n);
  return ci ? { low: ci[0], high: ci[1] } : { low: 0, high: 1 };
}

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');

/** POST /classroom/board/votes: one blind A/B round (blindAb.ts VoteRecord). */
export const voteSchema = z
  .object({
    a: name,
    b: name,
    /** The model that won, or null for a tie. */
    winner: name.nullable(),
  })
  .strict()
  .refine((v) => v.a !== v.b, { message: 'a and b must be two different models', path: ['b'] })
  .refine((v) => v.winner === null || v.winner === v.a || v.winner === v.b, { message: 'must be a, b or null (a tie)', path: ['winner'] });

/** POST /classroom/board/results: an evaluation result of one model on one metric, as counts. */
export const resultSchema = z
  .object({
    model: name,
    /** e.g. "preference accuracy", "math pass@1". */
    metric: name,
    correct: z.number().min(0),
    total: z.number().int().positive().max(1_000_000),
  })
  .strict()
  .refine((r) => r.correct <= r.total, { message: 'must not be above total', path: ['correct'] });

export type VoteInput = z.infer<typeof voteSchema>;
export type ResultInput = z.infer<typeof resultSchema>;

export interface StoredVote extends VoteInput {
  student: string;
  at: string;
}

export interface StoredResult extends ResultInput {
  student: string;
  at: string;
}

export interface Interval {
  low: number;
  high: number;
}

export interface ModelVotes {
  model: string;
  wins: number;
  losses: number;
  ties: number;
  rounds: number;
  /** (wins + ties/2) / rounds. */
  winRate: number;
  interval: Interval;
}

export interface MetricRow {
  model: string;
  metric: string;
  correct: number;
  total: number;
  rate: number;
  interval: Interval;
  /** Students who sent a result for it. */
  students: number;
}

export interface StudentRow {
  /** The first 8 characters of the anonymous id: enough to tell rows apart on a projector. */
  student: string;
  votes: number;
  results: number;
}

export interface BoardSummary {
  totals: { students: number; votes: number; results: number; ties: number };
  models: ModelVotes[];
  metrics: MetricRow[];
  students: StudentRow[];
  updatedAt: string | null;
}

/** Bounds so a class (or a misbehaving script) cannot grow the board without limit. */
export const BOARD_LIMITS = { entries: 200_000, perStudent: 5_000 } as const;

export class BoardFullError extends Error {
  override name = 'BoardFullError';
}

/** Where a board keeps its entries across restarts (server.ts: a JSONL file), or nothing. */
export interface BoardLog {
  append(line: string): void;
  clear(): void;
}

export class Board {
  private votes: StoredVote[] = [];
  private results: StoredResult[] = [];
  private perStudent = new Map<string, number>();
  private updated: string | null = null;
  /** Changes on every write, so a page can poll cheaply. */
  version = 0;

  constructor(private readonly log: BoardLog | null = null) {}

  /**
   * Replays a log's lines ({"vote": …} / {"result": …}, as written); a line that does not read as
   * one is an error naming it (the file is the instructor's, and half a board is worse than none).
   */
  replay(lines: readonly string[], file: string): void {
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let entry: { vote?: StoredVote; result?: StoredResult };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch (e) {
        throw new Error(`${file}: line ${i + 1} is not JSON (${(e as Error).message}); fix or remove the file`, { cause: e });
      }
      const row = entry.vote ?? entry.result;
      const v = entry.vote;
      const r = entry.result;
      const ok = v
        ? voteSchema.safeParse({ a: v.a, b: v.b, winner: v.winner }).success
        : resultSchema.safeParse({ model: r?.model, metric: r?.metric, correct: r?.correct, total: r?.total }).success;
      if (!row || !ok || typeof row.student !== 'string' || typeof row.at !== 'string') throw new Error(`${file}: line ${i + 1} is not a board entry; fix or remove the file`);
      this.perStudent.set(row.student, (this.perStudent.get(row.student) ?? 0) + 1);
      if (entry.vote) this.votes.push(entry.vote);
      else this.results.push(entry.result!);
      this.updated = row.at;
    });
    this.version++;
  }

  private admit(student: string): void {
    if (this.votes.length + this.results.length >= BOARD_LIMITS.entries) throw new BoardFullError(`the board is full (${BOARD_LIMITS.entries} entries): ask the instructor to export and reset it`);
    const n = this.perStudent.get(student) ?? 0;
    if (n >= BOARD_LIMITS.perStudent) throw new BoardFullError(`you have sent ${n} entries, the most one student may send; ask the instructor to reset the board`);
    this.perStudent.set(student, n + 1);
  }

  private touch(): string {
    this.version++;
    return (this.updated = new Date().toISOString());
  }

  addVote(student: string, v: VoteInput): StoredVote {
    this.admit(student);
    const row = { ...v, student, at: this.touch() };
    this.votes.push(row);
    this.log?.append(JSON.stringify({ vote: row }));
    return row;
  }

  addResult(student: string, r: ResultInput): StoredResult {
    this.admit(student);
    const row = { ...r, student, at: this.touch() };
    this.results.push(row);
    this.log?.append(JSON.stringify({ result: row }));
    return row;
  }

  reset(): void {
    this.votes = [];
    this.results = [];
    this.perStudent.clear();
    this.touch();
    this.updated = null;
    this.log?.clear();
  }

  summary(): BoardSummary {
    const models = new Map<string, ModelVotes>();
    const get = (m: string) => {
      let s = models.get(m);
      if (!s) models.set(m, (s = { model: m, wins: 0, losses: 0, ties: 0, rounds: 0, winRate: 0, interval: { low: 0, high: 1 } }));
      return s;
    };
    let ties = 0;
    for (const v of this.votes) {
      if (v.winner === null) ties++;
      for (const m of [v.a, v.b]) {
        const s = get(m);
        s.rounds++;
        if (v.winner === null) s.ties++;
        else if (v.winner === m) s.wins++;
        else s.losses++;
      }
    }
    for (const s of models.values()) {
      const w = winRate({ wins: s.wins, losses: s.losses, ties: s.ties });
      s.winRate = w?.rate ?? 0;
      s.interval = w ? { low: w.ci95[0], high: w.ci95[1] } : { low: 0, high: 1 };
    }
    const metrics = new Map<string, MetricRow & { who: Set<string> }>();
    for (const r of this.results) {
      const key = JSON.stringify([r.model, r.metric]);
      let m = metrics.get(key);
      if (!m) metrics.set(key, (m = { model: r.model, metric: r.metric, correct: 0, total: 0, rate: 0, interval: { low: 0, high: 1 }, students: 0, who: new Set() }));
      m.correct += r.correct;
      m.total += r.total;
      m.who.add(r.student);
    }
    const students = new Map<string, StudentRow>();
    const st = (id: string) => {
      let s = students.get(id);
      if (!s) students.set(id, (s = { student: id.slice(0, 8), votes: 0, results: 0 }));
      return s;
    };
    for (const v of this.votes) st(v.student).votes++;
    for (const r of this.results) st(r.student).results++;
    return {
      totals: { students: students.size, votes: this.votes.length, results: this.results.length, ties },
      models: [...models.values()].sort((x, y) => y.winRate - x.winRate || y.rounds - x.rounds || x.model.localeCompare(y.model)),
      metrics: [...metrics.values()]
        .map(({ who, ...m }) => ({ ...m, students: who.size, rate: m.total ? m.correct / m.total : 0, interval: wilson(m.correct, m.total) }))
        .sort((x, y) => x.metric.localeCompare(y.metric) || y.rate - x.rate),
      students: [...students.values()].sort((x, y) => y.votes + y.results - (x.votes + x.results) || x.student.localeCompare(y.student)),
      updatedAt: this.updated,
    };
  }

  /** Everything stored, for the JSON export. */
  entries(): { votes: StoredVote[]; results: StoredResult[] } {
    return { votes: [...this.votes], results: [...this.results] };
  }

  /** One CSV row per entry: kind, at, student, a, b, winner, model, metric, correct, total. */
  csv(): string {
    const cell = (v: unknown) => {
      const s = v === null || v === undefined ? '' : String(v);
      // Quote what needs it, and neutralise spreadsheet formulas (a model named "=HYPERLINK(…)").
      const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
      return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
    };
    const rows = [['kind', 'at', 'student', 'a', 'b', 'winner', 'model', 'metric', 'correct', 'total']];
    for (const v of this.votes) rows.push(['vote', v.at, v.student, v.a, v.b, v.winner ?? 'tie', '', '', '', '']);
    for (const r of this.results) rows.push(['result', r.at, r.student, '', '', '', r.model, r.metric, String(r.correct), String(r.total)]);
    return rows.map((r) => r.map(cell).join(',')).join('\n') + '\n';
  }
}
