// The JSON a user writes to configure a fusion run, checked with zod:
//   sources  [{"name","baseURL","apiKey","model","temperature","top_p","max_tokens","n","concurrency",…}]
//            or a model on this GPU: {"name","local":true,"model":DIR|URL|REPO|PRESET,"n","temperature",
//            "top_p","repetition_penalty","max_tokens","seed"} (local-source.ts); "n" may be per
//            domain: {"instruction": 5, "code": 8} (a domain left out takes the default, 5)
//   judge    {"baseURL","apiKey","model",…}  (a chat judge), {"type":"reward","baseURL",…} (a reward
//            model behind HTTP) or {"type":"local-reward","model":DIR|URL|REPO} (run by the engine);
//            each may set "gapWindow" {"min","max","unit"}: the DPO gap window in its own units
// Fields left out take the paper's sampling for the model (sources.ts) and sensible defaults.
// An `apiKey` written "$NAME" or "${NAME}" is read from the environment (`env`), so keys need not
// sit in the files; a missing variable is an error that names it. Errors name the file and the
// field: `sources.json: [1].temperature: Invalid input: expected number, received string`.
// Host-agnostic: the CLI reads the files and process.env; the studio passes its own.

import { z } from 'zod';
import { DOMAINS, type Domain } from './prompts';
import { formatZodError } from './records';
import type { GapRange } from './construct';
import type { JudgeSpec } from './score';
import type { CollectSource } from './collect';
import { makeLocalSource, type LocalSource } from './local-source';
import { makeSource, type RetryPolicy } from './sources';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const ENV_REF = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))$/;

const nonEmpty = z.string().trim().min(1, 'must not be empty');
const url = nonEmpty.refine((s) => /^https?:\/\/[^\s/]+/i.test(s), 'must be an http(s) URL, e.g. "https://openrouter.ai/api/v1"');
const posInt = z.number().int().positive();

/** Retry settings a source or judge may override. */
const retryFields = {
  /** Per-attempt time limit (ms). */
  timeoutMs: posInt.optional(),
  /** Attempts in all, the first included. */
  maxAttempts: posInt.optional(),
};

/** Responses per prompt: one count, or one per domain (0: none for that domain). */
const nField = z.union([
  posInt,
  z
    .object({ instruction: z.number().int().min(0).optional(), math: z.number().int().min(0).optional(), code: z.number().int().min(0).optional(), other: z.number().int().min(0).optional() })
    .strict(),
]);

const sourceSchema = z
  .object({
    name: nonEmpty,
    /** Stable id (default: the name); part of every stored item's key. */
    id: nonEmpty.optional(),
    baseURL: url,
    apiKey: z.string().default(''),
    model: nonEmpty,
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    max_tokens: posInt.optional(),
    n: nField.optional(),
    concurrency: posInt.optional(),
    seed: z.number().int().optional(),
    repetition_penalty: z.number().positive().optional(),
    repetitionPenaltyKey: nonEmpty.optional(),
    requestsPerMinute: z.number().positive().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    extraBody: z.record(z.string(), z.unknown()).optional(),
    ...retryFields,
  })
  .strict();

/** A model on this GPU (local-source.ts); sampling left out takes its family's preset. */
const localSourceSchema = z
  .object({
    name: nonEmpty,
    id: nonEmpty.optional(),
    local: z.literal(true),
    /** A folder, an http(s) URL, a Hub repo id or a preset alias. */
    model: nonEmpty,
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().gt(0).max(1).optional(),
    repetition_penalty: z.number().positive().optional(),
    max_tokens: posInt.optional(),
    n: nField.optional(),
    seed: z.number().int().optional(),
  })
  .strict();

/** An entry that says "local" at all is read as a local source (so `"local": false` is named as wrong). */
const isLocalEntry = (v: unknown) => typeof v === 'object' && v !== null && 'local' in v;

const domainsField = z.array(z.enum(DOMAINS as [Domain, ...Domain[]])).optional();

/** The DPO gap window (instruction and math pairs) in the scorer's units (construct.ts GapUnit). */
const gapWindowField = z
  .object({ min: z.number().min(0), max: z.number().positive(), unit: z.enum(['score', 'raw', 'std']) })
  .strict()
  .refine((w) => w.min <= w.max, { message: 'min must not be above max', path: ['min'] })
  .optional();

const chatJudgeSchema = z
  .object({
    type: z.literal('judge').optional(),
    name: nonEmpty.optional(),
    baseURL: url,
    apiKey: z.string().default(''),
    model: nonEmpty,
    temperature: z.number().min(0).max(2).default(0),
    top_p: z.number().gt(0).max(1).optional(),
    max_tokens: posInt.default(1024),
    seed: z.number().int().optional(),
    /** Template with {question}, {response} and optionally {reference} / {reference_block}. */
    rubric: nonEmpty.optional(),
    scaleMin: z.number().optional(),
    scaleMax: z.number().positive().optional(),
    concurrency: posInt.optional(),
    requestsPerMinute: z.number().positive().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    extraBody: z.record(z.string(), z.unknown()).optional(),
    /** Domains the judge scores (default instruction, math, code). */
    domains: domainsField,
    gapWindow: gapWindowField,
    ...retryFields,
  })
  .strict();

const normalizeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('minmax'), min: z.number(), max: z.number() }).strict(),
  z.object({ kind: z.literal('sigmoid'), center: z.number().optional(), scale: z.number().positive().optional() }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('run') }).strict(),
]);

const rewardJudgeSchema = z
  .object({
    type: z.literal('reward'),
    baseURL: url,
    apiKey: z.string().default(''),
    model: nonEmpty,
    /** POST path relative to baseURL (default vLLM's `/pooling`). */
    path: nonEmpty.optional(),
    /** Where the scalar is in the reply (default vLLM /pooling's `data.0.data.0`). */
    scorePath: nonEmpty.default('data.0.data.0'),
    /**
     * Raw scalar → [0, 1] (default: fitted to the run, with the gap window in the run's reward
     * spread; ArmoRM as in the paper: {"kind": "none"}, whose units the paper's window is in).
     */
    normalize: normalizeSchema.default({ kind: 'run' }),
    concurrency: posInt.optional(),
    domains: domainsField,
    gapWindow: gapWindowField,
    ...retryFields,
  })
  .strict();

const localRewardJudgeSchema = z
  .object({
    type: z.literal('local-reward'),
    /** A folder, an http(s) URL or a Hub repo id of a *ForSequenceClassification reward model. */
    model: nonEmpty,
    /** Conversations per engine call (default 16). */
    batchSize: posInt.optional(),
    normalize: normalizeSchema.default({ kind: 'run' }),
    concurrency: posInt.optional(),
    domains: domainsField,
    gapWindow: gapWindowField,
  })
  .strict();

export type SourceConfigJson = z.input<typeof sourceSchema> | z.input<typeof localSourceSchema>;
export type JudgeConfigJson = z.input<typeof chatJudgeSchema> | z.input<typeof rewardJudgeSchema> | z.input<typeof localRewardJudgeSchema>;

/** A parsed judge.json: the spec, the domains it scores, and its DPO gap window if it sets one. */
export interface JudgeSetup {
  spec: JudgeSpec;
  domains: Domain[];
  /** For instruction and math pairs (pipeline `construct.instructionGap` / `mathGap`). */
  gapWindow?: GapRange;
}

/** What a config parser needs besides the JSON. */
export interface ConfigContext {
  /** Label for errors, e.g. the file name. */
  file: string;
  /** Where "$NAME" API keys are looked up (default: none). */
  env?: Readonly<Record<string, string | undefined>>;
}

function fail(file: string, error: z.ZodError): never {
  throw new ConfigError(`${file}: ${formatZodError(error)}`);
}

/** Resolves "$NAME" / "${NAME}" against `env`; any other text is the key itself. */
export function resolveSecret(value: string, ctx: ConfigContext, field: string): string {
  const m = ENV_REF.exec(value.trim());
  if (!m) return value;
  const name = (m[1] ?? m[2])!;
  const v = ctx.env?.[name];
  if (v === undefined || v === '') throw new ConfigError(`${ctx.file}: ${field}: environment variable ${name} is not set`);
  return v;
}

/** Parses JSON text, naming the file (and line/column, where the engine says) when it is not JSON. */
export function parseJsonText(text: string, file: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new ConfigError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

function retryOf(v: { timeoutMs?: number; maxAttempts?: number }): Partial<RetryPolicy> | undefined {
  const r: Partial<RetryPolicy> = {};
  if (v.timeoutMs !== undefined) r.timeoutMs = v.timeoutMs;
  if (v.maxAttempts !== undefined) r.maxAttempts = v.maxAttempts;
  return Object.keys(r).length > 0 ? r : undefined;
}

/** Drops the keys whose value is undefined (so makeSource's defaults apply). */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A count or a per-domain object → n and nByDomain. */
function countsOf(n: z.infer<typeof nField> | undefined): { n?: number; nByDomain?: LocalSource['nByDomain'] } {
  if (n === undefined) return {};
  if (typeof n === 'number') return { n };
  return { nByDomain: defined(n) };
}

/** sources.json → Sources (remote endpoints and local models). Throws ConfigError naming the file and field. */
export function parseSourcesConfig(value: unknown, ctx: ConfigContext): CollectSource[] {
  const list = z.array(z.unknown()).min(1, 'list at least one source').safeParse(value);
  if (!list.success) fail(ctx.file, list.error);
  const out: CollectSource[] = [];
  const seen = new Map<string, number>();
  list.data.forEach((entry, i) => {
    // Each entry by its own schema, its errors under its index.
    const at = (error: z.ZodError): never => fail(ctx.file, { issues: error.issues.map((x) => ({ ...x, path: [i, ...x.path] })) } as z.ZodError);
    if (isLocalEntry(entry)) {
      const parsed = localSourceSchema.safeParse(entry);
      if (!parsed.success) at(parsed.error);
      const { id, n, ...rest } = parsed.data!;
      out.push(makeLocalSource({ ...defined(rest), local: true, model: rest.model, id: id ?? rest.name, ...countsOf(n) }));
    } else {
      const parsed = sourceSchema.safeParse(entry);
      if (!parsed.success) at(parsed.error);
      const s = parsed.data!;
      const { timeoutMs: _t, maxAttempts: _m, apiKey, id, n, ...rest } = s;
      const retry = retryOf(s);
      out.push(
        makeSource({
          ...defined(rest),
          ...countsOf(n),
          baseURL: s.baseURL,
          model: s.model,
          id: id ?? s.name,
          apiKey: resolveSecret(apiKey, ctx, `[${i}].apiKey`),
          ...(retry ? { retry } : {}),
        }),
      );
    }
    const src = out[i]!;
    const first = seen.get(src.id);
    const raw = entry as { id?: unknown };
    if (first !== undefined) throw new ConfigError(`${ctx.file}: [${i}].${raw.id !== undefined ? 'id' : 'name'}: "${src.id}" is already used by source [${first}]`);
    seen.set(src.id, i);
  });
  return out;
}

/** judge.json → the run's scorer. Throws ConfigError naming the file and field. */
export function parseJudgeConfig(value: unknown, ctx: ConfigContext): JudgeSetup {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  const defaultDomains: Domain[] = ['instruction', 'math', 'code'];
  const gap = (w: GapRange | undefined) => (w ? { gapWindow: w } : {});
  if (type === 'local-reward') {
    const parsed = localRewardJudgeSchema.safeParse(value);
    if (!parsed.success) fail(ctx.file, parsed.error);
    const r = parsed.data;
    return {
      spec: {
        type: 'local-reward',
        localReward: { model: r.model, normalize: r.normalize, ...(r.batchSize !== undefined ? { batchSize: r.batchSize } : {}) },
        ...(r.concurrency !== undefined ? { concurrency: r.concurrency } : {}),
      },
      domains: r.domains ?? defaultDomains,
      ...gap(r.gapWindow),
    };
  }
  if (type === 'reward') {
    const parsed = rewardJudgeSchema.safeParse(value);
    if (!parsed.success) fail(ctx.file, parsed.error);
    const r = parsed.data;
    const retry = retryOf(r);
    return {
      spec: {
        type: 'reward',
        reward: {
          baseURL: r.baseURL,
          apiKey: resolveSecret(r.apiKey, ctx, 'apiKey'),
          model: r.model,
          scorePath: r.scorePath,
          normalize: r.normalize,
          ...(r.path !== undefined ? { path: r.path } : {}),
          ...(retry ? { retry } : {}),
        },
        ...(r.concurrency !== undefined ? { concurrency: r.concurrency } : {}),
      },
      domains: r.domains ?? defaultDomains,
      ...gap(r.gapWindow),
    };
  }
  const parsed = chatJudgeSchema.safeParse(value);
  if (!parsed.success) {
    if (type !== undefined && type !== 'judge') throw new ConfigError(`${ctx.file}: type: expected "judge", "reward" or "local-reward", got ${JSON.stringify(type)}`);
    fail(ctx.file, parsed.error);
  }
  const j = parsed.data;
  const retry = retryOf(j);
  const source = makeSource({
    ...defined({
      name: j.name ?? `judge ${j.model}`,
      baseURL: j.baseURL,
      model: j.model,
      temperature: j.temperature,
      top_p: j.top_p,
      max_tokens: j.max_tokens,
      seed: j.seed,
      requestsPerMinute: j.requestsPerMinute,
      headers: j.headers,
      extraBody: j.extraBody,
    }),
    baseURL: j.baseURL,
    model: j.model,
    id: 'judge',
    apiKey: resolveSecret(j.apiKey, ctx, 'apiKey'),
    n: 1,
    concurrency: j.concurrency ?? 4,
    ...(retry ? { retry } : {}),
  });
  // A judge keeps to its settings: no sampling preset's repetition penalty.
  delete source.repetition_penalty;
  return {
    spec: {
      type: 'judge',
      judge: {
        source,
        ...(j.rubric !== undefined ? { rubric: j.rubric } : {}),
        ...(j.scaleMin !== undefined ? { scaleMin: j.scaleMin } : {}),
        ...(j.scaleMax !== undefined ? { scaleMax: j.scaleMax } : {}),
      },
      ...(j.concurrency !== undefined ? { concurrency: j.concurrency } : {}),
    },
    domains: j.domains ?? defaultDomains,
    ...gap(j.gapWindow),
  };
}
