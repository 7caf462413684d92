"""The tutorial recipe under the same consumer_timeout that Punctual's polls pass under."""

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import processes
from tests.conftest import Stack
from tests.faults.conftest import CONSUMER_TIMEOUT_MS
from tests.helpers import wait_for


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
            [str(Path(processes.CELERY).parent / "python"), "-c", publish],
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
