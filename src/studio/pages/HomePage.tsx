import { useEffect, useMemo } from 'react';
import { formatBytes } from '../../model/memory-plan';
import { downloadSize, formatDownload, PRESET_ROLES, PRESETS, presetById, type ModelPreset, type PresetRole } from '../../model/presets';
import { HF_ENDPOINT } from '../../model/source';
import { deviceLimits, useModelStore } from '../modelStore';
import { navigateTo, onLinkClick } from '../navigation';
import { presetVerdicts, type PresetVerdict } from '../planAdvice';

// The models a newcomer starts on: real, small, ungated instruct models.
const STARTERS = ['smollm2-135m', 'qwen2.5-0.5b'];

const ROLE_SHORT: Record<PresetRole, string> = { target: 'fine-tune', source: 'source', reward: 'reward model' };

/** The first page: what the studio does, what this device can run, and where to start. */
export function HomePage() {
  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Make a small model better, in this tab</h1>
      <p className="lead">
        Fuse Studio fine-tunes a small language model on your own GPU, inside the browser, by teaching it from the answers of stronger
        models. It follows the FuseChat-3.0 recipe, one step per page; nothing is uploaded anywhere except the prompts you send to the
        models you choose to ask.
      </p>
      <div className="home-grid">
        <Recipe />
        <Start />
      </div>
      <DeviceFit />
    </main>
  );
}

function Recipe() {
  return (
    <section className="card" aria-labelledby="recipe-title">
      <h2 id="recipe-title">How it works</h2>
      <ol className="recipe-steps">
        <li>
          <strong>Model.</strong> Load the small model you want to improve (the <em>target</em>).
        </li>
        <li>
          <strong>Sources.</strong> Add stronger models to learn from: any OpenAI-compatible service, or a model on your own machine.
        </li>
        <li>
          <strong>Data.</strong> Give it prompts. Every source answers each prompt a few times; a judge scores the answers (math is
          checked against the right answer, code against its tests). The best answer of each prompt goes into the SFT set; the best and
          worst answer of one source become a DPO pair.
        </li>
        <li>
          <strong>Train.</strong> First SFT (imitate the best answers), then DPO (prefer the better of each pair). Only small LoRA adapters
          are trained; the model’s own weights stay as they are.
        </li>
        <li>
          <strong>Evaluate and compare.</strong> Ask the original and the tuned model the same question and read the answers side by side,
          or vote blind.
        </li>
        <li>
          <strong>Export.</strong> Take the adapter (PEFT format), a merged model or the datasets to other tools.
        </li>
      </ol>
      <p className="hint">
        The recipe is FuseChat-3.0’s (
        <a href="https://arxiv.org/abs/2503.04222" target="_blank" rel="noopener noreferrer">
          arXiv 2503.04222
        </a>
        ), scaled down to what a tab can do: tens or hundreds of prompts instead of 158,000.
      </p>
    </section>
  );
}

function useVerdicts(): { verdicts: Map<string, PresetVerdict>; ready: boolean; error: string | null } {
  const settings = useModelStore((s) => s.planSettings);
  const device = useModelStore((s) => s.device);
  const loadDevice = useModelStore((s) => s.loadDevice);
  useEffect(() => {
    void loadDevice();
  }, [loadDevice]);
  const verdicts = useMemo(() => presetVerdicts({ seq: settings.seq, rank: settings.rank }, deviceLimits(device.adapter, settings.memoryGiB)), [settings, device.adapter]);
  return { verdicts, ready: device.adapter !== null, error: device.error };
}

function Start() {
  const load = useModelStore((s) => s.load);
  const loadPreset = useModelStore((s) => s.loadPreset);
  const loadModel = useModelStore((s) => s.loadModel);
  const hub = useModelStore((s) => s.hubEndpoint);
  const { verdicts } = useVerdicts();
  const busy = load.kind === 'loading';
  const starters = STARTERS.map((id) => presetById(id)!).filter(Boolean);
  const start = (fn: () => Promise<void>) => {
    void fn();
    // The Model page shows the download and the load, and what the model is once loaded.
    navigateTo('/model');
  };
  return (
    <section className="card" aria-labelledby="start-title">
      <h2 id="start-title">Start here</h2>
      <h3>With a real small model</h3>
      <p className="hint">
        Downloaded once from {hub === HF_ENDPOINT ? 'huggingface.co' : hub} into this browser’s cache (no account needed), then it runs here.
      </p>
      <ul className="starter-list">
        {starters.map((p) => {
          const v = verdicts.get(p.id)!;
          const size = formatDownload(downloadSize(p).bytes);
          return (
            <li key={p.id} className="starter" data-preset={p.id}>
              <button type="button" className="button" disabled={busy} onClick={() => start(() => loadPreset(p.id))} aria-label={`Start with ${p.name} (${size} download)`}>
                Start with {p.name}
              </button>
              <span className="muted">
                ≈ {size} download · training needs {formatBytes(v.needed)} · {v.fits ? 'fits this device' : 'may not fit this device'}
              </span>
            </li>
          );
        })}
      </ul>
      <h3>Or offline, with the demo model</h3>
      <div className="notice notice--warn" data-testid="demo-warning">
        <p>
          <strong>The demo model is random: it writes noise.</strong> It is made in your browser in a second, with a real tokenizer and
          random weights, so every step works offline, but its answers, scores and training curves mean nothing.
        </p>
      </div>
      <div className="actions">
        <button type="button" className="button button--secondary" disabled={busy} onClick={() => start(() => loadModel({ kind: 'demo' }))}>
          Start with the demo model (no download)
        </button>
      </div>
      <p className="hint">
        Any other model: a Hugging Face repo, a URL or a folder on{' '}
        <a href="/model" onClick={onLinkClick('/model')}>
          the Model page
        </a>
        .
      </p>
    </section>
  );
}

function DeviceFit() {
  const settings = useModelStore((s) => s.planSettings);
  const device = useModelStore((s) => s.device);
  const { verdicts, ready, error } = useVerdicts();
  const limits = deviceLimits(device.adapter, settings.memoryGiB);
  const a = device.adapter;
  return (
    <section className="card" aria-labelledby="fit-title">
      <h2 id="fit-title">What this device can run</h2>
      <p data-testid="home-device">
        {a ? (
          <>
            GPU: <strong>{a.description || [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unnamed adapter'}</strong>
            {a.isFallback && ' (a CPU fallback: everything works, slowly)'} · largest buffer binding {formatBytes(limits.maxStorageBufferBindingSize)}
            {limits.memoryBytes !== null && ` · ${settings.memoryGiB} GiB of GPU memory stated`}.
          </>
        ) : error ? (
          <span className="notice notice--error">
            No WebGPU here ({error}): the studio needs it to run a model. See{' '}
            <a href="/gpu" onClick={onLinkClick('/gpu')}>
              GPU status
            </a>{' '}
            for what to do.
          </span>
        ) : (
          'Asking the GPU for its limits…'
        )}
      </p>
      <p className="hint">
        Each model’s memory plan is computed from its config before anything is downloaded: training a LoRA step at {settings.seq} tokens, rank{' '}
        {settings.rank}; generating; or scoring. {limits.memoryBytes === null && 'WebGPU does not say how much memory the GPU has: state it on the Model page to check the totals too.'}
      </p>
      {ready && (
        <div className="table-wrap">
          <table className="fit-table table--stack" aria-label="Models on this device">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Use</th>
                <th scope="col" className="num">
                  Download
                </th>
                <th scope="col" className="num">
                  Needs
                </th>
                <th scope="col">Here</th>
              </tr>
            </thead>
            <tbody>
              {PRESET_ROLES.flatMap((role) => PRESETS.filter((p) => p.role === role)).map((p) => (
                <FitRow key={p.id} preset={p} verdict={verdicts.get(p.id)!} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function FitRow({ preset: p, verdict: v }: { preset: ModelPreset; verdict: PresetVerdict }) {
  return (
    <tr data-preset={p.id}>
      <th scope="row">{p.name}</th>
      <td>{ROLE_SHORT[p.role]}</td>
      <td className="num" data-label="Download">
        {formatDownload(downloadSize(p).bytes)}
      </td>
      <td className="num" data-label="Needs" title={v.what}>
        {formatBytes(v.needed)}
      </td>
      <td data-testid="fit-verdict" className={v.fits ? 'fit fit--ok cell--wide' : 'fit fit--bad cell--wide'}>
        {v.fits ? 'fits' : 'does not fit'}
        {!v.fits && (
          <small className="fit-why">
            <span className="sr-only">: </span>
            {v.problems.join('; ')}
            {v.instead && `. Instead: ${v.instead.name}`}
          </small>
        )}
      </td>
    </tr>
  );
}
