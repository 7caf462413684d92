/** A server or network error in words, announced to screen readers. */
export function ErrorMessage({ error }) {
  if (!error) return null;
  const message = typeof error === "string" ? error : error.message || "Something went wrong.";
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}

/** The API's message for one field, shown next to its input. */
export function FieldError({ id, error }) {
  if (!error) return null;
  return (
    <span className="field-error" id={id} role="alert">
      {error}
    </span>
  );
}

/** The line a page or panel shows until its first answer. */
export function Loading({ what = "Loading" }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      {what}…
    </p>
  );
}
