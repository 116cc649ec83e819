// Axes for the studio's charts: a "nice" domain and ticks (steps of 1, 2, 2.5 or 5 × 10^k) and a
// label format with just enough digits to tell the ticks apart. Recharts' own ticks, formatted
// to a fixed precision, can print one value on every tick ("11.69" four times for a loss that
// moves in the fourth decimal); here the digits follow the tick step instead.

export interface AxisUnit {
  /** Values are divided by this before ticks are chosen (1024² for MiB). */
  divisor: number;
  /** Shown after every tick label ("MiB"). */
  suffix: string;
}

export interface NiceAxis {
  domain: [number, number];
  ticks: number[];
  /** A tick's label (the value in the data's units, as in `ticks`). */
  format: (v: number) => string;
  /** The longest label, in characters (for the axis width). */
  widest: number;
  unit: AxisUnit | null;
}

const STEPS = [1, 2, 2.5, 5, 10];

/** The nice step at or above `raw`: 1, 2, 2.5 or 5 times a power of ten. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return STEPS.find((s) => s >= m - 1e-9)! * power;
}

/** Digits after the point that tell ticks `step` apart (2.5 × 10^k needs one more than 1 × 10^k). */
export function decimalsFor(step: number): number {
  if (!(step > 0)) return 0;
  const e = Math.floor(Math.log10(step) + 1e-9);
  const m = step / 10 ** e;
  return Math.max(0, -e + (Math.abs(m - Math.round(m)) > 1e-6 ? 1 : 0));
}

/** Bytes in the binary unit their largest value reads best in. */
export function bytesUnit(maxBytes: number): AxisUnit {
  const units: [number, string][] = [
    [2 ** 30, 'GiB'],
    [2 ** 20, 'MiB'],
    [2 ** 10, 'KiB'],
  ];
  const u = units.find(([d]) => maxBytes >= d);
  return u ? { divisor: u[0], suffix: u[1] } : { divisor: 1, suffix: 'B' };
}

/**
 * A nice axis over `values` (non-finite ones ignored): about `count` ticks covering them; from 0
 * when `fromZero`; a flat series gets a small band around its value, so its ticks differ;
 * `integer`: ticks on whole numbers only.
 */
export function niceAxis(values: readonly number[], o: { count?: number; fromZero?: boolean; unit?: AxisUnit | null; integer?: boolean } = {}): NiceAxis {
  const count = Math.max(2, o.count ?? 5);
  const unit = o.unit ?? null;
  const div = unit?.divisor ?? 1;
  const finite = values.filter(Number.isFinite).map((v) => v / div);
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (o.fromZero) {
    lo = Math.min(0, lo);
    hi = Math.max(0, hi);
  }
  if (hi - lo <= Math.abs(hi) * 1e-12) {
    // Flat: ±1% of the value (±1 around 0), never below 0 when the axis starts there.
    const pad = hi === 0 ? 1 : Math.abs(hi) * 0.01;
    hi += pad;
    if (!o.fromZero || lo !== 0) lo -= pad;
  }
  let step = niceStep((hi - lo) / (count - 1));
  // Whole numbers (steps): no tick between two integers, none at 2.5.
  if (o.integer) step = step < 1 ? 1 : step === 2.5 ? 2 : step;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const decimals = decimalsFor(step);
  // Round each tick to the digits shown, so 0.1 + 0.2 does not print as 0.30000000000000004.
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toFixed(decimals)) * div);
  const exponential = (Math.max(Math.abs(ticks[0]!), Math.abs(ticks.at(-1)!)) / div >= 1e6) || (step < 1e-4 && decimals > 5);
  const digits = exponential ? Math.max(0, Math.floor(Math.log10(Math.max(Math.abs(lo), Math.abs(hi)))) - Math.floor(Math.log10(step))) : 0;
  const suffix = unit ? ` ${unit.suffix}` : '';
  const format = (v: number) => {
    const x = v / div;
    if (x === 0) return `0${suffix}`;
    return `${exponential ? x.toExponential(Math.min(digits, 20)) : x.toFixed(decimals)}${suffix}`;
  };
  const domain: [number, number] = [ticks[0]!, ticks.at(-1)!];
  return { domain, ticks, format, widest: Math.max(...ticks.map((t) => format(t).length)), unit };
}
