// Chat templates rendered as transformers' `apply_chat_template` renders them: the template from
// tokenizer_config.json, compiled with trim_blocks + lstrip_blocks (which @huggingface/jinja always
// applies), given `messages`, `tools` (None when absent), `documents`, `add_generation_prompt`,
// the tokenizer's special tokens (`bos_token`, `eos_token`, …) and any extra keyword arguments
// (e.g. `date_string`), with the globals transformers installs: `raise_exception(msg)` and
// `strftime_now(fmt)`. `tojson` is @huggingface/jinja's, which matches Python's
// `json.dumps(ensure_ascii=False)` except that a float with an integral value (1.0) prints as 1.
// This module renders exactly what it is given (no `enable_thinking` unless asked); the tokenizer
// (tokenizer.ts) is where the studio's default of thinking off is applied.

import { Environment, Interpreter, parse, tokenize } from '@huggingface/jinja';

export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}

/** One chat turn. `content` is usually a string; tool turns may carry objects (the template decides). */
export interface ChatMessage {
  role: string;
  content?: unknown;
  tool_calls?: { type?: string; function: { name: string; arguments: unknown } }[];
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the header that opens an assistant turn (what a model then completes). */
  addGenerationPrompt?: boolean;
  /**
   * Llama 3.x: the "Today Date: …" line, e.g. "26 Jul 2024". Without it the template calls
   * `strftime_now`, i.e. today's date, exactly as transformers does; pass it to make output
   * reproducible (training data, tests).
   */
  dateString?: string;
  /** The clock `strftime_now` reads (default: now). */
  now?: Date;
  /** JSON-schema tool definitions, passed as `tools` (None when absent, as transformers does). */
  tools?: unknown[] | null;
  /** Retrieval documents, passed as `documents`. */
  documents?: unknown[] | null;
  /**
   * `enable_thinking`, the keyword Qwen3's template reads: false appends an empty
   * `<think>\n\n</think>\n\n` to the generation prompt, so the model answers without reasoning.
   * Templates that do not read it ignore it. renderChatTemplate passes it only when set;
   * LoadedTokenizer (tokenizer.ts) defaults it to false.
   */
  enableThinking?: boolean;
  /** Any further template variables (transformers' **kwargs), e.g. `{ tools_in_user_message: false }`; they win over the named options. */
  extra?: Record<string, unknown>;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * Python's `datetime.strftime` in the C locale (English names, whatever the browser's locale is;
 * @huggingface/jinja's own version formats month names with Intl in the user's locale).
 */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number) => String(n).padStart(2, '0');
  const startOfYear = new Date(date.getFullYear(), 0, 1);
  const dayOfYear = Math.floor((date.getTime() - startOfYear.getTime()) / 86_400_000 + 1e-9) + 1;
  return format.replace(/%([aAbBdeHIjmMpSyYF%])/g, (_, c: string) => {
    switch (c) {
      case 'a':
        return DAYS[date.getDay()]!.slice(0, 3);
      case 'A':
        return DAYS[date.getDay()]!;
      case 'b':
        return MONTHS[date.getMonth()]!.slice(0, 3);
      case 'B':
        return MONTHS[date.getMonth()]!;
      case 'd':
        return p2(date.getDate());
      case 'e':
        return String(date.getDate()).padStart(2, ' ');
      case 'H':
        return p2(date.getHours());
      case 'I':
        return p2(date.getHours() % 12 || 12);
      case 'j':
        return String(dayOfYear).padStart(3, '0');
      case 'm':
        return p2(date.getMonth() + 1);
      case 'M':
        return p2(date.getMinutes());
      case 'p':
        return date.getHours() < 12 ? 'AM' : 'PM';
      case 'S':
        return p2(date.getSeconds());
      case 'y':
        return p2(date.getFullYear() % 100);
      case 'Y':
        return String(date.getFullYear());
      case 'F':
        return `${date.getFullYear()}-${p2(date.getMonth() + 1)}-${p2(date.getDate())}`;
      default:
        return '%';
    }
  });
}

type Program = ReturnType<typeof parse>;
/** Python's range(stop) / range(start, stop[, step]) as a list. */
function pyRange(...args: unknown[]): number[] {
  const n = args.map(Number);
  const [start, stop, step] = n.length === 1 ? [0, n[0]!, 1] : [n[0]!, n[1]!, n[2] ?? 1];
  if (!Number.isInteger(start) || !Number.isInteger(stop) || !Number.isInteger(step) || step === 0)
    throw new ChatTemplateError(`range(${args.join(', ')}): integer arguments and a non-zero step expected`);
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const compiled = new Map<string, Program>();

/** Parse a template once and keep it (templates are a few KB; a session sees a handful). */
export function compileChatTemplate(source: string): Program {
  let t = compiled.get(source);
  if (!t) {
    try {
      // transformers compiles with trim_blocks and lstrip_blocks (and drops one trailing newline).
      t = parse(tokenize(source, { lstrip_blocks: true, trim_blocks: true }));
    } catch (e) {
      throw new ChatTemplateError(`the chat template does not parse: ${(e as Error).message}`);
    }
    if (compiled.size > 32) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/**
 * Render `messages` with a chat template. `specialTokens` are the tokenizer's named special tokens
 * (`bos_token`, `eos_token`, `pad_token`, `unk_token`, …) as strings.
 */
export function renderChatTemplate(
  source: string,
  messages: readonly ChatMessage[],
  specialTokens: Record<string, string>,
  opts: ChatTemplateOptions = {},
): string {
  const program = compileChatTemplate(source);
  // Plain JSON data, as a Python dict would be: a key whose value is `undefined` is dropped, so
  // `'tool_calls' in message` is false for `{tool_calls: undefined}`.
  const plain = JSON.parse(JSON.stringify(messages)) as ChatMessage[];
  const now = opts.now ?? new Date();
  // The globals @huggingface/jinja's Template installs, with transformers' raise_exception and a
  // locale-independent strftime_now (its own formats month names in the browser's locale).
  const vars: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range: pyRange,
    ...specialTokens,
    ...(opts.enableThinking === undefined ? {} : { enable_thinking: opts.enableThinking }),
    ...opts.extra,
    messages: plain,
    tools: opts.tools ?? null,
    documents: opts.documents ?? null,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    raise_exception: (message: unknown) => {
      throw new ChatTemplateError(`the chat template refused these messages: ${String(message)}`);
    },
    strftime_now: (format: unknown) => strftime(now, String(format)),
  };
  if (opts.dateString !== undefined) vars.date_string = opts.dateString;
  try {
    const env = new Environment();
    for (const [k, v] of Object.entries(vars)) env.set(k, v);
    const result = new Interpreter(env).run(program) as { value: unknown };
    return String(result.value);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw e;
    throw new ChatTemplateError(`the chat template failed to render: ${(e as Error).message}`);
  }
}
