"""Benchmark 5: device polling throughput, `python -m bench.run --only devices [--smoke]`.

N simulated devices, each polled every `interval` seconds by one Punctual worker and beat on
RabbitMQ and PostgreSQL. The devices are registered through the service, as the API does; their
first polls are due at once. The measured window starts when every device has been polled once
(the first round has settled) and lasts `duration` seconds. Each second the database is asked how
many devices have more than one poll outstanding (never allowed) or none (a schedule that
stopped). Afterwards, over the poll jobs due inside the window: polls run per second against
devices / interval, lateness (started_at - due_at), failures, and grid slots that were coalesced
away because the poll before them ran late.
"""

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, create_engine, func, select

from app import create_app
from app.auth import service as auth
from app.celery_app import IO_QUEUE
from app.devices import service as device_service
from app.scheduling.broker import queue_depth
from app.scheduling.models import Job
from bench import harness
from bench.device_outcome import (
    OUTSTANDING,
    Probe,
    analyse,
    log_counts,
    outstanding_sample,
    sample_until,
)
from devkit import processes, proctree, stats
from devkit.servers import PostgresServer, RabbitMQServer, pair
from devkit.waiting import until

KINDS = ("thermostat", "plug")
LOCATIONS = 10
TICKS = ("beat ticks", "promoter runs")
# Where a fleet's jobs wait: device polls on the I/O queue, their results on the default one.
QUEUES = ("celery", IO_QUEUE)


def now() -> datetime:
    return datetime.now(UTC)


# --- registering the fleet ---------------------------------------------------------------------


def vendor_id(i: int) -> str:
    return f"{KINDS[i % len(KINDS)]}-{i:04d}"


def register_fleet(
    app: Any, devices: int, interval: int, pace: bool, vendor: str = "simulated"
) -> tuple[float, float]:
    """Register the devices as the API does; returns (wall seconds, seconds inside the service).

    With `pace`, registrations are spread over one interval, so the fleet's polls are spread
    evenly over the grid as in a fleet that grew over time; otherwise they come as fast as the
    service takes them and the polls stay bunched in that burst, interval after interval.
    """
    with app.app_context():
        owner = auth.register(username="fleet", password="bench-password")
        began = time.monotonic()
        busy = 0.0
        for i in range(devices):
            if pace:
                time.sleep(max(0.0, began + interval * i / devices - time.monotonic()))
            start = time.monotonic()
            device_service.register_device(
                owner_id=owner.id,
                name=f"Device {i:04d}",
                location=f"site-{i % LOCATIONS}",
                vendor=vendor,
                vendor_id=vendor_id(i),
                interval=interval,
            )
            busy += time.monotonic() - start
        return time.monotonic() - began, busy


# --- the benchmark -----------------------------------------------------------------------------


def device_polling(
    folder: Path,
    devices: int = 1000,
    interval: int = 10,
    duration: float = 120,
    *,
    workers: int = 1,
    pace: bool = False,
    warmup: float = 0,
) -> list[dict[str, Any]]:
    """Poll `devices` simulated devices every `interval` s; measure `duration` s once settled.

    The window starts when every device has been polled once, plus `warmup` seconds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with pair(folder) as (rabbitmq, postgres):
        database = postgres.create_database("devices")
        # The benchmark picks the interval; the minimum only guards the API's input.
        env = harness.punctual_env(database, rabbitmq.url, folder, DEVICE_MIN_INTERVAL="1")
        processes.migrate(env)
        engine = create_engine(database)
        started = harness.punctual_processes(env, folder, workers=workers)
        try:
            app = fleet_app(env, database, rabbitmq.url)
            registered_s, busy_s = register_fleet(app, devices, interval, pace)
            registered = time.monotonic()
            until(lambda: polled_once(engine, devices), timeout=60 + devices / 20, interval=0.2)
            settled_s = time.monotonic() - registered
            time.sleep(warmup)  # a chosen pause before measuring, not a wait for anything
            measures = watch(app, rabbitmq, postgres, started, workers)
            run = window(engine, started, measures, interval, duration)
        finally:
            harness.stop_all(started)
            engine.dispose()
    setup = {"registered_s": registered_s, "busy_s": busy_s, "settled_s": settled_s}
    title = (
        f"device polling ({devices} devices every {interval:g} s, {duration:g} s"
        f"{', paced' if pace else ''}{f', warm-up {warmup:g} s' if warmup else ''})"
    )
    return [device_row(title, devices, workers, setup, run)]


def fleet_app(env: dict[str, str], database: str, broker_url: str, **settings: Any) -> Flask:
    """An in-process app on the benchmark's servers, to register the fleet through.

    Config reads the environment when the first app is made; the processes a benchmark starts
    later do not inherit it (the embedded setup of bench/slow_vendor.py runs on the defaults).
    """
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database,
                "CELERY_BROKER_URL": broker_url,
                "DEVICE_MIN_INTERVAL": 1,
                **settings,
            }
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    # The queue-depth probe connects once a second; pika logs every step at INFO.
    logging.getLogger("pika").setLevel(logging.WARNING)
    return app


def polled_once(engine: Engine, devices: int) -> bool:
    """Whether the first round has settled: every device has a successful poll."""
    with engine.connect() as connection:
        polled = connection.execute(
            select(func.count(func.distinct(Job.subject_id))).where(
                Job.kind == "device.poll", Job.state == "succeeded"
            )
        ).scalar_one()
    return polled == devices


def window_done(engine: Engine, window_end: datetime) -> bool:
    """Whether every poll due before the window's end has finished."""
    with engine.connect() as connection:
        return not connection.execute(
            select(func.count(Job.id)).where(
                Job.kind == "device.poll",
                Job.state.in_(OUTSTANDING),
                Job.due_at < window_end,
            )
        ).scalar_one()


@dataclass
class Watch:
    """What to measure while the fleet runs: CPU of these process trees, these probes."""

    roots: dict[str, int | None]
    probes: dict[str, Probe]
    slow: dict[str, Probe] = field(default_factory=dict)


def watch(
    app: Flask,
    rabbitmq: RabbitMQServer,
    postgres: PostgresServer,
    started: list[processes.Process],
    workers: int,
) -> Watch:
    """The simulated fleet's measures: the workers' RSS, the queue, what the workers hold."""
    worker_pids = [process.proc.pid for process in started[:workers]]
    celery = app.extensions["celery"]
    return Watch(
        roots={
            **{f"worker{i}": pid for i, pid in enumerate(worker_pids)},
            "beat": started[-1].proc.pid,
            **harness.server_pids(rabbitmq, postgres),
        },
        probes={
            "ready": lambda: sum(queue_depth(celery, queue) for queue in QUEUES),
            "rss": lambda: sum(proctree.tree_rss_mib(pid) for pid in worker_pids),
        },
        slow={"unacked": lambda: unacked(rabbitmq)},
    )


def unacked(rabbitmq: RabbitMQServer) -> int:
    """Messages the workers hold (ETAs not yet due, jobs running) in the queues of QUEUES."""
    counts = rabbitmq.queues()
    return sum(counts.get(queue, (0, 0))[1] for queue in QUEUES)


def window(
    engine: Engine,
    started: list[processes.Process],
    measures: Watch,
    interval: int,
    duration: float,
) -> dict[str, Any]:
    """Sample for `duration` seconds; then, once the window's polls are done, its outcome."""
    meter = harness.CpuMeter(measures.roots).start()
    window_start, began = now(), time.monotonic()
    samples = sample_until(began + duration, engine, measures.probes, measures.slow)
    window_end = window_start + timedelta(seconds=time.monotonic() - began)
    cpu = ", ".join(f"{name} {share}" for name, share in meter.stop().items())
    # What is still outstanding at the deadline shows in the row ("unfinished").
    until(lambda: window_done(engine, window_end), timeout=max(30, 3 * interval), interval=0.5)
    return {
        "samples": samples,
        "final": outstanding_sample(engine),
        "logs": log_counts(started),
        "result": analyse(engine, interval, window_start, window_end),
        "cpu": cpu,
    }


def device_row(
    title: str, devices: int, workers: int, setup: dict[str, float], run: dict[str, Any]
) -> dict[str, Any]:
    """The benchmark's row: registration, the rate achieved, lateness, what went wrong."""
    result, samples, logs = run["result"], run["samples"], run["logs"]
    seconds = result["seconds"]
    every = [*samples, run["final"]]
    evidence = [row for sample in every for row in sample["evidence"]][:6]
    notes = {
        "retried": result["retried"],
        "unfinished": result["unfinished"],
        "off grid": result["off_grid"],
        **{f"log {name}": count for name, count in logs.items() if name not in TICKS},
    }
    held = [s["unacked"] for s in samples if "unacked" in s]
    return {
        "benchmark": title,
        "system": "punctual",
        "workers": workers,
        "register_s": round(setup["registered_s"], 2),
        "register_per_s": round(devices / setup["busy_s"]),
        "settled_s": round(setup["settled_s"], 1),
        "expected_per_s": round(result["expected"] / seconds, 1),
        "achieved_per_s": round(result["ran"] / seconds, 1),
        "worst_cycle_per_s": result["worst_cycle_per_s"],
        **stats.percentiles(result["late"]),
        "max_outstanding_per_device": max(s["most"] for s in every),
        "devices_2plus_max": max(s["doubled"] for s in every),
        "devices_none_max": max(s["without"] for s in every),
        "failed": result["failed"] + result["vendor_failures"],
        "missed": result["expected"] - result["ran"],
        "coalesced": result["coalesced"],
        "observations_per_s": result["observations_per_s"],
        "queue_ready_max": max(s["ready"] for s in samples),
        "held_by_worker_max": max(held, default=None),
        "worker_rss_mib": round(max(s["rss"] for s in samples), 1),
        "promoter_runs": f"{logs['promoter runs']}/{logs['beat ticks']}",
        "cpu_pct": run["cpu"],
        "notes": ", ".join(f"{k} {v}" for k, v in notes.items() if v) or "-",
        **({"evidence": evidence} if evidence else {}),
    }
