"""What the device fleet of bench/devices.py did: samples taken while it runs, and the outcome
read from the database and the logs afterwards."""

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select

from app.devices.models import AttributeReading, Device, PollFailure, StatusReading
from app.scheduling.models import Job
from bench import harness

OUTSTANDING = ("scheduled", "queued", "running")
Probe = Callable[[], Any]  # one number to sample every second (a queue's depth, a process's RSS)


# --- sampling while it runs --------------------------------------------------------------------


def outstanding_sample(engine: Engine) -> dict[str, Any]:
    """Per device: how many poll jobs are outstanding (scheduled, queued or running) right now."""
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
    end: float, engine: Engine, probes: dict[str, Probe], slow: dict[str, Probe] | None = None
) -> list[dict[str, Any]]:
    """One sample a second until `end` (monotonic): the outstanding polls and each probe's
    value; the `slow` probes' every 10 s.

    `rabbitmqctl` boots an Erlang VM (about a second of CPU) each call, so it is a slow probe,
    and the per-second depth comes from a passive queue declare, as the promoter reads it.
    """
    samples = []
    for tick in itertools.count():
        if time.monotonic() >= end:
            break
        at = time.monotonic()
        sample = outstanding_sample(engine)
        sample.update({name: probe() for name, probe in probes.items()})
        if tick % 10 == 0:
            sample.update({name: probe() for name, probe in (slow or {}).items()})
        samples.append(sample)
        time.sleep(max(0.0, min(at + 1, end) - time.monotonic()))
    return samples


# --- reading the outcome -----------------------------------------------------------------------


def grid_slots(anchor: datetime, step: float, start: datetime, end: datetime) -> int:
    """How many times `anchor + k * step` (k >= 0) falls in [start, end)."""
    first = max(0, math.ceil((start - anchor).total_seconds() / step - 1e-9))
    last = math.ceil((end - anchor).total_seconds() / step - 1e-9)
    return max(0, last - first)


def poll_jobs(connection: Connection) -> list[Row]:
    """Every device poll job, device by device, in the order they were due."""
    return connection.execute(
        select(Job.id, Job.subject_id, Job.due_at, Job.started_at, Job.state, Job.attempts)
        .where(Job.kind == "device.poll")
        .order_by(Job.subject_id, Job.due_at, Job.id)
    ).all()


def on_the_grid(jobs: list[Row], step: float, start: datetime, end: datetime) -> dict[str, int]:
    """Grid slots in [start, end) ("expected"), slots skipped because the poll before them ran
    late ("coalesced"), and polls due there off every device's grid ("off_grid")."""
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
    return {"expected": expected, "coalesced": coalesced, "off_grid": off_grid}


def worst_cycle(jobs: list[Row], step: float, start: datetime, end: datetime) -> float:
    """Polls started per second in the slowest whole interval of the window: is the rate
    sustained, cycle by cycle?"""
    per_cycle: dict[int, int] = defaultdict(int)
    for job in jobs:
        if job.started_at is not None and start <= job.started_at < end:
            per_cycle[int((job.started_at - start).total_seconds() // step)] += 1
    cycles = [per_cycle[c] / step for c in range(int((end - start).total_seconds() // step))]
    return round(min(cycles), 1) if cycles else float("nan")


def analyse(engine: Engine, interval: int, start: datetime, end: datetime) -> dict[str, Any]:
    """Polls due in [start, end): run, late, failed, coalesced, off the grid."""
    with engine.connect() as connection:
        jobs = poll_jobs(connection)

        def stored(column: Any) -> int:
            return connection.execute(
                select(func.count()).where(column >= start, column < end)
            ).scalar_one()

        observations = stored(AttributeReading.created_at) + stored(StatusReading.created_at)
        vendor_failures = stored(PollFailure.failed_at)

    step = float(interval)
    due = [job for job in jobs if start <= job.due_at < end]
    ran = [job for job in due if job.state == "succeeded"]
    seconds = (end - start).total_seconds()
    return {
        **on_the_grid(jobs, step, start, end),
        "due": len(due),
        "ran": len(ran),
        # Polls run in the window, whenever due: a fleet that fell behind runs old ones.
        "started": sum(
            job.started_at is not None and start <= job.started_at < end for job in jobs
        ),
        "late": [(job.started_at - job.due_at).total_seconds() for job in ran],
        "failed": sum(job.state == "failed" for job in due),
        "retried": sum(job.attempts > 1 for job in due),
        "unfinished": sum(job.state in OUTSTANDING for job in due),
        "vendor_failures": vendor_failures,
        "observations_per_s": round(observations / seconds, 1),
        "worst_cycle_per_s": worst_cycle(jobs, step, start, end),
        "seconds": seconds,
    }


def log_counts(started: list[Any]) -> dict[str, int]:
    """What the worker and beat logs say over the whole run (registration included)."""
    text = "".join(process.log() for process in started)
    return {
        "beat ticks": text.count("Sending due task promote-jobs"),
        # The beat's promote message expires after two intervals; RabbitMQ drops it unseen
        # when it waits that long behind other messages.
        "promoter runs": harness.promoter_runs(text),
        "resent": text.count(" resent (was "),
        "recovered": text.count(" recovered (was "),
        "early": text.count(" early; sent again"),
        "held back": text.count("holding back deferrable"),
        "errors": text.count(" ERROR ") + text.count(" CRITICAL ") + text.count("Traceback"),
    }
