// Scale-out recipe: the very dataset and hyperparameters a studio run uses, written as a bundle
// that runs on a GPU cluster with trainers people already use (DESIGN.md, "Outgrowing one
// machine"). Pure (browser and Node): the bundle is a Map from relative path to text.
//
//   README.md                          what is where, how to run each stage, what differs
//   data/sft.jsonl                     TRL conversational {"messages": […]}           (both trainers)
//   data/dpo.jsonl                     TRL conversational {"prompt","chosen","rejected"} (TRL)
//   recipe.json                        the hyperparameters as data
//   trl/train.py                       SFTTrainer / DPOTrainer with PEFT LoRA, one script, --stage
//   trl/accelerate_deepspeed_zero2.yaml accelerate launch config (DeepSpeed ZeRO-2, bf16)
//   trl/run.sh                         both stages in order
//   trl/requirements.txt
//   llamafactory/dataset_info.json     fuse_sft -> ../data/sft.jsonl, fuse_dpo -> dpo_sharegpt.jsonl
//   llamafactory/dpo_sharegpt.jsonl    the DPO set in LLaMA-Factory's sharegpt ranking layout
//   llamafactory/sft.yaml, dpo.yaml    `llamafactory-cli train …`
//   llamafactory/ds_z2_config.json     DeepSpeed ZeRO-2 config
//
// Two stages exactly as in the studio: SFT trains a LoRA adapter; DPO continues training THAT
// adapter with the SFT adapter (frozen) as the reference policy (TRL: the SFT adapter passed as a
// trainable PeftModel, which TRL >= 1.0 copies into a frozen "ref" adapter; LLaMA-Factory:
// adapter_name_or_path + ref_model_adapters).
//
// The TRL script is written for the versions in RECIPE_PINS (trl/requirements.txt) and checked
// against them: recipe.test.ts compiles every generated .py and checks each keyword argument it
// passes against those versions' signatures (testing/recipe-signatures.ts).
import type { DpoMessagesRecord, DpoRecord, SftMessagesRecord, SftRecord } from '../data/records';
import { toJsonl } from '../data/records';
import { LORA_TARGETS, type LoraTarget } from '../model/lora';
import { DPO_DEFAULTS, LN_DPO_DEFAULTS, SFT_DEFAULTS, type DpoLossType } from './defaults';
import type { SchedulerType } from './schedule';

export interface RecipeStage {
  lr: number;
  epochs: number;
  /** Sequences (SFT) or pairs (DPO) per device per forward. */
  microBatchSize: number;
  gradientAccumulationSteps: number;
  maxLength: number;
  scheduler: SchedulerType;
  warmupRatio: number;
  maxGradNorm: number;
  weightDecay: number;
  loraRank: number;
  loraAlpha: number;
  loraTargets: LoraTarget[];
  seed: number;
}

export interface RecipeDpoStage extends RecipeStage {
  beta: number;
  lossType: DpoLossType;
}

export interface RecipeOptions {
  /** Base model: a Hugging Face repo id (or a path on the cluster). */
  model: string;
  sft: readonly SftRecord[];
  dpo: readonly DpoRecord[];
  /** Overrides of the studio defaults (defaults.ts). */
  sftHyper?: Partial<RecipeStage>;
  dpoHyper?: Partial<RecipeDpoStage>;
  /** GPUs per node the accelerate config launches (default 8). The effective batch is kept. */
  numGpus?: number;
  /** Name used for output folders (default "fuse"). */
  name?: string;
}

/**
 * The versions trl/train.py is written for (trl/requirements.txt). TRL >= 1.4 has
 * loss_type="sigmoid_norm" (LN-DPO); transformers 5 has no warmup_ratio (warmup_steps < 1 is a
 * ratio); DeepSpeed is only driven through the accelerate config (>= 0.18.6 for TRL 1.13's extra).
 */
export const RECIPE_PINS = {
  trl: '1.13.0',
  transformers: '5.18.0',
  peft: '0.21.0',
  accelerate: '1.15.0',
  deepspeed: '0.19.5',
  datasets: '5.0.1',
} as const;

export class RecipeError extends Error {
  override name = 'RecipeError';
}

export function sftStage(over: Partial<RecipeStage> = {}): RecipeStage {
  const d = SFT_DEFAULTS;
  return {
    lr: d.lr,
    epochs: d.epochs,
    microBatchSize: d.microBatchSize,
    gradientAccumulationSteps: d.gradientAccumulationSteps,
    maxLength: d.maxLength,
    scheduler: d.scheduler,
    warmupRatio: d.warmupRatio,
    maxGradNorm: d.maxGradNorm,
    weightDecay: d.weightDecay,
    loraRank: d.lora.rank,
    loraAlpha: d.lora.alpha,
    loraTargets: [...LORA_TARGETS],
    seed: 0,
    ...stripUndefined(over),
  };
}

export function dpoStage(over: Partial<RecipeDpoStage> = {}): RecipeDpoStage {
  const d = (over.lossType ?? 'ln') === 'ln' ? LN_DPO_DEFAULTS : DPO_DEFAULTS;
  return {
    ...sftStage({
      lr: d.lr,
      epochs: d.epochs,
      microBatchSize: d.microBatchSize,
      gradientAccumulationSteps: d.gradientAccumulationSteps,
      maxLength: d.maxLength,
      loraRank: d.lora.rank,
      loraAlpha: d.lora.alpha,
    }),
    beta: d.beta,
    lossType: d.lossType,
    ...stripUndefined(over),
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Per-device batch and accumulation on `gpus` devices keeping micro × accum (the studio's effective batch). */
export function distribute(stage: RecipeStage, gpus: number): { perDevice: number; accumulation: number; effective: number } {
  const effective = stage.microBatchSize * stage.gradientAccumulationSteps;
  const perDevice = stage.microBatchSize;
  const accumulation = Math.max(1, Math.round(effective / (perDevice * gpus)));
  return { perDevice, accumulation, effective: perDevice * accumulation * gpus };
}

/**
 * A float as PyYAML reads a float (YAML 1.1): a dot is required ("2e-4" would be a string), and
 * an exponent needs its sign: 2.0e-04 style.
 */
export function yamlFloat(x: number): string {
  if (!Number.isFinite(x)) throw new RecipeError(`${x} is not a finite number`);
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return `${x}.0`;
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e15) return String(x);
  const [m, e] = x.toExponential().split('e') as [string, string];
  return `${m.includes('.') ? m : `${m}.0`}e${e}`;
}

// ---------------------------------------------------------------------------------------------

function checkRecords(o: RecipeOptions): { sft: SftMessagesRecord[]; dpo: DpoMessagesRecord[] } {
  const sft: SftMessagesRecord[] = [];
  o.sft.forEach((r, i) => {
    if (r.kind !== 'sft-messages')
      throw new RecipeError(`SFT record ${i + 1} is pre-tokenized: a recipe needs conversations (the cluster trainer tokenizes with its own template)`);
    sft.push(r);
  });
  const dpo: DpoMessagesRecord[] = [];
  o.dpo.forEach((r, i) => {
    if (r.kind !== 'dpo-messages')
      throw new RecipeError(`DPO record ${i + 1} is ${r.kind === 'dpo-tokens' ? 'pre-tokenized' : 'plain text'}: a recipe needs conversational pairs ({"prompt":[…],"chosen":[…],"rejected":[…]})`);
    if (r.chosen.length !== 1 || r.rejected.length !== 1)
      throw new RecipeError(`DPO record ${i + 1}: chosen and rejected must be one assistant turn each for LLaMA-Factory (got ${r.chosen.length} and ${r.rejected.length})`);
    dpo.push(r);
  });
  if (!sft.length && !dpo.length) throw new RecipeError('no records: give an SFT set, a DPO set, or both');
  return { sft, dpo };
}

/** The bundle's files by relative path. */
export function buildRecipe(o: RecipeOptions): Map<string, string> {
  const { sft, dpo } = checkRecords(o);
  const S = sftStage(o.sftHyper);
  const D = dpoStage(o.dpoHyper);
  const gpus = o.numGpus ?? 8;
  if (!Number.isInteger(gpus) || gpus < 1) throw new RecipeError(`numGpus ${gpus} must be a positive integer`);
  const name = o.name ?? 'fuse';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new RecipeError(`name "${name}" may only hold letters, digits, . _ -`);
  const files = new Map<string, string>();
  const msg = (m: readonly { role: string; content: string }[]) => m.map((x) => ({ role: x.role, content: x.content }));

  if (sft.length) files.set('data/sft.jsonl', toJsonl(sft.map((r) => ({ messages: msg(r.messages) }))));
  if (dpo.length) {
    files.set('data/dpo.jsonl', toJsonl(dpo.map((r) => ({ prompt: msg(r.prompt), chosen: msg(r.chosen), rejected: msg(r.rejected) }))));
    files.set(
      'llamafactory/dpo_sharegpt.jsonl',
      toJsonl(dpo.map((r) => ({ messages: msg(r.prompt), chosen: msg(r.chosen)[0], rejected: msg(r.rejected)[0] }))),
    );
  }
  const recipe = {
    model: o.model,
    name,
    gpus,
    counts: { sft: sft.length, dpo: dpo.length },
    sft: { ...S, batch: distribute(S, gpus) },
    dpo: { ...D, batch: distribute(D, gpus) },
  };
  files.set('recipe.json', JSON.stringify(recipe, null, 2) + '\n');
  files.set('trl/train.py', trlScript());
  files.set('trl/accelerate_deepspeed_zero2.yaml', accelerateYaml(gpus));
  files.set('trl/requirements.txt', requirements());
  files.set('trl/run.sh', trlRun(o.model, name, S, D, gpus, sft.length > 0, dpo.length > 0));
  files.set('llamafactory/dataset_info.json', JSON.stringify(datasetInfo(sft.length > 0, dpo.length > 0), null, 2) + '\n');
  files.set('llamafactory/ds_z2_config.json', JSON.stringify(deepspeedZero2(), null, 2) + '\n');
  if (sft.length) files.set('llamafactory/sft.yaml', lfSftYaml(o.model, name, S, gpus, sft.length));
  if (dpo.length) files.set('llamafactory/dpo.yaml', lfDpoYaml(o.model, name, D, gpus, sft.length > 0, dpo.length));
  files.set('README.md', readme(o.model, name, S, D, gpus, sft.length, dpo.length));
  return files;
}

// ---------------------------------------------------------------------------------------------
// TRL

function trlArgs(s: RecipeStage, gpus: number): string[] {
  const b = distribute(s, gpus);
  return [
    `--learning_rate ${s.lr}`,
    `--num_train_epochs ${s.epochs}`,
    `--per_device_train_batch_size ${b.perDevice}`,
    `--gradient_accumulation_steps ${b.accumulation}`,
    `--max_length ${s.maxLength}`,
    `--lr_scheduler_type ${s.scheduler === 'constant' ? 'constant_with_warmup' : s.scheduler}`,
    `--warmup_ratio ${s.warmupRatio}`,
    `--max_grad_norm ${s.maxGradNorm}`,
    `--weight_decay ${s.weightDecay}`,
    `--lora_r ${s.loraRank}`,
    `--lora_alpha ${s.loraAlpha}`,
    `--lora_target_modules ${s.loraTargets.join(',')}`,
    `--seed ${s.seed}`,
  ];
}

function trlRun(model: string, name: string, S: RecipeStage, D: RecipeDpoStage, gpus: number, hasSft: boolean, hasDpo: boolean): string {
  const launch = 'accelerate launch --config_file trl/accelerate_deepspeed_zero2.yaml';
  const lines = [
    '#!/usr/bin/env bash',
    '# Run from the bundle root: bash trl/run.sh   (pip install -r trl/requirements.txt first)',
    `# ${gpus} GPUs (edit num_processes in trl/accelerate_deepspeed_zero2.yaml to change).`,
    'set -euo pipefail',
    'cd "$(dirname "$0")/.."',
    '',
  ];
  if (hasSft)
    lines.push(
      '# Stage 1: SFT, a LoRA adapter on the base model.',
      `${launch} trl/train.py --stage sft \\`,
      `  --model ${shellQuote(model)} --data data/sft.jsonl --output_dir out/${name}-sft \\`,
      ...trlArgs(S, gpus).map((a) => `  ${a} \\`),
      '  --bf16',
      '',
    );
  if (hasDpo)
    lines.push(
      hasSft
        ? '# Stage 2: DPO continues the SFT adapter; the frozen SFT adapter is the reference policy.'
        : '# DPO on a fresh LoRA adapter; the base model (adapter disabled) is the reference policy.',
      `${launch} trl/train.py --stage dpo \\`,
      `  --model ${shellQuote(model)} --data data/dpo.jsonl --output_dir out/${name}-dpo \\`,
      ...(hasSft ? [`  --sft_adapter out/${name}-sft \\`] : []),
      ...trlArgs(D, gpus).map((a) => `  ${a} \\`),
      `  --beta ${D.beta} --loss ${D.lossType === 'ln' ? 'ln-dpo' : 'dpo'} \\`,
      '  --bf16',
      '',
      `echo "adapter: out/${name}-dpo${hasSft ? ` (SFT+DPO; SFT alone: out/${name}-sft)` : ''}; chat: fuse-studio generate --model ${shellQuote(model)} --adapter out/${name}-dpo"`,
      '',
    );
  return lines.join('\n');
}

function requirements(): string {
  const pins = Object.entries(RECIPE_PINS).map(([name, v]) => `${name}==${v}`);
  return `# The versions trl/train.py is written for and checked against (Fuse Studio's recipe.test.ts).
# torch: transformers ${RECIPE_PINS.transformers} needs >= 2.5 (checked with 2.13); install the build for your CUDA.
torch>=2.5
${pins.join('\n')}
`;
}

const shellQuote = (s: string) => (/^[A-Za-z0-9._/@:-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function accelerateYaml(gpus: number): string {
  return `# accelerate launch config: DeepSpeed ZeRO-2, bf16, one node (TRL's examples/accelerate_configs/deepspeed_zero2.yaml)
compute_environment: LOCAL_MACHINE
debug: false
deepspeed_config:
  deepspeed_multinode_launcher: standard
  offload_optimizer_device: none
  offload_param_device: none
  zero3_init_flag: false
  zero_stage: 2
distributed_type: DEEPSPEED
downcast_bf16: 'no'
machine_rank: 0
main_training_function: main
mixed_precision: bf16
num_machines: 1
num_processes: ${gpus}
rdzv_backend: static
same_network: true
tpu_env: []
tpu_use_cluster: false
tpu_use_sudo: false
use_cpu: false
`;
}

function trlScript(): string {
  return `"""Fuse Studio scale-out recipe: LoRA SFT, then DPO, with TRL (launched by trl/run.sh).

Written for and checked against the versions in trl/requirements.txt (TRL ${RECIPE_PINS.trl},
transformers ${RECIPE_PINS.transformers}, PEFT ${RECIPE_PINS.peft}); TRL >= 1.4 is required for --loss ln-dpo.

Stage sft: SFTTrainer on data/sft.jsonl with a fresh LoRA adapter. Each conversation becomes
prompt (every turn before the last assistant turn) + completion (that turn), and only the
completion is trained (the studio trains every assistant turn; FuseChat data is single-turn,
where the two agree).

Stage dpo: DPOTrainer on data/dpo.jsonl.
  With --sft_adapter (the studio's SFT -> DPO): the SFT adapter is loaded trainable as PEFT's
  "default" adapter and passed with no ref_model and no peft_config. TRL then trains that adapter
  further and keeps a frozen copy of it as a second adapter named "ref", which computes the
  reference log-probs: the reference policy is the SFT model, as in the studio and FuseChat-3.0.
  Without it: a fresh LoRA adapter (peft_config); the reference is the base model (TRL disables
  the adapter for the reference forward).
  --loss ln-dpo is FuseChat-3.0's length-normalised DPO, TRL's loss_type="sigmoid_norm":
      L = -log sigmoid(beta/|y_w| * (log pi(y_w|x) - log ref(y_w|x)) - beta/|y_l| * (log pi(y_l|x) - log ref(y_l|x)))
  with |y| the number of completion tokens. --loss dpo is standard DPO (loss_type="sigmoid").
"""
import argparse
import json
import os
import shutil

import torch
import trl
from datasets import load_dataset
from packaging.version import Version
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

LOSS_TYPES = {"dpo": "sigmoid", "ln-dpo": "sigmoid_norm"}


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--stage", choices=["sft", "dpo"], required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--sft_adapter", default=None, help="dpo: the SFT adapter to continue (and to use as the reference)")
    p.add_argument("--learning_rate", type=float, required=True)
    p.add_argument("--num_train_epochs", type=float, required=True)
    p.add_argument("--per_device_train_batch_size", type=int, required=True)
    p.add_argument("--gradient_accumulation_steps", type=int, required=True)
    p.add_argument("--max_length", type=int, required=True)
    p.add_argument("--lr_scheduler_type", default="cosine")
    p.add_argument("--warmup_ratio", type=float, default=0.1, help="fraction of the optimizer steps, in [0, 1)")
    p.add_argument("--max_grad_norm", type=float, default=1.0)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--lora_r", type=int, required=True)
    p.add_argument("--lora_alpha", type=float, required=True)
    p.add_argument("--lora_target_modules", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--loss", choices=sorted(LOSS_TYPES), default="dpo")
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()
    if not 0 <= a.warmup_ratio < 1:
        p.error(f"--warmup_ratio {a.warmup_ratio} must be in [0, 1)")
    if a.stage == "dpo" and a.loss == "ln-dpo" and Version(trl.__version__) < Version("1.4"):
        p.error(f"--loss ln-dpo needs TRL >= 1.4 (loss_type='sigmoid_norm'); this is TRL {trl.__version__}: pip install -r trl/requirements.txt")
    return a


def training_args(a):
    """The transformers TrainingArguments both stages share (SFTConfig and DPOConfig extend it)."""
    return dict(
        output_dir=a.output_dir,
        learning_rate=a.learning_rate,
        num_train_epochs=a.num_train_epochs,
        per_device_train_batch_size=a.per_device_train_batch_size,
        gradient_accumulation_steps=a.gradient_accumulation_steps,
        lr_scheduler_type=a.lr_scheduler_type,
        # transformers 5 reads a warmup_steps below 1 as a fraction of the total steps (warmup_ratio is gone).
        warmup_steps=a.warmup_ratio,
        max_grad_norm=a.max_grad_norm,
        weight_decay=a.weight_decay,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        seed=a.seed,
        bf16=a.bf16,
        logging_steps=1,
        save_strategy="epoch",
        gradient_checkpointing=True,
        report_to="none",
    )


def lora(a):
    return LoraConfig(
        r=a.lora_r,
        lora_alpha=a.lora_alpha,
        lora_dropout=0.0,
        target_modules=a.lora_target_modules.split(","),
        bias="none",
        task_type="CAUSAL_LM",
    )


def to_prompt_completion(ex):
    msgs = ex["messages"]
    last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
    return {"prompt": msgs[:last], "completion": msgs[last : last + 1]}


def main():
    a = parse()
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16 if a.bf16 else torch.float32)
    data = load_dataset("json", data_files=a.data, split="train")

    if a.stage == "sft":
        data = data.map(to_prompt_completion, remove_columns=data.column_names)
        args = SFTConfig(**training_args(a), max_length=a.max_length, completion_only_loss=True)
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora(a))
        trainer.train()
        trainer.save_model(a.output_dir)
    else:
        peft_config = None
        if a.sft_adapter:
            # Continue the SFT adapter; TRL adds the frozen "ref" copy of it (see the top of this file).
            model = PeftModel.from_pretrained(model, a.sft_adapter, is_trainable=True)
        else:
            peft_config = lora(a)
        args = DPOConfig(
            **training_args(a),
            beta=a.beta,
            loss_type=[LOSS_TYPES[a.loss]],
            max_length=a.max_length,
            precompute_ref_log_probs=True,
        )
        trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config)
        trainer.train()
        trainer.save_model(a.output_dir)
        # PEFT saves every adapter: the trained one at the top of output_dir, TRL's frozen reference
        # (an unchanged copy of the SFT adapter) under ref/. Keep only the trained one.
        if trainer.accelerator.is_main_process:
            shutil.rmtree(os.path.join(a.output_dir, "ref"), ignore_errors=True)
    if trainer.accelerator.is_main_process:
        print(json.dumps({"stage": a.stage, "adapter": a.output_dir}))


if __name__ == "__main__":
    main()
`;
}

// ---------------------------------------------------------------------------------------------
// LLaMA-Factory

function datasetInfo(hasSft: boolean, hasDpo: boolean): Record<string, unknown> {
  const tags = { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' };
  const info: Record<string, unknown> = {};
  if (hasSft) info.fuse_sft = { file_name: '../data/sft.jsonl', formatting: 'sharegpt', columns: { messages: 'messages' }, tags };
  if (hasDpo)
    info.fuse_dpo = { file_name: 'dpo_sharegpt.jsonl', formatting: 'sharegpt', ranking: true, columns: { messages: 'messages', chosen: 'chosen', rejected: 'rejected' }, tags };
  return info;
}

function deepspeedZero2(): Record<string, unknown> {
  return {
    train_batch_size: 'auto',
    train_micro_batch_size_per_gpu: 'auto',
    gradient_accumulation_steps: 'auto',
    gradient_clipping: 'auto',
    zero_allow_untested_optimizer: true,
    fp16: { enabled: 'auto', loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 16, hysteresis: 2, min_loss_scale: 1 },
    bf16: { enabled: 'auto' },
    zero_optimization: { stage: 2, allgather_partitions: true, allgather_bucket_size: 5e8, overlap_comm: true, reduce_scatter: true, reduce_bucket_size: 5e8, contiguous_gradients: true, round_robin_gradients: true },
  };
}

/** Optimizer steps of a run as transformers' Trainer counts them (per epoch: ceil(batches / accumulation)). */
export function optimizerSteps(examples: number, stage: RecipeStage, gpus: number): number {
  const b = distribute(stage, gpus);
  const batches = Math.ceil(Math.ceil(examples / gpus) / b.perDevice);
  return Math.ceil(stage.epochs * Math.max(1, Math.ceil(batches / b.accumulation)));
}

/**
 * LLaMA-Factory's chat template for a model name, or null when the name does not say. The names
 * are templates of LLaMA-Factory's src/llamafactory/data/template.py.
 */
export function llamaFactoryTemplate(model: string): string | null {
  const m = model.toLowerCase();
  if (/llama-?3/.test(m)) return 'llama3';
  if (/qwen3/.test(m)) return 'qwen3';
  if (/qwen2/.test(m)) return 'qwen';
  if (/smollm2/.test(m)) return 'smollm2';
  if (/mistral/.test(m)) return 'mistral';
  return null;
}

function lfTemplate(model: string): string {
  const t = llamaFactoryTemplate(model);
  return t
    ? `template: ${t}`
    : `# The model name "${model}" does not say which chat template it uses: set the template LLaMA-Factory
# lists for it (src/llamafactory/data/template.py). "default" is a plain template, not the model's.
template: default`;
}

function lfTrain(s: RecipeStage, gpus: number, examples: number): string {
  const b = distribute(s, gpus);
  const steps = optimizerSteps(examples, s, gpus);
  const warmup = Math.ceil(s.warmupRatio * steps);
  return `### train
per_device_train_batch_size: ${b.perDevice}
gradient_accumulation_steps: ${b.accumulation}   # x ${gpus} GPUs = ${b.effective} per step (the studio: ${s.microBatchSize * s.gradientAccumulationSteps})
learning_rate: ${yamlFloat(s.lr)}
num_train_epochs: ${yamlFloat(s.epochs)}
lr_scheduler_type: ${s.scheduler === 'constant' ? 'constant_with_warmup' : s.scheduler}
# Warmup ratio ${s.warmupRatio} of the ${steps} optimizer steps that ${examples} records make, as a step count: transformers 5
# has no warmup_ratio, and transformers 4 reads a fraction in warmup_steps as steps.
warmup_steps: ${warmup}
max_grad_norm: ${yamlFloat(s.maxGradNorm)}
weight_decay: ${yamlFloat(s.weightDecay)}
bf16: true
seed: ${s.seed}
ddp_timeout: 180000000
`;
}

function lfLora(s: RecipeStage): string {
  return `finetuning_type: lora
lora_rank: ${s.loraRank}
lora_alpha: ${s.loraAlpha}
lora_dropout: 0.0
lora_target: ${s.loraTargets.join(',')}`;
}

function lfSftYaml(model: string, name: string, s: RecipeStage, gpus: number, examples: number): string {
  return `# LLaMA-Factory, stage 1 (SFT). Run from this folder: llamafactory-cli train sft.yaml
### model
model_name_or_path: ${model}

### method
stage: sft
do_train: true
${lfLora(s)}
deepspeed: ds_z2_config.json

### dataset
dataset_dir: .
dataset: fuse_sft
${lfTemplate(model)}
cutoff_len: ${s.maxLength}
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: saves/${name}-sft
logging_steps: 1
save_strategy: epoch
plot_loss: true
overwrite_output_dir: true

${lfTrain(s, gpus, examples)}`;
}

/**
 * The stage LLaMA-Factory really runs. It has no length-normalised DPO, so an LN-DPO stage falls
 * back to standard DPO with the studio's standard-DPO beta and learning rate (LN-DPO's beta 10 and
 * its larger rate are tuned for per-token rewards; on summed log-probs they would be far too hot).
 */
export function llamaFactoryDpoStage(d: RecipeDpoStage): RecipeDpoStage {
  return d.lossType === 'ln' ? { ...d, lossType: 'sigmoid', beta: DPO_DEFAULTS.beta, lr: DPO_DEFAULTS.lr } : d;
}

function lfDpoYaml(model: string, name: string, studio: RecipeDpoStage, gpus: number, afterSft: boolean, examples: number): string {
  const d = llamaFactoryDpoStage(studio);
  const lossLines =
    studio.lossType === 'ln'
      ? `# The studio trains length-normalised DPO (beta ${studio.beta}, learning rate ${studio.lr}, on per-token average
# log-probs); LLaMA-Factory has no such loss. This file runs standard DPO (sigmoid on summed log-probs)
# with the studio's standard-DPO settings instead: beta ${d.beta} and learning rate ${d.lr} (below), the
# rate that fits this loss. For the exact FuseChat-3.0 objective use the TRL script (trl/run.sh,
# --loss ln-dpo, TRL's loss_type "sigmoid_norm").
pref_beta: ${yamlFloat(d.beta)}
pref_loss: sigmoid`
      : `pref_beta: ${yamlFloat(d.beta)}
pref_loss: sigmoid  # standard DPO`;
  const head = afterSft
    ? `# LLaMA-Factory, stage 2 (DPO), after sft.yaml. Run from this folder: llamafactory-cli train dpo.yaml
# DPO continues the SFT adapter; the frozen SFT adapter is the reference policy (as in the studio).
### model
model_name_or_path: ${model}
adapter_name_or_path: saves/${name}-sft
ref_model: ${model}
ref_model_adapters: saves/${name}-sft`
    : `# LLaMA-Factory, DPO on the base model (no SFT stage in this recipe). Run: llamafactory-cli train dpo.yaml
# A fresh LoRA adapter; the base model (adapter disabled) is the reference policy.
### model
model_name_or_path: ${model}`;
  return `${head}

### method
stage: dpo
do_train: true
${lfLora(d)}
${lossLines}
deepspeed: ds_z2_config.json

### dataset
dataset_dir: .
dataset: fuse_dpo
${lfTemplate(model)}
cutoff_len: ${d.maxLength}
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: saves/${name}-dpo
logging_steps: 1
save_strategy: epoch
plot_loss: true
overwrite_output_dir: true

${lfTrain(d, gpus, examples)}`;
}

// ---------------------------------------------------------------------------------------------

function readme(model: string, name: string, S: RecipeStage, D: RecipeDpoStage, gpus: number, nSft: number, nDpo: number): string {
  const bs = distribute(S, gpus);
  const bd = distribute(D, gpus);
  const lf = llamaFactoryDpoStage(D);
  const pins = Object.entries(RECIPE_PINS).map(([n, v]) => `${n} ${v}`).join(', ');
  const row = (k: string, a: string | number, b: string | number) => `| ${k} | ${a} | ${b} |`;
  return `# ${name}: scale-out recipe from Fuse Studio

The dataset and hyperparameters of a Fuse Studio run, ready for a GPU cluster. Base model:
\`${model}\`. ${nSft} SFT conversations, ${nDpo} DPO pairs.

Two stages, as in the studio (FuseChat-3.0): **SFT** trains a LoRA adapter; **DPO** continues
training that same adapter, with the frozen SFT adapter as the reference policy. The final
adapter (SFT+DPO) is a PEFT folder: \`fuse-studio generate --model ${model} --adapter DIR\`
chats with it, and \`fuse-studio export merged\` merges it into the weights.

## Files

| path | what |
|---|---|
| \`data/sft.jsonl\` | SFT set, TRL conversational \`{"messages": [...]}\` (read by both trainers) |
| \`data/dpo.jsonl\` | DPO set, TRL conversational \`{"prompt": [...], "chosen": [...], "rejected": [...]}\` |
| \`recipe.json\` | the hyperparameters below, as data |
| \`trl/train.py\`, \`trl/run.sh\` | TRL SFTTrainer / DPOTrainer with PEFT LoRA, both stages |
| \`trl/accelerate_deepspeed_zero2.yaml\` | \`accelerate launch\` config: DeepSpeed ZeRO-2, bf16, ${gpus} GPUs |
| \`llamafactory/dataset_info.json\` | \`fuse_sft\` (= \`data/sft.jsonl\`) and \`fuse_dpo\` (\`dpo_sharegpt.jsonl\`, the same pairs in LLaMA-Factory's sharegpt ranking layout) |
| \`llamafactory/sft.yaml\`, \`dpo.yaml\`, \`ds_z2_config.json\` | \`llamafactory-cli train\` configs |

## Run

TRL + accelerate (from this folder):

    pip install -r trl/requirements.txt
    bash trl/run.sh            # out/${name}-sft, then out/${name}-dpo

\`trl/train.py\` is written for and checked against the versions pinned in
\`trl/requirements.txt\`: ${pins}. Other versions may differ: TRL 0.29 removed
\`DPOConfig.max_prompt_length\` and the adapter-name options, TRL < 1.4 has no \`sigmoid_norm\` loss,
and transformers 5 removed \`warmup_ratio\`.

LLaMA-Factory (installed separately, with the versions it pins; the configs use the keys of its
v0.9.5 hyperparameter classes; from \`llamafactory/\`):

    cd llamafactory
    llamafactory-cli train sft.yaml     # saves/${name}-sft
    llamafactory-cli train dpo.yaml     # saves/${name}-dpo

Change the GPU count in \`trl/accelerate_deepspeed_zero2.yaml\` (\`num_processes\`) or with
\`FORCE_TORCHRUN=1 NPROC_PER_NODE=N\` for LLaMA-Factory, and adjust the accumulation steps to keep
the effective batch.

## Hyperparameters

| | SFT | DPO |
|---|---|---|
${row('learning rate', S.lr, D.lr)}
${row('epochs', S.epochs, D.epochs)}
${row('batch per device × accumulation × GPUs', `${bs.perDevice} × ${bs.accumulation} × ${gpus} = ${bs.effective}`, `${bd.perDevice} × ${bd.accumulation} × ${gpus} = ${bd.effective}`)}
${row('batch in the studio (micro × accumulation)', S.microBatchSize * S.gradientAccumulationSteps, D.microBatchSize * D.gradientAccumulationSteps)}
${row('max length (tokens)', S.maxLength, D.maxLength)}
${row('schedule / warmup ratio', `${S.scheduler} / ${S.warmupRatio}`, `${D.scheduler} / ${D.warmupRatio}`)}
${row('max grad norm / weight decay', `${S.maxGradNorm} / ${S.weightDecay}`, `${D.maxGradNorm} / ${D.weightDecay}`)}
${row('LoRA r / alpha / dropout', `${S.loraRank} / ${S.loraAlpha} / 0`, `${D.loraRank} / ${D.loraAlpha} / 0`)}
${row('LoRA targets', S.loraTargets.join(', '), D.loraTargets.join(', '))}
${row('DPO loss / beta', '—', `${D.lossType === 'ln' ? 'length-normalised DPO (TRL: sigmoid_norm)' : 'DPO (sigmoid)'} / ${D.beta}`)}
${row('seed', S.seed, D.seed)}

AdamW betas 0.9 / 0.999, eps 1e-8 in both stages. The effective batch is kept when it divides
by the GPU count; with ${gpus} GPUs it is the value in the table. FuseChat-3.0 itself used full
fine-tuning with batch 128, max length 2048, lr 5e-6 (SFT) and 1e-6 (DPO, beta 10,
length-normalised) for Llama-3.2 targets: to reproduce that, drop the LoRA options (TRL: pass no
\`peft_config\` in \`trl/train.py\` and run the DPO stage with \`--model\` set to the SFT output
instead of \`--sft_adapter\`; LLaMA-Factory: \`finetuning_type: full\`, ZeRO-3) and use those numbers.

The warmup is a ratio of the optimizer steps: the TRL script passes it as \`warmup_steps\` below 1
(a fraction, in transformers 5); the LLaMA-Factory configs hold the step count it comes to for
this data (LLaMA-Factory allows transformers 4, where a fraction would be read as steps).

## Differences between the trainers

- **SFT loss on multi-turn chats**: the studio and LLaMA-Factory train every assistant turn; the
  TRL script trains the last assistant turn of each conversation (prompt-completion format).
  Identical for single-turn data.
- **Length-normalised DPO**: the TRL script runs it as TRL's \`loss_type="sigmoid_norm"\` (TRL >= 1.4:
  beta times the difference of the per-token average log-ratios, FuseChat-3.0's loss; see the top
  of \`trl/train.py\`). LLaMA-Factory has no such loss, so \`llamafactory/dpo.yaml\` runs standard
  DPO${D.lossType === 'ln' ? ` with the settings that fit it, beta ${lf.beta} and learning rate ${lf.lr} (stated in the file)` : ''}.
- **Truncation**: the studio cuts long prompts from the start and responses at the end; the
  trainers use their own rules at the same max length.
- **Reference log-probs**: the studio and the TRL script precompute them once with the frozen SFT
  adapter (TRL: its frozen copy of the adapter, named "ref", dropped from the saved output);
  LLaMA-Factory computes them on the fly with the same reference.
`;
}
