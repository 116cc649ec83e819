// Scoring responses (FUSION.md §2). Three scorers, each normalised to [0, 1]:
//   - a judge: an OpenAI-compatible chat model given a rubric (DEFAULT_RUBRIC asks for "Score: N/10"
//     first); its verdict text is read robustly ("Score: 8/10", "[[8]]", "**8**", "8.5 out of 10",
//     {"score": 8}, a number at the end, after any <think> block), and when no score can be read
//     the verdict is kept with the reason (readJudgeVerdict);
//   - a reward model behind an HTTP endpoint returning a scalar (e.g. ArmoRM served by vLLM's
//     /pooling or any custom server): the scalar is found by a configurable JSON path;
//   - a local reward model (a *ForSequenceClassification checkpoint such as
//     Skywork-Reward-V2-Qwen3-0.6B) run by the engine in this process: the host loads it and hands
//     the pipeline a RewardModelRunner (local-reward.ts); requests are batched (RewardBatcher).
// A reward's raw number is kept; its [0, 1] score comes from a RewardNormalization, by default
// fitted to the run ({kind: 'run'}: a sigmoid centred on the run's median reward, scaled by the
// run's standard deviation), so rewards in any units keep their differences.
// HTTP scorers go through the `openai` SDK and the retry policy of sources.ts.

import type OpenAI from 'openai';
import {
  chatComplete,
  createClient,
  DEFAULT_RETRY_POLICY,
  MalformedResponseError,
  SourceError,
  withRetry,
  type AttemptOptions,
  type RateLimiter,
  type Source,
} from './sources';
import type { ChatMessage } from './records';

export interface ScoreResult {
  /** In [0, 1]; null when the judge's verdict could not be read. */
  score: number | null;
  /** The number as the scorer gave it. */
  raw: number | null;
  method: 'judge' | 'reward';
  detail: string;
  /** The judge's full verdict (judge only). */
  text?: string;
  /** Why the judge's reply ended ('stop', 'length': cut at max_tokens); judge only. */
  finishReason?: string | null;
  /** Reward models: how raw became score. */
  normalize?: AppliedNormalization;
}

// ---------------------------------------------------------------------------------------------
// Judge

export interface JudgeConfig {
  /** The judge endpoint + model; temperature 0 is advisable. Its max_tokens bounds the verdict. */
  source: Source;
  /** Template with {question}, {response} and optionally {reference}. Defaults to DEFAULT_RUBRIC. */
  rubric?: string;
  /** The scale the rubric asks for (default 1…10). */
  scaleMin?: number;
  scaleMax?: number;
}

/**
 * Tokens a judge may write by default (the studio's judge setting). The default rubric asks for the
 * score on the first line, so a verdict needs about 50; the rest is room for a model that reasons
 * before it scores.
 */
export const DEFAULT_JUDGE_MAX_TOKENS = 512;

/**
 * The default rubric, written for small chat models as well as large ones:
 * - the score comes first, on its own line, in one fixed form ("Score: N/10"): a small model keeps
 *   to a form it is given for the start of its reply better than one it must remember after a
 *   paragraph of reasoning, and a verdict cut short by max_tokens still has its score;
 * - the request and the response are fenced by start/end markers, so a response that itself
 *   holds "Score: …" or instructions reads as the thing judged;
 * - a whole number from 1 to 10 with anchors at the ends and in between, so the judge uses the
 *   scale the same way across prompts (and the DPO gap window in points means something).
 * The parser (readJudgeVerdict) also reads the other forms judges write ([[N]], N/10, **N**,
 * {"score": N}, a number at the end), after any <think> block.
 */
export const DEFAULT_RUBRIC = `You are an impartial judge. Rate the quality of the AI assistant's response to the user's request below.

Judge helpfulness, correctness, relevance, depth and clarity. Penalise factual errors, unsafe content and needless verbosity. Do not let the length or style of the response sway you.{reference_block}

[Start of user request]
{question}
[End of user request]

[Start of assistant response]
{response}
[End of assistant response]

Scale: 1 = useless, wrong or harmful; 4 = partly helpful, with clear errors or gaps; 7 = helpful and correct, with minor flaws; 10 = excellent, nothing to improve.

Reply in exactly this format, the Score line first:
Score: N/10
Reason: one or two sentences.
where N is a whole number from 1 to 10.`;

/** The rubric DEFAULT_RUBRIC replaced (a stored copy of it is the old default, not a user's edit). */
export const PREVIOUS_DEFAULT_RUBRICS: readonly string[] = [
  `You are an impartial judge. Evaluate the quality of the AI assistant's response to the user's request below. Consider helpfulness, correctness, relevance, depth and clarity; penalise factual errors, unsafe content and needless verbosity.{reference_block}

[User request]
{question}

[Assistant response]
{response}

First explain your evaluation briefly, then give a final rating from 1 to 10 on the last line, exactly in the form "Score: X/10".`,
];

export interface JudgeInput {
  /** The conversation up to the response (its last user turn is the question). */
  messages: readonly ChatMessage[];
  response: string;
  /** A reference answer, when there is one. */
  reference?: string;
}

function renderConversation(messages: readonly ChatMessage[]): string {
  if (messages.length === 1 && messages[0]!.role === 'user') return messages[0]!.content;
  return messages.map((m) => `${m.role.toUpperCase()}: ${m.content}`).join('\n\n');
}

export function buildJudgeMessages(cfg: Pick<JudgeConfig, 'rubric'>, input: JudgeInput): ChatMessage[] {
  const tpl = cfg.rubric ?? DEFAULT_RUBRIC;
  const vars: Record<string, string> = {
    question: renderConversation(input.messages),
    response: input.response,
    reference: input.reference ?? '',
    reference_block: input.reference
      ? `\n\nA reference answer is given; use it to check correctness.\n\n[Start of reference answer]\n${input.reference}\n[End of reference answer]`
      : '',
  };
  // One pass, so braces inside the substituted texts are never expanded again.
  const content = tpl.replace(/\{(question|response|reference|reference_block)\}/g, (_m, k: string) => vars[k]!);
  return [{ role: 'user', content }];
}

export interface ParsedScore {
  value: number;
  /** The scale's top as the text said it ("/5", "out of 100"), else the configured one. */
  outOf: number;
  /** Which pattern read it. */
  pattern: 'json' | 'brackets' | 'tag' | 'labelled' | 'fraction' | 'bold' | 'phrase' | 'bare' | 'trailing';
}

/** A verdict as read: its score, or why none could be read (in words for the user). */
export type VerdictReading = { parsed: ParsedScore; why?: undefined } | { parsed: null; why: string };

const NUM = String.raw`([-+]?\d+(?:\.\d+)?)`;
const OUT_OF = String.raw`(?:\s*(?:/|out\s+of|of)\s*(\d+(?:\.\d+)?))?`;
const LABEL = String.raw`\b(?:final\s+|overall\s+)?(?:score|rating|grade|verdict|mark)\b`;
const NUMBER_WORDS: Record<string, number> = { zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10 };

function lastMatch(re: RegExp, text: string): RegExpExecArray | null {
  let last: RegExpExecArray | null = null;
  for (const m of text.matchAll(re)) last = m as RegExpExecArray;
  return last;
}

/** Finds a `"score": n` style field in any JSON object in the text (the last one wins). */
function jsonScore(text: string): number | null {
  const keys = ['score', 'rating', 'overall_score', 'overall', 'final_score', 'grade'];
  let found: number | null = null;
  // Try every {...} candidate that parses (fenced or inline).
  for (let start = text.indexOf('{'); start >= 0; start = text.indexOf('{', start + 1)) {
    let depth = 0;
    for (let i = start; i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) {
        try {
          const obj = JSON.parse(text.slice(start, i + 1)) as Record<string, unknown>;
          if (obj && typeof obj === 'object') {
            for (const k of Object.keys(obj)) {
              if (!keys.includes(k.toLowerCase())) continue;
              const v = obj[k];
              const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v.replace(/\/.*$/, '').trim()) : NaN;
              if (Number.isFinite(n)) found = n;
            }
          }
        } catch {
          /* not JSON */
        }
        break;
      }
    }
  }
  return found;
}

/**
 * The verdict without its reasoning: a <think>…</think> block (reasoning models; a score in it is
 * a draft) is dropped, and so is an unclosed one (the reply ended while the model was thinking).
 */
function withoutThinking(text: string): { text: string; unclosed: boolean } {
  let t = text.replace(/\r/g, '').replace(/<(think|thinking|reasoning)>[\s\S]*?<\/\1>/gi, '');
  const open = /<(think|thinking|reasoning)>/i.exec(t);
  if (open) t = t.slice(0, open.index);
  return { text: t, unclosed: open !== null };
}

/** Markdown emphasis, headings and code marks out ("**Score**: 7" → "Score: 7"); number words after a label as digits. */
function plain(text: string): string {
  return text
    .replace(/[*#`]+|(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])/g, '')
    .replace(new RegExp(String.raw`(${LABEL}[^\S\n]*(?:is|of|:|=|-)?[^\S\n]*)(${Object.keys(NUMBER_WORDS).join('|')})\b`, 'gi'), (_m, head: string, w: string) => `${head}${NUMBER_WORDS[w.toLowerCase()]}`);
}

/**
 * Reads the judge's score from its verdict, or says why none could be read. Patterns, first that
 * matches wins, the last occurrence of it counts (judges reason first and conclude at the end):
 * JSON field → [[8]] → <score>8</score> → "Score/Rating/Grade(:) 8(/10)" (Markdown emphasis
 * ignored, the number may be on the next line) → "8/10", "8.5 out of 10" → **8** → "I would give it
 * a 7" → the whole verdict a number → a number ending the verdict. A <think> block is skipped.
 * A score outside [scaleMin, outOf] is not read (why says so). `finishReason` and `maxTokens` let
 * the reason name a verdict cut short.
 */
export function readJudgeVerdict(
  text: string,
  opts: { scaleMax?: number; scaleMin?: number; finishReason?: string | null; maxTokens?: number } = {},
): VerdictReading {
  const scaleMax = opts.scaleMax ?? 10;
  const scaleMin = opts.scaleMin ?? 0;
  const cut = opts.finishReason === 'length';
  const atMax = `at its max tokens${opts.maxTokens ? ` (${opts.maxTokens})` : ''}`;
  const judged = (value: number, outOf: number, pattern: ParsedScore['pattern']): VerdictReading => {
    const min = outOf === scaleMax ? scaleMin : 0;
    if (!Number.isFinite(value) || !(outOf > 0) || value < Math.min(min, 0) || value > outOf)
      return { parsed: null, why: `the verdict gives ${value}${outOf === scaleMax ? '' : `/${outOf}`}, outside the scale ${scaleMin === 0 ? 1 : scaleMin}–${scaleMax}` };
    return { parsed: { value, outOf, pattern } };
  };
  if (text.trim() === '')
    return {
      parsed: null,
      why:
        cut && text.length > 0
          ? `the verdict is only whitespace up to its max tokens${opts.maxTokens ? ` (${opts.maxTokens})` : ''}: the judge model wrote no text (a random or untrained model cannot judge; use a chat model, or a reward model)`
          : cut
            ? `the verdict was cut ${atMax} before any text: raise the judge's max tokens`
            : `the verdict is empty${text.length > 0 ? ` (${text.length} whitespace character(s))` : ''}: the judge model wrote nothing (a model this small or untrained cannot judge; use a chat model, or a reward model)`,
    };
  const { text: t, unclosed } = withoutThinking(text);
  if (t.trim() === '')
    return { parsed: null, why: `the verdict ended inside its reasoning (<think>)${cut ? `, cut ${atMax}` : ''}, before a score: raise the judge's max tokens, or turn its thinking off` };

  const j = jsonScore(t);
  if (j !== null) return judged(j, scaleMax, 'json');
  const br = lastMatch(new RegExp(String.raw`\[\[\s*${NUM}\s*(?:/\s*(\d+(?:\.\d+)?))?\s*\]\]`, 'g'), t);
  if (br) return judged(Number(br[1]), br[2] ? Number(br[2]) : scaleMax, 'brackets');
  const tag = lastMatch(new RegExp(String.raw`<(score|rating|grade)>\s*${NUM}\s*(?:/\s*(\d+(?:\.\d+)?))?\s*</\1>`, 'gi'), t);
  if (tag) return judged(Number(tag[2]), tag[3] ? Number(tag[3]) : scaleMax, 'tag');
  const p = plain(t);
  const lab = lastMatch(
    new RegExp(
      String.raw`${LABEL}[^\S\n]*(?:\(\s*\d+\s*(?:-|–|to)\s*\d+\s*\))?[^\S\n]*(?:is|of|:|=|-|–|—)?[^\S\n]*\n?[^\S\n]*[\[(]*[^\S\n]*${NUM}[\])]*${OUT_OF}`,
      'gi',
    ),
    p,
  );
  if (lab) return judged(Number(lab[1]), lab[2] ? Number(lab[2]) : scaleMax, 'labelled');
  const frac = lastMatch(new RegExp(String.raw`${NUM}\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?)`, 'gi'), p);
  if (frac) return judged(Number(frac[1]), Number(frac[2]), 'fraction');
  const bold = lastMatch(new RegExp(String.raw`\*\*\s*${NUM}\s*\*\*`, 'g'), t);
  if (bold) return judged(Number(bold[1]), scaleMax, 'bold');
  const phrase = lastMatch(
    new RegExp(
      String.raw`\b(?:rate|rated|give|giving|gave|award|assign|grade)\b(?:\s+(?:it|this|that|the|response|answer|reply|assistant|assistant's|a|an|overall|solid|score|rating|of|as|at|with|an?))*\s+${NUM}${OUT_OF}(?![\d.]*\d)`,
      'gi',
    ),
    p,
  );
  if (phrase) return judged(Number(phrase[1]), phrase[2] ? Number(phrase[2]) : scaleMax, 'phrase');
  const bare = /^\s*([-+]?\d+(?:\.\d+)?)\s*\.?\s*$/.exec(p);
  if (bare) return judged(Number(bare[1]), scaleMax, 'bare');
  // A number standing alone at the end (after a line break, a colon, a bracket or a sentence),
  // not one ending a sentence ("… it names 3.").
  const trailing = /(?:^|\n|[:\]][^\S\n]*|[.!?—–][^\S\n]+)([-+]?\d+(?:\.\d+)?)[^\S\n]*[.!]?\s*$/.exec(p);
  if (trailing) return judged(Number(trailing[1]), scaleMax, 'trailing');

  if (unclosed) return { parsed: null, why: `the verdict ended inside its reasoning (<think>)${cut ? `, cut ${atMax}` : ''}, before a score: raise the judge's max tokens, or turn its thinking off` };
  if (cut) return { parsed: null, why: `the verdict was cut ${atMax} before its score: raise the judge's max tokens` };
  return {
    parsed: null,
    why: 'no score in the verdict: it has no "Score: N/10" line (nor N/10, [[N]], {"score": N} or a number at its end), so the judge model did not follow the rubric (a model this small or untrained cannot; use a larger chat model, or a reward model)',
  };
}

/** The score of a verdict, or null when none can be read (readJudgeVerdict says why). */
export function parseJudgeScore(text: string, scaleMax = 10, scaleMin = 0): ParsedScore | null {
  return readJudgeVerdict(text, { scaleMax, scaleMin }).parsed;
}

/** Maps a parsed score to [0, 1]: (v − min) / (outOf − min), min = scaleMin on the configured scale. */
export function normalizeJudgeScore(p: ParsedScore, scaleMax = 10, scaleMin = 0): number {
  const min = p.outOf === scaleMax ? scaleMin : 0;
  const v = (p.value - min) / (p.outOf - min);
  return Math.min(1, Math.max(0, v));
}

export interface ScoreCallOptions extends Omit<AttemptOptions, 'secrets' | 'label'> {
  client?: OpenAI;
  limiter?: RateLimiter;
  /** The loaded local reward model (a 'local-reward' spec needs it). */
  rewardModel?: RewardBatcher;
}

/** Asks the judge to rate one response. A verdict with no readable score gives score null, and `detail` says why. */
export async function judgeResponse(cfg: JudgeConfig, input: JudgeInput, opts: ScoreCallOptions = {}): Promise<ScoreResult> {
  const scaleMax = cfg.scaleMax ?? 10;
  // Scores are v / scaleMax by default ("8/10" → 0.8); set scaleMin for (v − min) / (max − min).
  const scaleMin = cfg.scaleMin ?? 0;
  const r = await chatComplete(cfg.source, buildJudgeMessages(cfg, input), opts);
  const reading = readJudgeVerdict(r.content, { scaleMax, scaleMin, finishReason: r.finishReason, maxTokens: cfg.source.max_tokens });
  const base = { method: 'judge' as const, text: r.content, finishReason: r.finishReason };
  if (!reading.parsed) return { ...base, score: null, raw: null, detail: reading.why };
  const parsed = reading.parsed;
  return { ...base, score: normalizeJudgeScore(parsed, scaleMax, scaleMin), raw: parsed.value, detail: `${parsed.value}/${parsed.outOf} (${parsed.pattern})` };
}

// ---------------------------------------------------------------------------------------------
// Reward model

export type RewardNormalization =
  | { kind: 'minmax'; min: number; max: number }
  /** 1 / (1 + exp(−(x − center) / scale)). */
  | { kind: 'sigmoid'; center?: number; scale?: number }
  /** The raw value, clamped to [0, 1] (ArmoRM's scale, where the paper's gap window was set). */
  | { kind: 'none' }
  /**
   * Fitted to the run (the default): a sigmoid centred on the median of the run's raw rewards,
   * scale their standard deviation (fitRewardNormalization). It keeps every difference and the
   * order whatever the reward model's offset and scale; a fixed mapping does not (a likelihood
   * reward of −3 clamped by 'none' is 0.00, as is every other). Until the scoring phase ends a
   * score is provisional (sigmoid(raw)); the pipeline then fits the run and rewrites the scores.
   */
  | { kind: 'run' };

/** Summary of a run's raw rewards (what a {kind: 'run'} mapping is fitted to). */
export interface RewardStats {
  n: number;
  median: number;
  /** Population standard deviation. */
  std: number;
  min: number;
  max: number;
}

/**
 * A mapping as applied to a stored score: never {kind: 'run'} itself, but the sigmoid it was
 * fitted to, with `fit` (the statistics; null while provisional, before the run is fitted).
 */
export type AppliedNormalization = Exclude<RewardNormalization, { kind: 'run' }> & { fit?: RewardStats | null };

/** Median, spread and range of raw rewards; null when there are none. */
export function rewardStats(raws: readonly number[]): RewardStats | null {
  const xs = raws.filter(Number.isFinite).sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return null;
  const median = n % 2 ? xs[(n - 1) / 2]! : (xs[n / 2 - 1]! + xs[n / 2]!) / 2;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return { n, median, std, min: xs[0]!, max: xs[n - 1]! };
}

/** The score of a provisional run-fitted reward (before the run's statistics are known). */
const PROVISIONAL: AppliedNormalization = { kind: 'sigmoid', center: 0, scale: 1, fit: null };

/**
 * The mapping a normalisation applies over these raw rewards: a fixed one as is; {kind: 'run'}
 * as the sigmoid centred on their median with their standard deviation as scale (scale 1 when
 * every reward is equal, so equal rewards give 0.5 and nothing else collapses).
 */
export function fitRewardNormalization(n: RewardNormalization, stats: RewardStats | null): AppliedNormalization {
  if (n.kind !== 'run') return n;
  if (!stats) return PROVISIONAL;
  return { kind: 'sigmoid', center: stats.median, scale: stats.std > 0 ? stats.std : 1, fit: stats };
}

export interface RewardModelConfig {
  /** Base URL the path is relative to, e.g. `http://127.0.0.1:8000` or `…/v1`. */
  baseURL: string;
  apiKey: string;
  model: string;
  /** POST path (default `/pooling`, vLLM's endpoint for reward models). */
  path?: string;
  /** Where the scalar is in the response: `data.0.data.0`, `$.score`, `rewards[0]`, `score`… */
  scorePath: string;
  normalize: RewardNormalization;
  /** Request body; default `{ model, messages }` with the response as the last assistant turn. */
  buildBody?: (model: string, messages: ChatMessage[]) => unknown;
  retry?: Partial<typeof DEFAULT_RETRY_POLICY>;
}

/** Reads `path` ("a.b.0", "$.a[0].b", "[0]") from a JSON value. */
export function getJsonPath(value: unknown, path: string): unknown {
  const parts = path
    .replace(/^\$\.?/, '')
    .replace(/\[(\d+|"[^"]*"|'[^']*')\]/g, (_m, k: string) => `.${k.replace(/^["']|["']$/g, '')}`)
    .split('.')
    .filter((p) => p !== '');
  let cur: unknown = value;
  for (const p of parts) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) cur = /^\d+$/.test(p) ? cur[Number(p)] : undefined;
    else if (typeof cur === 'object') cur = (cur as Record<string, unknown>)[p];
    else return undefined;
  }
  return cur;
}

/** raw → [0, 1]. A {kind: 'run'} normalisation not fitted yet maps provisionally (sigmoid(raw)). */
export function normalizeReward(raw: number, n: RewardNormalization): number {
  if (n.kind === 'run') n = PROVISIONAL;
  let v: number;
  if (n.kind === 'minmax') v = n.max === n.min ? 0.5 : (raw - n.min) / (n.max - n.min);
  else if (n.kind === 'sigmoid') v = 1 / (1 + Math.exp(-(raw - (n.center ?? 0)) / (n.scale ?? 1)));
  else v = raw;
  return Math.min(1, Math.max(0, v));
}

/** Scores `response` as the reply to `messages` with a reward model. Throws a SourceError. */
export async function rewardScore(
  cfg: RewardModelConfig,
  messages: readonly ChatMessage[],
  response: string,
  opts: ScoreCallOptions = {},
): Promise<ScoreResult> {
  const policy = { ...DEFAULT_RETRY_POLICY, ...cfg.retry, ...opts.policy };
  const client = opts.client ?? createClient({ baseURL: cfg.baseURL, apiKey: cfg.apiKey }, policy.timeoutMs);
  const convo: ChatMessage[] = [...messages, { role: 'assistant', content: response }];
  const body = cfg.buildBody ? cfg.buildBody(cfg.model, convo) : { model: cfg.model, messages: convo };
  const path = cfg.path ?? '/pooling';
  const { value } = await withRetry(
    async (signal) => {
      const json = await client.post<unknown>(path, { body, signal, timeout: policy.timeoutMs });
      const raw = getJsonPath(json, cfg.scorePath);
      const num = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : NaN;
      if (!Number.isFinite(num)) throw new MalformedResponseError(`no number at "${cfg.scorePath}" in the reward response`);
      return num;
    },
    { ...opts, policy, secrets: [cfg.apiKey], label: `reward model ${cfg.model}` },
  );
  return rewardResult(value, cfg.normalize);
}

function rewardResult(raw: number, n: RewardNormalization): ScoreResult {
  const applied = fitRewardNormalization(n, null);
  return { score: normalizeReward(raw, applied), raw, method: 'reward', detail: `raw ${raw} (${n.kind === 'run' ? 'fitted to the run' : n.kind})`, normalize: applied };
}

// ---------------------------------------------------------------------------------------------
// Local reward model (run by the engine in this process)

export interface LocalRewardConfig {
  /** A folder, an http(s) URL or a Hub repo id of a *ForSequenceClassification reward model. */
  model: string;
  normalize: RewardNormalization;
  /** Conversations per engine call (default 16; the engine pads and sub-batches them by length). */
  batchSize?: number;
}

/**
 * A loaded reward model, as the host hands it to the pipeline (local-reward.ts makes one from the
 * engine; the studio's is a proxy to its worker). `score` gets whole conversations ending in the
 * assistant's answer and returns one raw reward each, in order.
 */
export interface RewardModelRunner {
  score(conversations: readonly (readonly ChatMessage[])[], signal?: AbortSignal): Promise<number[]>;
}

export const DEFAULT_LOCAL_REWARD_BATCH = 16;

interface Pending {
  conversation: readonly ChatMessage[];
  signal: AbortSignal | undefined;
  resolve: (v: number) => void;
  reject: (e: unknown) => void;
}

const cancelled = () => new SourceError('cancelled', 'aborted', false);

/**
 * Turns one-at-a-time requests (the pipeline scores response by response, `concurrency` in
 * flight) into batched runner calls, one at a time (one GPU): a batch starts when `maxBatch`
 * requests wait, or `lingerMs` after the last request came while the runner is idle. Requests
 * arriving during a call wait for the next one. A request cancelled before its batch starts
 * leaves; a call stops only when every request in it was cancelled. When a call fails, its
 * requests are tried one by one, so one bad conversation (longer than the model's context, say)
 * fails only itself.
 */
export class RewardBatcher {
  private queue: Pending[] = [];
  private busy = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly runner: RewardModelRunner,
    readonly maxBatch = DEFAULT_LOCAL_REWARD_BATCH,
    readonly lingerMs = 10,
  ) {}

  score(conversation: readonly ChatMessage[], signal?: AbortSignal): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (signal?.aborted) return reject(cancelled());
      // Leave the queue when cancelled before the batch starts (listener removed once settled).
      const onAbort = () => {
        const k = this.queue.indexOf(item);
        if (k >= 0) {
          this.queue.splice(k, 1);
          reject(cancelled());
        }
      };
      const done = () => signal?.removeEventListener('abort', onAbort);
      const item: Pending = {
        conversation,
        signal,
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(item);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.busy || this.queue.length === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.queue.length >= this.maxBatch) void this.flush();
    else this.timer = setTimeout(() => void this.flush(), this.lingerMs);
  }

  private async flush(): Promise<void> {
    this.timer = null;
    if (this.busy || this.queue.length === 0) return;
    this.busy = true;
    const batch = this.queue.splice(0, this.maxBatch);
    const stop = new AbortController();
    const signals = [...new Set(batch.map((b) => b.signal))];
    const onAbort = () => batch.every((b) => b.signal?.aborted) && stop.abort();
    for (const s of signals) s?.addEventListener('abort', onAbort);
    try {
      const rewards = await this.runner.score(
        batch.map((b) => b.conversation),
        stop.signal,
      );
      if (rewards.length !== batch.length) throw new Error(`the reward model returned ${rewards.length} rewards for ${batch.length} conversations`);
      batch.forEach((b, i) => b.resolve(rewards[i]!));
    } catch (e) {
      if (batch.length === 1 || stop.signal.aborted) for (const b of batch) b.reject(e);
      else
        for (const b of batch) {
          if (b.signal?.aborted) b.reject(cancelled());
          else
            await this.runner.score([b.conversation], b.signal).then(
              (r) => b.resolve(r[0]!),
              (err: unknown) => b.reject(err),
            );
        }
    } finally {
      for (const s of signals) s?.removeEventListener('abort', onAbort);
      this.busy = false;
      this.schedule();
    }
  }
}

/** Scores `response` as the reply to `messages` with a local reward model (through its batcher). */
export async function localRewardScore(
  cfg: LocalRewardConfig,
  batcher: RewardBatcher,
  messages: readonly ChatMessage[],
  response: string,
  signal?: AbortSignal,
): Promise<ScoreResult> {
  const raw = await batcher.score([...messages, { role: 'assistant', content: response }], signal);
  if (!Number.isFinite(raw)) throw new MalformedResponseError(`the reward model ${cfg.model} gave a non-finite reward (${raw})`);
  return rewardResult(raw, cfg.normalize);
}

// ---------------------------------------------------------------------------------------------
// Many at once

/**
 * Runs `score` over `items` with bounded concurrency, calling `onResult` as each finishes (for
 * persistence) and `onError` for items whose scoring failed. Stops starting new items on abort.
 */
export async function scoreMany<T, R>(
  items: readonly T[],
  score: (item: T, signal: AbortSignal | undefined) => Promise<R>,
  opts: {
    concurrency?: number;
    signal?: AbortSignal;
    onResult?: (item: T, result: R, index: number) => void | Promise<void>;
    onError?: (item: T, error: unknown, index: number) => void | Promise<void>;
  } = {},
): Promise<{ done: number; failed: number; cancelled: boolean }> {
  let next = 0;
  let done = 0;
  let failed = 0;
  const work = async () => {
    while (!opts.signal?.aborted) {
      const i = next++;
      if (i >= items.length) return;
      try {
        const r = await score(items[i]!, opts.signal);
        await opts.onResult?.(items[i]!, r, i);
        done++;
      } catch (e) {
        if (opts.signal?.aborted) return;
        failed++;
        await opts.onError?.(items[i]!, e, i);
      }
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? 4, items.length));
  await Promise.all(Array.from({ length: n }, work));
  return { done, failed, cancelled: done + failed < items.length };
}

// ---------------------------------------------------------------------------------------------
// The run's scorer: a judge or a reward model

/** The scorer a run uses (pipeline.ts), as configured (pipeline-config.ts parses judge.json into it). */
export type JudgeSpec =
  | { type: 'judge'; judge: JudgeConfig; /** Calls in flight at once (default 4). */ concurrency?: number }
  | { type: 'reward'; reward: RewardModelConfig; concurrency?: number }
  /** Responses in flight (default 2 × batchSize, so the next batch waits while one runs). */
  | { type: 'local-reward'; localReward: LocalRewardConfig; concurrency?: number };

/** The model a spec scores with. */
export function judgeModel(spec: JudgeSpec): string {
  return spec.type === 'judge' ? spec.judge.source.model : spec.type === 'reward' ? spec.reward.model : spec.localReward.model;
}

/** A reward model's normalisation, or null for a judge. */
export function rewardNormalizationOf(spec: JudgeSpec): RewardNormalization | null {
  return spec.type === 'reward' ? spec.reward.normalize : spec.type === 'local-reward' ? spec.localReward.normalize : null;
}

/** Responses a spec scores at once by default. */
export function judgeConcurrency(spec: JudgeSpec): number {
  if (spec.concurrency !== undefined) return spec.concurrency;
  return spec.type === 'local-reward' ? 2 * (spec.localReward.batchSize ?? DEFAULT_LOCAL_REWARD_BATCH) : 4;
}

/**
 * A fingerprint of what a spec's scores mean (kind, endpoint, model, rubric or score path): stored
 * with each score, so a run with another scorer scores again. A reward model's [0, 1] mapping is
 * not part of it: the pipeline maps every stored raw reward again after each scoring phase, so a
 * new mapping asks the model nothing.
 */
export function judgeSpecId(spec: JudgeSpec): string {
  if (spec.type === 'judge') {
    const j = spec.judge;
    const rubric = j.rubric === undefined ? '' : `#${rubricHash(j.rubric)}`;
    return `judge:${j.source.model}@${j.source.baseURL}${rubric}/${j.scaleMin ?? 0}-${j.scaleMax ?? 10}`;
  }
  if (spec.type === 'local-reward') return `local-reward:${spec.localReward.model}`;
  const r = spec.reward;
  return `reward:${r.model}@${r.baseURL}${r.path ?? '/pooling'}:${r.scorePath}`;
}

function rubricHash(text: string): string {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** The SDK client a spec's calls share (none for a local reward model). */
export function judgeClient(spec: JudgeSpec): OpenAI | undefined {
  if (spec.type === 'local-reward') return undefined;
  if (spec.type === 'judge') {
    const policy = { ...DEFAULT_RETRY_POLICY, ...spec.judge.source.retry };
    return createClient(spec.judge.source, policy.timeoutMs);
  }
  const policy = { ...DEFAULT_RETRY_POLICY, ...spec.reward.retry };
  return createClient({ baseURL: spec.reward.baseURL, apiKey: spec.reward.apiKey }, policy.timeoutMs);
}

/** Scores one response with the spec's judge or reward model. Throws a SourceError. */
export function scoreWith(spec: JudgeSpec, input: JudgeInput, opts: ScoreCallOptions = {}): Promise<ScoreResult> {
  if (spec.type === 'judge') return judgeResponse(spec.judge, input, opts);
  if (spec.type === 'reward') return rewardScore(spec.reward, input.messages, input.response, opts);
  if (!opts.rewardModel)
    return Promise.reject(new Error(`the local reward model ${spec.localReward.model} is not loaded: the host loads it and passes it to the pipeline (rewardModel)`));
  return localRewardScore(spec.localReward, opts.rewardModel, input.messages, input.response, opts.signal);
}

/** A spec as it may be stored or shown: keys replaced by a marker of whether one is set. */
export function sanitizeJudgeSpec(spec: JudgeSpec): Record<string, unknown> {
  if (spec.type === 'judge') {
    const { source, ...rest } = spec.judge;
    return { type: 'judge', ...rest, source: { ...source, apiKey: source.apiKey ? '<redacted>' : '' }, concurrency: spec.concurrency };
  }
  if (spec.type === 'local-reward') return { type: 'local-reward', ...spec.localReward, concurrency: spec.concurrency };
  const { buildBody: _b, ...reward } = spec.reward;
  return { type: 'reward', ...reward, apiKey: reward.apiKey ? '<redacted>' : '', concurrency: spec.concurrency };
}
