// runEvaluation: THE one place an evaluation is assembled (the CLI's `fuse-studio eval` and the
// studio's worker both call it). Given one loaded model and tokenizer, the models to compare over it
// (the base: lora null; each adapter), the parsed held-out items and a store:
//
//   0. before anything is generated: the item set's hash, a resumed store's settings checked
//      against these, eval prompts that repeat training prompts flagged
//   1. likelihood (no judge needed), per model: SFT records → log-prob of the target tokens
//      (held-out loss, perplexity); DPO records → chosen vs rejected by mean log-prob per token
//      (length-normalised: preference accuracy, margin); multiple-choice rows → each option's
//      log-likelihood after the prompt, the highest picked (model/score.ts scoreSequences)
//   2. answers, per model: each prompt row through the chat template, decoded with the same
//      settings and seeds for every model (greedy by default; row i samples with seed + i whatever
//      the batch), batched (model/generate.ts generateSamples); math checked against its gold
//      (data/verify-math.ts), code run with its tests in the host's sandbox (data/verify-code.ts)
//   3. the judge on each pair of models (a before b in `models`) over the prompts both answered:
//      a chat judge sees both orders with the pairwise prompt (pairwise-judge.ts) and a verdict that
//      flips with the order is a tie; a reward model (HTTP or local) prefers the higher reward
//   4. the report (report.ts: intervals, McNemar, win rates, "not significant" and why)
//
// Every result is stored the moment it exists under (kind, model, item id); a run over a store
// that holds results skips them, so a stopped evaluation resumes without redoing an item.
// Cancelling (signal) stops generation between tokens and everything else between items.
// Host differences live behind small interfaces: the store, the code sandbox, the reward model.
import { hashHex, promptMessages } from '../data/prompts';
import { DecayingRate } from '../data/rate';
import type { Sandbox } from '../data/sandbox';
import { judgeClient, judgeConcurrency, judgeSpecId, RewardBatcher, scoreMany, scoreWith, type JudgeSpec, type RewardModelRunner } from '../data/score';
import { chatComplete } from '../data/sources';
import { detectTestLanguage, verifyCode } from '../data/verify-code';
import { verifyMath } from '../data/verify-math';
import type { DecoderModel } from '../model/decoder';
import { generateSamples } from '../model/generate';
import type { LoraAdapters } from '../model/lora';
import type { SamplingOptions } from '../model/sampling';
import { scoreSequences, type LabelledSequence } from '../model/score';
import type { LoadedTokenizer } from '../tokenizer';
import { tokenizeForScoring } from '../cli/records-tokens';
import { canonicalJson, flagTrainingDuplicates, type ChoiceItem, type EvalItem, type EvalItemSet, type FlaggedItem, type PromptItem, type PromptText } from './items';
import { buildPairwiseMessages, combineOrders, readPairwiseVerdict, verdictFromRewards } from './pairwise-judge';
import { buildReport, reportMarkdown, type EvalReport } from './report';
import {
  pairName,
  resultKey,
  type AnswerCheck,
  type AnswerResult,
  type EvalResult,
  type EvalResultKind,
  type EvalRunMeta,
  type EvalStore,
  type JudgeOrder,
  type JudgeResult,
  type LogProb,
} from './store';

export interface EvalModel {
  /** Its name in the report ("base", "sft", "sft+dpo"…); unique. */
  name: string;
  /** The adapter over the loaded model; null: the base model. */
  lora: LoraAdapters | null;
  /** What it is (an adapter's folder or hash; default ''), stored so a resume refuses another adapter under the same name. */
  id?: string;
}

/** The same for every model. */
export interface EvalDecoding {
  /** Tokens per answer at most (default 256). */
  maxNewTokens: number;
  /** 0 (default): greedy. */
  temperature: number;
  topP?: number;
  topK?: number;
  /** Row i of the prompt rows samples with seed + i (default 0). */
  seed: number;
  /**
   * Llama 3.x templates' "Today Date" line. Default "26 Jul 2024" (the template's own fallback), not
   * today: a prompt must not change between the runs of one evaluation.
   */
  dateString: string;
}

export const DEFAULT_EVAL_DECODING: EvalDecoding = { maxNewTokens: 256, temperature: 0, seed: 0, dateString: '26 Jul 2024' };

export type EvalPhase = 'likelihood' | 'answers' | 'judge' | 'report';

export interface EvalProgress {
  phase: EvalPhase;
  /** The model (or "a vs b" pair) being worked on, when one is. */
  model?: string;
  /** Results of this phase done (stored ones included) and in all. */
  done: number;
  total: number;
  /** Seconds until the phase ends at the recent pace (data/rate.ts); null before a rate is known. */
  etaSeconds: number | null;
  /** Results computed by this run so far (answers generated, sequences scored, pairs judged). */
  computed: number;
  /** Results found in the store at the start and not computed again. */
  reused: number;
}

export interface RunEvaluationOptions {
  model: DecoderModel;
  tokenizer: LoadedTokenizer;
  models: readonly EvalModel[];
  items: EvalItemSet;
  decoding?: Partial<EvalDecoding>;
  /** Stop tokens besides the tokenizer's (e.g. the model config's eos ids). */
  eosTokenIds?: readonly number[];
  /** Pairwise judge: a chat judge (both orders) or a reward model (higher reward wins). */
  judge?: JudgeSpec;
  /** The pairwise prompt (default: pairwise-judge.ts's). */
  judgePrompt?: string;
  /** A 'local-reward' judge's loaded model (the host loads it). */
  rewardModel?: RewardModelRunner;
  /** Runs code rows' tests; without one code rows are answered and judged but not run (a warning says so). */
  sandbox?: Sandbox;
  codeTimeoutMs?: number;
  /** Prompts the models were trained on: eval items repeating one are flagged. */
  trainingPrompts?: readonly PromptText[];
  store: EvalStore;
  signal?: AbortSignal;
  onProgress?: (p: EvalProgress) => void;
  /** Prompt rows generated together (default 8). */
  batchSize?: number;
  /** Sequences per scoring forward (default: model/score.ts's). */
  scoreBatchSize?: number;
}

export interface RunEvaluationResult {
  /** Null when cancelled. */
  report: EvalReport | null;
  /** eval.md; null when cancelled. */
  markdown: string | null;
  cancelled: boolean;
  itemsHash: string;
  /** Items whose prompt repeats a training prompt. */
  flagged: FlaggedItem[];
  /** Results computed by this run; results found stored. */
  computed: number;
  reused: number;
  warnings: string[];
}

export class EvalRunError extends Error {
  override name = 'EvalRunError';
}

/** Items scored together, and stored together, in the likelihood phase. */
const SCORE_CHUNK = 16;
const DEFAULT_BATCH = 8;

function checkModels(models: readonly EvalModel[]): void {
  if (models.length === 0) throw new EvalRunError('no models to evaluate');
  const seen = new Set<string>();
  for (const m of models) {
    if (!m.name.trim()) throw new EvalRunError('a model has an empty name');
    if (m.name.includes('\u0000')) throw new EvalRunError(`model name ${JSON.stringify(m.name)} holds a NUL character`);
    if (seen.has(m.name)) throw new EvalRunError(`two models are named "${m.name}": give each a different name`);
    seen.add(m.name);
  }
}

/** A resumed store must hold results made the same way; names what differs. */
function checkMeta(stored: EvalRunMeta, now: EvalRunMeta): void {
  if (stored.itemsHash !== now.itemsHash)
    throw new EvalRunError(`the store holds an evaluation of another item set (sha256 ${stored.itemsHash.slice(0, 12)}…, this one ${now.itemsHash.slice(0, 12)}…): start a new evaluation (another --out)`);
  const a = canonicalJson(stored.decoding);
  const b = canonicalJson(now.decoding);
  if (a !== b) throw new EvalRunError(`the store's answers were decoded with ${a}, this run asks for ${b}: use the same settings, or start a new evaluation`);
  for (const m of now.models) {
    const before = stored.models.find((x) => x.name === m.name);
    if (before && before.id !== m.id)
      throw new EvalRunError(`model "${m.name}" was ${before.id || 'the base model'} in the stored evaluation and is ${m.id || 'the base model'} now: name it differently, or start a new evaluation`);
  }
}

export async function runEvaluation(o: RunEvaluationOptions): Promise<RunEvaluationResult> {
  checkModels(o.models);
  const tok = o.tokenizer;
  const items = o.items.items;
  const decoding: EvalDecoding = { ...DEFAULT_EVAL_DECODING, ...o.decoding };
  if (!(Number.isInteger(decoding.maxNewTokens) && decoding.maxNewTokens >= 1)) throw new EvalRunError(`maxNewTokens must be a whole number ≥ 1, got ${decoding.maxNewTokens}`);
  const chat = { dateString: decoding.dateString };
  const warnings: string[] = [];

  // 0. Every item tokenized and checked first (a bad one is named now, not an hour in); fixed before
  // any answer: the set's hash (o.items.hash), the settings, the leaks.
  const tokens = tokenizeItems(items, tok, chat, o.model.config, decoding.maxNewTokens);
  const meta: EvalRunMeta = {
    itemsHash: o.items.hash,
    decoding: { ...decoding, template: tok.chatTemplate === null ? 'none' : 'chat' },
    models: o.models.map((m) => ({ name: m.name, id: m.id ?? '' })),
  };
  const storedMeta = await o.store.readRun();
  if (storedMeta) {
    checkMeta(storedMeta, meta);
    const names = new Set(storedMeta.models.map((m) => m.name));
    const added = meta.models.filter((m) => !names.has(m.name));
    if (added.length) await o.store.writeRun({ ...storedMeta, models: [...storedMeta.models, ...added] });
  } else await o.store.writeRun(meta);
  const flagged = flagTrainingDuplicates(items, o.trainingPrompts ?? []);
  if (flagged.length)
    warnings.push(`${flagged.length} eval prompt(s) repeat training prompts (lines ${flagged.slice(0, 10).map((f) => f.line).join(', ')}${flagged.length > 10 ? ', …' : ''}): a model may have memorised them`);

  const results = new Map<string, EvalResult>((await o.store.list()).map((r) => [r.key, r]));
  // Stored results this run uses (one made with another judge is done again, and not counted).
  let reused = results.size;
  let computed = 0;
  const has = (kind: EvalResultKind, model: string, id: string) => results.has(resultKey(kind, model, id));
  const put = async (r: EvalResult) => {
    await o.store.put(r);
    if (results.has(r.key)) reused--;
    results.set(r.key, r);
    computed++;
  };
  const cancelled = () => o.signal?.aborted === true;
  const finish = (report: EvalReport | null, markdown: string | null): RunEvaluationResult => ({
    report,
    markdown,
    cancelled: report === null,
    itemsHash: o.items.hash,
    flagged,
    computed,
    reused,
    warnings,
  });

  /** Progress of one phase: done counts stored results too; the ETA follows what this run computes. */
  const phase = (name: EvalPhase, total: number, doneAtStart: number) => {
    const rate = new DecayingRate();
    let done = doneAtStart;
    const report = (model?: string) =>
      o.onProgress?.({ phase: name, done, total, etaSeconds: rate.etaSeconds(total - done), computed, reused, ...(model !== undefined ? { model } : {}) });
    report();
    return {
      add(n: number, model?: string) {
        done += n;
        rate.add(n);
        report(model);
      },
    };
  };

  // ---- 1. likelihood ----
  const scored = items.filter((it) => it.kind === 'sft' || it.kind === 'dpo' || it.kind === 'choice');
  const sequencesOf = (it: EvalItem) => tokens.seqs.get(it.id)!;
  const kindOf = (it: EvalItem) => it.kind as 'sft' | 'dpo' | 'choice';
  if (scored.length) {
    const total = scored.length * o.models.length;
    const todo = o.models.map((m) => ({ m, list: scored.filter((it) => !has(kindOf(it), m.name, it.id)) }));
    const p = phase('likelihood', total, total - todo.reduce((a, t) => a + t.list.length, 0));
    for (const { m, list } of todo) {
      for (let k = 0; k < list.length; k += SCORE_CHUNK) {
        if (cancelled()) return finish(null, null);
        const chunk = list.slice(k, k + SCORE_CHUNK);
        const flat = chunk.flatMap(sequencesOf);
        let scores;
        try {
          scores = await scoreSequences(o.model, flat, { lora: m.lora, batchSize: o.scoreBatchSize, signal: o.signal });
        } catch (e) {
          if (cancelled()) return finish(null, null);
          throw e;
        }
        let at = 0;
        for (const it of chunk) {
          const n = sequencesOf(it).length;
          const s: LogProb[] = scores.slice(at, at + n).map((x) => ({ logprobSum: x.logprobSum, nTokens: x.nTokens }));
          at += n;
          const base = { key: resultKey(kindOf(it), m.name, it.id), model: m.name, itemId: it.id };
          if (it.kind === 'sft') await put({ ...base, kind: 'sft', ...s[0]! });
          else if (it.kind === 'dpo') await put({ ...base, kind: 'dpo', chosen: s[0]!, rejected: s[1]! });
          else {
            const picked = argmaxOf(s.map((x) => x.logprobSum));
            await put({ ...base, kind: 'choice', options: s, picked, correct: picked === (it as ChoiceItem).answer });
          }
        }
        p.add(chunk.length, m.name);
      }
    }
  }

  // ---- 2. answers ----
  const prompts = items.filter((it): it is PromptItem => it.kind === 'prompt');
  if (prompts.some((it) => it.prompt.domain === 'code' && it.prompt.tests) && !o.sandbox)
    warnings.push('code rows were answered but their tests not run: no sandbox was given');
  if (prompts.length) {
    const seedOf = new Map(prompts.map((it, i) => [it.id, decoding.seed + i]));
    const eos = [...new Set([...tok.eosTokenIds, ...(o.eosTokenIds ?? [])])];
    const sampling: SamplingOptions = {
      temperature: decoding.temperature,
      ...(decoding.topP !== undefined ? { topP: decoding.topP } : {}),
      ...(decoding.topK !== undefined ? { topK: decoding.topK } : {}),
      seed: decoding.seed,
    };
    const idsOf = (it: PromptItem) => tokens.prompts.get(it.id)!;
    const total = prompts.length * o.models.length;
    const todo = o.models.map((m) => ({ m, list: prompts.filter((it) => !has('answer', m.name, it.id)) }));
    const p = phase('answers', total, total - todo.reduce((a, t) => a + t.list.length, 0));
    const batch = o.batchSize ?? DEFAULT_BATCH;
    for (const { m, list } of todo) {
      for (let k = 0; k < list.length; k += batch) {
        if (cancelled()) return finish(null, null);
        const chunk = list.slice(k, k + batch);
        await generateSamples(o.model, {
          prompts: chunk.map(idsOf),
          promptSeeds: chunk.map((it) => seedOf.get(it.id)!),
          maxNewTokens: decoding.maxNewTokens,
          sampling,
          eosTokenIds: eos,
          lora: m.lora,
          ...(o.signal ? { signal: o.signal } : {}),
          onRowDone: async (i, _j, r) => {
            if (r.finishReason === 'aborted') return;
            const it = chunk[i]!;
            const text = tok.decode(r.ids, { skipSpecialTokens: true });
            const check = await checkAnswer(it, text, o);
            await put({ key: resultKey('answer', m.name, it.id), kind: 'answer', model: m.name, itemId: it.id, text, nTokens: r.ids.length, finishReason: r.finishReason, check });
            p.add(1, m.name);
          },
        });
      }
    }
    if (cancelled()) return finish(null, null);
  }

  // ---- 3. the judge ----
  const judgeId = o.judge ? judgeSpecId(o.judge) + (o.judgePrompt !== undefined ? `#prompt:${hashHex(o.judgePrompt)}` : '') : null;
  if (o.judge && judgeId !== null && prompts.length && o.models.length > 1) {
    const spec = o.judge;
    const judge = judgeId;
    const client = judgeClient(spec);
    const batcher = spec.type === 'local-reward' && o.rewardModel ? new RewardBatcher(o.rewardModel, spec.localReward.batchSize) : undefined;
    if (spec.type === 'local-reward' && !batcher) throw new EvalRunError(`the local reward model ${spec.localReward.model} is not loaded: the host loads it and passes it as rewardModel`);
    const pairs: [string, string][] = [];
    for (let i = 0; i < o.models.length; i++) for (let j = i + 1; j < o.models.length; j++) pairs.push([o.models[i]!.name, o.models[j]!.name]);
    const jobs = pairs.flatMap(([a, b]) => prompts.map((it) => ({ a, b, it })));
    const stale = (a: string, b: string, id: string) => {
      const r = results.get(resultKey('judge', pairName(a, b), id)) as JudgeResult | undefined;
      return !r || r.judge !== judgeId;
    };
    const todo = jobs.filter((j) => stale(j.a, j.b, j.it.id));
    const p = phase('judge', jobs.length, jobs.length - todo.length);
    const answerOf = (model: string, id: string) => (results.get(resultKey('answer', model, id)) as AnswerResult).text;
    const res = await scoreMany(
      todo,
      async ({ a, b, it }, signal) => {
        const messages = promptMessages(it.prompt);
        const A = answerOf(a, it.id);
        const B = answerOf(b, it.id);
        const base = { key: resultKey('judge', pairName(a, b), it.id), kind: 'judge' as const, model: pairName(a, b), itemId: it.id, a, b, judge };
        if (spec.type === 'judge') {
          const ask = async (first: 'a' | 'b'): Promise<JudgeOrder & { why?: string }> => {
            const [answerA, answerB] = first === 'a' ? [A, B] : [B, A];
            const input = { messages, answerA, answerB, ...(it.prompt.gold !== undefined ? { reference: it.prompt.gold } : {}) };
            const r = await chatComplete(spec.judge.source, buildPairwiseMessages({ prompt: o.judgePrompt }, input), { ...(client ? { client } : {}), ...(signal ? { signal } : {}) });
            const reading = readPairwiseVerdict(r.content, { finishReason: r.finishReason });
            return { first, verdict: reading.verdict, text: r.content, ...(reading.why ? { why: reading.why } : {}) };
          };
          const ab = await ask('a');
          const ba = await ask('b');
          const orders = [ab, ba].map(({ why: _w, ...x }) => x);
          // An unreadable order is no evidence either way: a tie, not position bias.
          if (ab.verdict === null || ba.verdict === null)
            return { ...base, outcome: 'tie', inconsistent: false, orders, unreadable: (ab.why ?? ba.why)! } satisfies JudgeResult;
          return { ...base, ...combineOrders(ab.verdict, ba.verdict), orders } satisfies JudgeResult;
        }
        const opts = { ...(client ? { client } : {}), ...(batcher ? { rewardModel: batcher } : {}), ...(signal ? { signal } : {}) };
        const ra = (await scoreWith(spec, { messages, response: A }, opts)).raw!;
        const rb = (await scoreWith(spec, { messages, response: B }, opts)).raw!;
        return { ...base, outcome: verdictFromRewards(ra, rb), inconsistent: false, rewards: { a: ra, b: rb } } satisfies JudgeResult;
      },
      {
        concurrency: judgeConcurrency(spec),
        ...(o.signal ? { signal: o.signal } : {}),
        onResult: async (job, r) => {
          await put(r);
          p.add(1, `${job.a} vs ${job.b}`);
        },
        onError: (job, e) => {
          warnings.push(`judge failed on ${job.a} vs ${job.b}, line ${job.it.line}: ${(e as Error).message}`);
        },
      },
    );
    if (res.cancelled || cancelled()) return finish(null, null);
    if (res.failed) warnings.push(`${res.failed} judgement(s) failed and are left out; run again to retry them`);
  }

  // ---- 4. the report ----
  if (cancelled()) return finish(null, null);
  o.onProgress?.({ phase: 'report', done: 0, total: 1, etaSeconds: null, computed, reused });
  const names = new Set(o.models.map((m) => m.name));
  const report = buildReport({
    items,
    itemsHash: o.items.hash,
    models: o.models.map((m) => m.name),
    // This run's models, and verdicts of this run's judge only (a store may hold another's).
    results: [...results.values()].filter((r) => (r.kind === 'judge' ? r.judge === judgeId && names.has(r.a) && names.has(r.b) : names.has(r.model))),
    flagged,
    decoding: meta.decoding,
    judge: judgeId,
  });
  o.onProgress?.({ phase: 'report', done: 1, total: 1, etaSeconds: 0, computed, reused });
  return finish(report, reportMarkdown(report));
}

/** Each prompt row's ids and each scored row's sequences, checked against the model's vocabulary and context. */
function tokenizeItems(
  items: readonly EvalItem[],
  tok: LoadedTokenizer,
  chat: { dateString?: string },
  config: { vocabSize: number; maxPositionEmbeddings: number },
  maxNewTokens: number,
): { prompts: Map<string, number[]>; seqs: Map<string, LabelledSequence[]> } {
  const out = { prompts: new Map<string, number[]>(), seqs: new Map<string, LabelledSequence[]>() };
  const { vocabSize: V, maxPositionEmbeddings: P } = config;
  const checkIds = (ids: ArrayLike<number>) => {
    for (let t = 0; t < ids.length; t++) if (ids[t]! >= V) throw new Error(`token id ${ids[t]} is outside the model's vocabulary (${V})`);
  };
  for (const it of items) {
    try {
      if (it.kind === 'prompt') {
        const ids = promptIds(tok, it.prompt, chat);
        checkIds(ids);
        if (ids.length + maxNewTokens > P)
          throw new Error(`the prompt is ${ids.length} tokens, and with ${maxNewTokens} new tokens exceeds the model's context of ${P}: shorten it, or lower the token limit`);
        out.prompts.set(it.id, ids);
      } else {
        const s = it.kind === 'choice' ? choiceSequences(tok, it, chat) : seqsOfScoring(tokenizeForScoring(it.record, tok, chat));
        for (const q of s) {
          checkIds(q.ids);
          if (q.ids.length > P) throw new Error(`${q.ids.length} tokens, more than the model's context of ${P}: shorten it`);
        }
        out.seqs.set(it.id, s);
      }
    } catch (e) {
      throw new EvalRunError(`line ${it.line}: ${(e as Error).message}`, { cause: e });
    }
  }
  return out;
}

function argmaxOf(xs: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** A prompt as every model is asked it: through the chat template with the generation prompt (plain text when the tokenizer has none). */
function promptIds(tok: LoadedTokenizer, p: PromptText, chat: { dateString?: string }): number[] {
  if (tok.chatTemplate === null) return tok.encode(p.text);
  return tok.encodeChat(promptMessages(p).map((m) => ({ role: m.role, content: m.content })), { ...chat, addGenerationPrompt: true }).ids;
}

function seqsOfScoring(s: ReturnType<typeof tokenizeForScoring>): LabelledSequence[] {
  return s.kind === 'sft' ? [s.seq] : [s.chosen, s.rejected];
}

/**
 * A multiple-choice row's sequences: the prompt through the chat template (with the generation
 * prompt), then each option's tokens as the answer, only they labelled (lm-evaluation-harness's
 * context/continuation split; the option's log-likelihood is their sum).
 */
function choiceSequences(tok: LoadedTokenizer, it: ChoiceItem, chat: { dateString?: string }): LabelledSequence[] {
  const prompt = promptIds(tok, { text: it.prompt, ...(it.system !== undefined ? { system: it.system } : {}) }, chat);
  return it.choices.map((c) => {
    const ids = tok.encode(c, { addSpecialTokens: false });
    return { ids: [...prompt, ...ids], labels: [...prompt.map(() => -100), ...ids] };
  });
}

/** A prompt row's check: math against its gold, code with its tests (when a sandbox is given). */
async function checkAnswer(it: PromptItem, text: string, o: Pick<RunEvaluationOptions, 'sandbox' | 'codeTimeoutMs'>): Promise<AnswerCheck | null> {
  const p = it.prompt;
  if (p.domain === 'math' && p.gold !== undefined) {
    const v = verifyMath(text, p.gold);
    return { type: 'math', correct: v.correct, extracted: v.extracted, detail: v.detail };
  }
  if (p.domain === 'code' && p.tests && o.sandbox) {
    const v = await verifyCode(o.sandbox, text, { language: detectTestLanguage(p.tests), tests: p.tests }, o.codeTimeoutMs !== undefined ? { timeoutMs: o.codeTimeoutMs } : {});
    return { type: 'code', passed: v.passed, status: v.status, ...(v.error ? { error: v.error.slice(0, 500) } : {}) };
  }
  return null;
}


