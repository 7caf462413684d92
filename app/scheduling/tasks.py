from datetime import datetime
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready
from celery.worker.request import Request
from flask import current_app

from app.database import DATABASE_DOWN
from app.scheduling import batches, promoter, retention, runner
from app.scheduling.clock import clock_of
from app.scheduling.outbox import RUN_BATCH_TASK, RUN_TASK, Placement


class DueRequest(Request):
    """A job's message, held until its ETA on the database's clock, not this machine's.

    Celery's timer fires when this machine's clock reaches the ETA: 5 s early on a clock 5 s
    ahead. The ETA it is given is moved by the measured offset (see clock.py).
    """

    @property
    def eta(self) -> datetime | None:
        eta = super().eta
        if eta is None:
            return None
        return eta - clock_of(self.task.flask_app.config["SQLALCHEMY_DATABASE_URI"]).offset()


# A database outage retries the message (with backoff) instead of losing it.
_RUNNING_JOBS: dict[str, Any] = {
    "Request": DueRequest,
    "autoretry_for": DATABASE_DOWN,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "max_retries": 20,
    "bind": True,
}


@shared_task(name=RUN_TASK, **_RUNNING_JOBS)
def run_job(
    self: Task,
    job_id: int,
    token: str,
    kind: str | None = None,
    subject_id: int | None = None,
    due_at: str | None = None,
) -> None:
    """Run a job; a database outage retries the message instead of losing it.

    The message may say what the job is (kind, subject, due time), so it can start without
    reading it. A message the broker delivers again (its worker was lost before acknowledging
    it) runs the job in the way that counts the attempt first.
    """
    sent = None
    if kind is not None and subject_id is not None and due_at is not None:
        sent = Placement(token, kind, subject_id, datetime.fromisoformat(due_at))
    runner.run(job_id=job_id, token=token, redelivered=_redelivered(self), sent=sent)


def _redelivered(task: Task) -> bool:
    """Whether the broker delivers this message again, its worker lost before acknowledging it."""
    return bool((task.request.delivery_info or {}).get("redelivered"))


@shared_task(name=RUN_BATCH_TASK, **_RUNNING_JOBS)
def run_jobs(self: Task, kind: str, jobs: list[list[Any]]) -> None:
    """Run several jobs of one kind, each [job id, token, subject id, due at] (batches.py)."""
    placements = [
        (job_id, Placement(token, kind, subject_id, datetime.fromisoformat(due_at)))
        for job_id, token, subject_id, due_at in jobs
    ]
    batches.run_batch(kind=kind, jobs=placements, redelivered=_redelivered(self))


@shared_task(name="scheduling.promote", autoretry_for=DATABASE_DOWN, max_retries=0)
def promote() -> None:
    promoter.promote()


@shared_task(name="scheduling.prune", autoretry_for=DATABASE_DOWN, max_retries=0)
def prune() -> None:
    """Delete the history past its retention (finished jobs, and what domains register)."""
    retention.prune()


@shared_task(name="scheduling.resend_queued", autoretry_for=DATABASE_DOWN, max_retries=5)
def resend_queued() -> None:
    if current_app.config["RESEND_ON_WORKER_START"]:
        promoter.resend_queued()


@worker_ready.connect
def _resend_when_ready(sender: Any, **kwargs: Any) -> None:
    """A worker that starts may follow one killed holding messages: have them sent again."""
    sender.app.send_task(resend_queued.name)
