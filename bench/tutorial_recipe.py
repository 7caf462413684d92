"""The tutorial recipe, as the Votr tutorial writes it: commit, then apply_async(eta=close_date).

A minimal Celery app on classic queues with default settings, for comparison only. Its task
appends one line per execution to TUTORIAL_LOG, so duplicates and losses can be counted.
Run a worker with `celery -A bench.tutorial_recipe worker`.
"""

import os
from datetime import datetime

from celery import Celery

celery = Celery(
    "tutorial",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
)
celery.conf.update(task_serializer="json", accept_content=["json"], enable_utc=True)


@celery.task(name="tutorial.close_poll")
def close_poll(poll_id: int) -> None:
    with open(os.environ["TUTORIAL_LOG"], "a") as log:
        log.write(f"{poll_id} {datetime.now().isoformat()}\n")


def schedule_close(poll_id: int, close_date: datetime) -> None:
    """What the tutorial does right after committing the poll."""
    close_poll.apply_async((poll_id,), eta=close_date)
