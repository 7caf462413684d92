"""A fleet's history written in bulk by PostgreSQL itself, as months of polling would leave it.

Every row comes from generate_series in one statement per table (row by row from Python,
2,000,000 jobs and their 6 M readings would take the better part of an hour). Jobs are spread
evenly over the span and round-robin over the devices, so each device is polled every
`devices * span / jobs`: the history of a fleet at that interval. The app that reads it runs in
the benchmark's process (in_process_app), as Flask's test client calls it.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Connection, create_engine, text

from app import create_app

# random() decides a job's state and lateness: the same seed gives the same history.
SEED = 0.18
_FLEET = """
INSERT INTO device (owner_id, name, location, vendor, vendor_id, interval, paused, created_at,
                    last_polled_at, last_seen_at, consecutive_failures, is_on)
SELECT :owner, 'Thermostat ' || i, 'Site ' || (i % 10), 'simulated', 'thermostat-bench-' || i,
       :interval, false, :created, :now, :now, 0, true
FROM generate_series(1, :devices) AS i
"""
# Finished polls, 96% succeeded, 3% failed after five attempts, 1% cancelled (never started).
_FINISHED_POLLS = """
INSERT INTO job (kind, subject_id, owner_id, due_at, token, state, "deferrable", attempts,
                 max_attempts, last_error, created_at, queued_at, started_at, finished_at)
SELECT 'device.poll', fleet.ids[1 + i % cardinality(fleet.ids)], :owner, due,
       md5(random()::text || i), state,
       true, CASE state WHEN 'succeeded' THEN 1 WHEN 'failed' THEN 5 ELSE 0 END, 5,
       CASE state WHEN 'failed' THEN 'simulated device is unreachable' END,
       due - CAST(:interval AS interval), due - interval '1 second',
       CASE WHEN state <> 'cancelled' THEN due + late END, due + late + interval '20 ms'
FROM (SELECT array_agg(id ORDER BY id) AS ids FROM device WHERE owner_id = :owner) AS fleet,
     LATERAL (SELECT i, CAST(:start AS timestamptz) + i * CAST(:step AS interval) AS due,
                     random() AS r, random() * interval '50 ms' AS late
              FROM generate_series(0, :jobs - 1) AS i) AS poll,
     LATERAL (SELECT CASE WHEN r < 0.96 THEN 'succeeded' WHEN r < 0.99 THEN 'failed'
                          ELSE 'cancelled' END AS state) AS outcome
"""
# Three readings measured when each succeeded poll started, one failure per failed poll.
_READINGS = """
INSERT INTO attribute_reading (device_id, name, value, units, valid_at, created_at)
SELECT j.subject_id, a.name, a.base + 3 * sin(extract(epoch FROM j.started_at) / 600), a.units,
       j.started_at, j.finished_at
FROM job AS j
CROSS JOIN (VALUES ('temperature', '°C', 21.0), ('humidity', '%', 45.0), ('power', 'W', 60.0))
     AS a(name, units, base)
WHERE j.owner_id = :owner AND j.kind = 'device.poll' AND j.state = 'succeeded'
  AND j.due_at >= :start
"""
_FAILURES = """
INSERT INTO poll_failure (device_id, failed_at, error)
SELECT subject_id, finished_at, last_error FROM job
WHERE owner_id = :owner AND kind = 'device.poll' AND state = 'failed' AND due_at >= :start
"""
# Each device's next poll, beyond the promoter's horizon: the fleet goes on, nothing is sent.
_NEXT_POLLS = """
INSERT INTO job (kind, subject_id, owner_id, due_at, token, state, "deferrable", attempts,
                 max_attempts, created_at)
SELECT 'device.poll', id, owner_id, :due, md5('next/' || id), 'scheduled', true, 0, 5, :now
FROM device WHERE owner_id = :owner
"""


@dataclass(frozen=True)
class Span:
    """`jobs` finished polls due from `start` over `seconds`, and each device's interval."""

    start: datetime
    seconds: float
    jobs: int
    devices: int

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.seconds / self.jobs)

    @property
    def interval(self) -> timedelta:
        return self.step * self.devices


def fleet(connection: Connection, owner: int, devices: int, interval: int, now: datetime) -> None:
    """`devices` simulated thermostats of `owner`, polled every `interval` seconds until now."""
    created = now - timedelta(days=365)
    params = {"owner": owner, "devices": devices, "interval": interval, "created": created}
    connection.execute(text(_FLEET), {**params, "now": now})


def finished_polls(connection: Connection, owner: int, span: Span) -> None:
    """The span's finished polls of the owner's devices, with their readings and failures."""
    connection.execute(text("SELECT setseed(:seed)"), {"seed": SEED})
    params = {"owner": owner, "start": span.start}
    connection.execute(
        text(_FINISHED_POLLS),
        {**params, "jobs": span.jobs, "step": span.step, "interval": span.interval},
    )
    connection.execute(text(_READINGS), params)
    connection.execute(text(_FAILURES), params)


def next_polls(connection: Connection, owner: int, due: datetime, now: datetime) -> None:
    connection.execute(text(_NEXT_POLLS), {"owner": owner, "due": due, "now": now})


def vacuum_analyze(database_url: str) -> None:
    """What autovacuum does to a table soon after a bulk write: planner statistics and the
    visibility map (index-only scans), so queries are planned as on a database in service."""
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def counts(connection: Connection) -> dict[str, int]:
    """Rows of the tables a history fills, and the database's size in MiB."""
    row = connection.execute(
        text(
            "SELECT (SELECT count(*) FROM job), (SELECT count(*) FROM attribute_reading), "
            "pg_database_size(current_database()) / 1048576"
        )
    ).one()
    return {"jobs": row[0], "readings": row[1], "db_mib": int(row[2])}


def in_process_app(database_url: str, broker_url: str, folder: Path, **config: Any) -> Flask:
    """Punctual's app in this process, on the benchmark's servers, quiet below warnings."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CELERY_BROKER_URL": broker_url,
            "BROKER_FOLDER": str(folder / "broker"),
            "SECRET_KEY": "bench",
            "AUTH_RATE_LIMIT": "1000 per minute",
            "LOG_LEVEL": "WARNING",
            **config,
        }
    )
    # No worker has declared the queues on the measured databases' broker: each scrape would
    # log pika's "no queue" warning twice (the depth is read as 0, as in service before then).
    logging.getLogger("pika").setLevel(logging.ERROR)
    return app
