// The Model page's bf16 / int8 / int4 choice for a target preset: each option's plan, download and
// cache size, and the default = the most precise base that fits the stated memory.
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../model/memory-plan';
import { downloadSize, presetById } from '../model/presets';
import { describeWeightsOption, presetWeightsAdvice, type DeviceLimits } from './planAdvice';

const GiB = 2 ** 30;
const limits = (memoryGiB: number | null): DeviceLimits => ({ maxStorageBufferBindingSize: 128 * 2 ** 20, maxBufferSize: 2 ** 30, memoryBytes: memoryGiB === null ? null : memoryGiB * GiB });

describe('weights advice (bf16 / int8 / int4)', () => {
  const p = presetById('llama-3.2-3b')!;
  const choice = { seq: 1024, rank: 16 };

  it('lists the three with plans that shrink, the same download, and a cache for the quantized ones', () => {
    const a = presetWeightsAdvice(p, choice, limits(null));
    expect(a.options.map((o) => o.label)).toEqual(['bf16', 'int8', 'int4']);
    const [bf16, int8, int4] = a.options;
    expect(bf16!.needed).toBeGreaterThan(int8!.needed);
    expect(int8!.needed).toBeGreaterThan(int4!.needed);
    expect(int4!.needed).toBeLessThanOrEqual(3.5 * GiB);
    for (const o of a.options) expect(o.download).toBe(downloadSize(p).bytes);
    expect(bf16!.cache).toBe(0);
    expect(int4!.cache).toBeGreaterThan(1.5 * GiB);
    expect(int4!.cache).toBeLessThan(int8!.cache);
    expect(describeWeightsOption(int4!)).toMatch(new RegExp(`int4: ${formatBytes(int4!.needed)} to train · the first load downloads .* later loads read a ${formatBytes(int4!.cache)} cache`));
  });

  it('defaults to the most precise that fits the stated memory, and says why', () => {
    const unknown = presetWeightsAdvice(p, choice, limits(null));
    expect(unknown.recommended).toBeNull();
    expect(unknown.reason).toMatch(/state this GPU’s free memory/);
    expect(presetWeightsAdvice(p, choice, limits(8)).recommended).toBeNull();
    const six = presetWeightsAdvice(p, choice, limits(6));
    expect(six.recommended).toBe('int8');
    // bf16 needs about 7 GiB (the figure itself moves with the workspace: e.g. the lm_head chunk's size).
    const bf16Needed = six.options.find((o) => o.label === 'bf16')!.needed;
    expect(bf16Needed / GiB).toBeGreaterThan(6.5);
    expect(bf16Needed / GiB).toBeLessThan(7.5);
    expect(six.reason).toMatch(new RegExp(`^int8 is the most precise that fits the 6\\.00 GiB .*bf16 needs ${formatBytes(bf16Needed).replace('.', '\\.')}`));
    const laptop = presetWeightsAdvice(p, choice, limits(3.5));
    expect(laptop.recommended).toBe('int4');
    expect(laptop.reason).toMatch(/bf16 needs .*, int8 needs /);
    const none = presetWeightsAdvice(p, choice, limits(1));
    expect(none.recommended).toBe('int4');
    expect(none.reason).toMatch(/^None fits the 1\.00 GiB you stated .*int4 is the smallest/);
  });
});
