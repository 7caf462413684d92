import { useEffect, useRef, useState } from "react";
import { api } from "../api.js";
import { ErrorMessage } from "./Feedback.jsx";

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);

/** Follow a job (GET /api/jobs/<id> every 500 ms) until it finishes; show its state and error. */
export function JobStatus({ job, label, onFinished }) {
  const [current, setCurrent] = useState(job);
  const [error, setError] = useState(null);
  const finished = useRef(onFinished);
  useEffect(() => {
    finished.current = onFinished;
  });

  useEffect(() => {
    setCurrent(job);
    if (!job || FINISHED.has(job.state)) return undefined;
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        const next = await api.job(job.id);
        if (stopped) return;
        setCurrent(next);
        setError(null);
        if (FINISHED.has(next.state)) {
          finished.current?.(next);
          return;
        }
      } catch (err) {
        if (stopped) return;
        setError(err);
      }
      timer = setTimeout(tick, 500);
    };
    timer = setTimeout(tick, 300);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [job]);

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
