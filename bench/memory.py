"""Benchmark 1, pending-schedule memory: N polls closing 1-7 days ahead; worker and broker
memory of each system, the tutorial's once its worker holds every message."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery

# Imported here, before any thread starts: a thread importing the app while the main thread
# does deadlocks on the module locks (_DeadlockError on app.polls.models).
from app.scheduling.broker import queue_depth
from bench import harness, tutorial
from bench.bulk import bulk_polls
from devkit import processes, proctree
from devkit.servers import PostgresServer, RabbitMQServer, pair
from devkit.waiting import until, wait_for


def pending_memory(folder: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """Punctual at each size, and meanwhile the tutorial on a RabbitMQ node of its own (its
    million messages take minutes to publish and to reach its worker; memory held does not
    depend on what else runs)."""
    with pair(folder) as (rabbitmq, postgres), ThreadPoolExecutor(max_workers=1) as pool:
        tutorial_rows = pool.submit(tutorial_holding, folder / "tutorial", sizes)
        rows = [punctual_holding(rabbitmq, postgres, folder, n) for n in sizes]
        rows += tutorial_rows.result()
    return sorted(rows, key=lambda row: (row["pending"], row["system"]))


def days_ahead(n: int) -> list[datetime]:
    """n close dates spread over 1 to 7 days from now."""
    start = datetime.now(UTC)
    return [start + timedelta(days=1, seconds=i * 6 * 86400 / max(n, 1)) for i in range(n)]


def punctual_holding(
    rabbitmq: RabbitMQServer, postgres: PostgresServer, folder: Path, n: int
) -> dict[str, Any]:
    """Punctual's worker and broker with n polls pending, after five promoter runs."""
    database = postgres.create_database(f"memory_{n}")
    env = harness.punctual_env(database, rabbitmq.url, folder)
    processes.migrate(env)
    bulk_polls(database, n, days_ahead(n))
    started = harness.punctual_processes(env, folder)
    try:
        worker = started[0]
        idle = proctree.tree_rss_mib(worker.proc.pid)
        # Every promoter run reads all n pending jobs' due dates; five of them, then measure.
        wait_for(lambda: harness.promoter_runs(worker.log()) >= 5, timeout=60, interval=0.2)
        return {
            "benchmark": "pending memory",
            "system": "punctual",
            "pending": n,
            "worker_rss_mib": round(proctree.tree_rss_mib(worker.proc.pid), 1),
            "broker_rss_mib": round(harness.beam_rss_mib(rabbitmq), 1),
            "held_by_worker": sum(rabbitmq.queue_counts("celery")),
            "note": f"idle {idle:.0f} MiB (at start, before the promoter ran)",
        }
    finally:
        harness.stop_all(started)


def tutorial_holding(folder: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """The tutorial's worker once it holds every pending poll's message, at each size.

    A default worker takes ETA messages a few dozen a second and never stops taking them, so
    within hours of publishing it holds all that are due in the next days; an unlimited prefetch
    gets it to that state in minutes. One worker and one queue for all sizes: each size adds the
    messages that take it from the previous one.
    """
    rabbitmq = RabbitMQServer(folder / "rabbitmq")
    rabbitmq.start()
    queue = "tutorial_memory"
    worker = tutorial.worker(
        rabbitmq.url, folder, queue, folder / f"{queue}.log", prefetch_multiplier=0, quiet=True
    )
    rows, held = [], 0
    try:
        idle = proctree.tree_rss_mib(worker.proc.pid)
        for n in sorted(sizes):
            row, blocked = tutorial_size(rabbitmq, worker, queue, held, n, idle)
            rows.append(row)
            held = n
            if worker.proc.poll() is not None or blocked:
                break
    finally:
        worker.kill()
        rabbitmq.kill()  # its messages are thrown away: no clean shutdown writing them out first
    return rows


def tutorial_size(
    rabbitmq: RabbitMQServer,
    worker: processes.Process,
    queue: str,
    held: int,
    n: int,
    idle: float,
) -> tuple[dict[str, Any], str]:
    """Publish what takes the tutorial's worker from `held` pending polls to n: its row, and
    why publishing gave up ("" if it did not)."""
    broker = Celery(broker=rabbitmq.url)  # reads the queue's depth with a passive declare
    seconds, blocked = tutorial.publish(rabbitmq, queue, days_ahead(n)[held:], 2)
    began = time.monotonic()
    # Taking a million messages takes minutes; what it holds at the deadline is the row.
    until(
        lambda: worker.proc.poll() is not None or queue_depth(broker, queue) == 0,
        timeout=120 + n / 500,
        interval=0.5,
    )
    taken = time.monotonic() - began + seconds
    ready, unacked = rabbitmq.queue_counts(queue)
    alive = worker.proc.poll() is None
    row = {
        "benchmark": "pending memory",
        "system": "tutorial",
        "pending": n,
        "worker_rss_mib": round(proctree.tree_rss_mib(worker.proc.pid), 1) if alive else "died",
        "broker_rss_mib": round(harness.beam_rss_mib(rabbitmq), 1),
        "held_by_worker": unacked,
        "note": (
            f"idle {idle:.0f} MiB; {n - held} more published in {seconds:.0f} s "
            f"(2 processes), all taken after {taken:.0f} s; {ready} not taken"
            + ("" if alive else f"; worker exited {worker.proc.returncode}")
            + (f"; {blocked}" if blocked else "")
        ),
    }
    return row, blocked
