/** Whether the device answers its polls. */
export function OnlineBadge({ online }) {
  return (
    <span className={`badge ${online ? "online" : "offline"}`}>
      {online ? "online" : "offline"}
    </span>
  );
}

/** The device's switch: on, off, or "unknown" while the API does not know it. */
export function OnOff({ isOn }) {
  if (isOn === null || isOn === undefined) return <span className="muted">unknown</span>;
  return <span className={`badge ${isOn ? "on" : "off"}`}>{isOn ? "on" : "off"}</span>;
}

/** "paused" while the owner has paused polling; otherwise nothing. */
export function PausedBadge({ paused }) {
  return paused ? <span className="badge">paused</span> : null;
}
