"""What the job engine runs for polls."""

from app.polls import service
from app.scheduling.models import Job
from app.scheduling.registry import handler


@handler(service.CLOSE)
def close_poll(job: Job) -> None:
    service.close(poll_id=job.subject_id)


@handler(service.RESULTS)
def compute_results(job: Job) -> None:
    service.compute_results(poll_id=job.subject_id)
