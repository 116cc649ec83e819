// Evaluation results to the class board: when an evaluation on the Evaluate page completes in a
// classroom, its counted results (math accuracy, code pass@1, held-out preference accuracy,
// multiple-choice accuracy: correct of n per model) go to the board once. Losses and judge win
// rates are not counts of items right, so they stay in the page's own report.
import { boardResults, useClassroomStore } from './classroom';
import { modelLabel } from './compareStore';
import { useEvalStore } from './evalStore';

const SENT_KEY = 'fuse-studio.classroomEvalSent';

function sentIds(): Set<string> {
  try {
    return new Set(JSON.parse(localStorage.getItem(SENT_KEY) ?? '[]') as string[]);
  } catch {
    return new Set();
  }
}

let watching = false;

/** Sends each completed evaluation's results to the board, once per evaluation (kept across reloads). */
export function watchEvaluations(): void {
  if (watching) return;
  watching = true;
  const check = () => {
    const sent = sentIds();
    for (const e of useEvalStore.getState().evaluations) {
      if (e.status !== 'completed' || !e.report || sent.has(e.evalId)) continue;
      sent.add(e.evalId);
      localStorage.setItem(SENT_KEY, JSON.stringify([...sent]));
      for (const row of boardResults(e.report, (m) => modelLabel(m === 'base' ? '__base__' : m))) void useClassroomStore.getState().reportResult(row);
    }
  };
  useEvalStore.subscribe(check);
  check();
}
