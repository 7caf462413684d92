import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
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
import { useNow } from "../hooks.js";

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
  const queryClient = useQueryClient();
  // Owner-only: nothing is fetched signed out.
  const device = useQuery({
    queryKey: ["device", id],
    queryFn: () => api.device(id),
    enabled: signedIn,
    refetchInterval: 3000,
  });
  const [rangeKey, setRangeKey] = useState("hour");
  const range = rangeOf(rangeKey);
  // Each range is its own query: a new range shows its loading, not the last range's chart.
  const series = useQuery({
    queryKey: ["observations", id, rangeKey],
    queryFn: () => loadRange(id, range),
    enabled: signedIn,
    refetchInterval: range.refreshMs,
  });
  const [job, setJob] = useState(null);

  // The device, and the list showing it, after a change; not awaited: the buttons come back
  // once the change is accepted, as the refetch follows.
  const deviceChanged = () => {
    queryClient.invalidateQueries({ queryKey: ["device", id] });
    queryClient.invalidateQueries({ queryKey: ["devices"] });
  };
  // One change at a time. A command or a poll answers with its job, which the page then follows.
  const change = useMutation({
    mutationFn: ({ send }) => send(),
    onSuccess: (result, { label }) => {
      if (result && result.state) setJob({ label, job: result });
      deviceChanged();
    },
  });
  const busy = change.isPending;
  const actionError = change.error;
  const act = (label, send) => change.mutate({ label, send });

  if (!signedIn) return <NeedSignIn what="see this device" />;
  if (device.isPending) return <Loading what="Loading the device" />;
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
          {series.isLoading && " · loading…"}
        </p>
      ) : (
        series.isFetching && <Loading what={`Loading the ${range.label.toLowerCase()}`} />
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
          onSaved={deviceChanged}
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
              deviceChanged();
              queryClient.invalidateQueries({ queryKey: ["observations", id] });
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
            for (const queryKey of [["device", id], ["observations", id], ["schedules", d.id]]) {
              queryClient.removeQueries({ queryKey });
            }
            queryClient.invalidateQueries({ queryKey: ["devices"] });
            queryClient.invalidateQueries({ queryKey: ["locations"] });
          }}
        />
      </div>

      <DeviceSchedules deviceId={d.id} />
    </section>
  );
}
