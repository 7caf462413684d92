"""What the job engine runs for polls."""

from app.polls import service
from app.scheduling.registry import handler
from app.scheduling.service import Claim


@handler(service.CLOSE)
def close_poll(job: Claim) -> None:
    service.close(poll_id=job.subject_id)


@handler(service.RESULTS)
def compute_results(job: Claim) -> None:
    service.compute_results(poll_id=job.subject_id)
