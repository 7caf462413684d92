"""RabbitMQ with a consumer_timeout of 5 s (checked every second): Punctual's polls due well
beyond it close once with no channel error, while the tutorial recipe's worker dies of it.

A delivery held unacknowledged longer than consumer_timeout closes the channel, and Celery's
worker exits. Punctual's worker holds a message for the horizon (3 s here) plus however long its
local backlog takes to drain: keep SCHEDULER_HORIZON plus the worst drain well under the
broker's consumer_timeout (30 min by default; the horizon defaults to 5 min).
"""

import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask

from devkit import processes
from devkit.waiting import wait_for
from tests.faults.fleet import Fleet, own_stack
from tests.faults.polls import assert_exactly_once, lateness, make_polls, wait_all_closed
from tests.stacks import Stack, app_on

CONSUMER_TIMEOUT_MS = 5000


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(
        tmp_path_factory.mktemp("short-timeout"),
        rabbitmq_conf=f"consumer_timeout = {CONSUMER_TIMEOUT_MS}",
        advanced="[{rabbit, [{channel_tick_interval, 1000}]}].",
    ) as stack:
        yield stack


@pytest.fixture
def app(fault_stack: Stack) -> Iterator[Flask]:
    yield from app_on(fault_stack)


def test_etas_beyond_consumer_timeout_never_hit_it(
    app: Flask, fleet: Fleet, report: Callable[[str], None]
) -> None:
    worker = fleet.worker()
    fleet.beat()
    seconds = 3 * CONSUMER_TIMEOUT_MS / 1000
    poll_ids = make_polls(app, [seconds + i * 0.1 for i in range(10)])

    closed = wait_all_closed(app, poll_ids, timeout=seconds + 30)
    counts = assert_exactly_once(closed, fleet)
    assert "PRECONDITION_FAILED" not in worker.log()
    assert "Unrecoverable error" not in worker.log()
    report(
        f"consumer_timeout {CONSUMER_TIMEOUT_MS} ms, polls due in {seconds:.0f} s: {counts}, "
        f"no channel error, lateness {lateness(closed)}"
    )


@pytest.mark.baseline
def test_the_tutorial_recipe_crashes_its_worker_on_long_etas(
    fault_stack: Stack, tmp_path: Path, report: Callable[[str], None]
) -> None:
    executions = tmp_path / "executions.log"
    env = {"CELERY_BROKER_URL": fault_stack.broker_url, "TUTORIAL_LOG": str(executions)}
    args = [processes.CELERY, "-A", "bench.tutorial_recipe", "worker", "--loglevel=INFO"]
    args += ["--concurrency=1", "--without-gossip", "--without-mingle", "-Q", "tutorial"]
    worker = processes.Process("tutorial-worker", args, env, tmp_path, ready=" ready.")
    worker.start()
    try:
        close_date = datetime.now(UTC) + timedelta(seconds=3 * CONSUMER_TIMEOUT_MS / 1000)
        publish = (
            "from bench.tutorial_recipe import close_poll; from datetime import datetime; "
            f"[close_poll.apply_async((i,), eta=datetime.fromisoformat('{close_date.isoformat()}'),"
            " queue='tutorial') for i in range(5)]"
        )
        subprocess.run(
            [processes.tool("python"), "-c", publish],
            cwd=processes.ROOT,
            env={**os.environ, **env},
            check=True,
        )
        wait_for(
            lambda: worker.proc.poll() is not None,
            timeout=CONSUMER_TIMEOUT_MS / 1000 + 15,
            what="the tutorial worker to die of consumer_timeout",
        )
    finally:
        worker.kill()
    log = worker.log()
    assert "PRECONDITION_FAILED" in log and "Unrecoverable error" in log
    ran = executions.read_text().count("\n") if executions.exists() else 0
    report(
        f"tutorial recipe, consumer_timeout {CONSUMER_TIMEOUT_MS} ms, 5 polls due in "
        f"{3 * CONSUMER_TIMEOUT_MS / 1000:.0f} s: worker exited with PRECONDITION_FAILED after "
        f"holding them; {ran} of 5 closed (the rest go back to the queue, to crash the next worker)"
    )
    assert ran == 0
