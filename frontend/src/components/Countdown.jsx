import { formatRemaining } from "../format.js";
import { useNow } from "../hooks.js";

/** Add when we received a poll, so countdowns can tick locally. */
export function stamp(poll) {
  return { ...poll, receivedAt: Date.now() };
}

/** Seconds left, from the server's seconds_remaining and when we received it (no clock skew). */
export function secondsLeft(poll, now) {
  if (poll.status !== "open") return 0;
  return poll.seconds_remaining - (now - (poll.receivedAt ?? now)) / 1000;
}

/** A countdown that ticks every second without refetching. */
export function Countdown({ poll }) {
  const now = useNow(1000);
  const left = secondsLeft(poll, now);
  return (
    <span className="countdown" data-testid="countdown">
      {left > 0 ? formatRemaining(left) : poll.status === "open" ? "closing…" : "closed"}
    </span>
  );
}
