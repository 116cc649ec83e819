import { describe, expect, it } from 'vitest';
import { LORA_TARGETS } from '../model/lora';
import { DPO_DEFAULTS, LN_DPO_DEFAULTS, SFT_DEFAULTS } from '../train/defaults';
import type { Metrics } from '../train/trainer';
import {
  changedSettings,
  chatDateString,
  DEFAULT_SOURCES,
  defaultSettings,
  describeLineErrors,
  etaSeconds,
  formatDuration,
  formatMetric,
  freeAdapterName,
  historyUpTo,
  measuredSpeed,
  parseDataset,
  resolveDpoInit,
  restoreSettings,
  runAdapterName,
  sha256Hex,
  stepLogs,
  stepPlan,
} from './trainConfig';

describe('Train page settings', () => {
  it('shows the documented defaults of each stage (src/train/defaults.ts)', () => {
    const sft = defaultSettings('sft');
    expect(sft).toMatchObject({
      lr: SFT_DEFAULTS.lr,
      epochs: SFT_DEFAULTS.epochs,
      microBatchSize: SFT_DEFAULTS.microBatchSize,
      gradientAccumulationSteps: SFT_DEFAULTS.gradientAccumulationSteps,
      maxLength: SFT_DEFAULTS.maxLength,
      loraRank: 16,
      loraAlpha: 32,
      scheduler: 'cosine',
      warmupRatio: 0.1,
      maxSteps: 0,
    });
    expect(sft.loraTargets).toEqual([...LORA_TARGETS]);
    expect(defaultSettings('dpo')).toMatchObject({ lr: LN_DPO_DEFAULTS.lr, beta: 10, loss: 'ln-dpo', epochs: 1, microBatchSize: 2, gradientAccumulationSteps: 8 });
    expect(defaultSettings('dpo', 'dpo')).toMatchObject({ lr: DPO_DEFAULTS.lr, beta: 0.1, loss: 'dpo' });
  });

  it('names a source for every documented default', () => {
    for (const k of ['lr', 'beta', 'epochs', 'scheduler', 'warmupRatio', 'loraRank', 'loraAlpha', 'loraTargets', 'maxLength', 'microBatchSize'] as const)
      expect(DEFAULT_SOURCES[k], k).toBeTruthy();
  });

  it('lists the settings changed from the defaults (beta and loss only for DPO)', () => {
    expect(changedSettings('sft', defaultSettings('sft'))).toEqual([]);
    expect(changedSettings('sft', { ...defaultSettings('sft'), maxSteps: 4, beta: 3 })).toEqual(['maxSteps']);
    expect(changedSettings('dpo', { ...defaultSettings('dpo'), beta: 3 })).toEqual(['beta']);
  });

  it('restores stored settings over the defaults, ignoring what does not fit', () => {
    const s = restoreSettings('sft', { lr: 1e-3, maxSteps: 4, scheduler: 'linear', loraTargets: ['v_proj', 'q_proj', 'nope'], epochs: 'x', seed: Infinity, extra: 1 });
    expect(s).toEqual({ ...defaultSettings('sft'), lr: 1e-3, maxSteps: 4, scheduler: 'linear', loraTargets: ['q_proj', 'v_proj'] });
    expect(restoreSettings('dpo', null)).toEqual(defaultSettings('dpo'));
    expect(restoreSettings('dpo', { loss: 'dpo' })).toEqual(defaultSettings('dpo', 'dpo'));
    expect(restoreSettings('sft', { scheduler: 'exponential', loraTargets: [] })).toEqual(defaultSettings('sft'));
  });
});

describe('Train page datasets', () => {
  it('parses TRL SFT records and names malformed lines by number', () => {
    const text = [
      JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }),
      '',
      '{not json',
      JSON.stringify({ prompt: 'a', chosen: 'b', rejected: 'c' }),
    ].join('\n');
    const p = parseDataset(text, 'sft');
    expect(p.records).toHaveLength(1);
    expect(p.lines).toEqual([1]);
    expect(p.errors.map((e) => e.line)).toEqual([3, 4]);
    const msg = describeLineErrors(p.errors, 'sft')!;
    expect(msg).toMatch(/^2 malformed SFT records: line 3: invalid JSON/);
    expect(msg).toContain('line 4:');
  });

  it('parses DPO pairs; shortens long error lists', () => {
    const good = JSON.stringify({ prompt: [{ role: 'user', content: 'q' }], chosen: [{ role: 'assistant', content: 'a' }], rejected: [{ role: 'assistant', content: 'b' }] });
    expect(parseDataset(good, 'dpo').records).toHaveLength(1);
    const errors = Array.from({ length: 8 }, (_, i) => ({ line: i + 1, message: 'bad' }));
    expect(describeLineErrors(errors, 'dpo', 3)).toBe('8 malformed DPO records: line 1: bad; line 2: bad; line 3: bad; … and 5 more');
    expect(describeLineErrors([], 'dpo')).toBeNull();
  });

  it('hashes the dataset text (SHA-256)', async () => {
    expect(await sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('Train page helpers', () => {
  it('estimates the remaining time from the steps done since (re)start', () => {
    expect(etaSeconds(30, 3, 7)).toBeCloseTo(70);
    expect(etaSeconds(30, 0, 7)).toBeNull();
    expect(etaSeconds(30, 3, 0)).toBe(0);
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(42.4)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
  });

  it('formats the chat template date as Llama 3 does', () => {
    expect(chatDateString(new Date(2024, 6, 26))).toBe('26 Jul 2024');
    expect(chatDateString(new Date(2025, 0, 1))).toBe('01 Jan 2025');
  });

  it('keeps the history up to a resumed checkpoint and tells step logs from evaluations', () => {
    const h: Metrics[] = [{ step: 1, loss: 3 }, { step: 2, loss: 2 }, { step: 2, eval_loss: 2.5 }, { step: 3, loss: 1 }];
    expect(historyUpTo(h, 2)).toEqual(h.slice(0, 3));
    expect(stepLogs(h).map((m) => m.step)).toEqual([1, 2, 3]);
  });

  it('formats metric values compactly', () => {
    expect(formatMetric(undefined)).toBe('—');
    expect(formatMetric(0)).toBe('0');
    expect(formatMetric(2e-4)).toBe('2.00e-4');
    expect(formatMetric(11.8557)).toBe('11.86');
    expect(formatMetric(Number.NaN)).toBe('—');
  });

  it('names a run’s adapter so that none is overwritten and DPO says what it continues', () => {
    const a = (name: string, parent: string | null = null) => ({ name, parent });
    expect(runAdapterName('sft', null, [])).toBe('sft');
    expect(runAdapterName('sft', null, [a('sft')])).toBe('sft-2');
    expect(runAdapterName('sft', null, [a('sft'), a('sft-2')])).toBe('sft-3');
    expect(runAdapterName('dpo', 'sft', [a('sft')])).toBe('sft+dpo');
    expect(runAdapterName('dpo', 'sft-2', [a('sft'), a('sft-2'), a('sft+dpo', 'sft')])).toBe('sft-2+dpo');
    expect(runAdapterName('dpo', 'sft', [a('sft'), a('sft+dpo', 'sft')])).toBe('sft+dpo-2');
    expect(runAdapterName('dpo', null, [])).toBe('dpo');
    // "sft" was deleted but "sft+dpo" still names it: a new SFT adapter does not take its name.
    expect(runAdapterName('sft', null, [a('sft+dpo', 'sft')])).toBe('sft-2');
    expect(freeAdapterName('imported', [a('imported'), a('imported-2')])).toBe('imported-3');
  });

  it('DPO continues the chosen adapter, else the newest SFT one', () => {
    const list = [
      { name: 'sft', kind: 'sft' },
      { name: 'mine', kind: 'imported' },
      { name: 'sft-2', kind: 'sft' },
      { name: 'sft-2+dpo', kind: 'dpo' },
    ];
    expect(resolveDpoInit(undefined, list)?.name).toBe('sft-2');
    expect(resolveDpoInit('mine', list)?.name).toBe('mine');
    expect(resolveDpoInit(null, list)).toBeNull();
    expect(resolveDpoInit('deleted', list)?.name).toBe('sft-2');
    expect(resolveDpoInit(undefined, [{ name: 'mine', kind: 'imported' }])).toBeNull();
  });

  it('counts a run’s steps before it starts, as the Trainer does', () => {
    const s = { microBatchSize: 2, gradientAccumulationSteps: 8, epochs: 3, maxSteps: 0 };
    // 100 examples → 50 micro-batches → ⌈50 / 8⌉ = 7 steps an epoch, 3 epochs.
    expect(stepPlan('sft', 100, 256, s)).toEqual({ examples: 100, stepsPerEpoch: 7, totalSteps: 21, sequencesPerStep: 16, seqLen: 256, positionsPerStep: 4096 });
    expect(stepPlan('sft', 3, 32, { ...s, microBatchSize: 1, gradientAccumulationSteps: 1, epochs: 1 }).totalSteps).toBe(3);
    // Max steps wins; DPO steps hold chosen and rejected.
    expect(stepPlan('dpo', 100, 64, { ...s, maxSteps: 5 })).toMatchObject({ totalSteps: 5, sequencesPerStep: 32, positionsPerStep: 2048 });
  });

  it('reads the speed of this device from a run’s logged steps (the first left out), or none', () => {
    const run = { runId: 'r', stage: 'sft' as const, createdAt: 't', seqLen: 32, settings: { ...defaultSettings('sft'), microBatchSize: 1, gradientAccumulationSteps: 1 } };
    // 32 positions a step; steps 2–4 take 2 s, 4 s and 2 s (tokens ÷ tokens/s).
    const h: Metrics[] = [
      { step: 1, loss: 3, num_tokens: 20, tokens_per_second: 1 },
      { step: 2, loss: 2, num_tokens: 40, tokens_per_second: 10 },
      { step: 2, eval_loss: 2.5 },
      { step: 3, loss: 1.5, num_tokens: 60, tokens_per_second: 5 },
      { step: 4, loss: 1.2, num_tokens: 80, tokens_per_second: 10 },
    ];
    expect(measuredSpeed(run, h)).toEqual({ positionsPerSecond: 16, runId: 'r', stage: 'sft', createdAt: 't', steps: 3 });
    expect(measuredSpeed(run, h.slice(0, 3))).toBeNull();
    expect(measuredSpeed({ ...run, seqLen: 0 }, h)).toBeNull();
  });
});

