// Formatting helpers: countdowns, local times, datetime-local values.

function plural(n, unit) {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** "5 seconds remaining", "3 minutes remaining", "2 hours remaining", "4 days remaining", "closed". */
export function formatRemaining(seconds) {
  const s = Math.floor(Number(seconds) || 0);
  if (s <= 0) return "closed";
  if (s < 60) return `${plural(s, "second")} remaining`;
  if (s < 3600) return `${plural(Math.floor(s / 60), "minute")} remaining`;
  if (s < 86400) return `${plural(Math.floor(s / 3600), "hour")} remaining`;
  return `${plural(Math.floor(s / 86400), "day")} remaining`;
}

/** A count the API may have stopped at a cap: "1,234", or "10,000+" when capped. */
export function formatCount(n, capped = false) {
  return `${Number(n).toLocaleString("en-US")}${capped ? "+" : ""}`;
}

/** An API time (ISO UTC) shown in the user's local time zone. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString();
}

/** "12 s ago", "3 min ago"... for recent times. */
export function formatAgo(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatTime(iso);
}

/** The value for <input type="datetime-local"> showing `date` in local time (to the second). */
export function toLocalInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** The browser's time zone ("Europe/Paris"), named next to datetime-local inputs. */
export function localTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** A datetime-local value (local wall time) as a UTC ISO string, or null if it is not a date. */
export function localInputToIso(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export function formatPercent(share) {
  return `${Math.round((share || 0) * 1000) / 10}%`;
}

export function formatNumber(value, digits = 2) {
  if (value === null || value === undefined) return "—";
  return String(Number(Number(value).toFixed(digits)));
}
