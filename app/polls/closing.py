"""What closing polls does, run by their jobs (jobs.py) inside the job's transaction."""

from collections.abc import Sequence
from typing import Any

from app.database import utcnow
from app.extensions import db
from app.polls import statements
from app.polls.service import RESULTS
from app.scheduling import clock
from app.scheduling import service as scheduling


def close(*, poll_ids: list[int]) -> None:
    """Stop the polls; their results follow as jobs of their own, which their owners see.

    One UPDATE: it waits for the votes in flight (they hold the poll's row shared), leaves a
    poll that is gone or already closed alone, and returns the owners of those it closed.
    (Two deliveries of one batch closing the same polls at once could deadlock: PostgreSQL
    ends one, whose message is retried as on any database error and finds them closed.)
    """
    closed_at = clock.now()  # the database's time, whatever this worker's clock says
    closed = db.session.execute(
        statements.CLOSE_POLLS, {"poll_ids": sorted(poll_ids), "now": closed_at}
    ).all()
    scheduling.schedule_each_once(
        kind=RESULTS, owners=dict(closed), due_at=closed_at, deferrable=True
    )


def compute_results(*, poll_ids: list[int]) -> None:
    """Store the final results of closed polls: one read of their options, one UPDATE round."""
    options: dict[int, list[Any]] = {}
    for row in db.session.execute(statements.OPTIONS_OF, {"poll_ids": poll_ids}):
        options.setdefault(row.poll_id, []).append(row)
    if not options:
        return
    now = utcnow()
    db.session.execute(
        statements.STORE_RESULTS,
        [
            {"poll_id": poll_id, "results": tally(rows), "now": now}
            for poll_id, rows in options.items()
        ],
    )


def tally(options: Sequence[Any]) -> dict[str, Any]:
    """Shares of the vote, and the winner (several on a tie, none without votes)."""
    total = sum(option.votes for option in options)
    top = max((option.votes for option in options), default=0)
    winners = [option.id for option in options if top and option.votes == top]
    return {
        "total_votes": total,
        "winners": winners,
        "tie": len(winners) > 1,
        "options": [
            {
                "option_id": option.id,
                "name": option.name,
                "votes": option.votes,
                "share": round(option.votes / total, 4) if total else 0.0,
            }
            for option in options
        ],
    }
