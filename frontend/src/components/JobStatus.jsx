import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { api } from "../api.js";
import { ErrorMessage } from "./Feedback.jsx";

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

/** Follow a job (GET /api/jobs/<id> every 500 ms) until it finishes; show its state and error. */
export function JobStatus({ job, label, onFinished }) {
  const finished = useRef(onFinished);
  useEffect(() => {
    finished.current = onFinished;
  });
  const followed = Boolean(job) && !FINISHED.has(job.state);
  const { data, error } = useQuery({
    queryKey: ["job", job?.id],
    queryFn: () => api.job(job.id),
    // The job as the command answered it, shown at once; fetched again in 300 ms.
    initialData: job ?? undefined,
    initialDataUpdatedAt: Date.now(),
    staleTime: 300,
    enabled: followed,
    refetchInterval: ({ state }) => (state.data && FINISHED.has(state.data.state) ? false : 500),
  });
  const current = job ? data : null;

  // Once what was followed finishes (not a job that was already finished when shown).
  const state = current?.state;
  useEffect(() => {
    if (followed && FINISHED.has(state)) finished.current?.(current);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [followed, state]);

  if (!current) return null;
  return (
    <div className={`job-status state-${current.state}`} role="status" data-testid="job-status">
      {label}: <strong>{current.state}</strong>
      {!FINISHED.has(current.state) && "…"}
      {current.attempts > 1 && ` (attempt ${current.attempts})`}
      {current.last_error && <span className="field-error"> {current.last_error}</span>}
      <ErrorMessage error={error} />
    </div>
  );
}
