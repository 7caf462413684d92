import { useMutation } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { ErrorMessage, FieldError } from "./Feedback.jsx";

/**
 * A one-field form that changes a saved value in place. The input (`id`, labelled `label`,
 * starting at `current`; other props go to it) is sent with `send(value)`; the button says
 * `submitLabel`, then "Saving…", and `savedLabel` shows once the change is accepted. The API's
 * error for `field` is shown next to the input (at `${id}-error`), any other below it.
 */
export function InlineEditForm({
  id,
  label,
  current,
  field,
  send,
  onSaved,
  submitLabel,
  savedLabel,
  disabled = false,
  ...inputProps
}) {
  const [value, setValue] = useState(current);
  // The page refetches every few seconds: only a new saved value replaces what is typed.
  useEffect(() => setValue(current), [current]);
  // Saved once accepted; `onSaved` (the page's invalidation) is not awaited, the refetch follows.
  const save = useMutation({
    mutationFn: (typed) => send(typed),
    onSuccess: () => {
      onSaved();
    },
  });
  const { error } = save;
  const busy = save.isPending;
  const saved = save.isSuccess;
  const submit = (event) => {
    event.preventDefault();
    save.mutate(value);
  };

  const errorId = `${id}-error`;
  const fieldError = error?.fieldErrors?.[field];
  return (
    <form onSubmit={submit} noValidate className="inline-form">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        {...inputProps}
        value={value}
        onChange={(e) => setValue(e.target.value)}
        aria-describedby={errorId}
        aria-invalid={Boolean(fieldError)}
      />
      <button type="submit" disabled={busy || disabled}>
        {busy ? "Saving…" : submitLabel}
      </button>
      {saved && <span className="notice">{` ${savedLabel}`}</span>}
      <FieldError id={errorId} error={fieldError} />
      {!fieldError && <ErrorMessage error={error} />}
    </form>
  );
}
