"""Benchmark 5, second part (issue 16): devices on the `http` vendor against a vendor API that
answers after a fixed delay, `python -m bench.run --only devices [--smoke]`.

The vendor is devkit/fake_vendor.py, a real HTTP server on 127.0.0.1 in a process of its own.
Three setups, one after the other in the same run, each on servers of its own:

- "io pool": a prefork worker on the `celery` and promoter queues, a worker on Celery's threads
  pool on the I/O queue (`punctual.io`: device polls), and beat; RabbitMQ and PostgreSQL.
  Two such io workers by default, one per core (`BENCH_IO_PROCESSES` in the environment says
  how many): the threads of one process share one GIL, and one was CPU-bound.
- "prefork baseline": one prefork worker at today's settings (2 processes, no -Q, so every
  queue) and beat, on RabbitMQ and PostgreSQL.
- "embedded": as `make run` starts it, on SQLite and the filesystem broker with the default
  engine settings: the prefork worker, the io worker at the Procfile's concurrency, and beat.

The fleet is registered over one interval and measured as bench/devices.py measures the
simulated one (bench/device_outcome.py); also the database connections of each process, and
what the vendor served (requests, connections opened: a client that keeps them alive opens few).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, text

from app.extensions import db
from bench import devices, harness
from bench.device_outcome import Probe
from bench.vendor_row import setup_row
from devkit import processes, proctree
from devkit.fake_vendor import READY
from devkit.ports import free_port
from devkit.servers import PostgresServer, RabbitMQServer, pair
from devkit.waiting import until

SETUPS = ("io", "prefork", "embedded")
# Smoke leaves the baseline out: its worker is the simulated run's, and it would take 30 s more.
SMOKE_SETUPS = ("io", "embedded")
TITLES = {"io": "io pool", "prefork": "prefork baseline", "embedded": "embedded default"}
# Threads of the io worker: a poll waits ~delay for its two requests (asked at once), so 1,000
# devices every 10 s against 250 ms keep ~100/s x 0.25 s = 25 polls in flight, plus their
# database time; 32 leave room for bursts without a database connection per idle thread.
IO_CONCURRENCY = 32
# io workers of the io setup: one per core of this 2-core machine. One process held 98.9% of
# the expected polls at a p99 of 4.8 s, CPU-bound at 81% of a core; two, 100% at 179 ms.
IO_PROCESSES = 2
# The prefork worker's queues beside an io worker (the Procfile's "worker").
PREFORK_QUEUES = "celery,punctual.promoter"


@dataclass(frozen=True)
class Fleet:
    devices: int
    interval: int  # seconds between two polls of a device
    duration: float  # seconds measured
    delay: float  # seconds the vendor takes to answer each request

    def describe(self) -> str:
        return (
            f"{self.devices} devices every {self.interval} s, vendor {self.delay * 1000:g} ms,"
            f" {self.duration:g} s"
        )


FULL = Fleet(1000, 10, 120, 0.25)
EMBEDDED = Fleet(40, 5, 60, 0.25)
SMOKE = Fleet(20, 2, 8, 0.05)


@dataclass
class Servers:
    database: str
    broker: str
    rabbitmq: RabbitMQServer | None = None
    postgres: PostgresServer | None = None


def slow_vendor(
    folder: Path,
    fleets: dict[str, Fleet],
    setups: tuple[str, ...] = SETUPS,
    io_concurrency: int = IO_CONCURRENCY,
) -> list[dict[str, Any]]:
    """One row per setup, each with its fleet (`fleets[setup]`)."""
    return [run_setup(folder / setup, setup, fleets[setup], io_concurrency) for setup in setups]


def run_setup(folder: Path, setup: str, fleet: Fleet, io_concurrency: int) -> dict[str, Any]:
    """Start the servers, the vendor and the setup's processes; register; measure; one row."""
    folder.mkdir(parents=True, exist_ok=True)
    with servers(folder, setup) as where, vendor_process(folder, fleet.delay) as vendor:
        env = setup_env(setup, where, folder, vendor_url(vendor))
        processes.migrate(env)
        engine = create_engine(where.database)
        started = start_processes(setup, env, folder, io_concurrency)
        try:
            app = devices.fleet_app(env, where.database, where.broker, **embedded_config(env))
            devices.register_fleet(app, fleet.devices, fleet.interval, pace=True, vendor="http")
            with app.app_context():
                db.engine.dispose()  # its connections would count as the workers'
            settled = until(
                lambda: devices.polled_once(engine, fleet.devices),
                timeout=3 * fleet.interval + 20,
                interval=0.2,
            )
            measures = watch(app, engine, where, [*started, vendor])
            served = vendor_stats(vendor)
            run = devices.window(engine, started, measures, fleet.interval, fleet.duration)
            run["vendor"] = window_stats(served, vendor_stats(vendor))
        finally:
            harness.stop_all(started)
            engine.dispose()
    return setup_row(TITLES[setup], setup, fleet.describe(), started, bool(settled), run)


# --- where it runs -----------------------------------------------------------------------------


@contextmanager
def servers(folder: Path, setup: str) -> Iterator[Servers]:
    """RabbitMQ and PostgreSQL of its own, or the embedded default's SQLite and folder broker."""
    if setup == "embedded":
        (folder / "instance").mkdir(parents=True, exist_ok=True)
        yield Servers(f"sqlite:///{folder / 'instance' / 'punctual.db'}", "filesystem://")
        return
    with pair(folder) as (rabbitmq, postgres):
        database = postgres.create_database("devices")
        yield Servers(database, rabbitmq.url, rabbitmq, postgres)


def setup_env(setup: str, where: Servers, folder: Path, vendor: str) -> dict[str, str]:
    """The benchmarks' settings on RabbitMQ and PostgreSQL; `make run`'s for the embedded one."""
    # The benchmark picks the interval; the minimum only guards the API's input.
    extra = {"DEVICE_MIN_INTERVAL": "1", "VENDOR_HTTP_BASE_URL": vendor}
    if setup != "embedded":
        return harness.punctual_env(where.database, where.broker, folder, **extra)
    return {
        "DATABASE_URL": where.database,
        "CELERY_BROKER_URL": where.broker,
        "PUNCTUAL_INSTANCE": str(folder / "instance"),
        "BROKER_FOLDER": str(folder / "broker"),
        "SECRET_KEY": "bench",
        "LOG_CELERY_TASKS": "1",  # promoter runs are counted from Celery's task lines
        **extra,
    }


def embedded_config(env: dict[str, str]) -> dict[str, Any]:
    """The in-process app's broker folder: Config read it once, for the first app made."""
    return {"BROKER_FOLDER": env["BROKER_FOLDER"]}


def start_processes(
    setup: str, env: dict[str, str], folder: Path, io_concurrency: int
) -> list[processes.Process]:
    """The setup's workers, then beat (last, as bench/devices.py expects)."""
    if setup == "prefork":
        return [processes.worker(env, folder), processes.beat(env, folder)]
    workers = [processes.worker(env, folder, queues=PREFORK_QUEUES)]
    if setup == "io":
        # IO_PROCESSES io workers on the same queue: each is one process, whose threads share
        # one GIL; the environment's BENCH_IO_PROCESSES overrides it.
        for index in range(int(os.environ.get("BENCH_IO_PROCESSES", IO_PROCESSES))):
            name = "io" if index == 0 else f"io{index + 1}"
            workers.append(processes.io_worker(env, folder, name, concurrency=io_concurrency))
    else:  # the embedded default runs the Procfile's io worker, at its default concurrency
        workers.append(processes.io_worker(env, folder))
    return [*workers, processes.beat(env, folder)]


@contextmanager
def vendor_process(folder: Path, delay: float) -> Iterator[processes.Process]:
    """The fake vendor in a process of its own, answering every request after `delay` s."""
    port = free_port()
    args = [processes.tool("python"), "-m", "devkit.fake_vendor", f"--port={port}"]
    vendor = processes.Process("vendor", [*args, f"--delay={delay}"], {}, folder, READY)
    vendor.start()
    try:
        yield vendor
    finally:
        vendor.kill()


def vendor_url(vendor: processes.Process) -> str:
    line = next(line for line in vendor.log().splitlines() if READY in line)
    return line.split(READY, 1)[1].strip()


def vendor_stats(vendor: processes.Process) -> dict[str, int]:
    return requests.get(f"{vendor_url(vendor)}/_stats", timeout=5).json()


def window_stats(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests and connections during the window; the most requests at once, over the run."""
    counted = {k: after[k] - before[k] for k in ("requests", "connections")}
    return {**counted, "in_flight_max": after["in_flight_max"]}


# --- what is measured --------------------------------------------------------------------------


def watch(app: Any, engine: Engine, where: Servers, started: list[processes.Process]) -> Any:
    """CPU of every process and server; each second the queues' depth, each worker's RSS and,
    on PostgreSQL, its connections (per process from /proc, in all from pg_stat_activity)."""
    celery = app.extensions["celery"]
    pids = {process.name: process.proc.pid for process in started}
    workers = {name: pid for name, pid in pids.items() if name not in ("beat", "vendor")}
    probes: dict[str, Probe] = {
        "ready": lambda: sum(devices.queue_depth(celery, q) for q in devices.QUEUES),
        **{f"rss:{name}": rss_probe(pid) for name, pid in workers.items()},
    }
    roots: dict[str, int | None] = dict(pids)
    if where.postgres is not None and where.rabbitmq is not None:
        port = where.postgres.port
        probes["db total"] = lambda: database_connections(engine)
        for name, pid in pids.items():
            if name != "vendor":
                probes[f"db:{name}"] = connections_probe(pid, port)
        roots.update(harness.server_pids(where.rabbitmq, where.postgres))
    return devices.Watch(roots=roots, probes=probes)


def rss_probe(pid: int) -> Probe:
    return lambda: proctree.tree_rss_mib(pid)


def connections_probe(pid: int, port: int) -> Probe:
    return lambda: proctree.connections_to(port, [pid, *proctree.descendants(pid)])


def database_connections(engine: Engine) -> int:
    """Connections to the benchmark's database, but the sampler's own."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()
