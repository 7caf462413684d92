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
from devkit import processes, stats
from devkit.servers import PostgresServer, RabbitMQServer, pair
from devkit.waiting import until

BENCHMARK = "long ETAs (30 s, consumer_timeout 10 s)"


def long_etas(folder: Path, n: int) -> list[dict[str, Any]]:
    """Polls due in 30 s on a RabbitMQ whose consumer_timeout is 10 s: Punctual and the tutorial
    side by side on their own queues (twenty polls each: neither waits for the CPU)."""
    conf = "consumer_timeout = 10000"
    advanced = "[{rabbit, [{channel_tick_interval, 2000}]}]."
    with pair(folder, conf, advanced) as (rabbitmq, postgres), ThreadPoolExecutor(1) as pool:
        tutorial_row = pool.submit(tutorial_long_etas, rabbitmq, postgres, folder, n)
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
            "duplicates": stats.surplus(processes.job_events(log, "succeeded", "poll.close")),
            "worker_crashes": log.count("PRECONDITION_FAILED"),
        }
    finally:
        harness.stop_all(started)
        engine.dispose()


def tutorial_long_etas(
    rabbitmq: RabbitMQServer, postgres: PostgresServer, folder: Path, n: int
) -> dict[str, Any]:
    """The tutorial's worker under a supervisor that starts it again whenever it exits; its
    closes as its task committed them."""
    database = postgres.create_database("tutorial_long_etas")
    tutorial.closes_table(database)
    queue, executions = "tutorial_long", folder / "tutorial-long.log"
    tutorial.publish(rabbitmq, queue, [datetime.now(UTC) + timedelta(seconds=30)] * n)
    crashes = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        worker = tutorial.worker(rabbitmq.url, folder, queue, executions, database_url=database)
        until(lambda w=worker: w.proc.poll() is not None, timeout=15, interval=0.5)
        if worker.proc.poll() is None:
            finished = sum(rabbitmq.queue_counts(queue)) == 0
            worker.kill()
            if finished:
                break
        crashes += "PRECONDITION_FAILED" in worker.log()
    closes = tutorial.closes(database)
    return {
        "benchmark": BENCHMARK,
        "system": "tutorial",
        "closed": len(closes),
        "duplicates": stats.surplus(closes),
        "worker_crashes": crashes,
    }
