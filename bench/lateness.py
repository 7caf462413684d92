"""Benchmark 2, lateness: N polls due within the same window, closed by Punctual and by the
tutorial recipe with one committed write each; then the throughput ceiling (bench/ceiling.py)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select

from app.polls.models import Poll
from bench import harness, tutorial
from bench.bulk import bulk_polls
from bench.ceiling import ceiling
from devkit import processes, stats
from devkit.servers import PostgresServer, RabbitMQServer, pair
from devkit.waiting import until


def lateness(
    folder: Path, windows: list[tuple[int, float]], trivial: int, lead: float = 20
) -> list[dict[str, Any]]:
    """For each (N, window_s), N polls due spread over `window_s` seconds starting `lead`
    seconds ahead, closed by Punctual and by the tutorial recipe; then the ceiling: `trivial`
    no-ETA tasks."""
    rows = []
    with pair(folder) as (rabbitmq, postgres):
        for n, window_s in windows:
            rows.append(punctual_lateness(rabbitmq, postgres, folder, n, lead, window_s))
            rows.append(tutorial_lateness(rabbitmq, postgres, folder, n, lead, window_s))
        rows.append(ceiling(rabbitmq, postgres, folder, trivial))
    return rows


def window_of(n: int, lead: float, window_s: float) -> list[datetime]:
    start = datetime.now(UTC) + timedelta(seconds=lead)
    return [start + timedelta(seconds=window_s * i / n) for i in range(n)]


def window_cpu(
    roots: dict[str, int], opens: datetime, done: Callable[[], bool], timeout: float
) -> str:
    """Wait for the window to open and then until `done()`; who used the CPU meanwhile, in
    percent of one core (this machine has harness.machine()["cores"] of them).

    A run that is not done by the deadline still gets its row: it counts what closed.
    """
    until(lambda: datetime.now(UTC) >= opens, timeout=timeout, interval=0.05)
    meter = harness.CpuMeter(roots).start()
    until(done, timeout=timeout, interval=0.5)
    return ", ".join(f"{name} {share}" for name, share in meter.stop().items())


def lateness_row(
    system: str, n: int, window_s: float, late: list[float], **extra: Any
) -> dict[str, Any]:
    """The row of one run; `late` holds closed_at - close_date in seconds, one per close."""
    return {
        "benchmark": f"lateness, {n} due in {window_s:g} s",
        "system": system,
        "closed": len(late),
        **stats.percentiles(late),
        **extra,
        "series": (f"lateness/{n}/{system}", late),
    }


def closed_polls(engine: Engine) -> list[tuple[datetime, datetime]]:
    """(close_date, closed_at) of every closed poll."""
    with engine.connect() as connection:
        return connection.execute(
            select(Poll.close_date, Poll.closed_at).where(Poll.closed_at.is_not(None))
        ).all()


def closed_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count(Poll.closed_at))).scalar_one()


def punctual_lateness(
    rabbitmq: RabbitMQServer,
    postgres: PostgresServer,
    folder: Path,
    n: int,
    lead: float,
    window_s: float,
) -> dict[str, Any]:
    """Polls written as the service writes them while it runs; the promoter sends them as they
    enter the horizon, the worker holds each until due and closes it. The lead counts from
    when they are written (as the tutorial's counts from when it publishes)."""
    servers = harness.server_pids(rabbitmq, postgres)
    return punctual_run(rabbitmq.url, servers, postgres, folder, n, lead, window_s)


def punctual_run(
    broker_url: str,
    servers: dict[str, int | None],
    postgres: PostgresServer,
    folder: Path,
    n: int,
    lead: float,
    window_s: float,
    system: str = "punctual",
    **settings: str,
) -> dict[str, Any]:
    """punctual_lateness on any broker (one node, or a cluster's `;`-separated URLs), with
    these settings; `servers` are the process trees whose CPU is shown."""
    name = f"lateness_{n}" if system == "punctual" else f"lateness_{n}_{len(servers)}_servers"
    database = postgres.create_database(name)
    env = harness.punctual_env(database, broker_url, folder, **settings)
    processes.migrate(env)
    started = harness.punctual_processes(env, folder)
    engine = create_engine(database)
    try:
        due = window_of(n, lead, window_s)
        bulk_polls(database, n, due)
        before = postgres.statements(name)
        cpu = window_cpu(
            {"worker": started[0].proc.pid, **servers},
            opens=due[0],
            done=lambda: closed_count(engine) >= n,
            timeout=lead + window_s + 60 + n / 50,
        )
        statements = postgres.statements(name) - before
        rows = closed_polls(engine)
    finally:
        harness.stop_all(started)
        engine.dispose()
    late = [(closed_at - close_date).total_seconds() for close_date, closed_at in rows]
    last = max((closed_at for _, closed_at in rows), default=due[0])
    runs = processes.job_events("".join(p.log() for p in started), "succeeded", "poll.close")
    return lateness_row(
        system,
        n,
        window_s,
        late,
        duplicates=stats.surplus(runs),
        last_closed_s=round((last - due[0]).total_seconds(), 2),
        statements_per_close=round(statements / max(len(rows), 1), 2),
        cpu_pct=cpu,
    )


def tutorial_lateness(
    rabbitmq: RabbitMQServer,
    postgres: PostgresServer,
    folder: Path,
    n: int,
    lead: float,
    window_s: float,
) -> dict[str, Any]:
    """The same window for the tutorial recipe, closing each poll with one committed write."""
    name = f"tutorial_lateness_{n}"
    database = postgres.create_database(name)
    tutorial.closes_table(database)
    queue, log = f"tutorial_lateness_{n}", folder / f"tutorial-lateness-{n}.log"
    worker = tutorial.worker(rabbitmq.url, folder, queue, log, database_url=database)
    due = window_of(n, lead, window_s)

    def executed() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    try:
        tutorial.publish(rabbitmq, queue, due, publishers=2)
        before = postgres.statements(name)
        cpu = window_cpu(
            {"worker": worker.proc.pid, **harness.server_pids(rabbitmq, postgres)},
            opens=due[0],
            done=lambda: len(executed()) >= n,
            timeout=lead + window_s + 60 + n / 50,
        )
        statements = postgres.statements(name) - before
    finally:
        worker.kill()
    runs = [line.split() for line in executed()]
    done = [datetime.fromisoformat(at).astimezone(UTC) for _, at in runs]
    late = [(at - due[int(i)]).total_seconds() for (i, _), at in zip(runs, done, strict=True)]
    return lateness_row(
        "tutorial",
        n,
        window_s,
        late,
        duplicates=stats.surplus(tutorial.closes(database)),
        last_closed_s=round((max(done, default=due[0]) - due[0]).total_seconds(), 2),
        statements_per_close=round(statements / max(len(runs), 1), 2),
        cpu_pct=cpu,
    )
