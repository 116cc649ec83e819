// Small labelled form controls shared by the studio pages (every control has a visible label,
// so it is reachable by keyboard and by getByLabel in tests).

import { useId, useState, type ReactNode } from 'react';

/** A number input that keeps what is typed and commits only valid numbers (blank → `empty`). */
export function NumberField({
  label,
  value,
  onChange,
  min,
  max,
  step,
  integer,
  optional,
  hint,
}: {
  label: string;
  value: number | undefined;
  onChange: (v: number | undefined) => void;
  min?: number;
  max?: number;
  step?: number | 'any';
  integer?: boolean;
  /** Blank is allowed and means "not set". */
  optional?: boolean;
  hint?: string;
}) {
  const id = useId();
  const [text, setText] = useState(value === undefined ? '' : String(value));
  const [seen, setSeen] = useState(value);
  // A value changed from outside (a preset) replaces the text.
  if (seen !== value) {
    setSeen(value);
    if (Number(text) !== value || (value === undefined && text !== '')) setText(value === undefined ? '' : String(value));
  }
  const parsed = text.trim() === '' ? undefined : Number(text);
  const invalid =
    (parsed === undefined && !optional) ||
    (parsed !== undefined && (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed)) || (min !== undefined && parsed < min) || (max !== undefined && parsed > max)));
  return (
    <div className="field">
      <label htmlFor={id}>
        <span>{label}</span>
      </label>
      <input
        id={id}
        type="number"
        inputMode={integer ? 'numeric' : 'decimal'}
        value={text}
        min={min}
        max={max}
        step={step ?? (integer ? 1 : 'any')}
        aria-invalid={invalid || undefined}
        aria-describedby={hint ? `${id}-hint` : undefined}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          const v = t.trim() === '' ? undefined : Number(t);
          const ok =
            (v === undefined && optional) ||
            (v !== undefined && Number.isFinite(v) && (!integer || Number.isInteger(v)) && (min === undefined || v >= min) && (max === undefined || v <= max));
          if (ok) {
            setSeen(v);
            onChange(v);
          }
        }}
      />
      {hint && (
        <small className="field-hint" id={`${id}-hint`}>
          {hint}
        </small>
      )}
    </div>
  );
}

/** A secret (API key) input, masked unless revealed with the toggle; never autofilled. */
export function SecretField({ label, value, onChange, placeholder }: { label: string; value: string; onChange: (v: string) => void; placeholder?: string }) {
  const [shown, setShown] = useState(false);
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>
        <span>{label}</span>
      </label>
      <div className="secret-row">
        <input
          id={id}
          type={shown ? 'text' : 'password'}
          value={value}
          onChange={(e) => onChange(e.target.value)}
          autoComplete="off"
          spellCheck={false}
          placeholder={placeholder}
          data-1p-ignore
        />
        <button
          type="button"
          className="chip"
          aria-pressed={shown}
          aria-label={shown ? 'Hide key' : 'Show key'}
          onClick={() => setShown((s) => !s)}
        >
          {shown ? 'Hide' : 'Show'}
        </button>
      </div>
    </div>
  );
}

/** A labelled progress bar with a line of figures under it. */
export function ProgressBar({ label, value, max, children }: { label: string; value: number; max: number; children?: ReactNode }) {
  const pct = max > 0 ? Math.min(100, Math.round((value / max) * 100)) : 0;
  return (
    <div className="progress-line">
      <label>
        <span>
          {label} — {value} / {max} ({pct}%)
        </span>
        <progress max={Math.max(max, 1)} value={Math.min(value, Math.max(max, 1))} aria-label={label}>
          {pct}%
        </progress>
      </label>
      {children && <p className="hint">{children}</p>}
    </div>
  );
}
