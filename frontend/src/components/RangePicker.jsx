const HOUR_MS = 3600 * 1000;

/**
 * The ranges the device chart shows, ending now. The last hour is the raw readings, refreshed
 * as polls come in; longer ranges are the API's buckets (min, max, mean per bucket), a few
 * hundred points at most whatever the poll interval.
 */
export const RANGES = [
  { key: "hour", label: "Last hour", ms: HOUR_MS, bucket: null, refreshMs: 3000 },
  { key: "day", label: "Last day", ms: 24 * HOUR_MS, bucket: "5m", refreshMs: 60000 },
  { key: "week", label: "Last week", ms: 7 * 24 * HOUR_MS, bucket: "1h", refreshMs: 60000 },
  { key: "month", label: "Last 30 days", ms: 30 * 24 * HOUR_MS, bucket: "1d", refreshMs: 60000 },
];

export const rangeOf = (key) => RANGES.find((range) => range.key === key) ?? RANGES[0];

/** Buttons choosing one of RANGES by key; the chosen one is pressed. */
export function RangePicker({ value, onChange }) {
  return (
    <div className="button-row" role="group" aria-label="Chart range">
      {RANGES.map((range) => (
        <button
          key={range.key}
          type="button"
          className={range.key === value ? undefined : "secondary"}
          aria-pressed={range.key === value}
          onClick={() => onChange(range.key)}
        >
          {range.label}
        </button>
      ))}
    </div>
  );
}
