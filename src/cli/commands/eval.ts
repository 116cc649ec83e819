// fuse-studio eval: the base model and each --adapter on the same held-out items (src/eval/run.ts
// does the evaluation; this file is the Node host around it): EVAL.jsonl parsed and every bad line
// named before any weight is loaded, the judge file read as build-data reads it, the adapters
// loaded over one copy of the model, the code sandbox, a JSONL results store in --out (so --resume
// redoes nothing), progress on stderr, and the report written as DIR/eval.json and DIR/eval.md.
// Training prompts for the leak check come from each adapter's train_config.json (its data file,
// and the adapter it continued).
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseJsonText, parseJudgeConfig, type JudgeSetup } from '../../data/pipeline-config';
import { parseJsonl } from '../../data/records';
import { NodeSandbox } from '../../data/sandbox-node';
import { parseEvalItems, trainingPrompts, type PromptText } from '../../eval/items';
import { runEvaluation, type EvalModel, type EvalProgress } from '../../eval/run';
import { JsonlEvalStore } from '../../eval/store-jsonl';
import { MissingTokenizerError } from '../../tokenizer';
import type { EVAL_OPTIONS } from '../commands';
import { hasTokenizer, loadAdapterForCli, loadModelForCli, openModelSource, parseQuant } from '../model';
import { parseScoringRecord } from '../records-tokens';
import { intOption, UsageError, type Parsed } from './args';
import { formatDuration } from './build-data';
import { TRAIN_CONFIG_FILE } from './train';

const err = (line: string) => process.stderr.write(`${line}\n`);

/** --adapter NAME=DIR (or DIR, named by its folder): names unique, "base" kept for the model itself. */
export function parseAdapterFlags(flags: readonly string[]): { name: string; dir: string }[] {
  const out: { name: string; dir: string }[] = [];
  for (const f of flags) {
    const eq = f.indexOf('=');
    const name = (eq > 0 ? f.slice(0, eq) : basename(resolve(f))).trim();
    const dir = eq > 0 ? f.slice(eq + 1) : f;
    if (!dir) throw new UsageError(`--adapter ${f}: no folder after "=": write --adapter NAME=DIR`);
    if (name === 'base') throw new UsageError(`--adapter ${f}: "base" names the model without an adapter; choose another name (--adapter sft=${dir})`);
    if (out.some((a) => a.name === name)) throw new UsageError(`--adapter ${f}: the name "${name}" is given twice; name each adapter (--adapter NAME=DIR)`);
    out.push({ name, dir });
  }
  return out;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`${what} ${path}: cannot read (${(e as Error).message})`);
  }
}

/**
 * The prompts an adapter was trained on: its train_config.json's data file, and those of the adapter
 * it continued (init), as far as they can be read; what cannot be read is said in `missing`.
 */
async function adapterTrainingPrompts(dir: string, seen = new Set<string>()): Promise<{ prompts: PromptText[]; missing: string[] }> {
  if (seen.has(resolve(dir))) return { prompts: [], missing: [] };
  seen.add(resolve(dir));
  let cfg: { data?: unknown; init?: unknown };
  try {
    cfg = JSON.parse(await readFile(join(dir, TRAIN_CONFIG_FILE), 'utf8')) as typeof cfg;
  } catch {
    return { prompts: [], missing: [`${dir} has no readable ${TRAIN_CONFIG_FILE}, so its training prompts are unknown`] };
  }
  const out = { prompts: [] as PromptText[], missing: [] as string[] };
  if (typeof cfg.data === 'string') {
    try {
      out.prompts.push(...trainingPrompts(parseJsonl(await readFile(cfg.data, 'utf8'), parseScoringRecord).records));
    } catch {
      out.missing.push(`${dir}: its training data ${cfg.data} cannot be read from here`);
    }
  }
  if (typeof cfg.init === 'string') {
    const init = await adapterTrainingPrompts(cfg.init, seen);
    out.prompts.push(...init.prompts);
    out.missing.push(...init.missing);
  }
  return out;
}

/** Progress lines on stderr: a phase's first and last line always, in between every 2 s. */
function progressPrinter(): (p: EvalProgress) => void {
  let last = 0;
  let phase = '';
  return (p) => {
    const now = Date.now();
    const edge = p.phase !== phase || p.done === p.total;
    if (!edge && now - last < 2000) return;
    phase = p.phase;
    last = now;
    if (p.phase === 'report') return;
    const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
    const eta = p.done < p.total ? `  ETA ${formatDuration(p.etaSeconds)}` : '';
    err(`${p.phase.padEnd(10)} ${p.done}/${p.total} (${pct}%)${p.model !== undefined ? `  ${p.model}` : ''}${eta}`);
  };
}

export async function run({ values: v }: Parsed<typeof EVAL_OPTIONS>): Promise<number> {
  const maxNewTokens = intOption('max-new-tokens', v['max-new-tokens']);
  if (maxNewTokens !== undefined && maxNewTokens < 1) throw new UsageError(`--max-new-tokens: must be ≥ 1, got ${maxNewTokens}`);
  const seed = intOption('seed', v.seed);
  const codeTimeoutMs = intOption('code-timeout', v['code-timeout']);
  if (codeTimeoutMs !== undefined && codeTimeoutMs < 1) throw new UsageError(`--code-timeout: must be ≥ 1 ms, got ${codeTimeoutMs}`);
  const adapters = parseAdapterFlags(v.adapter ?? []);
  const out = v.out;

  // Everything that can be wrong with the inputs, before any weight is read.
  const items = await parseEvalItems(await readText(v.data, '--data'), v.data);
  let judge: JudgeSetup | undefined;
  let judgePrompt: string | undefined;
  if (v.judge) {
    const raw = parseJsonText(await readText(v.judge, '--judge'), v.judge);
    // The pairwise prompt is eval's own field; the rest is build-data's judge file.
    if (raw && typeof raw === 'object' && 'pairwisePrompt' in raw) {
      const { pairwisePrompt, ...rest } = raw as Record<string, unknown>;
      if (typeof pairwisePrompt !== 'string' || !pairwisePrompt.includes('{answer_a}') || !pairwisePrompt.includes('{answer_b}'))
        throw new UsageError(`${v.judge}: pairwisePrompt must be a string with {question}, {answer_a} and {answer_b} in it`);
      judgePrompt = pairwisePrompt;
      judge = parseJudgeConfig(rest, { file: v.judge, env: process.env });
    } else judge = parseJudgeConfig(raw, { file: v.judge, env: process.env });
  }
  if (judge && adapters.length === 0) throw new UsageError('--judge compares pairs of models: give at least one --adapter');
  if ((await JsonlEvalStore.exists(out)) && !v.resume) throw new UsageError(`${out} already holds an evaluation: pass --resume to continue it, or choose another --out`);
  const source = await openModelSource(v.model);
  if (!(await hasTokenizer(source))) throw new MissingTokenizerError(source.description);
  const training = { prompts: [] as PromptText[], missing: [] as string[] };
  for (const a of adapters) {
    const t = await adapterTrainingPrompts(a.dir);
    training.prompts.push(...t.prompts);
    training.missing.push(...t.missing);
  }
  for (const m of training.missing) err(`note: ${m}; eval prompts repeating them cannot be flagged`);
  err(`items      ${items.items.length} from ${v.data} (sha256 ${items.hash})`);

  const date = v['date-string'] !== undefined ? { dateString: v['date-string'] } : {};
  const reward = judge?.spec.type === 'local-reward' ? await (await import('../reward-model')).loadRewardRunner(judge.spec.localReward.model, date) : undefined;
  const m = await loadModelForCli(source, { quant: parseQuant(v.quant) });
  const loras: EvalModel[] = [];
  const store = await JsonlEvalStore.open(out);
  const sandbox = items.items.some((it) => it.kind === 'prompt' && it.prompt.domain === 'code' && it.prompt.tests) ? new NodeSandbox() : undefined;
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    err('stopping… (Ctrl-C again quits at once)');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (store.recovery.tornTail) err(`${JsonlEvalStore.RESULTS}: cut off a partial last line (kept in ${JsonlEvalStore.RESULTS}.torn)`);
    for (const a of adapters) loras.push({ name: a.name, lora: await loadAdapterForCli(m.ctx, m.loaded.config, a.dir), id: resolve(a.dir) });
    const res = await runEvaluation({
      model: m.model,
      tokenizer: m.tokenizer!,
      models: [{ name: 'base', lora: null }, ...loras],
      items,
      decoding: { ...(maxNewTokens !== undefined ? { maxNewTokens } : {}), ...(seed !== undefined ? { seed } : {}), ...date },
      eosTokenIds: m.loaded.config.eosTokenIds,
      ...(judge ? { judge: judge.spec } : {}),
      ...(judgePrompt !== undefined ? { judgePrompt } : {}),
      ...(reward ? { rewardModel: reward.runner } : {}),
      ...(sandbox ? { sandbox } : {}),
      ...(codeTimeoutMs !== undefined ? { codeTimeoutMs } : {}),
      trainingPrompts: training.prompts,
      store,
      signal: ac.signal,
      onProgress: progressPrinter(),
    });
    for (const w of res.warnings) err(`warning: ${w}`);
    err(`results    ${res.computed} computed, ${res.reused} reused from ${join(out, JsonlEvalStore.RESULTS)}`);
    if (res.cancelled) {
      err(`stopped: resume with the same command and --resume`);
      return 130;
    }
    await writeFile(join(out, 'eval.json'), JSON.stringify(res.report, null, 2) + '\n');
    await writeFile(join(out, 'eval.md'), res.markdown!);
    process.stdout.write(`${res.markdown!.trimEnd()}\n\nwrote ${join(out, 'eval.json')} and ${join(out, 'eval.md')}\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sandbox?.dispose();
    await store.close();
    for (const l of loras) l.lora?.release();
    reward?.release();
    m.release();
  }
}
