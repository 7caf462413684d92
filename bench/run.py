"""Punctual against the tutorial recipe, measured in one run: `make bench`, `make bench-smoke`.

1. Pending-schedule memory: N polls closing 1-7 days ahead; worker and broker memory of each,
   the tutorial's once its worker holds every message (bench/memory.py).
2. Lateness: N polls due within one window (10 s; 100,000 in 60 s), closed by each with one
   committed write; and the time trivial tasks take on the same worker setup, the throughput ceiling
   (bench/lateness.py, bench/ceiling.py).
3. Long ETAs: RabbitMQ's consumer_timeout at 10 s and polls due in 30 s (bench/long_etas.py).
4. API throughput under gunicorn + wrk, against bare Flask (bench/api.py).
5. Device polling: 1,000 simulated devices every 10 s for 2 minutes (bench/devices.py); then
   1,000 devices on the http vendor against a vendor API answering in 250 ms, on the io pool and
   on prefork alone, and 40 on the embedded default (bench/slow_vendor.py).
6. History: the figures that stay in use at 20,000 and 2,000,000 finished jobs of a 1,000-device
   fleet, and the retention task's prune of a (scaled) day of that fleet against polls due
   while it runs (bench/history.py).
7. A RabbitMQ cluster (`--cluster`, not in `make bench` nor `--smoke`): the lateness of 10,000
   polls due in 10 s on three nodes with quorum queues beside one node, and confirmed
   publishes per second on each (bench/cluster.py).
Each benchmark starts its own RabbitMQ and PostgreSQL. Results: tables on stdout,
bench/results/latest.json (smoke.json for the smoke run) and PNG plots beside it.
"""

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# Every benchmark module imports what it needs of the app at its top, so all of it is imported
# here, before a benchmark starts a thread (two threads importing the app at once deadlock).
from bench import api, devices, harness, plots, slow_vendor
from bench.cluster import cluster_benchmark
from bench.history import history
from bench.history_prune import Fleet
from bench.lateness import lateness
from bench.long_etas import long_etas
from bench.memory import pending_memory
from devkit import servers

Rows = list[dict[str, Any]]
PHASES = ("memory", "lateness", "long", "api", "devices", "history", "cluster")
# Run only when asked for (--cluster, or --only cluster): three more RabbitMQ nodes.
ON_REQUEST = ("cluster",)
# Long ETAs waits on timers with twenty polls, not on the CPU: it runs beside the others
# (beside the memory benchmark, whose numbers are memory, not time).
BESIDE = ("long",)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the benchmarks run")
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="pending polls for benchmark 1"
    )
    parser.add_argument(
        "--lateness",
        default="1000,10000,100000:60",
        help="polls due in one window: N (10 s) or N:SECONDS, comma-separated",
    )
    parser.add_argument("--devices", type=int, default=1000, help="devices polled every 10 s")
    parser.add_argument(
        "--device-workers", default="1", help="worker processes, one simulated run each ('': none)"
    )
    parser.add_argument(
        "--slow-vendor",
        help="setups against the slow vendor API: io,prefork,embedded ('': none; default all,"
        " or io,embedded with --smoke: the simulated run has a worker without -Q already)",
    )
    parser.add_argument(
        "--vendor-fleet",
        default=fleet_text(slow_vendor.FULL),
        help="devices,interval,seconds,vendor delay of the io and prefork setups",
    )
    parser.add_argument(
        "--embedded-fleet",
        default=fleet_text(slow_vendor.EMBEDDED),
        help="the same for the embedded setup",
    )
    parser.add_argument(
        "--io-concurrency", type=int, default=slow_vendor.IO_CONCURRENCY, help="io worker threads"
    )
    parser.add_argument(
        "--history", default="20000,2000000", help="finished jobs of each history size"
    )
    parser.add_argument(
        "--prune-fleet",
        default="1000,10,3600",
        help="devices,interval,seconds of the history the history benchmark prunes",
    )
    parser.add_argument(
        "--prune-closes", default="500:10", help="polls due while it prunes: N:SECONDS"
    )
    parser.add_argument("--profile", type=Path, help="py-spy samples of the API runs, into DIR")
    cluster = "also the cluster benchmark: polls due N:SECONDS (10000:10)"
    parser.add_argument("--cluster", nargs="?", const="10000:10", help=cluster)
    parser.add_argument("--only", help=f"comma-separated: {','.join(PHASES)}")
    return parser.parse_args(argv)


def numbers(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s]


def due_windows(text: str) -> list[tuple[int, float]]:
    """ "1000,100000:60" -> [(1000, 10.0), (100000, 60.0)]: polls due, in a window of seconds."""
    windows = []
    for item in text.split(","):
        count, _, seconds = item.partition(":")
        windows.append((int(count), float(seconds or 10)))
    return windows


def fleet_text(fleet: slow_vendor.Fleet) -> str:
    return f"{fleet.devices},{fleet.interval},{fleet.duration:g},{fleet.delay:g}"


def fleet_of(text: str) -> slow_vendor.Fleet:
    devices, interval, duration, delay = text.split(",")
    return slow_vendor.Fleet(int(devices), int(interval), float(duration), float(delay))


def vendor_fleets(args: argparse.Namespace) -> dict[str, slow_vendor.Fleet]:
    """The fleet of each slow-vendor setup (the same tiny one for all with --smoke)."""
    if args.smoke:
        return dict.fromkeys(slow_vendor.SETUPS, slow_vendor.SMOKE)
    fleet = fleet_of(args.vendor_fleet)
    return {"io": fleet, "prefork": fleet, "embedded": fleet_of(args.embedded_fleet)}


def phases(args: argparse.Namespace, folder: Path) -> dict[str, Callable[[], Rows]]:
    """Each benchmark at the sizes asked for (tiny ones with --smoke), ready to run."""
    smoke = args.smoke
    sizes = [200] if smoke else numbers(args.sizes)
    # Polls due in one window (seconds) of the lateness benchmark, written `lead` s ahead.
    windows = [(50, 2.0)] if smoke else due_windows(args.lateness)
    lead = 8 if smoke else 20
    trivial = 200 if smoke else 10_000
    load = (2, 4) if smoke else (4, 16)  # seconds and connections of each API scenario
    fleet = (20, 2, 8) if smoke else (args.devices, 10, 120)  # devices, interval, duration
    device_workers = [1] if smoke else numbers(args.device_workers)
    histories = [2000, 20_000] if smoke else numbers(args.history)
    prune_fleet = Fleet(100, 10, 3600) if smoke else Fleet(*numbers(args.prune_fleet))
    prune_closes = (50, 1.0) if smoke else due_windows(args.prune_closes)[0]

    chosen_setups = args.slow_vendor
    if chosen_setups is None:
        chosen_setups = ",".join(slow_vendor.SMOKE_SETUPS if smoke else slow_vendor.SETUPS)
    setups = tuple(setup for setup in chosen_setups.split(",") if setup)

    def device_runs() -> Rows:
        simulated = [
            row
            for count in device_workers
            for row in devices.device_polling(
                folder / "devices" / str(count), *fleet, workers=count, pace=True
            )
        ]
        fleets, threads = vendor_fleets(args), args.io_concurrency
        return simulated + slow_vendor.slow_vendor(folder / "vendor", fleets, setups, threads)

    return {
        "memory": lambda: pending_memory(folder / "memory", sizes),
        "lateness": lambda: lateness(folder / "lateness", windows, trivial, lead),
        "long": lambda: long_etas(folder / "long", 20),
        "api": lambda: api.api_throughput(
            folder / "api", *load, profile=args.profile, rounds=1 if smoke else 7, warm_up=not smoke
        ),
        "devices": device_runs,
        "cluster": lambda: cluster_benchmark(
            folder / "cluster", *due_windows(args.cluster or "10000:10")[0], lead, 2000
        ),
        "history": lambda: history(
            folder / "history", histories, prune_fleet, prune_closes, lead=3 if smoke else 10
        ),
    }


def chosen(args: argparse.Namespace) -> list[str]:
    """The phases to run, in the order of PHASES (the smoke run skips the 90 s long ETAs)."""
    asked = args.only.split(",") if args.only else []
    picked = [
        name
        for name in PHASES
        if name in asked
        or (not asked and name not in ON_REQUEST)
        or (name == "cluster" and args.cluster)
    ]
    return [name for name in picked if not (args.smoke and name in ("long", *ON_REQUEST))]


def run_phases(names: list[str], planned: dict[str, Callable[[], Rows]], folder: Path) -> Rows:
    """Run each phase (those in BESIDE on a thread, beside the rest); their rows in order."""

    def timed(name: str) -> Rows:
        (folder / name).mkdir()
        began = time.monotonic()
        rows = planned[name]()
        print(f"[bench] {name} took {time.monotonic() - began:.0f} s", flush=True)
        return rows

    results: dict[str, Rows] = {}
    with ThreadPoolExecutor(max_workers=1) as beside:
        background = {name: beside.submit(timed, name) for name in names if name in BESIDE}
        for name in names:
            if name not in background:
                results[name] = timed(name)
        results.update({name: future.result() for name, future in background.items()})
    return [row for name in names for row in results[name]]


def write(rows: Rows, smoke: bool) -> None:
    """The tables on stdout; the rows and their samples as JSON; the plots beside them."""
    series = dict(row.pop("series") for row in rows if "series" in row)
    harness.print_table(rows)
    path = harness.save("smoke" if smoke else "latest", rows, series, harness.machine())
    print(f"[bench] results written to {path}")
    for plot in plots.draw(json.loads(path.read_text()), path.parent / path.stem):
        print(f"[bench] plot written to {plot}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="punctual-bench-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)
        # At smoke sizes the phases borrow one pair of servers instead of starting one each
        # (about 13 s a pair); their measurements are not compared across phases.
        pooled = servers.shared(folder / "servers") if args.smoke else contextlib.nullcontext()
        with pooled:
            rows = run_phases(chosen(args), phases(args, folder), folder)
    write(rows, args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
