"""The retention task against work due meanwhile: part of benchmark 6 (bench/history.py).

A fleet's finished polls (and their readings) over a span a day old, then polls due within one
window closed by a real worker and beat, twice: as a baseline, and while
app.scheduling.retention.prune() deletes the span in this process. A day of 1,000 devices
polled every 10 s is 8.64 M jobs and 26 M readings, too many for a benchmark run here: the
fleet is scaled (an hour of it by default) and the row says which, with the day extrapolated.
Goal (issue 18): p99 lateness of the closes due while it runs under 100 ms.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, create_engine, select

from app.extensions import db
from app.polls.models import Poll
from app.scheduling import retention
from bench import harness, history_data
from bench.bulk import bulk_owner, bulk_polls
from bench.history_data import Span
from bench.lateness import window_of
from devkit import processes, stats
from devkit.servers import PostgresServer, RabbitMQServer
from devkit.waiting import until

Rows = list[dict[str, Any]]
DAY = 86400
P99_GOAL_MS = 100.0
AGE = timedelta(days=1)  # of the span's last poll: old enough to prune, as in service
# The prune starts this long before the first close is due: under way when it is.
OPENING = timedelta(seconds=0.25)
RETENTION_SETTINGS = (*retention.JOB_RETENTION.values(), "READING_RETENTION")


@dataclass(frozen=True)
class Fleet:
    """`devices` polled every `interval` seconds for `seconds`: the history a prune deletes."""

    devices: int
    interval: int
    seconds: int

    @property
    def jobs(self) -> int:
        return self.devices * self.seconds // self.interval

    def text(self) -> str:
        span = f"{self.seconds / 3600:g} h" if self.seconds < DAY else f"{self.seconds / DAY:g} d"
        return f"{span} of {self.devices:,} devices at {self.interval} s"


@dataclass
class Closes:
    """One window of polls due and closed, maybe with something run meanwhile."""

    late_ms: list[float]
    during: int  # closes due between the start and the end of what ran meanwhile
    result: Any = None
    seconds: float = 0.0


def prune_effect(
    rabbitmq: RabbitMQServer,
    postgres: PostgresServer,
    folder: Path,
    fleet: Fleet,
    closes: tuple[int, float],
    lead: float,
) -> Rows:
    """The fleet's span pruned while polls close; the same closes without it, first (after a
    tenth of them to warm the worker up)."""
    database = postgres.create_database("history_prune")
    folder = folder / "prune"
    folder.mkdir(parents=True, exist_ok=True)
    # The beat's own prune would run on the history meanwhile: not in this run.
    env = harness.punctual_env(database, rabbitmq.url, folder, RETENTION_INTERVAL=str(DAY))
    processes.migrate(env)
    cutoff = write_span(database, fleet)
    history_data.vacuum_analyze(database)
    app = history_data.in_process_app(database, rabbitmq.url, folder)
    engine = create_engine(database)
    started = harness.punctual_processes(env, folder)
    try:
        # A first, untimed window: a fresh worker's first closes open its connections.
        closes_run(engine, database, (max(closes[0] // 10, 1), closes[1]), lead)
        baseline = closes_run(engine, database, closes, lead)
        pruning = closes_run(engine, database, closes, lead, lambda: prune_span(app, cutoff))
    finally:
        harness.stop_all(started)
        engine.dispose()
        with app.app_context():
            db.engine.dispose()
    return [prune_row(fleet, pruning), *closes_rows(closes, baseline, pruning)]


def write_span(database: str, fleet: Fleet) -> datetime:
    """The fleet's span of finished polls, then one more poll each a day old; the cutoff
    between the two (what a retention of that age deletes is exactly the span)."""
    now = datetime.now(UTC)
    interval = timedelta(seconds=fleet.interval)
    kept = now - AGE
    start = kept - interval - timedelta(seconds=fleet.seconds)
    engine = create_engine(database)
    with engine.begin() as connection:
        owner = bulk_owner(connection, now)
        history_data.fleet(connection, owner, fleet.devices, fleet.interval, now)
        history_data.finished_polls(
            connection, owner, Span(start, fleet.seconds, fleet.jobs, fleet.devices)
        )
        history_data.finished_polls(
            connection, owner, Span(kept, fleet.interval, fleet.devices, fleet.devices)
        )
    engine.dispose()
    return kept - interval / 2


def prune_span(app: Flask, cutoff: datetime) -> dict[str, dict[str, int]]:
    """retention.prune() with every retention set to the age of `cutoff`: what the beat's
    scheduling.prune task runs, here in this process to time it."""
    now = datetime.now(UTC)
    age = (now - cutoff).total_seconds()
    app.config.update(dict.fromkeys(RETENTION_SETTINGS, age))
    with app.app_context():
        return retention.prune(now=now)


def closes_run(
    engine: Engine,
    database: str,
    closes: tuple[int, float],
    lead: float,
    meanwhile: Callable[[], Any] | None = None,
) -> Closes:
    """n polls due over the window, `lead` s from now; `meanwhile()` run from just before the
    window opens; the lateness of each close once all are closed (or the deadline)."""
    n, window_s = closes
    due = window_of(n, lead, window_s)
    bulk_polls(database, n, due)
    run = Closes([], 0)
    if meanwhile is not None:
        until(lambda: datetime.now(UTC) >= due[0] - OPENING, timeout=lead + 5)
        began = datetime.now(UTC)
        run.result = meanwhile()
        ended = datetime.now(UTC)
        run.seconds = (ended - began).total_seconds()
        run.during = sum(began <= at <= ended for at in due)
    until(lambda: len(closed(engine, due)) >= n, timeout=lead + window_s + 60 + n / 50)
    run.late_ms = [(at - close) / timedelta(milliseconds=1) for close, at in closed(engine, due)]
    return run


def closed(engine: Engine, due: list[datetime]) -> list[tuple[datetime, datetime]]:
    """(close_date, closed_at) of the window's closed polls."""
    with engine.connect() as connection:
        return connection.execute(
            select(Poll.close_date, Poll.closed_at).where(
                Poll.close_date.between(due[0], due[-1]), Poll.closed_at.is_not(None)
            )
        ).all()


def prune_row(fleet: Fleet, pruning: Closes) -> dict[str, Any]:
    """What the prune deleted, how fast, and a day of the unscaled fleet at that pace."""
    gone = pruning.result
    rows = sum(sum(counts.values()) for counts in gone.values())
    day = pruning.seconds * (DAY / fleet.seconds) * (1000 / fleet.devices) * (fleet.interval / 10)
    return {
        "benchmark": "history prune (retention.prune, RETENTION_BATCH_SIZE rows a transaction)",
        "pruned": fleet.text(),
        "jobs_written": fleet.jobs,
        "jobs_deleted": sum(gone.get("jobs", {}).values()),
        "readings_deleted": gone.get("readings", {}).get("attribute_reading", 0),
        "failures_deleted": gone.get("readings", {}).get("poll_failure", 0),
        "prune_s": round(pruning.seconds, 2),
        "rows_per_s": round(rows / max(pruning.seconds, 1e-9)),
        "day_of_1000_at_10s_s": round(day),
        "note": "the day extrapolated linearly from this run",
    }


def closes_rows(closes: tuple[int, float], baseline: Closes, pruning: Closes) -> Rows:
    n, window_s = closes
    rows = []
    for system, run in (("baseline", baseline), ("while pruning", pruning)):
        late = stats.percentiles(run.late_ms, digits=1)
        rows.append(
            {
                "benchmark": f"history prune: {n} polls due in {window_s:g} s",
                "system": system,
                "closed": len(run.late_ms),
                "due_while_pruning": run.during if run is pruning else "",
                **{f"{point}_ms": value for point, value in late.items()},
                **(goal(late["p99"]) if run is pruning else {"goal": "", "met": ""}),
            }
        )
    return rows


def goal(p99_ms: float) -> dict[str, str]:
    return {"goal": f"p99 < {P99_GOAL_MS:g} ms", "met": "yes" if p99_ms < P99_GOAL_MS else "NO"}
