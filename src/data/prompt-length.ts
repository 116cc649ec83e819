// Prompts too long for the run, found before any request is sent. A prompt longer than a model's
// context cannot be answered or scored at all; one longer than the run's budget is answered, but
// slowly (a local server may spend minutes on one), and every judge or reward call reads it again
// with each answer. The studio warns about both before collection and can leave them out.
//
// Lengths are counted by the loaded model's tokenizer when there is one (the prompt's turns through
// its chat template), else estimated from the text's UTF-8 size (estimateTokens).

import type { Prompt } from './prompts';

/**
 * Tokens a text takes, estimated without a tokenizer: UTF-8 bytes / 3.5. English runs about 4 to
 * 4.5 bytes a token with the Llama 3 and Qwen vocabularies; 3.5 errs long, so a warning is not missed.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(new TextEncoder().encode(text).length / 3.5);
}

/** A prompt's estimated length (its system prompt counted too). */
export function estimatePromptTokens(p: Pick<Prompt, 'text' | 'system'>): number {
  return estimateTokens((p.system ? `${p.system}\n` : '') + p.text);
}

/** A length no prompt should exceed, and what it is (for the warning). */
export interface LengthLimit {
  tokens: number;
  /** e.g. "the long-prompt limit", "the context of the loaded model demo". */
  what: string;
  /** True for a context (the prompt cannot be used at all), false for a budget (it is slow). */
  hard: boolean;
}

export interface LongPrompt {
  id: string;
  tokens: number;
  /** The limit it exceeds that matters most: the smallest context it exceeds, else the smallest budget. */
  over: LengthLimit;
}

/** The prompts over a limit, each with the limit that matters most, longest first. `tokensOf` gives each prompt's length. */
export function findLongPrompts(prompts: readonly Pick<Prompt, 'id'>[], tokensOf: (id: string) => number, limits: readonly LengthLimit[]): LongPrompt[] {
  const sorted = [...limits].filter((l) => Number.isFinite(l.tokens) && l.tokens > 0).sort((a, b) => a.tokens - b.tokens);
  if (sorted.length === 0) return [];
  const out: LongPrompt[] = [];
  for (const p of prompts) {
    const tokens = tokensOf(p.id);
    const over = sorted.find((l) => l.hard && tokens > l.tokens) ?? sorted.find((l) => tokens > l.tokens);
    if (over) out.push({ id: p.id, tokens, over });
  }
  return out.sort((a, b) => b.tokens - a.tokens);
}
