from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import joinedload

from app.database import add_unique, commit_and_keep, owned, utcnow
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.polls.models import Option, Poll, Vote
from app.scheduling import clock
from app.scheduling import service as scheduling

CLOSE = "poll.close"
RESULTS = "poll.results"


def create_poll(*, owner_id: int, title: str, options: list[str], close_date: datetime) -> Poll:
    """Save a poll and its close job in one transaction."""
    poll = Poll(
        title=title,
        owner_id=owner_id,
        close_date=close_date,
        options=[Option(name=name.strip(), position=i) for i, name in enumerate(options)],
    )
    db.session.add(poll)
    db.session.flush()  # the poll's id, for its job (its options go in the same INSERT round)
    scheduling.schedule(kind=CLOSE, subject_id=poll.id, due_at=close_date, owner_id=owner_id)
    commit_and_keep()  # the answer is what was just written: no reload
    return poll


def polls_query(*, status: str) -> Select:
    now = utcnow()
    query = select(Poll).order_by(Poll.created_at.desc(), Poll.id.desc())
    if status == "open":
        query = query.where(Poll.is_open(now))
    elif status == "closed":
        query = query.where(~Poll.is_open(now))
    return query


def get_poll(*, poll_id: int) -> Poll:
    """The poll with its owner and options, in one statement."""
    poll = (
        db.session.execute(
            select(Poll)
            .where(Poll.id == poll_id)
            .options(joinedload(Poll.owner), joinedload(Poll.options))
        )
        .unique()
        .scalar_one_or_none()
    )
    if poll is None:
        raise NotFound(f"Poll {poll_id} does not exist.")
    return poll


def with_my_votes(polls: Sequence[Poll], *, user_id: int | None) -> Sequence[Poll]:
    """Set `my_vote` on each poll: the option the user chose, if any."""
    mine: dict[int, int] = {}
    if user_id is not None and polls:
        rows = db.session.execute(
            select(Vote.poll_id, Vote.option_id).where(
                Vote.user_id == user_id, Vote.poll_id.in_([poll.id for poll in polls])
            )
        )
        mine = {poll_id: option_id for poll_id, option_id in rows}
    for poll in polls:
        poll.my_vote = mine.get(poll.id)
    return polls


def _lock_own_open_poll(*, poll_id: int, user_id: int) -> Poll:
    poll = owned(Poll, poll_id, owner_id=user_id, lock=True)
    if not poll.is_open(utcnow()):
        raise Conflict(f"Poll {poll_id} is closed.")
    return poll


def _move_close_job(poll: Poll, due_at: datetime) -> None:
    job = scheduling.find_pending(kind=CLOSE, subject_id=poll.id)
    if job is None:
        scheduling.schedule(kind=CLOSE, subject_id=poll.id, due_at=due_at, owner_id=poll.owner_id)
    else:
        scheduling.reschedule(job, due_at=due_at)


def change_close_date(*, poll_id: int, user_id: int, close_date: datetime) -> Poll:
    """Move the close date; the message already sent for the old one becomes a no-op."""
    poll = _lock_own_open_poll(poll_id=poll_id, user_id=user_id)
    poll.close_date = close_date
    _move_close_job(poll, close_date)
    db.session.commit()
    return poll


def close_now(*, poll_id: int, user_id: int) -> Poll:
    """Stop voting at once and have the worker close the poll now."""
    poll = _lock_own_open_poll(poll_id=poll_id, user_id=user_id)
    poll.close_date = utcnow()
    _move_close_job(poll, poll.close_date)
    db.session.commit()
    return poll


def delete_poll(*, poll_id: int, user_id: int) -> None:
    poll = _lock_own_open_poll(poll_id=poll_id, user_id=user_id)
    job = scheduling.find_pending(kind=CLOSE, subject_id=poll.id)
    if job is not None:
        scheduling.cancel(job)
    db.session.delete(poll)
    db.session.commit()


def vote(*, poll_id: int, option_id: int, user_id: int) -> Vote:
    """Record one vote; counts are incremented in SQL so concurrent votes all count."""
    is_open = db.session.execute(
        _LOCK_FOR_VOTE, {"poll_id": poll_id, "now": utcnow()}
    ).scalar_one_or_none()
    if is_open is None:
        raise NotFound(f"Poll {poll_id} does not exist.")
    if not is_open:
        raise Conflict(f"Poll {poll_id} is closed: voting ended at its close date.")
    vote = add_unique(
        Vote(poll_id=poll_id, option_id=option_id, user_id=user_id),
        conflict=f"You have already voted in poll {poll_id}.",
    )
    counted = db.session.execute(_COUNT_VOTE, {"chosen": option_id, "of_poll": poll_id})
    if counted.scalar_one_or_none() is None:  # no such option in this poll: the vote goes
        db.session.rollback()
        raise Invalid("option_id", f"Poll {poll_id} has no option {option_id}.")
    commit_and_keep()
    return vote


# Built once, with the vote's two statements below: votes come in bursts (a poll's last
# minute), and building a statement costs more than running it.
_option = Option.__table__
# A shared lock: votes run side by side, and closing (which locks for update) waits for the
# votes already in flight, so none lands after the poll closed.
_LOCK_FOR_VOTE = (
    select(Poll.is_open(bindparam("now")))
    .where(Poll.id == bindparam("poll_id"))
    .with_for_update(read=True)
)
_COUNT_VOTE = (
    update(_option)
    .where(_option.c.id == bindparam("chosen"), _option.c.poll_id == bindparam("of_poll"))
    .values(votes=_option.c.votes + 1)
    .returning(_option.c.id)
)


# --- job handlers (see jobs.py): run inside the job's transaction ----------------------------


_poll = Poll.__table__
# Built once: they run for every poll, and building them costs more than running them.
_CLOSE = (
    update(_poll)
    .where(_poll.c.id.in_(bindparam("poll_ids", expanding=True)), _poll.c.closed_at.is_(None))
    .values(closed_at=bindparam("now"))
    .returning(_poll.c.id, _poll.c.owner_id)
)
_OPTIONS_OF = (
    select(_option.c.poll_id, _option.c.id, _option.c.name, _option.c.votes)
    .where(_option.c.poll_id.in_(bindparam("poll_ids", expanding=True)))
    .order_by(_option.c.poll_id, _option.c.position)
)
_STORE_RESULTS = (
    update(_poll)
    .where(_poll.c.id == bindparam("poll_id"))
    .values(results=bindparam("results"), results_computed_at=bindparam("now"))
)


def close(*, poll_ids: list[int]) -> None:
    """Stop the polls; their results follow as jobs of their own, which their owners see.

    One UPDATE: it waits for the votes in flight (they hold the poll's row shared), leaves a
    poll that is gone or already closed alone, and returns the owners of those it closed.
    (Two deliveries of one batch closing the same polls at once could deadlock: PostgreSQL
    ends one, whose message is retried as on any database error and finds them closed.)
    """
    closed_at = clock.now()  # the database's time, whatever this worker's clock says
    closed = db.session.execute(_CLOSE, {"poll_ids": sorted(poll_ids), "now": closed_at}).all()
    scheduling.schedule_each_once(
        kind=RESULTS, owners=dict(closed), due_at=closed_at, deferrable=True
    )


def compute_results(*, poll_ids: list[int]) -> None:
    """Store the final results of closed polls: one read of their options, one UPDATE round."""
    options: dict[int, list[Any]] = {}
    for row in db.session.execute(_OPTIONS_OF, {"poll_ids": poll_ids}):
        options.setdefault(row.poll_id, []).append(row)
    if not options:
        return
    now = utcnow()
    db.session.execute(
        _STORE_RESULTS,
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
