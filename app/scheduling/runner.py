"""Running a job once, however many times its message is delivered.

A message carries the job's id and token. The runner claims the job, runs its kind's handler,
and marks it succeeded in the handler's transaction, only if it still has that token and a
pending state: a job cancelled or moved meanwhile, or already run by a duplicate delivery,
rolls the effect back. A failure is recorded and retried with backoff, up to the job's
attempts.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Update

from app.database import DATABASE_DOWN, locked
from app.extensions import db
from app.scheduling import clock, service
from app.scheduling.models import Claim, Job, JobState, job_fields
from app.scheduling.outbox import Placement, publish_after_commit
from app.scheduling.registry import JobKind, kind_of
from app.scheduling.retry import backoff
from app.scheduling.statements import MARK_RUNNING, MARK_SUCCEEDED, READ_JOB

log = logging.getLogger(__name__)

# A message may arrive a little before its ETA (clocks of different machines); past this, it
# is put back rather than run early.
EARLY_TOLERANCE = timedelta(milliseconds=500)
STARTABLE = (JobState.QUEUED, JobState.RUNNING)


def run(
    *, job_id: int, token: str, redelivered: bool = False, sent: Placement | None = None
) -> None:
    """Run a job once, however many times its message is delivered.

    Most jobs run in one transaction: the handler runs, then the job is marked succeeded.
    Rows are locked in one order, the domain's row (a poll, a device) before the job's.
    `sent` is what the message says about the job; without it the job is read first.

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
        counted = counted or spec.commits_start
        attempt = _run_claimed(claim, spec, counted=counted)
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
            extra=job_fields(claim, state=JobState.RUNNING),
        )
        _record_failure(claim, error=exc, counted=counted)
        return
    if attempt is not None:
        log_succeeded(claim, attempt)


def log_started(claim: Claim) -> None:
    log.info(
        "job %s %s:%s started, %.3f s late",
        claim.id,
        claim.kind,
        claim.subject_id,
        claim.lateness,
        extra=job_fields(claim, state=JobState.RUNNING),
    )


def log_succeeded(claim: Claim, attempt: int, *, batch: str = "") -> None:
    log.info(
        "job %s %s:%s succeeded (attempt %d, %.3f s late%s)",
        claim.id,
        claim.kind,
        claim.subject_id,
        attempt,
        claim.lateness,
        batch,
        extra=job_fields(claim, state=JobState.SUCCEEDED),
    )


def _run_claimed(claim: Claim, spec: JobKind, *, counted: bool) -> int | None:
    """Run the handler and mark the job succeeded: the attempt it was, or None if the job
    changed meanwhile (then its effect is rolled back)."""
    prepared: tuple[Any, ...] = ()
    if counted:
        if _mark(MARK_RUNNING, claim, STARTABLE) is None:
            refuse(job_id=claim.id, token=claim.token, now=claim.started_at)
            return None
        db.session.commit()
        if spec.prepare is not None:
            prepared = (spec.prepare(claim.subject_id),)
            db.session.rollback()  # end its reads: the slow part held no lock
    spec.run_one(claim, *prepared)
    expected = (JobState.RUNNING,) if counted else STARTABLE
    attempt = _mark(MARK_SUCCEEDED[counted], claim, expected, finished=clock.now())
    if attempt is None:
        refuse(job_id=claim.id, token=claim.token, now=claim.started_at)
        return None
    db.session.commit()
    return attempt


def _claim(*, job_id: int, token: str, sent: Placement | None) -> Claim | None:
    """The job this message may start now, or None (see refuse() for why not).

    A message saying what its job is, and due, starts without reading the job: the UPDATE
    that marks it finds out whether the message was still good.
    """
    now = clock.now()
    if sent is not None and sent.due_at <= now + EARLY_TOLERANCE:
        claim = Claim(job_id, sent.kind, sent.subject_id, token, sent.due_at, now)
    else:
        row = db.session.execute(READ_JOB, {"job_id": job_id}).one_or_none()
        if (
            row is None
            or row.token != token
            or row.state not in STARTABLE
            or row.due_at > now + EARLY_TOLERANCE
            or row.attempts >= row.max_attempts
        ):
            refuse(job_id=job_id, token=token, now=now)
            return None
        claim = Claim(job_id, row.kind, row.subject_id, token, row.due_at, now)
    log_started(claim)
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


def refuse(*, job_id: int, token: str, now: datetime) -> None:
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
    elif job.state not in STARTABLE:
        db.session.rollback()
        log.info(
            "job %s is %s: duplicate message ignored", job_id, job.state, extra=job_fields(job)
        )
    elif job.due_at > now + EARLY_TOLERANCE:
        publish_after_commit(job)
        early, details = job.due_at - now, job_fields(job)
        db.session.commit()
        log.warning(
            "job %s arrived %s early; sent again for its time", job_id, early, extra=details
        )
    elif job.attempts >= job.max_attempts:
        _fail_lost(job, now=now)
    else:  # it changed between the read and the lock; the promoter re-sends it if need be
        db.session.rollback()
        log.warning("job %s changed while its message was read; ignored", job_id)


def _fail_lost(job: Job, *, now: datetime) -> None:
    """Fail a job whose every attempt was lost with its worker (a poison job?); failures
    that were caught are counted in _record_failure instead."""
    job.state = JobState.FAILED
    job.finished_at = now
    job.last_error = job.last_error or "the worker was lost while running it"
    job_id, attempts, details = job.id, job.attempts, job_fields(job)
    db.session.commit()
    log.error(
        "job %s failed: %d attempts, each lost with its worker", job_id, attempts, extra=details
    )


def _record_failure(claim: Claim, *, error: Exception, counted: bool) -> None:
    job = locked(Job, claim.id)
    pending = (JobState.RUNNING,) if counted else STARTABLE
    if job is None or job.token != claim.token or job.state not in pending:
        db.session.rollback()
        return
    if not counted:  # the attempt's transaction rolled back: count it here
        job.attempts += 1
        job.started_at = claim.started_at
    job.last_error = f"{type(error).__name__}: {error}"[:2000]
    if job.attempts >= job.max_attempts:
        job.state = JobState.FAILED
        job.finished_at = clock.now()
        log.error(
            "job %s failed for good after %d attempts", job.id, job.attempts, extra=job_fields(job)
        )
    elif not service.supersede(job):
        config = current_app.config
        delay = backoff(
            job.attempts, base=config["JOB_RETRY_BACKOFF"], cap=config["JOB_RETRY_BACKOFF_MAX"]
        )
        service.place(job, clock.now() + timedelta(seconds=delay))
        log.info(
            "job %s retries in %.1f s (attempt %d)",
            job.id,
            delay,
            job.attempts,
            extra=job_fields(job),
        )
    db.session.commit()
