// Chat in the worker: a conversation through the model's chat template, generated with the base
// model or a named adapter (taken from the GPU, else from the adapter store), streaming the text
// back as it grows. One generation runs at a time (the GPU is shared); later requests queue.

import { generate, type FinishReason } from '../../model/generate';
import type { LoraAdapters } from '../../model/lora';
import type { SamplingOptions } from '../../model/sampling';
import type { ChatMessage } from '../../tokenizer';
import { loadAdapter } from './adapter-store';
import { installAdapter, requireSession, type Session } from './session';

export interface ChatRequest {
  messages: ChatMessage[];
  /** null: the base model; else the name of a trained or imported adapter. */
  adapter: string | null;
  maxNewTokens: number;
  sampling: SamplingOptions;
  /** Lets stopChat(id) end this request. */
  id: string;
}

/** Streamed text so far (the page's callback; the worker awaits the last call). */
export type TextCallback = (text: string, tokens: number) => void | Promise<void>;

export interface ChatReply {
  text: string;
  tokens: number;
  promptTokens: number;
  /** The prompt as the model read it (the conversation through its chat template), special tokens shown. */
  templated: string;
  finishReason: FinishReason;
  ms: number;
}

const running = new Map<string, AbortController>();
let tail: Promise<unknown> = Promise.resolve();

/** The adapter `name` on the GPU, loading it from the store if needed. */
export async function adapterOnGpu(s: Session, name: string): Promise<LoraAdapters> {
  const have = s.adapters.get(name);
  if (have) return have.gpu;
  const host = await loadAdapter(s.modelKey, name, s.loaded.config);
  if (!host) throw new Error(`There is no adapter "${name}" for this model.`);
  return installAdapter(s, name, host);
}

async function runChat(req: ChatRequest, onText: TextCallback): Promise<ChatReply> {
  const s = requireSession();
  const tok = s.tokenizer;
  if (!tok) throw new Error('This model has no tokenizer.json, so it cannot turn text into tokens.');
  const controller = running.get(req.id)!;
  const lora = req.adapter === null ? null : await adapterOnGpu(s, req.adapter);
  // The model's chat template with the assistant's header at the end (what it was tuned to answer);
  // a model without one (a base model) continues the turns' text.
  const promptIds = tok.chatTemplate ? tok.encodeChat(req.messages, { addGenerationPrompt: true }).ids : tok.encode(req.messages.map((m) => m.content).join('\n'));
  const eosTokenIds = [...new Set([...tok.eosTokenIds, ...s.loaded.config.eosTokenIds])];
  const room = s.loaded.config.maxPositionEmbeddings - promptIds.length;
  if (room < 1) throw new Error(`The conversation is ${promptIds.length} tokens; the model's context is ${s.loaded.config.maxPositionEmbeddings}.`);
  const ids: number[] = [];
  const started = performance.now();
  let lastSent = 0;
  const result = await generate(
    s.model,
    { promptIds, maxNewTokens: Math.min(req.maxNewTokens, room), sampling: req.sampling, eosTokenIds, lora, signal: controller.signal },
    (id) => {
      ids.push(id);
      const text = tok.decode(ids, { skipSpecialTokens: true });
      // Hold back a split UTF-8 character; send at most every 50 ms (and the last one below).
      const now = performance.now();
      if (!text.endsWith('\uFFFD') && now - lastSent > 50) {
        lastSent = now;
        void onText(text, ids.length);
      }
    },
  );
  const text = tok.decode(ids, { skipSpecialTokens: true });
  // Awaited: callbacks travel on their own port, so an update sent without waiting could reach
  // the page after the reply and overwrite the final state.
  await onText(text, ids.length);
  return { text, tokens: result.ids.length, promptTokens: promptIds.length, templated: tok.decode(promptIds, { skipSpecialTokens: false }), finishReason: result.finishReason, ms: performance.now() - started };
}

/**
 * Runs `fn` after the queued generations and before later ones: for anything that replaces or frees
 * an adapter a generation may be using.
 */
export function afterGenerations<T>(fn: () => Promise<T>): Promise<T> {
  const job = tail.then(fn);
  tail = job.catch(() => {});
  return job;
}

export const chatService = {
  chat(req: ChatRequest, onText: TextCallback): Promise<ChatReply> {
    running.set(req.id, new AbortController());
    return afterGenerations(() => runChat(req, onText)).finally(() => running.delete(req.id));
  },

  stopChat(id: string): void {
    running.get(id)?.abort();
  },
};
