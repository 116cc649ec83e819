import { describe, expect, it } from 'vitest';
import { DEFAULT_RUBRIC } from '../data/score';
import { endpointPreset } from '../data/sources';
import { baseUrlProblem, buildJudgeSpec, DEFAULT_JUDGE, explainConnectionError, newSourceEntry, pipelineSources, sourceProblem, toPipelineSource } from './sourcesStore';

describe('source entries', () => {
  it('a preset entry has the endpoint URL and the paper default sampling, and a unique name', () => {
    const e = newSourceEntry(endpointPreset('openrouter'), 'abc', ['OpenRouter']);
    expect(e.baseURL).toBe('https://openrouter.ai/api/v1');
    expect(e.name).toBe('OpenRouter 2');
    expect([e.temperature, e.top_p, e.n]).toEqual([0.8, 0.95, 5]);
    expect(sourceProblem(e)).toBe('needs a model');
    expect(sourceProblem({ ...e, model: 'x' })).toBe('OpenRouter needs an API key');
    expect(sourceProblem({ ...e, model: 'x', apiKey: 'k' })).toBe('');
  });

  it('the pipeline id joins the entry id and the model; unset optional fields are dropped', () => {
    const e = { ...newSourceEntry(endpointPreset('vllm'), 'id1'), model: 'm1', seed: undefined, requestsPerMinute: undefined };
    const s = toPipelineSource(e);
    expect(s.id).toBe('id1:m1');
    // A request may take DEFAULT_REQUEST_TIMEOUT_S unless the source says otherwise.
    expect(s.retry).toEqual({ timeoutMs: 120_000 });
    expect(toPipelineSource({ ...e, retry: { timeoutMs: 5000 } }).retry).toEqual({ timeoutMs: 5000 });
    expect('seed' in s || 'requestsPerMinute' in s || 'presetId' in s || 'enabled' in s).toBe(false);
    expect(toPipelineSource({ ...e, model: 'm2' }).id).toBe('id1:m2');
    expect(pipelineSources([e, { ...e, id: 'id2', enabled: false }, { ...e, id: 'id3', model: '' }]).map((x) => x.id)).toEqual(['id1:m1']);
  });
});

describe('explainConnectionError', () => {
  it('names the common failures', () => {
    expect(explainConnectionError('Mock: HTTP 401 Incorrect API key provided', 'u', null)).toMatch(/^401 Unauthorized/);
    expect(explainConnectionError('HTTP 404 not found', 'u', null)).toMatch(/^404/);
    expect(explainConnectionError('HTTP 503 busy', 'u', null)).toMatch(/^503 Server error/);
    expect(explainConnectionError('Mock: connection failed: Failed to fetch', 'http://h/v1', false)).toMatch(/^Unreachable: nothing answered at http:\/\/h\/v1/);
    expect(explainConnectionError('Mock: connection failed: Failed to fetch', 'http://h/v1', true)).toMatch(/^Blocked by CORS/);
    expect(explainConnectionError('request timed out after 15000 ms', 'u', null)).toMatch(/^Timed out/);
  });
});

describe('buildJudgeSpec', () => {
  const e = { ...newSourceEntry(endpointPreset('vllm'), 'j'), model: 'judge-model' };
  it('none, or an incomplete judge, gives no spec', () => {
    expect(buildJudgeSpec(DEFAULT_JUDGE, [e])).toBeUndefined();
    expect(buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'judge', sourceId: 'missing' }, [e])).toBeUndefined();
  });
  it('a source judge samples at temperature 0, once, with the default rubric left implicit', () => {
    const spec = buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'judge', sourceId: 'j', rubric: DEFAULT_RUBRIC }, [e]);
    expect(spec?.type).toBe('judge');
    if (spec?.type !== 'judge') return;
    expect(spec.judge.source).toMatchObject({ id: 'j:judge-model', temperature: 0, n: 1 });
    expect(spec.judge.rubric).toBeUndefined();
    // Its own token budget and timeout, not the source's collection settings.
    expect(spec.judge.source).toMatchObject({ max_tokens: 512, retry: { timeoutMs: 120_000 } });
    const short = buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'judge', sourceId: 'j', maxTokens: 64, timeoutSeconds: 30 }, [{ ...e, max_tokens: 6 }]);
    expect(short?.type === 'judge' && short.judge.source).toMatchObject({ max_tokens: 64, retry: { timeoutMs: 30_000 } });
    const custom = buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'judge', sourceId: 'j', rubric: 'Rate {response}' }, [e]);
    expect(custom?.type === 'judge' && custom.judge.rubric).toBe('Rate {response}');
  });
  it('a reward endpoint maps its rewards by a sigmoid fitted to the run unless told otherwise', () => {
    const spec = buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'reward', reward: { ...DEFAULT_JUDGE.reward, model: 'rm' } }, []);
    expect(spec).toMatchObject({ type: 'reward', reward: { normalize: { kind: 'run' }, retry: { timeoutMs: 120_000 } } });
  });
  it('a local reward model: its Hub repo, URL or folder, fitted to the run; none without a model', () => {
    expect(buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'local-reward' }, [])).toBeUndefined();
    const spec = buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'local-reward', localReward: { model: ' Skywork/Skywork-Reward-V2-Qwen3-0.6B ' } }, []);
    expect(spec).toEqual({ type: 'local-reward', localReward: { model: 'Skywork/Skywork-Reward-V2-Qwen3-0.6B', normalize: { kind: 'run' } } });
  });
  it('a reward model maps its normalization', () => {
    const spec = buildJudgeSpec({ ...DEFAULT_JUDGE, kind: 'reward', reward: { ...DEFAULT_JUDGE.reward, model: 'armo', normalize: 'minmax', min: -2, max: 2 } }, []);
    expect(spec).toMatchObject({ type: 'reward', reward: { model: 'armo', path: '/pooling', normalize: { kind: 'minmax', min: -2, max: 2 } } });
  });
});

describe('baseUrlProblem', () => {
  it('names a malformed base URL and says how to write it, before any request', () => {
    expect(baseUrlProblem('http://127.0.0.1:8000/v1')).toBeNull();
    expect(baseUrlProblem('https://openrouter.ai/api/v1/')).toBeNull();
    expect(baseUrlProblem('')).toMatch(/^needs a base URL, e\.g\. http:\/\/127\.0\.0\.1:8000\/v1$/);
    expect(baseUrlProblem('127.0.0.1:8000/v1')).toBe('the base URL “127.0.0.1:8000/v1” has no http:// or https:// at the start: write http://127.0.0.1:8000/v1');
    expect(baseUrlProblem('localhost:8000/v1')).toContain('write http://localhost:8000/v1');
    expect(baseUrlProblem('http:/127.0.0.1:8000/v1')).toContain('write http://127.0.0.1:8000/v1');
    expect(baseUrlProblem('htp://127.0.0.1/v1')).toContain('starts with “htp://”');
    expect(baseUrlProblem('http://127.0.0.1:80000/v1')).toContain('is not a valid URL: check the host name and the port');
    expect(baseUrlProblem('http://127.0.0.1:8000/v1 ')).toBeNull();
    expect(baseUrlProblem('http://127.0.0.1 :8000/v1')).toContain('has a space in it');
    expect(baseUrlProblem('http://127.0.0.1:8000/v1/chat/completions')).toBe(
      'the base URL ends in /chat/completions: give the address before it (http://127.0.0.1:8000/v1); the studio adds /chat/completions itself',
    );
    expect(baseUrlProblem('http://127.0.0.1:8000/v1?key=1')).toContain('?query');
  });

  it('makes the source not ready, with the reason', () => {
    const e = { ...newSourceEntry(undefined, 'x'), model: 'm', baseURL: '127.0.0.1:8000/v1' };
    expect(sourceProblem(e)).toContain('has no http:// or https://');
    expect(pipelineSources([e])).toEqual([]);
  });
});

