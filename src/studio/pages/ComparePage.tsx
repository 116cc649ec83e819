import { useEffect, useState, type CSSProperties, type FormEvent } from 'react';
import { tally } from '../blindAb';
import { useClassroomStore } from '../classroom';
import { ConfirmButton } from '../components/ConfirmButton';
import { Lineage } from '../components/Lineage';
import { NumberField } from '../components/fields';
import { Markdown } from '../components/Markdown';
import { BASE, modelLabel, tokensPerSecond, useCompareStore, type Answer } from '../compareStore';
import { useModelStore } from '../modelStore';
import { onLinkClick } from '../navigation';

/** The Compare page: the base model and its adapters side by side, and a blind A/B vote. */
export function ComparePage() {
  const model = useModelStore((s) => s.model);
  const refresh = useCompareStore((s) => s.refresh);
  const error = useCompareStore((s) => s.error);

  useEffect(() => {
    void refresh();
  }, [refresh, model]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Compare</h1>
      <p className="lead">
        Ask the base model and its fine-tuned versions the same question with the same sampling and seed, and read the answers side by side.
        For a workshop, the blind A/B vote hides which model wrote which answer.
      </p>
      {!model ? (
        <p className="notice">Load a model on the Model page first; its trained and imported adapters appear here.</p>
      ) : (
        <>
          {error && (
            <p role="alert" className="notice notice--error">
              {error}
            </p>
          )}
          <SamplingPanel />
          <SideBySide />
          <BlindPanel />
        </>
      )}
    </main>
  );
}

function SamplingPanel() {
  const sampling = useCompareStore((s) => s.sampling);
  const set = useCompareStore((s) => s.setSampling);
  return (
    <section className="card" aria-labelledby="sampling-title">
      <h2 id="sampling-title">Sampling</h2>
      <div className="form-grid form-grid--numbers">
        <NumberField label="Temperature" value={sampling.temperature} min={0} max={5} step={0.05} onChange={(v) => v !== undefined && set({ temperature: v })} hint="0 = greedy" />
        <NumberField label="Top-p" value={sampling.topP} min={0.01} max={1} step={0.01} onChange={(v) => v !== undefined && set({ topP: v })} />
        <NumberField label="Max new tokens" value={sampling.maxNewTokens} min={1} max={4096} integer onChange={(v) => v !== undefined && set({ maxNewTokens: v })} />
        <NumberField label="Seed" value={sampling.seed} min={0} max={2 ** 31 - 1} integer onChange={(v) => v !== undefined && set({ seed: v })} />
      </div>
      <p className="hint">Every model gets the same prompt, sampling and seed; they run one after another on the GPU.</p>
    </section>
  );
}

function answerStatus(a: Answer | undefined): string {
  if (!a) return '';
  const tps = tokensPerSecond(a);
  const rate = tps === null ? '' : ` · ${tps.toFixed(tps < 10 ? 1 : 0)} tokens/s`;
  switch (a.status) {
    case 'queued':
      return 'Waiting for the GPU…';
    case 'running':
      return `Generating… ${a.tokens} tokens${rate}`;
    case 'done':
      return `${a.tokens} tokens${rate}`;
    case 'stopped':
      return a.tokens ? `Stopped after ${a.tokens} tokens${rate}` : 'Stopped';
    case 'error':
      return 'Failed';
    default:
      return '';
  }
}

function AnswerBody({ answer, label }: { answer: Answer | undefined; label: string }) {
  return (
    <>
      <p className="hint compare-status" data-testid="answer-status" aria-live="polite">
        {answerStatus(answer)}
      </p>
      {answer?.error && (
        <p role="alert" className="notice notice--error">
          {answer.error}
        </p>
      )}
      <div className="compare-answer" data-testid="answer" aria-label={`${label} answer`} role="region">
        {answer?.text ? <Markdown text={answer.text} /> : <span className="muted">{answer?.status === 'running' ? '…' : ''}</span>}
      </div>
    </>
  );
}

function SideBySide() {
  const adapters = useCompareStore((s) => s.adapters);
  const selected = useCompareStore((s) => s.selected);
  const toggle = useCompareStore((s) => s.toggle);
  const answers = useCompareStore((s) => s.answers);
  const turns = useCompareStore((s) => s.turns);
  const running = useCompareStore((s) => s.running);
  const multiTurn = useCompareStore((s) => s.multiTurn);
  const setMultiTurn = useCompareStore((s) => s.setMultiTurn);
  const newConversation = useCompareStore((s) => s.newConversation);
  const send = useCompareStore((s) => s.send);
  const stop = useCompareStore((s) => s.stop);
  const [prompt, setPrompt] = useState('Explain what a LoRA adapter is in one sentence.');
  const keys = [BASE, ...adapters.map((a) => a.name)];
  const runningKey = selected.find((k) => answers[k]?.status === 'running');

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void send(prompt);
  };

  return (
    <section className="card" aria-labelledby="side-title">
      <h2 id="side-title">Side by side</h2>
      <fieldset className="compare-models">
        <legend>Models</legend>
        {keys.map((k) => {
          const info = adapters.find((a) => a.name === k);
          return (
            <label key={k} className="inline-check">
              <input type="checkbox" checked={selected.includes(k)} disabled={running} onChange={() => toggle(k)} />
              {modelLabel(k)}
              {info && <span className="muted"> (rank {info.rank}{info.note ? `, ${info.note}` : ''})</span>}
              {info?.parentGone && <Lineage adapter={info} />}
            </label>
          );
        })}
        {adapters.length === 0 && <p className="hint">No adapters for this model yet: train one on the Train page or import one on the Export page.</p>}
      </fieldset>
      <form onSubmit={submit} className="compare-form">
        <label className="field field--full">
          <span>Prompt</span>
          <textarea value={prompt} rows={2} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <div className="actions">
          <button type="submit" className="button" disabled={running || !prompt.trim() || !selected.length}>
            {multiTurn && Object.keys(turns).length ? 'Send' : 'Compare'}
          </button>
          <button type="button" className="button button--secondary" disabled={!running} onClick={stop}>
            Stop
          </button>
          <label className="inline-check">
            <input type="checkbox" checked={multiTurn} disabled={running} onChange={(e) => setMultiTurn(e.target.checked)} />
            Multi-turn (keep each model’s conversation)
          </label>
          {multiTurn && (
            <button type="button" className="button button--secondary" disabled={running} onClick={newConversation}>
              New conversation
            </button>
          )}
        </div>
      </form>
      <p className="hint" role="status" data-testid="compare-running">
        {running ? (runningKey ? `Running: ${modelLabel(runningKey)}` : 'Starting…') : ''}
      </p>
      <div className="compare-grid" style={{ '--cols': Math.max(1, selected.length) } as CSSProperties}>
        {selected.map((k) => (
          <article key={k} className={answers[k]?.status === 'running' ? 'compare-col compare-col--running' : 'compare-col'} aria-label={`${modelLabel(k)} column`} data-testid={`column-${k}`}>
            <h3>{modelLabel(k)}</h3>
            {multiTurn &&
              (turns[k] ?? []).map((t, i) => (
                <div key={i} className="compare-turn">
                  <p className="compare-user">
                    <strong>You:</strong> {t.user}
                  </p>
                  <Markdown text={t.assistant} />
                </div>
              ))}
            {(!multiTurn || answers[k]?.status !== 'done') && <AnswerBody answer={answers[k]} label={modelLabel(k)} />}
          </article>
        ))}
      </div>
    </section>
  );
}

function BlindPanel() {
  const adapters = useCompareStore((s) => s.adapters);
  const blind = useCompareStore((s) => s.blind);
  const running = useCompareStore((s) => s.running);
  const setModels = useCompareStore((s) => s.setBlindModels);
  const startRound = useCompareStore((s) => s.startRound);
  const vote = useCompareStore((s) => s.vote);
  const reveal = useCompareStore((s) => s.reveal);
  const resetTally = useCompareStore((s) => s.resetTally);
  const stop = useCompareStore((s) => s.stop);
  const [prompt, setPrompt] = useState('Give me one tip for learning to cook.');
  const keys = [BASE, ...adapters.map((a) => a.name)];
  const scores = tally(blind.votes);
  const ready = blind.round && blind.answers.a.status !== 'queued' && blind.answers.a.status !== 'running' && blind.answers.b.status !== 'queued' && blind.answers.b.status !== 'running';
  const valid = blind.first && blind.second && blind.first !== blind.second;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    void startRound(prompt);
  };

  return (
    <section className="card" aria-labelledby="blind-title">
      <h2 id="blind-title">Blind A/B vote</h2>
      <p className="hint">
        Two models answer; which one is “A” is drawn at random each round. Vote for the better answer, then reveal the tally. Votes are kept in this browser.
      </p>
      <div className="form-grid">
        <label className="field">
          <span>First model</span>
          <select value={blind.first} disabled={running || Boolean(blind.round)} onChange={(e) => setModels(e.target.value, blind.second)}>
            {keys.map((k) => (
              <option key={k} value={k}>
                {modelLabel(k)}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Second model</span>
          <select value={blind.second} disabled={running || Boolean(blind.round)} onChange={(e) => setModels(blind.first, e.target.value)}>
            <option value="">Choose…</option>
            {keys.map((k) => (
              <option key={k} value={k}>
                {modelLabel(k)}
              </option>
            ))}
          </select>
        </label>
      </div>
      {!valid && <p className="hint">Pick two different models{adapters.length === 0 ? ' (there is no adapter yet: train or import one)' : ''}.</p>}
      <form onSubmit={submit} className="compare-form">
        <label className="field field--full">
          <span>Blind prompt</span>
          <textarea value={prompt} rows={2} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <div className="actions">
          <button type="submit" className="button" disabled={running || !valid || !prompt.trim() || (Boolean(blind.round) && !ready)}>
            {blind.round ? 'New round (skip this one)' : 'Start round'}
          </button>
          {running && blind.round && (
            <button type="button" className="button button--secondary" onClick={stop}>
              Stop
            </button>
          )}
        </div>
      </form>
      {blind.round && (
        <>
          <div className="compare-grid" style={{ '--cols': 2 } as CSSProperties}>
            {(['a', 'b'] as const).map((slot) => (
              <article key={slot} className={blind.answers[slot].status === 'running' ? 'compare-col compare-col--running' : 'compare-col'} aria-label={`Answer ${slot.toUpperCase()}`}>
                <h3>{slot.toUpperCase()}</h3>
                <AnswerBody answer={blind.answers[slot]} label={slot.toUpperCase()} />
              </article>
            ))}
          </div>
          <div className="actions blind-votes" role="group" aria-label="Vote">
            <button type="button" className="button" disabled={!ready} onClick={() => vote('a')}>
              A is better
            </button>
            <button type="button" className="button" disabled={!ready} onClick={() => vote('tie')}>
              Tie
            </button>
            <button type="button" className="button" disabled={!ready} onClick={() => vote('b')}>
              B is better
            </button>
          </div>
        </>
      )}
      {blind.lastRound && (
        <p className="notice notice--ok" role="status" data-testid="last-vote">
          Vote recorded ({blind.votes.length} so far).{' '}
          {blind.revealed
            ? `A was ${modelLabel(blind.lastRound.a)}, B was ${modelLabel(blind.lastRound.b)}.`
            : 'Reveal the tally to see which model was which.'}
        </p>
      )}
      <div className="actions">
        <button type="button" className="button button--secondary" aria-pressed={blind.revealed} onClick={() => reveal(!blind.revealed)} disabled={!blind.votes.length && !blind.revealed}>
          {blind.revealed ? 'Hide tally' : 'Reveal tally'}
        </button>
        <ConfirmButton
          disabled={!blind.votes.length}
          title="Reset the blind A/B tally?"
          body={<p>The {blind.votes.length} vote{blind.votes.length === 1 ? '' : 's'} recorded for this model in this browser are deleted.</p>}
          confirmLabel="Reset tally"
          onConfirm={resetTally}
        >
          Reset tally
        </ConfirmButton>
        <span className="muted" data-testid="vote-count">
          {blind.votes.length} vote{blind.votes.length === 1 ? '' : 's'}
        </span>
      </div>
      <ClassBoardLine />
      {blind.revealed && (
        <div className="table-wrap">
          <table aria-label="Blind tally">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col" className="num">Wins</th>
                <th scope="col" className="num">Losses</th>
                <th scope="col" className="num">Ties</th>
                <th scope="col" className="num">Rounds</th>
                <th scope="col" className="num">Win rate</th>
              </tr>
            </thead>
            <tbody>
              {scores.map((s) => (
                <tr key={s.model}>
                  <th scope="row">{modelLabel(s.model)}</th>
                  <td className="num">{s.wins}</td>
                  <td className="num">{s.losses}</td>
                  <td className="num">{s.ties}</td>
                  <td className="num">{s.rounds}</td>
                  <td className="num">{(s.winRate * 100).toFixed(0)}%</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="hint">Win rate counts a tie as half a win.</p>
        </div>
      )}
    </section>
  );
}

/** In a classroom: where the votes go, and a vote that did not get there. */
function ClassBoardLine() {
  const inClass = useClassroomStore((s) => Boolean(s.info));
  const sent = useClassroomStore((s) => s.sent);
  const error = useClassroomStore((s) => s.sendError);
  if (!inClass) return null;
  return error ? (
    <p role="alert" className="notice notice--error">
      {error}
    </p>
  ) : (
    <p className="muted" data-testid="board-sent">
      Your votes also go to the <a href="/board" onClick={onLinkClick('/board')}>class board</a>, anonymously ({sent} sent from this page).
    </p>
  );
}
