from datetime import datetime

from celery import Task, shared_task

from app.scheduling import service


@shared_task(
    name=service.RUN_TASK,
    autoretry_for=service.DATABASE_DOWN,
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=20,
    bind=True,
)
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
        sent = service.Placement(token, kind, subject_id, datetime.fromisoformat(due_at))
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    service.run(job_id=job_id, token=token, redelivered=redelivered, sent=sent)


@shared_task(name="scheduling.promote", autoretry_for=service.DATABASE_DOWN, max_retries=0)
def promote() -> None:
    service.promote()
