import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router-dom";
import { api } from "../api.js";
import { Countdown, stamp } from "../components/Countdown.jsx";
import { ErrorMessage, Loading } from "../components/Feedback.jsx";
import { Results } from "../components/Results.jsx";
import { formatTime } from "../format.js";

async function loadPolls() {
  const [open, closed] = await Promise.all([api.polls("open"), api.polls("closed")]);
  return { open: open.items.map(stamp), closed: closed.items.map(stamp) };
}

export default function Polls() {
  // Refetch every 2 s while a shown poll is open or still has no results.
  const { data, error, isPending: loading } = useQuery({
    queryKey: ["polls"],
    queryFn: loadPolls,
    refetchInterval: ({ state: { data: d } }) =>
      !d || d.open.length > 0 || d.closed.some((poll) => !poll.results) ? 2000 : 10000,
  });
  return (
    <section>
      <div className="page-head">
        <h1>Polls</h1>
        <Link className="button" to="/polls/new">
          New poll
        </Link>
      </div>
      {loading && !data && <Loading what="Loading polls" />}
      <ErrorMessage error={error} />
      {data && (
        <>
          <h2>Open</h2>
          {data.open.length === 0 ? (
            <p className="muted">No open polls.</p>
          ) : (
            <ul className="cards" data-testid="open-polls">
              {data.open.map((poll) => (
                <li key={poll.id} className="card">
                  <Link to={`/polls/${poll.id}`} className="card-title">
                    {poll.title}
                  </Link>
                  <p className="muted">
                    by {poll.owner} · {poll.total_votes} vote{poll.total_votes === 1 ? "" : "s"} ·{" "}
                    <Countdown poll={poll} />
                  </p>
                </li>
              ))}
            </ul>
          )}
          <h2>Closed</h2>
          {data.closed.length === 0 ? (
            <p className="muted">No closed polls yet.</p>
          ) : (
            <ul className="cards" data-testid="closed-polls">
              {data.closed.map((poll) => (
                <li key={poll.id} className="card">
                  <Link to={`/polls/${poll.id}`} className="card-title">
                    {poll.title}
                  </Link>
                  <p className="muted">closed {formatTime(poll.closed_at || poll.close_date)}</p>
                  <Results results={poll.results} />
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
