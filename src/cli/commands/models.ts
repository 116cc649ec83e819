// fuse-studio models: the presets (src/model/presets.ts), each with its role, download size and
// memory plan, computed from its config.json fields without downloading anything. Any command's
// `--model` takes a preset's alias (`--model qwen2.5-0.5b`): the Hub repo it names.
import { formatBytes } from '../../model/memory-plan';
import { PRESET_PLAN_DEFAULTS, presetPlan, type PresetPlan } from '../../model/preset-plans';
import { downloadSize, formatDownload, PRESET_ROLES, PRESETS, type PresetRole } from '../../model/presets';
import type { MODELS_OPTIONS } from '../commands';
import { numberOption, UsageError, type Parsed } from './args';

const GiB = 2 ** 30;

export async function run({ values: v }: Parsed<typeof MODELS_OPTIONS>): Promise<number> {
  if (v.role !== undefined && !PRESET_ROLES.includes(v.role as PresetRole))
    throw new UsageError(`--role: "${v.role}" is not one of ${PRESET_ROLES.join(', ')}`);
  const memoryGiB = numberOption('memory', v.memory);
  if (memoryGiB !== undefined && !(memoryGiB > 0)) throw new UsageError(`--memory: must be a number of GiB above 0, got ${v.memory}`);
  const presets = PRESETS.filter((p) => v.role === undefined || p.role === v.role);
  const d = PRESET_PLAN_DEFAULTS;
  const rows = presets.map((p) => ({ p, size: downloadSize(p), plan: presetPlan(p) }));
  const fits = (plan: PresetPlan) => (memoryGiB === undefined ? null : plan.needed <= memoryGiB * GiB);

  if (v.json) {
    const out = rows.map(({ p, size, plan }) => ({
      id: p.id,
      name: p.name,
      repo: p.repo,
      revision: p.revision,
      role: p.role,
      family: p.family,
      gatedOfficial: p.gatedOfficial,
      configVerified: p.verified,
      download: { bytes: size.bytes, approximate: true, basis: size.basis },
      plan: {
        training: plan.training && { bytes: plan.training.training, ...d.training },
        generation: plan.generation !== null ? { bytes: plan.generation, ...d.generation } : null,
        scoring: plan.scoring && { bytes: plan.scoring.bytes, ...d.scoring },
        needed: plan.needed,
        largestTensor: plan.largestTensor,
      },
      ...(memoryGiB !== undefined ? { fits: fits(plan) } : {}),
    }));
    console.log(JSON.stringify(out, null, 2));
    return 0;
  }

  const cols = ['alias', 'role', 'family', 'download', 'training', 'generation', 'scoring', ...(memoryGiB !== undefined ? [`fits ${memoryGiB} GiB`] : []), 'repo'];
  const table = rows.map(({ p, size, plan }) => [
    p.id,
    p.role,
    p.family,
    `≈ ${formatDownload(size.bytes)}`,
    plan.training ? formatBytes(plan.training.training) : '—',
    plan.generation !== null ? formatBytes(plan.generation) : '—',
    plan.scoring ? formatBytes(plan.scoring.bytes) : '—',
    ...(memoryGiB !== undefined ? [fits(plan) ? 'yes' : `no (${p.role === 'target' ? 'training' : p.role === 'source' ? 'generation' : 'scoring'})`] : []),
    p.repo,
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...table.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ');
  console.log(line(cols));
  for (const r of table) console.log(line(r));
  console.log('');
  console.log(
    `training: a LoRA r${d.training.loraRank} step at ${d.training.batch} × ${d.training.seq} tokens; generation: ${d.generation.batch} × ${d.generation.capacity} positions; ` +
      `scoring: ${d.scoring.batch} × ${d.scoring.seq} tokens (the GPU memory each needs; \`fuse-studio plan --model ALIAS\` for other settings).`,
  );
  console.log('download: approximate, parameters × 2 bytes (bfloat16) + tokenizer.json, from config.json. No preset needs a token.');
  for (const { p } of rows.filter((r) => r.p.gatedOfficial))
    console.log(`${p.id}: ${p.repo} is an ungated copy of ${p.gatedOfficial} (gated: HF_TOKEN=… --model ${p.gatedOfficial}).`);
  if (memoryGiB === undefined) console.log('--memory GIB checks each against the GPU memory you have free (WebGPU does not report it).');
  return 0;
}
