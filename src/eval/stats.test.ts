import { describe, expect, it } from 'vitest';
import { excludes, firthLogistic, lengthControlledWinRate, mcnemarExact, mean, wilson, winRate, Z95, type LengthItem } from './stats';

// Expected values were computed independently in Python 3.11 (scipy 1.17):
//   Wilson: the closed formula with z = scipy.stats.norm.ppf(0.975) in float64;
//   McNemar: exact sums 2·Σ_{i≤k} C(n,i)/2ⁿ in fractions.Fraction with math.comb, checked against
//     scipy.stats.binomtest(k, n, 0.5).pvalue;
//   Firth: scipy.optimize.minimize (Nelder–Mead then BFGS) of −(ℓ(θ) + ½·log det I(θ)) — a different
//     algorithm from the Newton iteration on the modified score used here.

describe('wilson', () => {
  it('z is the 97.5% normal quantile (scipy norm.ppf(0.975) = 1.959963984540054)', () => {
    expect(Z95).toBe(1.959963984540054);
  });

  const table: [k: number, n: number, lo: number, hi: number][] = [
    [0, 10, 0, 0.2775327998628892],
    [10, 10, 0.7224672001371106, 1],
    [3, 10, 0.10779126740630099, 0.6032218525388546],
    [7.5, 12, 0.3543690134662527, 0.835007484869937], // fractional: wins + ties/2
    [50, 100, 0.4038315303659957, 0.5961684696340044],
    [1, 1, 0.20654931437723742, 1],
    [0, 1, 0, 0.7934506856227626],
  ];
  it.each(table)('%d of %d → [%f, %f]', (k, n, lo, hi) => {
    const ci = wilson(k, n)!;
    expect(ci[0]).toBeCloseTo(lo, 14);
    expect(ci[1]).toBeCloseTo(hi, 14);
    expect(ci[0]).toBeGreaterThanOrEqual(0);
    expect(ci[1]).toBeLessThanOrEqual(1);
  });

  it('is null for n = 0 and rejects k outside [0, n]', () => {
    expect(wilson(0, 0)).toBeNull();
    expect(() => wilson(11, 10)).toThrow(/k = 11 must be between 0 and n = 10/);
  });
});

describe('mcnemarExact', () => {
  const table: [aOnly: number, bOnly: number, p: number, source: string][] = [
    [0, 0, 1, 'no discordant items'],
    [2, 0, 0.5, 'Fraction 1/2'],
    [0, 2, 0.5, 'symmetric'],
    [1, 5, 0.21875, 'Fraction 7/32'],
    [3, 12, 0.03515625, 'Fraction 9/256'],
    [0, 10, 0.001953125, 'Fraction 1/512'],
    [4, 4, 1, 'capped at 1'],
    [400, 480, 0.007707305043339141, 'Fraction, float()'],
    [5000, 5200, 0.04878796312682245, 'Fraction, float(); 2^10200 overflows a double'],
  ];
  it.each(table)('a_only %d, b_only %d → p = %f (%s)', (a, b, p) => {
    expect(mcnemarExact(a, b)).toBeCloseTo(p, 12);
  });

  it('names a bad count', () => {
    expect(() => mcnemarExact(1.5, 2)).toThrow(/aOnly = 1.5 must be a whole number/);
    expect(() => mcnemarExact(1, -2)).toThrow(/bOnly = -2/);
  });
});

describe('winRate', () => {
  it('counts ties half and takes the Wilson interval of that share', () => {
    const r = winRate({ wins: 6, losses: 3, ties: 3 })!;
    expect(r.rate).toBe(7.5 / 12);
    expect(r.ci95[0]).toBeCloseTo(0.3543690134662527, 14); // = wilson(7.5, 12), Python above
    expect(r.ci95[1]).toBeCloseTo(0.835007484869937, 14);
    expect(r.n).toBe(12);
  });
  it('all ties is exactly 0.5; nothing judged is null', () => {
    expect(winRate({ wins: 0, losses: 0, ties: 8 })!.rate).toBe(0.5);
    expect(winRate({ wins: 0, losses: 0, ties: 0 })).toBeNull();
  });
});

describe('firthLogistic', () => {
  it('intercept only: the closed form logit((k + ½) / (n + 1))', () => {
    // 7 wins of 10: log(7.5/3.5) = 0.7621400520468967 (also what the Python minimiser gives).
    expect(firthLogistic([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], null).theta[0]).toBeCloseTo(0.7621400520468967, 9);
    // All 8 won (separation for the intercept): log(8.5/0.5) = 2.833213344056216, finite.
    expect(firthLogistic([1, 1, 1, 1, 1, 1, 1, 1], null).theta[0]).toBeCloseTo(2.833213344056216, 9);
  });
});

describe('lengthControlledWinRate', () => {
  it('matches an independent fit on mixed data', () => {
    // (outcome, len_a, len_b); Python minimiser: θ = [-0.08630782, 1.76614963], rate 0.4784364293229986, sd 65.31653695657785.
    const rows: [0 | 0.5 | 1, number, number][] = [
      [1, 100, 150], [1, 80, 200], [0, 120, 90], [0.5, 100, 100], [1, 60, 70],
      [0, 200, 180], [1, 50, 40], [0, 90, 130], [1, 110, 300], [0.5, 70, 95],
    ];
    const lc = lengthControlledWinRate(rows.map(([outcome, lengthA, lengthB]) => ({ outcome, lengthA, lengthB })))!;
    expect(lc.sd).toBeCloseTo(65.31653695657785, 10);
    expect(lc.intercept).toBeCloseTo(-0.08630782, 6);
    expect(lc.lengthCoef).toBeCloseTo(1.76614963, 6);
    expect(lc.rate).toBeCloseTo(0.4784364293229986, 7);
    expect(lc.interceptOnly).toBe(false);
    expect(lc.separated).toBe(false);
  });

  it('stays finite under perfect separation (a judge that always picks the longer answer)', () => {
    // Same generator as the Python check: len_a = 100 + (37i mod 50), d = (53i mod 80) − 20 (0 → 1).
    const items: LengthItem[] = [];
    for (let i = 0; i < 40; i++) {
      const lengthA = 100 + ((i * 37) % 50);
      const d = ((i * 53) % 80) - 20 || 1;
      items.push({ outcome: d > 0 ? 1 : 0, lengthA, lengthB: lengthA + d });
    }
    const lc = lengthControlledWinRate(items)!;
    // Python: θ = [0.27473178, 22.07636254], rate 0.5682541789251553; the raw rate is 33/40 = 0.825.
    expect(lc.intercept).toBeCloseTo(0.27473178, 5);
    expect(lc.lengthCoef).toBeCloseTo(22.07636254, 4);
    expect(lc.rate).toBeCloseTo(0.5682541789251553, 6);
    expect(Number.isFinite(lc.lengthCoef)).toBe(true);
    expect(lc.separated).toBe(true);
    expect(lc.iterations).toBeLessThan(20);
  });

  it('stays finite in the degenerate cases (all won, two items, huge differences)', () => {
    const allWon = lengthControlledWinRate(Array.from({ length: 20 }, (_, i) => ({ outcome: 1 as const, lengthA: 10, lengthB: 10 + 3 * i })))!;
    expect(allWon.separated).toBe(false); // nothing to separate from: only wins
    expect(allWon.rate).toBeGreaterThan(0.8);
    expect(allWon.rate).toBeLessThan(1);
    // Two items, two parameters, separated: the Python minimiser gives θ = [0, 1.44251670].
    const two = lengthControlledWinRate([{ outcome: 1, lengthA: 1, lengthB: 5 }, { outcome: 0, lengthA: 5, lengthB: 1 }])!;
    expect(two.rate).toBeCloseTo(0.5, 12);
    expect(two.lengthCoef).toBeCloseTo(1.4425167, 6);
    expect(two.separated).toBe(true);
    const huge = lengthControlledWinRate(Array.from({ length: 30 }, (_, i) => ({ outcome: (i % 2) as 0 | 1, lengthA: 0, lengthB: i % 2 ? 1e9 : 0 })))!;
    for (const v of [huge.rate, huge.intercept, huge.lengthCoef]) expect(Number.isFinite(v)).toBe(true);
    expect(huge.iterations).toBeLessThan(100);
  });

  it('fits the intercept alone when lengths do not vary, and is null with no items', () => {
    const same = lengthControlledWinRate([
      { outcome: 1, lengthA: 5, lengthB: 9 },
      { outcome: 0.5, lengthA: 1, lengthB: 5 },
    ])!;
    expect(same.interceptOnly).toBe(true);
    expect(same.rate).toBeCloseTo(2 / 3, 10); // (1.5 + ½) / (2 + 1)
    const ties = lengthControlledWinRate([0, 1, 2, 3].map((i) => ({ outcome: 0.5 as const, lengthA: 10, lengthB: 10 + 7 * i })))!;
    expect(ties.rate).toBeCloseTo(0.5, 12); // all ties: no preference at any length
    expect(ties.lengthCoef).toBeCloseTo(0, 9);
    expect(lengthControlledWinRate([])).toBeNull();
    expect(() => lengthControlledWinRate([{ outcome: 2 as 1, lengthA: 1, lengthB: 1 }])).toThrow(/item 0 has outcome 2/);
  });
});

describe('helpers', () => {
  it('mean is null when empty; excludes reads an interval against a null value', () => {
    expect(mean([])).toBeNull();
    expect(mean([1, 2, 4])).toBeCloseTo(7 / 3, 15);
    expect(excludes([0.55, 0.7], 0.5)).toBe(true);
    expect(excludes([0.3, 0.7], 0.5)).toBe(false);
  });
});
