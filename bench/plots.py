"""The benchmark results as PNG plots: `python -m bench.plots [results.json]`.

Reads what bench.run wrote (rows, and the raw lateness samples under "series") and draws
worker memory against pending schedules, and the lateness distribution of each system.
"""

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt

from bench import harness

COLOURS = {"punctual": "tab:blue", "tutorial": "tab:red"}


def draw(results: dict[str, Any], folder: Path) -> list[Path]:
    """Every plot the results have data for; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [
        memory_plot(results["rows"], folder / "pending-memory.png"),
        lateness_plot(results.get("series", {}), folder / "lateness.png"),
    ]
    return [path for path in drawn if path is not None]


def memory_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    memory = [row for row in rows if row.get("benchmark") == "pending memory"]
    if not memory:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for system, colour in COLOURS.items():
        points = sorted(
            (row["pending"], row["worker_rss_mib"], row["broker_rss_mib"])
            for row in memory
            if row["system"] == system and isinstance(row["worker_rss_mib"], int | float)
        )
        if not points:
            continue
        pending, worker, broker = zip(*points, strict=True)
        axes.plot(pending, worker, "o-", color=colour, label=f"{system}: worker RSS")
        axes.plot(pending, broker, "s--", color=colour, alpha=0.6, label=f"{system}: RabbitMQ RSS")
    return save(
        figure,
        path,
        xlabel="pending polls (closing 1-7 days ahead)",
        ylabel="resident memory (MiB)",
        title="Memory against pending schedules",
    )


def lateness_plot(series: dict[str, list[float]], path: Path) -> Path | None:
    """One cumulative distribution per run: the share of polls closed within x ms of due."""
    lateness = {name: values for name, values in series.items() if name.startswith("lateness")}
    if not lateness:
        return None
    sizes = sorted({int(name.split("/")[1]) for name in lateness})
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for name, values in sorted(lateness.items()):
        _, size, system = name.split("/")
        data = sorted(max(v * 1000, 0.1) for v in values)  # ms; a log scale needs > 0
        if not data:
            continue
        shares = [(i + 1) / len(data) for i in range(len(data))]
        axes.step(
            data,
            shares,
            where="post",
            color=COLOURS.get(system),
            linestyle=["-", "--", ":"][sizes.index(int(size)) % 3],
            label=f"{system}, {int(size):,} polls",
        )
    return save(
        figure,
        path,
        xlabel="lateness: closed_at - close_date (ms, log scale)",
        ylabel="share of polls closed",
        title="Lateness of polls due together in one window",
    )


def save(figure: Any, path: Path, *, xlabel: str, ylabel: str, title: str) -> Path:
    """Label the plot's one axes (x on a log scale) and write it as a PNG."""
    [axes] = figure.axes
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else harness.RESULTS / "latest.json"
    for path in draw(json.loads(source.read_text()), source.parent):
        print(f"[bench] plot written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
