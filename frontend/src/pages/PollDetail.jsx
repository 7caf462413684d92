import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api } from "../api.js";
import { useAuth } from "../auth.jsx";
import { ConfirmButton } from "../components/ConfirmButton.jsx";
import { Countdown, secondsLeft, stamp } from "../components/Countdown.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { InlineEditForm } from "../components/InlineEditForm.jsx";
import { NeedSignIn } from "../components/NeedSignIn.jsx";
import { Results } from "../components/Results.jsx";
import { formatTime, localInputToIso, localTimeZone, toLocalInputValue } from "../format.js";
import { useNow } from "../hooks.js";

export default function PollDetail() {
  const { id } = useParams();
  const navigate = useNavigate();
  const { signedIn, username } = useAuth();
  const now = useNow(1000);
  const queryClient = useQueryClient();
  // Signed in or out, the same poll differs (my_vote): the session provider resets the cache.
  const {
    data: poll,
    error,
    isPending: loading,
  } = useQuery({
    queryKey: ["poll", id],
    queryFn: async () => stamp(await api.poll(id)),
    refetchInterval: ({ state: { data: p } }) =>
      !p || p.status === "open" || !p.results ? 2000 : false,
  });
  // A vote, or closing now: the poll and the list change. Busy (its buttons disabled) until
  // the refetch shows what it did, as onSuccess's promise is awaited.
  const changed = () =>
    Promise.all([
      queryClient.invalidateQueries({ queryKey: ["poll", id] }),
      queryClient.invalidateQueries({ queryKey: ["polls"] }),
    ]);
  const change = useMutation({ mutationFn: (send) => send(), onSuccess: changed });
  const busy = change.isPending;
  const actionError = change.error;
  const act = (send) => change.mutate(send);

  if (loading && !poll) return <Loading what="Loading the poll" />;
  if (!poll) return <ErrorMessage error={error} />;

  const open = poll.status === "open";
  const voted = poll.my_vote !== null && poll.my_vote !== undefined;
  // The countdown ran out: the server refuses votes from now on, before a refetch says "closed".
  const ended = open && secondsLeft(poll, now) <= 0;
  return (
    <section className="narrow">
      <p>
        <Link to="/polls">← All polls</Link>
      </p>
      <h1 data-testid="poll-title">{poll.title}</h1>
      <p className="muted">
        by {poll.owner} · <span data-testid="poll-status">{open ? "open" : "closed"}</span>{" "}
        {open ? (
          <>
            · <Countdown poll={poll} /> (closes {formatTime(poll.close_date)})
          </>
        ) : (
          formatTime(poll.closed_at || poll.close_date)
        )}
      </p>
      <ErrorMessage error={error} />
      {open ? (
        <>
          <NeedSignIn what="vote" />
          <ul className="vote-list">
            {poll.options.map((option) => (
              <li key={option.id}>
                <button
                  type="button"
                  disabled={!signedIn || voted || busy || ended}
                  aria-describedby={ended ? "voting-ended" : undefined}
                  onClick={() => act(() => api.vote(poll.id, option.id))}
                  aria-pressed={poll.my_vote === option.id}
                >
                  Vote for {option.name}
                </button>
                <span className="muted">
                  {option.votes} vote{option.votes === 1 ? "" : "s"}
                  {poll.my_vote === option.id && " · your vote"}
                </span>
              </li>
            ))}
          </ul>
          {voted && <p className="notice">Thanks, your vote is counted.</p>}
          {ended && (
            <p className="notice" id="voting-ended" role="status">
              Voting has ended: the close time has passed. The results will show here shortly.
            </p>
          )}
          {signedIn && username === poll.owner && (
            <div className="panel">
              <h2>Your poll</h2>
              <InlineEditForm
                id="new-close-date"
                label={`New close time (your time, ${localTimeZone()})`}
                type="datetime-local"
                step="1"
                current={toLocalInputValue(new Date(poll.close_date))}
                field="close_date"
                send={(value) => api.updatePoll(poll.id, { close_date: localInputToIso(value) })}
                submitLabel="Change close time"
                savedLabel="Close time changed."
                disabled={busy || ended}
                onSaved={changed}
              />
              <div className="button-row">
                <button
                  type="button"
                  className="secondary"
                  disabled={busy || ended}
                  onClick={() => act(() => api.closePoll(poll.id))}
                >
                  Close now
                </button>
              </div>
              <ConfirmButton
                label="Delete poll"
                question="Delete this poll and its votes? This cannot be undone."
                busyLabel="Deleting…"
                disabled={busy || ended}
                onConfirm={async () => {
                  await api.deletePoll(poll.id);
                  navigate("/polls");
                  queryClient.removeQueries({ queryKey: ["poll", id] });
                  queryClient.invalidateQueries({ queryKey: ["polls"] });
                }}
              />
            </div>
          )}
        </>
      ) : (
        <>
          <h2>Results</h2>
          <Results results={poll.results} />
        </>
      )}
      <ErrorMessage error={actionError} />
    </section>
  );
}
