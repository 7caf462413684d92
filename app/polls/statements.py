"""The polls' hot statements, built once: building a statement costs more than running it,
and votes come in bursts (a poll's last minute), closes by the thousand."""

from functools import cache

from sqlalchemy import (
    Insert,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql

from app.auth.models import User
from app.database import insert_with_conflicts
from app.polls.models import Option, Poll, Vote
from app.scheduling.statements import insert_job_for

_option = Option.__table__
_poll = Poll.__table__
_user = User.__table__
_owner = _user.alias("owner")
_vote = Vote.__table__
# A vote's statements take "poll", never "poll_id": an UPDATE executed with a parameter named
# like one of its table's columns sets that column too (SQLAlchemy Core).
# A shared lock: votes run side by side, and closing (which locks for update) waits for the
# votes already in flight, so none lands after the poll closed. It also says whether the
# voter exists and the option is the poll's.
LOCK_FOR_VOTE = (
    select(
        Poll.is_open(bindparam("now")).label("is_open"),
        exists().where(_user.c.id == bindparam("user_id")).label("voter_exists"),
        exists()
        .where(_option.c.id == bindparam("chosen"), _option.c.poll_id == _poll.c.id)
        .label("option_in_poll"),
    )
    .where(_poll.c.id == bindparam("poll"))
    .with_for_update(read=True, of=_poll)
)


def _vote_at_once() -> Select:
    """PostgreSQL: a vote as one statement, the three below as parts of it (sub-statements in
    WITH run on one snapshot, each to completion, and the whole commits or fails at once).

    The shared lock, the checks, the INSERT (only if every check passed; nothing if the user
    voted already) and the count (only if a vote went in). Its one row says what happened;
    no row: no such poll.
    """
    target = LOCK_FOR_VOTE.add_columns(_poll.c.id.label("poll_id")).cte("target")
    chosen, voter = cast(bindparam("chosen"), Integer), cast(bindparam("user_id"), Integer)
    added = (
        postgresql.insert(_vote)
        .from_select(
            ["poll_id", "option_id", "user_id", "created_at"],
            select(
                target.c.poll_id,
                chosen,
                voter,
                cast(bindparam("now"), _vote.c.created_at.type),
            ).where(target.c.is_open, target.c.voter_exists, target.c.option_in_poll),
        )
        .on_conflict_do_nothing(index_elements=[_vote.c.poll_id, _vote.c.user_id])
        .returning(_vote.c.id)
        .cte("added")
    )
    counted = (
        update(_option)
        .where(_option.c.id == chosen, exists(select(added.c.id)))
        .values(votes=_option.c.votes + literal_column("1"))  # a bound 1 lost its value here
        .cte("counted")
    )
    vote_id = select(added.c.id).scalar_subquery().label("vote_id")
    return select(
        target.c.is_open, target.c.voter_exists, target.c.option_in_poll, vote_id
    ).add_cte(counted)


COUNT_VOTE = (
    update(_option).where(_option.c.id == bindparam("chosen")).values(votes=_option.c.votes + 1)
)


@cache
def insert_vote(dialect: str) -> Insert:
    """INSERT the vote, or nothing (no id) if the user has voted in the poll already."""
    return (
        insert_with_conflicts(_vote, dialect)
        .on_conflict_do_nothing(index_elements=[_vote.c.poll_id, _vote.c.user_id])
        .returning(_vote.c.id)
    )


def _create_at_once() -> Select:
    """PostgreSQL: a new poll as one statement, in one round trip: the poll, its options (one
    row per element of the `names` array, in order) and its close job (insert_job_for's
    parameters). Its one row: the poll's id, the options' ids in order, the job's id.

    A parameter named like a column of a table these INSERTs write would set it: the poll's
    are `poll_*`. An owner who no longer exists fails the poll's foreign key.
    """
    poll = (
        insert(_poll)
        .values(
            owner_id=bindparam("poll_owner"),
            title=bindparam("poll_title"),
            close_date=bindparam("poll_close_date"),
            created_at=bindparam("poll_created_at"),
        )
        .returning(_poll.c.id)
        .cte("new_poll")
    )
    names = (
        func.unnest(cast(bindparam("names"), postgresql.ARRAY(String)))
        .table_valued("name", with_ordinality="ordinal")
        .render_derived()
    )
    options = (
        insert(_option)
        .from_select(
            ["poll_id", "name", "position", "votes"],
            select(poll.c.id, names.c.name, names.c.ordinal - 1, literal_column("0")).join_from(
                poll, names, true()
            ),
        )
        .returning(_option.c.id, _option.c.position)
        .cte("new_options")
    )
    job = insert_job_for(poll.c.id).cte("new_job")
    option_ids = select(
        func.array_agg(postgresql.aggregate_order_by(options.c.id, options.c.position))
    ).scalar_subquery()
    return select(
        poll.c.id,
        option_ids.label("option_ids"),
        select(job.c.id).scalar_subquery().label("job_id"),
    )


VOTE_AT_ONCE = _vote_at_once()
CREATE_AT_ONCE = _create_at_once()
INSERT_POLL = insert(_poll).returning(_poll.c.id)
INSERT_OPTIONS = insert(_option).returning(_option.c.id, sort_by_parameter_order=True)
READ_POLL = (
    select(
        _poll.c.id,
        _poll.c.title,
        _owner.c.username.label("owner_name"),
        _poll.c.close_date,
        _poll.c.created_at,
        _poll.c.closed_at,
        _poll.c.results,
        _poll.c.results_computed_at,
        _option.c.id.label("option_id"),
        _option.c.name,
        _option.c.votes,
        select(_vote.c.option_id)
        .where(_vote.c.poll_id == _poll.c.id, _vote.c.user_id == bindparam("user_id"))
        .scalar_subquery()
        .label("my_vote"),
        exists().where(_user.c.id == bindparam("user_id")).label("caller_exists"),
    )
    .join_from(_poll, _owner, _owner.c.id == _poll.c.owner_id)
    .join(_option, _option.c.poll_id == _poll.c.id)
    .where(_poll.c.id == bindparam("poll_id"))
    .order_by(_option.c.position)
)


# The job handlers' (close, compute_results).
CLOSE_POLLS = (
    update(_poll)
    .where(_poll.c.id.in_(bindparam("poll_ids", expanding=True)), _poll.c.closed_at.is_(None))
    .values(closed_at=bindparam("now"))
    .returning(_poll.c.id, _poll.c.owner_id)
)
OPTIONS_OF = (
    select(_option.c.poll_id, _option.c.id, _option.c.name, _option.c.votes)
    .where(_option.c.poll_id.in_(bindparam("poll_ids", expanding=True)))
    .order_by(_option.c.poll_id, _option.c.position)
)
STORE_RESULTS = (
    update(_poll)
    .where(_poll.c.id == bindparam("poll_id"))
    .values(results=bindparam("results"), results_computed_at=bindparam("now"))
)
