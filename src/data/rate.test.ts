import { describe, expect, it } from 'vitest';
import { DecayingRate } from './rate';

describe('DecayingRate', () => {
  it('is the plain average early on', () => {
    const r = new DecayingRate(0, 60_000);
    for (let t = 1; t <= 5; t++) r.add(1, t * 1000); // one per second
    expect(Math.abs(r.perMinute(5000) - 60)).toBeLessThan(1);
    expect(Math.abs(r.etaSeconds(10, 5000)! - 10)).toBeLessThan(0.2);
    expect(r.etaSeconds(0, 5000)).toBe(0);
    expect(new DecayingRate(0).etaSeconds(3, 1000)).toBeNull();
  });

  it('follows the recent pace when the work slows down (a cumulative average would not)', () => {
    const r = new DecayingRate(0, 60_000);
    for (let t = 1; t <= 600; t++) r.add(1, t * 1000); // 10 minutes at one per second
    for (let k = 1; k <= 10; k++) r.add(1, 600_000 + k * 30_000); // then 5 minutes at one per 30 s
    const now = 900_000;
    const cumulative = (610 / now) * 60_000; // 40.7/min
    expect(cumulative).toBeGreaterThan(40);
    expect(r.perMinute(now)).toBeGreaterThan(2 * 0.9);
    expect(r.perMinute(now)).toBeLessThan(2 * 1.5); // close to the recent 2/min
  });

  it('grows the ETA while nothing completes (a stuck request)', () => {
    const r = new DecayingRate(0, 60_000);
    for (let t = 1; t <= 14; t++) r.add(1, t * 2000); // 14 done in 28 s
    const early = r.etaSeconds(18, 28_000)!;
    expect(early).toBeCloseTo(36, -1);
    const later = r.etaSeconds(18, 28_000 + 5 * 60_000)!; // five minutes with nothing done
    expect(later).toBeGreaterThan(60 * early);
    expect(r.etaSeconds(18, 28_000 + 15 * 60_000)! > r.etaSeconds(18, 28_000 + 10 * 60_000)!).toBe(true);
  });
});
