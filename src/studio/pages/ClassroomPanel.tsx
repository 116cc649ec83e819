import { useState } from 'react';
import { formatBytes } from '../../model/memory-plan';
import { parseBundle, unzipFiles } from '../bundle';
import { fetchRecipe, recipeSummary, useClassroomStore, usageLine, type ClassroomModel } from '../classroom';
import { useExportStore } from '../exportStore';
import { useModelStore } from '../modelStore';
import { onLinkClick } from '../navigation';

/** The spec the Model page loads a classroom model by: its repo (at its revision). */
export function classroomSpec(m: ClassroomModel): string {
  return m.revision === 'main' ? m.repo : `${m.repo}@${m.revision}`;
}

/**
 * The Model page's "From the classroom" card, when the studio is served by `fuse-studio classroom`:
 * its models (downloaded from the instructor's machine, the classroom's mirror as the Hub), and the
 * class recipe in one click (the project-bundle import of the Export page).
 */
export function ClassroomPanel() {
  const info = useClassroomStore((s) => s.info);
  const loadModel = useModelStore((s) => s.loadModel);
  const busy = useModelStore((s) => s.load.kind === 'loading');
  const exportBusy = useExportStore((s) => s.busy);
  const importBundle = useExportStore((s) => s.importBundle);
  const notice = useExportStore((s) => s.notice);
  const refresh = useClassroomStore((s) => s.refresh);
  const [recipeError, setRecipeError] = useState<string | null>(null);
  const [loaded, setLoaded] = useState<string | null>(null);
  if (!info) return null;

  const loadRecipe = async () => {
    setRecipeError(null);
    setLoaded(null);
    try {
      const file = await fetchRecipe();
      const summary = recipeSummary(parseBundle(unzipFiles(new Uint8Array(await file.arrayBuffer()))));
      await importBundle(file);
      // The import's own notice speaks of keys to enter and reloads: in a classroom neither applies.
      const n = useExportStore.getState().notice;
      if (n?.area === 'bundle' && n.kind === 'error') setRecipeError(n.text);
      else setLoaded(summary + (n?.kind === 'warn' && n.text.includes('Skipped:') ? ` Skipped: ${n.text.split('Skipped:')[1]!.trim()}` : ''));
      void refresh();
    } catch (e) {
      setRecipeError((e as Error).message);
    }
  };
  const usage = usageLine(info.you);
  return (
    <section className="card classroom-card" aria-labelledby="classroom-title">
      <h2 id="classroom-title">From the classroom</h2>
      <p className="hint">
        This studio is served by your instructor’s machine. Models download from it (not from the Internet), and the class recipe’s sources go through it: no API key
        needed here.
      </p>
      <div className="actions">
        {info.models.map((m) => (
          <button
            key={m.repo}
            type="button"
            className="button"
            disabled={busy}
            onClick={() => void loadModel({ kind: 'remote', spec: classroomSpec(m), endpoint: window.location.origin })}
          >
            Load {m.repo} from the classroom ({formatBytes(m.bytes)})
          </button>
        ))}
        <button type="button" className="button button--secondary" disabled={Boolean(exportBusy)} onClick={() => void loadRecipe()}>
          Load the class recipe
        </button>
        <a href="/board" onClick={onLinkClick('/board')}>
          Class board
        </a>
      </div>
      <p className="hint">
        The recipe brings the instructor’s sources{info.sources.some((s) => s.judge) ? ', judge' : ''}, prompts, training settings and adapters; load the model first so its
        adapters can be checked against it.{usage ? ` You: ${usage}.` : ''}
      </p>
      {recipeError && (
        <p role="alert" className="notice notice--error">
          {recipeError}
        </p>
      )}
      {loaded && (
        <p role={notice?.kind === 'warn' ? 'alert' : 'status'} className={`notice notice--${notice?.kind === 'warn' ? 'warn' : 'ok'}`} data-testid="classroom-recipe-notice">
          {loaded}
        </p>
      )}
    </section>
  );
}
