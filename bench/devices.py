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

import itertools
import logging
import math
import os
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select

from bench import harness

OUTSTANDING = ("scheduled", "queued", "running")
KINDS = ("thermostat", "plug")
LOCATIONS = 10
TICKS = ("beat ticks", "promoter runs")


def now() -> datetime:
    return datetime.now(UTC)


# --- registering the fleet ---------------------------------------------------------------------


def vendor_id(i: int) -> str:
    return f"{KINDS[i % len(KINDS)]}-{i:04d}"


def register_fleet(app: Any, devices: int, interval: int, pace: bool) -> tuple[float, float]:
    """Register the devices as the API does; returns (wall seconds, seconds inside the service).

    With `pace`, registrations are spread over one interval, so the fleet's polls are spread
    evenly over the grid as in a fleet that grew over time; otherwise they come as fast as the
    service takes them and the polls stay bunched in that burst, interval after interval.
    """
    from app.auth import service as auth
    from app.devices import service as device_service

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
                vendor="simulated",
                vendor_id=vendor_id(i),
                interval=interval,
            )
            busy += time.monotonic() - start
        return time.monotonic() - began, busy


# --- sampling while it runs --------------------------------------------------------------------


def outstanding_sample(engine: Engine) -> dict[str, Any]:
    """Per device: how many poll jobs are outstanding (scheduled, queued or running) right now."""
    from app.devices.models import Device
    from app.scheduling.models import Job

    per_device = (
        select(Job.subject_id, func.count(Job.id).label("n"))
        .where(Job.kind == "device.poll", Job.state.in_(OUTSTANDING))
        .group_by(Job.subject_id)
        .subquery()
    )
    with engine.connect() as connection:
        doubled, most = connection.execute(
            select(
                func.count().filter(per_device.c.n > 1),
                func.coalesce(func.max(per_device.c.n), 0),
            )
        ).one()
        without = connection.execute(
            select(func.count(Device.id)).where(Device.id.not_in(select(per_device.c.subject_id)))
        ).scalar_one()
        states = dict(
            connection.execute(
                select(Job.state, func.count(Job.id))
                .where(Job.kind == "device.poll", Job.state.in_(OUTSTANDING))
                .group_by(Job.state)
            ).all()
        )
        evidence = []
        if doubled:
            evidence = [
                dict(row._mapping)
                for row in connection.execute(
                    select(Job.id, Job.subject_id, Job.state, Job.due_at, Job.started_at)
                    .where(
                        Job.kind == "device.poll",
                        Job.state.in_(OUTSTANDING),
                        Job.subject_id.in_(
                            select(per_device.c.subject_id).where(per_device.c.n > 1).limit(3)
                        ),
                    )
                    .order_by(Job.subject_id, Job.id)
                )
            ]
    return {
        "doubled": doubled,
        "most": most,
        "without": without,
        "queued": states.get("queued", 0),
        "running": states.get("running", 0),
        "evidence": evidence,
    }


def sample_until(
    end: float, engine: Engine, celery: Any, rabbitmq: Any, worker_pids: list[int]
) -> list[dict[str, Any]]:
    """One sample a second until `end` (monotonic); the broker's own counts every 10 s.

    `rabbitmqctl` boots an Erlang VM (about a second of CPU) each call, so the per-second depth
    comes from a passive queue declare, as the promoter reads it.
    """
    from app.scheduling.broker import queue_depth

    samples = []
    for tick in itertools.count():
        if time.monotonic() >= end:
            break
        at = time.monotonic()
        sample = outstanding_sample(engine)
        sample["ready"] = queue_depth(celery, "celery")
        sample["rss"] = sum(harness.tree_rss_mib(pid) for pid in worker_pids)
        if tick % 10 == 0:
            _, sample["unacked"] = rabbitmq.queue_counts("celery")
        samples.append(sample)
        time.sleep(max(0.0, min(at + 1, end) - time.monotonic()))
    return samples


# --- reading the outcome -----------------------------------------------------------------------


def grid_slots(anchor: datetime, step: float, start: datetime, end: datetime) -> int:
    """How many times `anchor + k * step` (k >= 0) falls in [start, end)."""
    first = max(0, math.ceil((start - anchor).total_seconds() / step - 1e-9))
    last = math.ceil((end - anchor).total_seconds() / step - 1e-9)
    return max(0, last - first)


def analyse(engine: Engine, interval: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Polls due in [start, end): run, late, failed, coalesced, off the grid."""
    from app.devices.models import AttributeReading, PollFailure, StatusReading
    from app.scheduling.models import Job

    with engine.connect() as connection:
        jobs = connection.execute(
            select(
                Job.id,
                Job.subject_id,
                Job.due_at,
                Job.started_at,
                Job.state,
                Job.attempts,
            )
            .where(Job.kind == "device.poll")
            .order_by(Job.subject_id, Job.due_at, Job.id)
        ).all()

        def stored(column: Any) -> int:
            return connection.execute(
                select(func.count()).where(column >= start, column < end)
            ).scalar_one()

        observations = stored(AttributeReading.created_at) + stored(StatusReading.created_at)
        vendor_failures = stored(PollFailure.failed_at)

    step = float(interval)
    expected = coalesced = off_grid = 0
    for _, history in itertools.groupby(jobs, key=lambda job: job.subject_id):
        history = list(history)
        anchor = history[0].due_at  # the first poll, due at registration: the grid's origin
        expected += grid_slots(anchor, step, start, end)
        for job in history:
            k = (job.due_at - anchor).total_seconds() / step
            off_grid += start <= job.due_at < end and abs(k - round(k)) > 1e-3
        for earlier, later in itertools.pairwise(history):
            gap = round((later.due_at - earlier.due_at).total_seconds() / step)
            coalesced += sum(
                start <= earlier.due_at + timedelta(seconds=step * j) < end for j in range(1, gap)
            )
    due = [job for job in jobs if start <= job.due_at < end]
    ran = [job for job in due if job.state == "succeeded"]
    seconds = (end - start).total_seconds()
    late = [(job.started_at - job.due_at).total_seconds() for job in ran]
    # Polls started in each whole interval of the window: is the rate sustained, cycle by cycle?
    per_cycle: dict[int, int] = defaultdict(int)
    for job in jobs:
        if job.started_at is not None and start <= job.started_at < end:
            per_cycle[int((job.started_at - start).total_seconds() // step)] += 1
    cycles = [per_cycle[c] / step for c in range(int(seconds // step))]
    return {
        "expected": expected,
        "due": len(due),
        "ran": len(ran),
        "late": late,
        "failed": sum(job.state == "failed" for job in due),
        "retried": sum(job.attempts > 1 for job in due),
        "unfinished": sum(job.state in OUTSTANDING for job in due),
        "vendor_failures": vendor_failures,
        "coalesced": coalesced,
        "off_grid": off_grid,
        "observations_per_s": round(observations / seconds, 1),
        "worst_cycle_per_s": round(min(cycles), 1) if cycles else float("nan"),
        "seconds": seconds,
    }


def log_counts(started: list[Any]) -> dict[str, int]:
    """What the worker and beat logs say over the whole run (registration included)."""
    text = "".join(process.log() for process in started)
    return {
        "beat ticks": text.count("Sending due task promote-jobs"),
        # The beat's promote message expires after two intervals; RabbitMQ drops it unseen
        # when it waits that long behind other messages.
        "promoter runs": len(re.findall(r"scheduling\.promote\[[^]]+\] succeeded", text)),
        "resent": text.count(" resent (was "),
        "recovered": text.count(" recovered (was "),
        "early": text.count(" early; sent again"),
        "held back": text.count("holding back deferrable"),
        "errors": text.count(" ERROR ") + text.count(" CRITICAL ") + text.count("Traceback"),
    }


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
    with harness.servers(folder) as (rabbitmq, postgres):
        database = postgres.create_database("devices")
        # The benchmark picks the interval; the minimum only guards the API's input.
        env = harness.punctual_env(database, rabbitmq.url, folder, DEVICE_MIN_INTERVAL="1")
        harness.migrate(env)
        engine = create_engine(database)
        started = harness.punctual_processes(env, folder, workers=workers)
        try:
            os.environ.update(env)
            from app import create_app

            app = create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": database,
                    "CELERY_BROKER_URL": rabbitmq.url,
                    "DEVICE_MIN_INTERVAL": 1,
                }
            )
            celery = app.extensions["celery"]
            # The queue-depth probe connects once a second; pika logs every step at INFO.
            logging.getLogger("pika").setLevel(logging.WARNING)
            worker_pids = [process.proc.pid for process in started[:workers]]
            registered_s, busy_s = register_fleet(app, devices, interval, pace)
            registered = time.monotonic()

            # The first round settles when every device has a successful poll.
            from app.scheduling.models import Job

            def polled_once() -> bool:
                with engine.connect() as connection:
                    return (
                        devices
                        == connection.execute(
                            select(func.count(func.distinct(Job.subject_id))).where(
                                Job.kind == "device.poll", Job.state == "succeeded"
                            )
                        ).scalar_one()
                    )

            harness.wait_until(polled_once, timeout=60 + devices / 20, interval=0.2)
            settled_s = time.monotonic() - registered
            time.sleep(warmup)

            meter = harness.CpuMeter(
                {
                    **{f"worker{i}": w.proc.pid for i, w in enumerate(started[:workers])},
                    "beat": started[-1].proc.pid,
                    "postgres": harness.postmaster_pid(postgres),
                    "rabbitmq": rabbitmq.beam_pid(),
                }
            ).start()
            window_start = now()
            began = time.monotonic()
            samples = sample_until(began + duration, engine, celery, rabbitmq, worker_pids)
            window_end = window_start + timedelta(seconds=time.monotonic() - began)
            cpu = ", ".join(f"{name} {share}" for name, share in meter.stop().items())

            def window_done() -> bool:
                with engine.connect() as connection:
                    return not connection.execute(
                        select(func.count(Job.id)).where(
                            Job.kind == "device.poll",
                            Job.state.in_(OUTSTANDING),
                            Job.due_at < window_end,
                        )
                    ).scalar_one()

            harness.wait_until(window_done, timeout=max(30, 3 * interval), interval=0.5)
            final = outstanding_sample(engine)
            logs = log_counts(started)
            result = analyse(engine, interval, window_start, window_end)
        finally:
            harness.stop_all(started)
            engine.dispose()

    seconds = result["seconds"]
    every = [*samples, final]
    evidence = [row for sample in every for row in sample["evidence"]][:6]
    notes = {
        "retried": result["retried"],
        "unfinished": result["unfinished"],
        "off grid": result["off_grid"],
        **{f"log {name}": count for name, count in logs.items() if name not in TICKS},
    }
    held = [s["unacked"] for s in samples if "unacked" in s]
    return [
        {
            "benchmark": (
                f"device polling ({devices} devices every {interval:g} s, {duration:g} s"
                f"{', paced' if pace else ''}{f', warm-up {warmup:g} s' if warmup else ''})"
            ),
            "system": "punctual",
            "workers": workers,
            "register_s": round(registered_s, 2),
            "register_per_s": round(devices / busy_s),
            "settled_s": round(settled_s, 1),
            "expected_per_s": round(result["expected"] / seconds, 1),
            "achieved_per_s": round(result["ran"] / seconds, 1),
            "worst_cycle_per_s": result["worst_cycle_per_s"],
            **harness.percentiles(result["late"]),
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
            "cpu_pct": cpu,
            "notes": ", ".join(f"{k} {v}" for k, v in notes.items() if v) or "-",
            **({"evidence": evidence} if evidence else {}),
        }
    ]
