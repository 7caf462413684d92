"""What the job engine runs for polls."""

from app.polls import service
from app.scheduling.registry import handler


@handler(service.CLOSE)
def close_poll(poll_id: int) -> None:
    service.close(poll_id=poll_id)


@handler(service.RESULTS)
def compute_results(poll_id: int) -> None:
    service.compute_results(poll_id=poll_id)
