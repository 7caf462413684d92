"""The row of a slow-vendor setup (bench/slow_vendor.py): the rate against the expected one,
lateness, outstanding polls per device, what it cost, and whether issue 16's goal is met."""

from typing import Any

from bench import devices
from devkit import processes, stats

# (least % of expected polls, p99 lateness under, in seconds) per setup; issue 16's goals.
GOALS = {"io": (98.0, 1.0), "prefork": (98.0, 1.0), "embedded": (95.0, None)}


def setup_row(
    title: str,
    setup: str,
    fleet: str,
    started: list[processes.Process],
    settled: bool,
    run: dict[str, Any],
) -> dict[str, Any]:
    """The setup's row: the rate against the expected one, lateness, outstanding polls per
    device, and what it cost (CPU, database connections, memory, requests to the vendor)."""
    result, samples = run["result"], run["samples"]
    every = [*samples, run["final"]]
    pct = round(100 * result["ran"] / result["expected"], 1) if result["expected"] else 0.0
    late = stats.percentiles(result["late"], digits=3)
    most = max(sample["most"] for sample in every)
    served = run["vendor"]
    notes = {
        "first round not done before the window": not settled,
        "unfinished": result["unfinished"],
        "retried": result["retried"],
        **{f"log {k}": v for k, v in run["logs"].items() if k not in devices.TICKS},
    }
    return {
        "benchmark": f"{title}: {fleet}",
        "processes": " + ".join(describe(process) for process in started),
        "expected_per_s": round(result["expected"] / result["seconds"], 1),
        "achieved_per_s": round(result["ran"] / result["seconds"], 1),
        "started_per_s": round(result["started"] / result["seconds"], 1),
        "pct_expected": pct,
        "worst_cycle_per_s": result["worst_cycle_per_s"],
        **late,
        "max_outstanding_per_device": most,
        "devices_none_max": max(sample["without"] for sample in every),
        "failed": result["failed"] + result["vendor_failures"],
        "coalesced": result["coalesced"],
        "queue_ready_max": max(sample["ready"] for sample in samples),
        "db_connections_max": max((s.get("db total", 0) for s in samples), default=0) or "-",
        "db_per_process_max": highest(samples, "db:") or "-",
        "rss_mib_max": highest(samples, "rss:"),
        "cpu_pct": run["cpu"],
        "vendor": f"{served['requests']} requests on {served['connections']} new connections,"
        f" {served['in_flight_max']} at once",
        "goal": verdict(setup, pct, late["p99"], most),
        "notes": ", ".join(k if v is True else f"{k} {v}" for k, v in notes.items() if v) or "-",
    }


def highest(samples: list[dict[str, Any]], prefix: str) -> str:
    """The largest value of each probe named `prefix` + a process, over the samples."""
    names = [key for key in samples[0] if key.startswith(prefix)] if samples else []
    return ", ".join(
        f"{name.removeprefix(prefix)} {round(max(s[name] for s in samples))}" for name in names
    )


def describe(process: processes.Process) -> str:
    """ "worker prefork 2 (celery,punctual.promoter)", "io threads 32 (punctual.io)", "beat"."""
    args = process.args
    if "worker" not in args:
        return process.name
    pool = args[args.index("-P") + 1] if "-P" in args else "prefork"
    concurrency = next(a.split("=")[1] for a in args if a.startswith("--concurrency="))
    queues = args[args.index("-Q") + 1] if "-Q" in args else "every queue"
    return f"{process.name} {pool} {concurrency} ({queues})"


def verdict(setup: str, pct: float, p99: float, most: int) -> str:
    """Whether issue 16's goal for the setup is met, and if not, what falls short."""
    least, p99_under = GOALS[setup]
    goal = f">= {least:g}% of expected" + (f", p99 < {p99_under:g} s" if p99_under else "")
    short = [f"{pct}%"] if not pct >= least else []
    if p99_under is not None and not p99 < p99_under:
        short.append(f"p99 {p99} s")
    if most > 1:
        short.append(f"{most} outstanding polls on a device")
    return f"{goal}, <= 1 outstanding: " + ("met" if not short else f"not met ({', '.join(short)})")
