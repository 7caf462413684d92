"""The throughput ceiling: how fast Punctual's worker setup runs trivial tasks with no ETA."""

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import Celery

from bench import harness
from devkit import processes
from devkit.servers import PostgresServer, RabbitMQServer
from devkit.waiting import until

_ACCUMULATED = re.compile(r"celery\.accumulate\[[^\]]+\] succeeded")
TIMEOUT = 600


def ceiling(
    rabbitmq: RabbitMQServer, postgres: PostgresServer, folder: Path, trivial: int
) -> dict[str, Any]:
    """How fast the same worker setup runs trivial tasks with no ETA: the throughput ceiling.

    The tasks wait in the queue before the worker starts (so publishing does not compete for
    the CPU); the time runs from the first task the worker received to the last it finished,
    by its own log. The rate counts the tasks that finished: if some had not by the deadline,
    the row's name says how many did.
    """
    database = postgres.create_database("ceiling")
    env = harness.punctual_env(database, rabbitmq.url, folder)
    processes.migrate(env)
    celery = Celery(broker=rabbitmq.url)
    with celery.producer_or_acquire() as producer:
        for _ in range(trivial):
            celery.send_task("celery.accumulate", args=(1,), producer=producer)
    started = harness.punctual_processes(env, folder)
    try:
        until(
            lambda: len(_ACCUMULATED.findall(started[0].log())) >= trivial,
            timeout=TIMEOUT,
            interval=0.2,
        )
        log = started[0].log()
    finally:
        harness.stop_all(started)
    finished = len(_ACCUMULATED.findall(log))
    seconds = worker_seconds(log)
    return {
        "benchmark": f"ceiling, {trivial} trivial tasks"
        + ("" if finished >= trivial else f" (only {finished} finished in {TIMEOUT} s)"),
        "system": "punctual worker",
        "seconds": round(seconds, 2),
        "tasks_per_s": round(finished / seconds) if seconds else 0,
    }


def worker_seconds(log: str) -> float:
    """From the first trivial task the worker received to the last it finished, by its log."""
    stamps = [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in log.splitlines()
        if "celery.accumulate[" in line and ("received" in line or "succeeded" in line)
    ]
    return (max(stamps) - min(stamps)).total_seconds() if stamps else 0.0
