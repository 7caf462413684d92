import { Fragment, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ConfirmButton } from "../components/ConfirmButton.jsx";
import { OnlineBadge, OnOff, PausedBadge } from "../components/DeviceBadges.jsx";
import { DeviceSchedules } from "../components/DeviceSchedules.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { InlineEditForm } from "../components/InlineEditForm.jsx";
import { JobStatus } from "../components/JobStatus.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { ObservationChart } from "../components/ObservationChart.jsx";
import { RangePicker, rangeOf } from "../components/RangePicker.jsx";
import { formatAgo, formatNumber, formatTime } from "../format.js";
import { useAction, useNow, useResource } from "../hooks.js";

/** The chart's data for a range ending now: raw readings for the last hour, buckets beyond. */
async function loadRange(id, range) {
  const now = Date.now();
  const from = new Date(now - range.ms).toISOString();
  const domain = [now - range.ms, now];
  if (!range.bucket) {
    const page = await api.observations(id, 1000, from);
    return { domain, readings: page.items, more: page.next_before !== null };
  }
  const to = new Date(now).toISOString();
  const answer = await api.observationBuckets(id, { bucket: range.bucket, from, to });
  return { domain, buckets: answer.items };
}

/** What the chart shows, in words: how many readings, and in what. */
function describe(series, range) {
  if (series.buckets) {
    const count = series.buckets.reduce((sum, bucket) => sum + bucket.count, 0);
    const starts = new Set(series.buckets.map((bucket) => bucket.start)).size;
    return `${count} readings in ${starts} buckets of ${range.bucket} (mean, with min–max)`;
  }
  const newest = series.more ? ", the newest shown" : "";
  return `${series.readings.length} readings in the last hour${newest}`;
}

export default function DeviceDetail() {
  const { id } = useParams();
  const navigate = useNavigate();
  const { signedIn } = useAuth();
  const now = useNow(1000);
  const device = useResource(() => api.device(id), [id, signedIn], signedIn ? 3000 : null);
  const [rangeKey, setRangeKey] = useState("hour");
  const range = rangeOf(rangeKey);
  const series = useResource(
    () => loadRange(id, range),
    [id, signedIn, rangeKey],
    signedIn ? range.refreshMs : null,
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
  const units = Object.fromEntries(d.attributes.map((a) => [a.name, a.units]));

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
      <RangePicker value={rangeKey} onChange={setRangeKey} />
      {series.data ? (
        <p className="muted" role="status">
          <span data-testid="reading-count">{describe(series.data, range)}</span>
          {series.loading && " · loading…"}
        </p>
      ) : (
        series.loading && <Loading what={`Loading the ${range.label.toLowerCase()}`} />
      )}
      <ErrorMessage error={series.error} />
      {series.data && (
        <ObservationChart
          readings={series.data.readings}
          buckets={series.data.buckets}
          units={units}
          domain={series.data.domain}
        />
      )}

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
              series.reload({ quiet: true });
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

      <DeviceSchedules deviceId={d.id} />
    </section>
  );
}
