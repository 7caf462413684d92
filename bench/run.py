"""Punctual against the tutorial recipe, measured in one run: `make bench`, `make bench-smoke`.

1. Pending-schedule memory: N polls closing 1-7 days ahead; worker and broker memory of each.
2. Lateness: N polls due within the same 10 s window; closed_at - close_date for each, and the
   time 10,000 trivial tasks take on the same worker setup (the throughput ceiling).
3. Long ETAs: RabbitMQ's consumer_timeout at 10 s and polls due in 30 s.
Each benchmark starts its own RabbitMQ and PostgreSQL. Results: a table on stdout and
bench/results/latest.json (bench/results/smoke.json for the smoke run).
"""

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, select

from bench import harness
from tests import processes

TUTORIAL_ARGS = ["-A", "bench.tutorial_recipe", "worker", "--loglevel=INFO", "--concurrency=2"]
TUTORIAL_ARGS += ["--without-gossip", "--without-mingle"]


def now() -> datetime:
    return datetime.now(UTC)


# --- setting up --------------------------------------------------------------------------------


def bulk_polls(database_url: str, count: int, due: list[datetime]) -> None:
    """Polls and their close jobs as the service writes them for dates beyond the horizon."""
    from app.auth.models import User
    from app.polls.models import Poll
    from app.scheduling.models import Job

    engine = create_engine(database_url)
    created = now()
    with engine.begin() as connection:
        owner = connection.execute(
            insert(User.__table__).returning(User.id),
            {
                "username": f"bench-{uuid.uuid4().hex[:8]}",
                "password_hash": "x",
                "created_at": created,
            },
        ).scalar_one()
        for start in range(0, count, 10_000):
            batch = range(start, min(start + 10_000, count))
            ids = (
                connection.execute(
                    insert(Poll.__table__).returning(Poll.id),
                    [
                        {
                            "title": f"Poll {i}",
                            "owner_id": owner,
                            "close_date": due[i],
                            "created_at": created,
                        }
                        for i in batch
                    ],
                )
                .scalars()
                .all()
            )
            connection.execute(
                insert(Job.__table__),
                [
                    {
                        "kind": "poll.close",
                        "subject_id": poll_id,
                        "owner_id": owner,
                        "due_at": due[i],
                        "token": uuid.uuid4().hex,
                        "state": "scheduled",
                        "deferrable": False,
                        "attempts": 0,
                        "max_attempts": 5,
                        "created_at": created,
                    }
                    for i, poll_id in zip(batch, ids, strict=True)
                ],
            )
    engine.dispose()


def punctual_processes(
    env: dict[str, str], folder: Path, workers: int = 1
) -> list[processes.Process]:
    started = [processes.worker(env, folder, name=f"worker{i}") for i in range(workers)]
    started.append(processes.beat(env, folder))
    return started


def tutorial_worker(broker_url: str, folder: Path, queue: str, log: Path) -> processes.Process:
    env = {"CELERY_BROKER_URL": broker_url, "TUTORIAL_LOG": str(log)}
    args = [processes.CELERY, *TUTORIAL_ARGS, "-Q", queue, f"--hostname={queue}@%h"]
    return processes.Process(queue, args, env, folder, ready=" ready.").start()


def publish_tutorial(broker_url: str, queue: str, etas: list[datetime]) -> float:
    """apply_async(eta=...) for each poll, from one process, as the tutorial's web app does."""
    script = (
        "import sys, json; from datetime import datetime; "
        "from bench.tutorial_recipe import close_poll; "
        "etas = json.load(sys.stdin); "
        f"[close_poll.apply_async((i,), eta=datetime.fromisoformat(e), queue='{queue}') "
        "for i, e in enumerate(etas)]"
    )
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps([e.isoformat() for e in etas]),
        text=True,
        cwd=harness.ROOT,
        env={**os.environ, "CELERY_BROKER_URL": broker_url},
        check=True,
    )
    return time.monotonic() - started


def stop_all(started: list[processes.Process]) -> None:
    for process in reversed(started):
        process.kill()


# --- 1. pending-schedule memory ----------------------------------------------------------------


def pending_memory(folder: Path, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    with harness.servers(folder) as (rabbitmq, postgres):
        for n in sizes:
            due = [now() + timedelta(days=1, seconds=i * 6 * 86400 / max(n, 1)) for i in range(n)]
            database = postgres.create_database(f"memory_{n}")
            env = harness.punctual_env(database, rabbitmq.url, folder)
            harness.migrate(env)
            bulk_polls(database, n, due)
            started = punctual_processes(env, folder)
            worker_pid = started[0].proc.pid
            idle = harness.tree_rss_mib(worker_pid)
            time.sleep(5)  # five promoter runs over all n pending jobs
            rows.append(
                {
                    "benchmark": "pending memory",
                    "system": "punctual",
                    "pending": n,
                    "worker_rss_mib": round(harness.tree_rss_mib(worker_pid), 1),
                    "broker_rss_mib": round(harness.beam_rss_mib(rabbitmq), 1),
                    "held_by_worker": sum(rabbitmq.queue_counts("celery")),
                    "note": f"idle {idle:.0f} MiB (at start, before the promoter ran)",
                }
            )
            stop_all(started)

            queue = f"tutorial_{n}"
            worker = tutorial_worker(rabbitmq.url, folder, queue, folder / f"{queue}.log")
            idle = harness.tree_rss_mib(worker.proc.pid)
            seconds = publish_tutorial(rabbitmq.url, queue, due)
            harness.wait_until(lambda q=queue: rabbitmq.queue_counts(q)[0] == 0, timeout=30)
            ready, unacked = rabbitmq.queue_counts(queue)
            rows.append(
                {
                    "benchmark": "pending memory",
                    "system": "tutorial",
                    "pending": n,
                    "worker_rss_mib": round(harness.tree_rss_mib(worker.proc.pid), 1),
                    "broker_rss_mib": round(harness.beam_rss_mib(rabbitmq), 1),
                    "held_by_worker": unacked,
                    "note": (
                        f"idle {idle:.0f} MiB; {n} published in {seconds:.0f} s; {ready} not taken"
                    ),
                }
            )
            worker.kill()
    return rows


# --- 2. lateness and the throughput ceiling ----------------------------------------------------


def lateness(
    folder: Path, n: int, trivial: int, lead: float = 20, window_s: float = 10
) -> list[dict[str, Any]]:
    """N polls due spread over `window_s` seconds, starting `lead` seconds from now."""
    rows = []
    with harness.servers(folder) as (rabbitmq, postgres):
        database = postgres.create_database("lateness")
        env = harness.punctual_env(database, rabbitmq.url, folder)
        harness.migrate(env)
        started = punctual_processes(env, folder)

        os.environ.update(env)
        from app import create_app
        from app.auth import service as auth
        from app.extensions import db
        from app.polls import service as polls
        from app.polls.models import Poll

        app = create_app({"SQLALCHEMY_DATABASE_URI": database, "CELERY_BROKER_URL": rabbitmq.url})
        window = now() + timedelta(seconds=lead)
        with app.app_context():
            owner = auth.register(username="lateness", password="bench-password")
            for i in range(n):
                close = window + timedelta(seconds=window_s * i / n)
                polls.create_poll(
                    owner_id=owner.id, title=f"p{i}", options=["a", "b"], close_date=close
                )

            def all_closed() -> bool:
                count = db.session.execute(
                    select(db.func.count(Poll.id)).where(Poll.closed_at.is_not(None))
                ).scalar_one()
                db.session.rollback()
                return count == n

            harness.wait_until(all_closed, timeout=60 + n / 50, interval=0.2)
            closed = db.session.execute(select(Poll.close_date, Poll.closed_at)).all()
        late = [(c - d).total_seconds() for d, c in closed if c is not None]
        last = max(c for _, c in closed if c is not None) if late else window
        rows.append(
            {
                "benchmark": f"lateness, {n} due in {window_s:g} s",
                "system": "punctual",
                "closed": len(late),
                **harness.percentiles(late),
                "last_closed_after_window_s": round((last - window).total_seconds() - window_s, 2),
            }
        )

        # The ceiling: trivial tasks with no ETA on the same worker setup.
        celery = app.extensions["celery"]
        begun = time.monotonic()
        for _ in range(trivial):
            celery.send_task("celery.accumulate", args=(1,))
        harness.wait_until(
            lambda: sum(rabbitmq.queue_counts("celery")) == 0, timeout=600, interval=0.2
        )
        ceiling = time.monotonic() - begun
        rows.append(
            {
                "benchmark": f"ceiling, {trivial} trivial tasks",
                "system": "punctual worker",
                "seconds": round(ceiling, 2),
                "tasks_per_s": round(trivial / ceiling),
            }
        )
        stop_all(started)

        log = folder / "tutorial-lateness.log"
        worker = tutorial_worker(rabbitmq.url, folder, "tutorial_lateness", log)
        window = now() + timedelta(seconds=lead)
        etas = [window + timedelta(seconds=window_s * i / n) for i in range(n)]
        publish_tutorial(rabbitmq.url, "tutorial_lateness", etas)

        def executed() -> list[str]:
            return log.read_text().splitlines() if log.exists() else []

        harness.wait_until(
            lambda: len(executed()) >= n, timeout=lead + window_s + 30 + n / 50, interval=0.2
        )
        runs = [line.split() for line in executed()]
        late = [
            (datetime.fromisoformat(at).astimezone(UTC) - etas[int(i)]).total_seconds()
            for i, at in runs
        ]
        rows.append(
            {
                "benchmark": f"lateness, {n} due in {window_s:g} s",
                "system": "tutorial",
                "closed": len(late),
                **harness.percentiles(late),
                "duplicates": len(runs) - len({i for i, _ in runs}),
            }
        )
        worker.kill()
    return rows


# --- 3. long ETAs under a short consumer_timeout -----------------------------------------------


def long_etas(folder: Path, n: int) -> list[dict[str, Any]]:
    rows = []
    conf = "consumer_timeout = 10000"
    advanced = "[{rabbit, [{channel_tick_interval, 2000}]}]."
    with harness.servers(folder, conf, advanced) as (rabbitmq, postgres):
        database = postgres.create_database("long_etas")
        env = harness.punctual_env(database, rabbitmq.url, folder, SCHEDULER_HORIZON="5")
        harness.migrate(env)
        started = punctual_processes(env, folder)
        due = [now() + timedelta(seconds=30 + i * 0.01) for i in range(n)]
        bulk_polls(database, n, due)
        engine = create_engine(database)
        from app.polls.models import Poll

        def closed() -> int:
            with engine.connect() as connection:
                return connection.execute(
                    select(db_count(Poll.id)).where(Poll.closed_at.is_not(None))
                ).scalar_one()

        harness.wait_until(lambda: closed() == n, timeout=90)
        log = "".join(p.log() for p in started)
        rows.append(
            {
                "benchmark": "long ETAs (30 s, consumer_timeout 10 s)",
                "system": "punctual",
                "closed": closed(),
                "duplicates": 0 if log.count("succeeded (attempt 2") == 0 else "yes",
                "worker_crashes": log.count("PRECONDITION_FAILED"),
            }
        )
        stop_all(started)
        engine.dispose()

        queue, executions = "tutorial_long", folder / "tutorial-long.log"
        crashes = 0
        # Fresh dates: Punctual's run used up the first ones.
        publish_tutorial(rabbitmq.url, queue, [now() + timedelta(seconds=30) for _ in range(n)])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # a supervisor restarting the worker
            worker = tutorial_worker(rabbitmq.url, folder, queue, executions)
            harness.wait_until(lambda w=worker: w.proc.poll() is not None, timeout=15)
            if worker.proc.poll() is None:
                if sum(rabbitmq.queue_counts(queue)) == 0:
                    worker.kill()
                    break
                worker.kill()
            crashes += "PRECONDITION_FAILED" in worker.log()
        lines = executions.read_text().splitlines() if executions.exists() else []
        rows.append(
            {
                "benchmark": "long ETAs (30 s, consumer_timeout 10 s)",
                "system": "tutorial",
                "closed": len({line.split()[0] for line in lines}),
                "duplicates": len(lines) - len({line.split()[0] for line in lines}),
                "worker_crashes": crashes,
            }
        )
    return rows


def db_count(column: Any) -> Any:
    from sqlalchemy import func

    return func.count(column)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the benchmarks run")
    parser.add_argument("--sizes", default="10000,100000", help="pending polls for benchmark 1")
    parser.add_argument("--lateness", type=int, default=1000, help="polls due in one window")
    parser.add_argument("--only", help="comma-separated: memory,lateness,long")
    args = parser.parse_args(argv)
    sizes = [200] if args.smoke else [int(s) for s in args.sizes.split(",")]
    n_late, trivial = (50, 200) if args.smoke else (args.lateness, 10_000)
    timing = (5, 2) if args.smoke else (20, 10)  # lead and window of the lateness benchmark

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="punctual-bench-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        for name, run in itertools.chain(
            [("memory", lambda: pending_memory(folder / "memory", sizes))],
            [("lateness", lambda: lateness(folder / "lateness", n_late, trivial, *timing))],
            [] if args.smoke else [("long", lambda: long_etas(folder / "long", 20))],
        ):
            if args.only and name not in args.only.split(","):
                continue
            (folder / name).mkdir()
            began = time.monotonic()
            rows.extend(run())
            print(f"[bench] {name} took {time.monotonic() - began:.0f} s", flush=True)
    harness.print_table(rows)
    path = harness.save("smoke" if args.smoke else "latest", rows, harness.machine())
    print(f"[bench] results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
