"""A deep job queue must not stop the promoter (its messages have a queue of their own)."""

import time
from collections.abc import Callable
from datetime import timedelta

from celery import Celery
from flask import Flask

from app.extensions import db
from app.scheduling.broker import queue_depth
from app.scheduling.models import Job
from devkit.waiting import wait_for
from tests.faults.fleet import Fleet
from tests.faults.polls import assert_exactly_once, make_polls, wait_all_closed
from tests.stacks import Stack

BACKLOG = 8_000  # trivial tasks: 9-12 s of a worker's time here


def flood(broker_url: str, count: int) -> float:
    """Put `count` trivial tasks in the job queue at once; returns the seconds it took."""
    celery = Celery(broker=broker_url)
    began = time.monotonic()
    with celery.producer_or_acquire() as producer:
        for _ in range(count):
            celery.send_task("celery.accumulate", args=(1,), producer=producer)
    return time.monotonic() - began


def test_the_promoter_keeps_running_behind_a_deep_queue(
    app: Flask, fleet: Fleet, fault_stack: Stack, report: Callable[[str], None]
) -> None:
    fleet.beat()
    published = flood(fault_stack.rabbitmq.url, BACKLOG)  # several seconds of work
    [poll_id] = make_polls(app, [4.0])  # beyond the 3 s horizon: only a promotion sends it
    fleet.worker()

    def queued() -> tuple[Job, int] | None:
        with app.app_context():
            job = db.session.execute(db.select(Job).where(Job.subject_id == poll_id)).scalar()
            db.session.rollback()
            if job is None or job.queued_at is None:
                return None
            return job, queue_depth(app.extensions["celery"], "celery")

    job, backlog = wait_for(queued, timeout=60, interval=0.1, what="the close job to be sent")
    entered = job.due_at - timedelta(seconds=3)
    report(
        f"{BACKLOG:,} trivial tasks queued in {published:.1f} s; the close job was promoted "
        f"{(job.queued_at - entered).total_seconds():.2f} s after it entered the horizon, "
        f"with {backlog} messages still ahead of it"
    )
    # Sent while the backlog was still there: its promotion did not wait behind it.
    assert backlog > 1000, backlog
    assert_exactly_once(wait_all_closed(app, [poll_id], timeout=60), fleet)
