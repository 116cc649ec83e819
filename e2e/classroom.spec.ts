// A workshop end to end: one `fuse-studio classroom` (the built CLI, a child process) serving the built
// studio, the demo model's folder through its mirror, a source and a judge through its proxy to a
// fault-injecting upstream (every item's first call fails: the proxy retries once), and a class
// recipe with prompts and an adapter. Three browser contexts are three students: each loads the
// model from the classroom (the server counts the bytes: one download each, no request anywhere
// else), loads the recipe in one click, collects and scores through the proxy (one upstream call per
// item for the whole class, plus its one retry), and votes blind; the board shows the aggregate.
// A fourth student, over the quota, sees the classroom's 429 message in the studio.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test, type Browser, type Page } from '@playwright/test';
import { startMockServer, lastUser, chatCompletion, type MockServer } from '../src/data/test-server';
import { buildBundle, zipFiles } from '../src/studio/bundle';
import { screenshot, watchErrors } from './helpers';

const KEY = 'sk-e2e-classroom-key-0123456789abcdef';
const SEED = 100;
const PROMPTS = ['What is the capital of France?', 'Name three primary colours.', 'Write a haiku about autumn.'];
const N = 2;
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const EVAL_JSONL = jsonl([
  { prompt: 'What is 2+3?', domain: 'math', gold: '5' },
  { prompt: 'What is 10-4?', domain: 'math', gold: '6' },
]);
const CHOICES_JSONL = jsonl([
  { prompt: 'Which planet is closest to the Sun?', choices: ['Mercury', 'Mars'], answer: 0 },
  { prompt: 'What is 7 × 8?', choices: ['54', '56'], answer: 1 },
]);

/**
 * A random rank-4 LoRA adapter (q_proj, v_proj) for the demo model in PEFT's files, written here
 * (safetensors: a little-endian header length, the JSON header, then the F32 data).
 */
function demoAdapter(config: { hidden_size: number; num_attention_heads: number; num_key_value_heads: number; head_dim: number; num_hidden_layers: number }): Map<string, Uint8Array> {
  const r = 4;
  let seed = 777;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32 - 0.5;
  };
  const outOf = { q_proj: config.num_attention_heads * config.head_dim, v_proj: config.num_key_value_heads * config.head_dim };
  const tensors: [string, number[], Float32Array][] = [];
  for (let l = 0; l < config.num_hidden_layers; l++)
    for (const [t, out] of Object.entries(outOf)) {
      const key = `base_model.model.model.layers.${l}.self_attn.${t}`;
      tensors.push([`${key}.lora_A.weight`, [r, config.hidden_size], Float32Array.from({ length: r * config.hidden_size }, rand)]);
      tensors.push([`${key}.lora_B.weight`, [out, r], Float32Array.from({ length: out * r }, rand)]);
    }
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const weights = Buffer.concat([len, json, ...tensors.map(([, , d]) => Buffer.from(d.buffer))]);
  const adapterConfig = { peft_type: 'LORA', task_type: 'CAUSAL_LM', r, lora_alpha: 2 * r, lora_dropout: 0, target_modules: Object.keys(outOf), base_model_name_or_path: 'fuse-studio/demo-model', bias: 'none', fan_in_fan_out: false, use_rslora: false };
  return new Map([
    ['adapter_config.json', new TextEncoder().encode(JSON.stringify(adapterConfig, null, 2))],
    ['adapter_model.safetensors', new Uint8Array(weights)],
  ]);
}

/** The instructor's project bundle: the prompts as the Data page's run, and an SFT adapter. */
function instructorBundle(modelConfig: Parameters<typeof demoAdapter>[0]): Uint8Array {
  const now = new Date().toISOString();
  const prompts = PROMPTS.map((text, i) => ({ id: `class-p${i + 1}`, text, domain: 'instruction' }));
  const doc = {
    runId: 'class-run',
    imports: [{ id: 'imp-class', label: 'class-prompts.jsonl', kind: 'file', domain: 'instruction', mapping: { prompt: 'prompt' }, prompts, errors: [], duplicates: [], rows: prompts.length, skippedExisting: 0, createdAt: now }],
    overrides: [],
    edits: {},
    status: 'new',
    useSandbox: true,
    createdAt: now,
  };
  const adapter = demoAdapter(modelConfig);
  return zipFiles(
    buildBundle({
      model: null,
      sources: [],
      settings: [],
      dataRun: { runId: 'class-run', doc, artifacts: {} },
      adapters: [{ name: 'sft', note: 'the class SFT adapter', createdAt: now, kind: 'sft', files: Object.fromEntries(adapter) }],
      training: null,
    }),
  );
}

interface Started {
  url: string;
  token: string;
  child: ChildProcess;
}

function startClassroom(args: string[], env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['bin/fuse-studio.js', 'classroom', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`classroom did not start in 60 s:\n${log}`)), 60_000);
    const onData = (b: Buffer) => {
      log += b.toString();
      const url = /classroom at (http:\/\/\S+)/.exec(log)?.[1];
      const token = /admin token: (\S+)/.exec(log)?.[1];
      if (url && token) {
        clearTimeout(timer);
        resolve({ url, token, child });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`classroom exited with ${code}:\n${log}`));
    });
  });
}

let dir: string;
let upstream: MockServer;
let classroom: Started;
/** Upstream calls per item (collect: prompt#sample; judge: the judged response). */
const calls = new Map<string, number>();

const itemOf = (r: { body?: Record<string, unknown> }, prompt: string) =>
  `${String(r.body?.model)}:${/impartial judge/.test(prompt) ? `judge:${/Answer \(sample \d\) to: [^\n]*/.exec(prompt)?.[0]}` : `${prompt}#${Number(r.body?.seed) - SEED}`}`;

test.beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'classroom-e2e-'));
  await promisify(execFile)(process.execPath, ['bin/fuse-studio.js', 'demo-model', '--out', join(dir, 'demo-model')]);
  upstream = await startMockServer((r) => {
    const prompt = lastUser(r);
    const item = itemOf(r, prompt);
    const n = (calls.get(item) ?? 0) + 1;
    calls.set(item, n);
    // Every item's first call is a fault: the proxy must retry it once, and only once.
    if (n === 1) return { kind: 'json', status: 503, body: { error: { message: 'upstream overloaded, try again' } } };
    if (/impartial judge/.test(prompt)) return { kind: 'json', body: chatCompletion(/\(sample 0\)/.test(prompt) ? 'Score: 9/10\nReason: Clear.' : 'Score: 7/10\nReason: Thin.') };
    return { kind: 'json', body: chatCompletion(`Answer (sample ${Number(r.body?.seed) - SEED}) to: ${prompt}`), delayMs: 50 };
  });
  await writeFile(join(dir, 'sources.json'), JSON.stringify([{ name: 'Class Source', baseURL: upstream.baseURL, apiKey: '$CLASS_KEY', model: 'upstream-model', n: N, seed: SEED, max_tokens: 32 }]));
  await writeFile(join(dir, 'judge.json'), JSON.stringify({ baseURL: upstream.baseURL, apiKey: '$CLASS_KEY', model: 'judge-model' }));
  await writeFile(join(dir, 'recipe.zip'), instructorBundle(JSON.parse(await readFile(join(dir, 'demo-model', 'config.json'), 'utf8'))));
  classroom = await startClassroom(
    ['--model', join(dir, 'demo-model'), '--sources', join(dir, 'sources.json'), '--judge', join(dir, 'judge.json'), '--recipe', join(dir, 'recipe.zip'), '--quota', '100'],
    { CLASS_KEY: KEY },
  );
});

test.afterAll(async () => {
  classroom?.child.kill('SIGTERM');
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

async function go(page: Page, name: string): Promise<void> {
  // In-app navigation: a reload would drop the model from the worker.
  await page.getByRole('navigation', { name: 'Studio' }).getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
}

async function admin(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${classroom.url}/classroom/admin/${path}`, { ...init, headers: { authorization: `Bearer ${classroom.token}`, 'content-type': 'application/json' } });
}

/** A student's browser: a fresh context whose every request is recorded. */
async function student(browser: Browser) {
  const context = await browser.newContext({ baseURL: classroom.url, viewport: { width: 1366, height: 860 } });
  const page = await context.newPage();
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  const errors = watchErrors(page, /404|Failed to load resource|429|503/);
  return { context, page, requests, errors };
}

/** Loads the model from the classroom and the class recipe, as a student does. */
async function joinClass(page: Page) {
  await page.goto('/model');
  const card = page.getByRole('region', { name: 'From the classroom' });
  await card.getByRole('button', { name: /^Load classroom\/demo-model from the classroom/ }).click();
  await expect(page.getByTestId('loaded-model')).toContainText('Model:', { timeout: 120_000 });
  await card.getByRole('button', { name: 'Load the class recipe' }).click();
  await expect(card.getByTestId('classroom-recipe-notice')).toHaveText('Class recipe loaded: 1 source through the classroom and its judge (no API key needed), 3 prompts on the Data page, 1 adapter.', { timeout: 60_000 });
}

test('three students load from the mirror, collect through the proxy, vote; the board adds them up; over quota says so', async ({ browser }) => {
  test.setTimeout(900_000);
  const modelFiles = await readdir(join(dir, 'demo-model'));
  const sizes = Object.fromEntries(await Promise.all(modelFiles.map(async (f) => [f, (await stat(join(dir, 'demo-model', f))).size] as const)));

  // ---- The class at once: three students load the model, the recipe, and collect and score
  // through the proxy (the recipe's source and judge: no key in any browser) at the same time.
  const students = await Promise.all([0, 1, 2].map(() => student(browser)));
  await Promise.all(
    students.map(async ({ page }, s) => {
      await joinClass(page);
      if (s === 0) await screenshot(page, 'classroom-model.png');
      await go(page, 'Data');
      await expect(page.getByTestId('import-count')).toHaveText(`${PROMPTS.length} prompt(s)`);
      await page.getByRole('button', { name: 'Run pipeline' }).click();
      await expect(page.getByTestId('set-counts')).toBeVisible({ timeout: 240_000 });
      const keyInPage = await page.evaluate((k) => document.documentElement.outerHTML.includes(k) || JSON.stringify(localStorage).includes(k), KEY);
      expect(keyInPage).toBe(false);
    }),
  );

  // ---- Blind A/B, one student after another: base against the class's SFT adapter.
  const ids: string[] = [];
  for (const [s, { context, page, requests, errors }] of students.entries()) {
    await go(page, 'Compare');
    const blind = page.getByRole('region', { name: 'Blind A/B vote' });
    await blind.getByLabel('Second model').selectOption('sft');
    await blind.getByRole('button', { name: 'Start round' }).click();
    const choice = s === 2 ? 'Tie' : 'B is better';
    await expect(blind.getByRole('button', { name: choice })).toBeEnabled({ timeout: 120_000 });
    await blind.getByRole('button', { name: choice }).click();
    await expect(page.getByTestId('board-sent')).toContainText('(1 sent from this page)');

    // The first student also evaluates base and SFT (math with gold answers, the multiple-choice
    // guard): the completed evaluation's counts go to the board.
    if (s === 0) {
      await go(page, 'Evaluate');
      const setup = page.getByRole('region', { name: 'What to evaluate' });
      for (const name of [/^Base/, /^SFT/]) await setup.getByRole('checkbox', { name }).check();
      for (const name of [/^Losses and preference/, /^Pairwise judge/]) await setup.getByRole('checkbox', { name }).uncheck();
      await setup.getByRole('radio', { name: 'An EVAL.jsonl file' }).check();
      await setup.getByLabel('EVAL.jsonl file', { exact: true }).setInputFiles({ name: 'eval.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(EVAL_JSONL) });
      await setup.getByRole('radio', { name: 'A multiple-choice JSONL file' }).check();
      await setup.getByLabel('Multiple-choice file', { exact: true }).setInputFiles({ name: 'choices.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from(CHOICES_JSONL) });
      await setup.getByLabel('Max new tokens', { exact: true }).fill('2');
      await setup.getByRole('button', { name: 'Start evaluation' }).click();
      await expect(page.getByTestId('eval-run').getByRole('heading', { level: 2 })).toContainText('completed', { timeout: 600_000 });
      await expect
        .poll(async () => ((await (await fetch(`${classroom.url}/classroom/board`)).json()) as { totals: { results: number } }).totals.results, { timeout: 30_000 })
        .toBe(4);
    }

    // Everything this student's browser asked for came from the classroom.
    const origin = new URL(classroom.url).origin;
    const elsewhere = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'));
    expect(elsewhere).toEqual([]);
    ids.push(await page.evaluate(() => localStorage.getItem('fuse-studio.classroomStudent')!));
    expect(errors).toEqual([]);
    await context.close();
  }

  // ---- The server's counts: each student downloaded each model file it needs exactly once.
  const stats = (await (await admin('stats')).json()) as { mirror: { byStudent: Record<string, Record<string, number>> }; proxy: { upstreamCalls: number; retries: number; cacheHits: number; coalesced: number } };
  expect(new Set(ids).size).toBe(3);
  for (const id of ids) {
    const got = stats.mirror.byStudent[id]!;
    expect(Object.keys(got).length).toBeGreaterThanOrEqual(3);
    for (const [file, bytes] of Object.entries(got)) expect(bytes, `${id}: ${file}`).toBe(sizes[file.replace('classroom/demo-model/', '')]);
    expect(got['classroom/demo-model/model.safetensors']).toBe(sizes['model.safetensors']);
  }
  expect(Object.keys(stats.mirror.byStudent).filter((k) => k !== 'anonymous')).toHaveLength(3);

  // ---- The upstream: one call per item for the whole class, plus the one retry of its fault.
  // (Items: each prompt's samples, each response's verdict, and the studio's 1-token connection probe per source.)
  const items = PROMPTS.length * N;
  const keys = [...calls.keys()];
  expect(keys.filter((k) => PROMPTS.some((p) => k.includes(p)) && !k.includes(':judge:'))).toHaveLength(items);
  expect(keys.filter((k) => k.includes(':judge:'))).toHaveLength(items);
  expect(keys.length - 2 * items).toBeLessThanOrEqual(2);
  for (const [item, n] of calls) expect(n, item).toBe(2);
  expect(upstream.requests).toHaveLength(2 * calls.size);
  for (const r of upstream.requests) expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
  expect(stats.proxy.upstreamCalls).toBe(2 * calls.size);
  expect(stats.proxy.retries).toBe(calls.size);
  expect(stats.proxy.cacheHits + stats.proxy.coalesced).toBe(2 * calls.size);

  // ---- The board, projected: 3 students, 3 votes (one a tie; which model was B was random).
  const summary = (await (await fetch(`${classroom.url}/classroom/board`)).json()) as { models: { model: string; wins: number; losses: number; ties: number; rounds: number; winRate: number; interval: { low: number; high: number } }[] };
  expect(summary.models.map((m) => m.model).sort()).toEqual(['Base', 'SFT']);
  for (const m of summary.models) expect(m).toMatchObject({ rounds: 3, ties: 1, wins: m.wins, losses: 2 - m.wins });
  const board = await browser.newPage({ baseURL: classroom.url, viewport: { width: 1366, height: 860 } });
  await board.goto('/board');
  await expect(board.getByTestId('board-totals')).toContainText('3 students');
  await expect(board.getByTestId('board-totals')).toContainText('3 votes (1 tie)');
  await expect(board.getByTestId('board-totals')).toContainText('4 results');
  const results = board.getByRole('table', { name: 'Evaluation results' });
  await expect(results.getByRole('row')).toHaveCount(5);
  await expect(results).toContainText('math accuracy');
  await expect(results).toContainText('multiple-choice accuracy');
  const votes = board.getByRole('table', { name: 'Votes by model' });
  const pct = (x: number) => Math.round(x * 100);
  for (const m of summary.models)
    await expect(votes.getByRole('row', { name: new RegExp(`^${m.model}`) })).toContainText(`${pct(m.winRate)}% (${pct(m.interval.low)}–${pct(m.interval.high)}%)`);
  await screenshot(board, 'classroom-board.png');
  await board.setViewportSize({ width: 390, height: 844 });
  await screenshot(board, 'classroom-board-phone.png');
  expect(await board.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
  // The instructor's panel: the token, an export, and the quota lowered for what follows.
  await board.setViewportSize({ width: 1366, height: 860 });
  await board.getByText('Instructor: export, reset, quota').click();
  await board.getByLabel(/^Admin token/).fill('not-the-token');
  const [refused] = await Promise.all([board.waitForResponse(/export\.csv/), board.getByRole('button', { name: 'Export CSV' }).click()]);
  expect(refused.status()).toBe(401);
  await expect(board.getByRole('alert')).toContainText('The admin token was refused');
  await board.getByLabel(/^Admin token/).fill(classroom.token);
  const [dl] = await Promise.all([board.waitForEvent('download'), board.getByRole('button', { name: 'Export CSV' }).click()]);
  const csv = await readFile((await dl.path())!, 'utf8');
  expect(csv.trim().split('\n')).toHaveLength(1 + 3 + 4);
  expect(csv).not.toContain(KEY);
  await board.getByLabel('Requests per student').fill('1');
  await board.getByRole('button', { name: 'Set quota' }).click();
  await expect(board.getByRole('status').filter({ hasText: 'Each student may now make 1 source request, ' })).toBeVisible();
  await board.close();

  // ---- A student over the quota: the classroom's 429 message, in the studio.
  const late = await student(browser);
  await late.page.goto('/model');
  const card = late.page.getByRole('region', { name: 'From the classroom' });
  await card.getByRole('button', { name: 'Load the class recipe' }).click();
  // No model loaded: the class adapter is left out, and the notice says why.
  await expect(card.getByTestId('classroom-recipe-notice')).toContainText('Class recipe loaded: 1 source');
  await expect(card.getByTestId('classroom-recipe-notice')).toContainText('Skipped: 1 adapter(s) not imported: load the base model');
  await go(late.page, 'Data');
  await late.page.getByRole('button', { name: 'Run pipeline' }).click();
  await expect(late.page.getByText(/Responses from Class Source — \d+ \/ 6/)).toBeVisible({ timeout: 60_000 });
  await expect(late.page.getByText(/[56] failed/).first()).toBeVisible({ timeout: 120_000 });
  const prompts = late.page.getByRole('table', { name: 'Prompts' });
  await prompts.getByRole('button', { name: /^Open prompt/ }).last().click();
  await expect(late.page.getByText(/Classroom quota reached: you have used the 1 request this classroom allows each student/).first()).toBeVisible();
  await screenshot(late.page, 'classroom-over-quota.png');
  await late.context.close();

  // Nothing the server wrote to disk for the run holds the key either (the recipe it serves).
  const recipe = Buffer.from(await (await fetch(`${classroom.url}/classroom/recipe.zip`)).arrayBuffer()).toString('latin1');
  expect(recipe).not.toContain(KEY);
  expect(await readFile(join(dir, 'recipe.zip'), 'latin1')).not.toContain(KEY);
});
