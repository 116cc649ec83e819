// The classroom's sources from the instructor's sources.json and judge.json, read as build-data reads
// them (data/pipeline-config.ts: the same fields, "$NAME" keys from the environment, the same errors),
// turned into the proxy's sources. Local sources ({"local": true, "model": …}) become models served
// from the instructor's GPU by the `fuse-studio serve` handler; `loadLocal` does that (the CLI's).
import { isLocalSource, type LocalSource } from '../data/local-source';
import { ConfigError, parseJudgeConfig, parseSourcesConfig, type ConfigContext } from '../data/pipeline-config';
import { samplingPresetForModel, type Source } from '../data/sources';
import { httpUpstream, type ProxySource, type Upstream } from './proxy';

const SEGMENT = /[^A-Za-z0-9._-]+/g;

/** A URL path segment for a source id ("Qwen 72B" → "Qwen-72B"), unique among `taken`. */
function segmentFor(id: string, taken: Set<string>): string {
  const base = id.replace(SEGMENT, '-').replace(/^-+|-+$/g, '') || 'source';
  let s = base;
  for (let i = 2; taken.has(s); i++) s = `${base}-${i}`;
  taken.add(s);
  return s;
}

export interface ClassroomSourceOptions {
  /** Per-attempt limit of an upstream call (ms). */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
  /** Loads a local source's model and returns its upstream (the CLI loads it on the GPU). */
  loadLocal?: (s: LocalSource) => Promise<{ upstream: Upstream; modelId: string }>;
}

function remote(s: Source, id: string, o: ClassroomSourceOptions): ProxySource {
  return {
    id,
    name: s.name,
    model: s.model,
    seed: s.seed ?? null,
    sampling: { temperature: s.temperature, top_p: s.top_p, max_tokens: s.max_tokens, n: s.n, ...(s.repetition_penalty !== undefined ? { repetition_penalty: s.repetition_penalty } : {}) },
    repetitionPenaltyKey: s.repetitionPenaltyKey ?? 'repetition_penalty',
    extraBody: { ...s.extraBody },
    upstream: httpUpstream(s, { timeoutMs: s.retry?.timeoutMs ?? o.timeoutMs ?? 180_000, fetchImpl: o.fetchImpl }),
    secrets: [s.apiKey, ...Object.values(s.headers ?? {})].filter((x) => x.length >= 4),
    kind: 'remote',
  };
}

/** sources.json (parsed JSON) → the proxy's sources. Throws ConfigError naming the file and field. */
export async function classroomSources(value: unknown, ctx: ConfigContext, o: ClassroomSourceOptions = {}): Promise<ProxySource[]> {
  const parsed = parseSourcesConfig(value, ctx);
  const taken = new Set<string>();
  const out: ProxySource[] = [];
  for (const s of parsed) {
    const id = segmentFor(s.id, taken);
    if (!isLocalSource(s)) {
      out.push(remote(s, id, o));
      continue;
    }
    if (!o.loadLocal) throw new ConfigError(`${ctx.file}: "${s.name}" is a local source; this classroom cannot load models on a GPU`);
    const { upstream, modelId } = await o.loadLocal(s);
    const preset = samplingPresetForModel(s.model);
    out.push({
      id,
      name: s.name,
      model: modelId,
      seed: s.seed ?? 0,
      sampling: {
        temperature: s.temperature ?? preset.temperature,
        top_p: s.top_p ?? preset.top_p,
        max_tokens: s.max_tokens,
        n: s.n,
        ...(s.repetition_penalty !== undefined ? { repetition_penalty: s.repetition_penalty } : {}),
      },
      repetitionPenaltyKey: 'repetition_penalty',
      extraBody: {},
      upstream,
      secrets: [],
      kind: 'local',
    });
  }
  return out;
}

/**
 * judge.json → a proxy source for a chat judge (students' studios send their judge requests
 * through it too) and the rubric it uses. Reward-model judges are not proxied: an error says so.
 */
export function classroomJudge(value: unknown, ctx: ConfigContext, taken: readonly ProxySource[], o: ClassroomSourceOptions = {}): { source: ProxySource; rubric?: string } {
  const setup = parseJudgeConfig(value, ctx);
  if (setup.spec.type !== 'judge')
    throw new ConfigError(`${ctx.file}: the classroom proxies a chat judge ({"baseURL","apiKey","model"}); a ${setup.spec.type} judge is not offered to students — leave --judge out and set it in the class recipe`);
  const j = setup.spec.judge;
  const id = segmentFor('judge', new Set(taken.map((s) => s.id)));
  const source = remote({ ...j.source, name: j.source.name }, id, o);
  return { source, ...(j.rubric ? { rubric: j.rubric } : {}) };
}
