// Schedules' rules as the UI writes and shows them: a time and weekdays as a cron rule.

// Cron's weekday numbers, Monday first as a week is shown.
export const WEEKDAYS = [
  ["Mon", 1],
  ["Tue", 2],
  ["Wed", 3],
  ["Thu", 4],
  ["Fri", 5],
  ["Sat", 6],
  ["Sun", 0],
];

export const ACTIONS = { switch_on: "Switch on", switch_off: "Switch off", poll: "Poll" };

/** "07:30" and weekdays [1, 2] as the cron rule "30 7 * * 1,2" (every day: "*"). */
export function cronFor(time, days) {
  const [hours, minutes] = time.split(":").map(Number);
  const sorted = [...days].sort((a, b) => a - b);
  const weekdays = sorted.length === 7 ? "*" : sorted.join(",");
  return `${minutes} ${hours} * * ${weekdays}`;
}

/** A rule the UI wrote ("30 7 * * 1,2") in words ("07:30 on Mon, Tue"); others as they are. */
export function describeCron(cron) {
  const match = /^(\d{1,2}) (\d{1,2}) \* \* ([\d,]+|\*)$/.exec(cron);
  if (!match) return cron;
  const [, minutes, hours, weekdays] = match;
  const time = `${hours.padStart(2, "0")}:${minutes.padStart(2, "0")}`;
  if (weekdays === "*") return `${time} every day`;
  const numbers = new Set(weekdays.split(",").map(Number));
  const names = WEEKDAYS.filter(([, n]) => numbers.has(n)).map(([name]) => name);
  return `${time} on ${names.join(", ")}`;
}

/** "2027-03-28T03:00:00+02:00" (the API's local time) as "2027-03-28 03:00 (UTC+02:00)". */
export function formatZoned(local) {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}):\d{2}([+-]\d{2}:\d{2})$/.exec(local);
  return match ? `${match[1]} ${match[2]} (UTC${match[3]})` : local;
}

/** Every IANA zone the browser knows, with `current` in it even if the list lacks it. */
export function zoneNames(current) {
  const names = Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : [];
  return names.includes(current) ? names : [current, ...names];
}
