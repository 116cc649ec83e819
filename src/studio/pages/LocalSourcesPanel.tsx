// The Sources page's local models: sources that generate on this GPU in the tab (no API key), one
// model at a time during collection (localSources.ts, worker/local-source-service.ts).
import { useEffect, useId, useState } from 'react';
import { FAMILIES } from '../../model/families';
import { downloadSize, formatDownload, formatParams, PRESETS } from '../../model/presets';
import { ConfirmButton } from '../components/ConfirmButton';
import { NumberField } from '../components/fields';
import { isFolderSpec, localSourceProblem, useLocalSourcesStore, type LocalSourceEntry } from '../localSources';
import { formatEstimate } from '../../model/time-estimate';
import { useDeviceSpeedStore } from '../deviceSpeed';
import { estimateNoKeyRecipe, NO_KEY_RECIPE, planNoKeyRecipe, setUpNoKeyRecipe } from '../noKeyRecipe';

// Any causal LM preset can be a source (the targets too: a Llama 3.2 1B answers well for its size).
const SOURCE_PRESETS = PRESETS.filter((p) => p.role !== 'reward');

export function LocalSourcesPanel() {
  const entries = useLocalSourcesStore((s) => s.entries);
  const add = useLocalSourcesStore((s) => s.add);
  const addFolder = useLocalSourcesStore((s) => s.addFolder);
  const [spec, setSpec] = useState('');
  const [folderError, setFolderError] = useState('');
  const specId = useId();
  const folderId = useId();

  const addPreset = (id: string) => {
    const p = SOURCE_PRESETS.find((x) => x.id === id)!;
    // The family's sampling preset (the paper's), filled in so it shows and can be changed.
    const s = FAMILIES[p.family].sampling;
    add({ model: p.id, name: p.name, temperature: s.temperature, top_p: s.topP, ...(s.repetitionPenalty !== undefined ? { repetition_penalty: s.repetitionPenalty } : {}) });
  };

  return (
    <>
      <NoKeyRecipeCard />
      <section className="card" aria-labelledby="local-add-title">
        <h2 id="local-add-title">Add a local model</h2>
        <p className="hint">
          A model that answers on this GPU, in this tab: no key, no server. During collection each local model is downloaded (once, into the
          model cache), generates all its answers, and is released before the next one. The model loaded on the Model page stays loaded beside it.
        </p>
        <div className="presets" role="group" aria-label="Local model presets">
          {SOURCE_PRESETS.map((p) => (
            <button key={p.id} type="button" className="chip" onClick={() => addPreset(p.id)} aria-label={`Add local ${p.name}`} title={downloadSize(p).basis}>
              {p.name} · {formatParams(downloadSize(p).params)} · {formatDownload(downloadSize(p).bytes)}
            </button>
          ))}
        </div>
        <form
          className="local-add"
          onSubmit={(ev) => {
            ev.preventDefault();
            if (!spec.trim()) return;
            add({ model: spec });
            setSpec('');
          }}
        >
          <label className="field" htmlFor={specId}>
            <span>Hub repo or URL</span>
            <input id={specId} value={spec} onChange={(ev) => setSpec(ev.target.value)} placeholder="org/name, hf://org/name@revision or https://…/model/" />
          </label>
          <button type="submit" className="button" disabled={!spec.trim()}>
            Add local model
          </button>
        </form>
        <label className="field local-folder" htmlFor={folderId}>
          <span>Or a model folder on this computer (config.json, *.safetensors, tokenizer.json): read in this tab, nothing is uploaded</span>
          <input
            id={folderId}
            type="file"
            {...{ webkitdirectory: '' }}
            multiple
            onChange={(ev) => {
              const files = [...(ev.target.files ?? [])];
              ev.target.value = '';
              try {
                setFolderError('');
                addFolder(files);
              } catch (e) {
                setFolderError(e instanceof Error ? e.message : String(e));
              }
            }}
          />
        </label>
        {folderError && <p className="notice notice--error">{folderError}</p>}
        {entries.map((e, k) => (
          <LocalSourceCard key={e.id} entry={e} index={k} />
        ))}
      </section>
    </>
  );
}

const ROLE_WORDS = { source: 'source', reward: 'reward model (judge)', target: 'target (Model page)' } as const;

/** The one-click recipe: what it downloads and generates, shown before it is set up. */
function NoKeyRecipeCard() {
  const plan = planNoKeyRecipe();
  const [state, setState] = useState<{ kind: 'idle' | 'working' | 'done' } | { kind: 'error'; message: string }>({ kind: 'idle' });
  const target = plan.models.find((m) => m.role === 'target')!.preset;
  const setUp = async () => {
    setState({ kind: 'working' });
    try {
      await setUpNoKeyRecipe();
      setState({ kind: 'done' });
    } catch (e) {
      setState({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  };
  return (
    <section className="card" aria-labelledby="nokey-title">
      <h2 id="nokey-title">Fusion with no API key</h2>
      <p className="hint">
        The whole recipe on this machine: {plan.prompts} starter prompts written for the project (instructions, math with a gold answer, JavaScript code with
        tests), answered by local models of different families, scored by a local reward model, and a small target trained on the result.
      </p>
      <table className="table" aria-label="What the recipe downloads">
        <thead>
          <tr>
            <th scope="col">Role</th>
            <th scope="col">Model</th>
            <th scope="col">Download</th>
          </tr>
        </thead>
        <tbody>
          {plan.models.map((m) => (
            <tr key={m.preset.id}>
              <td>{ROLE_WORDS[m.role]}</td>
              <td>
                {m.preset.name} ({formatParams(downloadSize(m.preset).params)})
              </td>
              <td>{formatDownload(m.bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p data-testid="nokey-plan">
        Total download about {formatDownload(plan.downloadBytes)} (once, into this browser's model cache). The sources write {plan.responses} answers ({NO_KEY_RECIPE.n} per
        prompt each), at most {plan.maxNewTokens.toLocaleString('en')} new tokens.
      </p>
      <RecipeTime />
      <button type="button" className="button" onClick={() => void setUp()} disabled={state.kind === 'working'}>
        Set up fusion with no API key
      </button>
      <div role="status" aria-live="polite">
        {state.kind === 'done' && (
          <p className="notice">
            Set up: the local sources below, the local reward model as the judge, the starter prompts on the Data page. Next: load {target.name} on the Model page,
            then run the Data page.
          </p>
        )}
        {state.kind === 'error' && <p className="notice notice--error">Could not set up the recipe: {state.message}</p>}
      </div>
    </section>
  );
}

/**
 * The recipe's time on this device: its FLOPs per phase over the engine's matmul speed measured
 * here (a couple of seconds, once per tab). An upper bound (every answer at its token limit),
 * without downloads and loads; the Data and Train pages show measured ETAs as they run.
 */
function RecipeTime() {
  const speed = useDeviceSpeedStore((s) => s.speed);
  const measure = useDeviceSpeedStore((s) => s.measure);
  useEffect(() => {
    void measure();
  }, [measure]);
  if (speed.state === 'idle' || speed.state === 'measuring')
    return (
      <p className="hint" data-testid="nokey-time" data-state="measuring">
        Time on this device: measuring this GPU's speed…
      </p>
    );
  if (speed.state === 'error')
    return (
      <p className="notice notice--error" data-testid="nokey-time" data-state="error">
        Could not measure this GPU's speed, so the time is unknown: {speed.message}{' '}
        <button type="button" className="button button--secondary" onClick={() => void measure(true)}>
          Try again
        </button>
      </p>
    );
  const s = speed.speed;
  const est = estimateNoKeyRecipe(s);
  return (
    <div data-testid="nokey-time" data-state="ready" data-seconds={Math.round(est.seconds)}>
      <p>
        <strong>Time on this device: up to {formatEstimate(est.seconds)}</strong> of computing, plus the downloads.
      </p>
      <ul className="hint estimate-phases">
        {est.phases.map((p) => (
          <li key={p.phase}>
            {p.phase}: {formatEstimate(p.seconds)}
          </li>
        ))}
      </ul>
      <p className="hint">
        From this GPU's speed with the engine's matmul, measured on {s.adapter} ({new Date(speed.measuredAt).toLocaleString()}): {s.decodeGflops.toFixed(1)} GFLOP/s at {s.decodeRows} rows (decoding a
        batch), {s.prefillGflops.toFixed(1)} GFLOP/s at {s.prefillRows} rows (prompts, scoring, training). Every answer is counted at its token limit, so most runs
        finish sooner{s.isFallback ? '. This is a software renderer (no GPU): a real GPU is tens to hundreds of times faster' : ''}.{' '}
        <button type="button" className="button button--secondary" onClick={() => void measure(true)}>
          Measure again
        </button>
      </p>
    </div>
  );
}

function LocalSourceCard({ entry: e, index }: { entry: LocalSourceEntry; index: number }) {
  const update = useLocalSourcesStore((s) => s.update);
  const remove = useLocalSourcesStore((s) => s.remove);
  const nameId = useId();
  const modelId = useId();
  const problem = localSourceProblem(e);
  const set = (patch: Partial<LocalSourceEntry>) => update(e.id, patch);
  return (
    <div className="local-source" role="group" aria-label={`Local source ${index + 1}: ${e.name}`}>
      <div className="card-head">
        <h3>
          {e.name || 'Unnamed source'} <span className="muted source-preset">local model</span>
        </h3>
        <label className="inline-check">
          <input type="checkbox" checked={e.enabled} onChange={(ev) => set({ enabled: ev.target.checked })} /> Enabled
        </label>
      </div>
      <div className="form-grid">
        <label className="field" htmlFor={nameId}>
          <span>Name</span>
          <input id={nameId} value={e.name} onChange={(ev) => set({ name: ev.target.value })} autoComplete="off" />
        </label>
        <label className="field field--wide" htmlFor={modelId}>
          <span>Model</span>
          <input
            id={modelId}
            value={e.model}
            readOnly={isFolderSpec(e.model)}
            onChange={(ev) => set({ model: ev.target.value })}
            placeholder="a preset, org/name or https://…/model/"
            autoComplete="off"
          />
        </label>
      </div>
      <div className="form-grid form-grid--numbers">
        <NumberField label="Responses per prompt (n)" value={e.n} integer min={1} onChange={(v) => set({ n: v ?? 1 })} />
        <NumberField label="Max new tokens" value={e.max_tokens} integer min={1} onChange={(v) => set({ max_tokens: v ?? 1 })} />
        <NumberField label="Temperature" value={e.temperature} optional min={0} step="any" hint="blank: the family's preset" onChange={(v) => set({ temperature: v })} />
        <NumberField label="Top-p" value={e.top_p} optional min={0} max={1} step="any" hint="blank: the family's preset" onChange={(v) => set({ top_p: v })} />
        <NumberField label="Repetition penalty" value={e.repetition_penalty} optional min={0} step="any" hint="blank: the family's preset" onChange={(v) => set({ repetition_penalty: v })} />
      </div>
      {problem && <p className="notice notice--warn">{problem}</p>}
      <ConfirmButton title={`Remove the local source “${e.name}”?`} body="Answers it already collected stay in their runs." confirmLabel="Remove source" onConfirm={() => remove(e.id)} aria-label={`Remove ${e.name}`}>
        Remove
      </ConfirmButton>
    </div>
  );
}
