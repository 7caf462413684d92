"""What the job engine runs for polls."""

from app.polls import closing, service
from app.scheduling.models import Claim
from app.scheduling.registry import handler


# Cancelled, the poll would never close nor get its results.
# Both run in batches: polls closing in the same instant (on the hour) close in one UPDATE.
@handler(
    service.CLOSE,
    batch=True,
    instead_of_cancelling=(
        "A poll's close job follows the poll: close poll {subject_id} now "
        "(POST /api/polls/{subject_id}/close), change its close date "
        "(PATCH /api/polls/{subject_id}) or delete it."
    ),
)
def close_polls(jobs: list[Claim]) -> None:
    closing.close(poll_ids=[job.subject_id for job in jobs])


@handler(
    service.RESULTS,
    batch=True,
    instead_of_cancelling=(
        "It stores the final results of closed poll {subject_id} and runs once; "
        "there is nothing to cancel."
    ),
)
def compute_results(jobs: list[Claim]) -> None:
    closing.compute_results(poll_ids=[job.subject_id for job in jobs])
