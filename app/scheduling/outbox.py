"""The transactional outbox: a job's message is sent only once its transaction commits.

A job queued in a transaction waits in the session; the commit sends it; a rollback drops
it. If the broker is down, the jobs go back to `scheduled` and the promoter sends them later.
"""

import logging
from datetime import datetime
from typing import NamedTuple

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
from app.scheduling.registry import is_io

log = logging.getLogger(__name__)

RUN_TASK = "scheduling.run_job"
_OUTBOX = "punctual.outbox"
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
    """Send one message per job; on a broker failure hand the rest back to the promoter."""
    items = list(outbox.items())
    for index, (job_id, placement) in enumerate(items):
        try:
            _send(job_id, placement)
        except BROKER_DOWN as exc:  # the database still has the job
            unsent = dict(items[index:])
            log.warning(
                "broker unavailable (%s): %d job(s) left for the promoter", exc, len(unsent)
            )
            _unqueue(unsent)
            return
        except Exception as exc:
            log.exception("job %s: its message could not be made; the job fails", job_id)
            _fail_unsendable(job_id, placement, error=exc)


def _send(job_id: int, placement: Placement) -> None:
    celery = current_app.extensions["celery"]
    celery.send_task(
        RUN_TASK,
        args=(job_id, placement.token),
        kwargs={
            "kind": placement.kind,
            "subject_id": placement.subject_id,
            "due_at": placement.due_at.isoformat(),
        },
        # Overdue (on the database's clock: the promoter may run on a machine whose clock is
        # ahead) goes without an ETA, so the worker need not hold it.
        eta=placement.due_at if placement.due_at > clock.now() else None,
        retry_policy=current_app.config["PUBLISH_RETRY_POLICY"],
        queue=IO_QUEUE if is_io(placement.kind) else None,
    )


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
