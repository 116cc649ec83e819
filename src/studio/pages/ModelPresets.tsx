// The Model page's presets (src/model/presets.ts): each with its download size and its memory plan
// checked against this device before anything is downloaded, grouped by role; and the settings
// every plan on the page is checked against.
import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { formatBytes } from '../../model/memory-plan';
import { downloadSize, formatDownload, PRESET_ROLES, PRESETS, ROLE_LABELS, type ModelPreset, type PresetRole } from '../../model/presets';
import type { FamilyName } from '../../model/families';
import { HF_ENDPOINT } from '../../model/source';
import { describeWeightsOption, presetVerdicts, presetWeightsAdvice, RANK_CHOICES, SEQ_CHOICES, type PresetVerdict, type WeightsAdvice, type WeightsChoice } from '../planAdvice';
import { checkHubEndpoint, deviceLimits, useModelStore } from '../modelStore';

const FAMILY_LABELS: Record<FamilyName, string> = { llama: 'Llama', mistral: 'Mistral', qwen2: 'Qwen2', qwen3: 'Qwen3' };
const WORK_LABELS: Record<PresetRole, string> = { target: 'Training step', source: 'Generation', reward: 'Scoring' };

function NumberChoice({ label, value, choices, onChange }: { label: string; value: number; choices: readonly number[]; onChange: (n: number) => void }) {
  return (
    <label className="field">
      <span>{label}</span>
      <select value={value} onChange={(e) => onChange(Number(e.target.value))}>
        {choices.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </label>
  );
}

/** What every plan on the page is checked against: the GPU, the stated memory, sequence length and rank, the Hub. */
export function PlanSettingsPanel() {
  const settings = useModelStore((s) => s.planSettings);
  const setSettings = useModelStore((s) => s.setPlanSettings);
  const device = useModelStore((s) => s.device);
  const loadDevice = useModelStore((s) => s.loadDevice);
  const hub = useModelStore((s) => s.hubEndpoint);
  const setHub = useModelStore((s) => s.setHubEndpoint);
  const [hubText, setHubText] = useState(hub);
  const [hubError, setHubError] = useState<string | null>(null);

  useEffect(() => {
    void loadDevice();
  }, [loadDevice]);

  const limits = deviceLimits(device.adapter, settings.memoryGiB);
  const saveHub = (e?: FormEvent) => {
    e?.preventDefault();
    const r = checkHubEndpoint(hubText);
    if ('error' in r) {
      setHubError(r.error);
      return;
    }
    setHubError(null);
    setHubText(r.endpoint);
    setHub(r.endpoint);
  };

  return (
    <section className="card" aria-labelledby="plan-settings-title" id="plan-settings">
      <h2 id="plan-settings-title">Plan against this device</h2>
      <p className="hint" data-testid="device-line">
        {device.adapter
          ? `GPU: ${device.adapter.description || [device.adapter.vendor, device.adapter.architecture].filter(Boolean).join(' ') || 'unnamed adapter'}${device.adapter.isFallback ? ' (a CPU fallback: slow)' : ''} · largest buffer binding ${formatBytes(limits.maxStorageBufferBindingSize)}.`
          : device.error
            ? `No GPU adapter (${device.error}); plans use WebGPU’s default limits (${formatBytes(limits.maxStorageBufferBindingSize)} per binding).`
            : 'Asking the GPU for its limits…'}{' '}
        WebGPU does not report total GPU memory: say what yours has free to check every plan against it; a training run also keeps its step’s activations in it when they fit instead of recomputing them.
      </p>
      <div className="plan-settings">
        <NumberChoice label="Sequence length" value={settings.seq} choices={SEQ_CHOICES} onChange={(seq) => setSettings({ seq })} />
        <NumberChoice label="LoRA rank" value={settings.rank} choices={RANK_CHOICES} onChange={(rank) => setSettings({ rank })} />
        <label className="field">
          <span>GPU memory free (GiB, optional)</span>
          <input type="number" min={0} step={0.5} value={settings.memoryGiB} onChange={(e) => setSettings({ memoryGiB: e.target.value })} placeholder="unknown" />
        </label>
        <form className="hub-form" onSubmit={saveHub}>
          <label className="field">
            <span>Download from (Hub address)</span>
            <input
              type="url"
              value={hubText}
              onChange={(e) => setHubText(e.target.value)}
              onBlur={() => saveHub()}
              placeholder={HF_ENDPOINT}
              spellCheck={false}
              aria-invalid={hubError ? true : undefined}
              aria-describedby="hub-hint"
            />
            <small className="field-hint" id="hub-hint">
              {hubError ?? (hub === HF_ENDPOINT ? 'huggingface.co, or a mirror (a classroom’s, or any HF_ENDPOINT).' : `Presets and repo ids download from ${hub}.`)}
            </small>
          </label>
        </form>
      </div>
    </section>
  );
}

/** The presets by role, each with its size and verdict; loading one asks nothing but the button. */
export function PresetPanel({ busy }: { busy: boolean }) {
  const settings = useModelStore((s) => s.planSettings);
  const adapter = useModelStore((s) => s.device.adapter);
  const verdicts = useMemo(
    () => presetVerdicts({ seq: settings.seq, rank: settings.rank }, deviceLimits(adapter, settings.memoryGiB)),
    [settings, adapter],
  );
  return (
    <section className="card" aria-labelledby="presets-title">
      <h2 id="presets-title">Presets: no token needed</h2>
      <p className="hint">
        Each plan is computed from the model’s config.json before anything is downloaded. Download sizes are approximate: parameters × 2 bytes
        (bfloat16) plus the tokenizer. Llama 3.2 comes from unsloth’s ungated copy; Meta’s gated repo is offered beside it.
      </p>
      {PRESET_ROLES.map((role) => (
        <section key={role} aria-labelledby={`presets-${role}`} className="preset-group">
          <h3 id={`presets-${role}`}>{ROLE_LABELS[role]}</h3>
          <ul className="preset-list" aria-label={ROLE_LABELS[role]}>
            {PRESETS.filter((p) => p.role === role).map((p) => (
              <PresetCard
                key={p.id}
                preset={p}
                verdict={verdicts.get(p.id)!}
                verdictOf={(id) => verdicts.get(id)!}
                weights={p.role === 'target' ? presetWeightsAdvice(p, { seq: settings.seq, rank: settings.rank }, deviceLimits(adapter, settings.memoryGiB)) : null}
                busy={busy}
              />
            ))}
          </ul>
        </section>
      ))}
    </section>
  );
}

/**
 * bf16 / int8 / int4 for a target preset: each one's plan, download and cache; the default fits.
 * Folded to the chosen one (every target card lists three choices, which made the page very long
 * on a phone); the summary says which is chosen and whether it fits.
 */
function WeightsFieldset({ id, advice, selected, onSelect }: { id: string; advice: WeightsAdvice; selected: WeightsChoice; onSelect: (q: WeightsChoice) => void }) {
  const chosen = advice.options.find((o) => o.quant === selected) ?? advice.options.find((o) => o.quant === advice.recommended)!;
  return (
    <details className="preset-weights" data-testid="preset-weights">
      <summary>
        Weights on the GPU: <strong data-testid="preset-weights-chosen">{chosen.label}</strong>
        {chosen.quant === advice.recommended ? ' (default)' : ''}
        {chosen.fits ? '' : ' — does not fit'} · {advice.options.length} choices
      </summary>
      <fieldset className="preset-source">
        <legend className="sr-only">Weights on the GPU</legend>
        {advice.options.map((o) => (
          <label className="radio-option" key={o.label}>
            <input type="radio" name={`${id}-weights`} checked={selected === o.quant} onChange={() => onSelect(o.quant)} />
            <span>
              {describeWeightsOption(o)}
              {o.quant === advice.recommended ? ' (default)' : ''}
              {o.fits ? '' : ' — does not fit'}
            </span>
          </label>
        ))}
        <small className="field-hint" data-testid="preset-weights-reason">
          Default {advice.options.find((o) => o.quant === advice.recommended)!.label}: {advice.reason} int8/int4 keep the projections quantized (an f16 scale per 32 weights) and the
          embedding int8; adapters trained on them are ordinary adapters of the full-precision model.
        </small>
      </fieldset>
    </details>
  );
}

function PresetCard({
  preset: p,
  verdict: base,
  verdictOf,
  weights,
  busy,
}: {
  preset: ModelPreset;
  verdict: PresetVerdict;
  verdictOf: (id: string) => PresetVerdict;
  weights: WeightsAdvice | null;
  busy: boolean;
}) {
  const loadPreset = useModelStore((s) => s.loadPreset);
  const memoryStated = useModelStore((s) => s.planSettings.memoryGiB.trim() !== '');
  const [official, setOfficial] = useState(false);
  const [token, setToken] = useState('');
  // undefined: follow the advice as the settings change; a click pins the choice.
  const [picked, setPicked] = useState<WeightsChoice | undefined>(undefined);
  const quant = weights ? (picked === undefined ? weights.recommended : picked) : null;
  const option = weights?.options.find((o) => o.quant === quant);
  // The verdict of the chosen weights (a quantized base that fits needs no alternatives).
  const v: PresetVerdict = option && option.quant ? { ...base, needed: option.needed, fits: option.fits, problems: option.problems, alternatives: option.fits ? [] : base.alternatives, instead: option.fits ? null : base.instead } : base;
  const size = downloadSize(p);
  const titleId = `preset-${p.id}`;
  const load = (id: string) => {
    void loadPreset(id, { ...(official && id === p.id ? { official: true, token } : {}), quant: id === p.id ? quant : null });
    // The progress (or the error) shows at the top of the page.
    window.scrollTo({ top: 0, behavior: 'smooth' });
  };
  const repo = official ? p.gatedOfficial! : p.repo;
  return (
    <li className="preset-card" aria-labelledby={titleId} data-preset={p.id}>
      <div className="preset-head">
        <h4 id={titleId}>{p.name}</h4>
        {official ? <span className="badge badge--warn">Gated: token</span> : <span className="badge badge--pass">No token needed</span>}
      </div>
      <p className="preset-meta">
        {FAMILY_LABELS[p.family]}
        {p.role === 'reward' ? ' reward model' : ''} · <code>{p.id}</code>
      </p>
      <dl className="preset-facts">
        <div>
          <dt>Download</dt>
          <dd data-testid="preset-size" title={size.basis}>
            ≈ {formatDownload(size.bytes)}
          </dd>
        </div>
        <div>
          <dt title={v.what}>{WORK_LABELS[p.role]}</dt>
          <dd data-testid="preset-needs">{formatBytes(v.needed)}</dd>
        </div>
      </dl>
      {weights && <WeightsFieldset id={p.id} advice={weights} selected={quant} onSelect={setPicked} />}
      {p.gatedOfficial && (
        <fieldset className="preset-source">
          <legend>Download from</legend>
          <label className="radio-option">
            <input type="radio" name={`${p.id}-source`} checked={!official} onChange={() => setOfficial(false)} />
            <span>
              <code>{p.repo}</code> (mirror, no token)
            </span>
          </label>
          <label className="radio-option">
            <input type="radio" name={`${p.id}-source`} checked={official} onChange={() => setOfficial(true)} />
            <span>
              <code>{p.gatedOfficial}</code> (official, gated)
            </span>
          </label>
          {official && (
            <label className="field">
              <span>Hugging Face token for {p.gatedOfficial}</span>
              <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" placeholder="hf_…" />
              <small className="field-hint">Accept Meta’s license on the repo’s page first. The token is sent to the Hub only, and not kept.</small>
            </label>
          )}
        </fieldset>
      )}
      <div className={v.fits ? 'preset-verdict preset-verdict--ok' : 'preset-verdict preset-verdict--bad'} data-testid="preset-verdict">
        {v.fits ? (
          <p>{memoryStated ? `Fits: ${v.what} needs ${formatBytes(v.needed)}.` : 'Fits this device’s buffer limits.'}</p>
        ) : (
          <>
            <p>Does not fit: {v.problems.join('; ')}.</p>
            {(v.alternatives.length > 0 || v.instead) && (
              <p data-testid="preset-alternatives">
                What would fit: {[...v.alternatives, ...(v.instead ? [`${v.instead.name} (${formatBytes(verdictOf(v.instead.id).needed)})`] : [])].join('; or ')}.
              </p>
            )}
          </>
        )}
      </div>
      <div className="preset-actions">
        {v.fits ? (
          <button type="button" className="button" disabled={busy || (official && !token.trim())} onClick={() => load(p.id)} aria-label={`Load ${p.name} from ${repo}`}>
            Load ({formatDownload(size.bytes)})
          </button>
        ) : (
          <>
            {v.instead ? (
              <button type="button" className="button" disabled={busy} onClick={() => load(v.instead!.id)}>
                Load {v.instead.name} instead (fits)
              </button>
            ) : (
              <span className="muted">No preset of this kind fits: state more memory, or use a bigger GPU.</span>
            )}
            <button type="button" className="button button--secondary" disabled={busy || (official && !token.trim())} onClick={() => load(p.id)} aria-label={`Load ${p.name} anyway`}>
              Load anyway
            </button>
          </>
        )}
      </div>
    </li>
  );
}
