// fuse-studio generate: continue a prompt with the model (and an optional PEFT adapter), streaming
// the text to stdout; --json prints one object {"ids": [generated ids], "text": … | null} instead.
import { readFile } from 'node:fs/promises';
import { generate } from '../../model/generate';
import { resolveSampling, samplingFromGenerationConfig, type SamplingOptions } from '../../model/sampling';
import { MissingTokenizerError, type ChatMessage, type LoadedTokenizer } from '../../tokenizer';
import { hasTokenizer, loadModelForCli, openModelSource, parseQuant } from '../model';
import type { GENERATE_OPTIONS } from '../commands';
import { intOption, numberOption, UsageError, type Parsed } from './args';

/** "1,2, 3" → [1, 2, 3]. */
export function parseIdList(flag: string, text: string): number[] {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (!parts.length) throw new UsageError(`--${flag}: no token ids in "${text}"`);
  return parts.map((p) => {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${flag}: "${p}" is not a token id`);
    return n;
  });
}

async function readMessages(file: string): Promise<ChatMessage[]> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--messages: cannot read ${file} as JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(value) ? value : (value as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(list) || !list.length) throw new UsageError(`--messages: ${file} must hold a non-empty JSON list of {"role", "content"} (or {"messages": [...]})`);
  list.forEach((m: unknown, i) => {
    const ok = m && typeof m === 'object' && typeof (m as ChatMessage).role === 'string' && typeof (m as ChatMessage).content === 'string';
    if (!ok) throw new UsageError(`--messages: ${file}: message ${i} is not {"role": string, "content": string}`);
  });
  return list as ChatMessage[];
}

/** Streams decoded text: prints what is new each time, holding back an incomplete UTF-8 character. */
class TextStream {
  private ids: number[] = [];
  private printed = '';
  constructor(private readonly tok: LoadedTokenizer) {}
  push(id: number): void {
    this.ids.push(id);
    const text = this.tok.decode(this.ids, { skipSpecialTokens: true });
    if (text.endsWith('\uFFFD') || text.length <= this.printed.length || !text.startsWith(this.printed)) return;
    process.stdout.write(text.slice(this.printed.length));
    this.printed = text;
  }
  end(): void {
    const text = this.tok.decode(this.ids, { skipSpecialTokens: true });
    process.stdout.write((text.startsWith(this.printed) ? text.slice(this.printed.length) : '') + '\n');
  }
}

export async function run({ values: v }: Parsed<typeof GENERATE_OPTIONS>): Promise<number> {
  if (!v.model) throw new UsageError('generate: --model DIR|URL is required');
  const inputs = [v.prompt, v.messages, v['prompt-ids']].filter((x) => x !== undefined).length;
  if (inputs !== 1) throw new UsageError('generate: give exactly one of --prompt, --messages, --prompt-ids');
  if ((v.system !== undefined || v.raw) && v.prompt === undefined) throw new UsageError('generate: --system and --raw go with --prompt');
  const maxNewTokens = intOption('max-new-tokens', v['max-new-tokens']);
  if (maxNewTokens !== undefined && maxNewTokens < 0) throw new UsageError(`--max-new-tokens: must be ≥ 0, got ${maxNewTokens}`);
  const promptIds = v['prompt-ids'] === undefined ? null : parseIdList('prompt-ids', v['prompt-ids']);
  const messages = v.messages === undefined ? null : await readMessages(v.messages);
  const flags: SamplingOptions = {
    temperature: numberOption('temperature', v.temperature),
    topP: numberOption('top-p', v['top-p']),
    topK: intOption('top-k', v['top-k']),
    repetitionPenalty: numberOption('repetition-penalty', v['repetition-penalty']),
    seed: intOption('seed', v.seed),
  };

  try {
    resolveSampling(flags);
  } catch (e) {
    throw new UsageError(`generate: ${(e as Error).message}`, { cause: e });
  }

  const source = await openModelSource(v.model);
  // Text needs a tokenizer: say so before reading any weights.
  if (promptIds === null && !(await hasTokenizer(source))) throw new MissingTokenizerError(source.description);
  const m = await loadModelForCli(source, { adapter: v.adapter, quant: parseQuant(v.quant) });
  try {
    const tok = m.tokenizer;
    const chatOpts = v['date-string'] === undefined ? {} : { dateString: v['date-string'] };
    let ids: number[];
    if (promptIds) ids = promptIds;
    else if (messages) {
      if (!tok!.chatTemplate) throw new Error(`${source.description}: this model has no chat template, so --messages cannot be rendered; use --prompt with plain text`);
      ids = tok!.encodeChat(messages, { ...chatOpts, addGenerationPrompt: true }).ids;
    } else if (v.raw || !tok!.chatTemplate) ids = tok!.encode(v.prompt!);
    else {
      const turns: ChatMessage[] = [...(v.system === undefined ? [] : [{ role: 'system', content: v.system }]), { role: 'user', content: v.prompt! }];
      ids = tok!.encodeChat(turns, { ...chatOpts, addGenerationPrompt: true }).ids;
    }

    const gen = m.loaded.generationConfig;
    // What transformers would do with this generation_config, then the flags on top.
    const hf = samplingFromGenerationConfig({ ...gen, do_sample: true });
    const sampling: SamplingOptions = {
      temperature: flags.temperature ?? (gen?.do_sample === true ? hf.temperature : 0),
      topK: flags.topK ?? hf.topK,
      topP: flags.topP ?? hf.topP,
      repetitionPenalty: flags.repetitionPenalty ?? hf.repetitionPenalty,
      seed: flags.seed ?? 0,
    };
    const eosTokenIds = [...new Set([...(tok?.eosTokenIds ?? []), ...m.loaded.config.eosTokenIds])];
    const genMax = typeof gen?.max_new_tokens === 'number' ? gen.max_new_tokens : 256;

    const ac = new AbortController();
    const onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    const stream = !v.json && tok ? new TextStream(tok) : null;
    let count = 0;
    try {
      const result = await generate(
        m.model,
        { promptIds: ids, maxNewTokens: maxNewTokens ?? genMax, sampling, eosTokenIds, lora: m.lora, signal: ac.signal },
        (id) => {
          if (v.json) return;
          if (stream) stream.push(id);
          else process.stdout.write(`${count ? ',' : ''}${id}`);
          count++;
        },
      );
      if (v.json) console.log(JSON.stringify({ ids: result.ids, text: tok ? tok.decode(result.ids, { skipSpecialTokens: true }) : null }));
      else if (stream) stream.end();
      else process.stdout.write('\n');
      if (result.finishReason === 'aborted') console.error('fuse-studio: generation interrupted');
    } finally {
      process.off('SIGINT', onSigint);
    }
    return 0;
  } finally {
    m.release();
  }
}
