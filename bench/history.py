"""Benchmark 6, history: what months of finished work cost the reads that stay in use.

Run by `python -m bench.run --only history`. Starts its own RabbitMQ and PostgreSQL. For each
history size, a fresh database holds 1,000 devices of one owner and N finished `device.poll`
jobs over 30 days with three readings each, then the last 5 minutes at the fleet's pace in
service, every 10 s (bench/history_data.py). The app, in this process through Flask's test
client, answers each figure's call five times at every size, in rounds of one call per size
(the median is the figure). Goals (issue 18): every figure within 2x from the smallest history
to the largest, the scrape under 50 ms. Then the retention task's effect on work due while it
runs (bench/history_prune.py).
"""

import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select

from app.auth.models import User
from app.devices.models import Device
from app.extensions import db
from app.scheduling.promoter import promote
from bench import harness, history_data, history_prune
from bench.history_data import Span
from devkit import processes
from devkit.servers import PostgresServer, pair

Rows = list[dict[str, Any]]
DEVICES = 1000
DAYS = 30
# The last METRICS_WINDOW (5 min) at the fleet's pace in service, on top of every history: what
# /metrics reads (30,000 jobs started in the window at 1,000 devices every 10 s).
INTERVAL = 10
RECENT_S = 300
RECENT_JOBS = DEVICES * RECENT_S // INTERVAL
CALLS = 5
SCRAPE_GOAL_MS = 50.0
GROWTH_GOAL = 2.0
METRICS, DATABASE = "GET /metrics", "database size"


def history(
    folder: Path,
    sizes: list[int],
    fleet: history_prune.Fleet,
    closes: tuple[int, float],
    lead: float,
) -> Rows:
    """The figures at each history size, their growth; then the prune and concurrent closes."""
    with pair(folder) as (rabbitmq, postgres):
        histories = [History.written(postgres, rabbitmq.url, folder, n) for n in sizes]
        try:
            rows = growth_rows(measure(histories))
        finally:
            for written in histories:
                written.close()
        rows += [written.data for written in histories]
        rows += history_prune.prune_effect(rabbitmq, postgres, folder, fleet, closes, lead)
    return rows


@dataclass
class History:
    """A database holding `jobs` finished polls, and the app signed in as their owner."""

    jobs: int
    app: Flask
    client: FlaskClient
    headers: dict[str, str]
    data: dict[str, Any]  # the row on what was written

    @classmethod
    def written(cls, postgres: PostgresServer, broker: str, folder: Path, jobs: int) -> "History":
        database = postgres.create_database(f"history_{jobs}")
        processes.migrate(harness.punctual_env(database, broker, folder))
        app = history_data.in_process_app(database, broker, folder)
        client = app.test_client()
        headers, owner = sign_in(app, client)
        began = time.monotonic()
        write_history(database, owner, jobs)
        written = time.monotonic() - began
        history_data.vacuum_analyze(database)
        with app.app_context():
            counts = history_data.counts(db.session.connection())
        data = {
            "benchmark": "history data",
            "history_jobs": jobs,
            "recent_jobs": RECENT_JOBS,
            **counts,
            "written_s": round(written, 1),
            "vacuum_analyze_s": round(time.monotonic() - began - written, 1),
        }
        return cls(jobs, app, client, headers, data)

    def calls(self) -> dict[str, Callable[[], None]]:
        """Each timed figure's call, through the app."""
        with self.app.app_context():
            device = db.session.execute(select(func.min(Device.id))).scalar_one()
        to = datetime.now(UTC)
        day = {"from": (to - timedelta(days=1)).isoformat(), "to": to.isoformat()}
        observations = f"/api/devices/{device}/observations"
        return {
            METRICS: self.get("/metrics"),
            "GET /api/jobs?per_page=20": self.get("/api/jobs", per_page="20"),
            "GET /api/devices/<id>": self.get(f"/api/devices/{device}"),
            "GET observations limit=100": self.get(observations, limit="100"),
            "GET observations bucket=1h, last day": self.get(observations, bucket="1h", **day),
            "promoter run": self.promoter_run,
        }

    def get(self, url: str, **query: str) -> Callable[[], None]:
        def call() -> None:
            response = self.client.get(url, headers=self.headers, query_string=query)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])

        return call

    def promoter_run(self) -> None:
        with self.app.app_context():
            promote()

    def close(self) -> None:
        with self.app.app_context():
            db.engine.dispose()


def sign_in(app: Flask, client: FlaskClient) -> tuple[dict[str, str], int]:
    """A new user's bearer header, and its id (the owner of the history written next)."""
    credentials = {"username": f"history-{uuid.uuid4().hex[:8]}", "password": "bench-password"}
    assert client.post("/api/auth/register", json=credentials).status_code == 201
    token = client.post("/api/auth/token", json=credentials).get_json()["token"]
    with app.app_context():
        owner = db.session.execute(
            select(User.id).where(User.username == credentials["username"])
        ).scalar_one()
    return {"Authorization": f"Bearer {token}"}, owner


def write_history(database: str, owner: int, jobs: int) -> None:
    """The owner's fleet; its `jobs` finished polls over DAYS days, up to the last RECENT_S
    seconds, which hold the fleet's polls at its pace in service; its next polls."""
    now = datetime.now(UTC)
    recent_start = now - timedelta(seconds=RECENT_S)
    older = Span(now - timedelta(days=DAYS), DAYS * 86400 - RECENT_S, jobs, DEVICES)
    recent = Span(recent_start, RECENT_S, RECENT_JOBS, DEVICES)
    engine = create_engine(database)
    with engine.begin() as connection:
        history_data.fleet(connection, owner, DEVICES, INTERVAL, now)
        history_data.finished_polls(connection, owner, older)
        history_data.finished_polls(connection, owner, recent)
        history_data.next_polls(connection, owner, now + timedelta(hours=1), now)
    engine.dispose()


def medians_ms(calls: list[Callable[[], Any]]) -> list[float]:
    """Each call's median of CALLS timed runs, in rounds of one run of each (a drift of the
    machine's speed then falls on all alike), after one untimed run of each: the first compiles
    its queries and opens its connections, which a serving process has done long before."""
    for call in calls:
        call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(CALLS):
        for call, taken in zip(calls, times, strict=True):
            began = time.perf_counter()
            call()
            taken.append((time.perf_counter() - began) * 1000)
    return [round(statistics.median(taken), 1) for taken in times]


def measure(histories: list[History]) -> dict[int, dict[str, float]]:
    """Each figure's median time in ms at every size, the sizes measured together; and the
    database's size in MiB."""
    calls = [written.calls() for written in histories]
    figures: dict[int, dict[str, float]] = {written.jobs: {} for written in histories}
    for name in calls[0]:
        medians = medians_ms([sized[name] for sized in calls])
        for written, median in zip(histories, medians, strict=True):
            figures[written.jobs][name] = median
    for written in histories:
        figures[written.jobs][DATABASE] = written.data["db_mib"]
    return figures


def growth_rows(measured: dict[int, dict[str, float]]) -> Rows:
    """One row per figure: its value at each size, and the largest size's over the smallest."""
    small, large = min(measured), max(measured)
    rows = []
    for name in measured[small]:
        values = {f"at {n:,} jobs": measured[n][name] for n in sorted(measured)}
        ratio = measured[large][name] / max(measured[small][name], 0.1)
        rows.append(
            {
                "benchmark": f"history ({DEVICES:,} devices, {DAYS} days + {RECENT_JOBS:,} recent,"
                f" median of {CALLS})",
                "figure": name,
                "unit": "MiB" if name == DATABASE else "ms",
                **values,
                "ratio": round(ratio, 2),
                **verdict(name, ratio, max(measured[n][name] for n in measured)),
            }
        )
    return rows


def verdict(name: str, ratio: float, worst: float) -> dict[str, str]:
    """The goal a figure is held to, and whether this run met it."""
    if name == DATABASE:
        return {"goal": "none: grows with the history", "met": ""}
    within = ratio <= GROWTH_GOAL
    if name == METRICS:
        met = within and worst < SCRAPE_GOAL_MS
        return {
            "goal": f"<= {GROWTH_GOAL:g}x, < {SCRAPE_GOAL_MS:g} ms",
            "met": "yes" if met else "NO",
        }
    return {"goal": f"<= {GROWTH_GOAL:g}x", "met": "yes" if within else "NO"}
