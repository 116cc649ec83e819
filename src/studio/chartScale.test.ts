import { describe, expect, it } from 'vitest';
import { bytesUnit, decimalsFor, niceAxis, niceStep } from './chartScale';

const labels = (values: number[], o?: Parameters<typeof niceAxis>[1]) => {
  const a = niceAxis(values, o);
  return a.ticks.map(a.format);
};

describe('niceStep and decimalsFor', () => {
  it('rounds up to 1, 2, 2.5 or 5 × 10^k', () => {
    expect([0.7, 1, 1.3, 2.2, 3, 7, 0.013, 140].map(niceStep)).toEqual([1, 1, 2, 2.5, 5, 10, 0.02, 200]);
  });
  it('shows the digits a step needs', () => {
    expect([1, 10, 0.5, 0.25, 0.02, 0.0025, 2.5].map(decimalsFor)).toEqual([0, 0, 1, 2, 2, 4, 1]);
  });
});

describe('niceAxis', () => {
  it('tells apart the ticks of a loss that moves in the fourth decimal (no "11.69" four times)', () => {
    const l = labels([11.6912, 11.6903, 11.6897, 11.6889]);
    expect(new Set(l).size).toBe(l.length);
    expect(l.length).toBeGreaterThanOrEqual(3);
    expect(l).toEqual(['11.688', '11.689', '11.690', '11.691', '11.692']);
  });
  it('covers the data with round ticks', () => {
    const a = niceAxis([0.83, 2.41, 1.7]);
    expect(a.domain[0]).toBeLessThanOrEqual(0.83);
    expect(a.domain[1]).toBeGreaterThanOrEqual(2.41);
    expect(a.ticks.map(a.format)).toEqual(['0.5', '1.0', '1.5', '2.0', '2.5']);
  });
  it('gives a flat series a band around its value, with distinct labels', () => {
    const l = labels([11.69, 11.69, 11.69]);
    expect(new Set(l).size).toBe(l.length);
    expect(l.length).toBeGreaterThan(1);
    expect(labels([0, 0])).toEqual(['-1.0', '-0.5', '0', '0.5', '1.0']);
  });
  it('starts at 0 when asked, and never prints float noise', () => {
    expect(labels([0.1, 0.3], { fromZero: true })).toEqual(['0', '0.1', '0.2', '0.3']);
    expect(labels([0.1, 0.7])).toEqual(['0', '0.2', '0.4', '0.6', '0.8']);
    expect(labels([1], { fromZero: true })).toEqual(['0', '0.25', '0.50', '0.75', '1.00']);
  });
  it('writes tiny learning rates with an exponent and enough digits', () => {
    const l = labels([0, 1e-5, 2e-5], { fromZero: true });
    expect(new Set(l).size).toBe(l.length);
    expect(l.at(-1)).toBe('2.0e-5');
    expect(labels([1e-4, 2e-4], { fromZero: true })).toEqual(['0', '0.00005', '0.00010', '0.00015', '0.00020']);
  });
  it('puts step ticks on whole numbers', () => {
    expect(labels([1, 2, 3], { integer: true })).toEqual(['1', '2', '3']);
    expect(labels([1, 12], { integer: true })).toEqual(['0', '5', '10', '15']);
    expect(labels([5], { integer: true })).toEqual(['4', '5', '6']);
  });
  it('labels bytes in the unit their size reads in', () => {
    const mib = 2 ** 20;
    const unit = bytesUnit(310 * mib);
    expect(unit.suffix).toBe('MiB');
    const a = niceAxis([296 * mib, 310 * mib], { fromZero: true, unit });
    expect(a.ticks.map(a.format)).toEqual(['0 MiB', '100 MiB', '200 MiB', '300 MiB', '400 MiB']);
    expect(a.ticks[1]).toBe(100 * mib);
    expect(a.widest).toBe('400 MiB'.length);
    expect(bytesUnit(3 * 2 ** 30).suffix).toBe('GiB');
    expect(bytesUnit(500).suffix).toBe('B');
  });
});
