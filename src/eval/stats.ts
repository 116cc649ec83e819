// The statistics of an evaluation (issue 13), pure float64 and deterministic:
//   - wilson: the Wilson score interval of a proportion (Wilson 1927), good at small n and at 0 or n
//     successes, where the textbook p ± z·se interval collapses to a point or leaves [0, 1];
//   - mcnemarExact: the exact (binomial) McNemar test of two models on the same items: only the
//     discordant items (one right, the other wrong) carry information, and under "no difference"
//     each is equally likely to go either way, so a_only ~ Binomial(a_only + b_only, 1/2);
//   - winRate: b's wins over a with ties counted half, and its Wilson interval on that share;
//   - lengthControlledWinRate: AlpacaEval-2's idea (Dubois et al. 2024) in its smallest form: a
//     logistic regression of the outcome on the length difference, read at zero difference, i.e.
//     "how often would b win if its answers were as long as a's". Fitted with Firth's penalty so
//     a judge whose verdict the length decides completely (perfect separation) still gets a finite fit.
// Functions return null (never NaN) when there is nothing to estimate from; callers say why.

/** The 97.5% quantile of the standard normal: a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

/** The significance level every test in the report uses. */
export const ALPHA = 0.05;

export type Interval = [lo: number, hi: number];

/**
 * The Wilson score interval for `k` successes in `n` trials (k may be fractional, e.g. wins + ties/2):
 * (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). Null when n = 0.
 */
export function wilson(k: number, n: number, z = Z95): Interval | null {
  if (!(n > 0)) return null;
  if (!(k >= 0 && k <= n)) throw new Error(`wilson: successes k = ${k} must be between 0 and n = ${n}`);
  const p = k / n;
  const z2 = z * z;
  const centre = p + z2 / (2 * n);
  const half = z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  const d = 1 + z2 / n;
  // Clamp float rounding at the ends (k = 0 gives lo = 0 exactly in exact arithmetic).
  return [Math.max(0, (centre - half) / d), Math.min(1, (centre + half) / d)];
}

/** log(Σ exp(xs)), without overflow. */
function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/**
 * The two-sided exact McNemar p-value: 2·P(X ≤ min(aOnly, bOnly)) for X ~ Binomial(aOnly + bOnly, ½),
 * capped at 1 (1 when there are no discordant items). Past 1000 discordant items the terms are summed
 * in log space, so thousands neither overflow nor underflow.
 */
export function mcnemarExact(aOnly: number, bOnly: number): number {
  for (const [name, v] of [['aOnly', aOnly], ['bOnly', bOnly]] as const)
    if (!Number.isInteger(v) || v < 0) throw new Error(`mcnemarExact: ${name} = ${v} must be a whole number ≥ 0`);
  const n = aOnly + bOnly;
  const k = Math.min(aOnly, bOnly);
  if (n === 0) return 1;
  // Up to 1000 items the terms C(n, i)/2ⁿ are summed directly (2⁻ⁿ is exact), so small cases
  // come out exact (1/64, not 1/64 + ε); beyond, in log space.
  if (n <= 1000) {
    let term = 2 ** -n;
    let sum = 0;
    for (let i = 0; i <= k; i++) {
      sum += term;
      term = (term * (n - i)) / (i + 1);
    }
    return Math.min(1, 2 * sum);
  }
  // log C(n, i) by the recurrence C(n, i+1) = C(n, i)·(n−i)/(i+1).
  const logTerms: number[] = [];
  let logC = 0;
  for (let i = 0; i <= k; i++) {
    logTerms.push(logC - n * Math.LN2);
    logC += Math.log(n - i) - Math.log(i + 1);
  }
  return Math.min(1, 2 * Math.exp(logSumExp(logTerms)));
}

export interface WinCounts {
  wins: number;
  losses: number;
  ties: number;
}

export interface WinRate {
  /** (wins + ties/2) / n. */
  rate: number;
  /** Wilson interval on the same share (ties as half a success). */
  ci95: Interval;
  n: number;
}

/**
 * b's win rate over a, ties counted half, with the Wilson interval of (wins + ties/2) out of n.
 * Treating a tie as half a win keeps the rate at 0.5 for a judge that cannot tell the models apart;
 * the interval is slightly conservative with ties (they vary less than a coin flip). Null when n = 0.
 */
export function winRate(c: WinCounts): WinRate | null {
  for (const [name, v] of Object.entries(c))
    if (!Number.isInteger(v) || v < 0) throw new Error(`winRate: ${name} = ${v} must be a whole number ≥ 0`);
  const n = c.wins + c.losses + c.ties;
  if (n === 0) return null;
  const k = c.wins + c.ties / 2;
  return { rate: k / n, ci95: wilson(k, n)!, n };
}

/** One judged item: b's outcome against a (1 win, 0.5 tie, 0 loss) and both answers' lengths. */
export interface LengthItem {
  outcome: 0 | 0.5 | 1;
  lengthA: number;
  lengthB: number;
}

export interface LengthControlled {
  /** The predicted win rate at zero length difference: σ(intercept). */
  rate: number;
  intercept: number;
  /** The weight on tanh((len_b − len_a) / sd): > 0 when the judge favours the longer answer. */
  lengthCoef: number;
  /** sd of len_b − len_a over the items (the scale of the length feature). */
  sd: number;
  n: number;
  /** True when the length feature could not be fitted (fewer than two distinct length differences). */
  interceptOnly: boolean;
  /**
   * True when length alone splits the wins from the losses (every b win has a length difference at
   * least as large as every b loss's, or every one at most as large): the verdicts are fully explained by length, and where
   * the fit crosses zero difference depends on the penalty more than on the data.
   */
  separated: boolean;
  iterations: number;
}

/** The method, in words, for eval.md. */
export const LC_METHOD =
  "Length-controlled win rate (AlpacaEval-2 style): a logistic regression of b's outcome (win 1, tie ½, loss 0) on tanh((len_b − len_a) / sd), sd the standard deviation of the length differences, fitted with Firth's bias-reduced penalty so that a verdict decided entirely by length (perfect separation) still has a finite fit; the rate is the fit's prediction at zero length difference, σ(intercept).";

const sigmoid = (t: number) => (t >= 0 ? 1 / (1 + Math.exp(-t)) : Math.exp(t) / (1 + Math.exp(t)));

/** The inverse of a 1×1 or 2×2 symmetric matrix, or null when singular. */
function invert(m: number[][]): number[][] | null {
  if (m.length === 1) return m[0]![0]! !== 0 ? [[1 / m[0]![0]!]] : null;
  const [[a, b], [c, d]] = m as [[number, number], [number, number]];
  const det = a * d - b * c;
  return det !== 0 && Number.isFinite(det) ? [[d / det, -b / det], [-c / det, a / det]] : null;
}
const matVec = (m: number[][], v: number[]) => m.map((r) => r.reduce((s, x, j) => s + x * v[j]!, 0));

/**
 * Firth-penalised logistic regression of y (in [0, 1], fractional allowed) on [1, x]: maximises
 * ℓ(θ) + ½·log det I(θ) (Firth 1993; Heinze & Schemper 2002 for separation). The penalty is
 * Jeffreys' prior: estimates stay finite under separation and the O(1/n) bias of the plain fit is
 * removed. Its gradient is the modified score Σ (y − p + h·(½ − p))·xᵢ, h the hat values. Newton
 * steps use that gradient's Jacobian by central differences (the Fisher information alone makes the
 * step overshoot when h is large, i.e. at small n), fall back to the Fisher step where that Jacobian
 * is not negative definite, and are halved while they lower the penalised likelihood. With x null the
 * intercept alone is fitted.
 */
export function firthLogistic(y: readonly number[], x: readonly number[] | null, maxIter = 100): { theta: number[]; iterations: number } {
  const k = x ? 2 : 1;
  const rows = y.map((_, i) => (x ? [1, x[i]!] : [1]));
  const evaluate = (theta: number[]) => {
    const info = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    const p = rows.map((r) => sigmoid(r.reduce((s, v, j) => s + v * theta[j]!, 0)));
    let ll = 0;
    rows.forEach((r, i) => {
      const eta = r.reduce((s, v, j) => s + v * theta[j]!, 0);
      // log σ(η) and log(1 − σ(η)), stable for large |η|.
      const soft = Math.log1p(Math.exp(-Math.abs(eta)));
      ll += y[i]! * (Math.min(0, eta) - soft) + (1 - y[i]!) * (-Math.max(0, eta) - soft);
      const w = p[i]! * (1 - p[i]!);
      for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) info[a]![b]! += w * r[a]! * r[b]!;
    });
    const inv = invert(info);
    const det = k === 2 ? info[0]![0]! * info[1]![1]! - info[0]![1]! ** 2 : info[0]![0]!;
    const score = new Array<number>(k).fill(0);
    rows.forEach((r, i) => {
      const w = p[i]! * (1 - p[i]!);
      const h = inv ? w * r.reduce((s, ra, a) => s + ra * r.reduce((t, rb, b) => t + inv[a]![b]! * rb, 0), 0) : 0;
      for (let a = 0; a < k; a++) score[a]! += (y[i]! - p[i]! + h * (0.5 - p[i]!)) * r[a]!;
    });
    return { penalised: det > 0 ? ll + 0.5 * Math.log(det) : -Infinity, score, inv };
  };
  let theta = new Array<number>(k).fill(0);
  let cur = evaluate(theta);
  for (let it = 1; it <= maxIter; it++) {
    // The Jacobian of the modified score, column j by a central difference in θⱼ.
    const jac = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    for (let j = 0; j < k; j++) {
      const e = 1e-5 * Math.max(1, Math.abs(theta[j]!));
      const up = evaluate(theta.map((t, i) => (i === j ? t + e : t))).score;
      const down = evaluate(theta.map((t, i) => (i === j ? t - e : t))).score;
      for (let a = 0; a < k; a++) jac[a]![j] = (up[a]! - down[a]!) / (2 * e);
    }
    const negDef = jac[0]![0]! < 0 && (k === 1 || jac[0]![0]! * jac[1]![1]! - jac[0]![1]! * jac[1]![0]! > 0);
    const jinv = negDef ? invert(jac) : null;
    const step = jinv ? matVec(jinv, cur.score).map((v) => -v) : cur.inv ? matVec(cur.inv, cur.score) : cur.score;
    let scale = 1;
    let next = theta.map((t, j) => t + step[j]!);
    let cand = evaluate(next);
    // Never accept a step that lowers the penalised likelihood.
    while (!(cand.penalised >= cur.penalised - 1e-12) && scale > 1e-6) {
      scale /= 2;
      next = theta.map((t, j) => t + scale * step[j]!);
      cand = evaluate(next);
    }
    const moved = Math.max(...next.map((t, j) => Math.abs(t - theta[j]!)));
    theta = next;
    cur = cand;
    if (moved < 1e-12 || Math.max(...cur.score.map(Math.abs)) < 1e-13) return { theta, iterations: it };
  }
  return { theta, iterations: maxIter };
}

/**
 * The length-controlled win rate of b over a (method: LC_METHOD). Null when there are no items.
 * When the length differences do not vary (sd = 0, or a single item) there is nothing to control
 * for and the intercept alone is fitted (interceptOnly: true).
 */
export function lengthControlledWinRate(items: readonly LengthItem[]): LengthControlled | null {
  const n = items.length;
  if (n === 0) return null;
  for (const [i, it] of items.entries()) {
    if (it.outcome !== 0 && it.outcome !== 0.5 && it.outcome !== 1) throw new Error(`lengthControlledWinRate: item ${i} has outcome ${it.outcome}; use 1 (b wins), 0.5 (tie) or 0 (a wins)`);
    if (!(Number.isFinite(it.lengthA) && Number.isFinite(it.lengthB) && it.lengthA >= 0 && it.lengthB >= 0))
      throw new Error(`lengthControlledWinRate: item ${i} has lengths ${it.lengthA}, ${it.lengthB}; they must be finite and ≥ 0`);
  }
  const diff = items.map((it) => it.lengthB - it.lengthA);
  const mean = diff.reduce((s, d) => s + d, 0) / n;
  // Population sd (÷ n), as numpy's default; any fixed scale would do, this one makes tanh saturate
  // only for differences well beyond the typical one.
  const sd = Math.sqrt(diff.reduce((s, d) => s + (d - mean) ** 2, 0) / n);
  const y = items.map((it) => it.outcome);
  const interceptOnly = !(sd > 0) || n < 2;
  const x = interceptOnly ? null : diff.map((d) => Math.tanh(d / sd));
  const { theta, iterations } = firthLogistic(y, x);
  const winX = x ? x.filter((_, i) => y[i] === 1) : [];
  const lossX = x ? x.filter((_, i) => y[i] === 0) : [];
  const separated =
    winX.length > 0 && lossX.length > 0 && (Math.min(...winX) >= Math.max(...lossX) || Math.max(...winX) <= Math.min(...lossX));
  return { rate: sigmoid(theta[0]!), intercept: theta[0]!, lengthCoef: interceptOnly ? 0 : theta[1]!, sd, n, interceptOnly, separated, iterations };
}

/** The mean of xs, or null when empty. */
export function mean(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  return xs.reduce((s, v) => s + v, 0) / xs.length;
}

/** p < ALPHA. */
export function significant(p: number): boolean {
  return p < ALPHA;
}

/** True when a 95% interval of a rate excludes `nullValue` (0.5 for a win rate: no preference). */
export function excludes(ci: Interval, nullValue: number): boolean {
  return ci[0] > nullValue || ci[1] < nullValue;
}
