import { useEffect, useId, useRef, useState } from "react";
import { ErrorMessage } from "./Feedback.jsx";

/**
 * A button for an action that cannot be undone, confirmed in the page rather than in a dialog:
 * `label` asks `question` with "Yes, delete" (which says `busyLabel` until `onConfirm` settles)
 * and "Keep it". The caller navigates away on success; a failure is shown here in words.
 */
export function ConfirmButton({ label, question, busyLabel, onConfirm, disabled = false }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const questionId = useId();
  const trigger = useRef(null);
  const keep = useRef(null);
  const asked = useRef(false);

  // Focus follows the buttons that replace each other, so keyboard users stay in place.
  useEffect(() => {
    if (asking) keep.current?.focus();
    else if (asked.current) trigger.current?.focus();
    asked.current = asking;
  }, [asking]);

  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
    } catch (err) {
      setError(err);
      setAsking(false);
      setBusy(false);
    }
  }

  return (
    <div className="confirm">
      {asking ? (
        <div className="button-row" role="group" aria-labelledby={questionId}>
          <span id={questionId}>{question}</span>
          <button type="button" className="danger" disabled={busy || disabled} onClick={confirm}>
            {busy ? busyLabel : "Yes, delete"}
          </button>
          <button
            type="button"
            className="secondary"
            ref={keep}
            disabled={busy}
            onClick={() => setAsking(false)}
          >
            Keep it
          </button>
        </div>
      ) : (
        <button
          type="button"
          className="secondary danger"
          ref={trigger}
          disabled={disabled}
          onClick={() => {
            setError(null);
            setAsking(true);
          }}
        >
          {label}
        </button>
      )}
      <ErrorMessage error={error} />
    </div>
  );
}
