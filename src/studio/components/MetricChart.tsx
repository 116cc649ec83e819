// A line chart of training metrics by step (recharts), with axes from chartScale.ts: nice ticks
// whose labels differ, axis titles, and a y axis as wide as its longest label (nothing clipped).
import { CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import type { Metrics } from '../../train/trainer';
import { bytesUnit, niceAxis } from '../chartScale';

export interface Series {
  key: string;
  label: string;
  color: string;
}

// Tick labels are 11 px: about 6.6 px per character of digits; the rotated title takes ~24 px.
const TICK_FONT = 11;
const CHAR_PX = 6.6;
const HEIGHT = 210;

export function MetricChart({
  title,
  yTitle,
  series,
  history,
  format,
  fromZero = false,
  bytes = false,
}: {
  title: string;
  /** The y axis's title: what is measured, with its unit. */
  yTitle: string;
  series: Series[];
  history: Metrics[];
  /** The latest value and the tooltip, at full precision. */
  format: (v: number) => string;
  /** The y axis starts at 0 (rates, sizes). */
  fromZero?: boolean;
  /** Values are bytes: ticks in KiB/MiB/GiB. */
  bytes?: boolean;
}) {
  const points = history.filter((m) => series.some((s) => typeof m[s.key] === 'number' && Number.isFinite(m[s.key])));
  const last = points.at(-1);
  const latest = last
    ? series
        .filter((s) => last[s.key] !== undefined)
        .map((s) => `${series.length > 1 ? `${s.label} ` : ''}${format(last[s.key]!)}`)
        .join(', ')
    : null;
  const values = points.flatMap((m) => series.map((s) => m[s.key]).filter((v): v is number => typeof v === 'number'));
  const y = niceAxis(values, { fromZero, unit: bytes ? bytesUnit(Math.max(0, ...values)) : null });
  const x = niceAxis(
    points.map((m) => m.step ?? 0),
    { integer: true },
  );
  const yWidth = Math.ceil(y.widest * CHAR_PX) + 34;
  return (
    <figure className="train-chart" aria-label={`${title} chart`}>
      <figcaption>
        <strong>{title}</strong>
        {latest !== null && (
          <span className="train-chart-latest" data-testid={`latest-${title}`}>
            {' '}
            {latest} <span className="muted">at step {last!.step}</span>
          </span>
        )}
      </figcaption>
      {points.length ? (
        <LineChart responsive style={{ width: '100%', height: HEIGHT }} data={points} margin={{ top: 10, right: 16, bottom: 4, left: 2 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
          <XAxis
            dataKey="step"
            type="number"
            domain={x.domain}
            ticks={x.ticks}
            tickFormatter={x.format}
            interval={0}
            tick={{ fontSize: TICK_FONT }}
            height={38}
            label={{ value: 'step', position: 'insideBottom', offset: 0, fontSize: TICK_FONT + 1, fill: 'var(--muted)' }}
          />
          <YAxis
            width={yWidth}
            domain={y.domain}
            ticks={y.ticks}
            tickFormatter={y.format}
            interval={0}
            tick={{ fontSize: TICK_FONT }}
            label={{ value: yTitle, angle: -90, position: 'insideLeft', offset: 12, fontSize: TICK_FONT + 1, fill: 'var(--muted)', style: { textAnchor: 'middle' } }}
          />
          <Tooltip formatter={(v) => (typeof v === 'number' ? format(v) : String(v))} labelFormatter={(l) => `step ${String(l)}`} />
          {series.length > 1 && <Legend wrapperStyle={{ fontSize: 12 }} />}
          {series.map((s) => (
            <Line
              key={s.key}
              type="linear"
              dataKey={(m: Metrics) => m[s.key]}
              name={s.label}
              stroke={s.color}
              strokeWidth={2}
              dot={points.length <= 60}
              isAnimationActive={false}
              connectNulls
            />
          ))}
        </LineChart>
      ) : (
        <p className="muted train-chart-empty">No points yet.</p>
      )}
    </figure>
  );
}
