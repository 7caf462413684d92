import { useCallback, useEffect, useRef, useState } from "react";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { formatNumber, formatTime } from "../format.js";
import { useSignedInResource } from "../hooks.js";

export default function Locations() {
  const { signedIn } = useAuth();
  const { data, error, loading } = useSignedInResource(() => api.locations(), []);
  return (
    <section>
      <h1>Locations</h1>
      <NeedSignIn what="see your locations" />
      {loading && signedIn && !data && <Loading what="Loading locations" />}
      <ErrorMessage error={error} />
      {data && data.length === 0 && <p className="muted">No locations yet: register a device.</p>}
      {data && (
        <ul className="cards">
          {data.map((l) => (
            <Location key={l.location} location={l} />
          ))}
        </ul>
      )}
    </section>
  );
}

function Location({ location }) {
  const name = location.location;
  const [refresh, setRefresh] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [loadingLast, setLoadingLast] = useState(true);
  const timer = useRef(null);

  const follow = useCallback(
    async (first) => {
      clearTimeout(timer.current);
      try {
        const latest = await api.locationSummary(name);
        setRefresh(latest);
        setError(null);
        if (latest.state !== "done") timer.current = setTimeout(() => follow(false), 500);
      } catch (err) {
        // No refresh yet is not an error worth showing on first load.
        if (!(first && err.status === 404)) setError(err);
      } finally {
        if (first) setLoadingLast(false);
      }
    },
    [name],
  );

  useEffect(() => {
    follow(true);
    return () => clearTimeout(timer.current);
  }, [follow]);

  async function start() {
    setBusy(true);
    setError(null);
    try {
      setRefresh(await api.refreshLocation(name));
      timer.current = setTimeout(() => follow(false), 500);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const running = refresh && refresh.state !== "done";
  return (
    <li className="card" data-testid={`location-${name}`}>
      <div className="page-head">
        <h2>{name}</h2>
        {/* Not while the last refresh loads: its answer would replace the one started here. */}
        <button type="button" onClick={start} disabled={busy || running || loadingLast}>
          {running ? "Refreshing…" : `Refresh ${name}`}
        </button>
      </div>
      <p className="muted">
        {location.devices} device{location.devices === 1 ? "" : "s"}
      </p>
      {loadingLast && <Loading what="Loading the last refresh" />}
      {refresh && (
        <div className="refresh">
          <label htmlFor={`progress-${name}`}>
            {running ? "Polling devices" : "Last refresh"}: {refresh.polled} of {refresh.total}
          </label>
          <progress id={`progress-${name}`} value={refresh.polled} max={refresh.total || 1} />
          {refresh.summary && (
            <div className="summary" data-testid="summary">
              <p>
                {refresh.summary.online} of {refresh.summary.devices} online · finished{" "}
                {formatTime(refresh.finished_at)}
              </p>
              {refresh.summary.missing?.length > 0 && (
                <p className="missing" data-testid="missing">
                  No answer by the deadline from{" "}
                  {refresh.summary.missing.map((device) => device.name).join(", ")}
                </p>
              )}
              {refresh.summary.attributes.length > 0 && (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Attribute</th>
                      <th scope="col">Mean</th>
                      <th scope="col">Devices</th>
                    </tr>
                  </thead>
                  <tbody>
                    {refresh.summary.attributes.map((a) => (
                      <tr key={`${a.name}-${a.units}`}>
                        <td>{a.name}</td>
                        <td>
                          {formatNumber(a.mean)} {a.units}
                        </td>
                        <td>{a.devices}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          )}
        </div>
      )}
      <ErrorMessage error={error} />
    </li>
  );
}
