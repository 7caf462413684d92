"""Two beats, the high-availability setup: one killed with SIGKILL, and work due beyond the
horizon is still promoted and run on time, exactly once."""

from collections.abc import Callable

from flask import Flask

from tests.faults.fleet import Fleet
from tests.faults.polls import (
    CLOCK_PRECISION,
    assert_exactly_once,
    lateness,
    make_polls,
    wait_all_closed,
)

POLLS = 20


def test_two_beats_one_killed_closes_beyond_the_horizon_run_on_time(
    app: Flask, fleet: Fleet, report: Callable[[str], None]
) -> None:
    # Each beat sends the promoter's task every 0.5 s; the worker's horizon is 2 s.
    fleet.worker(SCHEDULER_HORIZON="2")
    killed = fleet.beat(name="beat-a")
    fleet.beat(name="beat-b")
    # Due 4 to 8.75 s from now: every one waits in the database, beyond the horizon, when the
    # first beat dies.
    poll_ids = make_polls(app, [4 + i * 0.25 for i in range(POLLS)])
    killed.kill()

    closed = wait_all_closed(app, poll_ids, timeout=40)
    counts = assert_exactly_once(closed, fleet)
    late = lateness(closed)
    report(f"one of two beats killed: {counts}, lateness {late}")
    assert late["min"] >= -CLOCK_PRECISION and late["max"] < 1.0, late
