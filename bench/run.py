"""Punctual against the tutorial recipe, measured in one run: `make bench`, `make bench-smoke`.

1. Pending-schedule memory: N polls closing 1-7 days ahead; worker and broker memory of each,
   the tutorial's once its worker holds every message.
2. Lateness: N polls due within the same 10 s window, closed by each with one committed write;
   and the time trivial tasks take on the same worker setup (the throughput ceiling).
3. Long ETAs: RabbitMQ's consumer_timeout at 10 s and polls due in 30 s.
4. API throughput under gunicorn + wrk, against bare Flask (bench/api.py).
5. Device polling: 1,000 simulated devices every 10 s for 2 minutes (bench/devices.py).
Each benchmark starts its own RabbitMQ and PostgreSQL. Results: tables on stdout,
bench/results/latest.json (smoke.json for the smoke run) and PNG plots beside it.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from bench import api, devices, harness, plots
from tests import processes

TUTORIAL_ARGS = ["-A", "bench.tutorial_recipe", "worker", "--loglevel=INFO", "--concurrency=2"]
TUTORIAL_ARGS += ["--without-gossip", "--without-mingle"]


def now() -> datetime:
    return datetime.now(UTC)


# --- setting up --------------------------------------------------------------------------------


# Rows written by PostgreSQL itself from one array of close dates: a million polls and their
# jobs take seconds (row by row from Python: two and a half minutes).
_BULK_POLLS = """
INSERT INTO poll (title, owner_id, close_date, created_at)
SELECT 'Poll ' || (i - 1), :owner, close_date, :created
FROM unnest(CAST(:due AS timestamptz[])) WITH ORDINALITY AS t(close_date, i)
ORDER BY i
"""
# The close jobs as the service writes them for dates beyond the horizon.
_BULK_JOBS = """
INSERT INTO job (kind, subject_id, owner_id, due_at, token, state, "deferrable", attempts,
                 max_attempts, created_at)
SELECT 'poll.close', id, owner_id, close_date, md5(random()::text || id), 'scheduled', false,
       0, 5, created_at
FROM poll WHERE owner_id = :owner ORDER BY id
"""


def bulk_polls(database_url: str, count: int, due: list[datetime]) -> None:
    """`count` polls closing at `due` (in that order), each with its close job."""
    engine = create_engine(database_url)
    created = now()
    with engine.begin() as connection:
        owner = harness.bulk_owner(connection, created)
        connection.execute(
            text(_BULK_POLLS), {"owner": owner, "created": created, "due": due[:count]}
        )
        connection.execute(text(_BULK_JOBS), {"owner": owner})
    engine.dispose()


def tutorial_worker(
    broker_url: str,
    folder: Path,
    queue: str,
    log: Path,
    prefetch_multiplier: int = 4,
    database_url: str = "",
    quiet: bool = False,
) -> processes.Process:
    env = {
        "CELERY_BROKER_URL": broker_url,
        "TUTORIAL_LOG": str(log),
        "TUTORIAL_PREFETCH_MULTIPLIER": str(prefetch_multiplier),
        "TUTORIAL_DATABASE_URL": database_url,
        "TUTORIAL_QUIET": "1" if quiet else "",
    }
    args = [processes.CELERY, *TUTORIAL_ARGS, "-Q", queue, f"--hostname={queue}@%h"]
    return processes.Process(queue, args, env, folder, ready=" ready.").start()


def publish_tutorial(
    rabbitmq: Any, queue: str, etas: list[datetime], publishers: int = 1, stall: float = 60
) -> tuple[float, str]:
    """apply_async(eta=...) for each poll, as the tutorial's web app does, from `publishers`
    processes side by side (one per web worker).

    Returns the seconds it took and "" or, if publishing made no progress for `stall` seconds
    (RabbitMQ blocks publishers while a memory or disk alarm is on), why it gave up. Progress is
    what the publishers report in files, not the queue's length, which would take rabbitmqctl
    (about 0.7 s of CPU a call: minutes of the million-message run).
    """
    share = -(-len(etas) // publishers)
    started = time.monotonic()
    running, reports = [], []
    for first in range(0, len(etas), share):
        handle, report = tempfile.mkstemp(prefix="publish-", suffix=".progress")
        os.close(handle)
        reports.append(Path(report))
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.tutorial_publisher", queue, str(reports[-1])],
            stdin=subprocess.PIPE,
            text=True,
            cwd=harness.ROOT,
            env={**os.environ, "CELERY_BROKER_URL": rabbitmq.url},
        )
        chunk = [e.isoformat() for e in etas[first : first + share]]
        process.stdin.write(json.dumps([first, chunk]))
        process.stdin.close()
        running.append(process)

    def published() -> int:
        return sum(int(report.read_text() or 0) for report in reports if report.exists())

    count, grew_at = -1, time.monotonic()
    try:
        while any(process.poll() is None for process in running):
            time.sleep(2)
            if (now_count := published()) > count:
                count, grew_at = now_count, time.monotonic()
            elif time.monotonic() - grew_at > stall:
                for process in running:
                    process.kill()
                alarms = rabbitmq.alarms()
                return time.monotonic() - started, f"publishing blocked at {count}; alarms {alarms}"
    finally:
        for report in reports:
            report.unlink(missing_ok=True)
    if any(process.returncode != 0 for process in running):
        raise RuntimeError("publishing the tutorial's messages failed")
    return time.monotonic() - started, ""


# --- 1. pending-schedule memory ----------------------------------------------------------------


def pending_memory(folder: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """Punctual at each size, and meanwhile the tutorial on a RabbitMQ node of its own (its
    million messages take minutes to publish and to reach its worker; memory held does not
    depend on what else runs)."""
    with (
        harness.servers(folder) as (rabbitmq, postgres),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        tutorial = pool.submit(tutorial_holding, folder / "tutorial", sizes)
        rows = [punctual_holding(rabbitmq, postgres, folder, n) for n in sizes]
        rows += tutorial.result()
    return sorted(rows, key=lambda row: (row["pending"], row["system"]))


def days_ahead(n: int) -> list[datetime]:
    """n close dates spread over 1 to 7 days from now."""
    return [now() + timedelta(days=1, seconds=i * 6 * 86400 / max(n, 1)) for i in range(n)]


def punctual_holding(rabbitmq: Any, postgres: Any, folder: Path, n: int) -> dict[str, Any]:
    """Punctual's worker and broker with n polls pending, after five promoter runs."""
    database = postgres.create_database(f"memory_{n}")
    env = harness.punctual_env(database, rabbitmq.url, folder)
    harness.migrate(env)
    bulk_polls(database, n, days_ahead(n))
    started = harness.punctual_processes(env, folder)
    try:
        worker_pid = started[0].proc.pid
        idle = harness.tree_rss_mib(worker_pid)
        time.sleep(5)  # five promoter runs over all n pending jobs
        return {
            "benchmark": "pending memory",
            "system": "punctual",
            "pending": n,
            "worker_rss_mib": round(harness.tree_rss_mib(worker_pid), 1),
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
    from celery import Celery

    from app.scheduling.broker import queue_depth

    rabbitmq = harness.RabbitMQServer(folder / "rabbitmq")
    rabbitmq.start()
    broker = Celery(broker=rabbitmq.url)  # reads the queue's depth with a passive declare
    queue = "tutorial_memory"
    worker = tutorial_worker(
        rabbitmq.url, folder, queue, folder / f"{queue}.log", prefetch_multiplier=0, quiet=True
    )
    rows, held = [], 0
    try:
        idle = harness.tree_rss_mib(worker.proc.pid)
        for n in sorted(sizes):
            seconds, blocked = publish_tutorial(rabbitmq, queue, days_ahead(n)[held:], 2)
            began = time.monotonic()
            harness.wait_until(
                lambda: worker.proc.poll() is not None or queue_depth(broker, queue) == 0,
                timeout=120 + n / 500,
            )
            taken = time.monotonic() - began + seconds
            ready, unacked = rabbitmq.queue_counts(queue)
            alive = worker.proc.poll() is None
            rows.append(
                {
                    "benchmark": "pending memory",
                    "system": "tutorial",
                    "pending": n,
                    "worker_rss_mib": (
                        round(harness.tree_rss_mib(worker.proc.pid), 1) if alive else "died"
                    ),
                    "broker_rss_mib": round(harness.beam_rss_mib(rabbitmq), 1),
                    "held_by_worker": unacked,
                    "note": (
                        f"idle {idle:.0f} MiB; {n - held} more published in {seconds:.0f} s "
                        f"(2 processes), all taken after {taken:.0f} s; {ready} not taken"
                        + ("" if alive else f"; worker exited {worker.proc.returncode}")
                        + (f"; {blocked}" if blocked else "")
                    ),
                }
            )
            held = n
            if not alive or blocked:
                break
    finally:
        worker.kill()
        rabbitmq.kill()  # its messages are thrown away: no clean shutdown writing them out first
    return rows


# --- 2. lateness and the throughput ceiling ----------------------------------------------------


def lateness(
    folder: Path, sizes: list[int], trivial: int, lead: float = 20, window_s: float = 10
) -> list[dict[str, Any]]:
    """For each size, N polls due spread over `window_s` seconds starting `lead` seconds ahead,
    closed by Punctual and by the tutorial recipe; then the ceiling: `trivial` no-ETA tasks."""
    rows = []
    with harness.servers(folder) as (rabbitmq, postgres):
        for n in sizes:
            rows.append(punctual_lateness(rabbitmq, postgres, folder, n, lead, window_s))
            rows.append(tutorial_lateness(rabbitmq, postgres, folder, n, lead, window_s))
        rows.append(ceiling(rabbitmq, postgres, folder, trivial))
    return rows


def window_of(n: int, lead: float, window_s: float) -> list[datetime]:
    start = now() + timedelta(seconds=lead)
    return [start + timedelta(seconds=window_s * i / n) for i in range(n)]


def server_pids(rabbitmq: Any, postgres: Any) -> dict[str, int]:
    return {"postgres": harness.postmaster_pid(postgres), "rabbitmq": rabbitmq.beam_pid()}


def window_cpu(roots: dict[str, int], opens: datetime, done: Any, timeout: float) -> str:
    """Wait for the window to open and then until `done()`; who used the CPU meanwhile, in
    percent of one core (this machine has harness.machine()["cores"] of them)."""
    harness.wait_until(lambda: now() >= opens, timeout=timeout, interval=0.05)
    meter = harness.CpuMeter(roots).start()
    harness.wait_until(done, timeout=timeout)
    return ", ".join(f"{name} {share}" for name, share in meter.stop().items())


def lateness_row(
    system: str, n: int, window_s: float, late: list[float], **extra: Any
) -> dict[str, Any]:
    """The row of one run; `late` holds closed_at - close_date in seconds, one per close."""
    return {
        "benchmark": f"lateness, {n} due in {window_s:g} s",
        "system": system,
        "closed": len(late),
        **harness.percentiles(late),
        **extra,
        "series": (f"lateness/{n}/{system}", late),
    }


def punctual_lateness(
    rabbitmq: Any, postgres: Any, folder: Path, n: int, lead: float, window_s: float
) -> dict[str, Any]:
    """Polls written as the service writes them while it runs; the promoter sends them as they
    enter the horizon, the worker holds each until due and closes it. The lead counts from
    when they are written (as the tutorial's counts from when it publishes)."""
    from app.polls.models import Poll

    database = postgres.create_database(f"lateness_{n}")
    env = harness.punctual_env(database, rabbitmq.url, folder)
    harness.migrate(env)
    started = harness.punctual_processes(env, folder)
    engine = create_engine(database)
    try:
        due = window_of(n, lead, window_s)
        bulk_polls(database, n, due)

        def closed_count() -> int:
            with engine.connect() as connection:
                return connection.execute(select(db_count(Poll.closed_at))).scalar_one()

        cpu = window_cpu(
            {"worker": started[0].proc.pid, **server_pids(rabbitmq, postgres)},
            opens=due[0],
            done=lambda: closed_count() >= n,
            timeout=lead + window_s + 60 + n / 50,
        )
        with engine.connect() as connection:
            rows = connection.execute(
                select(Poll.close_date, Poll.closed_at).where(Poll.closed_at.is_not(None))
            ).all()
    finally:
        harness.stop_all(started)
        engine.dispose()
    late = [(closed_at - close_date).total_seconds() for close_date, closed_at in rows]
    last = max((closed_at for _, closed_at in rows), default=due[0])
    closes = re.findall(r"job (\d+) poll\.close:\d+ succeeded", "".join(p.log() for p in started))
    return lateness_row(
        "punctual",
        n,
        window_s,
        late,
        duplicates=len(closes) - len(set(closes)),
        last_closed_s=round((last - due[0]).total_seconds(), 2),
        cpu_pct=cpu,
    )


def tutorial_lateness(
    rabbitmq: Any, postgres: Any, folder: Path, n: int, lead: float, window_s: float
) -> dict[str, Any]:
    """The same window for the tutorial recipe, closing each poll with one committed write."""
    from bench.tutorial_recipe import CLOSES

    database = postgres.create_database(f"tutorial_lateness_{n}")
    engine = create_engine(database)
    with engine.begin() as connection:
        connection.execute(text(CLOSES))
    engine.dispose()
    queue, log = f"tutorial_lateness_{n}", folder / f"tutorial-lateness-{n}.log"
    worker = tutorial_worker(rabbitmq.url, folder, queue, log, database_url=database)
    due = window_of(n, lead, window_s)
    try:
        publish_tutorial(rabbitmq, queue, due, publishers=2)

        def executed() -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

        cpu = window_cpu(
            {"worker": worker.proc.pid, **server_pids(rabbitmq, postgres)},
            opens=due[0],
            done=lambda: len(executed()) >= n,
            timeout=lead + window_s + 60 + n / 50,
        )
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
        duplicates=len(runs) - len({i for i, _ in runs}),
        last_closed_s=round((max(done, default=due[0]) - due[0]).total_seconds(), 2),
        cpu_pct=cpu,
    )


_ACCUMULATED = re.compile(r"celery\.accumulate\[[^\]]+\] succeeded")


def ceiling(rabbitmq: Any, postgres: Any, folder: Path, trivial: int) -> dict[str, Any]:
    """How fast the same worker setup runs trivial tasks with no ETA: the throughput ceiling.

    The tasks wait in the queue before the worker starts (so publishing does not compete for
    the CPU); the time runs from the first task the worker received to the last it finished,
    by its own log.
    """
    from celery import Celery

    database = postgres.create_database("ceiling")
    env = harness.punctual_env(database, rabbitmq.url, folder)
    harness.migrate(env)
    celery = Celery(broker=rabbitmq.url)
    with celery.producer_or_acquire() as producer:
        for _ in range(trivial):
            celery.send_task("celery.accumulate", args=(1,), producer=producer)
    started = harness.punctual_processes(env, folder)
    try:
        harness.wait_until(
            lambda: len(_ACCUMULATED.findall(started[0].log())) >= trivial,
            timeout=600,
            interval=0.2,
        )
        log = started[0].log()
    finally:
        harness.stop_all(started)
    stamps = [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in log.splitlines()
        if "celery.accumulate[" in line and ("received" in line or "succeeded" in line)
    ]
    seconds = (max(stamps) - min(stamps)).total_seconds()
    return {
        "benchmark": f"ceiling, {trivial} trivial tasks",
        "system": "punctual worker",
        "seconds": round(seconds, 2),
        "tasks_per_s": round(trivial / seconds),
    }


# --- 3. long ETAs under a short consumer_timeout -----------------------------------------------


def long_etas(folder: Path, n: int) -> list[dict[str, Any]]:
    """Polls due in 30 s on a RabbitMQ whose consumer_timeout is 10 s: Punctual and the tutorial
    side by side on their own queues (twenty polls each: neither waits for the CPU)."""
    conf = "consumer_timeout = 10000"
    advanced = "[{rabbit, [{channel_tick_interval, 2000}]}]."
    with (
        harness.servers(folder, conf, advanced) as (rabbitmq, postgres),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        tutorial = pool.submit(tutorial_long_etas, rabbitmq, folder, n)
        return [punctual_long_etas(rabbitmq, postgres, folder, n), tutorial.result()]


def punctual_long_etas(rabbitmq: Any, postgres: Any, folder: Path, n: int) -> dict[str, Any]:
    from app.polls.models import Poll

    database = postgres.create_database("long_etas")
    env = harness.punctual_env(database, rabbitmq.url, folder, SCHEDULER_HORIZON="5")
    harness.migrate(env)
    started = harness.punctual_processes(env, folder)
    bulk_polls(database, n, [now() + timedelta(seconds=30 + i * 0.01) for i in range(n)])
    engine = create_engine(database)

    def closed() -> int:
        with engine.connect() as connection:
            return connection.execute(
                select(db_count(Poll.id)).where(Poll.closed_at.is_not(None))
            ).scalar_one()

    try:
        harness.wait_until(lambda: closed() == n, timeout=90)
        log = "".join(p.log() for p in started)
        return {
            "benchmark": "long ETAs (30 s, consumer_timeout 10 s)",
            "system": "punctual",
            "closed": closed(),
            "duplicates": 0 if log.count("succeeded (attempt 2") == 0 else "yes",
            "worker_crashes": log.count("PRECONDITION_FAILED"),
        }
    finally:
        harness.stop_all(started)
        engine.dispose()


def tutorial_long_etas(rabbitmq: Any, folder: Path, n: int) -> dict[str, Any]:
    """The tutorial's worker under a supervisor that starts it again whenever it exits."""
    queue, executions = "tutorial_long", folder / "tutorial-long.log"
    crashes = 0
    publish_tutorial(rabbitmq, queue, [now() + timedelta(seconds=30) for _ in range(n)])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        worker = tutorial_worker(rabbitmq.url, folder, queue, executions)
        harness.wait_until(lambda w=worker: w.proc.poll() is not None, timeout=15)
        if worker.proc.poll() is None:
            if sum(rabbitmq.queue_counts(queue)) == 0:
                worker.kill()
                break
            worker.kill()
        crashes += "PRECONDITION_FAILED" in worker.log()
    lines = executions.read_text().splitlines() if executions.exists() else []
    return {
        "benchmark": "long ETAs (30 s, consumer_timeout 10 s)",
        "system": "tutorial",
        "closed": len({line.split()[0] for line in lines}),
        "duplicates": len(lines) - len({line.split()[0] for line in lines}),
        "worker_crashes": crashes,
    }


def db_count(column: Any) -> Any:
    from sqlalchemy import func

    return func.count(column)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the benchmarks run")
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="pending polls for benchmark 1"
    )
    parser.add_argument("--lateness", default="1000,10000", help="polls due in one window")
    parser.add_argument("--devices", type=int, default=1000, help="devices polled every 10 s")
    parser.add_argument("--device-workers", default="1", help="worker processes, one run each")
    parser.add_argument("--only", help="comma-separated: memory,lateness,long,api,devices")
    args = parser.parse_args(argv)
    sizes = [200] if args.smoke else [int(s) for s in args.sizes.split(",")]
    late_sizes = [50] if args.smoke else [int(s) for s in args.lateness.split(",")]
    trivial = 200 if args.smoke else 10_000
    timing = (8, 2) if args.smoke else (20, 10)  # lead and window of the lateness benchmark
    load = (2, 4) if args.smoke else (6, 16)  # seconds and connections of each API scenario
    fleet = (20, 2, 8) if args.smoke else (args.devices, 10, 120)  # devices, interval, duration
    device_workers = [1] if args.smoke else [int(w) for w in args.device_workers.split(",")]

    results: dict[str, list[dict[str, Any]]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="punctual-bench-") as tmp,
        ThreadPoolExecutor(max_workers=1) as beside,
    ):
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        phases = {
            "memory": lambda: pending_memory(folder / "memory", sizes),
            "lateness": lambda: lateness(folder / "lateness", late_sizes, trivial, *timing),
            "long": lambda: long_etas(folder / "long", 20),
            "api": lambda: api.api_throughput(folder / "api", *load),
            "devices": lambda: [
                row
                for count in device_workers
                for row in devices.device_polling(
                    folder / "devices" / str(count), *fleet, workers=count, pace=True
                )
            ],
        }
        chosen = [name for name in phases if not args.only or name in args.only.split(",")]
        chosen = [name for name in chosen if not (args.smoke and name == "long")]

        def timed(name: str) -> list[dict[str, Any]]:
            (folder / name).mkdir()
            began = time.monotonic()
            rows = phases[name]()
            print(f"[bench] {name} took {time.monotonic() - began:.0f} s", flush=True)
            return rows

        # Long ETAs waits on timers with twenty polls, not on the CPU: it runs beside the
        # others (beside the memory benchmark, whose numbers are memory, not time).
        background = {name: beside.submit(timed, name) for name in chosen if name in ("long",)}
        for name in chosen:
            if name not in background:
                results[name] = timed(name)
        results.update({name: future.result() for name, future in background.items()})
    rows = [row for name in chosen for row in results[name]]
    series = dict(row.pop("series") for row in rows if "series" in row)
    harness.print_table(rows)
    path = harness.save("smoke" if args.smoke else "latest", rows, series, harness.machine())
    print(f"[bench] results written to {path}")
    for plot in plots.draw(json.loads(path.read_text()), path.parent / path.stem):
        print(f"[bench] plot written to {plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
