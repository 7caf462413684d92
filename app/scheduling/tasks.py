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
def run_job(self: Task, job_id: int, token: str) -> None:
    """Run a job; a database outage retries the message instead of losing it.

    A message the broker delivers again (its worker was lost before acknowledging it) runs
    the job in the way that counts the attempt first.
    """
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    service.run(job_id=job_id, token=token, redelivered=redelivered)


@shared_task(name="scheduling.promote", autoretry_for=service.DATABASE_DOWN, max_retries=0)
def promote() -> None:
    service.promote()
