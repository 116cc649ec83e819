import { useEffect, useRef, useState } from 'react';
import type { ComponentType } from 'react';
import { useClassroomStore } from './classroom';
import { watchEvaluations } from './classroomEval';
import { NextStep, StudioNav, useFlowSync } from './components/StepBar';
import { BoardPage } from './pages/BoardPage';
import { ComparePage } from './pages/ComparePage';
import { DataPage } from './pages/DataPage';
import { EvaluatePage } from './pages/EvaluatePage';
import { ExportPage } from './pages/ExportPage';
import { GpuStatusPage } from './pages/GpuStatusPage';
import { HomePage } from './pages/HomePage';
import { ModelPage } from './pages/ModelPage';
import { SourcesPage } from './pages/SourcesPage';
import { TrainPage } from './pages/TrainPage';

// The pages, routed by path: vite preview and any static host with an SPA fallback serve
// index.html for each. The navigation (components/StepBar.tsx) lists them in the recipe's order.
const ROUTES: Record<string, ComponentType> = {
  '/': HomePage,
  '/model': ModelPage,
  '/sources': SourcesPage,
  '/data': DataPage,
  '/train': TrainPage,
  '/evaluate': EvaluatePage,
  '/compare': ComparePage,
  '/export': ExportPage,
  '/gpu': GpuStatusPage,
  '/board': BoardPage,
};

function currentRoute(): string {
  const path = window.location.pathname.replace(/\/+$/, '') || '/';
  return path in ROUTES ? path : '/';
}

export function App() {
  const [route, setRoute] = useState(currentRoute);
  const first = useRef(true);
  useFlowSync();

  // Served by `fuse-studio classroom`? (Sets the student id cookie before any model download.)
  useEffect(() => {
    void useClassroomStore.getState().detect().then((info) => {
      // Completed evaluations' results go to the class board.
      if (info) watchEvaluations();
    });
  }, []);

  useEffect(() => {
    const onPop = () => setRoute(currentRoute());
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  // After an in-app move, focus the new page (screen readers start there); not on first load.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('main')?.focus();
    window.scrollTo(0, 0);
  }, [route]);

  const Page = ROUTES[route]!;
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <StudioNav route={route} />
      {/* The class board is projected: no "next step" banner over it. */}
      {route !== '/board' && <NextStep route={route} />}
      <Page />
      <footer className="footer">
        <p>Fine-tune small language models in your browser, with handwritten WebGPU kernels.</p>
      </footer>
    </>
  );
}
