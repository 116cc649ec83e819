import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dedupePrompts,
  detectPromptFormat,
  fetchHfRows,
  fuseChatDomain,
  HfRowsError,
  importPromptRows,
  importPromptsCsv,
  importPromptsFile,
  importPromptsFromHf,
  importPromptsJson,
  importPromptsJsonl,
  importPromptsParquet,
  parseCsv,
  promptIdFor,
  PromptImportError,
  promptsFromFuseChat,
  splitEval,
  type Prompt,
} from './prompts';
import { toFuseChatDpoRow, toFuseChatSftRow, toJsonl } from './records';

const jsonl = (...rows: (string | object)[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n');

describe('JSONL and JSON prompts', () => {
  it('imports with auto-detected columns, per-row domains, normalization and bad lines by number', () => {
    const text = jsonl(
      { prompt: '  Write a haiku.\r\n ', system: 'Be poetic' }, // 1
      { question: 'ignored: prompt column is "prompt"' }, // 2 → missing prompt
      { prompt: 'What is 2+2?', domain: 'math', answer: '4' }, // 3
      { prompt: 'Reverse a string', domain: 'Coding', tests: ['assert rev("ab") == "ba"'] }, // 4
      '{"prompt": "broken', // 5
      { prompt: '   ' }, // 6 empty
      { prompt: 'x', domain: 'poetry' }, // 7 unknown domain
      { prompt: 'Solve x', domain: 'math' }, // 8 no gold
      { prompt: '写一首诗', domain: 'chinese' }, // 9
      { prompt: ' write a HAIKU. ', system: 'be  poetic' }, // 10 duplicate of 1
      { prompt: { nested: true } }, // 11 not text
    );
    const r = importPromptsJsonl(text, { source: 'p.jsonl' });
    expect(r.rows).toBe(11);
    expect(r.prompts.map((p) => [p.text, p.domain])).toEqual([
      ['Write a haiku.', 'instruction'],
      ['What is 2+2?', 'math'],
      ['Reverse a string', 'code'],
      ['写一首诗', 'other'],
    ]);
    expect(r.prompts[0]).toMatchObject({ system: 'Be poetic', origin: { source: 'p.jsonl', row: 1, line: 1 } });
    expect(r.prompts[1].gold).toBe('4');
    expect(r.prompts[2].tests).toEqual(['assert rev("ab") == "ba"']);
    expect(r.errors.map((e) => [e.line, e.message])).toEqual([
      [2, 'missing prompt column "prompt"'],
      [5, expect.stringMatching(/^invalid JSON/)],
      [6, 'empty prompt ("prompt")'],
      [7, expect.stringMatching(/unknown domain "poetry"/)],
      [8, expect.stringMatching(/math prompt without a gold answer/)],
      [11, 'prompt is not text (object)'],
    ]);
    expect(r.duplicates).toEqual([{ row: 10, line: 10, duplicateOf: r.prompts[0].id }]);
    // default ids are stable hashes of the normalized system + text
    expect(r.prompts[0].id).toBe(promptIdFor('Write a haiku.', 'Be poetic'));
    expect(r.prompts[0].id).toMatch(/^p[0-9a-f]{14}$/);
  });

  it('uses an explicit column mapping (dotted paths), an import domain and message-list prompts', () => {
    const rows = [
      { q: { text: 'Integrate x' }, sol: { final: 'x^2/2' }, key: 'm1' },
      { q: { text: 'Differentiate x^2' }, sol: { final: 2 }, key: 'm2' },
      { q: { text: 'No gold here' }, key: 'm3' },
    ];
    const r = importPromptRows(rows, { mapping: { prompt: 'q.text', gold: 'sol.final', id: 'key' }, domain: 'math' });
    expect(r.prompts.map((p) => [p.id, p.text, p.gold])).toEqual([
      ['m1', 'Integrate x', 'x^2/2'],
      ['m2', 'Differentiate x^2', '2'],
    ]);
    expect(r.errors).toEqual([{ row: 3, message: expect.stringMatching(/without a gold answer \("sol.final"\)/) }]);

    const msgs = importPromptRows([
      { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }] },
      { conversations: [{ from: 'human', value: 'H' }] },
      { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }] },
    ]);
    expect(msgs.prompts.map((p) => [p.system, p.text])).toEqual([['S', 'U']]);
    expect(msgs.errors[0]).toMatchObject({ row: 2, message: expect.stringMatching(/missing prompt column "messages"/) });
    expect(msgs.errors[1]).toMatchObject({ row: 3, message: expect.stringMatching(/multi-turn/) });

    expect(() => importPromptRows([{ a: 1 }], { mapping: { prompt: 'nope' } })).toThrow(PromptImportError);
    expect(() => importPromptRows([{ a: 1 }])).toThrow(/no prompt column/);
  });

  it('says which column is missing, lists the columns there are, and suggests the prompt’s', () => {
    const rows = [
      { uid: 'q1', body: 'How many legs does a spider have? Answer in one word.', tag: 'bio' },
      { uid: 'q2', body: 'Name the largest planet of the solar system.', tag: 'astro' },
    ];
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as PromptImportError;
      }
      throw new Error('no error');
    };
    const none = err(() => importPromptRows(rows));
    expect(none.column).toEqual({ field: 'prompt', columns: ['uid', 'body', 'tag'], suggestion: 'body' });
    expect(none.message).toContain('"body" holds the longest texts');
    expect(none.message).not.toContain('mapping.prompt');
    const wrong = err(() => importPromptRows(rows, { mapping: { prompt: 'text_body' } }));
    expect(wrong.column).toEqual({ field: 'prompt', given: 'text_body', columns: ['uid', 'body', 'tag'] });
    expect(wrong.message).toBe('column "text_body" (prompt) not found: the columns are uid, body, tag');
    expect(err(() => importPromptRows(rows, { mapping: { prompt: 'body', gold: 'answer' } })).column).toMatchObject({ field: 'gold', given: 'answer' });
    // An empty input is no rows, not a column problem.
    expect(importPromptsJsonl('\n\n')).toEqual({ prompts: [], errors: [], duplicates: [], rows: 0 });
  });

  it('reports a duplicate explicit id for different prompts', () => {
    const r = importPromptRows([
      { id: 'a', prompt: 'one' },
      { id: 'a', prompt: 'two' },
    ]);
    expect(r.prompts).toHaveLength(1);
    expect(r.errors).toEqual([{ row: 2, message: 'duplicate id "a" (row 1) for a different prompt' }]);
  });

  it('reads JSON arrays, {data:[…]} and JSON Lines saved as .json', () => {
    const arr = importPromptsJson(JSON.stringify([{ prompt: 'a' }, { prompt: 'b' }, 5]));
    expect(arr.prompts.map((p) => p.text)).toEqual(['a', 'b']);
    expect(arr.errors).toEqual([{ row: 3, message: 'row is not an object' }]);
    const data = importPromptsJson(JSON.stringify({ data: [{ instruction: 'c' }] }));
    expect(data.prompts.map((p) => p.text)).toEqual(['c']);
    const lines = importPromptsJson('{"prompt":"x"}\n{"prompt":"y"}\n');
    expect(lines.prompts.map((p) => p.text)).toEqual(['x', 'y']);
    expect(() => importPromptsJson('{"rows": 3}')).toThrow(/JSON array/);
    expect(() => importPromptsJson('{oops')).toThrow(/invalid JSON/);
  });

  it('dedupes across imports', () => {
    const a = importPromptRows([{ prompt: 'Same  prompt' }]).prompts;
    const b = importPromptRows([{ prompt: 'same prompt' }, { prompt: 'other' }]).prompts;
    const merged = dedupePrompts([...a, ...b]);
    expect(merged.prompts.map((p) => p.text)).toEqual(['Same  prompt', 'other']);
    expect(merged.duplicates).toEqual([{ id: b[0].id, duplicateOf: a[0].id }]);
  });
});

describe('CSV prompts', () => {
  it('parses RFC 4180: quoted commas, quotes and newlines, CRLF, blank lines', () => {
    const text = 'a,b\r\n"x, y","say ""hi"""\r\n\r\n"multi\nline",z\n';
    expect(parseCsv(text)).toEqual({
      records: [
        { line: 1, fields: ['a', 'b'] },
        { line: 2, fields: ['x, y', 'say "hi"'] },
        { line: 4, fields: ['multi\nline', 'z'] },
      ],
      errors: [],
    });
  });

  it('imports with row and line numbers for bad rows', () => {
    const text = [
      'id,prompt,domain,answer,tests', // line 1
      '1,"Hello, world",instruction,,', // 2 row 1
      '2,"A prompt', // 3 row 2: spans two lines
      'over two lines",math,42,', // 4
      '3,too,few', // 5 row 3: field count
      '4,"bad"quote,instruction,,', // 6 row 4: text after quote
      '5,Write fizzbuzz,code,,"[""assert fb(3) == \'Fizz\'"", ""assert fb(5) == \'Buzz\'""]"', // 7 row 5
      '6,,instruction,,', // 8 row 6: empty prompt
      '7,Code without tests,code,,', // 9 row 7
    ].join('\n');
    const r = importPromptsCsv(text, { source: 'p.csv' });
    expect(r.rows).toBe(7);
    expect(r.prompts.map((p) => [p.id, p.text, p.domain, p.origin?.row, p.origin?.line])).toEqual([
      ['1', 'Hello, world', 'instruction', 1, 2],
      ['2', 'A prompt\nover two lines', 'math', 2, 3],
      ['5', 'Write fizzbuzz', 'code', 5, 7],
    ]);
    expect(r.prompts[1].gold).toBe('42');
    expect(r.prompts[2].tests).toEqual(["assert fb(3) == 'Fizz'", "assert fb(5) == 'Buzz'"]);
    expect(r.errors).toEqual([
      { row: 3, line: 5, message: 'expected 5 fields, got 3' },
      { row: 4, line: 6, message: expect.stringMatching(/unexpected text after a closing quote/) },
      { row: 6, line: 8, message: 'empty prompt ("prompt")' },
      { row: 7, line: 9, message: expect.stringMatching(/code prompt without tests/) },
    ]);
  });

  it('reports an unterminated quote, reads TSV, and rejects a missing mapped column', () => {
    const r = importPromptsCsv('prompt\nok\n"never closed\nmore');
    expect(r.prompts.map((p) => p.text)).toEqual(['ok']);
    expect(r.errors).toEqual([{ row: 2, line: 3, message: 'unterminated quoted field' }]);
    const tsv = importPromptsCsv('question\tdomain\nWhat, then?\tinstruction\n');
    expect(tsv.prompts.map((p) => p.text)).toEqual(['What, then?']);
    expect(() => importPromptsCsv('a,b\n1,2', { mapping: { prompt: 'text' } })).toThrow(/column "text" \(prompt\) not found/);
    expect(() => importPromptsCsv('')).toThrow(/no header/);
  });
});

describe('Parquet prompts', () => {
  it('reads a Parquet file written by hyparquet-writer (strings, int64 ids, lists, nulls)', async () => {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: 'uid', data: [1n, 2n, 3n, 4n], type: 'INT64' },
        { name: 'problem', data: ['Compute 3*3, please', 'Sort a list', null, 'Compute 3*3, please'], type: 'STRING' },
        { name: 'kind', data: ['math', 'code', 'code', 'math'], type: 'STRING' },
        { name: 'expected_answer', data: ['9', null, null, '9'], type: 'STRING' },
        { name: 'test_list', data: [null, ['assert s([2,1]) == [1,2]'], ['x'], null] },
        { name: 'unused_big_column', data: ['r1', 'r2', 'r3', 'r4'], type: 'STRING' },
      ],
    });
    const r = await importPromptsParquet(new Uint8Array(buf), { mapping: { id: 'uid', domain: 'kind' }, source: 't.parquet' });
    expect(r.rows).toBe(4);
    expect(r.prompts).toEqual([
      { id: '1', text: 'Compute 3*3, please', domain: 'math', gold: '9', origin: { source: 't.parquet', row: 1 } },
      { id: '2', text: 'Sort a list', domain: 'code', tests: ['assert s([2,1]) == [1,2]'], origin: { source: 't.parquet', row: 2 } },
    ]);
    expect(r.errors).toEqual([{ row: 3, message: 'empty prompt ("problem")' }]);
    expect(r.duplicates).toEqual([{ row: 4, duplicateOf: '1' }]);

    const viaFile = await importPromptsFile('t.parquet', buf, { mapping: { id: 'uid', domain: 'kind' } });
    expect(viaFile.prompts.map((p) => p.origin?.source)).toEqual(['t.parquet', 't.parquet']);
    await expect(importPromptsParquet(buf, { mapping: { prompt: 'nope' } })).rejects.toThrow(/column "nope" \(prompt\) not found: the columns are uid, problem/);
    await expect(importPromptsParquet(new TextEncoder().encode('not parquet at all'))).rejects.toThrow(PromptImportError);
  });

  it('dispatches on file extensions', async () => {
    expect(detectPromptFormat('a.JSONL')).toBe('jsonl');
    expect(detectPromptFormat('a.ndjson')).toBe('jsonl');
    expect(detectPromptFormat('x.tsv')).toBe('tsv');
    expect(detectPromptFormat('x.txt')).toBeUndefined();
    const csv = await importPromptsFile('p.csv', new TextEncoder().encode('prompt\nhello\n'));
    expect(csv.prompts[0]).toMatchObject({ text: 'hello', origin: { source: 'p.csv', row: 1, line: 2 } });
    await expect(importPromptsFile('p.txt', 'x')).rejects.toThrow(/unknown file type/);
  });
});

describe('eval split', () => {
  const make = (n: number, domain: Prompt['domain'] = 'instruction'): Prompt[] =>
    Array.from({ length: n }, (_, i) => ({ id: `${domain}-${i}`, text: `${domain} prompt ${i}`, domain }));

  it('is deterministic for a seed, independent of input order, and exact in size', () => {
    const prompts = [...make(80), ...make(20, 'math')];
    const a = splitEval(prompts, { fraction: 0.1, seed: 42 });
    const b = splitEval([...prompts].reverse(), { fraction: 0.1, seed: 42 });
    expect(a.eval).toHaveLength(10);
    expect(a.train).toHaveLength(90);
    expect(new Set(b.eval.map((p) => p.id))).toEqual(new Set(a.eval.map((p) => p.id)));
    // stratified: 10% of each domain
    expect(a.eval.filter((p) => p.domain === 'math')).toHaveLength(2);
    // input order kept
    expect(a.train.map((p) => p.id)).toEqual(prompts.filter((p) => !a.eval.includes(p)).map((p) => p.id));
    // another seed, another split
    const c = splitEval(prompts, { fraction: 0.1, seed: 'other' });
    expect(c.eval.map((p) => p.id)).not.toEqual(a.eval.map((p) => p.id));
    // exact count, unstratified
    expect(splitEval(prompts, { count: 7, seed: 1, stratify: false }).eval).toHaveLength(7);
    expect(splitEval([], { fraction: 0.5 }).eval).toEqual([]);
  });

  it('stable: each prompt decided by its own id, so adding or leaving out prompts moves none between train and eval', () => {
    const ids = (ps: Prompt[]) => ps.map((p) => p.id);
    const base = [...make(150), ...make(50, 'math')];
    const a = splitEval(base, { fraction: 0.1, seed: 0, stable: true });
    // about 10% (binomial), none in both sets, every prompt in one
    expect(a.eval.length).toBeGreaterThan(8);
    expect(a.eval.length).toBeLessThan(35);
    expect(ids(a.eval).filter((id) => ids(a.train).includes(id))).toEqual([]);
    expect(a.eval.length + a.train.length).toBe(base.length);
    // deterministic, independent of input order
    expect(ids(splitEval([...base].reverse(), { fraction: 0.1, seed: 0, stable: true }).eval).sort()).toEqual(ids(a.eval).sort());
    // prompts added (and some left out): the others keep their side
    const grown = [...base.slice(20), ...make(300, 'code')];
    const b = splitEval(grown, { fraction: 0.1, seed: 0, stable: true });
    const heldB = new Set(ids(b.eval));
    for (const p of base.slice(20)) expect(heldB.has(p.id)).toBe(ids(a.eval).includes(p.id));
    expect(b.eval.some((p) => p.domain === 'code')).toBe(true);
    // a larger fraction only moves train prompts into eval; another seed, another split
    const c = splitEval(base, { fraction: 0.2, seed: 0, stable: true });
    expect(ids(a.eval).every((id) => ids(c.eval).includes(id))).toBe(true);
    expect(c.eval.length).toBeGreaterThan(a.eval.length);
    expect(ids(splitEval(base, { fraction: 0.1, seed: 7, stable: true }).eval)).not.toEqual(ids(a.eval));
    expect(splitEval(base, { fraction: 0, stable: true }).eval).toEqual([]);
  });
});

describe('FuseChat-3.0 records as prompts', () => {
  it('reads SFT and DPO release rows, domains from the dataset name', () => {
    const text = toJsonl([
      toFuseChatSftRow(
        { kind: 'sft-messages', messages: [{ role: 'user', content: 'Explain tides' }, { role: 'assistant', content: '…' }] },
        { dataset: 'ultrafeedback', sourceModel: 'gemma-2-27b-it' },
      ),
      toFuseChatDpoRow(
        {
          kind: 'dpo-messages',
          prompt: [{ role: 'user', content: 'What is 7*6?' }],
          chosen: [{ role: 'assistant', content: '42' }],
          rejected: [{ role: 'assistant', content: '41' }],
        },
        { dataset: 'openmathinstruct2', sourceModel: 'Qwen2.5-72B-Instruct' },
      ),
      { dataset: 'alpaca_gpt4_zh', source_model: 'Qwen2.5-72B-Instruct', conversations: [{ from: 'human', value: '你好' }, { from: 'gpt', value: '你好！' }] },
      { dataset: 'leetcode', source_model: 'x', conversations: [{ from: 'human', value: 'Two sum' }, { from: 'gpt', value: 'def f(): ...' }] },
      { dataset: 'ultrafeedback', conversations: [{ from: 'gpt', value: 'no prompt' }] },
    ]);
    const r = promptsFromFuseChat(text, { source: 'fusechat' });
    expect(r.prompts.map((p) => [p.text, p.domain, p.origin?.dataset])).toEqual([
      ['Explain tides', 'instruction', 'ultrafeedback'],
      ['What is 7*6?', 'math', 'openmathinstruct2'],
      ['你好', 'other', 'alpaca_gpt4_zh'],
      ['Two sum', 'code', 'leetcode'],
    ]);
    expect(r.errors).toEqual([{ row: 5, line: 5, message: 'no user turn' }]);
    expect(fuseChatDomain('magpie_pro_dpo')).toBe('instruction');
    expect(fuseChatDomain('self-oss-instruct-sc2')).toBe('code');
    expect(fuseChatDomain('Magpie-Qwen2-Pro-zh')).toBe('other');
    expect(fuseChatDomain('helpsteer2')).toBe('instruction');
  });
});

describe('Hugging Face datasets-server rows', () => {
  const TOTAL = 237;
  const requests: { url: URL; auth?: string }[] = [];
  let server: Server;
  let baseUrl = '';
  let failNext = 0;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      requests.push({ url, auth: req.headers.authorization });
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (failNext > 0) {
        failNext--;
        return send(503, { error: 'busy' });
      }
      if (url.pathname === '/splits') {
        if (url.searchParams.get('dataset') !== 'org/prefs') return send(404, { error: 'The dataset does not exist, or is not accessible without authentication.' });
        return send(200, {
          splits: ['train_prefs', 'test_prefs', 'train_sft', 'test_sft'].map((split) => ({ dataset: 'org/prefs', config: 'default', split })),
          pending: [],
          failed: [],
        });
      }
      if (url.pathname !== '/rows') return send(404, { error: 'not found' });
      if (url.searchParams.get('dataset') === 'org/prefs' && (url.searchParams.get('config') !== 'default' || !url.searchParams.get('split')?.endsWith('_prefs'))) return send(404, { error: 'Not found.' });
      if (url.searchParams.get('dataset') === 'org/missing') return send(404, { error: 'Not found.' });
      if (url.searchParams.get('dataset') === 'org/gated' && req.headers.authorization !== 'Bearer hf_secret') {
        return send(401, { error: 'The dataset does not exist, or is not accessible without authentication.' });
      }
      const offset = Number(url.searchParams.get('offset'));
      const length = Number(url.searchParams.get('length'));
      if (length > 100) return send(422, { error: 'length must be <= 100' });
      const rows = [];
      for (let i = offset; i < Math.min(TOTAL, offset + length); i++) {
        rows.push({
          row_idx: i,
          row: { id: `r${i}`, instruction: `Prompt number ${i}`, category: i % 2 ? 'math' : 'code' },
          truncated_cells: i === 5 ? ['instruction'] : [],
        });
      }
      send(200, {
        features: [
          { feature_idx: 0, name: 'id', type: { dtype: 'string', _type: 'Value' } },
          { feature_idx: 1, name: 'instruction', type: { dtype: 'string', _type: 'Value' } },
          { feature_idx: 2, name: 'category', type: { dtype: 'string', _type: 'Value' } },
        ],
        rows,
        num_rows_total: TOTAL,
        num_rows_per_page: 100,
        partial: false,
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('pages through the split with the right query parameters', async () => {
    requests.length = 0;
    const progress: number[] = [];
    const r = await fetchHfRows({ dataset: 'org/data', config: 'default', split: 'train', baseUrl: `${baseUrl}/`, onProgress: (p) => progress.push(p.fetched) });
    expect(r.numRowsTotal).toBe(TOTAL);
    expect(r.rows).toHaveLength(TOTAL);
    expect(r.rows[236]).toMatchObject({ rowIdx: 236, row: { id: 'r236' } });
    expect(r.features.map((f) => f.name)).toEqual(['id', 'instruction', 'category']);
    expect(requests.map((q) => [q.url.searchParams.get('offset'), q.url.searchParams.get('length')])).toEqual([
      ['0', '100'],
      ['100', '100'],
      ['200', '37'], // the last page asks only for what is left
    ]);
    expect(requests[0].url.searchParams.get('dataset')).toBe('org/data');
    expect(requests[0].url.searchParams.get('split')).toBe('train');
    expect(requests[0].auth).toBeUndefined();
    expect(progress).toEqual([100, 200, 237]);
  });

  it('honours offset, length and page size, sends the token, retries 5xx', async () => {
    requests.length = 0;
    failNext = 1;
    const r = await fetchHfRows({ dataset: 'org/gated', offset: 30, length: 45, pageSize: 20, token: 'hf_secret', baseUrl, retryDelayMs: 0 });
    expect(r.rows.map((x) => x.rowIdx)).toEqual(Array.from({ length: 45 }, (_, i) => 30 + i));
    expect(requests.map((q) => [q.url.searchParams.get('offset'), q.url.searchParams.get('length')])).toEqual([
      ['30', '20'], // 503, retried
      ['30', '20'],
      ['50', '20'],
      ['70', '5'],
    ]);
    expect(requests.every((q) => q.auth === 'Bearer hf_secret')).toBe(true);
  });

  it('reports HTTP errors with the server message', async () => {
    await expect(fetchHfRows({ dataset: 'org/gated', baseUrl, retries: 0 })).rejects.toThrow(HfRowsError);
    await expect(fetchHfRows({ dataset: 'org/gated', baseUrl, retries: 0 })).rejects.toThrow(/401.*not accessible without authentication/);
  });

  it('imports the rows as prompts, rejecting truncated cells', async () => {
    const r = await importPromptsFromHf({ dataset: 'org/data', baseUrl, length: 10, mapping: { domain: null }, domain: 'instruction' });
    expect(r.rows).toBe(10);
    expect(r.prompts).toHaveLength(9);
    expect(r.prompts[0]).toEqual({ id: 'r0', text: 'Prompt number 0', domain: 'instruction', origin: { source: 'hf:org/data/default/train', row: 1 } });
    expect(r.errors).toEqual([{ row: 6, message: 'cell "instruction" was truncated by the server' }]);
  });

  it('names the splits a dataset has when the one asked for is not among them', async () => {
    const e = await importPromptsFromHf({ dataset: 'org/prefs', split: 'train', baseUrl, retries: 0 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HfRowsError);
    expect((e as HfRowsError).message).toBe('org/prefs has no split "train": its splits are train_prefs, test_prefs, train_sft, test_sft. Choose one of them');
    expect((e as HfRowsError).splits?.map((x) => x.split)).toEqual(['train_prefs', 'test_prefs', 'train_sft', 'test_sft']);
    const c = await importPromptsFromHf({ dataset: 'org/prefs', config: 'en', split: 'train_prefs', baseUrl, retries: 0 }).catch((x: unknown) => x);
    expect((c as Error).message).toBe('org/prefs has no config "en": its configs are default. Choose one of them');
    const none = await importPromptsFromHf({ dataset: 'org/missing', baseUrl, retries: 0 }).catch((x: unknown) => x);
    expect((none as Error).message).toMatch(/^there is no dataset "org\/missing" that this request may see: check the id \(owner\/name\), or paste an access token/);
  });
});

