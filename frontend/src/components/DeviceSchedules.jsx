import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api.js";
import { formatTime, localTimeZone } from "../format.js";
import { useAuth } from "../auth.jsx";
import { ACTIONS, WEEKDAYS, cronFor, describeCron, formatZoned, zoneNames } from "../schedules.js";
import { ConfirmButton } from "./ConfirmButton.jsx";
import { ErrorMessage, FieldError, Loading } from "./Feedback.jsx";
import { InputField } from "./InputField.jsx";

const SHOWN_RUNS = 3;

/** A device's schedules: each with its next runs, paused or resumed, deleted; and a new one. */
export function DeviceSchedules({ deviceId }) {
  const { signedIn } = useAuth();
  const queryClient = useQueryClient();
  const schedules = useQuery({
    queryKey: ["schedules", deviceId],
    queryFn: () => api.schedules(deviceId),
    enabled: signedIn,
    refetchInterval: 30000,
  });
  const reload = () => queryClient.invalidateQueries({ queryKey: ["schedules", deviceId] });
  // Pausing or resuming: its buttons stay disabled until the list shows the change.
  const change = useMutation({ mutationFn: (send) => send(), onSuccess: reload });
  const busy = change.isPending;
  const error = change.error;
  const act = (send) => change.mutate(send);

  return (
    <div className="panel">
      <h2>Schedules</h2>
      {schedules.isPending && <Loading what="Loading the schedules" />}
      <ErrorMessage error={schedules.error} />
      <ErrorMessage error={error} />
      {schedules.data && schedules.data.items.length === 0 && (
        <p className="muted">No schedules yet.</p>
      )}
      <ul className="schedules">
        {schedules.data?.items.map((schedule) => (
          <li key={schedule.id} data-testid={`schedule-${schedule.id}`}>
            <ScheduleItem
              schedule={schedule}
              busy={busy}
              onPause={() =>
                act(() => api.updateSchedule(deviceId, schedule.id, { paused: !schedule.paused }))
              }
              onDelete={async () => {
                await api.deleteSchedule(deviceId, schedule.id);
                await reload();
              }}
            />
          </li>
        ))}
      </ul>
      <ScheduleForm deviceId={deviceId} />
    </div>
  );
}

function ScheduleItem({ schedule, busy, onPause, onDelete }) {
  const runs = schedule.next_runs.slice(0, SHOWN_RUNS);
  return (
    <>
      <p>
        <strong>{ACTIONS[schedule.action] ?? schedule.action}</strong> at{" "}
        {describeCron(schedule.cron)} ({schedule.timezone})
        {schedule.paused && <span className="badge"> paused</span>}
        {schedule.skipped_count > 0 && (
          <span className="muted"> · {schedule.skipped_count} missed and skipped</span>
        )}
      </p>
      {runs.length > 0 ? (
        <ol className="muted" aria-label="Next runs">
          {runs.map((next) => (
            <li key={next.at}>
              {formatTime(next.at)} your time · {formatZoned(next.local)} in {schedule.timezone}
            </li>
          ))}
        </ol>
      ) : (
        <p className="muted">{schedule.paused ? "Paused: no runs planned." : "No runs left."}</p>
      )}
      <div className="button-row">
        <button type="button" className="secondary" disabled={busy} onClick={onPause}>
          {schedule.paused ? "Resume schedule" : "Pause schedule"}
        </button>
        <ConfirmButton
          label="Delete schedule"
          question="Delete this schedule and its pending run?"
          busyLabel="Deleting…"
          disabled={busy}
          onConfirm={onDelete}
        />
      </div>
    </>
  );
}

/** A time, weekdays and a zone (the browser's by default) for an action. */
function ScheduleForm({ deviceId }) {
  const [action, setAction] = useState("switch_on");
  const [time, setTime] = useState("07:00");
  const [days, setDays] = useState([1, 2, 3, 4, 5]);
  const [timezone, setTimezone] = useState(localTimeZone);
  const queryClient = useQueryClient();
  // Busy ("Adding…") until the list shows the new schedule.
  const add = useMutation({
    mutationFn: (schedule) => api.createSchedule(deviceId, schedule),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["schedules", deviceId] }),
  });
  const { error } = add;
  const busy = add.isPending;
  const fields = error?.fieldErrors ?? {};
  // A refusal about anything but the inputs (the device's limit of schedules), in words.
  const other = Object.entries(fields)
    .filter(([field]) => field !== "cron" && field !== "timezone")
    .map(([, message]) => message)
    .join(" ");

  const toggle = (day) =>
    setDays((chosen) => (chosen.includes(day) ? chosen.filter((d) => d !== day) : [...chosen, day]));

  function submit(event) {
    event.preventDefault();
    add.mutate({ action, cron: cronFor(time, days), timezone });
  }

  return (
    <form onSubmit={submit} aria-label="Add a schedule">
      <h3>Add a schedule</h3>
      <div className="field">
        <label htmlFor="schedule-action">Action</label>
        <select id="schedule-action" value={action} onChange={(e) => setAction(e.target.value)}>
          {Object.entries(ACTIONS).map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </div>
      <InputField
        id="schedule-time"
        label="Time of day"
        type="time"
        required
        value={time}
        onChange={(e) => setTime(e.target.value)}
        error={fields.cron}
      />
      <fieldset className="field weekdays">
        <legend>Days</legend>
        {WEEKDAYS.map(([name, day]) => (
          <label key={day} className="inline">
            <input type="checkbox" checked={days.includes(day)} onChange={() => toggle(day)} />{" "}
            {name}
          </label>
        ))}
      </fieldset>
      <div className="field">
        <label htmlFor="schedule-zone">Time zone</label>
        <select
          id="schedule-zone"
          value={timezone}
          onChange={(e) => setTimezone(e.target.value)}
          aria-describedby="schedule-zone-error"
        >
          {zoneNames(timezone).map((name) => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
        <FieldError id="schedule-zone-error" error={fields.timezone} />
      </div>
      <button type="submit" disabled={busy || days.length === 0}>
        {busy ? "Adding…" : "Add schedule"}
      </button>
      {error && !fields.cron && !fields.timezone && <ErrorMessage error={other || error} />}
    </form>
  );
}
