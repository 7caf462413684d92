"""What every benchmark needs: servers, processes, memory readings, percentiles, the table."""

import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import processes
from tests.servers import PostgresServer, RabbitMQServer, stop_epmd

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FLASK = str(Path(processes.CELERY).parent / "flask")


@contextmanager
def servers(folder: Path, rabbit_conf: str = "", advanced: str = "[].") -> Iterator[tuple]:
    rabbitmq = RabbitMQServer(folder / "rabbitmq", conf=rabbit_conf, advanced_config=advanced)
    postgres = PostgresServer(folder / "postgres")
    rabbitmq.start()
    postgres.start()
    try:
        yield rabbitmq, postgres
    finally:
        rabbitmq.stop()
        postgres.stop()
        stop_epmd()


def punctual_env(database_url: str, broker_url: str, folder: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PUNCTUAL_INSTANCE": str(folder / "instance"),
        "BROKER_FOLDER": str(folder / "broker"),
        "SECRET_KEY": "bench",
        "SCHEDULER_HORIZON": "60",
        "PROMOTER_INTERVAL": "1",
        **extra,
    }


def punctual_processes(
    env: dict[str, str], folder: Path, workers: int = 1
) -> list[processes.Process]:
    started = [processes.worker(env, folder, name=f"worker{i}") for i in range(workers)]
    started.append(processes.beat(env, folder))
    return started


def stop_all(started: list[processes.Process]) -> None:
    for process in reversed(started):
        process.kill()


def bulk_owner(connection: Any, created: Any) -> int:
    """A user to own rows written in bulk (no usable password: nobody signs in as it)."""
    from sqlalchemy import insert

    from app.auth.models import User

    return connection.execute(
        insert(User.__table__).returning(User.id),
        {"username": f"bench-{uuid.uuid4().hex[:8]}", "password_hash": "x", "created_at": created},
    ).scalar_one()


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [FLASK, "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    table = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,rss="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for line in table.splitlines():
        p, parent, kib = (int(x) for x in line.split())
        children.setdefault(parent, []).append(p)
        rss[p] = kib
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total / 1024


def beam_rss_mib(rabbitmq: RabbitMQServer) -> float:
    pid = rabbitmq.beam_pid()
    return tree_rss_mib(pid) if pid else float("nan")


# --- CPU: who used the cores during a measurement -----------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def postmaster_pid(postgres: PostgresServer) -> int:
    return int((postgres.work_dir / "data" / "postmaster.pid").read_text().split()[0])


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time used so far by each process and its descendants (reaped children included)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        try:
            text = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # it exited while we looked
            continue
        if text:
            fields = text[text.rindex(")") + 2 :].split()
            # ppid, then utime + stime + cutime + cstime (fields 14-17 of proc(5)).
            stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    used = {}
    for name, root in roots.items():
        ticks, todo = 0, [root]
        while todo:
            pid = todo.pop()
            ticks += stats.get(pid, (0, 0))[1]
            todo.extend(children.get(pid, []))
        used[name] = ticks / CLOCK_TICKS
    return used


def machine_busy_seconds() -> float:
    """CPU time spent by every core on anything but idling, since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / CLOCK_TICKS


class CpuMeter:
    """Percent of one core used by each named process tree between start() and stop(), and by
    everything else on the machine ("other": noise, or the load generator)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def start(self) -> "CpuMeter":
        self.began, self.busy = time.monotonic(), machine_busy_seconds()
        self.before = tree_cpu_seconds(self.roots)
        return self

    def stop(self) -> dict[str, int]:
        seconds = time.monotonic() - self.began
        used = {k: v - self.before[k] for k, v in tree_cpu_seconds(self.roots).items()}
        used["other"] = machine_busy_seconds() - self.busy - sum(used.values())
        return {name: max(0, round(100 * v / seconds)) for name, v in used.items()}


def percentiles(values: Iterable[float]) -> dict[str, float]:
    data = sorted(values)
    if not data:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    cuts = statistics.quantiles(data, n=100, method="inclusive") if len(data) > 1 else data * 99
    return {
        "p50": round(statistics.median(data), 4),
        "p95": round(cuts[94], 4),
        "p99": round(cuts[98], 4),
        "max": round(data[-1], 4),
    }


def wait_until(condition: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def print_table(rows: list[dict[str, Any]]) -> None:
    """One table per kind of row (rows with the same columns), in the order they came."""
    kinds: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        kinds.setdefault(tuple(row), []).append(row)
    for columns, group in kinds.items():
        widths = {c: max(len(c), *(len(str(row[c])) for row in group)) for c in columns}
        print()
        print(" | ".join(c.ljust(widths[c]) for c in columns))
        print("-+-".join("-" * widths[c] for c in columns))
        for row in group:
            print(" | ".join(str(row[c]).ljust(widths[c]) for c in columns))
    print()


def save(
    name: str,
    rows: list[dict[str, Any]],
    series: dict[str, list[float]],
    machine: dict[str, Any],
) -> Path:
    """The table's rows, and the raw samples behind them (for the plots), as JSON."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"machine": machine, "rows": rows, "series": series}
    path.write_text(json.dumps(document, indent=1, default=str))
    return path


def machine() -> dict[str, Any]:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return {"cores": os.cpu_count(), "ram_gib": round(total_kib / 1024 / 1024, 1)}
