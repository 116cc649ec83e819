// The studio's navigation as the recipe's steps (model → sources → data → train → evaluate →
// compare → export), each with its state, the loaded model, and the next action. The states are
// read from the page stores (flow.ts turns them into steps); this file only selects and shows.

import { useEffect, useMemo } from 'react';
import { create } from 'zustand';
import { BASE, useCompareStore } from '../compareStore';
import { activeDataRunId, useDataStore } from '../dataStore';
import { useEvalStore } from '../evalStore';
import { useExportStore } from '../exportStore';
import { flowSteps, modelDisplayName, nextAction, type FlowFacts, type FlowStep, type StepState } from '../flow';
import { useModelStore } from '../modelStore';
import { onLinkClick } from '../navigation';
import { pipelineSources, useSourcesStore } from '../sourcesStore';
import { useTrainStore } from '../trainStore';

// Whether something was exported in this tab: the export store keeps only its last notice, so an
// action that ends (busy → null) with a success is remembered here. Imports do not count.
const useExported = create<{ exported: boolean }>(() => ({ exported: false }));
useExportStore.subscribe((s, prev) => {
  const action = prev.busy?.action;
  if (action && !s.busy && s.notice?.kind === 'ok' && action !== 'import-adapter' && action !== 'import-bundle') useExported.setState({ exported: true });
});

/** Reads what the steps need from storage once (sources, the data run) and the runs of each loaded model. */
export function useFlowSync(): void {
  const modelKey = useModelStore((s) => (s.load.kind === 'loaded' ? (s.model?.modelKey ?? null) : null));
  useEffect(() => {
    void useSourcesStore.getState().load();
    // Only an existing run: opening the Data page is what starts one.
    if (activeDataRunId()) void useDataStore.getState().load();
  }, []);
  useEffect(() => {
    if (modelKey) void useTrainStore.getState().refresh(modelKey);
    if (modelKey) void useEvalStore.getState().refresh(modelKey);
  }, [modelKey]);
}

export function useFlowFacts(): FlowFacts {
  const load = useModelStore((s) => s.load.kind);
  const model = useModelStore((s) => s.model);
  const entries = useSourcesStore((s) => s.entries);
  const prompts = useDataStore((s) => s.doc?.imports.reduce((n, i) => n + i.prompts.length, 0) ?? 0);
  const responses = useDataStore((s) => s.browse.responses.length);
  const dataRunning = useDataStore((s) => s.job.running);
  const report = useDataStore((s) => s.report);
  const runs = useTrainStore((s) => s.runs);
  const live = useTrainStore((s) => s.activeRunId !== null);
  const adapters = useTrainStore((s) => s.adapters.length);
  const evalRunning = useEvalStore((s) => s.activeId !== null);
  const evaluations = useEvalStore((s) => s.evaluations);
  const compareRunning = useCompareStore((s) => s.running);
  const compared = useCompareStore((s) => Object.entries(s.answers).some(([k, a]) => k !== BASE && a.status === 'done') || s.blind.votes.length > 0);
  const exported = useExported((s) => s.exported);
  return useMemo(() => {
    const key = load === 'loaded' ? (model?.modelKey ?? null) : null;
    const done = runs.filter((r) => r.modelKey === key && r.status === 'completed');
    return {
      model: { state: load === 'loaded' && model ? 'loaded' : load === 'loading' ? 'loading' : load === 'error' ? 'error' : 'none', name: model ? modelDisplayName(model) : null, demo: model?.modelKey === 'demo' },
      sources: { entries: entries.length, usable: pipelineSources(entries).length },
      data: { prompts, responses, running: dataRunning, sft: report ? (report.counts['sft.kept'] ?? 0) : null, dpo: report ? (report.counts['dpo.kept'] ?? 0) : null },
      train: { live, sftRuns: done.filter((r) => r.stage === 'sft').length, dpoRuns: done.filter((r) => r.stage === 'dpo').length, adapters: key ? adapters : 0 },
      evaluate: { running: evalRunning, completed: evaluations.filter((e) => e.modelKey === key && e.status === 'completed').length },
      compare: { running: compareRunning, compared },
      exported,
    };
  }, [load, model, entries, prompts, responses, dataRunning, report, runs, live, adapters, evalRunning, evaluations, compareRunning, compared, exported]);
}

const STATE_TEXT: Record<StepState, string> = { done: 'done', active: 'in progress', todo: 'to do' };

function StepLink({ step, n, current }: { step: FlowStep; n: number; current: boolean }) {
  const id = `step-${step.id}-state`;
  return (
    <li className={`step step--${step.state}`} data-step={step.id} data-state={step.state}>
      <a href={step.path} aria-current={current ? 'page' : undefined} aria-describedby={id} onClick={onLinkClick(step.path)} title={`${STATE_TEXT[step.state]}: ${step.detail}`}>
        <span className="step-mark" aria-hidden="true">
          {step.state === 'done' ? '✓' : n}
        </span>
        {step.label}
      </a>
      <span id={id} hidden>
        {`Step ${n}, ${STATE_TEXT[step.state]}: ${step.detail}`}
      </span>
    </li>
  );
}

/** The header: the brand (home), the steps with their states, the loaded model and GPU status. */
export function StudioNav({ route }: { route: string }) {
  const facts = useFlowFacts();
  const steps = useMemo(() => flowSteps(facts), [facts]);
  const m = facts.model;
  return (
    <header className="topbar">
      <a className="brand" href="/" onClick={onLinkClick('/')} aria-current={route === '/' ? 'page' : undefined}>
        Fuse Studio
      </a>
      <nav aria-label="Studio" className="steps-nav">
        <ol className="steps">
          {steps.map((s, k) => (
            <StepLink key={s.id} step={s} n={k + 1} current={route === s.path} />
          ))}
          {/* Not a step: the GPU page serves every step. */}
          <li className="nav-aside-item">
            <a className="nav-aside" href="/gpu" aria-current={route === '/gpu' ? 'page' : undefined} onClick={onLinkClick('/gpu')}>
              GPU status
            </a>
          </li>
        </ol>
      </nav>
      <a className={`model-chip model-chip--${m.state}`} href="/model" onClick={onLinkClick('/model')} data-testid="loaded-model" title="The loaded model (open the Model page)">
        {m.state === 'loaded' ? (
          <>
            <span className="model-chip-label">Model:</span> <strong>{m.name}</strong>
            {m.demo && <span className="badge badge--warn">random</span>}
          </>
        ) : m.state === 'loading' ? (
          'Loading a model…'
        ) : (
          'No model loaded'
        )}
      </a>
    </header>
  );
}

/** The one thing to do next, under the header on every page. */
export function NextStep({ route }: { route: string }) {
  const facts = useFlowFacts();
  const next = useMemo(() => nextAction(facts), [facts]);
  return (
    <div className="next-step" role="region" aria-label="Next step" data-testid="next-step">
      {next === null ? (
        <p>
          <span>
            <span aria-hidden="true">✓ </span>Every step is done. Compare more prompts, train again with more data, or export what you made.
          </span>
        </p>
      ) : route === next.path ? (
        <p>
          <span>
            <strong>Next, on this page:</strong> {next.label}. <span className="muted">{next.why}</span>
          </span>
        </p>
      ) : (
        <p>
          <span className="muted">{next.why}</span>{' '}
          <a className="button next-step-action" href={next.path} onClick={onLinkClick(next.path)}>
            {next.label} →
          </a>
        </p>
      )}
    </div>
  );
}
