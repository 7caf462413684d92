import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { formatNumber, formatTime } from "../format.js";

export default function Locations() {
  const { signedIn } = useAuth();
  // Owner-only: nothing is fetched signed out.
  const {
    data,
    error,
    isPending: loading,
  } = useQuery({ queryKey: ["locations"], queryFn: () => api.locations(), enabled: signedIn });
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
  const { signedIn } = useAuth();
  const queryClient = useQueryClient();
  const queryKey = ["location-summary", name];
  // The last refresh, followed every 500 ms until it is done. Never refreshed (a 404) is no
  // error worth showing: there is nothing to show yet.
  const last = useQuery({
    queryKey,
    queryFn: async () => {
      try {
        return await api.locationSummary(name);
      } catch (err) {
        if (err.status === 404) return null;
        throw err;
      }
    },
    enabled: signedIn,
    refetchInterval: ({ state: { data } }) => (data && data.state !== "done" ? 500 : false),
  });
  // A started refresh is the one followed from now on.
  const start = useMutation({
    mutationFn: () => api.refreshLocation(name),
    onSuccess: (started) => queryClient.setQueryData(queryKey, started),
  });
  const refresh = last.data;
  const error = start.error || last.error;
  const busy = start.isPending;
  const loadingLast = last.isPending;
  const begin = () => start.mutate();

  const running = refresh && refresh.state !== "done";
  return (
    <li className="card" data-testid={`location-${name}`}>
      <div className="page-head">
        <h2>{name}</h2>
        {/* Not while the last refresh loads: its answer would replace the one started here. */}
        <button type="button" onClick={begin} disabled={busy || running || loadingLast}>
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
