"""What every benchmark needs: servers, processes, memory readings, percentiles, the table."""

import json
import os
import statistics
import subprocess
import time
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
