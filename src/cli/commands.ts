// Every command of `fuse-studio`, declared once: its name, what `--help` says, its options and how to
// run it. The parser, `fuse-studio --help`, each `fuse-studio COMMAND --help` and the typed values a
// command receives all come from these declarations (program.ts). Adding a command is one entry in
// COMMANDS, whose `run` imports its module only when it runs (so `build-data` never loads the WebGPU
// addon, and `gpu` never loads the data pipeline); adding an option is one line in its options.
import { command, type CommandGroup, type CommandSpec, type OptionSpecs } from './commands/args';

const MODEL = {
  type: 'string',
  value: 'DIR|URL|REPO|PRESET',
  required: true,
  help: 'the model: a folder, an http(s) URL, a Hub repo id, or a preset alias such as qwen2.5-0.5b (`fuse-studio models` lists them)',
} as const;
const ADAPTER = { type: 'string', value: 'DIR', help: 'a PEFT LoRA adapter folder to apply' } as const;
const QUANT = {
  type: 'string',
  value: 'none|int8|int4',
  help: 'keep the frozen base quantized on the GPU: int8 or int4 projections (an f16 scale per 32 weights), int8 embedding/lm_head, dequantized in the kernels; cached after the first load (default none)',
} as const;
const DATE_STRING = { type: 'string', value: 'DATE', help: 'the date the chat template shows, e.g. "26 Jul 2024" (default: the template\'s own)' } as const;

/** Training hyperparameters shared by `train` and `export recipe` (defaults: src/train/defaults.ts). */
export const HYPERPARAMETER_OPTIONS = {
  'batch-size': { type: 'string', value: 'B', help: 'sequences per micro-batch' },
  'grad-accum': { type: 'string', value: 'G', help: 'micro-batches per optimizer step' },
  'max-length': { type: 'string', value: 'L', help: 'tokens per sequence (longer ones are truncated)' },
  'lora-rank': { type: 'string', value: 'R', help: 'LoRA rank' },
  'lora-alpha': { type: 'string', value: 'A', help: 'LoRA alpha (scale alpha/rank)' },
  'lora-targets': { type: 'string', value: 'LIST', help: 'LoRA target modules: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj or all' },
  'warmup-ratio': { type: 'string', value: 'W', help: 'fraction of the steps spent warming the learning rate up' },
  schedule: { type: 'string', value: 'S', help: 'learning-rate schedule: cosine, linear or constant' },
  beta: { type: 'string', value: 'B', help: 'DPO beta (dpo only)' },
  loss: { type: 'string', value: 'dpo|ln-dpo', help: 'DPO loss: dpo (sigmoid) or ln-dpo, length-normalized (dpo only)' },
  seed: { type: 'string', value: 'S', help: 'random seed (data order, LoRA init)' },
} as const satisfies OptionSpecs;

export const GPU_OPTIONS = {} as const satisfies OptionSpecs;

export const INFO_OPTIONS = {
  json: { type: 'boolean', help: 'print the same JSON object as `fuse-studio gpu`' },
} as const satisfies OptionSpecs;

export const GENERATE_OPTIONS = {
  model: MODEL,
  adapter: ADAPTER,
  quant: QUANT,
  prompt: { type: 'string', value: 'TEXT', help: 'a user turn, through the chat template (plain text with --raw, or when the model has none)' },
  system: { type: 'string', value: 'TEXT', help: 'a system turn before --prompt' },
  raw: { type: 'boolean', help: '--prompt is plain text, not a chat turn' },
  messages: { type: 'string', value: 'FILE.json', help: 'the conversation: a JSON list of {"role","content"} (or {"messages": [...]})' },
  'prompt-ids': { type: 'string', value: 'IDS', help: 'the prompt as token ids, "1,2,3" (needs no tokenizer)' },
  'max-new-tokens': { type: 'string', value: 'N', help: 'tokens to generate at most (default: generation_config.json, else 256)' },
  temperature: { type: 'string', value: 'T', help: 'sampling temperature; 0 is greedy' },
  'top-p': { type: 'string', value: 'P', help: 'nucleus sampling: keep the smallest set of tokens whose probability reaches P' },
  'top-k': { type: 'string', value: 'K', help: 'sample among the K most likely tokens' },
  'repetition-penalty': { type: 'string', value: 'R', help: 'penalty on tokens already present (1: none)' },
  seed: { type: 'string', value: 'S', help: 'sampling seed (default 0)' },
  'date-string': DATE_STRING,
  json: { type: 'boolean', help: 'print one object {"ids": [generated ids], "text": …} (text null without a tokenizer)' },
} as const satisfies OptionSpecs;

export const SERVE_OPTIONS = {
  model: MODEL,
  adapter: ADAPTER,
  quant: QUANT,
  port: { type: 'string', value: 'P', help: 'port to listen on (default 8765; 0: any free port)' },
  host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1; the API has no authentication)' },
  'model-name': { type: 'string', value: 'NAME', help: 'the model id in /v1/models and responses (default: the folder name, or the id given)' },
  'max-tokens': { type: 'string', value: 'N', help: 'completion tokens when a request gives no max_tokens' },
  'max-context': { type: 'string', value: 'N', help: 'prompt + completion tokens allowed (default: max_position_embeddings)' },
  'date-string': DATE_STRING,
} as const satisfies OptionSpecs;

export const LOGPROBS_OPTIONS = {
  model: MODEL,
  adapter: ADAPTER,
  quant: QUANT,
  data: { type: 'string', value: 'FILE.jsonl', required: true, help: 'SFT or DPO records, one JSON object a line' },
  'batch-size': { type: 'string', value: 'N', help: 'sequences scored together' },
  'date-string': DATE_STRING,
} as const satisfies OptionSpecs;

export const REWARD_OPTIONS = {
  model: {
    type: 'string',
    value: 'DIR|URL|REPO',
    required: true,
    help: 'a *ForSequenceClassification reward model (a folder, an http(s) URL or a Hub repo id), e.g. Skywork/Skywork-Reward-V2-Qwen3-0.6B',
  },
  data: { type: 'string', value: 'FILE.jsonl', required: true, help: 'records, one JSON object a line: {"messages"} ending in the answer, {"input_ids"}, or DPO records' },
  'batch-size': { type: 'string', value: 'N', help: 'sequences scored together (default: as many as fit 4096 padded tokens, at most 8)' },
  'date-string': DATE_STRING,
} as const satisfies OptionSpecs;

export const TRAIN_OPTIONS = {
  model: MODEL,
  quant: { ...QUANT, help: `${QUANT.help}; the adapter is an ordinary PEFT adapter of the full-precision base (QLoRA)` },
  data: { type: 'string', value: 'FILE.jsonl', required: true, help: 'the training records, one JSON object a line' },
  out: { type: 'string', value: 'ADAPTER_DIR', required: true, help: 'where the adapter, metrics.jsonl and checkpoints/ go' },
  adapter: { type: 'string', value: 'INIT_DIR', help: 'start from this PEFT adapter (dpo: the SFT adapter, also the reference policy)' },
  epochs: { type: 'string', value: 'N', help: 'passes over the data' },
  'max-steps': { type: 'string', value: 'N', help: 'stop after N optimizer steps' },
  'gpu-memory': {
    type: 'string',
    value: 'GIB',
    help: 'GPU memory the training step may use (GiB): the memory plan keeps the lm_head logits and the layers\' activations when they fit instead of recomputing them (default: the leanest plan + 25%, at most 256 MiB more)',
  },
  ...HYPERPARAMETER_OPTIONS,
  lr: { type: 'string', value: 'X', help: 'peak learning rate' },
  resume: { type: 'string', value: 'DIR', help: 'continue from the newest valid checkpoint under DIR/checkpoints (usually the --out of the stopped run)' },
  eval: { type: 'string', value: 'FILE.jsonl', help: 'held-out records to evaluate on' },
  'eval-every': { type: 'string', value: 'N', help: 'evaluate every N steps (default: only at the end)' },
  'checkpoint-every': { type: 'string', value: 'N', help: 'write a checkpoint every N steps (default 500)' },
  'keep-checkpoints': { type: 'string', value: 'K', help: 'keep the newest K checkpoints (default 2)' },
  'date-string': DATE_STRING,
  'base-model-name': {
    type: 'string',
    value: 'OWNER/NAME',
    help: "the adapter's base_model_name_or_path when --model is not from the Hub (a Hub repo id or an absolute path; default: the Hub repo id, else empty with a warning)",
  },
  quiet: { type: 'boolean', help: 'no per-step progress lines' },
} as const satisfies OptionSpecs;

export const EXPORT_MERGED_OPTIONS = {
  model: MODEL,
  adapter: { ...ADAPTER, required: true, help: 'the PEFT LoRA adapter folder to merge in' },
  out: { type: 'string', value: 'DIR', required: true, help: 'the merged model folder to write' },
  dtype: { type: 'string', value: 'bf16|f32', help: 'weight type of the merged model (default bf16)' },
  'max-shard-size': { type: 'string', value: 'SIZE', help: 'largest safetensors shard, e.g. 5GB, 500MB (default 5GB)' },
  quiet: { type: 'boolean', help: 'print nothing' },
} as const satisfies OptionSpecs;

export const EXPORT_RECIPE_OPTIONS = {
  model: { type: 'string', value: 'HUB_ID', required: true, help: "the base model's Hub id, e.g. meta-llama/Llama-3.2-1B-Instruct, or a preset alias (its repo)" },
  out: { type: 'string', value: 'DIR', required: true, help: 'the recipe folder to write' },
  sft: { type: 'string', value: 'FILE.jsonl', help: 'SFT conversations (messages)' },
  dpo: { type: 'string', value: 'FILE.jsonl', help: 'DPO pairs (prompt, chosen, rejected)' },
  gpus: { type: 'string', value: 'N', help: 'GPUs the configs are written for' },
  name: { type: 'string', value: 'NAME', help: 'the run name in the configs' },
  'sft-lr': { type: 'string', value: 'X', help: 'SFT learning rate' },
  'sft-epochs': { type: 'string', value: 'N', help: 'SFT epochs' },
  'dpo-lr': { type: 'string', value: 'X', help: 'DPO learning rate' },
  'dpo-epochs': { type: 'string', value: 'N', help: 'DPO epochs' },
  ...HYPERPARAMETER_OPTIONS,
} as const satisfies OptionSpecs;

export const PLAN_OPTIONS = {
  model: { type: 'string', value: 'DIR|URL|REPO|PRESET', required: true, help: 'a model (only config.json is read) or a preset alias (nothing is read)' },
  seq: { type: 'string', value: 'N', help: 'sequence length (default 512)' },
  batch: { type: 'string', value: 'B', help: 'sequences per step (default 4)' },
  'lora-rank': { type: 'string', value: 'R', help: 'LoRA rank (default 16; 0: no adapter)' },
  targets: { type: 'string', value: 'LIST', help: 'LoRA target modules, e.g. q_proj,v_proj (default: all seven)' },
  dtype: { type: 'string', value: 'bf16|f16|f32', help: "weight type (default: the config's torch_dtype, else bf16)" },
  quant: { ...QUANT, help: 'plan a quantized base: int8 or int4 projections, int8 embedding/lm_head (default none)' },
  full: { type: 'boolean', help: 'full fine-tuning instead of LoRA' },
  'gen-capacity': { type: 'string', value: 'N', help: 'also plan generation with a KV cache of N positions' },
  'gen-batch': { type: 'string', value: 'B', help: 'sequences generated together (default 1)' },
  'max-binding-bytes': { type: 'string', value: 'N', help: "the device's maxStorageBufferBindingSize (tensors above it are split)" },
  json: { type: 'boolean', help: 'print the plan as JSON' },
} as const satisfies OptionSpecs;

export const MODELS_OPTIONS = {
  role: { type: 'string', value: 'target|source|reward', help: 'only the presets of this role' },
  memory: { type: 'string', value: 'GIB', help: 'also say whether each fits this much free GPU memory (GiB)' },
  json: { type: 'boolean', help: 'print the presets, sizes and plans as JSON' },
} as const satisfies OptionSpecs;

export const SELFTEST_OPTIONS = {
  seed: { type: 'string', value: 'N', help: 'replay the run of this seed (printed by every run)' },
} as const satisfies OptionSpecs;

export const DEMO_MODEL_OPTIONS = {
  out: { type: 'string', value: 'DIR', required: true, help: 'the model folder to write' },
  shards: { type: 'string', value: 'N', help: 'split the weights into N safetensors shards' },
  dtype: { type: 'string', value: 'bf16|f16|f32', help: 'weight type (default bf16)' },
  seed: { type: 'string', value: 'N', help: 'weight seed (the default gives the built-in demo model)' },
  family: { type: 'string', value: 'llama|mistral|qwen2|qwen3', help: 'architecture (default llama; qwen2/qwen3 ship the Qwen2.5/Qwen3 tokenizer and template)' },
} as const satisfies OptionSpecs;

export const BUILD_DATA_OPTIONS = {
  prompts: { type: 'string', value: 'FILE', required: true, help: '.jsonl/.json/.csv/.tsv/.parquet with prompt, domain, gold, tests columns' },
  sources: {
    type: 'string',
    value: 'sources.json',
    required: true,
    help: 'the source models: [{"name","baseURL","apiKey","model","temperature","top_p","max_tokens","n","concurrency"}…], or models on this GPU: {"name","local":true,"model":DIR|URL|REPO|PRESET,"n","max_tokens",…}',
  },
  judge: {
    type: 'string',
    value: 'judge.json',
    help: 'a chat judge {"baseURL","apiKey","model"}, a reward model {"type":"reward","baseURL","model","scorePath"} or a local one {"type":"local-reward","model":DIR|URL|REPO}',
  },
  out: { type: 'string', value: 'DIR', required: true, help: 'the run folder' },
  resume: { type: 'boolean', help: 'continue the run in DIR without asking or scoring anything twice' },
  'eval-fraction': { type: 'string', value: 'F', help: 'share of the prompts held out for evaluation (default 0)' },
  seed: { type: 'string', value: 'S', help: 'seed of the eval split and of sampling (default 0)' },
  'code-timeout': { type: 'string', value: 'MS', help: 'time limit of one code test run' },
  'gpu-memory': {
    type: 'string',
    value: 'GIB',
    help: 'GPU memory local sources may use (GiB): a model whose generation plan needs more is skipped, and batches are sized to fit (default: unknown, only buffer limits are checked)',
  },
  'date-string': { type: 'string', value: 'DATE', help: 'the date Llama 3.x chat templates show to local sources and a local reward model, e.g. "26 Jul 2024" (default: today)' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress lines' },
} as const satisfies OptionSpecs;

export const DEMO_OPTIONS = {
  out: { type: 'string', value: 'DIR', help: 'the run folder (default fuse-demo)' },
  prompts: { type: 'string', value: 'N', help: 'built-in prompts to use (default 4: every domain)' },
  samples: { type: 'string', value: 'N', help: 'responses per prompt and source (default 2)' },
  'max-tokens': { type: 'string', value: 'N', help: 'tokens per response (default 8)' },
  'sft-steps': { type: 'string', value: 'N', help: 'SFT steps (default 2)' },
  'dpo-steps': { type: 'string', value: 'N', help: 'DPO steps (default 2)' },
  seed: { type: 'string', value: 'S', help: 'seed (default 0)' },
} as const satisfies OptionSpecs;

export const CLASSROOM_OPTIONS = {
  model: {
    type: 'string',
    value: 'DIR|REPO[,…]',
    required: true,
    help: 'the models students load: folders, or Hub repos / presets downloaded once into the model cache (comma-separated)',
  },
  sources: { type: 'string', value: 'sources.json', help: "the sources students collect from, as build-data reads them (keys stay on this machine; local ones run on this GPU)" },
  judge: { type: 'string', value: 'judge.json', help: 'a chat judge {"baseURL","apiKey","model"} students score with, through the proxy' },
  recipe: { type: 'string', value: 'BUNDLE.zip', help: "a project bundle (the Export page's) with the prompts, training settings and eval set of the class recipe" },
  port: { type: 'string', value: 'P', help: 'port to listen on (default 8080; 0: any free port)' },
  host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1; 0.0.0.0 for the room\'s network)' },
  quota: { type: 'string', value: 'N', help: 'source requests each student may make (default 500; cached answers count)' },
  'per-minute': { type: 'string', value: 'N', help: 'source requests each student may make a minute (default 120)' },
  'max-body': { type: 'string', value: 'BYTES', help: 'largest source request body (default 1 MiB)' },
  origin: { type: 'string', value: 'URL[,…]', help: "origins besides the classroom's own allowed to call it (e.g. a studio dev server)" },
  board: { type: 'string', value: 'FILE.jsonl', help: "keep the results board in this file (read at start, so a restart keeps the class's votes; default: memory only)" },
  studio: { type: 'string', value: 'DIR', help: 'the built studio to serve (default: dist/studio beside the CLI)' },
} as const satisfies OptionSpecs;

export const EVAL_OPTIONS = {
  model: { ...MODEL, help: 'the base model every adapter applies to: a folder, an http(s) URL, a Hub repo id, or a preset alias' },
  quant: QUANT,
  adapter: {
    type: 'string',
    value: 'NAME=DIR',
    multiple: true,
    help: 'a PEFT LoRA adapter folder to compare with the base, named in the report (DIR alone: named by its folder); list SFT before SFT+DPO',
  },
  data: {
    type: 'string',
    value: 'EVAL.jsonl',
    required: true,
    help: 'held-out items, one a line: prompt rows {"prompt","domain","gold","tests"}, SFT records, DPO records, multiple-choice rows {"prompt","choices","answer"}',
  },
  judge: {
    type: 'string',
    value: 'JUDGE.json',
    help: 'a pairwise judge as build-data takes it: a chat judge {"baseURL","apiKey","model", "pairwisePrompt"?}, a reward model {"type":"reward",…} or a local one {"type":"local-reward","model"}',
  },
  'max-new-tokens': { type: 'string', value: 'N', help: 'tokens per answer at most (default 256)' },
  seed: { type: 'string', value: 'S', help: 'decoding seed (default 0; greedy decoding does not use it)' },
  'date-string': { ...DATE_STRING, help: 'the date Llama 3.x chat templates show (default "26 Jul 2024", so every run asks the same prompts)' },
  'code-timeout': { type: 'string', value: 'MS', help: 'time limit of one code test run (default 5000)' },
  out: { type: 'string', value: 'DIR', required: true, help: 'where eval.json, eval.md and the per-item results (results.jsonl) go' },
  resume: { type: 'boolean', help: 'continue the evaluation in DIR: items already answered, scored or judged are not done again' },
} as const satisfies OptionSpecs;

export const COMMANDS: readonly (CommandSpec | CommandGroup)[] = [
  command({
    name: 'gpu',
    summary: 'print the WebGPU adapter (vendor, features, limits) as JSON',
    description: 'Print the WebGPU adapter the engine would use (vendor, architecture, features, limits) as JSON.',
    options: GPU_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/gpu')).run(p),
  }),
  command({
    name: 'info',
    summary: 'the WebGPU adapter, its features and limits, as text',
    description: 'The WebGPU adapter the engine would use, its features and limits, as text (--json: as `fuse-studio gpu`).',
    options: INFO_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/info')).run(p),
  }),
  command({
    name: 'generate',
    summary: 'continue a prompt, streaming the text to stdout',
    description:
      'Continue a prompt, streaming the text to stdout (--json: one object at the end). Give exactly one of ' +
      '--prompt, --messages and --prompt-ids. Sampling defaults follow the model\'s generation_config.json as ' +
      'transformers reads it (no do_sample: greedy; top_k 50); --seed makes sampling reproducible. Stops at an ' +
      'end-of-sequence token.',
    options: GENERATE_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/generate')).run(p),
  }),
  command({
    name: 'serve',
    summary: 'an OpenAI-compatible API (and a /pooling reward route) on the model',
    description:
      'An OpenAI-compatible API on the model: GET /v1/models, POST /v1/chat/completions (messages through the ' +
      'chat template; temperature, top_p, max_tokens, seed, stop, n, stream, presence_penalty, frequency_penalty, ' +
      'logprobs, top_logprobs, repetition_penalty, top_k; anything else, e.g. tools or response_format, is a 400). ' +
      'Requests run one at a time; one whose client disconnects is stopped; usable as a build-data source ' +
      '("baseURL": "http://127.0.0.1:8765/v1"). POST /pooling (also /v1/pooling; vLLM\'s reward-model route, ' +
      '{"model","messages"} ending in the assistant response): data[0].data[0] is the model\'s mean per-token ' +
      'log-probability of the response, a likelihood reward usable as a build-data reward model. Ctrl-C or ' +
      'SIGTERM stops (exit 0).',
    options: SERVE_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/serve')).run(p),
  }),
  command({
    name: 'logprobs',
    summary: 'per-record log-probabilities under the model, one JSON line per record',
    description:
      'One JSON line per record: SFT records ({"messages"}, {"conversations"}, {"input_ids","labels"}) give ' +
      '{"logprob_sum","n_tokens"} over the target tokens (assistant turns; labels != -100, shifted as in ' +
      'transformers); DPO records ({"prompt","chosen","rejected"}, {"prompt_input_ids","chosen_input_ids",' +
      '"rejected_input_ids"}) give {"chosen": {…}, "rejected": {…}} over the responses.',
    options: LOGPROBS_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/logprobs')).run(p),
  }),
  command({
    name: 'reward',
    summary: "a reward model's score of each record, one JSON line per record",
    description:
      'One JSON line per record, scored by a *ForSequenceClassification reward model (a causal LM is refused): ' +
      '{"messages"} (the conversation through the chat template, ending in the assistant\'s answer, as ' +
      'apply_chat_template(conversation, tokenize=True)) or {"input_ids"} give {"reward": r}; DPO records ' +
      '({"prompt","chosen","rejected"}, strings or message lists, or {"prompt_input_ids","chosen_input_ids",' +
      '"rejected_input_ids"}) give {"chosen": r, "rejected": r}.',
    options: REWARD_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/reward')).run(p),
  }),
  command({
    name: 'train',
    summary: 'LoRA SFT or DPO, writing a PEFT adapter folder',
    description:
      'LoRA SFT or DPO; writes a PEFT adapter folder, metrics.jsonl (one line per step, TRL names) and ' +
      'OUT/checkpoints/checkpoint-<step>/ (--resume OUT continues the newest valid one). Records: TRL messages, ' +
      'ShareGPT, {"input_ids","labels"}; DPO {"prompt","chosen","rejected"} or *_input_ids. dpo --adapter SFT_DIR ' +
      'continues the SFT adapter with it as the reference policy (the output is SFT+DPO). Defaults: ' +
      'src/train/defaults.ts (ln-dpo, beta 10).',
    arguments: [{ name: 'stage', choices: ['sft', 'dpo'], help: 'the training stage' }],
    options: TRAIN_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/train')).run(p),
  }),
  {
    name: 'export',
    summary: 'a merged model, or the data and hyperparameters as a recipe for TRL and LLaMA-Factory',
    description: 'Export a trained adapter merged into its model, or the data and hyperparameters as a ready-to-run recipe.',
    commands: [
      command({
        name: 'merged',
        summary: 'the model with the adapter merged in, as a plain Hugging Face folder',
        description:
          'The model with the adapter merged in (W + scale·B·A in float64, rounded once), a plain Hugging Face ' +
          'folder (config, tokenizer files copied; sharded when large).',
        options: EXPORT_MERGED_OPTIONS,
        run: async (p) => (await import('./commands/export')).merged(p),
      }),
      command({
        name: 'recipe',
        summary: 'the data and hyperparameters as TRL (+ accelerate/DeepSpeed) and LLaMA-Factory configs',
        description:
          'The same data and hyperparameters as ready-to-run TRL (+ accelerate/DeepSpeed) and LLaMA-Factory ' +
          'configs, with a README. Give --sft, --dpo or both.',
        options: EXPORT_RECIPE_OPTIONS,
        run: async (p) => (await import('./commands/export')).recipe(p),
      }),
    ],
  },
  command({
    name: 'models',
    summary: 'the presets any --model takes by name, with download size and memory plan',
    description:
      'The presets (src/model/presets.ts): small instruct models to train, local sources, reward models, none needing ' +
      'a Hugging Face token. Each with its role, download size (approximate: parameters × 2 bytes + tokenizer) and the ' +
      'GPU memory of a LoRA training step (4 × 512 tokens, r16), generation (2,048 positions) or scoring (2 × 2,048 ' +
      'tokens), computed from its config.json fields without downloading anything. `--model ALIAS` on any command ' +
      'loads the Hub repo it names (from $HF_ENDPOINT when set).',
    options: MODELS_OPTIONS,
    run: async (p) => (await import('./commands/models')).run(p),
  }),
  command({
    name: 'plan',
    summary: 'the GPU memory plan of a training step (and of generation), from config.json alone',
    description:
      'The GPU memory plan of a training step (and of generation with --gen-capacity), by category, from ' +
      'config.json alone.',
    options: PLAN_OPTIONS,
    run: async (p) => (await import('./commands/plan')).run(p),
  }),
  command({
    name: 'selftest',
    summary: 'run every kernel on random inputs against its float64 reference',
    description: 'Run every kernel on random inputs against its float64 reference; exits 1 if any kernel fails.',
    options: SELFTEST_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/selftest')).run(p),
  }),
  command({
    name: 'demo-model',
    summary: 'write the built-in demo model folder (a tiny Llama-3 checkpoint, or another family)',
    description:
      'Write the built-in demo model folder (a tiny Llama-3 checkpoint with the Llama 3.2 tokenizer and chat ' +
      'template; --family writes a Mistral, Qwen2.5 or Qwen3 one with its own config and tokenizer); the same bytes on every run.',
    options: DEMO_MODEL_OPTIONS,
    run: async (p) => (await import('./commands/demo-model')).run(p),
  }),
  command({
    name: 'eval',
    summary: 'base vs adapters on held-out items: accuracy, loss, preference, a judge, with intervals',
    description:
      'Evaluate the base model and each --adapter on the same held-out items, with the same chat template, ' +
      'decoding (greedy), seed and token limit: held-out SFT loss and perplexity, DPO preference accuracy ' +
      '(length-normalised log-probs), multiple-choice accuracy by log-likelihood, math accuracy (verified against ' +
      'gold) and code pass@1 (the tests run in a sandbox) with 95% Wilson intervals and an exact McNemar test per ' +
      'pair, and with --judge each pair judged (a chat judge in both orders; a reward model: higher reward wins): ' +
      'win rate, position bias, length-controlled win rate. Writes DIR/eval.json and DIR/eval.md; a difference ' +
      'within chance is labelled "not significant". The items are hashed before any answer; eval prompts repeating ' +
      "an adapter's training prompts (its train_config.json) are flagged. Ctrl-C stops; --resume continues.",
    options: EVAL_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/eval')).run(p),
  }),
  command({
    name: 'build-data',
    summary: 'the FuseChat-3.0 data recipe: collect, score, build the SFT and DPO sets',
    description:
      'The FuseChat-3.0 data recipe: ask every source for n responses per prompt, score them (judge or reward ' +
      'model; math answers and code tests verified), build the SFT and DPO sets and write them to DIR (sft.jsonl, ' +
      'dpo.jsonl, fusechat_*.jsonl, report.json; responses.jsonl and scores.jsonl keep the run, so --resume ' +
      'continues a stopped one without asking again). An apiKey "$NAME" is read from the environment variable NAME. ' +
      'Local sources ({"local": true, "model": …}) generate on this GPU one model at a time, beside the remote ones.',
    options: BUILD_DATA_OPTIONS,
    run: async (p) => (await import('./commands/build-data')).run(p),
  }),
  command({
    name: 'demo',
    summary: 'the whole FuseChat-3.0 recipe offline on demo models',
    description:
      'The whole FuseChat-3.0 recipe offline on demo models, every one on this GPU: two demo models of different ' +
      'families (Llama-3 and Qwen3 architectures) as local sources, a demo LlamaForSequenceClassification as the ' +
      'local reward model, built-in instruction, math (gold answers) and code (tests) prompts through ' +
      "build-data's pipeline into DIR, then LoRA SFT and LN-DPO of the target (DIR/adapter-sft, DIR/adapter-dpo) " +
      'and its greedy answers before and after. A few minutes on a CPU WebGPU.',
    options: DEMO_OPTIONS,
    gpu: true,
    run: async (p) => (await import('./commands/demo')).run(p),
  }),
  command({
    name: 'classroom',
    summary: 'serve a workshop: the studio, a model mirror, a keyed source proxy, the class recipe and a results board',
    description:
      'The instructor\'s machine as the workshop\'s hub: serves the built studio (students open one address), a ' +
      'Hub-compatible mirror of --model (/{repo}/resolve/{revision}/{file}, Range and ETag; the studio\'s Model page ' +
      'loads "from the classroom"), an OpenAI-compatible proxy per source of --sources (/classroom/sources/{id}/v1) that ' +
      'adds the instructor\'s keys (never sent to students), caches answers by (source, messages, sampling, seed, ' +
      'sample) so a class asks upstream once per item, retries upstream faults once, and holds each student to ' +
      '--quota and --per-minute (429 saying what to do); the class recipe (/classroom/recipe.zip: --recipe with the ' +
      'proxy as its sources) and a results board (/board) of blind votes and evaluation results. Admin routes (board ' +
      'reset, quotas, export) take the token printed at start. Ctrl-C or SIGTERM stops (exit 0).',
    options: CLASSROOM_OPTIONS,
    run: async (p) => (await import('./commands/classroom')).run(p),
  }),
];
