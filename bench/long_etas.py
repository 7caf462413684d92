"""Benchmark 3, long ETAs: RabbitMQ's consumer_timeout at 10 s and polls due in 30 s, Punctual
and the tutorial side by side on their own queues (twenty polls each: neither waits for the CPU).
"""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select

from app.polls.models import Poll
from bench import harness, tutorial
from bench.bulk import bulk_polls
from devkit import processes
from devkit.servers import PostgresServer, RabbitMQServer, pair
from devkit.waiting import until

BENCHMARK = "long ETAs (30 s, consumer_timeout 10 s)"


def long_etas(folder: Path, n: int) -> list[dict[str, Any]]:
    """Polls due in 30 s on a RabbitMQ whose consumer_timeout is 10 s: Punctual and the tutorial
    side by side on their own queues (twenty polls each: neither waits for the CPU)."""
    conf = "consumer_timeout = 10000"
    advanced = "[{rabbit, [{channel_tick_interval, 2000}]}]."
    with pair(folder, conf, advanced) as (rabbitmq, postgres), ThreadPoolExecutor(1) as pool:
        tutorial_row = pool.submit(tutorial_long_etas, rabbitmq, folder, n)
        return [punctual_long_etas(rabbitmq, postgres, folder, n), tutorial_row.result()]


def in_30_s(n: int) -> list[datetime]:
    start = datetime.now(UTC) + timedelta(seconds=30)
    return [start + timedelta(seconds=i * 0.01) for i in range(n)]


def punctual_long_etas(
    rabbitmq: RabbitMQServer, postgres: PostgresServer, folder: Path, n: int
) -> dict[str, Any]:
    """Punctual's polls: closed ones by the database, runs of each close job by the logs."""
    database = postgres.create_database("long_etas")
    env = harness.punctual_env(database, rabbitmq.url, folder, SCHEDULER_HORIZON="5")
    processes.migrate(env)
    started = harness.punctual_processes(env, folder)
    bulk_polls(database, n, in_30_s(n))
    engine = create_engine(database)

    def closed() -> int:
        with engine.connect() as connection:
            return connection.execute(
                select(func.count(Poll.id)).where(Poll.closed_at.is_not(None))
            ).scalar_one()

    try:
        until(lambda: closed() == n, timeout=90, interval=0.5)
        log = "".join(p.log() for p in started)
        return {
            "benchmark": BENCHMARK,
            "system": "punctual",
            "closed": closed(),
            "duplicates": 0 if log.count("succeeded (attempt 2") == 0 else "yes",
            "worker_crashes": log.count("PRECONDITION_FAILED"),
        }
    finally:
        harness.stop_all(started)
        engine.dispose()


def tutorial_long_etas(rabbitmq: RabbitMQServer, folder: Path, n: int) -> dict[str, Any]:
    """The tutorial's worker under a supervisor that starts it again whenever it exits."""
    queue, executions = "tutorial_long", folder / "tutorial-long.log"
    tutorial.publish(rabbitmq, queue, [datetime.now(UTC) + timedelta(seconds=30)] * n)
    crashes = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        worker = tutorial.worker(rabbitmq.url, folder, queue, executions)
        until(lambda w=worker: w.proc.poll() is not None, timeout=15, interval=0.5)
        if worker.proc.poll() is None:
            finished = sum(rabbitmq.queue_counts(queue)) == 0
            worker.kill()
            if finished:
                break
        crashes += "PRECONDITION_FAILED" in worker.log()
    lines = executions.read_text().splitlines() if executions.exists() else []
    polls = {line.split()[0] for line in lines}
    return {
        "benchmark": BENCHMARK,
        "system": "tutorial",
        "closed": len(polls),
        "duplicates": len(lines) - len(polls),
        "worker_crashes": crashes,
    }
