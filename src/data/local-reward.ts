// A reward model (*ForSequenceClassification, e.g. Skywork-Reward-V2-Qwen3-0.6B) run by the
// engine in this process, as the data pipeline's RewardModelRunner (score.ts). The host loads the
// model (the CLI from a folder, URL or Hub repo: src/cli/reward-model.ts; the studio in its engine
// worker: src/studio/worker/reward-service.ts) and wraps it here:
//
//   const runner = engineRewardRunner({ model, tokenizer, description });
//   await runPipeline({ …, judge: { type: 'local-reward', … }, rewardModel: runner });
//
// A conversation becomes token ids exactly as transformers' reward-model usage does:
// tokenizer.apply_chat_template(conversation, tokenize=True) — the whole conversation, ending in
// the assistant's answer, without a generation prompt, encoded without added special tokens (the
// template writes BOS itself). scoreRewards (model/reward.ts) batches and pools the last real token.
import type { ModelConfig } from '../model/config';
import type { DecoderModel } from '../model/decoder';
import { FAMILIES } from '../model/families';
import { scoreRewards } from '../model/reward';
import type { ChatMessage as TemplateMessage, LoadedTokenizer } from '../tokenizer';
import type { ChatMessage } from './records';
import type { RewardModelRunner } from './score';

/** The reward model the messages suggest (small, and a Qwen3 the engine runs). */
export const REWARD_MODEL_EXAMPLE = 'Skywork/Skywork-Reward-V2-Qwen3-0.6B';

export class RewardModelError extends Error {
  override name = 'RewardModelError';
}

/** Refuses a causal LM as a reward model (from its config, before any weight is read). */
export function expectRewardConfig(config: ModelConfig, where: string): void {
  if (config.head === 'sequence-classification') return;
  const arch = FAMILIES[config.family].architectures['causal-lm'];
  throw new RewardModelError(
    `${where} is a causal language model (${arch}), not a reward model: scoring needs a *ForSequenceClassification reward model, such as ${REWARD_MODEL_EXAMPLE}`,
  );
}

export interface RewardTokenOptions {
  /** Llama 3.x templates' "Today Date" line (default: today, as transformers). */
  dateString?: string;
}

/**
 * transformers' `tokenizer.apply_chat_template(conversation, tokenize=True)`: the rendered
 * conversation (no generation prompt) encoded without added special tokens. The last turn should
 * be the assistant's answer being scored.
 */
export function rewardInputIds(tokenizer: LoadedTokenizer, conversation: readonly ChatMessage[], o: RewardTokenOptions = {}): number[] {
  if (tokenizer.chatTemplate === null) throw new RewardModelError("the reward model's tokenizer has no chat template, so a conversation cannot be scored");
  const turns: TemplateMessage[] = conversation.map((m) => ({ role: m.role, content: m.content }));
  const text = tokenizer.applyChatTemplate(turns, { addGenerationPrompt: false, ...(o.dateString !== undefined ? { dateString: o.dateString } : {}) });
  return tokenizer.encode(text, { addSpecialTokens: false });
}

export interface EngineRewardModel {
  model: DecoderModel;
  tokenizer: LoadedTokenizer | null;
  /** Where it came from, for messages. */
  description: string;
}

/** A loaded reward model as the pipeline's runner. */
export function engineRewardRunner(m: EngineRewardModel, o: RewardTokenOptions = {}): RewardModelRunner {
  expectRewardConfig(m.model.config, m.description);
  const tokenizer = m.tokenizer;
  if (!tokenizer) throw new RewardModelError(`${m.description} has no tokenizer.json: the reward model cannot read responses as text`);
  return {
    async score(conversations, signal) {
      const seqs = conversations.map((c) => rewardInputIds(tokenizer, c, o));
      return scoreRewards(m.model, seqs, signal ? { signal } : {});
    },
  };
}
