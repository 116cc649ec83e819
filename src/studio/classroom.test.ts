import { describe, expect, it } from 'vitest';
import type { EvalReport } from '../eval/report';
import type { ParsedBundle } from './bundle';
import { boardResults, percentWithInterval, recipeSummary, usageLine } from './classroom';

describe('classroom studio helpers', () => {
  it('turns an evaluation report into board rows: counted metrics with items, per model', () => {
    const report = {
      models: ['base', 'sft'],
      results: {
        base: { math: { n: 10, correct: 3, accuracy: 0.3, ci95: [0.1, 0.6] }, sft_loss: { n: 4, tokens: 99, mean: 2, perplexity: 7.4 } },
        sft: { math: { n: 10, correct: 6, accuracy: 0.6, ci95: [0.3, 0.8] }, code: { n: 0, correct: 0, accuracy: null, ci95: null, why: 'no code items' }, pref_accuracy: { n: 5, correct: 4, accuracy: 0.8, ci95: [0.4, 0.96], mean_margin: 0.2 } },
      },
    } as unknown as EvalReport;
    expect(boardResults(report, (m) => m.toUpperCase())).toEqual([
      { model: 'BASE', metric: 'math accuracy', correct: 3, total: 10 },
      { model: 'SFT', metric: 'math accuracy', correct: 6, total: 10 },
      { model: 'SFT', metric: 'preference accuracy', correct: 4, total: 5 },
    ]);
  });

  it('says usage and shares plainly', () => {
    expect(usageLine({ student: 's', used: 12, quota: 40, perMinute: 60 })).toBe('12 of 40 source requests used (28 left; at most 60 a minute)');
    expect(usageLine(null)).toBeNull();
    expect(percentWithInterval(0.8333, { low: 0.436, high: 0.97 })).toBe('83% (44–97%)');
  });

  it('says what the class recipe brought', () => {
    const b = {
      project: { sources: [{ enabled: true }, { enabled: false }], settings: { judge: { kind: 'judge' } }, training: { sft: {} }, dataRun: { doc: { imports: [{ prompts: [1, 2] }, { prompts: [3] }] } } },
      adapters: [{}],
    } as unknown as ParsedBundle;
    expect(recipeSummary(b)).toBe('Class recipe loaded: 1 source through the classroom and its judge (no API key needed), 3 prompts on the Data page, the training settings, 1 adapter.');
    expect(recipeSummary({ project: { sources: [{ enabled: true }, { enabled: true }], settings: {}, training: null, dataRun: null }, adapters: [] } as unknown as ParsedBundle)).toBe(
      'Class recipe loaded: 2 sources through the classroom (no API key needed).',
    );
  });
});
