import type { SelfTestResult } from '../../engine/selftest';
import { useGpuStore } from '../gpuStore';

function formatError(x: number): string {
  if (Number.isNaN(x)) return '—';
  if (x === 0) return '0';
  return x.toExponential(2);
}

function formatBound(x: number): string {
  if (Number.isNaN(x)) return '—';
  if (x === 0) return 'exact';
  return x.toExponential(0);
}

/** "Run GPU self-test": every kernel on small random inputs against its float64 reference. */
export function SelfTestPanel() {
  const selfTest = useGpuStore((s) => s.selfTest);
  const run = useGpuStore((s) => s.runSelfTest);
  const { running, results, done, total, current, error } = selfTest;
  const finished = !running && results.length > 0;
  const failed = results.filter((r) => !r.pass).length;
  const skipped = results.filter((r) => r.skipped).length;
  const ran = results.length - skipped;

  return (
    <section className="card" aria-labelledby="selftest-title">
      <h2 id="selftest-title">GPU self-test</h2>
      <p className="hint">
        Runs each kernel once on small random inputs (ragged sizes, outputs poisoned with NaN) and compares the result with
        its float64 CPU reference by relative error.
      </p>
      <div className="actions">
        {/* aria-disabled rather than disabled: the button keeps keyboard focus while the test runs. */}
        <button type="button" onClick={() => void run()} aria-disabled={running} aria-describedby="selftest-status">
          {running ? 'Running…' : 'Run GPU self-test'}
        </button>
        <p id="selftest-status" role="status" className="selftest-status">
          {running && (current ? `Running ${current} (${done + 1} of ${total})…` : 'Starting…')}
          {finished &&
            (failed === 0
              ? `All ${ran} kernels passed${skipped ? ` (${skipped} not available on this GPU)` : ''}.`
              : `${failed} of ${ran} kernels failed.`)}
        </p>
      </div>
      {error && (
        <p role="alert" className="notice notice--error">
          {error}
        </p>
      )}
      {results.length > 0 && (
        <div className="table-wrap">
          <table className="selftest">
            <caption>Self-test results</caption>
            <thead>
              <tr>
                <th scope="col">Op</th>
                <th scope="col" className="num">
                  Relative error
                </th>
                <th scope="col" className="num">
                  Bound
                </th>
                <th scope="col">Result</th>
                <th scope="col" className="num">
                  Time
                </th>
              </tr>
            </thead>
            <tbody>
              {results.map((r) => (
                <ResultRow key={r.name} r={r} />
              ))}
            </tbody>
          </table>
          {finished && (
            <p className="hint">
              Seed {results[0]!.seed}: <code>fuse-studio selftest --seed {results[0]!.seed}</code> draws the same inputs in
              Node.
            </p>
          )}
        </div>
      )}
    </section>
  );
}

function ResultRow({ r }: { r: SelfTestResult }) {
  return (
    <tr className={r.pass ? 'pass' : 'fail'}>
      <th scope="row">{r.name}</th>
      <td className="num">{formatError(r.relError)}</td>
      <td className="num">{formatBound(r.bound)}</td>
      <td>
        {r.skipped ? (
          <span className="badge">skipped</span>
        ) : (
          <span className={r.pass ? 'badge badge--pass' : 'badge badge--fail'}>{r.pass ? 'pass' : 'fail'}</span>
        )}
        {r.skipped && <span className="hint"> {r.skipped}</span>}
        {r.error && <span className="error-text"> {r.error}</span>}
      </td>
      <td className="num">{r.ms < 10 ? r.ms.toFixed(1) : Math.round(r.ms)} ms</td>
    </tr>
  );
}
