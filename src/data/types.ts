// The fusion pipeline's shared vocabulary, one definition each:
//   ResponseRecord  a source's answer to a prompt, as collection stores it (collect.ts)
//   ErrorRecord     an item whose request failed after the retry policy (collect.ts)
//   Response        what set construction needs of a response (construct.ts): a ResponseRecord
//                   fits as is; an ErrorRecord becomes one through `errorAsResponse`
//   Score           what set construction needs of a judgement: score in [0, 1], correct, passed
//   ScoreRecord     a Score as the scoring phase stores it, with how it was reached (pipeline.ts)
// Every response, error and score of one item shares the same key: responseKey(...).
// Messages are records.ts's ChatMessage.

import type { Domain } from './prompts';
import type { AppliedNormalization } from './score';
import type { FailureKind, Usage } from './sources';

/** The key of an item (source, prompt, sample): unambiguous whatever characters the ids contain. */
export function responseKey(sourceId: string, promptId: string, sampleIndex: number): string {
  return JSON.stringify([sourceId, promptId, sampleIndex]);
}

export interface ResponseRecord {
  key: string;
  sourceId: string;
  sourceName: string;
  /** The model asked for. */
  model: string;
  /** The model the server says answered (may be a more precise name). */
  servedModel: string;
  promptId: string;
  sampleIndex: number;
  content: string;
  finishReason: string | null;
  usage?: Usage;
  /** The sampling fields sent (temperature, top_p, max_tokens, seed, extras). */
  params: Record<string, unknown>;
  droppedParams?: string[];
  attempts: number;
  latencyMs: number;
  /** ISO time it arrived. */
  createdAt: string;
}

export interface ErrorRecord {
  key: string;
  sourceId: string;
  promptId: string;
  sampleIndex: number;
  /** HTTP status when there was one. */
  status?: number;
  kind: FailureKind;
  /** Redacted. */
  message: string;
  attempts: number;
  createdAt: string;
}

/** A response as set construction sees it; `error` marks an item that has none (never selected). */
export type Response = Pick<ResponseRecord, 'promptId' | 'sourceId' | 'sampleIndex' | 'content'> &
  Partial<Pick<ResponseRecord, 'model'>> & {
    error?: string;
  };

/** An ErrorRecord as a Response row: visible in the report, never selected. */
export function errorAsResponse(e: ErrorRecord): Response {
  return {
    promptId: e.promptId,
    sourceId: e.sourceId,
    sampleIndex: e.sampleIndex,
    content: '',
    error: `${e.status !== undefined ? `HTTP ${e.status}, ` : ''}${e.kind}: ${e.message}`,
  };
}

export interface Score {
  /** Reward / judge score normalized to [0, 1]; null when not scored. */
  score: number | null;
  /** Math: the final answer matches the gold answer. */
  correct?: boolean;
  /** Code: passes the static checks and every test. */
  passed?: boolean;
  detail?: string;
  /** The judge's or reward model's own number (gap windows in 'raw' or 'std' units compare it). */
  judge?: { raw: number | null; method?: 'judge' | 'reward' };
  /**
   * The judge or reward model could not be asked (its request failed after the retries): why. A
   * judge that answered without a readable score has `judge` with raw null instead.
   */
  judgeError?: string;
}

/** A stored Score. The latest record of a key counts. */
export interface ScoreRecord extends Score {
  /** The response's key. */
  key: string;
  promptId: string;
  sourceId: string;
  sampleIndex: number;
  domain: Domain;
  /**
   * What scored it (judge/reward model, verifier): a record made by another scorer than the
   * run's is scored again; one made by the same is never.
   */
  scorer: string;
  /** The judge's or reward model's reading. */
  judge?: {
    method: 'judge' | 'reward';
    model: string;
    /** The number as the scorer gave it. */
    raw: number | null;
    detail: string;
    /** The judge's verdict text, clipped. */
    verdict?: string;
    /** Reward models: how raw maps to `score` (the normalisation and its parameters). */
    normalize?: AppliedNormalization;
  };
  /** Math verifier: the final answer found and how it compared with the gold one. */
  math?: { extracted: string | null; comparison: string; detail: string };
  /** Code verifier: how the run against the tests ended. */
  code?: { status: string; language: string; error?: string; durationMs: number };
  /**
   * Scoring did not finish (the judge failed after its retries, gave no readable score, or the
   * sandbox could not run the language): the record keeps what was reached, and a later run
   * scores the response again.
   */
  error?: string;
  createdAt: string;
}
