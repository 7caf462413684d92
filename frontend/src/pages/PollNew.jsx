import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { api } from "../api.js";
import { ErrorMessage, FieldError } from "../components/Feedback.jsx";
import { InputField } from "../components/InputField.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { localInputToIso, localTimeZone, toLocalInputValue } from "../format.js";

function defaultCloseDate() {
  return toLocalInputValue(new Date(Date.now() + 24 * 3600 * 1000));
}

export default function PollNew() {
  const navigate = useNavigate();
  const [title, setTitle] = useState("");
  const [options, setOptions] = useState(["", ""]);
  const [closeLocal, setCloseLocal] = useState(defaultCloseDate);
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () =>
      api.createPoll({
        title,
        options: options.map((o) => o.trim()).filter((o) => o !== ""),
        close_date: localInputToIso(closeLocal),
      }),
    onSuccess: (poll) => {
      queryClient.invalidateQueries({ queryKey: ["polls"] });
      navigate(`/polls/${poll.id}`);
    },
  });
  const { error } = create;
  // Busy from the click until the new poll's page shows.
  const busy = create.isPending || create.isSuccess;

  function setOption(index, value) {
    setOptions((list) => list.map((old, i) => (i === index ? value : old)));
  }

  function submit(event) {
    event.preventDefault();
    create.mutate();
  }

  const fields = error?.fieldErrors || {};
  return (
    <section className="narrow">
      <h1>New poll</h1>
      <NeedSignIn what="create a poll" />
      <form onSubmit={submit} noValidate>
        <InputField
          id="poll-title"
          label="Title"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          error={fields.title}
          errorId="title-error"
        />
        <fieldset className="field">
          <legend>Options</legend>
          {options.map((option, index) => (
            <div className="option-row" key={index}>
              <label htmlFor={`option-${index}`} className="visually-hidden">
                Option {index + 1}
              </label>
              <input
                id={`option-${index}`}
                value={option}
                placeholder={`Option ${index + 1}`}
                onChange={(e) => setOption(index, e.target.value)}
              />
              <button
                type="button"
                className="secondary"
                aria-label={`Remove option ${index + 1}`}
                onClick={() => setOptions((list) => list.filter((_, i) => i !== index))}
              >
                Remove
              </button>
            </div>
          ))}
          <button
            type="button"
            className="secondary"
            onClick={() => setOptions((list) => [...list, ""])}
          >
            Add option
          </button>
          <FieldError id="options-error" error={fields.options} />
        </fieldset>
        <InputField
          id="close-date"
          label={`Closes at (your time, ${localTimeZone()})`}
          type="datetime-local"
          step="1"
          value={closeLocal}
          onChange={(e) => setCloseLocal(e.target.value)}
          error={fields.close_date}
        />
        <ErrorMessage error={error} />
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create poll"}
        </button>
      </form>
    </section>
  );
}
