import { useEffect, useId, useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, ErrorBar, Rectangle, ReferenceLine, Tooltip, XAxis, YAxis, type BarShapeProps } from 'recharts';
import { DEFAULT_PAIRWISE_PROMPT } from '../../eval/pairwise-judge';
import { reportMarkdown } from '../../eval/report';
import { ConfirmButton } from '../components/ConfirmButton';
import { NumberField, ProgressBar } from '../components/fields';
import { Markdown } from '../components/Markdown';
import { RawText } from '../components/RawText';
import { judgeChoice, useEvalStore } from '../evalStore';
import { barCharts, evalModelLabel, exportFileName, formatDuration, pairRows, resultsTable, thinEvidence, type BarChartSpec, type EvalItemView } from '../evalView';
import { useModelStore } from '../modelStore';
import { onLinkClick } from '../navigation';
import { useSourcesStore } from '../sourcesStore';
import type { EvalSummary } from '../worker/eval-runs';

/**
 * Evaluate: base vs each adapter on held-out prompts, with numbers and their uncertainty. The
 * page picks what to measure and shows what the engine worker measured (src/eval/run.ts); it
 * computes nothing itself beyond the wording of the report.
 */
export function EvaluatePage() {
  const model = useModelStore((s) => s.model);
  const refresh = useEvalStore((s) => s.refresh);
  const error = useEvalStore((s) => s.error);
  const evaluations = useEvalStore((s) => s.evaluations);
  const currentId = useEvalStore((s) => s.currentId);
  const current = evaluations.find((e) => e.evalId === currentId) ?? null;

  useEffect(() => {
    void refresh(model?.modelKey ?? null);
  }, [refresh, model]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Evaluate</h1>
      <p className="lead">
        Did it help? Measure the base model and its adapters on prompts they were not trained on — with the same prompts, chat template, greedy decoding, seed and
        token limit for each — and see every number with its 95% interval, so a difference is not read into noise.
      </p>
      {error && (
        <p role="alert" className="notice notice--error">
          {error}
        </p>
      )}
      {!model ? (
        <p className="notice" data-testid="eval-no-model">
          Load a model on the{' '}
          <a href="/model" onClick={onLinkClick('/model')}>
            Model page
          </a>{' '}
          to evaluate it; stored evaluations are listed below.
        </p>
      ) : (
        <SetupPanel />
      )}
      {current && <RunPanel run={current} />}
      {current?.report && <ReportPanel run={current} />}
      {current && <ItemsPanel run={current} />}
      <HistoryPanel />
    </main>
  );
}

const TIERS = [
  { key: 'losses', label: 'Losses and preference accuracy', hint: 'No judge: held-out SFT loss and perplexity; how often each model prefers the chosen answer of a held-out DPO pair.' },
  { key: 'checkable', label: 'Checkable answers', hint: 'Math answers against their gold answer, code against its tests (greedy, pass@1), with an exact McNemar test per pair of models.' },
  { key: 'judge', label: 'Pairwise judge', hint: 'The judge set on the Sources page compares two models’ answers to the same prompt; a chat judge sees both orders.' },
  { key: 'choices', label: 'Forgetting guard (multiple choice)', hint: 'Each option scored by log-likelihood; a drop here means the tuning cost general knowledge.' },
] as const;

function SetupPanel() {
  const form = useEvalStore((s) => s.form);
  const adapters = useEvalStore((s) => s.adapters);
  const heldOut = useEvalStore((s) => s.heldOut);
  const dataFile = useEvalStore((s) => s.dataFile);
  const choicesFile = useEvalStore((s) => s.choicesFile);
  const activeId = useEvalStore((s) => s.activeId);
  const { setForm, toggleModel, setDataFile, setChoicesFile, start } = useEvalStore.getState();
  const judgeSettings = useSourcesStore((s) => s.judge);
  const entries = useSourcesStore((s) => s.entries);
  const judge = useMemo(() => judgeChoice(form.judgePrompt), [form.judgePrompt, judgeSettings, entries]); // eslint-disable-line react-hooks/exhaustive-deps
  const dataId = useId();
  const choicesId = useId();
  const promptId = useId();
  const readFile = async (f: File | undefined, setter: (v: { name: string; text: string } | null) => void) => setter(f ? { name: f.name, text: await f.text() } : null);
  const judgeSettingsBlock = (
    <>
      {form.tiers.judge && (
        <p className={'problem' in judge ? 'notice notice--warn' : 'hint'} data-testid="eval-judge">
          {'problem' in judge ? judge.problem : `Judge: ${judge.judge.label}.`}{' '}
          <a href="/sources" onClick={onLinkClick('/sources')}>
            Sources page
          </a>
        </p>
      )}
      {form.tiers.judge && 'judge' in judge && judge.judge.spec.type === 'judge' && (
        <details>
          <summary>Pairwise judge prompt</summary>
          <div className="field">
            <label htmlFor={promptId}>
              <span>Judge prompt</span>
            </label>
            <textarea id={promptId} rows={8} value={form.judgePrompt ?? DEFAULT_PAIRWISE_PROMPT} onChange={(e) => setForm({ judgePrompt: e.target.value === DEFAULT_PAIRWISE_PROMPT ? null : e.target.value })} />
            <p className="hint">
              It asks for reasoning, then a final verdict on its own line: <code>[[A]]</code>, <code>[[B]]</code> or <code>[[C]]</code> for a tie (MT-Bench’s format).{' '}
              {form.judgePrompt !== null && (
                <button type="button" className="button button--secondary" onClick={() => setForm({ judgePrompt: null })}>
                  Restore the default
                </button>
              )}
            </p>
          </div>
        </details>
      )}
    </>
  );

  return (
    <section className="card eval-setup" aria-labelledby="eval-setup-title">
      <h2 id="eval-setup-title">What to evaluate</h2>
      <fieldset className="train-fieldset">
        <legend>Models</legend>
        <label className="inline-check">
          <input type="checkbox" checked={form.models.includes('base')} onChange={() => toggleModel('base')} />
          Base <span className="muted">(no adapter)</span>
        </label>
        {adapters.map((a) => (
          <label key={a.name} className="inline-check">
            <input type="checkbox" checked={form.models.includes(a.name)} onChange={() => toggleModel(a.name)} />
            {evalModelLabel(a.name)}{' '}
            <span className="muted">
              ({a.kind === 'imported' ? 'imported' : a.kind.toUpperCase()}
              {a.parent ? `, continues ${a.parent}` : ''})
            </span>
          </label>
        ))}
        {adapters.length === 0 && <p className="hint">No adapters yet: train one on the Train page or import one on the Export page to compare it with the base.</p>}
      </fieldset>

      <fieldset className="train-fieldset">
        <legend>Held-out data</legend>
        <label className="radio-option">
          <input type="radio" name="eval-data" checked={form.data === 'heldout'} onChange={() => setForm({ data: 'heldout' })} />
          <span>
            The Data page’s held-out split{' '}
            <span className="muted">({heldOut ? `${heldOut.prompts} prompts, ${heldOut.sft} SFT rows, ${heldOut.dpo} DPO pairs` : 'none set aside'})</span>
          </span>
        </label>
        <label className="radio-option">
          <input type="radio" name="eval-data" checked={form.data === 'file'} onChange={() => setForm({ data: 'file' })} />
          An EVAL.jsonl file
        </label>
        {form.data === 'file' && (
          <div className="field">
            <label htmlFor={dataId}>
              <span>EVAL.jsonl file</span>
            </label>
            <input id={dataId} type="file" accept=".jsonl,.json,application/jsonl,text/plain" onChange={(e) => void readFile(e.target.files?.[0], setDataFile)} />
            <p className="hint">
              One JSON object a line: prompt rows <code>{'{"prompt", "domain", "gold", "tests"}'}</code>, SFT records, DPO records or multiple-choice rows{' '}
              <code>{'{"prompt", "choices": [...], "answer": i}'}</code>. {dataFile ? `Chosen: ${dataFile.name}.` : ''}
            </p>
          </div>
        )}
      </fieldset>

      <fieldset className="train-fieldset">
        <legend>Tiers</legend>
        {TIERS.map((t) => (
          <div key={t.key}>
            <label className="inline-check">
              <input type="checkbox" checked={form.tiers[t.key]} onChange={(e) => setForm({ tiers: { ...form.tiers, [t.key]: e.target.checked } })} />
              {t.label}
            </label>
            <p className="hint">{t.hint}</p>
            {t.key === 'judge' && judgeSettingsBlock}
          </div>
        ))}
        {form.tiers.choices && (
          <div className="eval-choices">
            <label className="radio-option">
              <input type="radio" name="eval-choices" checked={form.choices === 'builtin'} onChange={() => setForm({ choices: 'builtin' })} />
              <span>
                The built-in example <span className="muted">(a few questions showing the format: bring your own for a real guard)</span>
              </span>
            </label>
            <label className="radio-option">
              <input type="radio" name="eval-choices" checked={form.choices === 'file'} onChange={() => setForm({ choices: 'file' })} />
              A multiple-choice JSONL file
            </label>
            {form.choices === 'file' && (
              <div className="field">
                <label htmlFor={choicesId}>
                  <span>Multiple-choice file</span>
                </label>
                <input id={choicesId} type="file" accept=".jsonl,.json,application/jsonl,text/plain" onChange={(e) => void readFile(e.target.files?.[0], setChoicesFile)} />
                <p className="hint">{choicesFile ? `Chosen: ${choicesFile.name}.` : 'Rows {"prompt", "choices": [...], "answer": index}.'}</p>
              </div>
            )}
          </div>
        )}
      </fieldset>

      <div className="form-grid form-grid--numbers">
        <NumberField label="Max new tokens" value={form.maxNewTokens} min={1} max={4096} integer onChange={(v) => v !== undefined && setForm({ maxNewTokens: v })} hint="per answer, the same for every model" />
        <NumberField label="Seed" value={form.seed} min={0} max={2 ** 31 - 1} integer onChange={(v) => v !== undefined && setForm({ seed: v })} hint="decoding is greedy" />
      </div>
      <div className="actions">
        <button type="button" className="button" disabled={activeId !== null} onClick={() => void start()}>
          Start evaluation
        </button>
      </div>
    </section>
  );
}

const STATUS_WORD: Record<EvalSummary['status'], string> = { running: 'running', completed: 'completed', cancelled: 'cancelled', error: 'failed' };

function RunPanel({ run }: { run: EvalSummary }) {
  const activeId = useEvalStore((s) => s.activeId);
  const { cancel, resume } = useEvalStore.getState();
  const model = useModelStore((s) => s.model);
  const live = activeId === run.evalId;
  const interrupted = run.status === 'running' && !live;
  const status = interrupted ? 'interrupted' : STATUS_WORD[run.status];
  const p = run.progress;
  const eta = formatDuration(p?.etaSeconds);
  const canResume = (interrupted || run.status === 'cancelled' || run.status === 'error') && model?.modelKey === run.modelKey && activeId === null;
  return (
    <section className="card" aria-labelledby="eval-run-title" data-testid="eval-run">
      <h2 id="eval-run-title">
        Evaluation of {run.settings.models.map(evalModelLabel).join(', ')} — {status}
      </h2>
      <p className="hint">
        {run.settings.dataLabel}
        {run.itemsHash ? ` · items sha256 ${run.itemsHash.slice(0, 12)}…` : ''} · max {run.settings.maxNewTokens} new tokens, greedy, seed {run.settings.seed}
        {run.settings.judgeLabel ? ` · judge ${run.settings.judgeLabel}` : ''}
        {run.settings.choicesLabel ? ` · multiple choice: ${run.settings.choicesLabel}` : ''}
      </p>
      {p && run.status !== 'completed' && (
        <div data-testid="eval-progress">
          <ProgressBar label={p.phase} value={p.done} max={p.total}>
            {live ? (eta ? `ETA ${eta}` : 'ETA: measuring…') : interrupted ? 'Stopped when the tab closed; finished items are kept.' : null}
          </ProgressBar>
        </div>
      )}
      {p && p.reused > 0 && (
        <p className="hint" data-testid="eval-reused">
          {p.reused} finished result{p.reused === 1 ? ' was' : 's were'} found stored and kept; {p.computed} computed in this run. Nothing finished is redone.
        </p>
      )}
      {run.error && (
        <p className="notice notice--error" role="alert">
          {run.error}
        </p>
      )}
      {run.warnings.length > 0 && (
        <ul className="notice notice--warn" aria-label="Warnings">
          {run.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
      {interrupted && (
        <p className="notice notice--warn" data-testid="eval-interrupted">
          This evaluation was interrupted{p ? ` at ${p.done} of ${p.total} (${p.phase})` : ''}. Resuming keeps every finished item and does the rest.
          {model?.modelKey !== run.modelKey ? ` Load the model “${run.modelKey}” first.` : ''}
        </p>
      )}
      <div className="actions">
        {live && (
          <button type="button" className="button button--secondary" onClick={() => void cancel()}>
            Cancel
          </button>
        )}
        {canResume && (
          <button type="button" className="button" onClick={() => void resume(run.evalId)}>
            Resume evaluation
          </button>
        )}
      </div>
    </section>
  );
}

function download(name: string, text: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function ReportPanel({ run }: { run: EvalSummary }) {
  const report = run.report!;
  const { columns, rows } = useMemo(() => resultsTable(report), [report]);
  const pairs = useMemo(() => pairRows(report), [report]);
  const charts = useMemo(() => barCharts(report), [report]);
  const thin = useMemo(() => thinEvidence(report), [report]);
  const notes = rows.flatMap((r) => columns.filter((c) => r.cells[c.id].why).map((c) => ({ key: `${r.model}-${c.id}`, text: `${r.label}, ${c.label}: ${r.cells[c.id].why}` })));
  return (
    <section className="card" aria-labelledby="eval-report-title" data-testid="eval-report">
      <h2 id="eval-report-title">Results</h2>
      {thin.map((t) => (
        <p key={t} className="notice notice--warn" data-testid="eval-thin">
          {t}
        </p>
      ))}
      <div className="table-wrap">
        <table aria-label="Evaluation results" className="table--stack eval-table">
          <thead>
            <tr>
              <th scope="col">Model</th>
              {columns.map((c) => (
                <th key={c.id} scope="col" title={c.description}>
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.model}>
                <th scope="row">{r.label}</th>
                {columns.map((c) => {
                  const cell = r.cells[c.id];
                  return (
                    <td key={c.id} data-label={c.label}>
                      <span className="eval-num">{cell.text}</span>
                      {cell.detail && <span className="eval-ci">{cell.detail}</span>}
                      {cell.note && <span className={cell.note.startsWith('not') ? 'badge badge--warn' : 'badge badge--pass'}>{cell.note}</span>}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <dl className="eval-legend">
        {columns.map((c) => (
          <div key={c.id}>
            <dt>{c.label}</dt>
            <dd>{c.description}</dd>
          </div>
        ))}
      </dl>
      {notes.length > 0 && (
        <ul className="eval-why" aria-label="Why significant or not">
          {notes.map((n) => (
            <li key={n.key}>{n.text}</li>
          ))}
        </ul>
      )}
      {pairs.length > 0 && (
        <>
          <h3>Model against model</h3>
          <ul className="eval-pairs" aria-label="Pairwise comparisons">
            {pairs.map((p) => (
              <li key={`${p.a}-${p.b}`}>
                <strong>{p.title}</strong>
                <ul>
                  {p.lines.map((l) => (
                    <li key={l.label}>
                      {l.label}: {l.text} — <span className={l.significant ? 'badge badge--pass' : 'badge badge--warn'}>{l.significant ? 'significant' : 'not significant'}</span>{' '}
                      <span className="muted">{l.why}</span>
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
        </>
      )}
      {charts.length > 0 && (
        <div className="train-charts">
          {charts.map((c) => (
            <IntervalChart key={c.id} spec={c} />
          ))}
        </div>
      )}
      <div className="actions">
        <button type="button" className="button button--secondary" onClick={() => download(exportFileName(run.modelKey, run.createdAt, 'json'), JSON.stringify(report, null, 2) + '\n', 'application/json')}>
          Export JSON
        </button>
        <button type="button" className="button button--secondary" onClick={() => download(exportFileName(run.modelKey, run.createdAt, 'md'), reportMarkdown(report), 'text/markdown')}>
          Export Markdown
        </button>
      </div>
    </section>
  );
}

function IntervalChart({ spec }: { spec: BarChartSpec }) {
  const data = spec.points.map((p) => ({ ...p, name: p.label }));
  return (
    <figure className="train-chart" aria-label={`${spec.title} chart`}>
      <figcaption>
        <strong>{spec.title}</strong> <span className="muted">bars: the value; whiskers: its 95% interval</span>
      </figcaption>
      <BarChart responsive style={{ width: '100%', height: 220 }} data={data} margin={{ top: 10, right: 16, bottom: 4, left: 2 }}>
        <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" vertical={false} />
        <XAxis dataKey="name" tick={{ fontSize: 12 }} interval={0} height={30} />
        <YAxis domain={[0, 100]} ticks={[0, 25, 50, 75, 100]} tickFormatter={(v: number) => `${v}%`} width={48} tick={{ fontSize: 11 }} />
        <Tooltip formatter={(v) => `${Number(v).toFixed(1)}%`} />
        {spec.reference !== null && <ReferenceLine y={spec.reference} stroke="var(--muted)" strokeDasharray="4 4" />}
        {/* A shape of its own keeps a 0% bar in the chart (recharts drops zero-height bars, and their whiskers with them). */}
        <Bar dataKey="value" fill="var(--accent)" isAnimationActive={false} maxBarSize={64} shape={(p: BarShapeProps) => <Rectangle {...p} />}>
          <ErrorBar dataKey="error" width={10} strokeWidth={2} stroke="var(--text)" direction="y" isAnimationActive={false} />
        </Bar>
      </BarChart>
    </figure>
  );
}

function ItemsPanel({ run }: { run: EvalSummary }) {
  const items = useEvalStore((s) => s.items);
  const [markdown, setMarkdown] = useState(true);
  if (!items || items.length === 0) return null;
  return (
    <section className="card" aria-labelledby="eval-items-title" data-testid="eval-items">
      <h2 id="eval-items-title">Answers, item by item</h2>
      <label className="inline-check">
        <input type="checkbox" checked={markdown} onChange={(e) => setMarkdown(e.target.checked)} />
        Show answers as Markdown (sanitised; off: the raw text)
      </label>
      <ol className="eval-items">
        {items.map((item) => (
          <ItemView key={item.itemId} item={item} models={run.settings.models} markdown={markdown} />
        ))}
      </ol>
    </section>
  );
}

function ItemView({ item, models, markdown }: { item: EvalItemView; models: string[]; markdown: boolean }) {
  return (
    <li className="eval-item" aria-label={`Item ${item.line}`}>
      <p>
        <strong>Line {item.line}</strong> <span className="muted">({item.domain}{item.gold !== undefined ? `, gold ${item.gold}` : ''})</span>
        {item.duplicate && <span className="badge badge--warn"> repeats a training prompt</span>}
      </p>
      <RawText text={item.prompt} label={`Prompt of line ${item.line}`} />
      <div className="eval-answers">
        {models.map((m) => {
          const a = item.answers.find((x) => x.model === m);
          return (
            <div key={m} className="eval-answer" data-testid={`answer-${item.itemId}-${m}`}>
              <h4>
                {evalModelLabel(m)}
                {a?.check && <span className={a.check.ok ? 'badge badge--pass' : 'badge badge--warn'}> {a.check.label}</span>}
              </h4>
              {!a ? (
                <p className="muted">not answered yet</p>
              ) : markdown && a.text.trim() !== '' ? (
                <Markdown text={a.text} />
              ) : (
                <RawText text={a.text} label={`${evalModelLabel(m)}’s answer`} />
              )}
            </div>
          );
        })}
      </div>
      {item.verdicts.length > 0 && (
        <ul className="eval-verdicts" aria-label={`Verdicts of line ${item.line}`}>
          {item.verdicts.map((v) => (
            <li key={`${v.a}-${v.b}`}>
              {evalModelLabel(v.b)} vs {evalModelLabel(v.a)}: <strong>{v.summary}</strong>
              {v.details.length > 0 && (
                <details>
                  <summary>The judge’s replies</summary>
                  {v.details.map((d, k) => (
                    <div key={k}>
                      <p className="hint">{d.title}</p>
                      <RawText text={d.text} label={d.title} />
                    </div>
                  ))}
                </details>
              )}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

function HistoryPanel() {
  const evaluations = useEvalStore((s) => s.evaluations);
  const currentId = useEvalStore((s) => s.currentId);
  const activeId = useEvalStore((s) => s.activeId);
  const { select, remove } = useEvalStore.getState();
  if (evaluations.length === 0) return null;
  return (
    <section className="card" aria-labelledby="eval-history-title">
      <h2 id="eval-history-title">Stored evaluations</h2>
      <div className="table-wrap">
        <table aria-label="Stored evaluations" className="table--stack">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Model</th>
              <th scope="col">Compared</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {evaluations.map((e) => (
              <tr key={e.evalId} aria-current={e.evalId === currentId || undefined}>
                <th scope="row">{new Date(e.createdAt).toLocaleString()}</th>
                <td data-label="Model">{e.modelKey}</td>
                <td data-label="Compared">{e.settings.models.map(evalModelLabel).join(', ')}</td>
                <td data-label="Status">{e.status === 'running' && e.evalId !== activeId ? 'interrupted' : STATUS_WORD[e.status]}</td>
                <td>
                  <div className="actions">
                    <button type="button" className="button button--secondary" disabled={e.evalId === currentId} onClick={() => void select(e.evalId)}>
                      Show
                    </button>
                    <ConfirmButton
                      title="Remove this evaluation?"
                      body="Its report and every stored answer and verdict are deleted from this browser."
                      confirmLabel="Remove"
                      disabled={e.evalId === activeId}
                      aria-label={`Remove the evaluation of ${new Date(e.createdAt).toLocaleString()}`}
                      onConfirm={() => void remove(e.evalId)}
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
    </section>
  );
}
