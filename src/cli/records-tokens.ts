// Records (src/data/records.ts formats) as labelled token sequences for scoring, the way the
// Hugging Face trainers see them:
//
//   SFT messages      the chat rendered by the template (tokenizer.encodeChat); the labels are the
//                     assistant tokens (each assistant turn's content and closing end-of-turn token)
//   SFT pre-tokenized input_ids and labels as given (aligned, -100 masked; the model shifts)
//   DPO messages      prompt = template(prompt, add_generation_prompt) and each side =
//                     template(prompt + side); the side's labels are its assistant tokens after the
//                     prompt (TRL's prompt/completion split; the template's own end-of-turn token
//                     closes the completion, no extra EOS is appended)
//   DPO plain text    prompt = encode(prompt) (with BOS), side = encode(side) without special
//                     tokens + EOS, as TRL's DPOTrainer.tokenize_row does for text records
//   DPO pre-tokenized prompt_input_ids + {chosen,rejected}_input_ids, labels on the side's ids
//
// For a reward model (tokenizeForReward) a record is one sequence, or two for a DPO record, with
// no labels, as transformers and TRL's RewardTrainer give it to a *ForSequenceClassification:
//   messages          apply_chat_template(conversation, tokenize=True): the whole conversation,
//                     ending in the assistant's answer, no generation prompt (data/local-reward.ts)
//   DPO messages      the same of prompt + chosen and of prompt + rejected
//   DPO plain text    encode(prompt + side) (with BOS), then EOS unless it ends in one
//   pre-tokenized     input_ids as given; prompt_input_ids + {chosen,rejected}_input_ids
import { rewardInputIds } from '../data/local-reward';
import { parseDpoRecord, parseSftRecord, RecordError, type DpoRecord, type SftRecord } from '../data/records';
import type { LabelledSequence } from '../model/score';
import type { ChatMessage as TemplateMessage, LoadedTokenizer } from '../tokenizer';

/** Records' messages as the chat template takes them. */
const turns = (m: readonly { role: string; content: string }[]): TemplateMessage[] => m.map((x) => ({ role: x.role, content: x.content }));

export type ScoringItem = { kind: 'sft'; seq: LabelledSequence } | { kind: 'dpo'; chosen: LabelledSequence; rejected: LabelledSequence };

export interface RecordTokenOptions {
  /** Llama 3.x templates' "Today Date" line (default: today, as transformers). */
  dateString?: string;
}

const DPO_KEYS = ['chosen', 'rejected', 'chosen_input_ids', 'rejected_input_ids', 'prompt_input_ids'];

/** An SFT or DPO record, by its keys; throws RecordError with the reason. */
export function parseScoringRecord(value: unknown): SftRecord | DpoRecord {
  if (value && typeof value === 'object' && !Array.isArray(value) && DPO_KEYS.some((k) => k in value)) return parseDpoRecord(value);
  return parseSftRecord(value);
}

function needTokenizer(tok: LoadedTokenizer | null, what: string): LoadedTokenizer {
  if (!tok)
    throw new RecordError(
      `${what} need a tokenizer, and this model folder has no tokenizer.json: use pre-tokenized records ({"input_ids","labels"} or {"prompt_input_ids","chosen_input_ids","rejected_input_ids"})`,
    );
  return tok;
}

function needTemplate(tok: LoadedTokenizer, what: string): void {
  if (tok.chatTemplate === null) throw new RecordError(`${what} need a chat template, and this model's tokenizer has none`);
}

/** The labelled sequence(s) of one parsed record. */
export function tokenizeForScoring(record: SftRecord | DpoRecord, tokenizer: LoadedTokenizer | null, o: RecordTokenOptions = {}): ScoringItem {
  const chatOpts = o.dateString === undefined ? {} : { dateString: o.dateString };
  switch (record.kind) {
    case 'sft-tokens':
      return { kind: 'sft', seq: { ids: record.inputIds, labels: record.labels } };
    case 'sft-messages': {
      const tok = needTokenizer(tokenizer, 'message records');
      needTemplate(tok, 'message records');
      const { ids, assistantMask } = tok.encodeChat(turns(record.messages), chatOpts);
      return { kind: 'sft', seq: { ids, labels: ids.map((id, t) => (assistantMask[t] ? id : -100)) } };
    }
    case 'dpo-tokens': {
      const side = (ids: number[]): LabelledSequence => ({
        ids: [...record.promptInputIds, ...ids],
        labels: [...record.promptInputIds.map(() => -100), ...ids],
      });
      return { kind: 'dpo', chosen: side(record.chosenInputIds), rejected: side(record.rejectedInputIds) };
    }
    case 'dpo-messages': {
      const tok = needTokenizer(tokenizer, 'message records');
      needTemplate(tok, 'message records');
      const prompt = tok.encodeChat(turns(record.prompt), { ...chatOpts, addGenerationPrompt: true }).ids;
      const side = (name: string, completion: typeof record.chosen): LabelledSequence => {
        const { ids, assistantMask } = tok.encodeChat(turns([...record.prompt, ...completion]), chatOpts);
        if (ids.length < prompt.length || prompt.some((id, t) => ids[t] !== id))
          throw new RecordError(`${name}: the chat template renders the prompt differently once the ${name} turns follow it; cannot split prompt and completion`);
        return { ids, labels: ids.map((id, t) => (t >= prompt.length && assistantMask[t] ? id : -100)) };
      };
      return { kind: 'dpo', chosen: side('chosen', record.chosen), rejected: side('rejected', record.rejected) };
    }
    case 'dpo-text': {
      const tok = needTokenizer(tokenizer, 'text records');
      const prompt = tok.encode(record.prompt);
      const eos = tok.eosTokenIds[0];
      const side = (text: string): LabelledSequence => {
        const ids = [...tok.encode(text, { addSpecialTokens: false }), ...(eos === undefined ? [] : [eos])];
        return { ids: [...prompt, ...ids], labels: [...prompt.map(() => -100), ...ids] };
      };
      return { kind: 'dpo', chosen: side(record.chosen), rejected: side(record.rejected) };
    }
  }
}

export type RewardItem = { kind: 'single'; ids: number[] } | { kind: 'pair'; chosen: number[]; rejected: number[] };

/** The reward-model input(s) of one parsed record (see the file comment). */
export function tokenizeForReward(record: SftRecord | DpoRecord, tokenizer: LoadedTokenizer | null, o: RecordTokenOptions = {}): RewardItem {
  switch (record.kind) {
    case 'sft-tokens':
      return { kind: 'single', ids: record.inputIds };
    case 'sft-messages': {
      const tok = needTokenizer(tokenizer, 'message records');
      needTemplate(tok, 'message records');
      const last = record.messages.at(-1)!;
      if (last.role !== 'assistant')
        throw new RecordError(`the last message is the ${last.role}'s: a reward model scores the assistant's answer, so end the conversation with it`);
      return { kind: 'single', ids: rewardInputIds(tok, record.messages, o) };
    }
    case 'dpo-tokens':
      return { kind: 'pair', chosen: [...record.promptInputIds, ...record.chosenInputIds], rejected: [...record.promptInputIds, ...record.rejectedInputIds] };
    case 'dpo-messages': {
      const tok = needTokenizer(tokenizer, 'message records');
      needTemplate(tok, 'message records');
      return { kind: 'pair', chosen: rewardInputIds(tok, [...record.prompt, ...record.chosen], o), rejected: rewardInputIds(tok, [...record.prompt, ...record.rejected], o) };
    }
    case 'dpo-text': {
      const tok = needTokenizer(tokenizer, 'text records');
      const eos = tok.eosTokenIds[0];
      const side = (text: string) => {
        const ids = tok.encode(record.prompt + text);
        return eos === undefined || ids.at(-1) === eos ? ids : [...ids, eos];
      };
      return { kind: 'pair', chosen: side(record.chosen), rejected: side(record.rejected) };
    }
  }
}
