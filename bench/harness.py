"""What every benchmark needs beyond devkit: Punctual's settings, CPU meters, the table."""

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from devkit import processes, proctree
from devkit.servers import PostgresServer, RabbitMQServer

ROOT = processes.ROOT
RESULTS = ROOT / "bench" / "results"


def punctual_env(database_url: str, broker_url: str, folder: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PUNCTUAL_INSTANCE": str(folder / "instance"),
        "BROKER_FOLDER": str(folder / "broker"),
        "SECRET_KEY": "bench",
        "SCHEDULER_HORIZON": "60",
        "PROMOTER_INTERVAL": "1",
        # The benchmarks read Celery's own task lines (the ceiling's tasks, promoter runs).
        "LOG_CELERY_TASKS": "1",
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


def promoter_runs(log: str) -> int:
    """Promoter runs a worker's log shows finished."""
    return len(re.findall(r"scheduling\.promote\[[^]]+\] succeeded", log))


def beam_rss_mib(rabbitmq: RabbitMQServer) -> float:
    pid = rabbitmq.beam_pid()
    return proctree.tree_rss_mib(pid) if pid else float("nan")


# --- CPU: who used the cores during a measurement -----------------------------------------------


def server_pids(rabbitmq: RabbitMQServer, postgres: PostgresServer) -> dict[str, int | None]:
    """The servers' process trees, for a CpuMeter."""
    return {"postgres": postgres.pid(), "rabbitmq": rabbitmq.beam_pid()}


def machine_busy_seconds() -> float:
    """CPU time spent by every core on anything but idling, since boot."""
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks[:8]) - idle - iowait) / proctree.CLOCK_TICKS


class CpuMeter:
    """Percent of one core used by each named process tree between start() and stop(), and by
    everything else on the machine ("other": noise, or the load generator)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots

    def start(self) -> "CpuMeter":
        self.began, self.busy = time.monotonic(), machine_busy_seconds()
        self.before = proctree.tree_cpu_seconds(self.roots)
        return self

    def stop(self) -> dict[str, int]:
        seconds = time.monotonic() - self.began
        used = {k: v - self.before[k] for k, v in proctree.tree_cpu_seconds(self.roots).items()}
        used["other"] = machine_busy_seconds() - self.busy - sum(used.values())
        return {name: max(0, round(100 * v / seconds)) for name, v in used.items()}


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
