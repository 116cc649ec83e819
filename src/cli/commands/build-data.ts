// fuse-studio build-data: the FuseChat-3.0 data recipe (src/data/pipeline.ts) over a run folder.
// Progress goes to stderr, the summary to stdout. Ctrl-C stops cleanly; `--resume` continues.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigError, parseJsonText, parseJudgeConfig, parseSourcesConfig, type JudgeSetup } from '../../data/pipeline-config';
import { ARTIFACTS, runPipeline, type PipelineEvent, type PipelineResult, type ScoreProgress } from '../../data/pipeline';
import { importPromptsFile, PromptImportError, type Prompt } from '../../data/prompts';
import { NodeSandbox } from '../../data/sandbox-node';
import type { SourceProgress } from '../../data/collect';
import { isLocalSource, type LocalSourceProgress } from '../../data/local-source';
import { JsonlRunStore } from '../../data/store-jsonl';
import { formatBytes } from '../../model/memory-plan';
import type { BUILD_DATA_OPTIONS } from '../commands';
import { numberOption, UsageError, type Parsed } from './args';

async function readText(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${what} ${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

async function readJson(path: string, what: string): Promise<unknown> {
  return parseJsonText(new TextDecoder().decode(await readText(path, what)), path);
}

async function loadPrompts(path: string, err: (line: string) => void): Promise<Prompt[]> {
  const data = await readText(path, 'prompts file');
  let res;
  try {
    res = await importPromptsFile(basename(path), data);
  } catch (e) {
    if (e instanceof PromptImportError) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
  if (res.errors.length > 0) {
    err(`${path}: ${res.errors.length} row(s) skipped:`);
    for (const e of res.errors.slice(0, 10)) err(`  ${e.line !== undefined ? `line ${e.line}` : `row ${e.row}`}: ${e.message}`);
    if (res.errors.length > 10) err(`  … and ${res.errors.length - 10} more`);
  }
  if (res.duplicates.length > 0) err(`${path}: ${res.duplicates.length} duplicate prompt(s) skipped`);
  if (res.prompts.length === 0) throw new ConfigError(`${path}: no usable prompts`);
  return res.prompts;
}

// ---------------------------------------------------------------------------------------------
// Progress (stderr)

export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

const pct = (a: number, b: number) => (b > 0 ? `${Math.floor((100 * a) / b)}%` : '100%');

/** A local source's state in words, for its progress line. */
function localState(l: LocalSourceProgress): string {
  if (l.state === 'waiting') return 'waiting for the GPU';
  if (l.state === 'loading') return `loading ${l.model ?? ''}`.trim();
  if (l.state === 'cancelled') return 'stopped';
  const batch = l.batchSize !== undefined ? `, batch ${l.batchSize}` : '';
  return `${l.tokensPerSecond.toFixed(1)} tok/s${batch}`;
}

export function formatSourceProgress(p: SourceProgress, nameWidth = 0): string {
  const head = `collect  ${p.name.padEnd(nameWidth)}  `;
  if (p.local?.state === 'skipped') return `${head}skipped: ${p.local.skipReason ?? ''}`;
  const extra = [
    p.failed ? `${p.failed} failed` : '',
    p.retries ? `${p.retries} retries` : '',
    p.skipped ? `${p.skipped} from earlier runs` : '',
    p.local && p.local.state !== 'waiting' && p.local.state !== 'loading' ? `${p.local.generated} generated` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return (
    `${head}${p.done}/${p.total} (${pct(p.done, p.total)})  ` +
    `${p.local ? `${localState(p.local)}  ` : ''}${p.ratePerMinute.toFixed(1)}/min  ETA ${formatDuration(p.etaSeconds)}${extra ? `  [${extra}]` : ''}`
  );
}

/** A local source's line of the summary: what it generated, how fast, and the GPU pool around it. */
export function formatLocalSummary(p: SourceProgress): string | null {
  const l = p.local;
  if (!l) return null;
  if (l.state === 'skipped') return `skipped    ${p.name}: ${l.skipReason ?? ''}`;
  if (!l.gpu) return `local      ${p.name}: ${l.state === 'cancelled' ? 'stopped before it loaded' : 'nothing to generate'}`;
  const g = l.gpu;
  return (
    `local      ${p.name}: ${l.generated} generated, ${l.tokens} tokens in ${formatDuration(l.generateSeconds ?? null)} (${l.tokensPerSecond.toFixed(1)} tok/s, batch ${l.batchSize ?? '?'}; load ${formatDuration(l.loadSeconds ?? null)}); ` +
    `GPU pool ${formatBytes(g.baselineBytes)} → ${formatBytes(g.loadedBytes)} loaded → ${formatBytes(g.afterBytes)} released`
  );
}

export function formatScoreProgress(p: ScoreProgress): string {
  const extra = [p.failed ? `${p.failed} failed` : '', p.skipped ? `${p.skipped} from earlier runs` : '', p.judgeCalls ? `${p.judgeCalls} judge calls` : '']
    .filter(Boolean)
    .join(', ');
  return `score    ${p.done}/${p.total} (${pct(p.done, p.total)})  ${p.ratePerMinute.toFixed(1)}/min  ETA ${formatDuration(p.etaSeconds)}${extra ? `  [${extra}]` : ''}`;
}

/** Prints pipeline events to stderr: at most every `intervalMs`, and whenever something completes. */
export class ProgressPrinter {
  private last = 0;
  private finished = new Set<string>();
  private lastPhase = '';
  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs: number,
  ) {}

  onEvent(e: PipelineEvent): void {
    const now = Date.now();
    const phaseChanged = e.phase !== this.lastPhase;
    this.lastPhase = e.phase;
    switch (e.phase) {
      case 'prompts': {
        const d = Object.entries(e.prompts.byDomain)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ');
        this.write(`prompts  ${e.prompts.total} (${d})${e.prompts.eval ? `; ${e.prompts.eval} held out for eval` : ''}`);
        return;
      }
      case 'collect': {
        const width = Math.max(...e.sources.map((s) => s.name.length));
        const over = (s: SourceProgress) => (s.done + s.failed === s.total && s.inFlight === 0) || s.local?.state === 'skipped';
        const completed = e.sources.filter((s) => over(s) && !this.finished.has(`c:${s.sourceId}`));
        if (phaseChanged || now - this.last >= this.intervalMs) {
          this.last = now;
          for (const s of e.sources) this.write(formatSourceProgress(s, width));
          for (const s of e.sources) if (over(s)) this.finished.add(`c:${s.sourceId}`);
        } else {
          for (const s of completed) {
            this.finished.add(`c:${s.sourceId}`);
            this.write(formatSourceProgress(s, width));
          }
        }
        return;
      }
      case 'score': {
        const p = e.score;
        const complete = p.done + p.failed === p.total && p.inFlight === 0;
        if (phaseChanged || now - this.last >= this.intervalMs || (complete && !this.finished.has('score'))) {
          this.last = now;
          if (complete) this.finished.add('score');
          this.write(formatScoreProgress(p));
        }
        return;
      }
      case 'construct':
        this.write(`build    ${e.counts['sft.kept'] ?? 0} SFT rows, ${e.counts['dpo.kept'] ?? 0} DPO pairs${e.evalCounts ? ` (eval: ${e.evalCounts['sft.kept'] ?? 0} SFT, ${e.evalCounts['dpo.kept'] ?? 0} DPO)` : ''}`);
        return;
      case 'export':
        this.write(`export   ${e.artifacts.map((a) => a.name).join(', ')}`);
        return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Summary (stdout)

function dropped(counts: Record<string, number>, side: 'sft' | 'dpo'): string {
  const pre = `${side}.dropped.`;
  return Object.entries(counts)
    .filter(([k]) => k.startsWith(pre))
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k.slice(pre.length)} ${n}`)
    .join(', ');
}

export function formatSummary(res: PipelineResult, out: string, command = 'build-data'): string {
  const lines: string[] = [];
  const d = Object.entries(res.prompts.byDomain)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  lines.push(`${res.cancelled ? `${command}: stopped during ${res.phase}` : `${command}: done`} → ${out}`);
  lines.push(`prompts    ${res.prompts.total} (${d})${res.prompts.eval ? `, ${res.prompts.eval} held out for eval` : ''}`);
  if (res.collect) {
    const c = res.collect;
    lines.push(`responses  ${c.collected + c.skipped} stored (${c.collected} new, ${c.skipped} from earlier runs), ${c.failed} failed${c.pending ? `, ${c.pending} pending` : ''}`);
    for (const p of c.sources) {
      const line = formatLocalSummary(p);
      if (line) lines.push(line);
    }
  }
  if (res.score) {
    const s = res.score;
    lines.push(`scores     ${s.done}/${s.total} (${s.scored} new, ${s.skipped} from earlier runs), ${s.failed} failed, ${s.judgeCalls} judge calls`);
  }
  if (res.construct) {
    const c = res.construct.report.counts;
    const sd = dropped(c, 'sft');
    const dd = dropped(c, 'dpo');
    lines.push(`SFT        ${c['sft.kept'] ?? 0} rows → ${ARTIFACTS.sft}, ${ARTIFACTS.fusechatSft}${sd ? `  (dropped: ${sd})` : ''}`);
    lines.push(`DPO        ${c['dpo.kept'] ?? 0} pairs → ${ARTIFACTS.dpo}, ${ARTIFACTS.fusechatDpo}${dd ? `  (dropped: ${dd})` : ''}`);
  }
  if (res.evalConstruct) {
    const c = res.evalConstruct.report.counts;
    lines.push(`eval       ${c['sft.kept'] ?? 0} SFT rows, ${c['dpo.kept'] ?? 0} DPO pairs → ${ARTIFACTS.sftEval}, ${ARTIFACTS.dpoEval}, ${ARTIFACTS.evalPrompts}`);
  }
  if (!res.cancelled) lines.push(`report     ${ARTIFACTS.report}`);
  else lines.push(`resume with the same command and --resume`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

export async function run({ values }: Parsed<typeof BUILD_DATA_OPTIONS>): Promise<number> {
  for (const k of ['prompts', 'sources', 'out'] as const) if (!values[k]) throw new UsageError(`build-data: --${k} is required`);
  const evalFraction = numberOption('eval-fraction', values['eval-fraction']) ?? 0;
  if (!(evalFraction >= 0 && evalFraction < 1)) throw new UsageError(`--eval-fraction: must be in [0, 1), got ${evalFraction}`);
  const seedText = values.seed;
  const seed = seedText === undefined ? 0 : /^-?\d+$/.test(seedText) ? Number(seedText) : seedText;
  const codeTimeoutMs = numberOption('code-timeout', values['code-timeout']);
  const gpuMemoryGiB = numberOption('gpu-memory', values['gpu-memory']);
  if (gpuMemoryGiB !== undefined && !(gpuMemoryGiB > 0)) throw new UsageError(`--gpu-memory: must be a number of GiB above 0, got ${values['gpu-memory']}`);
  const dateString = values['date-string'];
  const out = values.out!;
  const err = (line: string) => process.stderr.write(`${line}\n`);

  const prompts = await loadPrompts(values.prompts!, err);
  const sources = parseSourcesConfig(await readJson(values.sources!, 'sources file'), { file: values.sources!, env: process.env });
  let judge: JudgeSetup | undefined;
  if (values.judge) judge = parseJudgeConfig(await readJson(values.judge, 'judge file'), { file: values.judge, env: process.env });

  const hasRun = existsSync(join(out, ARTIFACTS.run)) || existsSync(join(out, JsonlRunStore.RESPONSES));
  if (hasRun && !values.resume) throw new UsageError(`${out} already holds a run: pass --resume to continue it, or choose another --out`);
  // A local reward model: refused unless a *ForSequenceClassification before anything is asked,
  // loaded onto the GPU when scoring begins, after the local sources (the engine is imported only
  // for local models).
  const chat = dateString !== undefined ? { dateString } : {};
  const reward = judge?.spec.type === 'local-reward' ? await (await import('../reward-model')).loadRewardRunner(judge.spec.localReward.model, chat) : undefined;
  const localRunner = sources.some(isLocalSource)
    ? new (await import('../local-runner')).NodeLocalRunner({ memoryBytes: gpuMemoryGiB !== undefined ? gpuMemoryGiB * 1024 ** 3 : null })
    : undefined;
  // The judge's gap window, in its own units, for the pairs it ranks.
  const gap = judge?.gapWindow;
  const construct = gap ? { instructionGap: gap, ...(judge!.domains.includes('math') ? { mathGap: gap } : {}) } : undefined;

  const store = await JsonlRunStore.open(out);
  if (store.recovered) {
    for (const f of Object.values(store.recovery)) {
      if (f.tornTail) err(`${f.file}: cut off a partial last line (${f.tornBytes} bytes, kept in ${f.file}.torn)`);
      if (f.corruptLines.length) err(`${f.file}: skipped unreadable line(s) ${f.corruptLines.slice(0, 10).join(', ')}`);
    }
  }
  const needsSandbox = prompts.some((p) => p.domain === 'code' && p.tests !== undefined);
  const sandbox = needsSandbox ? new NodeSandbox() : undefined;

  const ctrl = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    err('stopping after the requests in flight… (Ctrl-C again quits at once)');
    ctrl.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const printer = new ProgressPrinter(values.quiet ? () => {} : err, process.stderr.isTTY ? 1000 : 2000);
  let res: PipelineResult;
  try {
    res = await runPipeline({
      prompts,
      sources,
      ...(judge ? { judge: judge.spec, judgeDomains: judge.domains } : {}),
      ...(reward ? { rewardModel: reward.runner } : {}),
      ...(localRunner ? { local: { runner: localRunner, ...chat } } : {}),
      // The local sources are done: their GPU context goes before the reward model loads.
      beforeScoring: async () => {
        await localRunner?.close();
        await reward?.load();
      },
      ...(construct ? { construct } : {}),
      ...(sandbox ? { sandbox } : {}),
      ...(codeTimeoutMs !== undefined ? { codeTimeoutMs } : {}),
      store,
      evalFraction,
      seed,
      signal: ctrl.signal,
      onProgress: (e) => printer.onEvent(e),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await sandbox?.dispose();
    await store.close();
    reward?.release();
    await localRunner?.close();
  }
  for (const w of res.warnings) err(`warning: ${w}`);
  console.log(formatSummary(res, out));
  return res.cancelled ? 130 : 0;
}
