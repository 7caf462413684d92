import {
  Area,
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
const DAY_MS = 24 * 3600 * 1000;

/** Pivot readings (newest first) into rows by time, one column per attribute. */
export function toSeries(readings) {
  const rows = new Map();
  const attributes = new Map();
  for (const reading of readings) {
    const t = new Date(reading.valid_at).getTime();
    if (!rows.has(t)) rows.set(t, { t });
    rows.get(t)[reading.name] = reading.value;
    attributes.set(reading.name, reading.units);
  }
  const data = [...rows.values()].sort((a, b) => a.t - b.t);
  return { data, attributes: [...attributes.entries()].map(([name, units]) => ({ name, units })) };
}

/** The key of an attribute's [min, max] band in a row of `toBandSeries`. */
export const bandKey = (name) => `${name} min–max`;

/**
 * Pivot buckets (by attribute, then oldest first) into rows by bucket start: per attribute its
 * mean, and its [min, max] as a band. `units` maps attribute names to units, where known.
 */
export function toBandSeries(buckets, units = {}) {
  const rows = new Map();
  const names = [];
  for (const bucket of buckets) {
    const t = new Date(bucket.start).getTime();
    if (!rows.has(t)) rows.set(t, { t });
    rows.get(t)[bucket.attribute] = bucket.mean;
    rows.get(t)[bandKey(bucket.attribute)] = [bucket.min, bucket.max];
    if (!names.includes(bucket.attribute)) names.push(bucket.attribute);
  }
  const data = [...rows.values()].sort((a, b) => a.t - b.t);
  return { data, attributes: names.map((name) => ({ name, units: units[name] ?? "" })) };
}

const label = (name, units) => (units ? `${name} (${units})` : name);

function timeLabel(span) {
  if (span <= DAY_MS) return (t) => new Date(t).toLocaleTimeString();
  return (t) =>
    new Date(t).toLocaleString([], {
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
}

const tooltipValue = (value) => (Array.isArray(value) ? `${value[0]} – ${value[1]}` : value);

/**
 * A line per attribute: raw `readings`, or `buckets` drawn as the mean with a min–max band.
 * `domain` ([from, to] in ms) spans the x axis over the whole range asked for.
 */
export function ObservationChart({ readings, buckets, units, domain }) {
  const banded = buckets !== undefined;
  const { data, attributes } = banded ? toBandSeries(buckets, units) : toSeries(readings);
  if (data.length === 0) return <p className="muted">No readings in this range.</p>;
  const span = domain ? domain[1] - domain[0] : data[data.length - 1].t - data[0].t;
  const format = timeLabel(span);
  return (
    <div className="chart" data-testid="observation-chart">
      <ResponsiveContainer width="100%" height={320}>
        <ComposedChart data={data} margin={{ top: 10, right: 20, bottom: 10, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis
            dataKey="t"
            type="number"
            scale="time"
            domain={domain ?? ["dataMin", "dataMax"]}
            allowDataOverflow
            tickFormatter={format}
          />
          <YAxis domain={["auto", "auto"]} />
          <Tooltip labelFormatter={format} formatter={tooltipValue} />
          <Legend />
          {banded &&
            attributes.map(({ name }, i) => (
              <Area
                key={bandKey(name)}
                dataKey={bandKey(name)}
                stroke="none"
                fill={COLORS[i % COLORS.length]}
                fillOpacity={0.15}
                legendType="none"
                isAnimationActive={false}
                connectNulls
              />
            ))}
          {attributes.map(({ name, units: unit }, i) => (
            <Line
              key={name}
              type="monotone"
              dataKey={name}
              name={banded ? `${label(name, unit)}, mean` : label(name, unit)}
              stroke={COLORS[i % COLORS.length]}
              dot={data.length < 60}
              isAnimationActive={false}
              connectNulls
            />
          ))}
        </ComposedChart>
      </ResponsiveContainer>
    </div>
  );
}
