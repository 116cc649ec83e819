// The Compare page's state: the base model and its adapters (SFT, SFT+DPO, imported ones)
// answering the same prompt with the same sampling and seed, one after another on the GPU, each
// streamed into its column; and the blind A/B vote for workshops (blindAb.ts holds the tally).

import { create } from 'zustand';
import type { ChatMessage } from '../tokenizer';
import { assignRound, loadVotes, recordVote, saveVotes, type BlindRound, type Vote, type VoteRecord } from './blindAb';
import { useClassroomStore } from './classroom';
import { callback, engine, errorMessage } from './engine';
import { useModelStore } from './modelStore';
import type { AdapterInfo } from './worker/adapter-store';

/** The column key of the base model (adapter names never start with "_"). */
export const BASE = '__base__';

export function modelLabel(key: string): string {
  if (key === BASE) return 'Base';
  // The Train page's names read as the recipe's stages: sft → SFT, sft-2+dpo → SFT-2+DPO.
  if (/^(sft|dpo)(-\d+)?(\+dpo(-\d+)?)?$/.test(key)) return key.toUpperCase();
  return key;
}

export interface CompareSampling {
  temperature: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
}

export const DEFAULT_SAMPLING: CompareSampling = { temperature: 0.7, topP: 0.95, maxNewTokens: 64, seed: 0 };

export type AnswerStatus = 'idle' | 'queued' | 'running' | 'done' | 'stopped' | 'error';

export interface Answer {
  status: AnswerStatus;
  text: string;
  tokens: number;
  /** Since this answer started (ms), for tokens/s. */
  ms: number;
  error: string | null;
}

export interface Turn {
  user: string;
  assistant: string;
}

export interface BlindState {
  first: string;
  second: string;
  round: (BlindRound & { prompt: string }) | null;
  answers: { a: Answer; b: Answer };
  votes: VoteRecord[];
  revealed: boolean;
  /** The mapping of the round just voted on, shown after the vote. */
  lastRound: (BlindRound & { vote: Vote }) | null;
}

const IDLE: Answer = { status: 'idle', text: '', tokens: 0, ms: 0, error: null };

interface CompareStore {
  modelKey: string | null;
  adapters: AdapterInfo[];
  selected: string[];
  sampling: CompareSampling;
  multiTurn: boolean;
  /** Per column: the conversation so far and the answer being written. */
  turns: Record<string, Turn[]>;
  answers: Record<string, Answer>;
  running: boolean;
  error: string | null;
  blind: BlindState;
  refresh(): Promise<void>;
  toggle(key: string): void;
  setSampling(patch: Partial<CompareSampling>): void;
  setMultiTurn(on: boolean): void;
  newConversation(): void;
  send(prompt: string): Promise<void>;
  stop(): void;
  setBlindModels(first: string, second: string): void;
  startRound(prompt: string): Promise<void>;
  vote(v: Vote): void;
  reveal(on: boolean): void;
  resetTally(): void;
}

let chatSeq = 0;
let current: string | null = null;
let stopRequested = false;

/** Answers a conversation with one model, streaming into `onUpdate`. */
async function answer(key: string, messages: ChatMessage[], s: CompareSampling, onUpdate: (a: Answer) => void): Promise<Answer> {
  const id = `compare-${++chatSeq}`;
  current = id;
  const started = performance.now();
  onUpdate({ ...IDLE, status: 'running' });
  try {
    const reply = await engine().chat(
      { id, messages, adapter: key === BASE ? null : key, maxNewTokens: s.maxNewTokens, sampling: { temperature: s.temperature, topP: s.topP, seed: s.seed } },
      callback((text: string, tokens: number) => onUpdate({ status: 'running', text, tokens, ms: performance.now() - started, error: null })),
    );
    const a: Answer = { status: reply.finishReason === 'aborted' ? 'stopped' : 'done', text: reply.text, tokens: reply.tokens, ms: performance.now() - started, error: null };
    onUpdate(a);
    return a;
  } catch (e) {
    const a: Answer = { ...IDLE, status: 'error', ms: performance.now() - started, error: errorMessage(e) };
    onUpdate(a);
    return a;
  } finally {
    if (current === id) current = null;
  }
}

export function tokensPerSecond(a: Pick<Answer, 'tokens' | 'ms'>): number | null {
  return a.tokens > 0 && a.ms > 0 ? a.tokens / (a.ms / 1000) : null;
}

function storage(): Storage | null {
  try {
    return localStorage;
  } catch {
    return null;
  }
}

export const useCompareStore = create<CompareStore>()((set, get) => ({
  modelKey: null,
  adapters: [],
  selected: [BASE],
  sampling: DEFAULT_SAMPLING,
  multiTurn: false,
  turns: {},
  answers: {},
  running: false,
  error: null,
  blind: { first: BASE, second: '', round: null, answers: { a: IDLE, b: IDLE }, votes: [], revealed: false, lastRound: null },

  async refresh() {
    const model = useModelStore.getState().model;
    if (!model) {
      set({ modelKey: null, adapters: [] });
      return;
    }
    try {
      const adapters = await engine().listAdapters();
      const names = adapters.map((a) => a.name);
      const changedModel = get().modelKey !== model.modelKey;
      const known = new Set([BASE, ...get().adapters.map((a) => a.name)]);
      // New adapters are selected; removed ones dropped.
      const selected = changedModel ? [BASE, ...names] : [...get().selected.filter((k) => k === BASE || names.includes(k)), ...names.filter((n) => !known.has(n))];
      const b = get().blind;
      // By default the newest DPO adapter (the end of the recipe) against the base model.
      const second = names.includes(b.second) ? b.second : (adapters.filter((a) => a.kind === 'dpo').at(-1)?.name ?? names.at(-1) ?? '');
      const first = b.first === BASE || names.includes(b.first) ? b.first : BASE;
      const votes = loadVotes(storage() ?? { getItem: () => null }, model.modelKey);
      set({
        modelKey: model.modelKey,
        adapters,
        selected,
        error: null,
        ...(changedModel ? { turns: {}, answers: {} } : {}),
        blind: { ...b, first, second: second === first ? '' : second, votes, ...(changedModel ? { round: null, answers: { a: IDLE, b: IDLE }, lastRound: null, revealed: false } : {}) },
      });
    } catch (e) {
      set({ error: errorMessage(e) });
    }
  },

  toggle(key) {
    if (get().running) return;
    const sel = get().selected;
    const all = [BASE, ...get().adapters.map((a) => a.name)];
    const next = sel.includes(key) ? sel.filter((k) => k !== key) : [...sel, key];
    set({ selected: all.filter((k) => next.includes(k)) });
  },

  setSampling(patch) {
    set((s) => ({ sampling: { ...s.sampling, ...patch } }));
  },

  setMultiTurn(on) {
    set({ multiTurn: on, turns: {} });
  },

  newConversation() {
    if (!get().running) set({ turns: {}, answers: {} });
  },

  async send(prompt) {
    const text = prompt.trim();
    if (get().running || !text || !get().selected.length) return;
    const { selected, sampling, multiTurn } = get();
    stopRequested = false;
    const queued = Object.fromEntries(selected.map((k) => [k, { ...IDLE, status: 'queued' as const }]));
    set({ running: true, error: null, answers: queued });
    try {
      for (const key of selected) {
        if (stopRequested) {
          set((s) => ({ answers: { ...s.answers, [key]: { ...IDLE, status: 'stopped' } } }));
          continue;
        }
        const history = multiTurn ? (get().turns[key] ?? []) : [];
        const messages: ChatMessage[] = [...history.flatMap((t): ChatMessage[] => [{ role: 'user', content: t.user }, { role: 'assistant', content: t.assistant }]), { role: 'user', content: text }];
        const a = await answer(key, messages, sampling, (ans) => set((s) => ({ answers: { ...s.answers, [key]: ans } })));
        if (multiTurn && a.status !== 'error') set((s) => ({ turns: { ...s.turns, [key]: [...(s.turns[key] ?? []), { user: text, assistant: a.text }] } }));
      }
    } finally {
      set({ running: false });
    }
  },

  stop() {
    stopRequested = true;
    if (current) void engine().stopChat(current);
  },

  setBlindModels(first, second) {
    set((s) => ({ blind: { ...s.blind, first, second } }));
  },

  async startRound(prompt) {
    const text = prompt.trim();
    const b = get().blind;
    if (get().running || !text) return;
    let round: BlindRound;
    try {
      round = assignRound(b.first, b.second, Math.random());
    } catch (e) {
      set({ error: errorMessage(e) });
      return;
    }
    stopRequested = false;
    set((s) => ({ running: true, error: null, blind: { ...s.blind, round: { ...round, prompt: text }, answers: { a: { ...IDLE, status: 'queued' }, b: { ...IDLE, status: 'queued' } }, lastRound: null } }));
    const { sampling } = get();
    try {
      for (const slot of ['a', 'b'] as const) {
        const update = (ans: Answer) => set((s) => ({ blind: { ...s.blind, answers: { ...s.blind.answers, [slot]: ans } } }));
        if (stopRequested) {
          update({ ...IDLE, status: 'stopped' });
          continue;
        }
        await answer(round[slot], [{ role: 'user', content: text }], sampling, update);
      }
    } finally {
      set({ running: false });
    }
  },

  vote(v) {
    const { blind, modelKey, running } = get();
    if (!blind.round || running || !modelKey) return;
    const votes = [...blind.votes, recordVote(blind.round, v)];
    const st = storage();
    if (st) saveVotes(st, modelKey, votes);
    set({ blind: { ...blind, votes, round: null, answers: { a: IDLE, b: IDLE }, lastRound: { a: blind.round.a, b: blind.round.b, vote: v } } });
    // In a workshop the vote also goes to the class board (as the models' names the page shows).
    const r = blind.round;
    void useClassroomStore.getState().reportVote({ a: modelLabel(r.a), b: modelLabel(r.b), winner: v === 'tie' ? null : modelLabel(v === 'a' ? r.a : r.b) });
  },

  reveal(on) {
    set((s) => ({ blind: { ...s.blind, revealed: on } }));
  },

  resetTally() {
    const { modelKey } = get();
    const st = storage();
    if (st && modelKey) saveVotes(st, modelKey, []);
    set((s) => ({ blind: { ...s.blind, votes: [], lastRound: null, revealed: false } }));
  },
}));
