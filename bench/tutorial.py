"""The tutorial recipe (bench/tutorial_recipe.py) run beside Punctual: its worker, its web app's
publishing, and the closes it wrote."""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.tutorial_recipe import CLOSES
from devkit import processes
from devkit.servers import RabbitMQServer
from devkit.waiting import until

ARGS = ["-A", "bench.tutorial_recipe", "worker", "--loglevel=INFO", "--concurrency=2"]
ARGS += ["--without-gossip", "--without-mingle"]


def worker(
    broker_url: str,
    folder: Path,
    queue: str,
    log: Path,
    prefetch_multiplier: int = 4,
    database_url: str = "",
    quiet: bool = False,
) -> processes.Process:
    """The tutorial's worker on `queue`, started; it appends a line to `log` per execution."""
    env = {
        "CELERY_BROKER_URL": broker_url,
        "TUTORIAL_LOG": str(log),
        "TUTORIAL_PREFETCH_MULTIPLIER": str(prefetch_multiplier),
        "TUTORIAL_DATABASE_URL": database_url,
        "TUTORIAL_QUIET": "1" if quiet else "",
    }
    args = [processes.CELERY, *ARGS, "-Q", queue, f"--hostname={queue}@%h"]
    return processes.Process(queue, args, env, folder, ready=" ready.").start()


def closes_table(database_url: str) -> None:
    """The table the tutorial's task records each close in."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text(CLOSES))
    engine.dispose()


def closes(database_url: str) -> Counter[int]:
    """How many times the tutorial's task closed each poll, by its committed rows."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT poll_id FROM tutorial_close")).scalars().all()
    engine.dispose()
    return Counter(rows)


def _start_publishers(
    broker_url: str, queue: str, etas: list[datetime], publishers: int
) -> tuple[list[subprocess.Popen], list[Path]]:
    """The publisher processes, a share of the ETAs each, and the files they report into."""
    share = -(-len(etas) // publishers)
    running, reports = [], []
    for first in range(0, len(etas), share):
        handle, report = tempfile.mkstemp(prefix="publish-", suffix=".progress")
        os.close(handle)
        reports.append(Path(report))
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.tutorial_publisher", queue, str(reports[-1])],
            stdin=subprocess.PIPE,
            text=True,
            cwd=processes.ROOT,
            env={**os.environ, "CELERY_BROKER_URL": broker_url},
        )
        chunk = [e.isoformat() for e in etas[first : first + share]]
        process.stdin.write(json.dumps([first, chunk]))
        process.stdin.close()
        running.append(process)
    return running, reports


def _stalled_at(running: list[subprocess.Popen], reports: list[Path], stall: float) -> int | None:
    """None once every publisher is done; the count they reached if it then stood still for
    `stall` seconds."""

    def published() -> int:
        return sum(int(report.read_text() or 0) for report in reports if report.exists())

    def finished() -> bool:
        return all(process.poll() is not None for process in running)

    count = -1
    while not finished():
        if not until(
            lambda seen=count: finished() or published() > seen, timeout=stall, interval=2
        ):
            return count
        count = published()
    return None


def publish(
    rabbitmq: RabbitMQServer,
    queue: str,
    etas: list[datetime],
    publishers: int = 1,
    stall: float = 60,
) -> tuple[float, str]:
    """apply_async(eta=...) for each poll, as the tutorial's web app does, from `publishers`
    processes side by side (one per web worker).

    Returns the seconds it took and "" or, if publishing made no progress for `stall` seconds
    (RabbitMQ blocks publishers while a memory or disk alarm is on), why it gave up. Progress is
    what the publishers report in files, not the queue's length, which would take rabbitmqctl
    (about 0.7 s of CPU a call: minutes of the million-message run).
    """
    started = time.monotonic()
    running, reports = _start_publishers(rabbitmq.url, queue, etas, publishers)
    try:
        stalled = _stalled_at(running, reports, stall)
        if stalled is not None:
            for process in running:
                process.kill()
    finally:
        for report in reports:
            report.unlink(missing_ok=True)
    if stalled is not None:
        alarms = rabbitmq.alarms()
        return time.monotonic() - started, f"publishing blocked at {stalled}; alarms {alarms}"
    if any(process.returncode != 0 for process in running):
        raise RuntimeError("publishing the tutorial's messages failed")
    return time.monotonic() - started, ""
