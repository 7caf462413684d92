import {
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

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

const timeLabel = (t) => new Date(t).toLocaleTimeString();

export function ObservationChart({ readings }) {
  const { data, attributes } = toSeries(readings);
  if (data.length === 0) return <p className="muted">No readings yet.</p>;
  return (
    <div className="chart" data-testid="observation-chart">
      <ResponsiveContainer width="100%" height={320}>
        <LineChart data={data} margin={{ top: 10, right: 20, bottom: 10, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis
            dataKey="t"
            type="number"
            scale="time"
            domain={["dataMin", "dataMax"]}
            tickFormatter={timeLabel}
          />
          <YAxis domain={["auto", "auto"]} />
          <Tooltip labelFormatter={timeLabel} />
          <Legend />
          {attributes.map(({ name, units }, i) => (
            <Line
              key={name}
              type="monotone"
              dataKey={name}
              name={`${name} (${units})`}
              stroke={COLORS[i % COLORS.length]}
              dot={data.length < 60}
              isAnimationActive={false}
              connectNulls
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
