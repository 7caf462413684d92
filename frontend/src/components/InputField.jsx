import { FieldError } from "./Feedback.jsx";

/**
 * A labelled input with the API's error for it beside it, at `errorId` (`${id}-error` unless
 * given) so that screen readers read it with the input. Other props go to the input.
 */
export function InputField({ id, label, error, errorId = `${id}-error`, ...inputProps }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} {...inputProps} aria-describedby={errorId} aria-invalid={Boolean(error)} />
      <FieldError id={errorId} error={error} />
    </div>
  );
}
