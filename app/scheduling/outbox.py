"""The transactional outbox: a job's message is sent only once its transaction commits.

A job queued in a transaction waits in the session; the commit sends it; a rollback drops
it. If the broker is down, the jobs go back to `scheduled` and the promoter sends them later.
"""

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from amqp.exceptions import ChannelError
from amqp.exceptions import ConnectionError as AMQPConnectionError
from flask import current_app
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from app.celery_app import IO_QUEUE
from app.database import DATABASE_DOWN, utcnow
from app.extensions import db
from app.scheduling import clock
from app.scheduling.models import Job, JobState
from app.scheduling.registry import is_batched, is_io

log = logging.getLogger(__name__)

RUN_TASK = "scheduling.run_job"
RUN_BATCH_TASK = "scheduling.run_jobs"
_OUTBOX = "punctual.outbox"
REPR_MAX = 1024  # characters of a message's argsrepr, as Celery's
# What sending raises when the broker cannot take the message now (kombu's error after its
# retries, a refused or dropped socket, a channel closed by the broker). Anything else is a
# bug in what is sent, and retrying would never cure it.
BROKER_DOWN = (BrokerOperationalError, OSError, AMQPConnectionError, ChannelError)


class Placement(NamedTuple):
    """What a job's message says about it; true for as long as the job keeps the token."""

    token: str
    kind: str
    subject_id: int
    due_at: datetime


# The jobs one message carries: (job id, placement) pairs, all of one kind.
Message = list[tuple[int, Placement]]


def publish_after_commit(job: Job) -> None:
    if job.id is None:
        db.session.flush()  # the message needs the job's id
    add(job.id, Placement(job.token, job.kind, job.subject_id, job.due_at))


def add(job_id: int, placement: Placement) -> None:
    """Send this job's message when the session's transaction commits."""
    db.session.info.setdefault(_OUTBOX, {})[job_id] = placement


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
    """Send the jobs' messages; on a broker failure hand the rest back to the promoter.

    Just in time (JUST_IN_TIME), a job not yet due goes back to the promoter too, which sends
    it once due: a retry's backoff, or a message that arrived early, never becomes an ETA.
    """
    now = clock.now()
    if current_app.config["JUST_IN_TIME"]:
        early = {job_id: p for job_id, p in outbox.items() if p.due_at > now}
        if early:
            _unqueue(early)
            outbox = {job_id: p for job_id, p in outbox.items() if job_id not in early}
    messages = batched(outbox, now=now)
    for index, message in enumerate(messages):
        try:
            _send(message)
        except BROKER_DOWN as exc:  # the database still has the jobs
            unsent = {job_id: placement for rest in messages[index:] for job_id, placement in rest}
            log.warning(
                "broker unavailable (%s): %d job(s) left for the promoter", exc, len(unsent)
            )
            _unqueue(unsent)
            return
        except Exception as exc:
            job_ids = [job_id for job_id, _ in message]
            log.exception("jobs %s: their message could not be made; they fail", job_ids)
            for job_id, placement in message:
                _fail_unsendable(job_id, placement, error=exc)


def batched(outbox: dict[int, Placement], *, now: datetime) -> list[Message]:
    """The messages that carry these jobs: one per job, except for jobs of a batched kind due
    close together, which share one, sent for the latest due time among them.

    A job joins the batch before it while that delays it at most JOB_BATCH_WINDOW seconds past
    its own due time (or past now, for jobs already due), up to JOB_BATCH_SIZE jobs.
    """
    config = current_app.config
    size, window = config["JOB_BATCH_SIZE"], timedelta(seconds=config["JOB_BATCH_WINDOW"])
    messages: list[Message] = []
    by_kind: dict[str, Message] = defaultdict(list)
    for job_id, placement in outbox.items():
        if size > 1 and is_batched(placement.kind):
            by_kind[placement.kind].append((job_id, placement))
        else:
            messages.append([(job_id, placement)])
    for jobs in by_kind.values():
        jobs.sort(key=lambda job: job[1].due_at)
        batch: Message = []
        for job in jobs:
            if batch and (
                len(batch) >= size
                or max(job[1].due_at, now) - max(batch[0][1].due_at, now) > window
            ):
                messages.append(batch)
                batch = []
            batch.append(job)
        messages.append(batch)
    return messages


def _send(message: Message) -> None:
    celery = current_app.extensions["celery"]
    job_id, first = message[0]
    due_at = max(placement.due_at for _, placement in message)
    options = {
        # Overdue (on the database's clock: the promoter may run on a machine whose clock is
        # ahead) goes without an ETA, so the worker need not hold it.
        "eta": due_at if due_at > clock.now() else None,
        "retry_policy": current_app.config["PUBLISH_RETRY_POLICY"],
        "queue": IO_QUEUE if is_io(first.kind) else None,
    }
    if len(message) == 1:
        kwargs = {
            "kind": first.kind,
            "subject_id": first.subject_id,
            "due_at": first.due_at.isoformat(),
        }
        args: tuple = (job_id, first.token)
        celery.send_task(RUN_TASK, args=args, kwargs=kwargs, **options, **_reprs(args, kwargs))
    else:
        jobs = [[i, p.token, p.subject_id, p.due_at.isoformat()] for i, p in message]
        args = (first.kind, jobs)
        celery.send_task(RUN_BATCH_TASK, args=args, **options, **_reprs(args, {}))


def _reprs(args: tuple, kwargs: dict[str, Any]) -> dict[str, str]:
    """The arguments as a message's header shows them (to events and monitors), made with
    repr: Celery's own saferepr, made for any object, was nearly a quarter of a publish's calls."""
    return {"argsrepr": repr(args)[:REPR_MAX], "kwargsrepr": repr(kwargs)[:REPR_MAX]}


def _fail_unsendable(job_id: int, placement: Placement, *, error: Exception) -> None:
    """Fail a job whose message cannot be made at all: shown as failed, never retried forever."""
    with db.engine.begin() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == job_id, Job.token == placement.token, Job.state == JobState.QUEUED)
            .values(
                state=JobState.FAILED,
                finished_at=utcnow(),
                last_error=f"could not send: {type(error).__name__}: {error}"[:2000],
            )
        )


def _unqueue(unsent: dict[int, Placement]) -> None:
    """Mark jobs whose message was not sent as scheduled, so a promotion sends them."""
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
