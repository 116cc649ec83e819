import { useEffect, useMemo } from 'react';
import type { AdapterSummary } from '../../gpu/context';
import { attentionPathRows, buildGpuReport, matmulPathRows, type KernelPathRow, type LimitRow } from '../gpuReport';
import { useGpuStore } from '../gpuStore';
import { SelfTestPanel } from './SelfTestPanel';

/** The GPU status page: which adapter the studio runs on, what it offers, and whether the kernels work. */
export function GpuStatusPage() {
  const status = useGpuStore((s) => s.status);
  const connect = useGpuStore((s) => s.connect);

  useEffect(() => {
    void connect();
  }, [connect]);

  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">GPU status</h1>
      <p className="lead">
        Fuse Studio trains on your own GPU through WebGPU. This page shows the adapter the browser gives us, the features
        and limits that decide what can be trained here, and a self-test of every kernel against its float64 reference.
      </p>
      {(status.kind === 'idle' || status.kind === 'connecting') && (
        <p role="status" className="notice">
          Connecting to the GPU…
        </p>
      )}
      {status.kind === 'unavailable' && <MissingWebGpu message={status.message} />}
      {status.kind === 'error' && (
        <section role="alert" className="card card--error" aria-labelledby="gpu-error-title">
          <h2 id="gpu-error-title">The GPU could not be used</h2>
          <p>{status.message}</p>
        </section>
      )}
      {status.kind === 'ready' && <AdapterReport adapter={status.adapter} />}
    </main>
  );
}

function MissingWebGpu({ message }: { message: string }) {
  return (
    <section role="alert" className="card card--error" aria-labelledby="no-webgpu-title">
      <h2 id="no-webgpu-title">WebGPU is not available</h2>
      <p>{message}</p>
      <h3>What you can do</h3>
      <ul>
        <li>Open the studio in a recent Chrome or Edge (version 113 or later) on a desktop or laptop.</li>
        <li>
          On Linux, start Chrome with <code>--enable-unsafe-webgpu</code> (or enable “Unsafe WebGPU support” in{' '}
          <code>chrome://flags</code>), and check <code>chrome://gpu</code>.
        </li>
        <li>
          Serve the studio over <code>https://</code>, or from <code>http://localhost</code> /{' '}
          <code>http://127.0.0.1</code>: WebGPU exists only in secure contexts.
        </li>
        <li>
          Without a browser, the <code>fuse-studio</code> command-line tool runs the same engine in Node.
        </li>
      </ul>
    </section>
  );
}

function AdapterReport({ adapter }: { adapter: AdapterSummary }) {
  const report = useMemo(() => buildGpuReport(adapter), [adapter]);
  return (
    <>
      <div className="grid">
        <section className="card" aria-labelledby="adapter-title">
          <h2 id="adapter-title">Adapter</h2>
          <p className="adapter-name" data-testid="adapter-name">
            {report.title}
          </p>
          {report.isFallback && (
            <p className="notice notice--warn">
              This is a CPU fallback adapter (software WebGPU). Kernels run correctly but far slower than on a GPU: enough
              for tests and tiny demos, not for training a 1B model.
            </p>
          )}
          <dl className="facts">
            {report.facts.map((f) => (
              <div key={f.label}>
                <dt>{f.label}</dt>
                <dd>{f.value}</dd>
              </div>
            ))}
          </dl>
        </section>

        <section className="card" aria-labelledby="features-title">
          <h2 id="features-title">Features</h2>
          <ul className="key-features" aria-label="Features the engine uses">
            {report.keyFeatures.map((f) => (
              <li key={f.name} className={f.present ? 'feature feature--yes' : 'feature feature--no'}>
                <span className="badge">{f.present ? 'available' : 'missing'}</span>
                <code>{f.name}</code>
                <span className="why">{f.why}</span>
              </li>
            ))}
          </ul>
          <details>
            <summary>Other features ({report.otherFeatures.length})</summary>
            <ul className="feature-list">
              {report.otherFeatures.map((f) => (
                <li key={f}>
                  <code>{f}</code>
                </li>
              ))}
            </ul>
          </details>
        </section>
      </div>

      <KernelPaths adapter={adapter} />

      <section className="card" aria-labelledby="limits-title">
        <h2 id="limits-title">Limits</h2>
        <p className="hint">
          The studio requests the adapter’s real buffer-size and workgroup limits rather than the spec defaults. Values
          above the default are marked <span className="raised-mark">▲</span>.
        </p>
        <LimitsTable caption="Limits that matter for training" rows={report.trainingLimits} withWhy />
        <details>
          <summary>All other limits ({report.otherLimits.length})</summary>
          <LimitsTable caption="Other limits" rows={report.otherLimits} />
        </details>
      </section>

      <SelfTestPanel />
    </>
  );
}

function LimitsTable({ caption, rows, withWhy = false }: { caption: string; rows: LimitRow[]; withWhy?: boolean }) {
  return (
    <div className="table-wrap">
      <table className="limits table--stack">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Limit</th>
            <th scope="col" className="num">
              This adapter
            </th>
            <th scope="col" className="num">
              Spec default
            </th>
            {withWhy && <th scope="col">Why it matters</th>}
          </tr>
        </thead>
        <tbody>
          {rows.map((l) => (
            <tr key={l.name}>
              <th scope="row">
                <code>{l.name}</code>
              </th>
              <td className="num" data-label="This adapter" title={l.value.toLocaleString('en-US')}>
                {l.display}
                {l.raised && (
                  <>
                    <span className="raised-mark" aria-hidden="true">
                      {' '}
                      ▲
                    </span>
                    <span className="sr-only"> (above the spec default)</span>
                  </>
                )}
              </td>
              <td className="num muted" data-label="Spec default">
                {l.specDefaultDisplay}
              </td>
              {withWhy && <td className="why">{l.why}</td>}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The attention and matmul kernel paths that exist and which of them this adapter takes. */
function KernelPaths({ adapter }: { adapter: AdapterSummary }) {
  const results = useGpuStore((s) => s.selfTest.results);
  const proved = useMemo(() => results.flatMap((r) => (r.proved ? [r.proved] : [])), [results]);
  const attention = useMemo(() => attentionPathRows(adapter, proved), [adapter, proved]);
  const matmul = useMemo(() => matmulPathRows(adapter, proved), [adapter, proved]);
  return (
    <>
      <section className="card" aria-labelledby="attention-paths-title">
        <h2 id="attention-paths-title">Attention kernels</h2>
        <p className="hint">
          Each path is checked against its float64 reference by the self-test below. Paths made for GPUs are taken only after
          they passed it on this device. Long sequences are cut into several dispatches of at most 2³² FLOPs each, so no
          single one can trip the browser’s GPU watchdog on a slow GPU.
        </p>
        <PathsTable caption="Attention kernel paths" rows={attention} testId="attention-path-status" />
      </section>
      <section className="card" aria-labelledby="matmul-paths-title">
        <h2 id="matmul-paths-title">Matrix-product kernels</h2>
        <p className="hint">
          Every linear layer and its gradients. The f32 tiled path is the reference on GPUs; each faster path is taken only
          where the adapter has the feature it needs and the self-test proved it on this device.
        </p>
        <PathsTable caption="Matmul kernel paths" rows={matmul} testId="matmul-path-status" />
      </section>
    </>
  );
}

function PathsTable({ caption, rows, testId }: { caption: string; rows: KernelPathRow[]; testId: string }) {
  return (
    <div className="table-wrap">
      <table className="limits table--stack">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Path</th>
            <th scope="col">How it works</th>
            <th scope="col">On this adapter</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.name}>
              <th scope="row">
                {r.name} <code>{r.shader}</code>
              </th>
              <td className="why">{r.what}</td>
              <td className="why" data-label="Here" data-testid={testId}>
                {r.status}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
