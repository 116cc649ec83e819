import { useEffect, useState, type MouseEvent } from 'react';
import type { ComponentType } from 'react';
import { ComparePage } from './pages/ComparePage';
import { DataPage } from './pages/DataPage';
import { ExportPage } from './pages/ExportPage';
import { GpuStatusPage } from './pages/GpuStatusPage';
import { ModelPage } from './pages/ModelPage';
import { SourcesPage } from './pages/SourcesPage';
import { TrainPage } from './pages/TrainPage';

// The pages in the order a user walks them (model → sources → data → train → compare → export),
// routed by path: vite preview and any static host with an SPA fallback serve index.html for each.
const ROUTES: readonly { path: string; label: string; page: ComponentType }[] = [
  { path: '/', label: 'Model', page: ModelPage },
  { path: '/sources', label: 'Sources', page: SourcesPage },
  { path: '/data', label: 'Data', page: DataPage },
  { path: '/train', label: 'Train', page: TrainPage },
  { path: '/compare', label: 'Compare', page: ComparePage },
  { path: '/export', label: 'Export', page: ExportPage },
  { path: '/gpu', label: 'GPU status', page: GpuStatusPage },
];
type RoutePath = string;

function currentRoute(): RoutePath {
  const path = window.location.pathname.replace(/\/+$/, '') || '/';
  return ROUTES.some((r) => r.path === path) ? path : '/';
}

export function App() {
  const [route, setRoute] = useState<RoutePath>(currentRoute);

  useEffect(() => {
    const onPop = () => setRoute(currentRoute());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const navigate = (e: MouseEvent<HTMLAnchorElement>, path: RoutePath) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    if (path !== route) window.history.pushState(null, '', path);
    setRoute(path);
    document.getElementById('main')?.focus();
  };

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Fuse Studio</span>
        <nav aria-label="Studio">
          <ul>
            {ROUTES.map((r) => (
              <li key={r.path}>
                <a href={r.path} aria-current={route === r.path ? 'page' : undefined} onClick={(e) => navigate(e, r.path)}>
                  {r.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      {(() => {
        const Page = ROUTES.find((r) => r.path === route)!.page;
        return <Page />;
      })()}
      <footer className="footer">
        <p>Fine-tune small Llama models in your browser, with handwritten WebGPU kernels.</p>
      </footer>
    </>
  );
}
