import { onLinkClick } from '../navigation';

/**
 * Evaluate: the recipe's step between training and comparing, not built yet. The page says what
 * it will hold and what to use meanwhile; it shows no numbers it did not measure.
 */
export function EvaluatePage() {
  return (
    <main id="main" tabIndex={-1} className="page" aria-labelledby="page-title">
      <h1 id="page-title">Evaluate</h1>
      <p className="lead">Measure whether the tuned model is better than the base model, on prompts it was not trained on.</p>
      <section className="card" aria-labelledby="eval-status-title">
        <h2 id="eval-status-title">Not built yet</h2>
        <p data-testid="evaluate-status">
          This page does not measure anything yet: no scores are shown here until the evaluation exists. Meanwhile,{' '}
          <a href="/compare" onClick={onLinkClick('/compare')}>
            Compare
          </a>{' '}
          lets you read the base and tuned model’s answers side by side, and vote blind.
        </p>
        <h3>What it will hold</h3>
        <ul>
          <li>The held-out prompts the Data page set aside, answered by the base model, the SFT adapter and the SFT+DPO adapter.</li>
          <li>Their loss on the held-out SFT rows, and how often each prefers the chosen answer of a held-out DPO pair.</li>
          <li>Math and code pass rates (the answer checked against the gold answer, the code against its tests).</li>
          <li>A judge’s pairwise verdicts, with confidence intervals and a paired test, so a difference is not read into noise.</li>
        </ul>
      </section>
    </main>
  );
}
