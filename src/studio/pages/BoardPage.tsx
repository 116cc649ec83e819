import { useEffect, useRef, useState, type FormEvent } from 'react';
import { adminFetch, fetchBoard, percentWithInterval, storeAdminToken, storedAdminToken, useClassroomStore, type BoardView } from '../classroom';

const POLL_MS = 2000;

/**
 * The class's results board, for the instructor to project: every student's blind A/B votes and
 * evaluation results, per model (win rate with its 95% interval), per metric, per student, live
 * (polled every 2 s, answered "unchanged" cheaply). The instructor's token unlocks export, reset
 * and the quota.
 */
export function BoardPage() {
  const info = useClassroomStore((s) => s.info);
  const [board, setBoard] = useState<BoardView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const version = useRef<number | null>(null);

  useEffect(() => {
    if (!info) return;
    let stop = false;
    let timer: ReturnType<typeof setTimeout>;
    const tick = async () => {
      try {
        const b = await fetchBoard(version.current);
        if (b && !stop) {
          version.current = b.version;
          setBoard(b);
        }
        if (!stop) setError(null);
      } catch (e) {
        if (!stop) setError((e as Error).message);
      }
      if (!stop) timer = setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [info]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Class board</h1>
      {info === false && (
        <p className="notice notice--warn" role="status">
          This studio is not served by a classroom: the board lives on the instructor’s machine (<code>fuse-studio classroom</code>). Open the address the instructor gives.
        </p>
      )}
      {info && (
        <p className="lead">
          Everyone’s blind A/B votes and evaluation results, live. Each laptop counts as one anonymous student; intervals are 95% Wilson intervals (a tie counts half a win).
        </p>
      )}
      {error && (
        <p role="alert" className="notice notice--error">
          {error}
        </p>
      )}
      {board && <BoardTables board={board} />}
      {info && <AdminPanel />}
    </main>
  );
}

function BoardTables({ board }: { board: BoardView }) {
  const t = board.totals;
  return (
    <>
      <div className="board-totals" role="group" aria-label="Totals" data-testid="board-totals">
        <p>
          <strong>{t.students}</strong> student{t.students === 1 ? '' : 's'}
        </p>
        <p>
          <strong>{t.votes}</strong> vote{t.votes === 1 ? '' : 's'} ({t.ties} tie{t.ties === 1 ? '' : 's'})
        </p>
        <p>
          <strong>{t.results}</strong> result{t.results === 1 ? '' : 's'}
        </p>
      </div>
      <section className="card" aria-labelledby="board-models">
        <h2 id="board-models">Blind A/B votes by model</h2>
        {board.models.length === 0 ? (
          <p className="muted">No votes yet: on the Compare page, vote in a blind A/B round.</p>
        ) : (
          <div className="table-wrap">
            <table className="table--stack" aria-label="Votes by model">
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col" className="num">Win rate (95% interval)</th>
                  <th scope="col" className="num">Wins</th>
                  <th scope="col" className="num">Ties</th>
                  <th scope="col" className="num">Losses</th>
                  <th scope="col" className="num">Rounds</th>
                  <th scope="col">
                    <span className="sr-only">Interval</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {board.models.map((m) => (
                  <tr key={m.model}>
                    <th scope="row">{m.model}</th>
                    <td className="num" data-label="Win rate">
                      {percentWithInterval(m.winRate, m.interval)}
                    </td>
                    <td className="num" data-label="Wins">
                      {m.wins}
                    </td>
                    <td className="num" data-label="Ties">
                      {m.ties}
                    </td>
                    <td className="num" data-label="Losses">
                      {m.losses}
                    </td>
                    <td className="num" data-label="Rounds">
                      {m.rounds}
                    </td>
                    <td className="cell--wide" aria-hidden="true">
                      <IntervalBar rate={m.winRate} low={m.interval.low} high={m.interval.high} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="board-metrics">
        <h2 id="board-metrics">Evaluation results</h2>
        {board.metrics.length === 0 ? (
          <p className="muted">No results yet: they arrive as students evaluate their models.</p>
        ) : (
          <div className="table-wrap">
            <table className="table--stack" aria-label="Evaluation results">
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Metric</th>
                  <th scope="col" className="num">Score (95% interval)</th>
                  <th scope="col" className="num">Items</th>
                  <th scope="col" className="num">Students</th>
                </tr>
              </thead>
              <tbody>
                {board.metrics.map((m) => (
                  <tr key={`${m.model}|${m.metric}`}>
                    <th scope="row">{m.model}</th>
                    <td data-label="Metric">{m.metric}</td>
                    <td className="num" data-label="Score">
                      {percentWithInterval(m.rate, m.interval)}
                    </td>
                    <td className="num" data-label="Items">
                      {m.correct} / {m.total}
                    </td>
                    <td className="num" data-label="Students">
                      {m.students}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section className="card" aria-labelledby="board-students">
        <h2 id="board-students">Students</h2>
        {board.students.length === 0 ? (
          <p className="muted">Nobody has sent anything yet.</p>
        ) : (
          <div className="table-wrap">
            <table className="table--stack" aria-label="Students">
              <thead>
                <tr>
                  <th scope="col">Anonymous id</th>
                  <th scope="col" className="num">Votes</th>
                  <th scope="col" className="num">Results</th>
                </tr>
              </thead>
              <tbody>
                {board.students.map((s) => (
                  <tr key={s.student}>
                    <th scope="row">
                      <code>{s.student}</code>
                    </th>
                    <td className="num" data-label="Votes">
                      {s.votes}
                    </td>
                    <td className="num" data-label="Results">
                      {s.results}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {board.updatedAt && <p className="muted">Last entry {new Date(board.updatedAt).toLocaleTimeString()}.</p>}
      </section>
    </>
  );
}

/** The rate as a dot on [0, 100%] with its interval as a bar; 50% marked. */
function IntervalBar({ rate, low, high }: { rate: number; low: number; high: number }) {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return (
    <div className="interval-bar">
      <span className="interval-bar-mid" />
      <span className="interval-bar-range" style={{ left: pct(low), width: pct(Math.max(0.005, high - low)) }} />
      <span className="interval-bar-dot" style={{ left: pct(rate) }} />
    </div>
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

function AdminPanel() {
  const [token, setToken] = useState(storedAdminToken);
  const [quota, setQuota] = useState('');
  const [perMinute, setPerMinute] = useState('');
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const act = async (fn: () => Promise<string>) => {
    setMessage(null);
    try {
      storeAdminToken(token.trim());
      setMessage({ kind: 'ok', text: await fn() });
    } catch (e) {
      setMessage({ kind: 'error', text: (e as Error).message });
    }
  };
  const exportAs = (kind: 'csv' | 'json') =>
    act(async () => {
      const res = await adminFetch(`export.${kind}`, token.trim());
      download(`classroom-board.${kind}`, await res.text(), kind === 'csv' ? 'text/csv' : 'application/json');
      return `Exported the board as ${kind.toUpperCase()}.`;
    });
  const setLimits = (e: FormEvent) => {
    e.preventDefault();
    void act(async () => {
      const body: Record<string, number> = {};
      if (quota.trim()) body.quota = Number(quota);
      if (perMinute.trim()) body.perMinute = Number(perMinute);
      const res = await adminFetch('quota', token.trim(), { method: 'POST', body: JSON.stringify(body) });
      const { limits } = (await res.json()) as { limits: { quota: number; perMinute: number } };
      return `Each student may now make ${limits.quota} source request${limits.quota === 1 ? '' : 's'}, ${limits.perMinute} a minute.`;
    });
  };
  return (
    <details className="card">
      <summary>Instructor: export, reset, quota</summary>
      <form className="form-grid" onSubmit={setLimits}>
        <label className="field field--wide">
          <span>Admin token (printed when the classroom started)</span>
          <input type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="off" />
        </label>
        <label className="field">
          <span>Requests per student</span>
          <input type="number" min={0} value={quota} onChange={(e) => setQuota(e.target.value)} />
        </label>
        <label className="field">
          <span>Requests a minute</span>
          <input type="number" min={1} value={perMinute} onChange={(e) => setPerMinute(e.target.value)} />
        </label>
        <div className="actions">
          <button type="submit" className="button" disabled={!token.trim() || (!quota.trim() && !perMinute.trim())}>
            Set quota
          </button>
          <button type="button" className="button button--secondary" disabled={!token.trim()} onClick={() => void exportAs('csv')}>
            Export CSV
          </button>
          <button type="button" className="button button--secondary" disabled={!token.trim()} onClick={() => void exportAs('json')}>
            Export JSON
          </button>
          <button
            type="button"
            className="button button--secondary"
            disabled={!token.trim()}
            onClick={() => {
              if (window.confirm('Reset the class board? Every vote and result is deleted (export first to keep them).'))
                void act(async () => {
                  await adminFetch('reset', token.trim(), { method: 'POST', body: '{}' });
                  return 'The board was reset.';
                });
            }}
          >
            Reset board
          </button>
        </div>
      </form>
      {message && (
        <p role={message.kind === 'ok' ? 'status' : 'alert'} className={`notice notice--${message.kind}`}>
          {message.text}
        </p>
      )}
    </details>
  );
}
