"""What the job engine runs for polls."""

from app.polls import service
from app.scheduling.models import Claim
from app.scheduling.registry import handler


# Cancelled, the poll would never close nor get its results.
@handler(
    service.CLOSE,
    instead_of_cancelling=(
        "A poll's close job follows the poll: close poll {subject_id} now "
        "(POST /api/polls/{subject_id}/close), change its close date "
        "(PATCH /api/polls/{subject_id}) or delete it."
    ),
)
def close_poll(job: Claim) -> None:
    service.close(poll_id=job.subject_id)


@handler(
    service.RESULTS,
    instead_of_cancelling=(
        "It stores the final results of closed poll {subject_id} and runs once; "
        "there is nothing to cancel."
    ),
)
def compute_results(job: Claim) -> None:
    service.compute_results(poll_id=job.subject_id)
