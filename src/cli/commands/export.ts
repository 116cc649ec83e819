// fuse-studio export merged|recipe
//
//   export merged --model DIR --adapter DIR --out DIR [--dtype bf16|f32] [--max-shard-size BYTES]
//     the base model with the adapter merged in (W + scale·B·A, float64, rounded once), as a plain
//     Hugging Face model folder (src/train/merge.ts)
//   export recipe --sft sft.jsonl --dpo dpo.jsonl --model NAME --out DIR [hyperparameters]
//     the dataset and hyperparameters as ready-to-run TRL + accelerate and LLaMA-Factory configs
//     (src/train/recipe.ts)
import { readFile } from 'node:fs/promises';
import { parseDpoRecord, parseJsonl, parseSftRecord, type DpoRecord, type SftRecord } from '../../data/records';
import { parseModelConfig } from '../../model/config';
import { presetById } from '../../model/presets';
import { openModelSource } from '../../model/source-node';
import { LORA_TARGETS, type LoraTarget } from '../../model/lora';
import { nodeFolderSink, writeFolderFiles } from '../../train/files-node';
import { mergeAdapter, type MergedDType } from '../../train/merge';
import { loadPeftAdapter } from '../../train/peft-node';
import { buildRecipe, type RecipeDpoStage, type RecipeStage } from '../../train/recipe';
import { SCHEDULER_TYPES, type SchedulerType } from '../../train/schedule';
import type { EXPORT_MERGED_OPTIONS, EXPORT_RECIPE_OPTIONS } from '../commands';
import { intOption, numberOption, UsageError, type Parsed } from './args';

/** "5GB", "500MB", "2e9", "1000" (bytes; decimal units as transformers' max_shard_size). */
export function parseSize(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^\s*([0-9.]+(?:e[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB)?\s*$/i.exec(v);
  const units: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };
  const n = m ? Number(m[1]) * units[(m[2] ?? 'b').toLowerCase()]! : NaN;
  if (!(n >= 1)) throw new UsageError(`--${flag}: "${v}" is not a size (e.g. 5GB, 500MB, 1000000)`);
  return Math.floor(n);
}

export async function merged({ values: v }: Parsed<typeof EXPORT_MERGED_OPTIONS>): Promise<number> {
  if (!v.model) throw new UsageError('export merged: --model DIR|URL is required');
  if (!v.adapter) throw new UsageError('export merged: --adapter DIR is required');
  if (!v.out) throw new UsageError('export merged: --out DIR is required');
  const dtype = (v.dtype ?? 'bf16') as MergedDType;
  if (dtype !== 'bf16' && dtype !== 'f32') throw new UsageError(`--dtype: "${v.dtype}" is not bf16 or f32`);
  const maxShardBytes = parseSize('max-shard-size', v['max-shard-size']);
  const source = await openModelSource(v.model);
  const config = parseModelConfig(await source.json('config.json'));
  const { adapter, notes } = await loadPeftAdapter(v.adapter, config);
  for (const n of notes) console.error(`--adapter: ${n}`);
  const t0 = performance.now();
  const tty = process.stderr.isTTY && !v.quiet;
  const report = await mergeAdapter(source, adapter, nodeFolderSink(v.out), {
    dtype,
    maxShardBytes,
    onTensor: tty ? (name, done, total) => process.stderr.write(`\r\x1b[K${done}/${total} ${name}`) : undefined,
  });
  if (tty) process.stderr.write('\r\x1b[K');
  if (!v.quiet) {
    console.log(`merged ${report.merged.length} weights (LoRA r ${adapter.rank}, scale ${adapter.alpha / adapter.rank}) into ${dtype} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const f of report.files) console.log(`  ${v.out}/${f}`);
  }
  return 0;
}

async function readRecords<T>(path: string, parse: (x: unknown) => T): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`, { cause: e });
  }
  const parsed = parseJsonl(text, parse);
  if (parsed.errors.length) {
    const shown = parsed.errors.slice(0, 10).map((e) => `  line ${e.line}: ${e.message}`);
    throw new Error(`${path}: ${parsed.errors.length} malformed record(s):\n${shown.join('\n')}${parsed.errors.length > 10 ? `\n  … and ${parsed.errors.length - 10} more` : ''}`);
  }
  // A record the recipe cannot carry is named by its line.
  parsed.records.forEach((r, i) => {
    const kind = (r as { kind: string }).kind;
    if (kind === 'sft-tokens' || kind === 'dpo-tokens' || kind === 'dpo-text')
      throw new Error(`${path} line ${parsed.lines[i]}: ${kind === 'dpo-text' ? 'a plain-text pair' : 'a pre-tokenized record'}; a recipe needs conversations (messages)`);
  });
  return parsed.records;
}

export async function recipe({ values: v }: Parsed<typeof EXPORT_RECIPE_OPTIONS>): Promise<number> {
  if (!v.model) throw new UsageError('export recipe: --model NAME (the base model\'s Hub id) is required');
  if (!v.out) throw new UsageError('export recipe: --out DIR is required');
  if (!v.sft && !v.dpo) throw new UsageError('export recipe: give --sft FILE.jsonl, --dpo FILE.jsonl, or both');
  if (v.loss !== undefined && v.loss !== 'dpo' && v.loss !== 'ln-dpo') throw new UsageError(`--loss: "${v.loss}" is not dpo or ln-dpo`);
  if (v.schedule !== undefined && !SCHEDULER_TYPES.includes(v.schedule as SchedulerType)) throw new UsageError(`--schedule: "${v.schedule}" is not ${SCHEDULER_TYPES.join(', ')}`);
  let loraTargets: LoraTarget[] | undefined;
  if (v['lora-targets'] !== undefined) {
    const list = v['lora-targets'].split(',').map((s) => s.trim());
    for (const t of list) if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new UsageError(`--lora-targets: "${t}" is not one of ${LORA_TARGETS.join(', ')}`);
    loraTargets = list as LoraTarget[];
  }
  const shared: Partial<RecipeStage> = {
    microBatchSize: intOption('batch-size', v['batch-size']),
    gradientAccumulationSteps: intOption('grad-accum', v['grad-accum']),
    maxLength: intOption('max-length', v['max-length']),
    loraRank: intOption('lora-rank', v['lora-rank']),
    loraAlpha: numberOption('lora-alpha', v['lora-alpha']),
    loraTargets,
    warmupRatio: numberOption('warmup-ratio', v['warmup-ratio']),
    scheduler: v.schedule as SchedulerType | undefined,
    seed: intOption('seed', v.seed),
  };
  const sftHyper: Partial<RecipeStage> = { ...shared, lr: numberOption('sft-lr', v['sft-lr']), epochs: intOption('sft-epochs', v['sft-epochs']) };
  const dpoHyper: Partial<RecipeDpoStage> = {
    ...shared,
    lr: numberOption('dpo-lr', v['dpo-lr']),
    epochs: intOption('dpo-epochs', v['dpo-epochs']),
    beta: numberOption('beta', v.beta),
    lossType: v.loss === 'dpo' ? 'sigmoid' : 'ln',
  };
  const sft: SftRecord[] = v.sft ? await readRecords(v.sft, parseSftRecord) : [];
  const dpo: DpoRecord[] = v.dpo ? await readRecords(v.dpo, parseDpoRecord) : [];
  // A preset alias is its Hub repo: the id TRL and LLaMA-Factory load.
  const model = presetById(v.model)?.repo ?? v.model;
  const files = buildRecipe({ model, sft, dpo, sftHyper, dpoHyper, numGpus: intOption('gpus', v.gpus), name: v.name });
  await writeFolderFiles(v.out, files);
  console.log(`recipe for ${model}: ${sft.length} SFT conversations, ${dpo.length} DPO pairs → ${v.out}`);
  for (const name of [...files.keys()].sort()) console.log(`  ${name}`);
  console.log(`see ${v.out}/README.md`);
  return 0;
}
