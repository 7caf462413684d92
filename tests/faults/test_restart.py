"""The embedded default (SQLite, the filesystem broker) killed whole with work queued, as an
OOM kill, a laptop's sleep or a container restart would: due work runs within seconds of the
worker being back, exactly once, not after the lost-message sweep (JOB_LOST_AFTER)."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask

from app.database import utcnow
from devkit.waiting import wait_for
from tests.faults.fleet import RUN_JOB_RECEIVED, Fleet, embedded_stack
from tests.faults.polls import (
    assert_exactly_once,
    lateness,
    make_polls,
    outcomes,
    wait_all_closed,
    waited_after,
)
from tests.stacks import Stack, app_on

POLLS = 20
# The goal: work due while the stack was down runs this soon after the worker is back.
PROMPT = 5.0


@pytest.fixture
def embedded(tmp_path: Path) -> Stack:
    """With the lost-message sweep at its default: left to it, the closes would wait a minute."""
    return embedded_stack(tmp_path / "embedded", SCHEDULER_HORIZON="60", JOB_LOST_AFTER="60")


@pytest.fixture
def embedded_app(embedded: Stack) -> Iterator[Flask]:
    yield from app_on(embedded)


def test_work_due_while_the_whole_stack_was_down_runs_soon_after_the_worker_is_back(
    embedded: Stack, embedded_app: Flask, tmp_path: Path, report: Callable[[str], None]
) -> None:
    fleet = Fleet(embedded, tmp_path)
    try:
        worker, beat = fleet.worker(), fleet.beat()
        poll_ids = make_polls(embedded_app, [4 + i * 0.05 for i in range(POLLS)])
        wait_for(
            lambda: len(RUN_JOB_RECEIVED.findall(worker.log())) >= POLLS,
            timeout=20,
            what="ETA work held",
        )
        worker.kill()  # the whole stack at once: the ETA messages it held are gone with it
        beat.kill()
        due = max(c.close_date for c in outcomes(embedded_app, poll_ids))
        wait_for(lambda: utcnow() > due + timedelta(seconds=1), what="the closes to be due")
        assert all(c.closed_at is None for c in outcomes(embedded_app, poll_ids))

        fleet.worker(name="worker-again")
        back = utcnow()
        fleet.beat(name="beat-again")
        closed = wait_all_closed(embedded_app, poll_ids, timeout=30)
        counts = assert_exactly_once(closed, fleet)
        waited = waited_after(closed, back)
        report(
            f"{counts}, lateness {lateness(closed)}, last close {waited} s after the worker was "
            "back"
        )
        assert waited < PROMPT
    finally:
        for process in reversed(fleet.started):
            process.kill()
