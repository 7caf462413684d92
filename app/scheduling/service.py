"""Schedule, publish, run and promote jobs.

Publishing follows the transactional outbox: a job is written in the caller's transaction and
handed to the broker only after that transaction commits, and only if it is due within the
horizon. The promoter hands over the rest as they come due and re-sends what was lost.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from flask import current_app
from flask_smorest import abort
from sqlalchemy import Insert, Update, bindparam, event, func, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.database import insert_with_conflicts, locked, utcnow
from app.extensions import db
from app.scheduling.broker import queue_depth
from app.scheduling.models import FINISHED, PENDING, PENDING_WHERE, Job, JobState, new_token
from app.scheduling.registry import instead_of_cancelling, kind_of

log = logging.getLogger(__name__)

RUN_TASK = "scheduling.run_job"
# Errors that mean "the database is not reachable right now": retried, never a job failure.
DATABASE_DOWN = (OperationalError, InterfaceError)
_OUTBOX = "punctual.outbox"
# A message may arrive a little before its ETA (clocks of different machines); past this, it
# is put back rather than run early.
_EARLY_TOLERANCE = timedelta(milliseconds=500)


def job_fields(job: Job) -> dict[str, object]:
    """What every log line about a job carries (as JSON fields with LOG_FORMAT=json)."""
    return {
        "job_id": job.id,
        "kind": job.kind,
        "subject_id": job.subject_id,
        "token": job.token,
        "state": job.state,
        "lateness": job.lateness,
    }


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=current_app.config[name])


# --- scheduling, in the caller's transaction ------------------------------------------------


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
    _place(job, due_at)
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
    placement = _placement(due_at, deferrable=deferrable)
    job_id = db.session.execute(
        _insert_unless_pending(db.session.get_bind().dialect.name),
        {
            "kind": kind,
            "subject_id": subject_id,
            "owner_id": owner_id,
            "deferrable": deferrable,
            "max_attempts": current_app.config["JOB_MAX_ATTEMPTS"],
            **placement,
        },
    ).scalar_one_or_none()
    if job_id is not None and placement["state"] == JobState.QUEUED:
        _outbox()[job_id] = Placement(placement["token"], kind, subject_id, due_at)
    return job_id


def reschedule(job: Job, *, due_at: datetime, deferrable: bool | None = None) -> None:
    """Move a pending job; the message already sent for it becomes a no-op."""
    if job.state not in PENDING:
        abort(409, message=f"Job {job.id} is {job.state}: only a pending job can be moved.")
    if deferrable is not None:
        job.deferrable = deferrable
    _place(job, due_at)


def cancel(job: Job) -> None:
    if job.state in FINISHED:
        abort(409, message=f"Job {job.id} has already {job.state}.")
    job.state = JobState.CANCELLED
    job.token = new_token()
    job.finished_at = utcnow()
    log.info("job %s %s:%s cancelled", job.id, job.kind, job.subject_id, extra=job_fields(job))


def requeue(job: Job) -> None:
    """Give a failed job a fresh set of attempts, due now."""
    if job.state != JobState.FAILED:
        abort(409, message=f"Job {job.id} is {job.state}: only a failed job can be requeued.")
    job.attempts = 0
    job.finished_at = None
    _place(job, utcnow())


def find_pending(*, kind: str, subject_id: int) -> Job | None:
    return db.session.execute(
        select(Job).where(Job.kind == kind, Job.subject_id == subject_id, Job.state.in_(PENDING))
    ).scalar_one_or_none()


def _placement(due_at: datetime, *, deferrable: bool) -> dict[str, Any]:
    """A job's due time, a new token, and its state: queued if due within the horizon."""
    now = utcnow()
    # Deferrable work always goes through the promoter, which holds it back under overload.
    queued = due_at <= now + _seconds("SCHEDULER_HORIZON") and not deferrable
    return {
        "due_at": due_at,
        "token": new_token(),
        "started_at": None,
        "state": JobState.QUEUED if queued else JobState.SCHEDULED,
        "queued_at": now if queued else None,
    }


def _place(job: Job, due_at: datetime) -> None:
    """Give the job a new due time and token; queue it now if it is due within the horizon."""
    for name, value in _placement(due_at, deferrable=job.deferrable).items():
        setattr(job, name, value)
    if job.state == JobState.QUEUED:
        publish_after_commit(job)


# --- the outbox: publish after commit --------------------------------------------------------


class Placement(NamedTuple):
    """What a job's message says about it; true for as long as the job keeps the token."""

    token: str
    kind: str
    subject_id: int
    due_at: datetime


def publish_after_commit(job: Job) -> None:
    if job.id is None:
        db.session.flush()  # the message needs the job's id
    _outbox()[job.id] = Placement(job.token, job.kind, job.subject_id, job.due_at)


def _outbox() -> dict[int, Placement]:
    """The messages to send when the session's transaction commits."""
    return db.session.info.setdefault(_OUTBOX, {})


@event.listens_for(Session, "after_commit")
def _publish_outbox(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: wait for the real commit
    outbox = session.info.pop(_OUTBOX, None)
    if outbox:
        publish(outbox)


@event.listens_for(Session, "after_rollback")
def _drop_outbox(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_OUTBOX, None)


def publish(outbox: dict[int, Placement]) -> None:
    """Send one message per job; on a broker failure hand the rest back to the promoter."""
    celery = current_app.extensions["celery"]
    now = utcnow()
    items = list(outbox.items())
    for index, (job_id, placement) in enumerate(items):
        try:
            celery.send_task(
                RUN_TASK,
                args=(job_id, placement.token),
                kwargs={
                    "kind": placement.kind,
                    "subject_id": placement.subject_id,
                    "due_at": placement.due_at.isoformat(),
                },
                eta=placement.due_at if placement.due_at > now else None,
                retry_policy=current_app.config["PUBLISH_RETRY_POLICY"],
            )
        except Exception as exc:  # any broker failure: the database still has the job
            unsent = dict(items[index:])
            log.warning(
                "broker unavailable (%s): %d job(s) left for the promoter", exc, len(unsent)
            )
            _unqueue(unsent)
            return


def _unqueue(unsent: dict[int, Placement]) -> None:
    """Mark jobs whose message could not be sent as scheduled, so the next promotion sends them."""
    try:
        with db.engine.begin() as connection:
            for job_id, placement in unsent.items():
                connection.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.token == placement.token,
                        Job.state == JobState.QUEUED,
                    )
                    .values(state=JobState.SCHEDULED, queued_at=None)
                )
    except DATABASE_DOWN as exc:
        # Still queued in the database: the promoter's sweep for lost messages finds them.
        log.warning("could not hand unsent jobs back to the promoter: %s", exc)


# --- the statements run for every job --------------------------------------------------------
# Built once, on the table: SQLAlchemy takes longer to build an ORM statement than PostgreSQL
# takes to run it (an UPDATE built per call: 850 us of CPU; built once: 240 us).

_job = Job.__table__
_READ_JOB = select(
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


_MARK_RUNNING = _marking(count_attempt=True, state=JobState.RUNNING)
_SUCCEEDED = {"state": JobState.SUCCEEDED, "finished_at": bindparam("finished"), "last_error": None}
_MARK_SUCCEEDED = {  # by whether the attempt was counted when the job started
    True: _marking(count_attempt=False, **_SUCCEEDED),
    False: _marking(count_attempt=True, **_SUCCEEDED),
}


@cache
def _insert_unless_pending(dialect: str) -> Insert:
    """INSERT a job, or nothing if one of its kind is pending for the subject."""
    return (
        insert_with_conflicts(_job, dialect)
        .on_conflict_do_nothing(
            index_elements=[_job.c.kind, _job.c.subject_id], index_where=PENDING_WHERE
        )
        .returning(_job.c.id)
    )


# --- running a job ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A job a worker has started: what its handler is told about it."""

    id: int
    kind: str
    subject_id: int
    token: str
    due_at: datetime
    started_at: datetime

    @property
    def lateness(self) -> float:
        return (self.started_at - self.due_at).total_seconds()

    def fields(self, state: str) -> dict[str, object]:
        """What every log line about the job carries, as job_fields does for a Job."""
        return {
            "job_id": self.id,
            "kind": self.kind,
            "subject_id": self.subject_id,
            "token": self.token,
            "state": state,
            "lateness": self.lateness,
        }


def run(
    *, job_id: int, token: str, redelivered: bool = False, sent: Placement | None = None
) -> None:
    """Run a job once, however many times its message is delivered.

    Most jobs run in one transaction: the handler runs, then the job is marked succeeded only
    if it still has this token and a pending state, so a job cancelled or moved meanwhile, or
    already run by a duplicate delivery, rolls the effect back. Rows are locked in one order,
    the domain's row (a poll, a device) before the job's. `sent` is what the message says
    about the job; without it the job is read first.

    A job with a slow `prepare` step, and a message delivered again after a worker was lost,
    first commit the start on its own: the attempt then counts even if the worker dies again,
    so a job that kills its worker fails after its attempts instead of looping.
    """
    claim = _claim(job_id=job_id, token=token, sent=sent)
    if claim is None:
        return
    counted = redelivered
    try:
        spec = kind_of(claim.kind)
        prepared: tuple[Any, ...] = ()
        counted = counted or spec.prepare is not None
        if counted:
            if _mark(_MARK_RUNNING, claim, (JobState.QUEUED, JobState.RUNNING)) is None:
                _refuse(job_id=job_id, token=token, now=claim.started_at)
                return
            db.session.commit()
            if spec.prepare is not None:
                prepared = (spec.prepare(claim.subject_id),)
                db.session.rollback()  # end its reads: the slow part held no lock
        spec.run(claim, *prepared)
        expected = (JobState.RUNNING,) if counted else (JobState.QUEUED, JobState.RUNNING)
        attempt = _mark(_MARK_SUCCEEDED[counted], claim, expected, finished=utcnow())
        if attempt is None:
            _refuse(job_id=job_id, token=token, now=claim.started_at)  # its effect rolled back
            return
        db.session.commit()
        log.info(
            "job %s %s:%s succeeded (attempt %d, %.3f s late)",
            job_id,
            claim.kind,
            claim.subject_id,
            attempt,
            claim.lateness,
            extra=claim.fields(JobState.SUCCEEDED),
        )
    except DATABASE_DOWN:
        db.session.rollback()
        raise
    except Exception as exc:
        db.session.rollback()
        log.exception(
            "job %s %s:%s failed",
            job_id,
            claim.kind,
            claim.subject_id,
            extra=claim.fields(JobState.RUNNING),
        )
        _record_failure(claim, error=exc, counted=counted)


def _claim(*, job_id: int, token: str, sent: Placement | None) -> Claim | None:
    """The job this message may start now, or None (see _refuse for why not).

    A message saying what its job is, and due, starts without reading the job: the UPDATE
    that marks it finds out whether the message was still good.
    """
    now = utcnow()
    if sent is not None and sent.due_at <= now + _EARLY_TOLERANCE:
        claim = Claim(job_id, sent.kind, sent.subject_id, token, sent.due_at, now)
    else:
        row = db.session.execute(_READ_JOB, {"job_id": job_id}).one_or_none()
        if (
            row is None
            or row.token != token
            or row.state not in (JobState.QUEUED, JobState.RUNNING)
            or row.due_at > now + _EARLY_TOLERANCE
            or row.attempts >= row.max_attempts
        ):
            _refuse(job_id=job_id, token=token, now=now)
            return None
        claim = Claim(job_id, row.kind, row.subject_id, token, row.due_at, now)
    log.info(
        "job %s %s:%s started, %.3f s late",
        job_id,
        claim.kind,
        claim.subject_id,
        claim.lateness,
        extra=claim.fields(JobState.RUNNING),
    )
    return claim


def _mark(statement: Update, claim: Claim, expected: tuple[str, ...], **values: Any) -> int | None:
    """Run a marking statement for the claim; the job's attempts, or None if it no longer
    has the claim's token and an expected state.

    One UPDATE: it waits for a transaction that holds the row (one cancelling the job, or a
    duplicate delivery finishing it) and then sees that transaction's outcome.
    """
    return db.session.execute(
        statement,
        {
            "job_id": claim.id,
            "claim_token": claim.token,
            "expected": list(expected),
            "started": claim.started_at,
            **values,
        },
    ).scalar_one_or_none()


def _refuse(*, job_id: int, token: str, now: datetime) -> None:
    """Why a message cannot start its job, and what to do about it."""
    db.session.rollback()
    job = locked(Job, job_id)
    if job is None or job.token != token:
        db.session.rollback()
        log.info(
            "job %s: stale message (token %s), ignored",
            job_id,
            token,
            extra={"job_id": job_id, "token": token},
        )
    elif job.state not in (JobState.QUEUED, JobState.RUNNING):
        db.session.rollback()
        log.info(
            "job %s is %s: duplicate message ignored", job_id, job.state, extra=job_fields(job)
        )
    elif job.due_at > now + _EARLY_TOLERANCE:
        publish_after_commit(job)
        early, details = job.due_at - now, job_fields(job)
        db.session.commit()
        log.warning(
            "job %s arrived %s early; sent again for its time", job_id, early, extra=details
        )
    elif job.attempts >= job.max_attempts:
        # Only a worker that died mid-run (a poison job?) gets here: failures are counted in
        # _record_failure.
        job.state = JobState.FAILED
        job.finished_at = now
        job.last_error = job.last_error or "the worker was lost while running it"
        attempts, details = job.attempts, job_fields(job)
        db.session.commit()
        log.error(
            "job %s failed: %d attempts, each lost with its worker",
            job_id,
            attempts,
            extra=details,
        )
    else:  # it changed between the read and the lock; the promoter re-sends it if need be
        db.session.rollback()
        log.warning("job %s changed while its message was read; ignored", job_id)


def _record_failure(claim: Claim, *, error: Exception, counted: bool) -> None:
    job = locked(Job, claim.id)
    pending = (JobState.RUNNING,) if counted else (JobState.QUEUED, JobState.RUNNING)
    if job is None or job.token != claim.token or job.state not in pending:
        db.session.rollback()
        return
    if not counted:  # the attempt's transaction rolled back: count it here
        job.attempts += 1
        job.started_at = claim.started_at
    job.last_error = f"{type(error).__name__}: {error}"[:2000]
    job_id = claim.id
    if job.attempts >= job.max_attempts:
        job.state = JobState.FAILED
        job.finished_at = utcnow()
        log.error(
            "job %s failed for good after %d attempts", job_id, job.attempts, extra=job_fields(job)
        )
    elif not _supersede(job):
        base = current_app.config["JOB_RETRY_BACKOFF"]
        delay = min(base * 2 ** (job.attempts - 1), current_app.config["JOB_RETRY_BACKOFF_MAX"])
        _place(job, utcnow() + timedelta(seconds=delay))
        log.info(
            "job %s retries in %.1f s (attempt %d)",
            job_id,
            delay,
            job.attempts,
            extra=job_fields(job),
        )
    db.session.commit()


# --- the promoter ----------------------------------------------------------------------------


def promote(*, batch_size: int = 500) -> dict[str, int]:
    """Queue jobs entering the horizon, re-send lost messages, recover jobs of dead workers.

    Must-happen work is never held. Deferrable jobs fill the broker's queue only up to
    BACKPRESSURE_QUEUE_LIMIT waiting messages; the rest stay in the database (counted as held
    back) until the queue drains.
    """
    counts = {"promoted": 0, "resent": 0, "recovered": 0, "superseded": 0, "held_back": 0}

    def entering(now: datetime) -> Any:
        return (Job.state == JobState.SCHEDULED) & (
            Job.due_at <= now + _seconds("SCHEDULER_HORIZON")
        )

    def must_happen(now: datetime) -> Any:
        lost = now - _seconds("JOB_LOST_AFTER")
        return or_(
            entering(now) & Job.deferrable.is_(False),
            (Job.state == JobState.QUEUED) & (Job.due_at < lost) & (Job.queued_at < lost),
            (Job.state == JobState.RUNNING) & (Job.started_at < now - _seconds("JOB_RUN_TIMEOUT")),
        )

    _promote_where(must_happen, counts, batch_size=batch_size)
    room = _room_in_queue()
    left = _promote_where(
        lambda now: entering(now) & Job.deferrable.is_(True),
        counts,
        batch_size=batch_size,
        limit=room,
    )
    if left == 0:  # the queue is full: count what waits
        counts["held_back"] = db.session.execute(
            select(func.count(Job.id)).where(entering(utcnow()) & Job.deferrable.is_(True))
        ).scalar_one()
        db.session.commit()
    if any(counts.values()):
        log.info("promoter: %s", counts)
    return counts


def _promote_where(
    where: Callable[[datetime], Any],
    counts: dict[str, int],
    *,
    batch_size: int,
    limit: int | None = None,
) -> int | None:
    """Promote jobs matching `where(now)`, oldest due first, at most `limit`; what is left of it."""
    while limit is None or limit > 0:
        now = utcnow()
        size = batch_size if limit is None else min(batch_size, limit)
        jobs = (
            db.session.execute(
                select(Job)
                .where(where(now))
                .order_by(Job.due_at)
                .limit(size)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for job in jobs:
            counts[_promote_one(job, now)] += 1
        db.session.commit()
        if limit is not None:
            limit -= len(jobs)
        if len(jobs) < size:
            break
    return limit


def _room_in_queue() -> int | None:
    """How many more messages the queue takes before it is over BACKPRESSURE_QUEUE_LIMIT;
    None when its depth cannot be read (work is not held back on a guess)."""
    limit = current_app.config["BACKPRESSURE_QUEUE_LIMIT"]
    celery = current_app.extensions["celery"]
    try:
        depth = queue_depth(celery, celery.conf.task_default_queue)
    except Exception as exc:
        log.warning("promoter: could not read the queue depth: %s", exc)
        return None
    room = max(limit - depth, 0)
    if room == 0:
        log.warning("promoter: queue depth %d over %d, holding back deferrable jobs", depth, limit)
    return room


def _supersede(job: Job) -> bool:
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


def _promote_one(job: Job, now: datetime) -> str:
    if job.state == JobState.RUNNING and _supersede(job):
        return "superseded"
    outcome = {
        JobState.SCHEDULED: "promoted",
        JobState.QUEUED: "resent",
        JobState.RUNNING: "recovered",
    }[JobState(job.state)]
    if outcome != "promoted":
        log.warning(
            "job %s %s:%s %s (was %s)",
            job.id,
            job.kind,
            job.subject_id,
            outcome,
            job.state,
            extra=job_fields(job),
        )
    job.state = JobState.QUEUED
    job.queued_at = now
    publish_after_commit(job)
    return outcome


# --- reading ---------------------------------------------------------------------------------


def get_job(*, job_id: int, user_id: int) -> Job:
    """A job of the user's: another user's is a 403, as their devices are."""
    job = db.session.get(Job, job_id)
    if job is None:
        abort(404, message=f"Job {job_id} does not exist.")
    if job.owner_id != user_id:
        abort(403, message=f"Job {job_id} belongs to another user.")
    return job


def jobs_query(
    *,
    owner_id: int | None,
    state: str | None = None,
    kind: str | None = None,
    subject_id: int | None = None,
) -> Any:
    """Jobs latest due first: one user's, or (owner_id None: the operator's CLI) everyone's.

    The owner is a required argument so that no listing forgets it: a job's subject and
    last_error (a vendor's error text) are its owner's business.
    """
    query = select(Job).order_by(Job.due_at.desc(), Job.id.desc())
    if owner_id is not None:
        query = query.where(Job.owner_id == owner_id)
    if state:
        query = query.where(Job.state == state)
    if kind:
        query = query.where(Job.kind == kind)
    if subject_id is not None:
        query = query.where(Job.subject_id == subject_id)
    return query


def cancel_job(*, job_id: int, user_id: int) -> Job:
    job = locked(Job, job_id)
    if job is None:
        abort(404, message=f"Job {job_id} does not exist.")
    if job.owner_id != user_id:
        abort(403, message=f"Job {job_id} belongs to another user.")
    instead = instead_of_cancelling(job.kind, subject_id=job.subject_id)
    if instead is not None:
        abort(409, message=f"Job {job_id} ({job.kind}) cannot be cancelled on its own. {instead}")
    cancel(job)
    db.session.commit()
    return job
