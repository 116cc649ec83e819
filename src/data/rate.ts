// Progress rates for ETAs: an exponentially weighted rate of completions, so an ETA follows the
// recent pace (a run that slowed down, a request stuck on a long prompt) rather than the average
// since the start, which keeps promising "25 s" while nothing finishes.
//
//   rate(now) = Σ_i exp(−(now − t_i)/τ) / ∫_start^now exp(−(now − u)/τ) du
//
// the completions' decayed count over the decayed time observed: while now − start ≪ τ it is the
// plain average (count / elapsed); later, completions older than a few τ stop counting; and while
// nothing completes it decays toward 0, so the ETA grows instead of standing still.

/** τ of the studio's and the CLI's ETAs: about the last minute of work counts. */
export const RATE_TIME_CONSTANT_MS = 60_000;

export class DecayingRate {
  private decayed = 0;
  private last: number;

  constructor(
    private readonly start: number = Date.now(),
    readonly tauMs: number = RATE_TIME_CONSTANT_MS,
  ) {
    this.last = start;
  }

  /** `n` completions at `now`. */
  add(n = 1, now: number = Date.now()): void {
    this.decayed = this.decayed * Math.exp(-Math.max(0, now - this.last) / this.tauMs) + n;
    this.last = Math.max(this.last, now);
  }

  /** Completions per minute at `now` (0 before the first). */
  perMinute(now: number = Date.now()): number {
    const count = this.decayed * Math.exp(-Math.max(0, now - this.last) / this.tauMs);
    const window = this.tauMs * (1 - Math.exp(-Math.max(0, now - this.start) / this.tauMs));
    return window > 0 ? (count / window) * 60_000 : 0;
  }

  /** Seconds until `pending` more complete at the current rate: 0 when none is pending, null when the rate is 0. */
  etaSeconds(pending: number, now: number = Date.now()): number | null {
    if (pending <= 0) return 0;
    const r = this.perMinute(now);
    return r > 0 ? (pending / r) * 60 : null;
  }
}
