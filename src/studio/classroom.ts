// The studio inside a workshop: when the page is served by `fuse-studio classroom` (it answers
// /classroom/info), the Model page offers the classroom's models (downloaded through its mirror) and
// the class recipe (one click: the project bundle import, its sources the classroom's keyless proxy),
// blind A/B votes and evaluation results go to the class's board, and the Board page shows it.
// Each browser is one anonymous student: a random id kept in localStorage, sent as the X-Fuse-Student
// header (and as a cookie, which the engine worker's model downloads carry). No GPU work here.
import { create } from 'zustand';
import type { BoardSummary } from '../classroom/board';
import type { EvalReport } from '../eval/report';
import type { ParsedBundle } from './bundle';

export const STUDENT_KEY = 'fuse-studio.classroomStudent';
const ADMIN_KEY = 'fuse-studio.classroomAdmin';

export interface ClassroomModel {
  repo: string;
  revision: string;
  bytes: number;
  files: { name: string; size: number }[];
}

export interface ClassroomInfo {
  classroom: string;
  models: ClassroomModel[];
  sources: { id: string; name: string; kind: 'remote' | 'local'; baseURL: string; judge: boolean }[];
  recipe: { url: string; fromInstructor: boolean };
  limits: { quota: number; perMinute: number };
  you: { student: string; used: number; quota: number; perMinute: number } | null;
}

export type BoardView = BoardSummary & { version: number };

/** This browser's anonymous id (made once), also set as the cookie the classroom reads. */
export function studentId(): string {
  let id = '';
  try {
    id = localStorage.getItem(STUDENT_KEY) ?? '';
    if (!/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      id = `s-${crypto.randomUUID().replace(/-/g, '')}`;
      localStorage.setItem(STUDENT_KEY, id);
    }
  } catch {
    id ||= `s-${crypto.randomUUID().replace(/-/g, '')}`;
  }
  document.cookie = `fuse_student=${id}; path=/; max-age=31536000; SameSite=Strict`;
  return id;
}

/** The classroom's error message (OpenAI shape), or the status. */
async function failure(res: Response, what: string): Promise<Error> {
  let message = `${what}: HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    if (body?.error?.message) message = `${what}: ${body.error.message}`;
  } catch {
    // not JSON: the status says it
  }
  return new Error(message);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { 'X-Fuse-Student': studentId(), ...extra };
}

/** /classroom/info, or null when this studio is not served by a classroom. */
export async function fetchClassroomInfo(fetchImpl: typeof fetch = fetch): Promise<ClassroomInfo | null> {
  try {
    const res = await fetchImpl('/classroom/info', { headers: headers(), cache: 'no-store' });
    if (!res.ok || !(res.headers.get('content-type') ?? '').includes('application/json')) return null;
    const info = (await res.json()) as ClassroomInfo;
    return info?.classroom === 'fuse-studio classroom' ? info : null;
  } catch {
    return null;
  }
}

/** The class recipe as a File for the project-bundle import. */
export async function fetchRecipe(): Promise<File> {
  const res = await fetch('/classroom/recipe.zip', { headers: headers(), cache: 'no-store' });
  if (!res.ok) throw await failure(res, 'The class recipe could not be loaded');
  return new File([await res.arrayBuffer()], 'class-recipe.zip', { type: 'application/zip' });
}

/** Sends a blind vote (model names as the page shows them; winner null: a tie). */
export async function postVote(v: { a: string; b: string; winner: string | null }): Promise<void> {
  const res = await fetch('/classroom/board/votes', { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(v) });
  if (!res.ok) throw await failure(res, 'The vote did not reach the class board');
}

/** Sends an evaluation result: `correct` of `total` on `metric` for `model`. */
export async function postResult(r: { model: string; metric: string; correct: number; total: number }): Promise<void> {
  const res = await fetch('/classroom/board/results', { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(r) });
  if (!res.ok) throw await failure(res, 'The result did not reach the class board');
}

/** The board's summary; null when it has not changed since `version`. */
export async function fetchBoard(version: number | null): Promise<BoardView | null> {
  const res = await fetch(`/classroom/board${version === null ? '' : `?since=${version}`}`, { cache: 'no-store' });
  if (res.status === 204) return null;
  if (!res.ok) throw await failure(res, 'The board could not be read');
  return (await res.json()) as BoardView;
}

/** An admin call with the instructor's token (export, reset, quota). */
export async function adminFetch(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(`/classroom/admin/${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
  if (!res.ok) throw await failure(res, res.status === 401 ? 'The admin token was refused' : `${path} failed`);
  return res;
}

export function storedAdminToken(): string {
  try {
    return sessionStorage.getItem(ADMIN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function storeAdminToken(token: string): void {
  try {
    if (token) sessionStorage.setItem(ADMIN_KEY, token);
    else sessionStorage.removeItem(ADMIN_KEY);
  } catch {
    // private mode: the token lives in the page only
  }
}

interface ClassroomState {
  /** null until checked; false: not in a classroom. */
  info: ClassroomInfo | null | false;
  /** The last vote or result that did not reach the board (shown on the Compare page). */
  sendError: string | null;
  /** Votes this browser sent to the board. */
  sent: number;
  detect(): Promise<ClassroomInfo | null>;
  /** Reads /classroom/info again (your usage). */
  refresh(): Promise<void>;
  /** Sends a vote when in a classroom (no-op otherwise). */
  reportVote(v: { a: string; b: string; winner: string | null }): Promise<void>;
  reportResult(r: { model: string; metric: string; correct: number; total: number }): Promise<void>;
}

let detecting: Promise<ClassroomInfo | null> | null = null;

export const useClassroomStore = create<ClassroomState>((set, get) => ({
  info: null,
  sendError: null,
  sent: 0,
  detect() {
    detecting ??= fetchClassroomInfo().then((info) => {
      set({ info: info ?? false });
      detecting = null;
      return info;
    });
    return detecting;
  },
  async refresh() {
    const info = await fetchClassroomInfo();
    if (info) set({ info });
  },
  async reportVote(v) {
    if (!get().info) return;
    try {
      await postVote(v);
      set((s) => ({ sent: s.sent + 1, sendError: null }));
    } catch (e) {
      set({ sendError: (e as Error).message });
    }
  },
  async reportResult(r) {
    if (!get().info) return;
    try {
      await postResult(r);
      set((s) => ({ sent: s.sent + 1, sendError: null }));
    } catch (e) {
      set({ sendError: (e as Error).message });
    }
  },
}));

/** "12 of 500 requests used" for the student's proxy usage. */
export function usageLine(you: ClassroomInfo['you']): string | null {
  if (!you) return null;
  const left = Math.max(0, you.quota - you.used);
  return `${you.used} of ${you.quota} source requests used (${left} left; at most ${you.perMinute} a minute)`;
}

/** A share as "62% (45–78%)". */
export function percentWithInterval(rate: number, interval: { low: number; high: number }): string {
  const p = (x: number) => `${Math.round(x * 100)}`;
  return `${p(rate)}% (${p(interval.low)}–${p(interval.high)}%)`;
}

// Evaluation results the board takes: counts of items right (losses and judge win rates stay in the page's report).
const METRICS = [
  ['math', 'math accuracy'],
  ['code', 'code pass@1'],
  ['pref_accuracy', 'preference accuracy'],
  ['choice_accuracy', 'multiple-choice accuracy'],
] as const;

/** The board rows of a report: one per model and counted metric with items (n > 0). */
export function boardResults(report: EvalReport, label: (model: string) => string = (m) => m): { model: string; metric: string; correct: number; total: number }[] {
  const out: { model: string; metric: string; correct: number; total: number }[] = [];
  for (const model of report.models) {
    const r = report.results[model];
    if (!r) continue;
    for (const [key, metric] of METRICS) {
      const block = r[key];
      if (block && block.n > 0) out.push({ model: label(model), metric, correct: block.correct, total: block.n });
    }
  }
  return out;
}

/** What the class recipe brings, in words (the Model page says it after loading it). */
export function recipeSummary(b: Pick<ParsedBundle, 'project' | 'adapters'>): string {
  const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  const p = b.project;
  const prompts = ((p.dataRun?.doc as { imports?: { prompts?: unknown[] }[] } | null)?.imports ?? []).reduce((s, i) => s + (i.prompts?.length ?? 0), 0);
  const judge = (p.settings.judge as { kind?: string } | undefined)?.kind === 'judge';
  const sources = p.sources.filter((s) => s.enabled).length;
  const parts = [
    `${plural(sources, 'source')} through the classroom${judge ? ' and its judge' : ''} (no API key needed)`,
    ...(prompts ? [`${plural(prompts, 'prompt')} on the Data page`] : []),
    ...(p.training ? ['the training settings'] : []),
    ...(b.adapters.length ? [plural(b.adapters.length, 'adapter')] : []),
  ];
  return `Class recipe loaded: ${parts.join(', ')}.`;
}
