// Token counts with the loaded model's tokenizer (the Data page's check for prompts too long for
// the run: src/data/prompt-length.ts). A prompt is counted as the model would read it: its turns
// through the chat template, with the generation prompt.

import type { ChatMessage } from '../../tokenizer';
import { currentSession } from './session';

export const tokenService = {
  /** Each prompt's token count, or null when no model with a tokenizer is loaded. */
  countPromptTokens(prompts: { text: string; system?: string }[]): number[] | null {
    const tok = currentSession()?.tokenizer;
    if (!tok) return null;
    return prompts.map((p) => {
      const turns: ChatMessage[] = [...(p.system ? [{ role: 'system' as const, content: p.system }] : []), { role: 'user' as const, content: p.text }];
      if (tok.chatTemplate === null) return tok.encode((p.system ? `${p.system}\n` : '') + p.text).length;
      return tok.encode(tok.applyChatTemplate(turns, { addGenerationPrompt: true }), { addSpecialTokens: false }).length;
    });
  },
};
