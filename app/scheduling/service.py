"""Schedule, publish, run and promote jobs.

Publishing follows the transactional outbox: a job is written in the caller's transaction and
handed to the broker only after that transaction commits, and only if it is due within the
horizon. The promoter hands over the rest as they come due and re-sends what was lost.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_smorest import abort
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from app.database import locked, utcnow
from app.extensions import db
from app.scheduling.broker import queue_depth
from app.scheduling.models import FINISHED, PENDING, Job, JobState, new_token
from app.scheduling.registry import kind_of

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


def schedule_once(*, kind: str, subject_id: int, due_at: datetime) -> Job:
    """Schedule a job unless one of the same kind is already pending for the subject.

    The partial unique index on pending jobs is the arbiter, so two transactions racing to
    schedule the same follow-up leave exactly one.
    """
    pending = find_pending(kind=kind, subject_id=subject_id)
    if pending is not None:
        return pending
    try:
        with db.session.begin_nested():
            return schedule(kind=kind, subject_id=subject_id, due_at=due_at)
    except IntegrityError:
        pending = find_pending(kind=kind, subject_id=subject_id)
        if pending is None:
            raise
        return pending


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


def _place(job: Job, due_at: datetime) -> None:
    """Give the job a new due time and token; queue it now if it is due within the horizon."""
    now = utcnow()
    job.due_at = due_at
    job.token = new_token()
    job.started_at = None
    # Deferrable work always goes through the promoter, which holds it back under overload.
    if due_at <= now + _seconds("SCHEDULER_HORIZON") and not job.deferrable:
        job.state = JobState.QUEUED
        job.queued_at = now
        publish_after_commit(job)
    else:
        job.state = JobState.SCHEDULED
        job.queued_at = None


# --- the outbox: publish after commit --------------------------------------------------------


def publish_after_commit(job: Job) -> None:
    db.session.flush()  # the message needs the job's id
    db.session.info.setdefault(_OUTBOX, {})[job.id] = (job.token, job.due_at)


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


def publish(outbox: dict[int, tuple[str, datetime]]) -> None:
    """Send one message per job; on a broker failure hand the rest back to the promoter."""
    celery = current_app.extensions["celery"]
    now = utcnow()
    items = list(outbox.items())
    for index, (job_id, (token, due_at)) in enumerate(items):
        try:
            celery.send_task(
                RUN_TASK,
                args=(job_id, token),
                eta=due_at if due_at > now else None,
                retry_policy=current_app.config["PUBLISH_RETRY_POLICY"],
            )
        except Exception as exc:  # any broker failure: the database still has the job
            unsent = dict(items[index:])
            log.warning(
                "broker unavailable (%s): %d job(s) left for the promoter", exc, len(unsent)
            )
            _unqueue(unsent)
            return


def _unqueue(unsent: dict[int, tuple[str, datetime]]) -> None:
    """Mark jobs whose message could not be sent as scheduled, so the next promotion sends them."""
    try:
        with db.engine.begin() as connection:
            for job_id, (token, _) in unsent.items():
                connection.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.token == token, Job.state == JobState.QUEUED)
                    .values(state=JobState.SCHEDULED, queued_at=None)
                )
    except DATABASE_DOWN as exc:
        # Still queued in the database: the promoter's sweep for lost messages finds them.
        log.warning("could not hand unsent jobs back to the promoter: %s", exc)


# --- running a job ---------------------------------------------------------------------------


def run(*, job_id: int, token: str) -> None:
    """Run a job once, however many times its message is delivered."""
    claimed = _claim(job_id=job_id, token=token)
    if claimed is None:
        return
    kind, subject_id = claimed
    try:
        spec = kind_of(kind)
        prepared: tuple[Any, ...] = ()
        if spec.prepare is not None:
            prepared = (spec.prepare(subject_id),)
            db.session.rollback()  # end its reads: the slow part held no lock
        job = locked(Job, job_id)
        if job is None or job.token != token or job.state != JobState.RUNNING:
            db.session.rollback()
            log.info("job %s changed while it started; not running it", job_id)
            return
        spec.run(job, *prepared)
        job.state = JobState.SUCCEEDED
        job.finished_at = utcnow()
        job.last_error = None
        details = job_fields(job)
        db.session.commit()
        log.info(
            "job %s %s:%s succeeded (attempt %d, %.3f s late)",
            job_id,
            kind,
            subject_id,
            job.attempts,
            job.lateness or 0,
            extra=details,
        )
    except DATABASE_DOWN:
        db.session.rollback()
        raise
    except Exception as exc:
        db.session.rollback()
        log.exception(
            "job %s %s:%s failed",
            job_id,
            kind,
            subject_id,
            extra={"job_id": job_id, "kind": kind, "subject_id": subject_id, "token": token},
        )
        _record_failure(job_id=job_id, token=token, error=exc)


def _claim(*, job_id: int, token: str) -> tuple[str, int] | None:
    """Mark the job running, in a transaction of its own so that the start is visible."""
    job = locked(Job, job_id)
    now = utcnow()
    if job is None or job.token != token:
        db.session.rollback()
        log.info(
            "job %s: stale message (token %s), ignored",
            job_id,
            token,
            extra={"job_id": job_id, "token": token},
        )
        return None
    if job.state not in (JobState.QUEUED, JobState.RUNNING):
        db.session.rollback()
        log.info(
            "job %s is %s: duplicate message ignored", job_id, job.state, extra=job_fields(job)
        )
        return None
    if job.due_at > now + _EARLY_TOLERANCE:
        publish_after_commit(job)
        db.session.commit()
        log.warning(
            "job %s arrived %s early; sent again for its time",
            job_id,
            job.due_at - now,
            extra=job_fields(job),
        )
        return None
    if job.attempts >= job.max_attempts:
        # Only a worker that died mid-run (a poison job?) gets here: failures are counted below.
        job.state = JobState.FAILED
        job.finished_at = now
        job.last_error = job.last_error or "the worker was lost while running it"
        db.session.commit()
        log.error(
            "job %s failed: %d attempts, each lost with its worker",
            job_id,
            job.attempts,
            extra=job_fields(job),
        )
        return None
    job.state = JobState.RUNNING
    job.started_at = now
    job.attempts += 1
    kind, subject_id, lateness, details = job.kind, job.subject_id, job.lateness, job_fields(job)
    db.session.commit()
    log.info("job %s %s:%s started, %.3f s late", job_id, kind, subject_id, lateness, extra=details)
    return kind, subject_id


def _record_failure(*, job_id: int, token: str, error: Exception) -> None:
    job = locked(Job, job_id)
    if job is None or job.token != token or job.state != JobState.RUNNING:
        db.session.rollback()
        return
    job.last_error = f"{type(error).__name__}: {error}"[:2000]
    if job.attempts >= job.max_attempts:
        job.state = JobState.FAILED
        job.finished_at = utcnow()
        log.error(
            "job %s failed for good after %d attempts", job_id, job.attempts, extra=job_fields(job)
        )
    else:
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

    While the broker's queue is deeper than BACKPRESSURE_QUEUE_LIMIT, deferrable jobs stay in
    the database (counted as held back); the rest is never held.
    """
    counts = {"promoted": 0, "resent": 0, "recovered": 0, "held_back": 0}
    overloaded = _broker_overloaded()
    while True:
        now = utcnow()
        horizon = now + _seconds("SCHEDULER_HORIZON")
        lost = now - _seconds("JOB_LOST_AFTER")
        stuck = now - _seconds("JOB_RUN_TIMEOUT")
        entering = (Job.state == JobState.SCHEDULED) & (Job.due_at <= horizon)
        if overloaded:
            entering &= Job.deferrable.is_(False)
        jobs = (
            db.session.execute(
                select(Job)
                .where(
                    or_(
                        entering,
                        (Job.state == JobState.QUEUED)
                        & (Job.due_at < lost)
                        & (Job.queued_at < lost),
                        (Job.state == JobState.RUNNING) & (Job.started_at < stuck),
                    )
                )
                .order_by(Job.due_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for job in jobs:
            counts[_promote_one(job, now)] += 1
        db.session.commit()
        if len(jobs) < batch_size:
            break
    if overloaded:
        counts["held_back"] = db.session.execute(
            select(func.count(Job.id)).where(
                Job.state == JobState.SCHEDULED,
                Job.deferrable.is_(True),
                Job.due_at <= utcnow() + _seconds("SCHEDULER_HORIZON"),
            )
        ).scalar_one()
        db.session.commit()
    if any(counts.values()):
        log.info("promoter: %s", counts)
    return counts


def _broker_overloaded() -> bool:
    limit = current_app.config["BACKPRESSURE_QUEUE_LIMIT"]
    celery = current_app.extensions["celery"]
    try:
        depth = queue_depth(celery, celery.conf.task_default_queue)
    except Exception as exc:  # unknown depth: do not hold work back on a guess
        log.warning("promoter: could not read the queue depth: %s", exc)
        return False
    if depth > limit:
        log.warning("promoter: queue depth %d over %d, holding back deferrable jobs", depth, limit)
        return True
    return False


def _promote_one(job: Job, now: datetime) -> str:
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


def get_job(*, job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None:
        abort(404, message=f"Job {job_id} does not exist.")
    return job


def jobs_query(
    *, state: str | None = None, kind: str | None = None, subject_id: int | None = None
) -> Any:
    query = select(Job).order_by(Job.due_at.desc(), Job.id.desc())
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
    cancel(job)
    db.session.commit()
    return job
