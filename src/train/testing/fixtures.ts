// Test fixtures of the trainer: the Llama 3.2 tokenizer, a compact-vocabulary view of it (so a
// tiny model trains on real chat-template tokens without a 128,256-row lm_head: on SwiftShader
// one step of the demo model over 128 tokens takes ~15 s, almost all of it lm_head), and tiny
// random models on the GPU with their float64 host weights.
import { readFileSync } from 'node:fs';
import type { ChatMessage as RecordMessage } from '../../data/records';
import type { GpuContext } from '../../gpu/context';
import type { ModelConfig } from '../../model/config';
import { createDecoderModel, type DecoderModel } from '../../model/decoder';
import { randomHostWeights, tinyConfig, uploadHostWeights, type TinyConfigOptions } from '../../model/random';
import type { HostWeights } from '../../model/reference';
import { releaseWeights } from '../../model/weights';
import { llama32TokenizerConfig, toLlama32TokenizerJson } from '../../tokenizer/llama3';
import { llama3TokenizerJsonPath } from '../../tokenizer/llama3-node';
import { loadTokenizer, type ChatMessage, type ChatTemplateOptions, type LoadedTokenizer } from '../../tokenizer/tokenizer';
import type { BatchTokenizer } from '../batching';

export const DATE: ChatTemplateOptions = { dateString: '26 Jul 2024' };

let cached: LoadedTokenizer | null = null;

/** The Llama 3.2 tokenizer (what the demo model ships). */
export function llama32Tokenizer(): LoadedTokenizer {
  if (cached) return cached;
  const json = toLlama32TokenizerJson(JSON.parse(readFileSync(llama3TokenizerJsonPath(), 'utf8')));
  cached = loadTokenizer({ tokenizerJson: json, tokenizerConfig: llama32TokenizerConfig(json), generationConfig: { eos_token_id: [128001, 128008, 128009] } });
  return cached;
}

/**
 * The real tokenizer with ids renumbered to the ids that occur in `chats` (plus the eos ids):
 * compact id i is real id `real[i]`. Encodings are exactly the real ones, renumbered.
 */
export interface CompactTokenizer extends BatchTokenizer {
  readonly vocabSize: number;
  readonly real: number[];
  decode(ids: readonly number[]): string;
}

export function compactTokenizer(tok: LoadedTokenizer, conversations: readonly (readonly RecordMessage[])[], opts: ChatTemplateOptions = DATE): CompactTokenizer {
  const seen = new Set<number>(tok.eosTokenIds);
  const chats: ChatMessage[][] = conversations.map((c) => c.map((m) => ({ role: m.role, content: m.content })));
  for (const c of chats) {
    for (const id of tok.encodeChat(c, opts).ids) seen.add(id);
    for (const id of tok.encodeChat(c, { ...opts, addGenerationPrompt: true }).ids) seen.add(id);
  }
  const real = [...seen].sort((a, b) => a - b);
  const index = new Map(real.map((id, i) => [id, i]));
  const map = (ids: readonly number[]) =>
    ids.map((id) => {
      const i = index.get(id);
      if (i === undefined) throw new Error(`compact tokenizer: token ${id} (${JSON.stringify(tok.decode([id]))}) is not in the compact vocabulary`);
      return i;
    });
  return {
    vocabSize: real.length,
    real,
    eosTokenIds: map(tok.eosTokenIds),
    encode: (text, o) => map(tok.encode(text, o)),
    encodeChat: (messages, o) => {
      const e = tok.encodeChat(messages, o);
      return { ids: map(e.ids), assistantMask: e.assistantMask };
    },
    decode: (ids) => tok.decode(ids.map((i) => real[i]!)),
  };
}

export interface TestModel {
  model: DecoderModel;
  config: ModelConfig;
  /** Host copy of the weights (random models only): the float64 reference's input. */
  host: HostWeights | null;
  release(): void;
}

/** A random tiny model (random.ts) in f32, with its host weights. */
export function randomModel(ctx: GpuContext, options: TinyConfigOptions, seed: number): TestModel {
  const config = tinyConfig(options);
  const host = randomHostWeights(config, 'f32', seed);
  const weights = uploadHostWeights(ctx, host);
  const model = createDecoderModel(ctx, weights);
  return { model, config, host, release: () => (model.release(), releaseWeights(weights)) };
}
