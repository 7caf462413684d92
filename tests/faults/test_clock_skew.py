"""A worker whose clock is off by 5 s, ahead or behind (libfaketime): closes still happen on
time as the database's clock sees it, never early and under a second late."""

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from flask import Flask
from sqlalchemy import select

from app.database import utcnow
from app.extensions import db
from app.polls.models import Poll
from devkit import processes
from tests.faults.fleet import Fleet
from tests.faults.polls import (
    CLOCK_PRECISION,
    assert_exactly_once,
    lateness,
    make_polls,
    wait_all_closed,
)

POLLS = 10


class CloseWatcher:
    """Records, on the test's own (true) clock, when each poll is first seen closed."""

    def __init__(self, app: Flask, poll_ids: list[int]) -> None:
        self.app, self.poll_ids = app, poll_ids
        self.seen: dict[int, datetime] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self.app.app_context():
            while not self.stop.is_set() and len(self.seen) < len(self.poll_ids):
                closed = db.session.execute(
                    select(Poll.id).where(Poll.id.in_(self.poll_ids), Poll.closed_at.is_not(None))
                ).scalars()
                now = utcnow()
                for poll_id in closed:
                    self.seen.setdefault(poll_id, now)
                db.session.rollback()
                time.sleep(0.02)  # the watcher's resolution, not a wait for an outcome


@pytest.fixture
def watch(app: Flask) -> Iterator[Callable[[list[int]], CloseWatcher]]:
    watchers: list[CloseWatcher] = []

    def start(poll_ids: list[int]) -> CloseWatcher:
        watcher = CloseWatcher(app, poll_ids)
        watcher.thread.start()
        watchers.append(watcher)
        return watcher

    yield start
    for watcher in watchers:
        watcher.stop.set()
        watcher.thread.join(5)


@pytest.mark.parametrize("offset", ["+5s", "-5s"], ids=["ahead", "behind"])
def test_a_worker_with_a_skewed_clock_closes_on_time(
    app: Flask,
    fleet: Fleet,
    watch: Callable[[list[int]], CloseWatcher],
    offset: str,
    report: Callable[[str], None],
) -> None:
    env = fleet.stack.env(LOG_CELERY_TASKS="1")
    args = ["faketime", "-f", offset, *processes.worker_args("skewed")]
    worker = processes.Process("skewed", args, env, fleet.log_dir, processes.WORKER_READY)
    fleet.started.append(worker)
    worker.start()
    fleet.beat()
    # Due beyond the 3 s horizon: promoted, then held by the skewed worker until due.
    poll_ids = make_polls(app, [5 + i * 0.1 for i in range(POLLS)])
    watcher = watch(poll_ids)
    closed = wait_all_closed(app, poll_ids, timeout=30)
    counts = assert_exactly_once(closed, fleet)
    watcher.thread.join(5)
    seen = [(watcher.seen[c.poll_id] - c.close_date).total_seconds() for c in closed]
    report(
        f"clock {offset}: {counts}; seen closed after the close date (true clock) "
        f"min {min(seen):.3f} s, max {max(seen):.3f} s; closed_at as recorded (the database's "
        f"clock) {lateness(closed)}"
    )
    assert min(seen) >= 0, "a close ran before its close date"
    assert max(seen) < 1.0, "a close ran over a second late"
    # closed_at is the worker's estimate of the database's clock, good to a few milliseconds
    # (half a round trip); without the offset it would be 5 s off.
    recorded = lateness(closed)
    assert recorded["min"] >= -CLOCK_PRECISION and recorded["max"] < 1.0, recorded
