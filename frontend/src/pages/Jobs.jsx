import { useMutation, useMutationState, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { formatCount, formatTime } from "../format.js";

const STATES = ["scheduled", "queued", "running", "succeeded", "failed", "cancelled"];
const KINDS = ["poll.close", "poll.results", "device.poll", "device.command"];
const PER_PAGE = 20;

export default function Jobs() {
  const { signedIn } = useAuth();
  const [state, setState] = useState("");
  const [kind, setKind] = useState("");
  const [page, setPage] = useState(1);
  const queryClient = useQueryClient();
  // Owner-only: nothing is fetched signed out. A new filter or page is a new query (its own
  // loading), and every page refetches every 3 s.
  const filters = { state, kind, page, per_page: PER_PAGE };
  const {
    data,
    error,
    isPending: loading,
  } = useQuery({
    queryKey: ["jobs", filters],
    queryFn: () => api.jobs(filters),
    enabled: signedIn,
    refetchInterval: 3000,
  });
  const [rowErrors, setRowErrors] = useState({});
  // Busy until the table shows the job cancelled (onSuccess's refetch is awaited), so the
  // button cannot be pressed twice; several rows may be cancelling at once.
  const cancelJob = useMutation({
    mutationKey: ["cancel-job"],
    mutationFn: (job) => api.cancelJob(job.id),
    onMutate: (job) => setRowErrors((e) => ({ ...e, [job.id]: null })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["jobs"] }),
    onError: (err, job) => setRowErrors((e) => ({ ...e, [job.id]: err })),
  });
  const cancellingIds = useMutationState({
    filters: { mutationKey: ["cancel-job"], status: "pending" },
    select: (mutation) => mutation.state.variables.id,
  });
  const cancelling = Object.fromEntries(cancellingIds.map((jobId) => [jobId, true]));
  const cancel = (job) => cancelJob.mutate(job);

  // A new filter shows its first page.
  const filter = (set) => (value) => {
    set(value);
    setPage(1);
  };

  if (!signedIn) {
    return (
      <section>
        <h1>Jobs</h1>
        <NeedSignIn what="see your jobs" />
      </section>
    );
  }
  // Past a capped count the last page is unknown: there is a next one while this one is full.
  const hasNext =
    data && (data.total_capped ? data.items.length === PER_PAGE : page < data.pages);
  return (
    <section>
      <h1>Jobs</h1>
      <form className="filters" onSubmit={(e) => e.preventDefault()}>
        <Filter
          id="job-state"
          label="State"
          value={state}
          values={STATES}
          onChange={filter(setState)}
        />
        <Filter
          id="job-kind"
          label="Kind"
          value={kind}
          values={KINDS}
          onChange={filter(setKind)}
        />
        {loading && <span className="loading"> loading…</span>}
      </form>
      <ErrorMessage error={error} />
      {!data && loading && <Loading what="Loading jobs" />}
      {data && (
        <>
          <table data-testid="jobs-table">
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col">Kind</th>
                <th scope="col">Subject</th>
                <th scope="col">Due (local)</th>
                <th scope="col">State</th>
                <th scope="col">Lateness</th>
                <th scope="col">Attempts</th>
                <th scope="col">Error</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((job) => (
                <tr key={job.id}>
                  <td>{job.id}</td>
                  <td>{job.kind}</td>
                  <td>{job.subject_id}</td>
                  <td>{formatTime(job.due_at)}</td>
                  <td>
                    <span className={`badge state-${job.state}`}>{job.state}</span>
                  </td>
                  <td>{job.lateness === null ? "—" : `${job.lateness.toFixed(3)} s`}</td>
                  <td>
                    {job.attempts} / {job.max_attempts}
                  </td>
                  <td className="field-error">{job.last_error}</td>
                  <td>
                    {job.cancellable && (
                      <button
                        type="button"
                        className="secondary"
                        disabled={cancelling[job.id]}
                        onClick={() => cancel(job)}
                      >
                        {cancelling[job.id]
                          ? `Cancelling job ${job.id}…`
                          : `Cancel job ${job.id}`}
                      </button>
                    )}
                    <ErrorMessage error={rowErrors[job.id]} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {data.items.length === 0 && <p className="muted">No jobs match.</p>}
          <nav className="pager" aria-label="Pages">
            <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
              Previous
            </button>
            <span>
              Page {data.page} of {formatCount(Math.max(1, data.pages), data.total_capped)} ·{" "}
              {formatCount(data.total, data.total_capped)} jobs
            </span>
            <button type="button" disabled={!hasNext} onClick={() => setPage(page + 1)}>
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}

/** A select over the jobs table: "any" or one of `values`. */
function Filter({ id, label, value, values, onChange }) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">any</option>
        {values.map((v) => (
          <option key={v}>{v}</option>
        ))}
      </select>
    </>
  );
}
