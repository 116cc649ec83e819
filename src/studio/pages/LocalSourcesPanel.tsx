// The Sources page's local models: sources that generate on this GPU in the tab (no API key), one
// model at a time during collection (localSources.ts, worker/local-source-service.ts).
import { useId, useState } from 'react';
import { FAMILIES } from '../../model/families';
import { downloadSize, formatDownload, formatParams, PRESETS } from '../../model/presets';
import { ConfirmButton } from '../components/ConfirmButton';
import { NumberField } from '../components/fields';
import { localSourceProblem, useLocalSourcesStore, type LocalSourceEntry } from '../localSources';

const SOURCE_PRESETS = PRESETS.filter((p) => p.role === 'source');

export function LocalSourcesPanel() {
  const entries = useLocalSourcesStore((s) => s.entries);
  const add = useLocalSourcesStore((s) => s.add);
  const update = useLocalSourcesStore((s) => s.update);
  const [spec, setSpec] = useState('');
  const specId = useId();

  const addPreset = (id: string) => {
    const p = SOURCE_PRESETS.find((x) => x.id === id)!;
    add({ model: p.id, name: p.name });
    // The family's sampling preset (the paper's), filled in so it shows and can be changed.
    const s = FAMILIES[p.family].sampling;
    const added = useLocalSourcesStore.getState().entries.at(-1)!;
    update(added.id, { temperature: s.temperature, top_p: s.topP, ...(s.repetitionPenalty !== undefined ? { repetition_penalty: s.repetitionPenalty } : {}) });
  };

  return (
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
        className="row"
        onSubmit={(ev) => {
          ev.preventDefault();
          if (!spec.trim()) return;
          add({ model: spec });
          setSpec('');
        }}
      >
        <label htmlFor={specId}>Hub repo or URL</label>
        <input id={specId} value={spec} onChange={(ev) => setSpec(ev.target.value)} placeholder="org/name, hf://org/name@revision or https://…/model/" />
        <button type="submit" className="button" disabled={!spec.trim()}>
          Add local model
        </button>
      </form>
      {entries.map((e, k) => (
        <LocalSourceCard key={e.id} entry={e} index={k} />
      ))}
    </section>
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
    <div className="source-card local-source" role="group" aria-label={`Local source ${index + 1}: ${e.name}`}>
      <div className="row">
        <label htmlFor={nameId}>Name</label>
        <input id={nameId} value={e.name} onChange={(ev) => set({ name: ev.target.value })} />
        <label htmlFor={modelId}>Model</label>
        <input id={modelId} value={e.model} onChange={(ev) => set({ model: ev.target.value })} />
        <label>
          <input type="checkbox" checked={e.enabled} onChange={(ev) => set({ enabled: ev.target.checked })} /> Enabled
        </label>
      </div>
      <div className="row">
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
