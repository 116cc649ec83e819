import { describe, expect, it } from 'vitest';
import { HfRowsError, importPromptRows, PromptImportError } from '../data/prompts';
import { responseKey } from '../data/types';
import { makeSource } from '../data/sources';
import { emptyImportProblem, explainImportError, importSummary, runPlanCounts } from './importView';

const thrown = (f: () => unknown): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('no error');
};

describe('import messages', () => {
  const file = { kind: 'file' as const, name: 'questions.csv' };
  const rows = [{ uid: 'a', question_text: 'What is the boiling point of water at sea level?', tag: 'x' }];

  it('names the column to choose instead of mapping.prompt', () => {
    const m = explainImportError(file, thrown(() => importPromptRows(rows)));
    expect(m).toBe(
      'questions.csv has no column the importer recognises as the prompt. Its columns are “uid”, “question_text”, “tag”. Open “Column mapping” and type the prompt’s column under “Prompt column” (probably “question_text”, which holds the longest texts), then import again.',
    );
    expect(m).not.toContain('mapping.');
  });

  it('says a mapped column is not there, and what to type instead', () => {
    expect(explainImportError(file, thrown(() => importPromptRows(rows, { mapping: { prompt: 'question' } })))).toBe(
      'questions.csv has no column “question”, which is set as the Prompt column. Its columns are “uid”, “question_text”, “tag”. Under “Column mapping”, type one of them as the Prompt column, or leave it blank to detect it.',
    );
    expect(explainImportError(file, thrown(() => importPromptRows(rows, { mapping: { prompt: 'question_text', gold: 'answer' } })))).toContain(
      'type one of them as the Gold answer column, leave it blank to detect it, or type “-” for none',
    );
    expect(explainImportError(file, new PromptImportError('invalid JSON: Unexpected token'))).toBe('Could not import questions.csv: invalid JSON: Unexpected token');
  });

  it('tells offline from gated on the Hub, and keeps the split advice', () => {
    const hf = { kind: 'hf' as const, dataset: 'org/data', token: false };
    expect(explainImportError(hf, new HfRowsError('fetch https://datasets-server.huggingface.co/rows?… failed: Failed to fetch'))).toMatch(
      /^Could not reach datasets-server\.huggingface\.co .*this device may be offline\. Check the network, or download the dataset and import the file\./,
    );
    expect(explainImportError(hf, new HfRowsError('datasets-server 401 for org/data: not accessible', 401))).toBe(
      'org/data is gated or private (401): accept its terms on its Hub page, then paste an access token under “Access token”.',
    );
    expect(explainImportError({ ...hf, token: true }, new HfRowsError('x', 403))).toContain('with your token (403)');
    const split = new HfRowsError('org/data has no split "train": its splits are train_prefs, test_prefs. Choose one of them', 404, [{ config: 'default', split: 'train_prefs' }]);
    expect(explainImportError(hf, split)).toBe('Could not import org/data: org/data has no split "train": its splits are train_prefs, test_prefs. Choose one of them (under “Config” and “Split”).');
  });

  it('an import that adds nothing is an error that says why', () => {
    expect(emptyImportProblem(file, { rows: 0, added: 0, errors: [], duplicates: 0, skippedExisting: 0 })).toBe('questions.csv has no rows: the file is empty, or holds only blank lines.');
    expect(emptyImportProblem(file, { rows: 2, added: 0, errors: [{ row: 1, line: 2, message: 'empty prompt' }, { row: 2, line: 3, message: 'empty prompt' }], duplicates: 0, skippedExisting: 0 })).toBe(
      'None of the 2 row(s) of questions.csv became a prompt: 2 bad row(s) (first, line 2: empty prompt). Fix the rows, or check “Column mapping”.',
    );
    expect(emptyImportProblem(file, { rows: 3, added: 0, errors: [], duplicates: 0, skippedExisting: 3 })).toBe('Nothing new in questions.csv: its 3 row(s) are prompts the run already has.');
    expect(emptyImportProblem(file, { rows: 3, added: 1, errors: [], duplicates: 0, skippedExisting: 2 })).toBeNull();
  });

  it('a partial import says what it left out', () => {
    expect(importSummary({ rows: 10, added: 7, errors: [{ row: 3, message: 'x' }, { row: 4, message: 'y' }], duplicates: 1, skippedExisting: 0 })).toEqual({
      text: '10 row(s) read, 7 prompt(s) added; left out: 2 bad row(s), listed below, 1 repeating an earlier row.',
      partial: true,
    });
    expect(importSummary({ rows: 4, added: 4, errors: [], duplicates: 0, skippedExisting: 0 })).toEqual({ text: '4 row(s) read, 4 prompt(s) added.', partial: false });
  });
});

describe('run counts', () => {
  it('counts stored responses over the same plan as the requests, and says what is stored outside it', () => {
    const a = { ...makeSource({ baseURL: 'http://a/v1', model: 'm' }), id: 'a', name: 'A', n: 2 };
    const b = { ...makeSource({ baseURL: 'http://b/v1', model: 'm' }), id: 'b', name: 'B', n: 1 };
    const prompts = [
      { id: 'p1', text: 'one' },
      { id: 'p2', text: 'two' },
    ];
    const stored = [responseKey('a', 'p1', 0), responseKey('a', 'p1', 1), responseKey('b', 'p2', 0), responseKey('gone', 'p1', 0), responseKey('a', 'removed', 0), responseKey('a', 'p1', 5)];
    const c = runPlanCounts([a, b], prompts, stored, [responseKey('a', 'p2', 0), responseKey('a', 'p1', 0)]);
    expect(c).toEqual({ planned: 6, stored: 3, failed: 1, outside: 3 });
    expect(c.stored).toBeLessThanOrEqual(c.planned);
  });
});
