import { useEffect, useRef, useState, type FormEvent } from 'react';
import { baseModelStatus, useExportStore, type ExportNotice } from '../exportStore';
import { useModelStore } from '../modelStore';
import { modelLabel } from '../compareStore';
import { ConfirmButton } from '../components/ConfirmButton';
import { Lineage } from '../components/Lineage';
import type { AdapterInfo } from '../worker/adapter-store';

/** The Export page: take adapters, merged models, datasets, recipes and whole projects out — and bring them in. */
export function ExportPage() {
  const model = useModelStore((s) => s.model);
  const refresh = useExportStore((s) => s.refresh);
  const busy = useExportStore((s) => s.busy);

  useEffect(() => {
    void refresh();
  }, [refresh, model]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Export</h1>
      <p className="lead">
        Download what you made — the LoRA adapter in PEFT format, the merged model, the datasets, a recipe to train at full scale on a cluster —
        or a project bundle that another browser can import (sources travel without their API keys).
      </p>
      <p className="hint" role="status" data-testid="export-busy">
        {busy ? `Working: ${busy.detail}…` : ''}
      </p>
      <AdaptersPanel />
      <ImportAdapterPanel />
      <DataPanel />
      <BundlePanel />
    </main>
  );
}

function Notice({ area }: { area: ExportNotice['area'] }) {
  const notice = useExportStore((s) => s.notice);
  if (!notice || notice.area !== area) return null;
  return notice.kind !== 'ok' ? (
    <p role="alert" className={`notice notice--${notice.kind}`} data-testid={`notice-${area}`}>
      {notice.text}
    </p>
  ) : (
    <p role="status" className="notice notice--ok" data-testid={`notice-${area}`}>
      {notice.text}
    </p>
  );
}

/** Says when the base model's name is unknown (a warning) or not usable (an error). */
function BaseModelStatus({ name }: { name: string }) {
  const model = useModelStore((s) => s.model);
  const status = baseModelStatus(name, model);
  if (!status) return null;
  return (
    <p role={status.kind === 'error' ? 'alert' : 'status'} className={`notice notice--${status.kind}`} data-testid="base-model-status">
      {status.text}
    </p>
  );
}

function AdaptersPanel() {
  const model = useModelStore((s) => s.model);
  const adapters = useExportStore((s) => s.adapters);
  const baseModel = useExportStore((s) => s.baseModel);
  const setBaseModel = useExportStore((s) => s.setBaseModel);
  const busy = useExportStore((s) => s.busy);
  const download = useExportStore((s) => s.downloadAdapter);
  const merged = useExportStore((s) => s.downloadMerged);
  const remove = useExportStore((s) => s.removeAdapter);
  const toFolder = useExportStore((s) => s.saveMergedToFolder);
  const canPickFolder = typeof (window as unknown as { showDirectoryPicker?: unknown }).showDirectoryPicker === 'function';
  return (
    <section className="card" aria-labelledby="adapters-title">
      <h2 id="adapters-title">Adapters</h2>
      {!model ? (
        <p className="notice">Load a model on the Model page to export its adapters.</p>
      ) : (
        <>
          <label className="field">
            <span>Base model name (written as base_model_name_or_path)</span>
            <input type="text" value={baseModel} onChange={(e) => setBaseModel(e.target.value)} spellCheck={false} autoComplete="off" />
          </label>
          <BaseModelStatus name={baseModel} />
          {adapters.length === 0 ? (
            <p className="muted">No adapters for this model yet: train one on the Train page, or import one below.</p>
          ) : (
            <div className="table-wrap">
              <table aria-label="Stored adapters" className="table--stack">
                <thead>
                  <tr>
                    <th scope="col">Adapter</th>
                    <th scope="col" className="num">Rank</th>
                    <th scope="col" className="num">Alpha</th>
                    <th scope="col">Made</th>
                    <th scope="col">Download</th>
                  </tr>
                </thead>
                <tbody>
                  {adapters.map((a) => (
                    <tr key={a.name}>
                      <th scope="row">
                        {modelLabel(a.name)} <code>{a.name}</code>
                      </th>
                      <td className="num" data-label="Rank">
                        {a.rank}
                      </td>
                      <td className="num" data-label="Alpha">
                        {a.alpha}
                      </td>
                      <td className="cell--wide">
                        {a.note} <span className="muted">{new Date(a.createdAt).toLocaleString()}</span>
                        <Lineage adapter={a} />
                      </td>
                      <td className="cell--wide">
                        <div className="actions export-actions">
                          <button type="button" className="button" disabled={Boolean(busy)} onClick={() => void download(a.name)} aria-label={`Download ${a.name} PEFT adapter`}>
                            PEFT adapter (.zip)
                          </button>
                          <button type="button" className="button button--secondary" disabled={Boolean(busy)} onClick={() => void merged(a.name)} aria-label={`Download ${a.name} merged model`}>
                            Merged model (bf16 .zip)
                          </button>
                          {canPickFolder && (
                            <button type="button" className="button button--secondary" disabled={Boolean(busy)} onClick={() => void toFolder(a.name)} aria-label={`Save ${a.name} merged model to a folder`}>
                              Merged model to a folder…
                            </button>
                          )}
                          <ConfirmButton
                            disabled={Boolean(busy)}
                            aria-label={`Remove ${a.name}`}
                            title={`Remove the adapter “${a.name}”?`}
                            body={<RemoveAdapterBody name={a.name} adapters={adapters} />}
                            confirmLabel="Remove adapter"
                            onConfirm={() => remove(a.name)}
                          >
                            Remove
                          </ConfirmButton>
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <p className="hint">
            The PEFT zip loads with <code>PeftModel.from_pretrained(base, folder)</code>. The merged model is the whole checkpoint with the adapter folded
            in, in bf16: as a zip up to about 4 GB (Llama-3.2-1B), or written straight into a folder you pick (any size).
          </p>
        </>
      )}
      <Notice area="adapters" />
    </section>
  );
}

function RemoveAdapterBody({ name, adapters }: { name: string; adapters: readonly AdapterInfo[] }) {
  const children = adapters.filter((a) => a.parent === name && !a.parentGone);
  return (
    <>
      <p>Its files are deleted from this browser; download its PEFT zip first to keep a copy.</p>
      {children.length > 0 && (
        <p>
          {children.map((c) => `“${c.name}”`).join(', ')} continue{children.length === 1 ? 's' : ''} it: {children.length === 1 ? 'it stays' : 'they stay'}, shown as
          continuing an adapter that is no longer stored.
        </p>
      )}
    </>
  );
}

function ImportAdapterPanel() {
  const model = useModelStore((s) => s.model);
  const busy = useExportStore((s) => s.busy);
  const importAdapter = useExportStore((s) => s.importAdapter);
  const [name, setName] = useState('imported');
  const [files, setFiles] = useState<File[]>([]);
  const input = useRef<HTMLInputElement>(null);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void importAdapter(name, files).then(() => {
      if (useExportStore.getState().notice?.kind !== 'error') {
        setFiles([]);
        if (input.current) input.current.value = '';
      }
    });
  };
  return (
    <section className="card" aria-labelledby="import-adapter-title">
      <h2 id="import-adapter-title">Import a PEFT adapter</h2>
      <p className="hint">
        A LoRA adapter trained elsewhere (PEFT, TRL, LLaMA-Factory, Unsloth…) for the loaded model: its zip, or its <code>adapter_config.json</code> and{' '}
        <code>adapter_model.safetensors</code>. It is checked against the model and then appears on the Compare page.
      </p>
      <form onSubmit={submit} className="form-grid">
        <label className="field">
          <span>Adapter name</span>
          <input type="text" value={name} onChange={(e) => setName(e.target.value)} spellCheck={false} autoComplete="off" />
        </label>
        <label className="field">
          <span>Adapter files</span>
          <input ref={input} type="file" multiple accept=".zip,.json,.safetensors" onChange={(e) => setFiles([...(e.target.files ?? [])])} />
        </label>
        <div className="actions">
          <button type="submit" className="button" disabled={Boolean(busy) || !model || !files.length || !name.trim()}>
            Import adapter
          </button>
        </div>
      </form>
      {!model && <p className="hint">Load the base model on the Model page first.</p>}
      <Notice area="import-adapter" />
    </section>
  );
}

function DataPanel() {
  const artifacts = useExportStore((s) => s.artifacts);
  const busy = useExportStore((s) => s.busy);
  const datasets = useExportStore((s) => s.downloadDatasets);
  const recipe = useExportStore((s) => s.downloadRecipe);
  return (
    <section className="card" aria-labelledby="data-title">
      <h2 id="data-title">Datasets and scale-out recipe</h2>
      {artifacts.length ? (
        <p>
          The Data page’s run has: {artifacts.map((a, i) => <span key={a}>{i ? ', ' : ''}<code>{a}</code></span>)}.
        </p>
      ) : (
        <p className="muted">The Data page has not built any datasets yet.</p>
      )}
      <div className="actions">
        <button type="button" className="button" disabled={Boolean(busy) || !artifacts.length} onClick={() => void datasets()}>
          Datasets (.zip)
        </button>
        <button type="button" className="button button--secondary" disabled={Boolean(busy) || !artifacts.length} onClick={() => void recipe()}>
          Scale-out recipe (.zip)
        </button>
      </div>
      <p className="hint">
        The recipe trains the same data with the same hyperparameters on a GPU cluster: TRL + accelerate/DeepSpeed and LLaMA-Factory configs, SFT then DPO, for the
        base model named above.
      </p>
      <Notice area="data" />
    </section>
  );
}

function BundlePanel() {
  const busy = useExportStore((s) => s.busy);
  const download = useExportStore((s) => s.downloadBundle);
  const importBundle = useExportStore((s) => s.importBundle);
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  return (
    <section className="card" aria-labelledby="bundle-title">
      <h2 id="bundle-title">Project bundle</h2>
      <p className="hint">
        One zip with the project: model spec, sources (never their API keys), settings and training configs, the datasets and the adapters. Prepare one for a
        workshop; each laptop imports it (after loading the same base model, for the adapters).
      </p>
      <div className="actions">
        <button type="button" className="button" disabled={Boolean(busy)} onClick={() => void download()}>
          Download project bundle
        </button>
      </div>
      <form
        className="form-grid"
        onSubmit={(e) => {
          e.preventDefault();
          if (file)
            void importBundle(file).then(() => {
              setFile(null);
              if (input.current) input.current.value = '';
            });
        }}
      >
        <label className="field">
          <span>Bundle file</span>
          <input ref={input} type="file" accept=".zip" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </label>
        <div className="actions">
          <button type="submit" className="button button--secondary" disabled={Boolean(busy) || !file}>
            Import bundle
          </button>
        </div>
      </form>
      <Notice area="bundle" />
    </section>
  );
}
