// fuse-studio: the command-line face of the studio's modules (Node + Dawn). A thin dispatcher:
// each command is a module under commands/, loaded only when run (so `build-data` never loads
// the WebGPU addon, and `gpu` never loads the data pipeline).
import { UsageError } from './commands/args';

interface Command {
  usage: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  gpu: {
    usage: `gpu        print the WebGPU adapter (vendor, features, limits) as JSON`,
    load: () => import('./commands/gpu'),
  },
  info: {
    usage: `info       the WebGPU adapter, its features and limits, as text (--json: as \`gpu\`)`,
    load: () => import('./commands/info'),
  },
  generate: {
    usage: `generate --model DIR|URL [--adapter DIR]
             (--prompt TEXT [--system TEXT] [--raw] | --messages FILE.json | --prompt-ids 1,2,3)
             [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K]
             [--repetition-penalty R] [--seed S] [--date-string "26 Jul 2024"] [--json]
             continue a prompt, streaming the text to stdout; --json prints one object
             {"ids": [generated ids], "text": …} (text null without a tokenizer).
             --prompt is a user turn through the chat template (plain text with --raw or
             when the model has none); --messages: a JSON list of {"role","content"};
             --prompt-ids needs no tokenizer. --adapter: a PEFT LoRA folder. Sampling
             defaults follow the model's generation_config.json as transformers reads it
             (no do_sample: greedy; top_k 50); --temperature 0 is greedy; --seed (default 0)
             makes sampling reproducible. Stops at an end-of-sequence token`,
    load: () => import('./commands/generate'),
  },
  serve: {
    usage: `serve --model DIR|URL [--adapter DIR] [--port P (8765)] [--host 127.0.0.1]
             [--model-name NAME] [--max-tokens N] [--date-string "26 Jul 2024"]
             an OpenAI-compatible API on the model: GET /v1/models, POST /v1/chat/completions
             (messages through the chat template; temperature, top_p, max_tokens, seed, stop,
             n, stream, repetition_penalty, top_k). Requests run one at a time; usable as a
             build-data source ("baseURL": "http://127.0.0.1:8765/v1"). POST /pooling (also
             /v1/pooling; vLLM's reward-model route, {"model","messages"} ending in the assistant
             response): data[0].data[0] is the model's mean per-token log-probability of the
             response, a likelihood reward usable as a build-data reward model. Ctrl-C stops`,
    load: () => import('./commands/serve'),
  },
  logprobs: {
    usage: `logprobs --model DIR|URL [--adapter DIR] --data FILE.jsonl [--batch-size N]
             [--date-string "26 Jul 2024"]
             one JSON line per record: SFT records ({"messages"}, {"conversations"},
             {"input_ids","labels"}) give {"logprob_sum","n_tokens"} over the target tokens
             (assistant turns; labels != -100, shifted as in transformers); DPO records
             ({"prompt","chosen","rejected"}, {"prompt_input_ids","chosen_input_ids",
             "rejected_input_ids"}) give {"chosen": {…}, "rejected": {…}} over the responses`,
    load: () => import('./commands/logprobs'),
  },
  train: {
    usage: `train sft|dpo --model DIR|URL --data FILE.jsonl --out ADAPTER_DIR [--adapter INIT_DIR]
             [--epochs N] [--max-steps N] [--lr X] [--batch-size B] [--grad-accum G]
             [--max-length L] [--lora-rank R] [--lora-alpha A] [--lora-targets q_proj,k_proj,…|all]
             [--warmup-ratio W] [--schedule cosine|linear|constant] [--beta B] [--loss dpo|ln-dpo]
             [--seed S] [--resume DIR] [--eval FILE.jsonl] [--eval-every N]
             [--checkpoint-every N (500)] [--keep-checkpoints K (2)] [--date-string "26 Jul 2024"]
             LoRA SFT or DPO; writes a PEFT adapter folder, metrics.jsonl (one line per step,
             TRL names) and OUT/checkpoints/checkpoint-<step>/ (--resume OUT continues the
             newest valid one). Records: TRL messages, ShareGPT, {"input_ids","labels"};
             DPO {"prompt","chosen","rejected"} or *_input_ids. dpo --adapter SFT_DIR continues
             the SFT adapter with it as the reference policy (the output is SFT+DPO);
             defaults: src/train/defaults.ts (ln-dpo, beta 10)`,
    load: () => import('./commands/train'),
  },
  export: {
    usage: `export merged --model DIR|URL --adapter DIR --out DIR [--dtype bf16|f32] [--max-shard-size 5GB]
             the model with the adapter merged in (W + scale·B·A in float64, rounded once),
             a plain Hugging Face folder (config, tokenizer files copied; sharded when large)
           export recipe --model HUB_ID --out DIR [--sft sft.jsonl] [--dpo dpo.jsonl] [--gpus N]
             [--name NAME] [--sft-lr X] [--sft-epochs N] [--dpo-lr X] [--dpo-epochs N]
             [--batch-size B] [--grad-accum G] [--max-length L] [--lora-rank R] [--lora-alpha A]
             [--lora-targets …] [--warmup-ratio W] [--schedule S] [--beta B] [--loss dpo|ln-dpo]
             [--seed S]
             the same data and hyperparameters as ready-to-run TRL (+ accelerate/DeepSpeed) and
             LLaMA-Factory configs, with a README`,
    load: () => import('./commands/export'),
  },
  plan: {
    usage: `plan --model DIR|URL|llama-3.2-1b|llama-3.2-3b [--seq N] [--batch B] [--lora-rank R]
             [--targets q_proj,…] [--dtype bf16|f16|f32] [--full] [--gen-capacity N]
             [--gen-batch B] [--max-binding-bytes N] [--json]
             the GPU memory plan of a training step (and of generation with --gen-capacity),
             by category, from config.json alone (defaults: seq 512, batch 4, r 16)`,
    load: () => import('./commands/plan'),
  },
  selftest: {
    usage: `selftest   run every kernel on random inputs against its float64 reference
             (--seed N replays a run; exits 1 if any kernel fails)`,
    load: () => import('./commands/selftest'),
  },
  'demo-model': {
    usage: `demo-model --out DIR [--shards N] [--dtype bf16|f16|f32] [--seed N]
             write the built-in demo model folder (a tiny Llama-3 checkpoint with the
             Llama 3.2 tokenizer and chat template); the same bytes on every run`,
    load: () => import('./commands/demo-model'),
  },
  'build-data': {
    usage: `build-data --prompts FILE --sources sources.json [--judge judge.json] --out DIR
             [--resume] [--eval-fraction F] [--seed S] [--code-timeout MS] [--quiet]
             the FuseChat-3.0 data recipe: ask every source for n responses per prompt,
             score them (judge or reward model; math answers and code tests verified),
             build the SFT and DPO sets and write them to DIR (sft.jsonl, dpo.jsonl,
             fusechat_*.jsonl, report.json; responses.jsonl and scores.jsonl keep the
             run, so --resume continues a stopped one without asking again).
             FILE: .jsonl/.json/.csv/.tsv/.parquet with prompt, domain, gold, tests columns.
             sources.json: [{"name","baseURL","apiKey","model","temperature","top_p",
             "max_tokens","n","concurrency"}…]; judge.json: {"baseURL","apiKey","model"} or
             {"type":"reward","baseURL","model","scorePath"}; an apiKey "$NAME" is read
             from the environment variable NAME`,
    load: () => import('./commands/build-data'),
  },
  demo: {
    usage: `demo [--out DIR (fuse-demo)] [--prompts N (4)] [--samples N (2)] [--max-tokens N (8)]
             [--sft-steps N (2)] [--dpo-steps N (2)] [--seed S (0)]
             the whole FuseChat-3.0 recipe offline on demo models: two demo models served
             as sources, a third as the reward model (POST /pooling), built-in instruction,
             math (gold answers) and code (tests) prompts through build-data's pipeline into
             DIR, then LoRA SFT and LN-DPO of the target (DIR/adapter-sft, DIR/adapter-dpo)
             and its greedy answers before and after. A few minutes on a CPU WebGPU`,
    load: () => import('./commands/demo'),
  },
};

const HELP = `usage: fuse-studio <command> [options]

commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.usage}`)
  .join('\n')}

options:
  -h, --help  this text`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    console.log(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`fuse-studio: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    console.log(`usage: fuse-studio ${command.usage}`);
    return 0;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (e) {
    // parseArgs reports unknown or malformed options with a code: a usage mistake too.
    const code = (e as { code?: unknown }).code;
    if (e instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`fuse-studio: ${(e as Error).message}\n(see: fuse-studio ${name} --help)`);
      return 2;
    }
    throw e;
  }
}

// Top-level await: the commands are loaded lazily, and a runner that evaluates this module
// (vite-node in the tests) must not consider it finished before the command is.
try {
  process.exit(await main(process.argv.slice(2)));
} catch (e: unknown) {
  console.error(`fuse-studio: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
