import { useEffect, useMemo, useRef, useState, type CSSProperties, type FormEvent, type MouseEvent } from 'react';
import type { Override } from '../../data/construct';
import { ARTIFACTS } from '../../data/pipeline';
import { DOMAINS, type Domain, type Prompt } from '../../data/prompts';
import { Markdown } from '../components/Markdown';
import { NumberField, ProgressBar } from '../components/fields';
import { RawText } from '../components/RawText';
import { ConfirmButton } from '../components/ConfirmButton';
import { DEFAULT_PROMPT_TOKEN_LIMIT, longPromptsOf, runPrompts, useDataStore, type ImportEntry } from '../dataStore';
import { HF_EXAMPLE, importSummary, runPlanCounts } from '../importView';
import { useModelStore } from '../modelStore';
import {
  EMPTY_MAPPING,
  evalPercentOf,
  formatCount,
  formatSeconds,
  groupResponses,
  heldOutPrompts,
  mappingFromForm,
  MIN_PROMPTS_FOR_EVAL,
  promptOutcome,
  REASON_TEXT,
  reportRows,
  verdictLine,
  type MappingForm,
  type ResponseView,
} from '../dataView';
import { buildJudgeSpec, pipelineSources, useSourcesStore } from '../sourcesStore';
import { pipelineLocalSources, useLocalSourcesStore } from '../localSources';
import type { LocalSourceProgress } from '../../data/local-source';

const PAGE_SIZE = 25;

/** In-app navigation (App routes on popstate), so a running job is not interrupted by a page load. */
function goToSources(e: MouseEvent<HTMLAnchorElement>) {
  if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  window.history.pushState(null, '', '/sources');
  window.dispatchEvent(new PopStateEvent('popstate'));
}

/** The Data page: prompts in, responses collected and scored, SFT and DPO sets out. */
export function DataPage() {
  const load = useDataStore((s) => s.load);
  const loaded = useDataStore((s) => s.loaded);
  useEffect(() => {
    void load();
  }, [load]);
  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Data</h1>
      <p className="lead">
        Import prompts, ask every source for answers, score them, and build the SFT set (best answer per prompt) and the DPO set
        (best vs worst answer of one source), following FuseChat-3.0. Everything is stored in this browser: a reload continues
        the run without asking again for stored answers.
      </p>
      {loaded ? (
        <>
          <ImportCard />
          <RunCard />
          <ReportCard />
          <BrowseCard />
        </>
      ) : (
        <p className="muted">Opening the run…</p>
      )}
    </main>
  );
}

// ---------------------------------------------------------------------------------------------
// Import

const MAPPING_LABELS: [keyof MappingForm, string][] = [
  ['prompt', 'Prompt column'],
  ['system', 'System column'],
  ['domain', 'Domain column'],
  ['gold', 'Gold answer column'],
  ['tests', 'Tests column'],
  ['id', 'Id column'],
];

function ImportCard() {
  const doc = useDataStore((s) => s.doc);
  const importing = useDataStore((s) => s.importing);
  const importError = useDataStore((s) => s.importError);
  const importFile = useDataStore((s) => s.importFile);
  const importHf = useDataStore((s) => s.importHf);
  const [domain, setDomain] = useState<Domain>('instruction');
  const [mapping, setMapping] = useState<MappingForm>(EMPTY_MAPPING);
  const [file, setFile] = useState<File | null>(null);
  const [fileKey, setFileKey] = useState(0);
  const [hf, setHf] = useState({ dataset: '', config: 'default', split: 'train', length: 100, token: '' });

  const submitFile = async (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    await importFile(file, { domain, mapping: mappingFromForm(mapping) });
    setFile(null);
    setFileKey((k) => k + 1);
  };
  const submitHf = (e: FormEvent) => {
    e.preventDefault();
    if (hf.dataset.trim())
      void importHf({ domain, mapping: mappingFromForm(mapping), dataset: hf.dataset.trim(), config: hf.config.trim(), split: hf.split.trim(), length: hf.length, token: hf.token.trim() || undefined });
  };
  const total = runPrompts(doc).length;

  return (
    <section className="card" aria-labelledby="import-title">
      <h2 id="import-title">1. Prompts</h2>
      <div className="form-grid">
        <label className="field">
          <span>Domain for this import</span>
          <select value={domain} onChange={(e) => setDomain(e.target.value as Domain)}>
            {DOMAINS.map((d) => (
              <option key={d} value={d}>
                {d}
              </option>
            ))}
          </select>
          <small className="field-hint">Rows with a domain column keep theirs. Math needs gold answers, code needs tests.</small>
        </label>
      </div>
      <details>
        <summary>Column mapping</summary>
        <p className="hint">Blank: detected (prompt, instruction, question…); “-”: none. Dotted paths reach into nested fields.</p>
        <div className="form-grid form-grid--numbers">
          {MAPPING_LABELS.map(([k, label]) => (
            <label key={k} className="field">
              <span>{label}</span>
              <input type="text" value={mapping[k]} onChange={(e) => setMapping({ ...mapping, [k]: e.target.value })} spellCheck={false} placeholder="auto" />
            </label>
          ))}
        </div>
      </details>
      <div className="choose-grid">
        <form onSubmit={(e) => void submitFile(e)} aria-labelledby="file-import-title">
          <h3 id="file-import-title">From a file</h3>
          <label className="field">
            <span>Prompt file (.jsonl, .json, .csv, .tsv, .parquet)</span>
            <input key={fileKey} type="file" accept=".jsonl,.ndjson,.json,.csv,.tsv,.parquet" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
          </label>
          <button type="submit" className="button" disabled={!file || importing}>
            Import file
          </button>
        </form>
        <form onSubmit={submitHf} aria-labelledby="hf-import-title">
          <h3 id="hf-import-title">From a Hugging Face dataset</h3>
          <label className="field">
            <span>Dataset id</span>
            <input type="text" value={hf.dataset} onChange={(e) => setHf({ ...hf, dataset: e.target.value })} placeholder="owner/name" spellCheck={false} />
          </label>
          <p className="hint">
            For example{' '}
            <button
              type="button"
              className="linklike"
              onClick={() => setHf({ ...hf, dataset: HF_EXAMPLE.dataset, config: HF_EXAMPLE.config, split: HF_EXAMPLE.split })}
              aria-label={`Use the example ${HF_EXAMPLE.dataset}, split ${HF_EXAMPLE.split}`}
            >
              {HF_EXAMPLE.dataset}
            </button>
            , split <code>{HF_EXAMPLE.split}</code> (UltraFeedback’s prompts, as FuseChat-3.0 used; it has no “train” split). A split that does not exist is
            answered with the ones there are.
          </p>
          <div className="form-grid form-grid--numbers">
            <label className="field">
              <span>Config</span>
              <input type="text" value={hf.config} onChange={(e) => setHf({ ...hf, config: e.target.value })} spellCheck={false} />
            </label>
            <label className="field">
              <span>Split</span>
              <input type="text" value={hf.split} onChange={(e) => setHf({ ...hf, split: e.target.value })} spellCheck={false} />
            </label>
            <label className="field">
              <span>Rows</span>
              <input type="number" min={1} value={hf.length} onChange={(e) => setHf({ ...hf, length: Math.max(1, Number(e.target.value) || 1) })} />
            </label>
          </div>
          <label className="field">
            <span>Access token (optional)</span>
            <input type="password" value={hf.token} onChange={(e) => setHf({ ...hf, token: e.target.value })} autoComplete="off" placeholder="hf_…" />
          </label>
          <button type="submit" className="button" disabled={!hf.dataset.trim() || importing}>
            Import from the Hub
          </button>
        </form>
      </div>
      {importing && <p role="status">Importing…</p>}
      {importError && (
        <p role="alert" className="notice notice--error" data-testid="import-error">
          {importError}
        </p>
      )}
      {doc && doc.imports.length > 0 && (
        <>
          <h3>
            Imported: {total} prompt{total === 1 ? '' : 's'}
          </h3>
          {doc.imports.map((imp) => (
            <ImportSummary key={imp.id} imp={imp} />
          ))}
        </>
      )}
    </section>
  );
}

function ImportSummary({ imp }: { imp: ImportEntry }) {
  const remove = useDataStore((s) => s.removeImport);
  const running = useDataStore((s) => s.job.running);
  const summary = importSummary({ rows: imp.rows, added: imp.prompts.length, errors: imp.errors, duplicates: imp.duplicates.length, skippedExisting: imp.skippedExisting });
  return (
    <div className="import-summary" role="group" aria-label={`Import ${imp.label}`}>
      <p>
        <strong>{imp.label}</strong> · {imp.domain} · <span data-testid="import-count">{imp.prompts.length} prompt(s)</span>{' '}
        <ConfirmButton
          className="chip chip--small"
          disabled={running}
          aria-label={`Remove import ${imp.label}`}
          title={`Remove the import “${imp.label}”?`}
          body={
            <p>
              Its {imp.prompts.length} prompt(s) leave the run. Responses already collected for them stay stored but are not used; importing the same rows
              again brings them back.
            </p>
          }
          confirmLabel="Remove import"
          onConfirm={() => remove(imp.id)}
        >
          Remove
        </ConfirmButton>
      </p>
      <p className={summary.partial ? 'notice notice--warn' : 'hint'} data-testid="import-summary">
        {summary.text}
      </p>
      {imp.errors.length > 0 && (
        <ul className="bad-rows" aria-label={`Bad rows in ${imp.label}`}>
          {imp.errors.slice(0, 50).map((e, k) => (
            <li key={k}>
              {e.line !== undefined ? `Line ${e.line}` : e.row > 0 ? `Row ${e.row}` : 'File'}: {e.message}
            </li>
          ))}
          {imp.errors.length > 50 && <li>… and {imp.errors.length - 50} more</li>}
        </ul>
      )}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Run

function RunCard() {
  const doc = useDataStore((s) => s.doc)!;
  const job = useDataStore((s) => s.job);
  const run = useDataStore((s) => s.run);
  const cancel = useDataStore((s) => s.cancel);
  const setUseSandbox = useDataStore((s) => s.setUseSandbox);
  const newRun = useDataStore((s) => s.newRun);
  const report = useDataStore((s) => s.report);
  const browse = useDataStore((s) => s.browse);
  const entries = useSourcesStore((s) => s.entries);
  const localEntries = useLocalSourcesStore((s) => s.entries);
  const judge = useSourcesStore((s) => s.judge);
  const sources = [...pipelineSources(entries), ...pipelineLocalSources(localEntries)];
  const judgeSpec = buildJudgeSpec(judge, entries);
  const prompts = runPrompts(doc);
  const hasCode = prompts.some((p) => p.domain === 'code');
  const interrupted = !job.running && (doc.status === 'running' || doc.status === 'stopped');
  // Every count over the same plan: source × prompt × its samples.
  const lengths = useDataStore((s) => s.lengths);
  const asked = useMemo(() => {
    if (!doc.skipLongPrompts) return prompts;
    const long = new Set(longPromptsOf(doc, lengths).map((l) => l.id));
    return prompts.filter((p) => !long.has(p.id));
  }, [doc, lengths, prompts]);
  const plan = runPlanCounts(sources, asked, browse.responses.map((r) => r.key), browse.errors.map((e) => e.key));

  return (
    <section className="card" aria-labelledby="run-title">
      <h2 id="run-title">2. Collect, score, build</h2>
      <p className="hint" data-testid="run-plan">
        Run <code>{doc.runId}</code>: {asked.length} prompt(s) × {sources.length} source(s) = {plan.planned} request(s)
        {plan.stored > 0 && `, ${plan.stored} of them already answered`}
        {plan.failed > 0 && `, ${plan.failed} failed before (asked again)`}
        {plan.outside > 0 && ` (${plan.outside} more response(s) stored from sources or prompts no longer in the run, not used)`}. Judge:{' '}
        {judgeSpec
          ? judgeSpec.type === 'judge'
            ? `rubric judge ${judgeSpec.judge.source.model}`
            : judgeSpec.type === 'reward'
              ? `reward model ${judgeSpec.reward.model}`
              : `local reward model ${judgeSpec.localReward.model}`
          : 'none'}.{' '}
        <a href="/sources" onClick={goToSources}>
          Change sources
        </a>
      </p>
      {sources.length === 0 && <p className="notice notice--warn">No usable source: add one on the Sources page (with a model), and enable it.</p>}
      <label className="inline-check">
        <input type="checkbox" checked={doc.useSandbox} onChange={(e) => void setUseSandbox(e.target.checked)} disabled={job.running} /> Run code prompts’ tests in a
        browser sandbox (JavaScript in a locked-down worker; Python with Pyodide)
      </label>
      {hasCode && !doc.useSandbox && <p className="hint">Without the sandbox, code prompts give no rows.</p>}
      <LongPrompts running={job.running} />
      <HoldOut prompts={asked} running={job.running} />
      <div className="actions">
        <button type="button" className="button" onClick={() => void run()} disabled={job.running || sources.length === 0 || prompts.length === 0}>
          {interrupted ? 'Resume run' : doc.status === 'done' ? 'Run again' : 'Run pipeline'}
        </button>
        {job.running && (
          <button type="button" className="button button--secondary" onClick={cancel}>
            Cancel
          </button>
        )}
        {!job.running && (
          <ConfirmButton
            title="Start a new data run?"
            body={
              <p>
                The new run keeps the imported prompts and asks every source again. This run’s {browse.responses.length} response(s), scores, hand edits and sets
                are no longer shown here (they stay in this browser’s storage, but the studio offers no way back to them): download its sets first to keep them.
              </p>
            }
            confirmLabel="Start a new run"
            onConfirm={newRun}
          >
            Start a new run
          </ConfirmButton>
        )}
        {report && !job.running && <span className="muted">Run again after editing to rebuild the sets: stored answers are reused.</span>}
      </div>
      {interrupted && !job.message && (
        <p className="notice notice--warn" role="status">
          This run was interrupted: resume it to continue where it stopped (stored responses are not requested again).
        </p>
      )}
      {job.skippedSources.length > 0 && (
        <div className="notice notice--warn" role="alert" data-testid="skipped-sources">
          <p>
            {job.skippedSources.length === 1 ? 'One source was' : `${job.skippedSources.length} sources were`} not asked, because {job.skippedSources.length === 1 ? 'it' : 'they'}{' '}
            failed the connection test (its stored responses still count):
          </p>
          <ul>
            {job.skippedSources.map((x) => (
              <li key={x.id}>
                <strong>{x.name}</strong>: {x.reason}
              </li>
            ))}
          </ul>
          <p>
            Fix {job.skippedSources.length === 1 ? 'it' : 'them'} on the{' '}
            <a href="/sources" onClick={goToSources}>
              Sources page
            </a>
            , or{' '}
            <button type="button" className="chip" disabled={job.running} onClick={() => void run({ insist: job.skippedSources.map((x) => x.id) })}>
              Run anyway with {job.skippedSources.map((x) => x.name).join(', ')}
            </button>
          </p>
        </div>
      )}
      <div role="status" aria-live="polite" data-testid="run-status">
        {job.message && <p className="notice">{job.message}</p>}
      </div>
      {job.error && (
        <p role="alert" className="notice notice--error">
          {job.error}
        </p>
      )}
      {job.collect.length > 0 && (
        <div className="progress-list" aria-label="Collection progress">
          {job.collect.map((p) => (
            <ProgressBar key={p.sourceId} label={`Responses from ${p.name}`} value={p.done} max={p.total}>
              {p.failed > 0 && `${p.failed} failed · `}
              {p.skipped > 0 && `${p.skipped} stored earlier · `}
              {formatCount(p.promptTokens + p.completionTokens)} tokens ({formatCount(p.completionTokens)} out) · {p.ratePerMinute.toFixed(1)}/min · ETA{' '}
              {formatSeconds(p.etaSeconds)}
              {p.retries > 0 && ` · ${p.retries} retries`}
              {p.local && <LocalProgress p={p.local} />}
            </ProgressBar>
          ))}
          {job.running && (
            <InFlight
              label="Requests in flight"
              items={job.collect.flatMap((p) => p.requests.map((r) => ({ ...r, key: `${p.sourceId}|${r.promptId}|${r.sampleIndex}`, source: p.name })))}
              prompts={prompts}
            />
          )}
        </div>
      )}
      {job.score && job.score.total > 0 && (
        <>
          <ProgressBar label="Scoring" value={job.score.done} max={job.score.total}>
            {job.score.failed > 0 && `${job.score.failed} failed · `}
            {job.score.judgeCalls} judge call(s) · {job.score.ratePerMinute.toFixed(1)}/min · ETA {formatSeconds(job.score.etaSeconds)}
          </ProgressBar>
          {job.running && job.phase === 'score' && (
            <InFlight
              label="Responses being scored"
              items={job.score.requests.map((r) => ({ ...r, key: `${r.sourceId}|${r.promptId}|${r.sampleIndex}`, attempt: 1, source: null }))}
              prompts={prompts}
            />
          )}
        </>
      )}
      {job.warnings.length > 0 && (
        <ul className="warnings" aria-label="Warnings">
          {job.warnings.map((w) => (
            <li key={w} className="notice notice--warn">
              {w}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * The prompts too long for the run, said before collection (prompt-length.ts): counted by the
 * loaded model's tokenizer, or estimated without one; the limit is the user's; they can be left out.
 */
function LongPrompts({ running }: { running: boolean }) {
  const doc = useDataStore((s) => s.doc)!;
  const lengths = useDataStore((s) => s.lengths);
  const measure = useDataStore((s) => s.measurePrompts);
  const setLimit = useDataStore((s) => s.setPromptTokenLimit);
  const setSkip = useDataStore((s) => s.setSkipLongPrompts);
  const modelKey = useModelStore((s) => s.model?.modelKey ?? null);
  const rewardReady = useSourcesStore((s) => s.rewardModel.state === 'ready');
  useEffect(() => {
    void measure(); // the loaded model's tokenizer counts them exactly
  }, [measure, modelKey]);
  void rewardReady; // re-render when the reward model's context becomes known
  const long = longPromptsOf(doc, lengths);
  const approx = lengths?.exact ? '' : '≈';
  return (
    <div className="long-prompts">
      <div className="form-grid form-grid--numbers">
        <NumberField
          label="Long-prompt limit (tokens)"
          value={doc.promptTokenLimit ?? DEFAULT_PROMPT_TOKEN_LIMIT}
          min={1}
          integer
          hint="longer prompts are flagged before collection"
          onChange={(v) => v !== undefined && void setLimit(v)}
        />
      </div>
      {long.length > 0 && (
        <div className="notice notice--warn" role="alert" aria-label="Long prompts">
          <p>
            <strong>
              {long.length} prompt(s) {long.length === 1 ? 'is' : 'are'} too long for this run
            </strong>{' '}
            ({lengths?.exact ? 'counted by the loaded model’s tokenizer' : 'estimated from their size; load a model to count them exactly'}). Each takes long to
            answer (a local server may need minutes) and every judge or reward call reads it again.
          </p>
          <ul>
            {long.slice(0, 5).map((l) => (
              <li key={l.id}>
                Prompt <code>{l.id}</code>: {approx}
                {formatCount(l.tokens)} tokens, over {l.over.what}
                {l.over.hard ? ': it cannot be answered or scored whole' : ''}.
              </li>
            ))}
          </ul>
          {long.length > 5 && <p>…and {long.length - 5} more.</p>}
          <label className="inline-check">
            <input type="checkbox" checked={!!doc.skipLongPrompts} onChange={(e) => void setSkip(e.target.checked)} disabled={running} /> Leave them out of this run
          </label>
        </div>
      )}
    </div>
  );
}

/**
 * The share of prompts held out for evaluation: never in the SFT/DPO sets, written (with their
 * gold answers and tests) as the Evaluate page's default data. Split by each prompt's own id.
 */
function HoldOut({ prompts, running }: { prompts: readonly Prompt[]; running: boolean }) {
  const doc = useDataStore((s) => s.doc)!;
  const setPercent = useDataStore((s) => s.setEvalPercent);
  const percent = evalPercentOf(doc.evalPercent, runPrompts(doc).length);
  const held = useMemo(() => heldOutPrompts(prompts, percent).eval, [prompts, percent]);
  const trained = doc.status === 'done' || doc.status === 'stopped';
  const [text, setText] = useState(String(percent));
  // A percent changed from outside (the default moving at 20 prompts, a new run) replaces the text.
  const [seen, setSeen] = useState(percent);
  if (seen !== percent) {
    setSeen(percent);
    if (Number(text) !== percent) setText(String(percent));
  }
  const typed = Number(text);
  const bad = text.trim() === '' || !(typed >= 0 && typed <= 50);
  return (
    <div className="hold-out" aria-label="Held-out prompts">
      <p className="hold-out-field">
        <label>
          Hold out for evaluation:{' '}
          <input
            type="number"
            inputMode="decimal"
            aria-label="Hold out for evaluation (% of prompts, never trained on)"
            aria-invalid={bad || undefined}
            style={{ width: '5em' }}
            min={0}
            max={50}
            step={1}
            value={text}
            disabled={running}
            onChange={(e) => {
              setText(e.target.value);
              const v = Number(e.target.value);
              if (e.target.value.trim() !== '' && v >= 0 && v <= 50) void setPercent(v);
            }}
          />{' '}
          % of prompts (never trained on)
        </label>
      </p>
      {bad && (
        <p className="notice notice--warn" role="alert">
          “{text}” is not a percent from 0 to 50: the run keeps {percent}%. Type a number such as 10 (0 holds nothing out).
        </p>
      )}
      <p className="hint" data-testid="held-out-count">
        {held.length > 0 ? (
          <>
            {held.length} of {prompts.length} prompt(s) held out ({held.filter((p) => p.gold !== undefined || p.tests !== undefined).length} with a gold answer or
            tests): they never enter the SFT or DPO sets and become the Evaluate page’s default data.
          </>
        ) : percent === 0 && doc.evalPercent === undefined && prompts.length < MIN_PROMPTS_FOR_EVAL ? (
          <>
            Nothing held out: with fewer than {MIN_PROMPTS_FOR_EVAL} prompts a held-out share would leave a handful of items, too few to tell models apart. Import more
            prompts, set a percent anyway, or upload an EVAL.jsonl on the Evaluate page.
          </>
        ) : percent === 0 ? (
          <>Nothing held out: the Evaluate page then needs an uploaded EVAL.jsonl of prompts the model never trained on.</>
        ) : (
          <>No prompt falls in the held-out {percent}% yet (each is drawn by its id): raise the percent or import more prompts.</>
        )}
      </p>
      {trained && percent > 0 && (
        <p className="hint">
          Change it before training: prompts moved into the held-out set after an adapter trained on them would no longer be unseen.
        </p>
      )}
    </div>
  );
}

/** What the run is waiting for, and since when (the age grows with each progress heartbeat). */
function InFlight({
  label,
  items,
  prompts,
}: {
  label: string;
  items: { key: string; promptId: string; sampleIndex: number; startedAt: number; attempt: number; source: string | null }[];
  prompts: readonly Prompt[];
}) {
  // A clock of its own: the ages grow every second even when no progress event comes.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  if (items.length === 0) return null;
  const byId = new Map(prompts.map((p) => [p.id, p]));
  const shown = [...items].sort((a, b) => a.startedAt - b.startedAt).slice(0, 6);
  return (
    <div className="in-flight" aria-label={label}>
      <p className="hint">{label}:</p>
      <ul>
        {shown.map((r) => {
          const text = byId.get(r.promptId)?.text ?? '';
          return (
            <li key={r.key} data-testid="in-flight">
              {r.source && <>{r.source}: </>}prompt <code>{r.promptId}</code> “{text.length > 60 ? `${text.slice(0, 60)}…` : text}” ({text.length.toLocaleString('en-US')} characters), sample{' '}
              {r.sampleIndex + 1} — <span data-testid="in-flight-age">{formatSeconds(Math.max(0, (now - r.startedAt) / 1000))}</span>
              {r.attempt > 1 && `, attempt ${r.attempt}`}
            </li>
          );
        })}
      </ul>
      {items.length > shown.length && <p className="hint">…and {items.length - shown.length} more.</p>}
    </div>
  );
}

// ---------------------------------------------------------------------------------------------
// Report and export

const DOWNLOADS: [string, string][] = [
  [ARTIFACTS.sft, 'SFT, TRL messages'],
  [ARTIFACTS.dpo, 'DPO, TRL prompt/chosen/rejected'],
  [ARTIFACTS.fusechatSft, 'SFT, FuseChat-3.0 schema'],
  [ARTIFACTS.fusechatDpo, 'DPO, FuseChat-3.0 schema'],
  [ARTIFACTS.report, 'the build report'],
];

function ReportCard() {
  const report = useDataStore((s) => s.report);
  const files = useDataStore((s) => s.files);
  const rows = useMemo(() => (report ? reportRows(report) : []), [report]);
  if (!report)
    return (
      <section className="card" aria-labelledby="report-title">
        <h2 id="report-title">3. The sets</h2>
        <p className="muted" data-testid="sets-not-built">
          Not built yet: run the pipeline above; the SFT and DPO sets, and why each prompt gave a row or not, show here.
        </p>
      </section>
    );
  const sftKept = report.counts['sft.kept'] ?? 0;
  const dpoKept = report.counts['dpo.kept'] ?? 0;
  const artifactRows = new Map(report.artifacts.map((a) => [a.name, a]));
  return (
    <section className="card" aria-labelledby="report-title">
      <h2 id="report-title">3. The sets</h2>
      <p data-testid="set-counts">
        <strong>{sftKept}</strong> SFT row(s) and <strong>{dpoKept}</strong> DPO pair(s) from {report.counts.prompts ?? 0} prompt(s) and{' '}
        {(report.counts.responses ?? 0) - (report.counts['responses.failed'] ?? 0)} response(s)
        {report.counts['responses.failed'] ? ` (${report.counts['responses.failed']} more request(s) failed)` : ''}. Built {new Date(report.createdAt).toLocaleString()}.
      </p>
      <div className="table-wrap">
        <table aria-label="Kept and dropped by domain">
          <caption>Kept and dropped, and why, per domain</caption>
          <thead>
            <tr>
              <th scope="col">Set</th>
              <th scope="col">Outcome</th>
              {DOMAINS.map((d) => (
                <th key={d} scope="col" className="num">
                  {d}
                </th>
              ))}
              <th scope="col" className="num">
                total
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.key}>
                <th scope="row">{r.set}</th>
                <td className={r.reason === 'kept' ? '' : 'why'}>{r.reason === 'kept' ? 'kept' : `dropped: ${REASON_TEXT[r.reason] ?? r.reason}`}</td>
                {DOMAINS.map((d) => (
                  <td key={d} className="num">
                    {r.byDomain[d] || ''}
                  </td>
                ))}
                <td className="num">{r.total}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {report.construct.overrideErrors.length > 0 && (
        <ul aria-label="Override problems">
          {report.construct.overrideErrors.map((o, k) => (
            <li key={k} className="notice notice--warn">
              {o.message}
            </li>
          ))}
        </ul>
      )}
      <h3>Download</h3>
      <ul className="downloads">
        {DOWNLOADS.map(([name, what]) => {
          const a = artifactRows.get(name);
          const f = files[name];
          return (
            <li key={name}>
              {f ? (
                <a className="button button--secondary download-link" href={f.url} download={name} aria-label={`Download ${name}`}>
                  {name}
                </a>
              ) : (
                <span className="muted">{name} (not written yet)</span>
              )}{' '}
              <span className="muted">
                {what}
                {a?.rows !== undefined && ` · ${a.rows} row(s)`}
              </span>
            </li>
          );
        })}
      </ul>
      <p className="hint">The Train page uses this run’s sft.jsonl and dpo.jsonl.</p>
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// Browse, exclude, edit

function BrowseCard() {
  const doc = useDataStore((s) => s.doc)!;
  const report = useDataStore((s) => s.report);
  const browse = useDataStore((s) => s.browse);
  const refresh = useDataStore((s) => s.refresh);
  const running = useDataStore((s) => s.job.running);
  const prompts = runPrompts(doc);
  const [page, setPage] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);
  const reportBy = useMemo(() => new Map((report?.construct.prompts ?? []).map((r) => [r.promptId, r])), [report]);
  const entries = useSourcesStore((s) => s.entries);
  const localEntries = useLocalSourcesStore((s) => s.entries);
  // Counted over the run as it is now (its prompts, its sources), as the sets are built.
  const inRun = useMemo(() => {
    const sourceIds = new Set([...pipelineSources(entries), ...pipelineLocalSources(localEntries)].map((x) => x.id));
    const promptIds = new Set(runPrompts(doc).map((p) => p.id));
    const isIn = (r: { sourceId: string; promptId: string }) => sourceIds.has(r.sourceId) && promptIds.has(r.promptId);
    const responses = browse.responses.filter(isIn);
    const keys = new Set(responses.map((r) => r.key));
    const perPrompt = new Map<string, number>();
    for (const r of responses) perPrompt.set(r.promptId, (perPrompt.get(r.promptId) ?? 0) + 1);
    return {
      perPrompt,
      responses: responses.length,
      scores: browse.scores.filter((x) => keys.has(x.key)).length,
      failed: browse.errors.filter((e) => isIn(e) && !keys.has(e.key)).length,
      outside: browse.responses.length - responses.length,
    };
  }, [browse, entries, localEntries, doc]);
  const counts = inRun.perPrompt;
  if (prompts.length === 0) return null;
  const pages = Math.ceil(prompts.length / PAGE_SIZE);
  const shown = prompts.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  const current = prompts.find((p) => p.id === selected);

  return (
    <section className="card" aria-labelledby="browse-title">
      <h2 id="browse-title">4. Browse the responses</h2>
      <div className="actions">
        <button type="button" className="button button--secondary" onClick={() => void refresh()}>
          Refresh
        </button>
        <span className="muted">
          {inRun.responses} response(s), {inRun.scores} score(s), {inRun.failed} failed request(s) in this run
          {inRun.outside > 0 && ` (and ${inRun.outside} response(s) stored from sources or prompts no longer in it)`}.
        </span>
      </div>
      <div className="table-wrap">
        <table aria-label="Prompts" className="table--stack">
          <thead>
            <tr>
              <th scope="col">Prompt</th>
              <th scope="col">Domain</th>
              <th scope="col" className="num">
                Responses
              </th>
              <th scope="col">SFT</th>
              <th scope="col">DPO</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((p) => {
              const o = promptOutcome(reportBy.get(p.id));
              return (
                <tr key={p.id} className={p.id === selected ? 'row--selected' : undefined}>
                  <th scope="row">
                    <button type="button" className="linklike" onClick={() => setSelected(p.id)} aria-pressed={p.id === selected} aria-label={`Open prompt: ${clip(p.text, 80)}`}>
                      {clip(p.text, 90)}
                    </button>
                  </th>
                  <td data-label="Domain">{p.domain}</td>
                  <td className="num" data-label="Responses">
                    {counts.get(p.id) ?? 0}
                  </td>
                  <td className="why" data-label="SFT">
                    {o.sft}
                  </td>
                  <td className="why" data-label="DPO">
                    {o.dpo}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {pages > 1 && (
        <div className="actions" role="group" aria-label="Pages">
          <button type="button" className="chip" disabled={page === 0} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span>
            Page {page + 1} of {pages}
          </span>
          <button type="button" className="chip" disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </div>
      )}
      {current && <PromptDetail key={current.id} prompt={current} running={running} />}
    </section>
  );
}

const clip = (s: string, n: number) => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);

function PromptDetail({ prompt, running }: { prompt: Prompt; running: boolean }) {
  const doc = useDataStore((s) => s.doc)!;
  const browse = useDataStore((s) => s.browse);
  const report = useDataStore((s) => s.report);
  const removeOverride = useDataStore((s) => s.removeOverride);
  const run = useDataStore((s) => s.run);
  const entries = useSourcesStore((s) => s.entries);
  const localEntries = useLocalSourcesStore((s) => s.entries);
  const order = useMemo(() => [...pipelineSources(entries), ...pipelineLocalSources(localEntries)].map((s) => ({ id: s.id, name: s.name })), [entries, localEntries]);
  const columns = useMemo(
    () => groupResponses(prompt.id, browse.responses, browse.scores, browse.errors, doc.edits, order),
    [prompt.id, browse, doc.edits, order],
  );
  const pr = report?.construct.prompts.find((r) => r.promptId === prompt.id);
  const outcome = promptOutcome(pr);
  const mine = doc.overrides.map((o, k) => ({ o, k })).filter(({ o }) => ('promptId' in o ? o.promptId === prompt.id : 'rowId' in o ? o.rowId.slice(4) === prompt.id : columns.some((c) => c.responses.some((r) => r.key === o.responseId))));

  // Opened from the table above: bring it on screen, and focus it so the keyboard continues there.
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.scrollIntoView({ behavior: 'smooth', block: 'start' });
    el.focus({ preventScroll: true });
  }, [prompt.id]);

  return (
    <article className="prompt-detail" aria-label="Selected prompt" ref={ref} tabIndex={-1} data-testid="prompt-detail">
      <h3>Prompt ({prompt.domain})</h3>
      {prompt.system && <p className="muted">System: {prompt.system}</p>}
      <div className="prompt-text">
        <Markdown text={prompt.text} />
      </div>
      {prompt.gold !== undefined && <p className="hint">Gold answer: {prompt.gold}</p>}
      <p>
        SFT: <span data-testid="sft-outcome">{outcome.sft}</span> · DPO: <span data-testid="dpo-outcome">{outcome.dpo}</span>
      </p>
      <div className="actions" role="group" aria-label="Exclude">
        <OverrideToggle override={{ op: 'exclude-row', rowId: `sft:${prompt.id}` }}>Exclude SFT row</OverrideToggle>
        <OverrideToggle override={{ op: 'exclude-row', rowId: `dpo:${prompt.id}` }}>Exclude DPO row</OverrideToggle>
        <OverrideToggle override={{ op: 'exclude-prompt', promptId: prompt.id }}>Exclude prompt</OverrideToggle>
      </div>
      {mine.length > 0 && (
        <div className="overrides">
          <ul aria-label="Manual changes">
            {mine.map(({ o, k }) => (
              <li key={k}>
                {describeOverride(o)}{' '}
                <button type="button" className="chip chip--small" onClick={() => void removeOverride(k)} aria-label={`Undo: ${describeOverride(o)}`}>
                  Undo
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
      {(mine.length > 0 || Object.keys(doc.edits).length > 0) && (
        <div className="actions">
          <button type="button" className="button" onClick={() => void run({ rebuild: true })} disabled={running}>
            Rebuild sets
          </button>
          <span className="muted">Applies the manual changes; nothing is requested again.</span>
        </div>
      )}
      {columns.length === 0 ? (
        <p className="muted">No responses stored for this prompt yet.</p>
      ) : (
        <div className="response-grid" style={{ '--cols': Math.min(columns.length, 3) } as CSSProperties}>
          {columns.map((c) => (
            <div key={c.sourceId} className="response-column" role="group" aria-label={`Responses from ${c.name}`}>
              <h4>{c.name}</h4>
              {c.responses.map((r) => (
                <ResponseCard key={r.key} r={r} prompt={prompt} picked={pickedRole(pr, r.key)} />
              ))}
            </div>
          ))}
        </div>
      )}
    </article>
  );
}

function pickedRole(pr: { sft: { responseId?: string }; dpo: { chosenId?: string; rejectedId?: string } } | undefined, key: string): string[] {
  if (!pr) return [];
  const out: string[] = [];
  if (pr.sft.responseId === key) out.push('SFT');
  if (pr.dpo.chosenId === key) out.push('chosen');
  if (pr.dpo.rejectedId === key) out.push('rejected');
  return out;
}

function describeOverride(o: import('../../data/construct').Override): string {
  switch (o.op) {
    case 'exclude-prompt':
      return 'prompt excluded';
    case 'exclude-row':
      return `${o.rowId.startsWith('sft:') ? 'SFT' : 'DPO'} row excluded`;
    case 'exclude-response':
      return `response ${responseLabel(o.responseId)} excluded`;
    default:
      return `response ${responseLabel(o.responseId)} used as ${o.op === 'sft' ? 'SFT target' : o.op}`;
  }
}

function responseLabel(key: string): string {
  try {
    const [, , i] = JSON.parse(key) as [string, string, number];
    return `#${i + 1}`;
  } catch {
    return key;
  }
}

/** Field order does not matter: an override read from a bundle may list them differently. */
const overrideKey = (o: Override) => JSON.stringify(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** A hand choice as a toggle button: pressed while the override is in the run (a click undoes it). */
function OverrideToggle({ override, small = false, children }: { override: Override; small?: boolean; children: string }) {
  const overrides = useDataStore((s) => s.doc?.overrides ?? []);
  const addOverride = useDataStore((s) => s.addOverride);
  const removeOverride = useDataStore((s) => s.removeOverride);
  const index = overrides.findIndex((o) => overrideKey(o) === overrideKey(override));
  const pressed = index >= 0;
  return (
    <button
      type="button"
      className={small ? 'chip chip--small' : 'chip'}
      aria-pressed={pressed}
      onClick={() => void (pressed ? removeOverride(index) : addOverride(override))}
      title={pressed ? 'Chosen by hand: click to undo (then rebuild the sets)' : 'Rebuild the sets to apply'}
    >
      {children}
    </button>
  );
}

function ResponseCard({ r, prompt, picked }: { r: ResponseView; prompt: Prompt; picked: string[] }) {
  const editResponse = useDataStore((s) => s.editResponse);
  const [editing, setEditing] = useState<string | null>(null);
  const label = `${r.sourceName} sample ${r.sampleIndex + 1}`;
  const text = r.edited ?? r.content;
  return (
    <div className={r.error ? 'response response--error' : 'response'} role="article" aria-label={`Response: ${label}`}>
      <p className="response-head">
        <strong>#{r.sampleIndex + 1}</strong> {picked.map((p) => (
          <span key={p} className={p === 'rejected' ? 'badge badge--fail' : 'badge badge--pass'}>
            {p}
          </span>
        ))}
        {r.edited !== undefined && <span className="badge">edited</span>}
        <br />
        <small className="muted" data-testid="verdict">
          {r.error ? `failed: ${r.error}` : verdictLine(r.score)}
        </small>
      </p>
      {editing !== null ? (
        <div>
          <label className="field">
            <span>Edited response</span>
            <textarea rows={8} value={editing} onChange={(e) => setEditing(e.target.value)} />
          </label>
          <div className="actions">
            <button
              type="button"
              className="button"
              onClick={() => {
                void editResponse(r.key, editing === r.content ? null : editing);
                setEditing(null);
              }}
            >
              Save edit
            </button>
            <button type="button" className="button button--secondary" onClick={() => setEditing(null)}>
              Discard
            </button>
          </div>
        </div>
      ) : (
        !r.error && <Markdown text={text} className="response-body" />
      )}
      {r.score?.judge?.verdict !== undefined &&
        (r.score.judge.raw === null ? (
          // No score was read: the reply exactly as it came, and why (open, so the cause is in view).
          <details open>
            <summary>Judge’s verdict: no score read</summary>
            <p className="hint">{r.score.judge.detail}.</p>
            <RawText text={r.score.judge.verdict} label="Judge’s verdict, as it came" />
          </details>
        ) : (
          <details>
            <summary>Judge’s verdict</summary>
            <Markdown text={r.score.judge.verdict} className="verdict-body" />
          </details>
        ))}
      {r.score?.code?.error && (
        <details>
          <summary>Test output</summary>
          <pre className="error-text">{r.score.code.error}</pre>
        </details>
      )}
      {!r.error && editing === null && (
        <div className="response-actions" role="group" aria-label={`Actions for ${label}`}>
          <button type="button" className="chip chip--small" onClick={() => setEditing(text)}>
            Edit
          </button>
          {r.edited !== undefined && (
            <button type="button" className="chip chip--small" onClick={() => void editResponse(r.key, null)}>
              Undo edit
            </button>
          )}
          <OverrideToggle small override={{ op: 'sft', promptId: prompt.id, responseId: r.key }}>
            Use for SFT
          </OverrideToggle>
          {prompt.domain !== 'other' && (
            <>
              <OverrideToggle small override={{ op: 'chosen', promptId: prompt.id, responseId: r.key }}>
                Chosen
              </OverrideToggle>
              <OverrideToggle small override={{ op: 'rejected', promptId: prompt.id, responseId: r.key }}>
                Rejected
              </OverrideToggle>
            </>
          )}
          <OverrideToggle small override={{ op: 'exclude-response', responseId: r.key }}>
            Exclude
          </OverrideToggle>
        </div>
      )}
    </div>
  );
}

const STATE_WORDS: Record<LocalSourceProgress['state'], string> = {
  waiting: 'waiting for the GPU',
  loading: 'loading the model',
  generating: 'generating',
  done: 'done, released',
  skipped: 'skipped',
  cancelled: 'stopped',
};

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** A local source's line: its state, the rows it generated in this run, tokens/s, and the GPU pool before, loaded and after. */
function LocalProgress({ p }: { p: LocalSourceProgress }) {
  return (
    <span className="local-progress" data-testid="local-progress" data-state={p.state} data-generated={p.generated} {...(p.gpu ? { 'data-gpu-baseline': p.gpu.baselineBytes, 'data-gpu-after': p.gpu.afterBytes } : {})}>
      {' · '}on this GPU: {STATE_WORDS[p.state]}
      {p.skipReason && ` (${p.skipReason})`}
      {` · ${p.generated} generated in this run · ${p.tokensPerSecond.toFixed(1)} tok/s`}
      {p.batchSize !== undefined && ` · batch ${p.batchSize}`}
      {p.gpu && ` · GPU pool ${mb(p.gpu.baselineBytes)} before, ${mb(p.gpu.loadedBytes)} loaded, ${mb(p.gpu.afterBytes)} after release`}
    </span>
  );
}
