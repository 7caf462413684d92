import { Fragment, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ConfirmButton } from "../components/ConfirmButton.jsx";
import { OnlineBadge, OnOff, PausedBadge } from "../components/DeviceBadges.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { InlineEditForm } from "../components/InlineEditForm.jsx";
import { JobStatus } from "../components/JobStatus.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { ObservationChart } from "../components/ObservationChart.jsx";
import { formatAgo, formatNumber, formatTime } from "../format.js";
import { useAction, useNow, useResource } from "../hooks.js";

export default function DeviceDetail() {
  const { id } = useParams();
  const navigate = useNavigate();
  const { signedIn } = useAuth();
  const now = useNow(1000);
  const device = useResource(() => api.device(id), [id, signedIn], signedIn ? 3000 : null);
  const readings = useResource(
    () => api.observations(id, 500),
    [id, signedIn],
    signedIn ? 3000 : null,
  );
  const [job, setJob] = useState(null);
  const { busy, error: actionError, run } = useAction();

  // A command or a poll answers with its job, which the page then follows.
  const act = (label, send) =>
    run(async () => {
      const result = await send();
      if (result && result.state) setJob({ label, job: result });
      device.reload({ quiet: true });
    });

  if (!signedIn) return <NeedSignIn what="see this device" />;
  if (device.loading && !device.data) return <Loading what="Loading the device" />;
  if (!device.data) return <ErrorMessage error={device.error} />;
  const d = device.data;
  const count = readings.data?.items.length ?? 0;

  return (
    <section>
      <p>
        <Link to="/devices">← All devices</Link>
      </p>
      <h1>{d.name}</h1>
      <p className="muted">
        {d.location} · {d.vendor} · {d.vendor_id} · <OnlineBadge online={d.online} />{" "}
        <OnOff isOn={d.is_on} /> <PausedBadge paused={d.paused} />
      </p>
      <ErrorMessage error={device.error} />
      <dl className="facts">
        <dt>Last seen</dt>
        <dd>{formatAgo(d.last_seen_at, now)}</dd>
        <dt>Next poll</dt>
        <dd>{d.paused ? "paused" : formatTime(d.next_poll_at)}</dd>
        <dt>Interval</dt>
        <dd>{d.interval} s</dd>
        {d.last_error && (
          <>
            <dt>Last error</dt>
            <dd className="field-error">{d.last_error}</dd>
          </>
        )}
        {d.attributes.map((a) => (
          <Fragment key={a.name}>
            <dt>{a.name}</dt>
            <dd>
              {formatNumber(a.value)} {a.units}
            </dd>
          </Fragment>
        ))}
      </dl>

      <h2>Observations</h2>
      <p className="muted" role="status">
        <span data-testid="reading-count">{count} readings</span>
        {readings.loading && " · loading…"}
      </p>
      <ErrorMessage error={readings.error} />
      {readings.data && <ObservationChart readings={readings.data.items} />}

      <div className="panel">
        <h2>Controls</h2>
        <InlineEditForm
          id="interval"
          label="Poll every (seconds)"
          type="number"
          min="1"
          current={String(d.interval)}
          field="interval"
          send={(value) => api.updateDevice(d.id, { interval: Number(value) })}
          submitLabel="Save interval"
          savedLabel="Saved."
          onSaved={() => device.reload({ quiet: true })}
        />
        <div className="button-row">
          <button
            type="button"
            className="secondary"
            disabled={busy}
            onClick={() => act("Pause", () => api.updateDevice(d.id, { paused: !d.paused }))}
          >
            {d.paused ? "Resume polling" : "Pause polling"}
          </button>
          <button type="button" disabled={busy} onClick={() => act("Poll", () => api.pollDevice(d.id))}>
            Poll now
          </button>
          <button
            type="button"
            disabled={busy}
            onClick={() => act("Switch on", () => api.command(d.id, true))}
          >
            Switch on
          </button>
          <button
            type="button"
            disabled={busy}
            onClick={() => act("Switch off", () => api.command(d.id, false))}
          >
            Switch off
          </button>
        </div>
        <ErrorMessage error={actionError} />
        {job && (
          <JobStatus
            job={job.job}
            label={job.label}
            onFinished={() => {
              device.reload({ quiet: true });
              readings.reload({ quiet: true });
            }}
          />
        )}
        <ConfirmButton
          label="Delete device"
          question="Delete this device, its readings and its pending jobs? This cannot be undone."
          busyLabel="Deleting…"
          disabled={busy}
          onConfirm={async () => {
            await api.deleteDevice(d.id);
            navigate("/devices");
          }}
        />
      </div>
    </section>
  );
}
