// fuse-studio demo: the whole FuseChat-3.0 recipe offline, in one command, on demo models.
//
//   1. models     two demo models of different families as the source models (a Llama-3 and a
//                 Qwen3 architecture, each with its real tokenizer and chat template), a Llama-3
//                 LlamaForSequenceClassification as the reward model, and the target (the default
//                 demo model), written under OUT/models/
//   2. data       runPipeline (what `build-data` runs) over a small built-in prompt set, every
//                 model on this GPU: the sources generate one after the other (local sources:
//                 batched, each model released before the next loads), then the reward model
//                 scores the responses (its raw rewards mapped to [0, 1] by a sigmoid fitted to
//                 the run, the DPO gap window in the run's reward spread), math prompts checked
//                 against gold answers, code prompts run against their tests in the Node sandbox
//                 (JavaScript; Python through Pyodide)
//   3. train      LoRA SFT on sft.jsonl, then LN-DPO on dpo.jsonl continuing the SFT adapter, which
//                 is also the DPO reference policy (`train sft` then `train dpo --adapter`)
//   4. compare    greedy answers of the base target and of base + SFT+DPO adapter
//
// Random demo models write gibberish, so math and code rarely give rows (the report says why);
// the demo trains on whatever the recipe kept and skips a stage whose set is empty. Progress and
// timings go to stderr, the summary and the before/after answers to stdout.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DpoReason, PromptReport, SftReason } from '../../data/construct';
import { makeLocalSource } from '../../data/local-source';
import { ARTIFACTS, runPipeline, type PipelineResult } from '../../data/pipeline';
import type { Domain, Prompt } from '../../data/prompts';
import { NodeSandbox } from '../../data/sandbox-node';
import type { JudgeSpec } from '../../data/score';
import { JsonlRunStore } from '../../data/store-jsonl';
import { writeDemoModel } from '../../model/demo-node';
import { generate } from '../../model/generate';
import { NodeLocalRunner } from '../local-runner';
import { loadModelForCli, openModelSource } from '../model';
import { loadRewardRunner } from '../reward-model';
import type { DEMO_OPTIONS } from '../commands';
import { intOption, UsageError, type Parsed } from './args';
import { formatDuration, formatSummary, ProgressPrinter } from './build-data';
import { trainAdapter } from './train';

export const DEMO_DEFAULTS = { out: 'fuse-demo', prompts: 4, samples: 2, maxTokens: 8, sftSteps: 2, dpoSteps: 2, seed: 0 };

/** The Llama 3.x "Today Date" every demo step uses, so runs repeat exactly. */
export const DEMO_DATE = '26 Jul 2024';

/** The demo's source models (two families) and reward model; the target is the default demo model. */
export const DEMO_MODELS = {
  a: { name: 'llama-demo', family: 'llama', seed: 1 },
  b: { name: 'qwen3-demo', family: 'qwen3', seed: 2 },
  judge: { name: 'reward-demo', family: 'llama', seed: 3 },
} as const;

/**
 * The built-in prompts, in the order `--prompts N` takes them: two instruction prompts first (the
 * recipe splits instruction prompts 4:6 between SFT and DPO, so two give one of each), then math
 * and code, so the default four cover every domain. Math prompts carry gold answers; code prompts carry tests (JavaScript, Python).
 */
export const DEMO_PROMPTS: readonly Prompt[] = [
  { id: 'i1', domain: 'instruction', text: 'Give me three tips for staying focused while studying.' },
  { id: 'i2', domain: 'instruction', text: 'Write a haiku about the sea.' },
  { id: 'm1', domain: 'math', text: 'What is 17 + 25? Put the final answer in \\boxed{}.', gold: '42' },
  { id: 'c1', domain: 'code', text: 'Write a JavaScript function add(a, b) that returns the sum of a and b.', tests: ['assert.strictEqual(add(2, 3), 5);', 'assert.strictEqual(add(-1, 1), 0);'] },
  { id: 'i3', domain: 'instruction', text: 'Explain what a neural network is in one sentence.' },
  { id: 'm2', domain: 'math', text: 'A box holds 6 rows of 7 eggs. How many eggs is that? Answer in \\boxed{}.', gold: '42' },
  { id: 'c2', domain: 'code', text: 'Write a Python function is_even(n) that returns True when n is even.', tests: ['assert is_even(2) == True', 'assert is_even(7) == False'] },
  { id: 'i4', domain: 'instruction', text: 'Suggest a friendly name for a household robot, and say why.' },
  { id: 'i5', domain: 'instruction', text: 'Describe a sunset in two sentences.' },
  { id: 'm3', domain: 'math', text: 'What is 100 divided by 8? Give the answer in \\boxed{}.', gold: '12.5' },
];

/** Training settings of the demo: the recipe's stages with learning rates large enough for a few steps to show. */
export const DEMO_TRAINING = { rank: 8, sftLr: 1e-2, dpoLr: 5e-3, batchSize: 2 };

/** Why a prompt gave no SFT row / DPO pair, in words. */
const REASONS: Record<SftReason | DpoReason, string> = {
  no_responses: 'no responses were collected',
  errors_only: 'every request failed',
  unscored: 'no response has a score (no judge or reward model scores this domain)',
  judge_failed: "the judge's requests failed",
  verdict_unreadable: "no score could be read from the judge's verdicts",
  unjudged: 'no verdict (no gold answer, tests or sandbox)',
  no_correct: 'no response matched the gold answer',
  no_incorrect: 'every response was correct, so there is nothing to reject',
  all_failed: 'no response passed the tests',
  all_passed: 'every response passed the tests, so there is nothing to reject',
  single_response: 'each source gave fewer than two scored responses',
  gap_too_small: 'the score gap of the best and worst response of each source is under the window',
  gap_too_large: 'the score gap of the best and worst response of each source is over the window',
  no_same_source_pair: 'no source has both a good and a bad response',
  sft_only_domain: 'the domain is SFT-only',
  sft_split: 'the prompt is on the SFT side of the instruction SFT:DPO split',
  dpo_split: 'the prompt is on the DPO side of the instruction SFT:DPO split',
  dpo_pair: 'the prompt gave a DPO pair instead',
  missing_score: 'a response lacks its score',
  excluded: 'excluded by hand',
};

const explain = (reason: SftReason | DpoReason | undefined) => (reason === undefined ? '?' : `${reason} (${REASONS[reason]})`);

/** Per domain: rows kept, and why the other prompts gave none. */
export function explainReport(prompts: readonly PromptReport[]): string[] {
  const lines: string[] = [];
  const domains = [...new Set(prompts.map((p) => p.domain))] as Domain[];
  for (const d of domains) {
    const ps = prompts.filter((p) => p.domain === d);
    const sft = ps.filter((p) => p.sft.kept).length;
    const dpo = ps.filter((p) => p.dpo.kept).length;
    lines.push(`  ${d.padEnd(11)} ${ps.length} prompt(s): ${sft} SFT row(s), ${dpo} DPO pair(s)`);
    for (const p of ps) {
      const why: string[] = [];
      if (!p.sft.kept) why.push(`no SFT row: ${explain(p.sft.reason)}`);
      if (!p.dpo.kept) why.push(`no DPO pair: ${explain(p.dpo.reason)}`);
      if (why.length) lines.push(`    ${p.promptId}: ${why.join('; ')}`);
    }
  }
  return lines;
}

function positiveInt(flag: string, value: string | undefined, dflt: number, min = 1): number {
  const n = intOption(flag, value) ?? dflt;
  if (n < min) throw new UsageError(`--${flag}: must be ≥ ${min}, got ${n}`);
  return n;
}

export async function run({ values: v }: Parsed<typeof DEMO_OPTIONS>): Promise<number> {
  const out = v.out ?? DEMO_DEFAULTS.out;
  const nPrompts = positiveInt('prompts', v.prompts, DEMO_DEFAULTS.prompts);
  if (nPrompts > DEMO_PROMPTS.length) throw new UsageError(`--prompts: the built-in set has ${DEMO_PROMPTS.length} prompts, got ${nPrompts}`);
  const samples = positiveInt('samples', v.samples, DEMO_DEFAULTS.samples);
  const maxTokens = positiveInt('max-tokens', v['max-tokens'], DEMO_DEFAULTS.maxTokens);
  const sftSteps = positiveInt('sft-steps', v['sft-steps'], DEMO_DEFAULTS.sftSteps, 0);
  const dpoSteps = positiveInt('dpo-steps', v['dpo-steps'], DEMO_DEFAULTS.dpoSteps, 0);
  const seed = intOption('seed', v.seed) ?? DEMO_DEFAULTS.seed;
  if (existsSync(join(out, JsonlRunStore.RESPONSES)) || existsSync(join(out, ARTIFACTS.run)))
    throw new UsageError(`${out} already holds a run: choose another --out or delete it`);

  const err = (line: string) => process.stderr.write(`${line}\n`);
  const t0 = performance.now();
  const timings: [string, number][] = [];
  let lap = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    timings.push([name, (now - lap) / 1000]);
    err(`demo     ${name} done in ${formatDuration((now - lap) / 1000)}`);
    lap = now;
  };

  // ---- 1. models
  const models = { a: join(out, 'models', 'source-a'), b: join(out, 'models', 'source-b'), judge: join(out, 'models', 'reward'), target: join(out, 'models', 'target') };
  const { a, b, judge } = DEMO_MODELS;
  err(
    `demo     writing the demo models to ${join(out, 'models')} (sources: a ${a.family} and a ${b.family} architecture, seeds ${a.seed} and ${b.seed}; ` +
      `reward model: a ${judge.family} *ForSequenceClassification, seed ${judge.seed}; target: the default demo model)`,
  );
  await writeDemoModel(models.a, { family: a.family, seed: a.seed });
  await writeDemoModel(models.b, { family: b.family, seed: b.seed });
  await writeDemoModel(models.judge, { family: judge.family, seed: judge.seed, head: 'sequence-classification' });
  await writeDemoModel(models.target);
  phase('models');

  // ---- 2. data: the sources on this GPU one after the other, then the reward model
  const prompts = DEMO_PROMPTS.slice(0, nPrompts);
  let res: PipelineResult;
  const sandbox = prompts.some((p) => p.domain === 'code') ? new NodeSandbox() : undefined;
  const runner = new NodeLocalRunner();
  const reward = await loadRewardRunner(models.judge, { dateString: DEMO_DATE });
  try {
    // Sampling: the paper's preset of each source's family (Qwen T 0.7, top-p 0.8, repetition penalty 1.05; Llama T 0.8, top-p 0.95).
    const source = (name: string, model: string) => makeLocalSource({ id: name, name, model, max_tokens: maxTokens, n: samples, seed });
    const judgeSpec: JudgeSpec = { type: 'local-reward', localReward: { model: models.judge, normalize: { kind: 'run' } } };
    const store = await JsonlRunStore.open(out);
    const printer = new ProgressPrinter(err, process.stderr.isTTY ? 1000 : 5000);
    try {
      res = await runPipeline({
        prompts,
        sources: [source(a.name, models.a), source(b.name, models.b)],
        local: { runner, dateString: DEMO_DATE },
        judge: judgeSpec,
        rewardModel: reward.runner,
        beforeScoring: async () => {
          await runner.close();
          await reward.load();
        },
        ...(sandbox ? { sandbox } : {}),
        store,
        seed,
        onProgress: (e) => printer.onEvent(e),
      });
    } finally {
      await store.close();
    }
  } finally {
    await sandbox?.dispose();
    reward.release();
    await runner.close();
  }
  phase('data');
  for (const w of res.warnings) err(`warning: ${w}`);
  const counts = res.construct!.report.counts;
  const nSft = counts['sft.kept'] ?? 0;
  const nDpo = counts['dpo.kept'] ?? 0;
  console.log(formatSummary(res, out, 'demo data'));
  console.log('why:');
  for (const line of explainReport(res.construct!.report.prompts)) console.log(line);

  // ---- 4. train
  const hyper = { microBatchSize: DEMO_TRAINING.batchSize, gradientAccumulationSteps: 1, warmupRatio: 0, scheduler: 'constant' as const, seed };
  const common = { model: models.target, rank: DEMO_TRAINING.rank, dateString: DEMO_DATE, checkpointEvery: 1_000_000, keepLast: 1 };
  const sftDir = join(out, 'adapter-sft');
  const dpoDir = join(out, 'adapter-dpo');
  let sftDone = false;
  let finalAdapter: string | null = null;
  if (nSft === 0) console.log('SFT: skipped, the SFT set is empty (see "why" above)');
  else if (sftSteps === 0) console.log('SFT: skipped (--sft-steps 0)');
  else {
    err(`train    SFT: ${nSft} row(s), ${sftSteps} step(s) on ${models.target}`);
    const r = await trainAdapter({ ...common, stage: 'sft', data: join(out, ARTIFACTS.sft), out: sftDir, hyper: { ...hyper, maxSteps: sftSteps, lr: DEMO_TRAINING.sftLr }, say: (s) => err(`sft      ${s}`) });
    console.log(`SFT: ${r.steps} step(s) on ${r.examples} row(s) in ${formatDuration(r.seconds)} → ${sftDir}`);
    sftDone = true;
    finalAdapter = sftDir;
    phase('SFT');
  }
  if (nDpo === 0) console.log('DPO: skipped, the DPO set is empty (see "why" above): the result is the SFT model');
  else if (dpoSteps === 0) console.log('DPO: skipped (--dpo-steps 0)');
  else {
    err(`train    DPO (LN-DPO, beta 10): ${nDpo} pair(s), ${dpoSteps} step(s); reference: ${sftDone ? 'the SFT model' : 'the base model (no SFT adapter)'}`);
    const r = await trainAdapter({
      ...common,
      stage: 'dpo',
      data: join(out, ARTIFACTS.dpo),
      out: dpoDir,
      ...(sftDone ? { adapter: sftDir } : {}),
      lossType: 'ln',
      hyper: { ...hyper, maxSteps: dpoSteps, lr: DEMO_TRAINING.dpoLr },
      say: (s) => err(`dpo      ${s}`),
    });
    console.log(`DPO: ${r.steps} step(s) on ${r.examples} pair(s) in ${formatDuration(r.seconds)} → ${dpoDir}${sftDone ? ' (SFT+DPO)' : ''}`);
    finalAdapter = dpoDir;
    phase('DPO');
  }

  // ---- 5. before / after
  // Two prompts: the first instruction and the first math one, else the next in order.
  const firsts = [prompts.find((p) => p.domain === 'instruction'), prompts.find((p) => p.domain === 'math')].filter((p): p is Prompt => p !== undefined);
  const shown = [...firsts, ...prompts.filter((p) => !firsts.includes(p))].slice(0, 2);
  if (!finalAdapter) console.log('before/after: nothing was trained, so there is no "after"');
  else {
    const m = await loadModelForCli(await openModelSource(models.target), { adapter: finalAdapter });
    try {
      const tok = m.tokenizer!;
      const eos = [...new Set([...tok.eosTokenIds, ...m.loaded.config.eosTokenIds])];
      const label = finalAdapter === dpoDir ? (sftDone ? 'SFT+DPO' : 'DPO') : 'SFT';
      console.log(`before/after (greedy, ${maxTokens} tokens; base vs base + ${label} adapter ${finalAdapter}):`);
      for (const p of shown) {
        const promptIds = tok.encodeChat([{ role: 'user', content: p.text }], { addGenerationPrompt: true, dateString: DEMO_DATE }).ids;
        const answer = async (lora: typeof m.lora) =>
          tok.decode((await generate(m.model, { promptIds, maxNewTokens: maxTokens, sampling: { temperature: 0 }, eosTokenIds: eos, lora })).ids, { skipSpecialTokens: true });
        const before = await answer(null);
        const after = await answer(m.lora);
        console.log(`  prompt: ${p.text}`);
        console.log(`    before: ${JSON.stringify(before)}`);
        console.log(`    after:  ${JSON.stringify(after)}${after === before ? '  (unchanged)' : ''}`);
      }
    } finally {
      m.release();
    }
    phase('before/after');
  }
  console.log(`timings: ${timings.map(([k, s]) => `${k} ${formatDuration(s)}`).join(', ')}; total ${formatDuration((performance.now() - t0) / 1000)}`);
  console.log(`demo: done → ${out}${finalAdapter ? ` (adapter: ${finalAdapter})` : ''}`);
  return 0;
}
