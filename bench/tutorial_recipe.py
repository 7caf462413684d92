"""The tutorial recipe, as the Votr tutorial writes it: commit, then apply_async(eta=close_date).

A minimal Celery app on classic queues with default settings, for comparison only. Its task
closes the poll in the database when TUTORIAL_DATABASE_URL is set (one committed write, as the
tutorial's `poll.status = 0; db.session.commit()`), then appends one line per execution to
TUTORIAL_LOG, so duplicates and losses can be counted.
Run a worker with `celery -A bench.tutorial_recipe worker`.
"""

import logging
import os
from datetime import datetime
from functools import cache

from celery import Celery
from sqlalchemy import Engine, create_engine, text

celery = Celery(
    "tutorial",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
)
celery.conf.update(task_serializer="json", accept_content=["json"], enable_utc=True)
# Celery's default (4) unless the benchmark asks for more: 0 lets the worker take every ETA
# message at once, the state a default worker reaches after hours (it takes ~25 a second).
celery.conf.worker_prefetch_multiplier = int(os.environ.get("TUTORIAL_PREFETCH_MULTIPLIER", "4"))

# The memory benchmark does not read the worker's log: without a line per message received it
# takes a million messages in less time (memory per message held is the same).
if os.environ.get("TUTORIAL_QUIET"):
    logging.getLogger("celery.worker.strategy").setLevel(logging.WARNING)

CLOSES = "CREATE TABLE IF NOT EXISTS tutorial_close (poll_id integer, closed_at timestamptz)"


@cache
def database() -> Engine | None:
    url = os.environ.get("TUTORIAL_DATABASE_URL")
    return create_engine(url) if url else None


@celery.task(name="tutorial.close_poll")
def close_poll(poll_id: int) -> None:
    engine = database()
    if engine is not None:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO tutorial_close VALUES (:id, now())"), {"id": poll_id}
            )
    with open(os.environ["TUTORIAL_LOG"], "a") as log:
        log.write(f"{poll_id} {datetime.now().isoformat()}\n")
