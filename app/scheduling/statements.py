"""The statements run for every job, built once.

Built on the table: SQLAlchemy takes longer to build an ORM statement than PostgreSQL takes
to run it (an UPDATE built per call: 850 us of CPU; built once: 240 us).
"""

from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Update,
    bindparam,
    cast,
    insert,
    select,
    tuple_,
    update,
)

from app.database import insert_with_conflicts
from app.scheduling.models import PENDING_WHERE, Job, JobState, PromoterRun

_job = Job.__table__

READ_JOB = select(
    _job.c.kind,
    _job.c.subject_id,
    _job.c.token,
    _job.c.state,
    _job.c.due_at,
    _job.c.attempts,
    _job.c.max_attempts,
).where(_job.c.id == bindparam("job_id"))


def _marking(*, count_attempt: bool, **values: Any) -> Update:
    """UPDATE job SET `values` WHERE it has the claim's token and a state expected, and (when
    it counts an attempt) attempts are left; RETURNING the attempts."""
    statement = update(_job).where(
        _job.c.id == bindparam("job_id"),
        _job.c.token == bindparam("claim_token"),
        _job.c.state.in_(bindparam("expected", expanding=True)),
    )
    if count_attempt:
        statement = statement.where(_job.c.attempts < _job.c.max_attempts).values(
            attempts=_job.c.attempts + 1, started_at=bindparam("started")
        )
    return statement.values(**values).returning(_job.c.attempts)


MARK_RUNNING = _marking(count_attempt=True, state=JobState.RUNNING)
_SUCCEEDED = {"state": JobState.SUCCEEDED, "finished_at": bindparam("finished"), "last_error": None}
MARK_SUCCEEDED = {  # by whether the attempt was counted when the job started
    True: _marking(count_attempt=False, **_SUCCEEDED),
    False: _marking(count_attempt=True, **_SUCCEEDED),
}

# The batch's form of MARK_SUCCEEDED[False]: every job of `claims`, (id, token) pairs, that
# still has its token, an expected state and attempts left; RETURNING their ids and attempts.
MARK_ALL_SUCCEEDED = (
    update(_job)
    .where(
        tuple_(_job.c.id, _job.c.token).in_(bindparam("claims", expanding=True)),
        _job.c.state.in_(bindparam("expected", expanding=True)),
        _job.c.attempts < _job.c.max_attempts,
    )
    .values(attempts=_job.c.attempts + 1, started_at=bindparam("started"), **_SUCCEEDED)
    .returning(_job.c.id, _job.c.attempts)
)


# Queue up to `size` scheduled jobs due by `until` (deferrable or not), oldest due first, in
# one statement: the promoter's common case, which row by row through the ORM cost a
# statement and an object per job. SKIP LOCKED lets several promoters share the work.
_entering = (
    select(_job.c.id)
    .where(
        _job.c.state == JobState.SCHEDULED,
        _job.c.due_at <= bindparam("until"),
        _job.c.deferrable == bindparam("held_back_when_busy"),
    )
    .order_by(_job.c.due_at)
    .limit(bindparam("size"))
    .with_for_update(skip_locked=True)
)
QUEUE_ENTERING = (
    update(_job)
    .where(_job.c.id.in_(_entering))
    .values(state=JobState.QUEUED, queued_at=bindparam("now"))
    .returning(_job.c.id, _job.c.token, _job.c.kind, _job.c.subject_id, _job.c.due_at)
)


@cache
def insert_unless_pending(dialect: str) -> Insert:
    """INSERT a job, or nothing if one of its kind is pending for the subject."""
    return (
        insert_with_conflicts(_job, dialect)
        .on_conflict_do_nothing(
            index_elements=[_job.c.kind, _job.c.subject_id], index_where=PENDING_WHERE
        )
        .returning(_job.c.id, _job.c.subject_id)
    )


@cache
def record_promoter_run(dialect: str) -> Insert:
    """UPSERT the one row saying when a promoter last ran."""
    table = PromoterRun.__table__
    insert = insert_with_conflicts(table, dialect).values(id=1, ran_at=bindparam("now"))
    return insert.on_conflict_do_update(
        index_elements=[table.c.id], set_={"ran_at": insert.excluded.ran_at}
    )


# A new job's columns as insert_job_for binds them, each as a `job_<column>` parameter.
NEW_JOB_COLUMNS = (
    "kind",
    "owner_id",
    "deferrable",
    "attempts",
    "max_attempts",
    "created_at",
    "due_at",
    "token",
    "state",
    "queued_at",
)


def insert_job_for(subject_id: ColumnElement[int]) -> Insert:
    """INSERT a job for the subject another part of the caller's statement makes (the id an
    INSERT ... RETURNING in the same WITH gives); its columns are service.NewJob's params."""
    columns = [cast(bindparam(f"job_{name}"), _job.c[name].type) for name in NEW_JOB_COLUMNS]
    return (
        insert(_job)
        .from_select(["subject_id", *NEW_JOB_COLUMNS], select(subject_id, *columns))
        .returning(_job.c.id)
    )
