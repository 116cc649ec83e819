// The keyword arguments the pinned versions of the scale-out recipe's libraries accept
// (RECIPE_PINS in ../recipe.ts): recipe.test.ts checks every keyword argument trl/train.py passes
// against this table. Each entry says where its names come from.
//
// How the lists were made: the pinned wheels installed in a Python 3.11.7 virtualenv
// (trl 1.13.0, transformers 5.18.0, peft 0.21.0, datasets 5.0.1, accelerate 1.15.0, torch 2.13.0+cpu),
// then for a dataclass `[f.name for f in dataclasses.fields(C) if f.init]`, for a function the named
// parameters of `inspect.signature(f)` (without self/cls, *args, **kwargs), plus the names a
// function documents and pops from **kwargs where it has one (said per entry). Wheels (PyPI):
//   trl-1.13.0-py3-none-any.whl           sha256 7c7ae0c72e969450221cf4c7cfe69c532c5a83c727204f1c8ced38a9b79134ec
//   transformers-5.18.0-py3-none-any.whl  sha256 d79e5a515a572ee3deb33eb0d578be47d91e70c75d54cf21bf6eede6edef14a9
//   peft-0.21.0-py3-none-any.whl          sha256 b64eb75fd9dece7401c70e675b8d9de024993b70483691b41c62876f0c7809b7
//   datasets-5.0.1-py3-none-any.whl       sha256 9fbf73688f8c18f7529b4fe592abd04015f81d1e58001e4bac73ffb2b39d7cc4
// To move to new versions: change RECIPE_PINS, redo the lists the same way, update the sources.

export interface Signature {
  /** Where the names come from: package version, file, and how they were read. */
  source: string;
  /** Keyword arguments accepted. */
  accepts: readonly string[];
  /** Accepted but deprecated in this version: the recipe must not pass them either. */
  deprecated?: readonly string[];
}

/** transformers 5.18.0, transformers/training_args.py: dataclasses.fields(TrainingArguments). No warmup_ratio. */
const TRAINING_ARGUMENTS = [
    'output_dir', 'per_device_train_batch_size', 'num_train_epochs', 'max_steps', 'learning_rate',
    'lr_scheduler_type', 'lr_scheduler_kwargs', 'warmup_steps', 'optim', 'optim_args', 'weight_decay',
    'adam_beta1', 'adam_beta2', 'adam_epsilon', 'optim_target_modules', 'gradient_accumulation_steps',
    'average_tokens_across_devices', 'max_grad_norm', 'label_smoothing_factor', 'bf16', 'fp16',
    'bf16_full_eval', 'fp16_full_eval', 'tf32', 'gradient_checkpointing',
    'gradient_checkpointing_kwargs', 'torch_compile', 'torch_compile_backend', 'torch_compile_mode',
    'use_liger_kernel', 'liger_kernel_config', 'use_cache', 'neftune_noise_alpha',
    'torch_empty_cache_steps', 'auto_find_batch_size', 'logging_strategy', 'logging_steps',
    'logging_first_step', 'log_on_each_node', 'logging_nan_inf_filter',
    'include_num_input_tokens_seen', 'log_level', 'log_level_replica', 'disable_tqdm', 'report_to',
    'run_name', 'project', 'trackio_space_id', 'trackio_bucket_id', 'trackio_static_space_id',
    'eval_strategy', 'eval_steps', 'eval_delay', 'per_device_eval_batch_size', 'prediction_loss_only',
    'eval_on_start', 'eval_do_concat_batches', 'eval_use_gather_object', 'eval_accumulation_steps',
    'include_for_metrics', 'batch_eval_metrics', 'save_only_model', 'save_strategy', 'save_steps',
    'save_on_each_node', 'save_total_limit', 'enable_jit_checkpoint', 'push_to_hub', 'hub_token',
    'hub_private_repo', 'hub_model_id', 'hub_strategy', 'hub_always_push', 'hub_revision',
    'load_best_model_at_end', 'metric_for_best_model', 'greater_is_better', 'ignore_data_skip',
    'restore_callback_states_from_checkpoint', 'full_determinism', 'seed', 'data_seed', 'use_cpu',
    'accelerator_config', 'parallelism_config', 'dataloader_drop_last', 'dataloader_num_workers',
    'dataloader_pin_memory', 'dataloader_persistent_workers', 'dataloader_prefetch_factor',
    'dataloader_multiprocessing_context', 'dataloader_in_order', 'remove_unused_columns',
    'label_names', 'train_sampling_strategy', 'length_column_name', 'ddp_find_unused_parameters',
    'ddp_bucket_cap_mb', 'ddp_broadcast_buffers', 'ddp_static_graph', 'ddp_backend', 'ddp_timeout',
    'fsdp', 'fsdp_config', 'deepspeed', 'debug', 'skip_memory_metrics', 'do_train', 'do_eval',
    'do_predict', 'resume_from_checkpoint', 'local_rank',
] as const;

/** trl 1.13.0, trl/trainer/sft_config.py: SFTConfig's own fields (it extends TrainingArguments). */
const SFT_CONFIG_OWN = [
    'model_init_kwargs', 'trust_remote_code', 'router_aux_loss_coef', 'chat_template_path',
    'dataset_text_field', 'dataset_kwargs', 'dataset_num_proc', 'eos_token', 'max_length',
    'truncation_mode', 'shuffle_dataset', 'packing', 'packing_strategy', 'padding_free',
    'pad_to_multiple_of', 'eval_packing', 'completion_only_loss', 'assistant_only_loss', 'loss_type',
    'activation_offloading', 'pad_token',
] as const;

/** trl 1.13.0, trl/trainer/dpo_config.py: DPOConfig's own fields (no max_prompt_length, model_adapter_name, ref_adapter_name). */
const DPO_CONFIG_OWN = [
    'model_init_kwargs', 'trust_remote_code', 'router_aux_loss_coef', 'disable_dropout',
    'dataset_num_proc', 'max_length', 'truncation_mode', 'padding_free', 'pad_to_multiple_of',
    'precompute_ref_log_probs', 'precompute_ref_batch_size', 'loss_type', 'loss_weights', 'ld_alpha',
    'f_divergence_type', 'f_alpha_divergence_coef', 'label_smoothing', 'beta', 'use_weighting',
    'discopop_tau', 'activation_offloading', 'sync_ref_model', 'ref_model_mixup_alpha',
    'ref_model_sync_steps', 'pad_token',
] as const;

export const SIGNATURES: Record<string, Signature> = {
  'transformers.TrainingArguments': {
    source: 'transformers 5.18.0 transformers/training_args.py, dataclasses.fields(TrainingArguments)',
    accepts: TRAINING_ARGUMENTS,
  },
  'trl.SFTConfig': {
    source: 'trl 1.13.0 trl/trainer/sft_config.py, dataclasses.fields(SFTConfig) (TrainingArguments of transformers 5.18.0 + its own)',
    accepts: [...TRAINING_ARGUMENTS, ...SFT_CONFIG_OWN],
    deprecated: ['pad_token'],
  },
  'trl.DPOConfig': {
    source: 'trl 1.13.0 trl/trainer/dpo_config.py, dataclasses.fields(DPOConfig) (TrainingArguments of transformers 5.18.0 + its own)',
    accepts: [...TRAINING_ARGUMENTS, ...DPO_CONFIG_OWN],
    deprecated: ['pad_token'],
  },
  'trl.SFTTrainer': {
    source: 'trl 1.13.0 trl/trainer/sft_trainer.py, inspect.signature(SFTTrainer.__init__)',
    accepts: [
      'model', 'args', 'data_collator', 'train_dataset', 'eval_dataset', 'processing_class',
      'compute_loss_func', 'compute_metrics', 'callbacks', 'optimizers', 'optimizer_cls_and_kwargs',
      'preprocess_logits_for_metrics', 'quantization_config', 'peft_config', 'formatting_func',
    ],
  },
  'trl.DPOTrainer': {
    source: 'trl 1.13.0 trl/trainer/dpo_trainer.py, inspect.signature(DPOTrainer.__init__)',
    accepts: [
      'model', 'ref_model', 'args', 'data_collator', 'train_dataset', 'eval_dataset', 'processing_class',
      'compute_metrics', 'callbacks', 'optimizers', 'quantization_config', 'peft_config',
    ],
  },
  'peft.LoraConfig': {
    source: 'peft 0.21.0 peft/tuners/lora/config.py, dataclasses.fields(LoraConfig)',
    accepts: [
      'task_type', 'peft_type', 'auto_mapping', 'peft_version', 'base_model_name_or_path', 'revision',
      'inference_mode', 'r', 'target_modules', 'exclude_modules', 'lora_alpha', 'lora_dropout',
      'fan_in_fan_out', 'bias', 'use_rslora', 'modules_to_save', 'init_lora_weights',
      'layers_to_transform', 'layers_pattern', 'rank_pattern', 'alpha_pattern', 'megatron_config',
      'megatron_core', 'trainable_token_indices', 'loftq_config', 'eva_config', 'corda_config',
      'lora_ga_config', 'use_dora', 'velora_config', 'alora_invocation_tokens', 'use_qalora',
      'qalora_group_size', 'monteclora_config', 'layer_replication', 'runtime_config', 'lora_bias',
      'target_parameters', 'use_bdlora', 'arrow_config', 'kasa_config', 'ensure_weight_tying',
    ],
  },
  'peft.PeftModel.from_pretrained': {
    source: 'peft 0.21.0 peft/peft_model.py, inspect.signature(PeftModel.from_pretrained) (its **kwargs go to the adapter config)',
    accepts: [
      'model', 'model_id', 'adapter_name', 'is_trainable', 'config', 'autocast_adapter_dtype',
      'ephemeral_gpu_offload', 'low_cpu_mem_usage', 'key_mapping',
    ],
  },
  'transformers.PreTrainedModel.from_pretrained': {
    source:
      'transformers 5.18.0 transformers/modeling_utils.py, inspect.signature(PreTrainedModel.from_pretrained) + the names its body takes with kwargs.pop("…") (AutoModelForCausalLM.from_pretrained passes **kwargs to it)',
    accepts: [
      'pretrained_model_name_or_path', 'config', 'cache_dir', 'ignore_mismatched_sizes',
      'force_download', 'local_files_only', 'token', 'revision', 'use_safetensors', 'weights_only',
      'fusion_config', 'disable_mmap', 'adapter_kwargs', 'adapter_name', 'allow_all_kernels',
      'attn_implementation', 'device_map', 'device_mesh', 'distributed_config', 'dtype',
      'experts_implementation', 'generation_config', 'gguf_file', 'kernel_config', 'key_mapping',
      'max_memory', 'offload_buffers', 'offload_folder', 'output_loading_info', 'proxies',
      'quantization_config', 'state_dict', 'subfolder', 'torch_dtype', 'tp_plan', 'tp_size',
      'tqdm_class', 'trust_remote_code', 'use_kernels', 'variant',
    ],
    deprecated: ['torch_dtype'],
  },
  'datasets.load_dataset': {
    source: 'datasets 5.0.1 datasets/load.py, inspect.signature(load_dataset)',
    accepts: [
      'path', 'name', 'data_dir', 'data_files', 'split', 'cache_dir', 'features', 'download_config',
      'download_mode', 'verification_mode', 'keep_in_memory', 'save_infos', 'revision', 'token',
      'streaming', 'num_proc', 'storage_options',
    ],
  },
  'datasets.Dataset.map': {
    source: 'datasets 5.0.1 datasets/arrow_dataset.py, inspect.signature(Dataset.map)',
    accepts: [
      'function', 'with_indices', 'with_rank', 'input_columns', 'batched', 'batch_size',
      'drop_last_batch', 'remove_columns', 'keep_in_memory', 'load_from_cache_file', 'cache_file_name',
      'writer_batch_size', 'features', 'disable_nullable', 'fn_kwargs', 'num_proc', 'suffix_template',
      'new_fingerprint', 'desc', 'try_original_type', 'on_mixed_types',
    ],
  },
  'argparse.ArgumentParser.add_argument': {
    source: 'Python 3.11 Lib/argparse.py: add_argument(**kwargs) builds an Action; "action" + inspect.signature(argparse.Action.__init__) without option_strings',
    accepts: ['action', 'dest', 'nargs', 'const', 'default', 'type', 'choices', 'required', 'help', 'metavar',],
  },
  'shutil.rmtree': {
    source: 'Python 3.11 Lib/shutil.py, inspect.signature(shutil.rmtree)',
    accepts: ['path', 'ignore_errors', 'onerror', 'dir_fd'],
  },
};
