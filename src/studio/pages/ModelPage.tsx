import { useEffect, useMemo, useState, type DragEvent, type FormEvent } from 'react';
import type { Progress } from '../../io/progress';
import type { QuantDType } from '../../gpu/quant';
import { FAMILIES } from '../../model/families';
import type { LoadProgress } from '../../model/load';
import { formatBytes } from '../../model/memory-plan';
import { describeTensorDTypes } from '../../model/weight-layout';
import { HF_ENDPOINT } from '../../model/source';
import { planVerdict } from '../planAdvice';
import { filesFromDataTransfer } from '../../model/source-browser';
import { deviceLimits, MAX_NEW_TOKENS, TRY_SAMPLING, useModelStore, type ModelSummary } from '../modelStore';
import { Markdown } from '../components/Markdown';
import { ConfirmButton } from '../components/ConfirmButton';
import { ClassroomPanel } from './ClassroomPanel';
import { PlanSettingsPanel, PresetPanel } from './ModelPresets';

type DirectoryPicker = (opts?: { mode?: 'read' }) => Promise<FileSystemDirectoryHandle>;

function directoryPicker(): DirectoryPicker | null {
  const w = window as unknown as { showDirectoryPicker?: DirectoryPicker };
  return typeof w.showDirectoryPicker === 'function' ? w.showDirectoryPicker.bind(window) : null;
}

/** The Model page: pick a model, load it onto the GPU, see what it is and whether it can be trained here. */
export function ModelPage() {
  const load = useModelStore((s) => s.load);
  const model = useModelStore((s) => s.model);
  const refreshCache = useModelStore((s) => s.refreshCache);

  useEffect(() => {
    void refreshCache();
  }, [refreshCache]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Model</h1>
      <p className="lead">
        Choose the model to fine-tune (or to ask, or to score with): a preset, the built-in demo model (made in your browser, works
        offline), any Hugging Face repo or URL (downloaded once into this browser’s cache), or a folder on your computer.
      </p>
      <LoadStatus />
      <ClassroomPanel />
      <PlanSettingsPanel />
      <PresetPanel busy={load.kind === 'loading'} />
      <ChooseModel busy={load.kind === 'loading'} />
      {model && load.kind !== 'loading' && (
        <>
          <div className="grid">
            <ModelCard model={model} />
            <MemoryPlanPanel model={model} />
          </div>
          <TryIt model={model} />
        </>
      )}
      <CachePanel />
    </main>
  );
}

function ChooseModel({ busy }: { busy: boolean }) {
  const loadModel = useModelStore((s) => s.loadModel);
  const hub = useModelStore((s) => s.hubEndpoint);
  const [spec, setSpec] = useState('');
  const [token, setToken] = useState('');
  const [dragging, setDragging] = useState(false);
  const [quant, setQuant] = useState<QuantDType | null>(null);
  const picker = directoryPicker();

  const submitRemote = (e: FormEvent) => {
    e.preventDefault();
    if (spec.trim()) void loadModel({ kind: 'remote', spec: spec.trim(), token: token.trim() || undefined, endpoint: hub === HF_ENDPOINT ? undefined : hub, quant });
  };
  const pickFolder = async () => {
    if (!picker) return;
    let handle: FileSystemDirectoryHandle;
    try {
      handle = await picker({ mode: 'read' });
    } catch {
      return; // the user closed the picker
    }
    void loadModel({ kind: 'directory', handle, quant });
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (busy) return;
    // filesFromDataTransfer reads the entries synchronously, while the drop event is live.
    void filesFromDataTransfer(e.dataTransfer).then((files) => {
      if (files.length) void loadModel({ kind: 'files', files, quant });
    });
  };

  return (
    <section className="card" aria-labelledby="choose-title">
      <h2 id="choose-title">Or choose any model</h2>
      <label className="field">
        <span>Weights on the GPU</span>
        <select data-testid="choose-weights" value={quant ?? 'none'} onChange={(e) => setQuant(e.target.value === 'none' ? null : (e.target.value as QuantDType))}>
          <option value="none">as in the file (bf16, f16 or f32)</option>
          <option value="int8">int8: about half of bf16</option>
          <option value="int4">int4: about a third of bf16</option>
        </select>
        <small className="field-hint">
          Quantized on load (projections int8/int4 with an f16 scale per 32 weights, embedding int8); a downloaded model keeps the quantized copy in the browser
          cache, so the next load reads only that. The presets above show each choice’s plan.
        </small>
      </label>
      <div className="choose-grid">
        <div>
          <h3>Built-in demo</h3>
          <p className="hint">A tiny random Llama 3.2-shaped model with the real tokenizer. It talks nonsense, fast.</p>
          <button type="button" className="button" disabled={busy} onClick={() => void loadModel({ kind: 'demo', quant })}>
            Load demo model
          </button>
        </div>
        <form onSubmit={submitRemote} aria-labelledby="remote-title">
          <h3 id="remote-title">Hugging Face repo or URL</h3>
          <label className="field">
            <span>Repo id or URL</span>
            <input
              type="text"
              value={spec}
              onChange={(e) => setSpec(e.target.value)}
              placeholder="org/name, a URL, or a preset such as qwen2.5-0.5b"
              spellCheck={false}
              autoComplete="off"
            />
          </label>
          <label className="field">
            <span>Access token (optional, for gated repos)</span>
            <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" placeholder="hf_…" />
          </label>
          <button type="submit" className="button" disabled={busy || !spec.trim()}>
            Load from URL
          </button>
        </form>
        <div>
          <h3>Local folder</h3>
          {picker ? (
            <button type="button" className="button" disabled={busy} onClick={() => void pickFolder()}>
              Choose folder…
            </button>
          ) : (
            <p className="hint">This browser has no folder picker: drop the folder below.</p>
          )}
          <div
            className={dragging ? 'dropzone dropzone--active' : 'dropzone'}
            role="region"
            aria-label="Drop a model folder here"
            onDragOver={(e) => {
              e.preventDefault();
              setDragging(true);
            }}
            onDragLeave={() => setDragging(false)}
            onDrop={onDrop}
          >
            Drop a model folder (config.json, *.safetensors, tokenizer.json) here
          </div>
        </div>
      </div>
    </section>
  );
}

function seconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '—';
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.ceil(s % 60)} s`;
}

function percent(p: Progress): number {
  return p.total ? Math.min(100, Math.round((p.loaded / p.total) * 100)) : 0;
}

function ProgressLine({ label, p }: { label: string; p: Progress }) {
  const pct = percent(p);
  return (
    <div className="progress-line">
      <label>
        <span>
          {label}: <code>{p.label}</code> — {pct}%
        </span>
        <progress max={100} value={pct} aria-label={label}>
          {pct}%
        </progress>
      </label>
      <p className="hint">
        {formatBytes(p.loaded)}
        {p.total !== null && ` of ${formatBytes(p.total)}`} · {formatBytes(Math.max(0, p.rate))}/s · ETA {seconds(p.etaSeconds)}
      </p>
    </div>
  );
}

function ProgressBlock({ progress, done }: { progress: LoadProgress; done: boolean }) {
  const phase = progress.phase === 'download' ? 'Download' : 'Upload to GPU';
  return (
    <>
      <ProgressLine label={`${done ? 'Loaded' : phase} overall`} p={progress.overall} />
      <ProgressLine label="Current file" p={progress.file} />
    </>
  );
}

function LoadStatus() {
  const load = useModelStore((s) => s.load);
  const model = useModelStore((s) => s.model);
  const cancel = useModelStore((s) => s.cancel);
  if (load.kind === 'idle') return null;
  if (load.kind === 'error')
    return (
      <section role="alert" className="card card--error" aria-labelledby="load-error-title">
        <h2 id="load-error-title">The model could not be loaded</h2>
        <p data-testid="load-error">{load.message}</p>
        <p data-testid="still-loaded">
          {model ? `Still loaded: ${model.source}. Nothing was lost, and you can go on using it.` : 'No model is loaded now.'}
        </p>
      </section>
    );
  return (
    <section className="card" aria-labelledby="load-title">
      <h2 id="load-title">Loading</h2>
      <p role="status">{load.kind === 'loading' ? load.stage : 'Model loaded (100%).'}</p>
      {load.progress && <ProgressBlock progress={load.progress} done={load.kind === 'loaded'} />}
      {load.kind === 'loading' && (
        <button type="button" className="button button--secondary" onClick={cancel}>
          Cancel
        </button>
      )}
    </section>
  );
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

function ModelCard({ model }: { model: ModelSummary }) {
  const c = model.config;
  const traits = [c.qkvBias && 'q/k/v biases', c.qkNorm && 'q/k norm', c.slidingWindow !== null && `sliding window ${c.slidingWindow.toLocaleString('en-US')}`].filter(Boolean);
  const facts: [string, string][] = [
    ['Source', model.source],
    ['Architecture', `${FAMILIES[c.family].architectures[c.head]}${traits.length ? ` (${traits.join(', ')})` : ''}`],
    ['Parameters', formatCount(model.params)],
    ['Layers', String(c.numLayers)],
    ['Hidden size', String(c.hiddenSize)],
    ['Attention heads / KV heads', `${c.numHeads} / ${c.numKvHeads} (head dim ${c.headDim})`],
    ['MLP size', String(c.intermediateSize)],
    ['Vocabulary', c.vocabSize.toLocaleString('en-US')],
    ['Checkpoint dtype', c.dtype ?? 'unknown'],
    [
      'Weights on GPU',
      model.quant
        ? `${model.quant} projections, int8 embedding, ${model.weightDType} norms${model.quantCache === 'read' ? ' (read from the quantized cache)' : model.quantCache === 'written' ? ' (quantized now, cached for the next load)' : ''}`
        : model.tensorDTypes
          ? `GGUF blocks as stored: ${describeTensorDTypes(model.tensorDTypes)}`
          : model.weightDType,
    ],
    ['Tied embeddings', c.tieWordEmbeddings ? 'yes' : 'no'],
    ['Context length', c.maxPositionEmbeddings.toLocaleString('en-US')],
    ['Tokenizer', model.hasTokenizer ? 'yes' : 'none (generation unavailable)'],
  ];
  return (
    <section className="card" aria-labelledby="card-title">
      <h2 id="card-title">Model card</h2>
      <dl className="facts" aria-label="Architecture">
        {facts.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function MemoryPlanPanel({ model }: { model: ModelSummary }) {
  const { seq, rank, memoryGiB } = useModelStore((s) => s.planSettings);
  const limits = deviceLimits(model.adapter, memoryGiB);
  const binding = limits.maxStorageBufferBindingSize;
  const memoryBytes = limits.memoryBytes;
  const result = useMemo(() => {
    try {
      return { verdict: planVerdict(model.config, model.weightDType, { seq, rank }, deviceLimits(model.adapter, memoryGiB), model.quant, model.tensorDTypes ?? undefined), error: null };
    } catch (e) {
      return { verdict: null, error: e instanceof Error ? e.message : String(e) };
    }
  }, [model, seq, rank, memoryGiB]);
  const verdict = result.verdict;
  const plan = verdict?.plan ?? null;
  return (
    <section className="card" aria-labelledby="plan-title">
      <h2 id="plan-title">Memory plan for LoRA training</h2>
      <p className="hint">
        Sequence length {seq}, LoRA rank {rank}, GPU memory {memoryBytes === null ? 'not stated' : `${memoryGiB} GiB`}: change them under{' '}
        <a href="#plan-settings">Plan against this device</a>.
      </p>
      {result.error && <p className="notice notice--error">{result.error}</p>}
      {verdict && plan && (
        <>
          <dl className="facts">
            <div>
              <dt>Training step (batch 1)</dt>
              <dd data-testid="plan-training">{formatBytes(plan.training)}</dd>
            </div>
            <div>
              <dt>Weights</dt>
              <dd>{formatBytes(plan.bytes.weights)}</dd>
            </div>
            <div>
              <dt>Activations and gradients</dt>
              <dd>{formatBytes(plan.bytes.savedLayerInputs + plan.bytes.layerActivations + plan.bytes.layerGradients + plan.bytes.lmHead)}</dd>
            </div>
            <div>
              <dt>Largest tensor</dt>
              <dd>
                {formatBytes(plan.largestTensor.bytes)} <code>{plan.largestTensor.name}</code>
              </dd>
            </div>
            <div>
              <dt>Device binding limit</dt>
              <dd>{formatBytes(binding)}</dd>
            </div>
          </dl>
          <div className={verdict.fits ? 'notice' : 'notice notice--error'} data-testid="plan-verdict">
            {verdict.fits ? (
              <p>
                Fits this device{memoryBytes === null ? '’s buffer limits' : ''}: a training step needs about {formatBytes(plan.training)} of GPU memory.
                {model.adapter.isFallback && ' This adapter is a CPU fallback: expect it to be slow.'}
              </p>
            ) : (
              <>
                <p>Does not fit: {verdict.problems.join('; ')}.</p>
                <p>
                  What would fit: <span data-testid="plan-alternatives">{verdict.alternatives.join('; or ')}</span>.
                </p>
              </>
            )}
          </div>
          {memoryBytes === null && <p className="hint">WebGPU does not report total GPU memory: state what your GPU has free above to check the training figure against it.</p>}
        </>
      )}
    </section>
  );
}

function TryIt({ model }: { model: ModelSummary }) {
  const generation = useModelStore((s) => s.generation);
  const run = useModelStore((s) => s.generate);
  const stop = useModelStore((s) => s.stopGeneration);
  const newChat = useModelStore((s) => s.newChat);
  const [prompt, setPrompt] = useState('Write one sentence about the sea.');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(prompt);
    setPrompt('');
  };
  const g = generation;
  const shown = g.running ? [...g.turns, { user: g.prompt, assistant: g.text }] : g.turns;
  const demo = model.modelKey === 'demo';
  return (
    <section className="card" aria-labelledby="try-title">
      <h2 id="try-title">Try it</h2>
      <p className="hint">
        A chat with the loaded model through its own chat template (the base model, no adapter): sampled at temperature {TRY_SAMPLING.temperature}, top-p{' '}
        {TRY_SAMPLING.topP}, seed {TRY_SAMPLING.seed}, at most {MAX_NEW_TOKENS} new tokens. {demo && 'The demo model is random: expect noise.'}
      </p>
      {shown.length > 0 && (
        <ol className="chat-log" aria-label="Conversation">
          {shown.map((t, k) => {
            const last = k === shown.length - 1;
            return (
              <li key={k}>
                <p className="chat-user">
                  <strong>You:</strong> {t.user}
                </p>
                <div className="chat-model" data-testid={last ? 'generated' : undefined} aria-live={last ? 'polite' : undefined}>
                  {t.assistant ? <Markdown text={t.assistant} /> : <span className="muted">{g.running && last ? '…' : '(an empty reply)'}</span>}
                </div>
              </li>
            );
          })}
        </ol>
      )}
      <form onSubmit={submit} className="try-form">
        <label className="field">
          <span>Message</span>
          <textarea rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <div className="actions">
          <button type="submit" className="button" disabled={g.running || !model.hasTokenizer || !prompt.trim()}>
            Send
          </button>
          <button type="button" className="button button--secondary" disabled={!g.running} onClick={stop}>
            Stop
          </button>
          <button type="button" className="button button--secondary" disabled={g.running || g.turns.length === 0} onClick={newChat}>
            New chat
          </button>
        </div>
      </form>
      {!model.hasTokenizer && <p className="hint">This model has no tokenizer, so it cannot generate text.</p>}
      <p className="hint" data-testid="generation-status" role="status">
        {g.running ? `Generating… ${g.tokens} tokens` : g.tokens ? `${g.tokens} tokens generated. The prompt, through the chat template, was ${g.promptTokens} tokens.` : ''}
      </p>
      {g.templated !== null && !g.running && (
        <details className="templated">
          <summary>The prompt as the model read it</summary>
          <pre data-testid="templated-prompt">{g.templated}</pre>
        </details>
      )}
      {g.error && (
        <p role="alert" className="notice notice--error">
          {g.error}
        </p>
      )}
    </section>
  );
}

function CachePanel() {
  const cache = useModelStore((s) => s.cache);
  const model = useModelStore((s) => s.model);
  const free = useModelStore((s) => s.freeCached);
  return (
    <section className="card" aria-labelledby="cache-title">
      <h2 id="cache-title">Cached models</h2>
      <p className="hint">
        Downloaded models stay in this browser ({cache.kind === 'opfs' ? 'Origin Private File System' : cache.kind === 'cache-storage' ? 'Cache Storage' : '…'}) so
        they load without the network next time.
      </p>
      {cache.error && <p className="notice notice--error">{cache.error}</p>}
      {cache.entries.length === 0 ? (
        <p className="muted">No models cached.</p>
      ) : (
        <ul className="cache-list" aria-label="Cached models">
          {cache.entries.map((m) => (
            <li key={m.id}>
              <code>{m.id}</code>
              <span className="num">{formatBytes(m.bytes)}</span>
              <ConfirmButton
                aria-label={`Free ${m.id}`}
                title={`Free ${m.id} from the cache?`}
                body={
                  <p>
                    Its {formatBytes(m.bytes)} of downloaded files are deleted from this browser. Loading it again downloads them again
                    {model?.cacheId === m.id ? '; the loaded copy on the GPU stays usable until you load another model' : ''}.
                  </p>
                }
                confirmLabel="Free"
                onConfirm={() => free(m.id)}
              >
                Free
              </ConfirmButton>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
