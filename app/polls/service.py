from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from app.auth.service import user_gone
from app.database import owned, utcnow, violates_foreign_key
from app.direct import one_statement
from app.errors import Conflict, Invalid, NotFound
from app.extensions import db
from app.polls import statements
from app.polls.models import Poll, Vote
from app.scheduling import service as scheduling

CLOSE = "poll.close"
RESULTS = "poll.results"


@dataclass
class OptionView:
    id: int
    name: str
    votes: int


@dataclass
class PollView:
    """A poll as its answer shows it (PollSchema), made from what the request wrote or read in
    its own statements rather than loaded through the ORM: on the API's hottest paths that
    load was most of a request's CPU."""

    id: int
    title: str
    owner_name: str
    close_date: datetime
    created_at: datetime
    options: list[OptionView]
    closed_at: datetime | None = None
    results: dict[str, Any] | None = None
    results_computed_at: datetime | None = None
    my_vote: int | None = None

    def is_open(self, now: datetime) -> bool:
        return self.closed_at is None and now < self.close_date


def create_poll(
    *, owner_id: int, owner_name: str, title: str, options: list[str], close_date: datetime
) -> PollView:
    """Save a poll, its options and its close job at once, then send the job's message if it
    is due within the horizon.

    On PostgreSQL one statement in one round trip (statements.CREATE_AT_ONCE); elsewhere
    three INSERTs in a transaction. The owner comes from a token that was not checked against
    the database: the poll's foreign key refuses an owner who no longer exists.
    """
    created_at = utcnow()
    fields = {"title": title, "close_date": close_date, "created_at": created_at}
    names = [name.strip() for name in options]
    try:
        if db.engine.dialect.name == "postgresql":  # no ORM session made for this
            poll_id, option_ids = _create_at_once(fields, names, owner_id=owner_id)
        else:
            poll_id, option_ids = _create_in_steps(fields, names, owner_id=owner_id)
    except IntegrityError as error:
        db.session.rollback()
        if violates_foreign_key(error):
            raise user_gone() from None
        raise
    return PollView(
        id=poll_id,
        owner_name=owner_name,
        options=[OptionView(i, name, 0) for i, name in zip(option_ids, names, strict=True)],
        **fields,
    )


def _create_at_once(
    fields: dict[str, Any], names: list[str], *, owner_id: int
) -> tuple[int, list[int]]:
    job = scheduling.new_job(kind=CLOSE, due_at=fields["close_date"], owner_id=owner_id)
    params = {f"poll_{name}": value for name, value in fields.items()}
    params |= {"poll_owner": owner_id, "names": names, **job.params}
    made = one_statement(statements.CREATE_AT_ONCE, params)[0]
    job.committed(made.job_id, made.id)
    return made.id, made.option_ids


def _create_in_steps(
    fields: dict[str, Any], names: list[str], *, owner_id: int
) -> tuple[int, list[int]]:
    poll_id = db.session.execute(
        statements.INSERT_POLL, {**fields, "owner_id": owner_id}
    ).scalar_one()
    rows = [
        {"poll_id": poll_id, "name": name, "position": i, "votes": 0}
        for i, name in enumerate(names)
    ]
    option_ids = db.session.execute(statements.INSERT_OPTIONS, rows).scalars().all()
    scheduling.schedule_once(
        kind=CLOSE, subject_id=poll_id, due_at=fields["close_date"], owner_id=owner_id
    )
    db.session.commit()
    return poll_id, list(option_ids)


def polls_query(*, status: str) -> Select:
    now = utcnow()
    query = select(Poll).order_by(Poll.created_at.desc(), Poll.id.desc())
    if status == "open":
        query = query.where(Poll.is_open(now))
    elif status == "closed":
        query = query.where(~Poll.is_open(now))
    return query


def get_poll(*, poll_id: int, user_id: int | None) -> PollView:
    """The poll with its owner, options and the caller's vote: one SELECT, no transaction.

    `user_id` comes from an unread token: the same SELECT says whether that user exists.
    """
    rows = one_statement(statements.READ_POLL, {"poll_id": poll_id, "user_id": user_id})
    if not rows:
        raise NotFound(f"Poll {poll_id} does not exist.")
    first = rows[0]
    if user_id is not None and not first.caller_exists:
        raise user_gone()
    return PollView(
        id=first.id,
        title=first.title,
        owner_name=first.owner_name,
        close_date=first.close_date,
        created_at=first.created_at,
        closed_at=first.closed_at,
        results=first.results,
        results_computed_at=first.results_computed_at,
        options=[OptionView(row.option_id, row.name, row.votes) for row in rows],
        my_vote=first.my_vote,
    )


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


def vote(*, poll_id: int, option_id: int, user_id: int) -> dict[str, Any]:
    """Record one vote. Counts are incremented in SQL, so concurrent votes all count. The voter
    comes from an unread token: the statements check they exist.

    On PostgreSQL one statement in one round trip (statements.VOTE_AT_ONCE); elsewhere three
    in a transaction, the checks first.
    """
    now = utcnow()
    params = {"poll": poll_id, "user_id": user_id, "chosen": option_id, "now": now}
    fields = {"poll_id": poll_id, "option_id": option_id, "user_id": user_id, "created_at": now}
    try:
        if db.engine.dialect.name == "postgresql":  # no ORM session made for this
            vote_id = _vote_at_once(params)
        else:
            vote_id = _vote_in_steps(params, fields)
    except IntegrityError as error:  # the voter was deleted since the checks
        db.session.rollback()
        if violates_foreign_key(error):
            raise user_gone() from None
        raise
    if vote_id is None:
        raise Conflict(f"You have already voted in poll {poll_id}.")
    return {"id": vote_id, **fields}


def _vote_at_once(params: dict[str, Any]) -> int | None:
    rows = one_statement(statements.VOTE_AT_ONCE, params)
    _refuse_unless_votable(rows[0] if rows else None, params)
    return rows[0].vote_id


def _vote_in_steps(params: dict[str, Any], fields: dict[str, Any]) -> int | None:
    checked = db.session.execute(statements.LOCK_FOR_VOTE, params).one_or_none()
    _refuse_unless_votable(checked, params)  # the request's end rolls back and unlocks
    insert = statements.insert_vote(db.session.get_bind().dialect.name)
    vote_id = db.session.execute(insert, fields).scalar_one_or_none()
    if vote_id is None:
        db.session.rollback()
        return None
    db.session.execute(statements.COUNT_VOTE, {"chosen": params["chosen"]})
    db.session.commit()
    return vote_id


def _refuse_unless_votable(checked: Any, params: dict[str, Any]) -> None:
    """The vote's checks, as the poll's locked row says: NotFound, user_gone, Conflict or
    Invalid for the first that fails."""
    poll_id = params["poll"]
    if checked is None:
        raise NotFound(f"Poll {poll_id} does not exist.")
    if not checked.voter_exists:
        raise user_gone()
    if not checked.is_open:
        raise Conflict(f"Poll {poll_id} is closed: voting ended at its close date.")
    if not checked.option_in_poll:
        raise Invalid("option_id", f"Poll {poll_id} has no option {params['chosen']}.")
