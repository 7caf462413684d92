from celery import shared_task

from app.scheduling import service


@shared_task(
    name=service.RUN_TASK,
    autoretry_for=service.DATABASE_DOWN,
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=20,
)
def run_job(job_id: int, token: str) -> None:
    """Run a job; a database outage retries the message instead of losing it."""
    service.run(job_id=job_id, token=token)


@shared_task(name="scheduling.promote", autoretry_for=service.DATABASE_DOWN, max_retries=0)
def promote() -> None:
    service.promote()
