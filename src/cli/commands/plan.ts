// fuse-studio plan: the GPU memory a configuration needs (src/model/memory-plan.ts), computed
// from config.json alone (a folder, URL or Hub repo: nothing else is read), or from a preset's
// config.json fields (src/model/presets.ts: nothing is read at all).
import { FAMILIES } from '../../model/families';
import type { DType } from '../../gpu/dtype';
import { parseModelConfig, type ModelConfig } from '../../model/config';
import { readModelMeta } from '../../model/load';
import { LORA_TARGETS, type LoraTarget } from '../../model/lora';
import { formatBytes, MEMORY_CATEGORIES, planMemory, type MemoryPlanOptions } from '../../model/memory-plan';
import { presetById, presetModelConfig } from '../../model/presets';
import { describeTensorDTypes } from '../../model/weight-layout';
import { openModelSource } from '../../model/source-node';
import { parseQuant } from '../quant-option';
import type { PLAN_OPTIONS } from '../commands';
import { intOption, UsageError, type Parsed } from './args';

const TORCH_DTYPES: Record<string, DType> = { bfloat16: 'bf16', float16: 'f16', float32: 'f32' };

async function configOf(spec: string): Promise<{ config: ModelConfig; tensorDTypes?: Record<string, DType> }> {
  const preset = presetById(spec);
  if (preset) return { config: presetModelConfig(preset) };
  const source = await openModelSource(spec);
  // A .gguf file: the config and each tensor's block type from its header (a remote file is read
  // with Range requests), so the plan counts the file's Q4_K / Q6_K / F32 bytes.
  if (source.ggufFile) {
    const { config, tensorDTypes } = await readModelMeta(source);
    return { config, ...(tensorDTypes ? { tensorDTypes } : {}) };
  }
  const gen = (await source.has('generation_config.json')) ? await source.json('generation_config.json') : undefined;
  return { config: parseModelConfig(await source.json('config.json'), gen) };
}

function describeDTypes(quant: string | null, weightDType: DType, tensorDTypes?: Record<string, DType>): string {
  if (quant) return `${quant} projections, int8 embedding/lm_head, ${weightDType} norms`;
  if (!tensorDTypes) return `${weightDType} weights`;
  return `GGUF tensors: ${describeTensorDTypes(tensorDTypes)}`;
}

export async function run({ values: v }: Parsed<typeof PLAN_OPTIONS>): Promise<number> {
  if (!v.model) throw new UsageError('plan: --model DIR|URL|REPO|PRESET is required (`fuse-studio models` lists the presets)');
  const positive = (flag: string, value: string | undefined, fallback: number, min = 1) => {
    const n = intOption(flag, value) ?? fallback;
    if (n < min) throw new UsageError(`--${flag}: must be ≥ ${min}, got ${n}`);
    return n;
  };
  const seq = positive('seq', v.seq, 512);
  const batch = positive('batch', v.batch, 4);
  const loraRank = positive('lora-rank', v['lora-rank'], v.full ? 0 : 16, 0);
  let targets: LoraTarget[] | undefined;
  if (v.targets !== undefined) {
    targets = v.targets.split(',').map((t) => t.trim()) as LoraTarget[];
    for (const t of targets) if (!LORA_TARGETS.includes(t)) throw new UsageError(`--targets: "${t}" is not one of ${LORA_TARGETS.join(', ')}`);
  }
  if (v.dtype !== undefined && !['bf16', 'f16', 'f32'].includes(v.dtype)) throw new UsageError(`--dtype: "${v.dtype}" is not bf16, f16 or f32`);
  const genCapacity = intOption('gen-capacity', v['gen-capacity']);
  if (genCapacity !== undefined && genCapacity < 1) throw new UsageError(`--gen-capacity: must be ≥ 1, got ${genCapacity}`);
  const genBatch = positive('gen-batch', v['gen-batch'], 1);
  const maxBindingBytes = intOption('max-binding-bytes', v['max-binding-bytes']);
  const quant = parseQuant(v.quant);
  if (quant && v.full) throw new UsageError('--quant: full fine-tuning needs a float base; drop --full (LoRA trains on a quantized base) or --quant');

  const { config, tensorDTypes } = await configOf(v.model);
  if (tensorDTypes && quant) throw new UsageError('--quant: a GGUF file is planned in its own block types; drop --quant');
  const weightDType: DType = (v.dtype as DType | undefined) ?? TORCH_DTYPES[config.dtype ?? ''] ?? 'bf16';
  const options: MemoryPlanOptions = {
    batch,
    seq,
    loraRank,
    weightDType,
    ...(quant ? { quant } : {}),
    ...(tensorDTypes ? { tensorDTypes } : {}),
    ...(targets ? { targets } : {}),
    ...(v.full ? { fullFineTune: true } : {}),
    ...(maxBindingBytes !== undefined ? { maxBindingBytes } : {}),
    ...(genCapacity !== undefined ? { generation: { batch: genBatch, capacity: genCapacity } } : {}),
  };
  const plan = planMemory(config, options);
  if (v.json) {
    console.log(JSON.stringify({ model: v.model, options, ...plan }, null, 2));
    return 0;
  }
  const what = [
    `batch ${batch} × seq ${seq}`,
    loraRank ? `LoRA r=${loraRank} on ${(targets ?? LORA_TARGETS).join(', ')}` : 'no adapter',
    ...(v.full ? ['full fine-tuning'] : []),
    ...(genCapacity !== undefined ? [`generation ${genBatch} × ${genCapacity} positions`] : []),
  ];
  console.log(`model: ${v.model} (${FAMILIES[config.family].architectures[config.head]}, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize}), ${describeDTypes(quant, weightDType, tensorDTypes)}`);
  console.log(what.join(', '));
  console.log('');
  const row = (name: string, bytes: number) => `${name.padEnd(22)}${String(bytes).padStart(14)}  ${formatBytes(bytes).padStart(10)}`;
  console.log(`${'category'.padEnd(22)}${'bytes'.padStart(14)}  ${'size'.padStart(10)}`);
  for (const k of MEMORY_CATEGORIES) if (plan.bytes[k]) console.log(row(k, plan.bytes[k]));
  console.log('');
  console.log(row('training', plan.training));
  if (genCapacity !== undefined) console.log(row('generation', plan.generation));
  console.log(row('total', plan.total));
  console.log('');
  console.log(`lm_head chunk: ${plan.lmHeadChunk} vocab rows; largest tensor: ${plan.largestTensor.name} (${formatBytes(plan.largestTensor.bytes)})`);
  return 0;
}
