// Where an evaluation keeps its per-item results, so a stopped run resumes without redoing any item:
// one result per (kind, model, item id) — a model's answer to a prompt (with its math/code check),
// its log-probabilities of an SFT record, a DPO pair or a multiple-choice row's options, and the
// judge's verdict on a pair of models' answers. runEvaluation (run.ts) reads them all at the start,
// skips what is there, and puts each result the moment it exists. Hosts supply the store: a JSONL
// folder in Node (store-jsonl.ts), IndexedDB in the studio, memory in tests (below).
import type { CodeStatus } from '../data/verify-code';
import type { FinishReason } from '../model/generate';

export type EvalResultKind = 'answer' | 'sft' | 'dpo' | 'choice' | 'judge';

/** The store key of a result: unique per (kind, model, item). For 'judge', model is pairName(a, b). */
export function resultKey(kind: EvalResultKind, model: string, itemId: string): string {
  return `${kind}\u0000${model}\u0000${itemId}`;
}

/** The model field of a judge result: the ordered pair. */
export function pairName(a: string, b: string): string {
  return `${a}\u0000vs\u0000${b}`;
}

interface ResultBase<K extends EvalResultKind> {
  /** resultKey(kind, model, itemId). */
  key: string;
  kind: K;
  model: string;
  itemId: string;
}

/** Σ log p and the token count of a scored sequence (model/score.ts). */
export interface LogProb {
  logprobSum: number;
  nTokens: number;
}

export type AnswerCheck =
  | { type: 'math'; correct: boolean; extracted: string | null; detail: string }
  /** status 'unavailable': the sandbox could not run the language; the item is left out of the pass rate. */
  | { type: 'code'; passed: boolean; status: CodeStatus; error?: string };

/** A model's answer to a prompt row (greedy by default), with its check when the row has gold/tests. */
export interface AnswerResult extends ResultBase<'answer'> {
  text: string;
  /** Generated tokens (the stop token included). */
  nTokens: number;
  finishReason: Exclude<FinishReason, 'aborted'>;
  check: AnswerCheck | null;
}

/** Log-probability of an SFT record's target tokens (its held-out loss is −logprobSum / nTokens). */
export interface SftResult extends ResultBase<'sft'>, LogProb {}

/** A DPO pair under the model: correct when the chosen side's mean log-prob per token is the higher. */
export interface DpoResult extends ResultBase<'dpo'> {
  chosen: LogProb;
  rejected: LogProb;
}

/** A multiple-choice row: each option's log-likelihood after the prompt; the highest sum is picked. */
export interface ChoiceResult extends ResultBase<'choice'> {
  options: LogProb[];
  picked: number;
  correct: boolean;
}

/** One order of a chat judge's pairwise verdict. */
export interface JudgeOrder {
  /** Which model's answer was shown first (as "A"). */
  first: 'a' | 'b';
  /** The verdict as read: 'A' / 'B' refer to the shown order; null when unreadable. */
  verdict: 'A' | 'B' | 'tie' | null;
  text: string;
}

/**
 * The judge on model a's and model b's answers to one prompt. `outcome` is the combined verdict:
 * a chat judge sees both orders and a verdict that flips with the order is a tie (`inconsistent`);
 * a reward model's higher reward wins (equal rewards tie).
 */
export interface JudgeResult extends ResultBase<'judge'> {
  a: string;
  b: string;
  /** judgeSpecId of the judge (data/score.ts): another judge judges again. */
  judge: string;
  outcome: 'a' | 'b' | 'tie';
  /** A chat judge's two orders disagreed (the item counts as a tie: position bias). */
  inconsistent: boolean;
  orders?: JudgeOrder[];
  rewards?: { a: number; b: number };
  /** Why a chat judge's verdict could not be read in an order (the item then counts as a tie, not inconsistent). */
  unreadable?: string;
}

export type EvalResult = AnswerResult | SftResult | DpoResult | ChoiceResult | JudgeResult;

/**
 * What the stored results were made with; a resumed run must match it (same items, decoding,
 * template, and the same thing under each model name), else its results would mix two evaluations.
 */
export interface EvalRunMeta {
  /** sha256 of the item set (items.ts). */
  itemsHash: string;
  /** Decoding and template settings, as runEvaluation resolved them. */
  decoding: Record<string, unknown>;
  /** Each model's name and what it is (an adapter's path or hash; '' for the base). */
  models: { name: string; id: string }[];
}

/** Per-item results of one evaluation. `put` is durable when it resolves; a key put again replaces the old result. */
export interface EvalStore {
  /** The run's settings as first written, or null for a new store. */
  readRun(): Promise<EvalRunMeta | null>;
  writeRun(meta: EvalRunMeta): Promise<void>;
  /** Every stored result (the latest of each key). */
  list(): Promise<EvalResult[]>;
  put(result: EvalResult): Promise<void>;
}

/** An EvalStore in memory (tests, previews). */
export class MemoryEvalStore implements EvalStore {
  readonly results = new Map<string, EvalResult>();
  meta: EvalRunMeta | null = null;

  async readRun() {
    return this.meta;
  }
  async writeRun(meta: EvalRunMeta) {
    this.meta = meta;
  }
  async list() {
    return [...this.results.values()];
  }
  async put(result: EvalResult) {
    this.results.set(result.key, result);
  }
}
