import { useEffect, useId } from 'react';
import { DEFAULT_RUBRIC } from '../../data/score';
import { ENDPOINT_PRESETS, PAPER_SOURCE_MODELS, RESPONSES_PER_PROMPT, SAMPLING_PRESETS, endpointPreset, samplingPresetForModel } from '../../data/sources';
import { ConfirmButton } from '../components/ConfirmButton';
import { NumberField, SecretField } from '../components/fields';
import { RawText } from '../components/RawText';
import { LocalSourcesPanel } from './LocalSourcesPanel';
import { baseUrlProblem, DEFAULT_REQUEST_TIMEOUT_S, JUDGE_TEST_SAMPLE, sourceProblem, useSourcesStore, type JudgeSettings, type SourceEntry } from '../sourcesStore';

/** The Sources page: the OpenAI-compatible models asked for responses, and the optional judge. */
export function SourcesPage() {
  const load = useSourcesStore((s) => s.load);
  const loaded = useSourcesStore((s) => s.loaded);
  const entries = useSourcesStore((s) => s.entries);
  const error = useSourcesStore((s) => s.error);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Sources</h1>
      <p className="lead">
        Sources are the strong models whose answers the small model learns from: any OpenAI-compatible endpoint, hosted or on
        your machine. Keys stay in this browser (IndexedDB) and are sent only to their endpoint.
      </p>
      {error && (
        <p role="alert" className="notice notice--error">
          {error}
        </p>
      )}
      <AddSource />
      {loaded && entries.length === 0 && <p className="muted">No sources yet: add one from a preset above.</p>}
      {entries.map((e, k) => (
        <SourceCard key={e.id} entry={e} index={k} />
      ))}
      <LocalSourcesPanel />
      <JudgeCard />
    </main>
  );
}

function AddSource() {
  const add = useSourcesStore((s) => s.add);
  return (
    <section className="card" aria-labelledby="add-title">
      <h2 id="add-title">Add a source</h2>
      <p className="hint">Pick the endpoint; you then choose the model and its sampling.</p>
      <div className="presets" role="group" aria-label="Endpoint presets">
        {ENDPOINT_PRESETS.map((p) => (
          <button key={p.id} type="button" className="chip" onClick={() => void add(p.id)} aria-label={`Add ${p.label}`} title={p.baseURL}>
            {p.label}
          </button>
        ))}
        <button type="button" className="chip" onClick={() => void add('custom')} aria-label="Add a custom endpoint">
          Custom…
        </button>
      </div>
    </section>
  );
}

function SourceCard({ entry: e, index }: { entry: SourceEntry; index: number }) {
  const update = useSourcesStore((s) => s.update);
  const remove = useSourcesStore((s) => s.remove);
  const test = useSourcesStore((s) => s.test);
  const listModels = useSourcesStore((s) => s.listModels);
  const testState = useSourcesStore((s) => s.tests[e.id]);
  const models = useSourcesStore((s) => s.models[e.id]);
  const titleId = useId();
  const listId = useId();
  const preset = endpointPreset(e.presetId);
  const problem = sourceProblem(e);
  const urlProblem = baseUrlProblem(e.baseURL);
  const isJudge = useSourcesStore((s) => s.judge.kind === 'judge' && s.judge.sourceId === e.id);
  const patch = (p: Partial<SourceEntry>) => update(e.id, p);
  const suggested = e.model ? samplingPresetForModel(e.model) : null;

  return (
    <section className="card source-card" aria-label={`Source ${index + 1}: ${e.name}`}>
      <div className="card-head">
        <h2 id={titleId}>
          {e.name || 'Unnamed source'} <span className="muted source-preset">{preset?.label ?? 'Custom endpoint'}</span>
        </h2>
        <label className="inline-check">
          <input type="checkbox" checked={e.enabled} onChange={(ev) => patch({ enabled: ev.target.checked })} /> Use in the data run
        </label>
      </div>
      {preset?.note && <p className="hint">{preset.note}</p>}
      <div className="form-grid">
        <label className="field">
          <span>Name</span>
          <input type="text" value={e.name} onChange={(ev) => patch({ name: ev.target.value })} autoComplete="off" />
        </label>
        <label className="field field--wide">
          <span>Base URL</span>
          <input
            type="url"
            value={e.baseURL}
            onChange={(ev) => patch({ baseURL: ev.target.value.trim() })}
            spellCheck={false}
            autoComplete="off"
            aria-invalid={urlProblem ? true : undefined}
          />
          {urlProblem && <small className="field-hint error-text">{urlProblem[0]!.toUpperCase() + urlProblem.slice(1)}.</small>}
        </label>
        <SecretField label="API key" value={e.apiKey} onChange={(v) => patch({ apiKey: v.trim() })} placeholder={preset?.needsKey === false ? 'not needed' : 'sk-…'} />
        <div className="field field--wide">
          <label htmlFor={`${listId}-model`}>
            <span>Model</span>
          </label>
          <div className="secret-row">
            <input
              id={`${listId}-model`}
              type="text"
              value={e.model}
              list={listId}
              onChange={(ev) => patch({ model: ev.target.value.trim() })}
              spellCheck={false}
              autoComplete="off"
              placeholder="e.g. Qwen/Qwen2.5-72B-Instruct"
            />
            <button type="button" className="chip" onClick={() => void listModels(e.id)} disabled={models?.state === 'loading'}>
              List models
            </button>
          </div>
          {models?.state === 'ok' && (
            <>
              <datalist id={listId}>
                {models.models.map((m) => (
                  <option key={m} value={m} />
                ))}
              </datalist>
              <small className="field-hint" role="status">
                {models.models.length} model(s) on this server: pick one in the Model field.
              </small>
            </>
          )}
          {models?.state === 'error' && (
            <small className="field-hint error-text" role="status">
              {models.message}
            </small>
          )}
          <div className="presets" role="group" aria-label="The paper's source models">
            {PAPER_SOURCE_MODELS.map((m) => (
              <button key={m.model} type="button" className="chip chip--small" onClick={() => patch({ model: m.model })} title={m.model}>
                {m.name}
              </button>
            ))}
          </div>
        </div>
      </div>

      <h3>Sampling</h3>
      <div className="presets" role="group" aria-label="Sampling presets">
        {Object.values(SAMPLING_PRESETS).map((p) => (
          <button
            key={p.id}
            type="button"
            className="chip"
            aria-pressed={e.temperature === p.temperature && e.top_p === p.top_p && (e.repetition_penalty ?? undefined) === p.repetition_penalty}
            onClick={() => patch({ temperature: p.temperature, top_p: p.top_p, repetition_penalty: preset?.repetitionPenaltyKey === null ? undefined : p.repetition_penalty })}
          >
            {p.label}
          </button>
        ))}
      </div>
      {suggested && <p className="hint">The paper samples {e.model} with: {suggested.label}.</p>}
      <div className="form-grid form-grid--numbers">
        <NumberField label="Temperature" value={e.temperature} min={0} max={2} step={0.05} onChange={(v) => patch({ temperature: v ?? 0 })} />
        <NumberField label="top_p" value={e.top_p} min={0.01} max={1} step={0.01} onChange={(v) => patch({ top_p: v ?? 1 })} />
        <NumberField label="Max tokens" value={e.max_tokens} min={1} integer onChange={(v) => patch({ max_tokens: v ?? 1 })} />
        <NumberField label="Seed" value={e.seed} integer optional hint="sample i uses seed + i" onChange={(v) => patch({ seed: v })} />
        <NumberField
          label="Repetition penalty"
          value={e.repetition_penalty}
          min={0.5}
          max={2}
          step={0.01}
          optional
          hint={preset?.repetitionPenaltyKey === null ? 'not accepted by this server' : undefined}
          onChange={(v) => patch({ repetition_penalty: v })}
        />
        <NumberField label="Responses per prompt" value={e.n} min={1} max={64} integer onChange={(v) => patch({ n: v ?? 1 })} />
        <NumberField label="Concurrency" value={e.concurrency} min={1} max={64} integer hint="requests in flight" onChange={(v) => patch({ concurrency: v ?? 1 })} />
        <NumberField label="Rate limit (requests/min)" value={e.requestsPerMinute} min={1} optional hint="blank: unlimited" onChange={(v) => patch({ requestsPerMinute: v })} />
        <NumberField
          label="Request timeout (s)"
          value={(e.retry?.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_S * 1000) / 1000}
          min={1}
          hint="a request still unanswered then is abandoned and retried"
          onChange={(v) => patch({ retry: { ...e.retry, timeoutMs: (v ?? DEFAULT_REQUEST_TIMEOUT_S) * 1000 } })}
        />
      </div>
      <div className="presets" role="group" aria-label="Responses per prompt in the paper">
        {(
          [
            ['instruction', RESPONSES_PER_PROMPT.instruction],
            ['math', RESPONSES_PER_PROMPT.math],
            ['code', RESPONSES_PER_PROMPT.code],
            ['Chinese', RESPONSES_PER_PROMPT.chinese],
          ] as const
        ).map(([d, n]) => (
          <button key={d} type="button" className="chip chip--small" aria-pressed={e.n === n} onClick={() => patch({ n })}>
            {d}: {n} per prompt
          </button>
        ))}
      </div>

      <div className="actions">
        <button type="button" className="button" onClick={() => void test(e.id)} disabled={testState?.state === 'testing' || !e.model || !e.baseURL}>
          Test connection
        </button>
        <ConfirmButton
          aria-label={`Remove ${e.name || 'this source'}`}
          title={`Remove the source “${e.name || 'Unnamed source'}”?`}
          body={
            <>
              <p>
                Its settings{e.apiKey ? ' and its API key' : ''} are deleted from this browser{e.apiKey ? ': to use it again you will need to paste the key again' : ''}.
                The responses it already gave stay in the data run, but it is not asked again.
              </p>
              {isJudge && <p>It is also the judge: the judge will need another source.</p>}
            </>
          }
          confirmLabel="Remove source"
          onConfirm={() => remove(e.id)}
        >
          Remove
        </ConfirmButton>
        {problem && <span className="muted">Not ready: {problem}.</span>}
      </div>
      <div role="status" aria-live="polite" aria-label={`Connection test of ${e.name}`}>
        {testState?.state === 'testing' && <p className="notice">Testing: sending a tiny chat completion…</p>}
        {testState?.state === 'ok' && <p className="notice notice--ok">{testState.message}</p>}
        {testState?.state === 'error' && <p className="notice notice--error">{testState.message}</p>}
      </div>
    </section>
  );
}

function JudgeCard() {
  const judge = useSourcesStore((s) => s.judge);
  const entries = useSourcesStore((s) => s.entries);
  const setJudge = useSourcesStore((s) => s.setJudge);
  const r = judge.reward;
  const setReward = (p: Partial<JudgeSettings['reward']>) => setJudge({ reward: p });
  const kinds: [JudgeSettings['kind'], string, string][] = [
    ['none', 'No judge', 'Only math answers and code tests are checked; instruction prompts give no rows.'],
    ['judge', 'A source as rubric judge', 'A chat model grades each response 1–10 with a rubric.'],
    ['reward', 'A reward-model endpoint', 'A scalar reward (e.g. ArmoRM served by vLLM /pooling), as in the paper.'],
    ['local-reward', 'A local reward model', 'A reward model (e.g. Skywork-Reward-V2-Qwen3-0.6B) run on this GPU, beside the model you train.'],
  ];
  return (
    <section className="card" aria-labelledby="judge-title">
      <h2 id="judge-title">Judge (optional)</h2>
      <p className="hint">Scores the responses so the best can be kept for SFT and the same-source best/worst paired for DPO.</p>
      <fieldset className="radio-row">
        <legend className="sr-only">Judge kind</legend>
        {kinds.map(([k, label, why]) => (
          <label key={k} className="radio-option">
            <input type="radio" name="judge-kind" value={k} checked={judge.kind === k} onChange={() => setJudge({ kind: k })} />
            <span>
              <strong>{label}</strong>
              <br />
              <small className="muted">{why}</small>
            </span>
          </label>
        ))}
      </fieldset>
      {judge.kind === 'judge' && (
        <div className="form-grid">
          <label className="field">
            <span>Judge source</span>
            <select value={judge.sourceId} onChange={(e) => setJudge({ sourceId: e.target.value })}>
              <option value="">Choose a source…</option>
              {entries.map((e) => (
                <option key={e.id} value={e.id}>
                  {e.name} — {e.model || 'no model'}
                </option>
              ))}
            </select>
          </label>
          <NumberField label="Judge concurrency" value={judge.concurrency} min={1} max={64} integer onChange={(v) => setJudge({ concurrency: v ?? 1 })} />
          <NumberField
            label="Judge max tokens"
            value={judge.maxTokens}
            min={1}
            integer
            hint="the verdict's length (the source's own max tokens is for collection)"
            onChange={(v) => setJudge({ maxTokens: v ?? 1 })}
          />
          <NumberField label="Judge timeout (s)" value={judge.timeoutSeconds} min={1} hint="per request" onChange={(v) => setJudge({ timeoutSeconds: v ?? 1 })} />
          <label className="field field--full">
            <span>Rubric ({'{question}'}, {'{response}'}, {'{reference_block}'} are filled in)</span>
            <textarea rows={6} value={judge.rubric} onChange={(e) => setJudge({ rubric: e.target.value })} spellCheck={false} />
          </label>
          {judge.rubric !== DEFAULT_RUBRIC && (
            <button type="button" className="chip" onClick={() => setJudge({ rubric: DEFAULT_RUBRIC })}>
              Restore the default rubric
            </button>
          )}
        </div>
      )}
      {judge.kind === 'reward' && (
        <div className="form-grid">
          {entries.length > 0 && (
            <div className="presets field--full" role="group" aria-label="Reward endpoint from a source">
              <span className="muted">Use a source’s server (e.g. fuse-studio serve’s /pooling):</span>
              {entries.map((e) => (
                <button key={e.id} type="button" className="chip chip--small" onClick={() => setReward({ baseURL: e.baseURL, apiKey: e.apiKey, model: e.model })} disabled={!e.baseURL || !e.model}>
                  {e.name}
                </button>
              ))}
            </div>
          )}
          <label className="field field--wide">
            <span>Reward base URL</span>
            <input type="url" value={r.baseURL} onChange={(e) => setReward({ baseURL: e.target.value.trim() })} spellCheck={false} />
          </label>
          <SecretField label="Reward API key" value={r.apiKey} onChange={(v) => setReward({ apiKey: v.trim() })} placeholder="not needed locally" />
          <label className="field">
            <span>Reward model</span>
            <input type="text" value={r.model} onChange={(e) => setReward({ model: e.target.value.trim() })} placeholder="RLHFlow/ArmoRM-Llama3-8B-v0.1" spellCheck={false} />
          </label>
          <label className="field">
            <span>Path</span>
            <input type="text" value={r.path} onChange={(e) => setReward({ path: e.target.value.trim() })} spellCheck={false} />
          </label>
          <label className="field">
            <span>Score path in the JSON answer</span>
            <input type="text" value={r.scorePath} onChange={(e) => setReward({ scorePath: e.target.value.trim() })} spellCheck={false} />
          </label>
          <label className="field">
            <span>Normalization to [0, 1]</span>
            <select value={r.normalize} onChange={(e) => setReward({ normalize: e.target.value as JudgeSettings['reward']['normalize'] })}>
              <option value="run">fitted to the run (sigmoid on its median and spread)</option>
              <option value="sigmoid">sigmoid</option>
              <option value="minmax">min / max</option>
              <option value="none">none (clamp)</option>
            </select>
          </label>
          {r.normalize === 'minmax' && (
            <>
              <NumberField label="Reward min" value={r.min} onChange={(v) => setReward({ min: v ?? 0 })} />
              <NumberField label="Reward max" value={r.max} onChange={(v) => setReward({ max: v ?? 1 })} />
            </>
          )}
          {r.normalize === 'sigmoid' && (
            <>
              <NumberField label="Sigmoid center" value={r.center} onChange={(v) => setReward({ center: v ?? 0 })} />
              <NumberField label="Sigmoid scale" value={r.scale} min={0.0001} onChange={(v) => setReward({ scale: v ?? 1 })} />
            </>
          )}
          <NumberField label="Reward concurrency" value={judge.concurrency} min={1} max={64} integer onChange={(v) => setJudge({ concurrency: v ?? 1 })} />
          <NumberField label="Reward timeout (s)" value={judge.timeoutSeconds} min={1} hint="per request" onChange={(v) => setJudge({ timeoutSeconds: v ?? 1 })} />
        </div>
      )}
      {judge.kind === 'local-reward' && <LocalRewardPanel />}
      {judge.kind !== 'none' && <JudgeTestPanel />}
    </section>
  );
}

/** "Test judge": one sample to the judge, its raw verdict shown as it came and the score read (or why none). */
function JudgeTestPanel() {
  const t = useSourcesStore((s) => s.judgeTest);
  const testJudge = useSourcesStore((s) => s.testJudge);
  const kind = useSourcesStore((s) => s.judge.kind);
  const what = kind === 'judge' ? 'judge' : 'reward model';
  return (
    <div className="judge-test">
      <div className="actions">
        <button type="button" className="button button--secondary" onClick={() => void testJudge()} disabled={t?.state === 'testing'}>
          Test {what}
        </button>
        <span className="muted">
          Sends one question with a correct answer: “{JUDGE_TEST_SAMPLE.messages[0]!.content}” → “{JUDGE_TEST_SAMPLE.response}”
        </span>
      </div>
      <div role="status" aria-live="polite" aria-label="Judge test">
        {t?.state === 'testing' && <p className="notice">Asking the {what}…</p>}
        {t?.state === 'error' && <p className="notice notice--error">{t.message}</p>}
        {t?.state === 'done' && (
          <div className={t.raw === null ? 'notice notice--error' : 'notice notice--ok'}>
            <p data-testid="judge-test-result">
              {t.raw === null
                ? `No score read: ${t.detail}.`
                : t.method === 'judge'
                  ? `Score read: ${t.detail} → ${t.score?.toFixed(2)} on [0, 1].`
                  : `Reward: ${t.raw}${t.score !== null ? ` → ${t.score.toFixed(2)} on [0, 1]` : ` (${t.detail})`}.`}{' '}
              <span className="muted">
                {t.latencyMs} ms{t.finishReason ? ` · finish reason: ${t.finishReason}` : ''}
              </span>
            </p>
            {t.verdict !== null && (
              <>
                <p className="hint">The judge’s reply, exactly as it came:</p>
                <RawText text={t.verdict} label="Raw verdict" />
              </>
            )}
          </div>
        )}
      </div>
    </div>
  );
}

type DirectoryPicker = () => Promise<FileSystemDirectoryHandle>;

function directoryPicker(): DirectoryPicker | null {
  const w = window as unknown as { showDirectoryPicker?: DirectoryPicker };
  return typeof w.showDirectoryPicker === 'function' ? w.showDirectoryPicker.bind(window) : null;
}

/** The local reward model: where it comes from, loading it into the engine worker, and its state. */
function LocalRewardPanel() {
  const model = useSourcesStore((s) => s.judge.localReward.model);
  const setJudge = useSourcesStore((s) => s.setJudge);
  const state = useSourcesStore((s) => s.rewardModel);
  const loadRewardModel = useSourcesStore((s) => s.loadRewardModel);
  const refresh = useSourcesStore((s) => s.refreshRewardModel);
  const picker = directoryPicker();
  const loading = state.state === 'loading';
  useEffect(() => {
    void refresh();
  }, [refresh]);
  const pickFolder = async () => {
    let handle: FileSystemDirectoryHandle;
    try {
      handle = await picker!();
    } catch {
      return; // the user closed the picker
    }
    await loadRewardModel(handle);
  };
  const pct = state.state === 'loading' && state.progress?.overall.total ? Math.floor((100 * state.progress.overall.loaded) / state.progress.overall.total) : null;
  return (
    <div className="form-grid">
      <label className="field field--wide">
        <span>Reward model: a Hub repo id or URL</span>
        <input
          type="text"
          value={model.startsWith('folder:') ? '' : model}
          onChange={(e) => setJudge({ localReward: { model: e.target.value.trim() } })}
          placeholder="Skywork/Skywork-Reward-V2-Qwen3-0.6B"
          spellCheck={false}
          disabled={loading}
        />
      </label>
      <div className="actions">
        <button type="button" className="button" onClick={() => void loadRewardModel()} disabled={loading || !model || model.startsWith('folder:')}>
          Load reward model
        </button>
        {picker && (
          <button type="button" className="button button--secondary" onClick={() => void pickFolder()} disabled={loading}>
            Choose a folder…
          </button>
        )}
      </div>
      <div className="field--full" role="status" aria-live="polite">
        {state.state === 'idle' && (
          <p className="hint">{model.startsWith('folder:') ? `Folder ${model.slice(7)}: choose it again to load it.` : 'Not loaded yet: it loads here, or when the Data page runs.'}</p>
        )}
        {state.state === 'loading' && (
          <p className="notice">
            {state.stage}
            {pct !== null && ` ${pct}%`}
          </p>
        )}
        {state.state === 'ready' && (
          <p className="notice notice--ok">
            Loaded {state.summary.source}: {state.summary.config.family} reward model, {state.summary.config.numLayers} layers, hidden size{' '}
            {state.summary.config.hiddenSize}. Rewards are mapped to [0, 1] by a sigmoid fitted to each run; DPO pairs keep gaps of 0.3 to 3
            standard deviations of the run&apos;s rewards.
            {state.summary.key !== model && ' (Not the model named above: load that one to use it.)'}
          </p>
        )}
        {state.state === 'error' && <p className="notice notice--error">{state.message}</p>}
      </div>
    </div>
  );
}
