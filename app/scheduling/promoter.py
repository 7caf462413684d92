"""The promoter (run by beat every PROMOTER_INTERVAL): hands the broker what comes due.

Each run queues the jobs entering the horizon, re-sends messages that were lost (queued, long
overdue, never started) and recovers jobs whose worker died mid-run. Rows are taken with
SKIP LOCKED, so several promoters at once share the work instead of doubling it.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select

from app.celery_app import IO_QUEUE
from app.extensions import db
from app.scheduling import clock, outbox
from app.scheduling.broker import queue_depth
from app.scheduling.models import Job, JobState, job_fields
from app.scheduling.outbox import publish_after_commit
from app.scheduling.service import horizon, seconds, supersede
from app.scheduling.statements import QUEUE_ENTERING, record_promoter_run

log = logging.getLogger(__name__)


def _entering(now: datetime) -> Any:
    return (Job.state == JobState.SCHEDULED) & (Job.due_at <= now + horizon())


def _lost(now: datetime) -> Any:
    """Queued long overdue and never started (its message lost), or running past the timeout
    (its worker died)."""
    lost = now - seconds("JOB_LOST_AFTER")
    return or_(
        (Job.state == JobState.QUEUED) & (Job.due_at < lost) & (Job.queued_at < lost),
        (Job.state == JobState.RUNNING) & (Job.started_at < now - seconds("JOB_RUN_TIMEOUT")),
    )


def _deferrable(now: datetime) -> Any:
    return _entering(now) & Job.deferrable.is_(True)


def promote(*, batch_size: int = 500) -> dict[str, int]:
    """Queue jobs entering the horizon, re-send lost messages, recover jobs of dead workers.

    Must-happen work is never held. Deferrable jobs fill the broker's queue only up to
    BACKPRESSURE_QUEUE_LIMIT waiting messages; the rest stay in the database (counted as held
    back) until the queue drains.
    """
    counts = {"promoted": 0, "resent": 0, "recovered": 0, "superseded": 0, "held_back": 0}
    _queue_entering(counts, deferrable=False, batch_size=batch_size)
    _promote_where(_lost, counts, batch_size=batch_size)
    left = _queue_entering(counts, deferrable=True, batch_size=batch_size, limit=_room_in_queue())
    if left == 0:  # the queue is full: count what waits
        counts["held_back"] = db.session.execute(
            select(func.count(Job.id)).where(_deferrable(clock.now()))
        ).scalar_one()
    dialect = db.session.get_bind().dialect.name
    db.session.execute(record_promoter_run(dialect), {"now": clock.now()})
    db.session.commit()
    if any(counts.values()):
        log.info("promoter: %s", counts)
    return counts


def resend_queued(*, batch_size: int = 500) -> dict[str, int]:
    """Send every queued job again: a worker starts on a broker that loses what a killed
    worker held (the embedded default), and nothing else would send them before
    JOB_LOST_AFTER. A message that was not lost runs its job once all the same: the second
    delivery finds the job done, or moved on to a new token."""
    counts = {"resent": 0, "recovered": 0, "superseded": 0, "promoted": 0}
    _promote_where(lambda now: Job.state == JobState.QUEUED, counts, batch_size=batch_size)
    log.info("worker start: %d queued job(s) sent again", counts["resent"])
    return counts


def _queue_entering(
    counts: dict[str, int], *, deferrable: bool, batch_size: int, limit: int | None = None
) -> int | None:
    """Queue scheduled jobs entering the horizon, oldest due first, at most `limit`, a batch
    per statement and transaction; what is left of the limit."""
    while limit is None or limit > 0:
        now = clock.now()
        size = batch_size if limit is None else min(batch_size, limit)
        queued = db.session.execute(
            QUEUE_ENTERING,
            {
                "until": now + horizon(),
                "held_back_when_busy": deferrable,
                "size": size,
                "now": now,
            },
        ).all()
        for job_id, token, kind, subject_id, due_at in queued:
            outbox.add(job_id, outbox.Placement(token, kind, subject_id, due_at))
        db.session.commit()
        counts["promoted"] += len(queued)
        if limit is not None:
            limit -= len(queued)
        if len(queued) < size:
            break
    return limit


def _promote_where(
    where: Callable[[datetime], Any],
    counts: dict[str, int],
    *,
    batch_size: int,
    limit: int | None = None,
) -> int | None:
    """Promote jobs matching `where(now)`, oldest due first, at most `limit`; what is left of it."""
    while limit is None or limit > 0:
        now = clock.now()
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
    """How many more messages the job queues take before the deeper of them (the prefork
    queue, the I/O queue) is over BACKPRESSURE_QUEUE_LIMIT; None when no depth can be read
    (work is not held back on a guess)."""
    limit = current_app.config["BACKPRESSURE_QUEUE_LIMIT"]
    celery = current_app.extensions["celery"]
    depths = []
    for queue in (celery.conf.task_default_queue, IO_QUEUE):
        try:
            depths.append(queue_depth(celery, queue))
        except Exception as exc:
            log.warning("promoter: could not read the depth of queue %s: %s", queue, exc)
    if not depths:
        return None
    depth = max(depths)
    room = max(limit - depth, 0)
    if room == 0:
        log.warning("promoter: queue depth %d over %d, holding back deferrable jobs", depth, limit)
    return room


def _promote_one(job: Job, now: datetime) -> str:
    if job.state == JobState.RUNNING and supersede(job):
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
