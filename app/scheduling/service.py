"""Scheduling jobs, in the caller's transaction: schedule, move, cancel, requeue.

A job due within the horizon is queued at once and its message sent when the caller commits
(the outbox); one due later waits in the database for the promoter.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.database import owned, utcnow
from app.errors import Conflict
from app.extensions import db
from app.scheduling import outbox
from app.scheduling.models import FINISHED, PENDING, Job, JobState, job_fields, new_token
from app.scheduling.registry import instead_of_cancelling
from app.scheduling.statements import NEW_JOB_COLUMNS, insert_unless_pending

log = logging.getLogger(__name__)


def seconds(setting: str) -> timedelta:
    """A duration setting (SCHEDULER_HORIZON, JOB_LOST_AFTER, ...)."""
    return timedelta(seconds=current_app.config[setting])


def horizon() -> timedelta:
    """How far ahead of their due time jobs are handed to the broker: SCHEDULER_HORIZON, or
    nothing at all when JUST_IN_TIME (no broker message then carries an ETA)."""
    if current_app.config["JUST_IN_TIME"]:
        return timedelta(0)
    return seconds("SCHEDULER_HORIZON")


def schedule(
    *,
    kind: str,
    subject_id: int,
    due_at: datetime,
    owner_id: int | None = None,
    deferrable: bool = False,
) -> Job:
    """Add a job to the session; it is published when the caller commits."""
    job = Job(
        kind=kind,
        subject_id=subject_id,
        owner_id=owner_id,
        deferrable=deferrable,
        max_attempts=current_app.config["JOB_MAX_ATTEMPTS"],
    )
    db.session.add(job)
    place(job, due_at)
    return job


def schedule_once(
    *,
    kind: str,
    subject_id: int,
    due_at: datetime,
    owner_id: int | None = None,
    deferrable: bool = False,
) -> int | None:
    """Schedule a job unless one of the same kind is already pending for the subject.

    One INSERT, which the partial unique index on pending jobs turns into nothing when one
    is pending: two transactions racing to schedule the same follow-up leave exactly one.
    Returns the new job's id, or None.
    """
    made = schedule_each_once(
        kind=kind, owners={subject_id: owner_id}, due_at=due_at, deferrable=deferrable
    )
    return made.get(subject_id)


def schedule_each_once(
    *, kind: str, owners: dict[int, int | None], due_at: datetime, deferrable: bool = False
) -> dict[int, int]:
    """schedule_once for many subjects (`owners`: subject id -> owner id) in one INSERT round;
    the new jobs' ids by subject (a subject with a job of the kind pending gets none)."""
    if not owners:
        return {}
    placements = {subject_id: _placement(due_at, deferrable=deferrable) for subject_id in owners}
    rows = db.session.execute(
        insert_unless_pending(db.session.get_bind().dialect.name),
        [
            {
                "kind": kind,
                "subject_id": subject_id,
                "owner_id": owner_id,
                "deferrable": deferrable,
                "max_attempts": current_app.config["JOB_MAX_ATTEMPTS"],
                **placements[subject_id],
            }
            for subject_id, owner_id in owners.items()
        ],
    ).all()
    made = {subject_id: job_id for job_id, subject_id in rows}
    for subject_id, job_id in made.items():
        placement = placements[subject_id]
        if placement["state"] == JobState.QUEUED:
            outbox.add(job_id, outbox.Placement(placement["token"], kind, subject_id, due_at))
    return made


@dataclass(frozen=True)
class NewJob:
    """A job that the caller's own statement inserts (statements.insert_job_for) with the
    subject it is for: a request that is one statement, outside the session, in one round
    trip. `committed` sends its message, once that statement has committed."""

    kind: str
    due_at: datetime
    params: dict[str, Any]  # insert_job_for's

    def committed(self, job_id: int, subject_id: int) -> None:
        """Send the job's message now if it was queued (due within the horizon)."""
        if self.params["job_state"] == JobState.QUEUED:
            token = self.params["job_token"]
            outbox.publish({job_id: outbox.Placement(token, self.kind, subject_id, self.due_at)})


def new_job(
    *, kind: str, due_at: datetime, owner_id: int | None = None, deferrable: bool = False
) -> NewJob:
    """A job for a subject the caller's statement is about to insert (so none is pending)."""
    values = {
        "kind": kind,
        "owner_id": owner_id,
        "deferrable": deferrable,
        "attempts": 0,
        "max_attempts": current_app.config["JOB_MAX_ATTEMPTS"],
        "created_at": utcnow(),
        **_placement(due_at, deferrable=deferrable),
    }
    params = {f"job_{name}": values[name] for name in NEW_JOB_COLUMNS}
    return NewJob(kind, due_at, params)


def reschedule(job: Job, *, due_at: datetime, deferrable: bool | None = None) -> None:
    """Move a pending job; the message already sent for it becomes a no-op."""
    if job.state not in PENDING:
        raise Conflict(f"Job {job.id} is {job.state}: only a pending job can be moved.")
    if deferrable is not None:
        job.deferrable = deferrable
    place(job, due_at)


def cancel(job: Job) -> None:
    if job.state in FINISHED:
        raise Conflict(f"Job {job.id} has already {job.state}.")
    job.state = JobState.CANCELLED
    job.token = new_token()
    job.finished_at = utcnow()
    log.info("job %s %s:%s cancelled", job.id, job.kind, job.subject_id, extra=job_fields(job))


def cancel_job(*, job_id: int, user_id: int) -> Job:
    """Cancel one of the user's jobs, unless its domain relies on it (then say what instead)."""
    job = owned(Job, job_id, owner_id=user_id, lock=True)
    instead = instead_of_cancelling(job.kind, subject_id=job.subject_id)
    if instead is not None:
        raise Conflict(f"Job {job_id} ({job.kind}) cannot be cancelled on its own. {instead}")
    cancel(job)
    db.session.commit()
    return job


def requeue(job: Job) -> None:
    """Give a failed job a fresh set of attempts, due now."""
    if job.state != JobState.FAILED:
        raise Conflict(f"Job {job.id} is {job.state}: only a failed job can be requeued.")
    job.attempts = 0
    job.finished_at = None
    place(job, utcnow())


def find_pending(*, kind: str, subject_id: int) -> Job | None:
    return db.session.execute(
        select(Job).where(Job.kind == kind, Job.subject_id == subject_id, Job.state.in_(PENDING))
    ).scalar_one_or_none()


def supersede(job: Job) -> bool:
    """Cancel a job that would run again (a retry, a lost run) while another job of its kind
    is pending for the subject (scheduled while it ran: a device polled now during its poll).

    At most one job per kind and subject is pending; the newer one does the work.
    """
    newer = db.session.execute(
        select(Job.id).where(
            Job.kind == job.kind,
            Job.subject_id == job.subject_id,
            Job.state.in_(PENDING),
            Job.id != job.id,
        )
    ).scalar_one_or_none()
    if newer is None:
        return False
    job.state = JobState.CANCELLED
    job.finished_at = utcnow()
    log.warning(
        "job %s %s:%s not run again: job %s of its kind is pending",
        job.id,
        job.kind,
        job.subject_id,
        newer,
        extra=job_fields(job),
    )
    return True


def _placement(due_at: datetime, *, deferrable: bool) -> dict[str, Any]:
    """A job's due time, a new token, and its state: queued if due within the horizon."""
    now = utcnow()
    # Deferrable work always goes through the promoter, which holds it back under overload.
    queued = due_at <= now + horizon() and not deferrable
    return {
        "due_at": due_at,
        "token": new_token(),
        "started_at": None,
        "state": JobState.QUEUED if queued else JobState.SCHEDULED,
        "queued_at": now if queued else None,
    }


def place(job: Job, due_at: datetime) -> None:
    """Give the job a new due time and token; queue it now if it is due within the horizon."""
    for name, value in _placement(due_at, deferrable=job.deferrable).items():
        setattr(job, name, value)
    if job.state == JobState.QUEUED:
        outbox.publish_after_commit(job)
