"""Where a process spent its CPU, from py-spy's raw samples (`py-spy record --format raw`).

`python -m bench.profile_summary FILE...` prints, for each file, the share of samples by the
package that was running (self time: the innermost frame) and by the packages on the stack
(inclusive: SQLAlchemy counts whatever it called, psycopg included). The API benchmark writes
such files with `--profile DIR` and prints a summary line for each run.
"""

import re
import sys
from collections import Counter
from pathlib import Path

# "function (path/to/file.py:line)", the frames of one stack joined by ";", then a count.
_FRAME_FILE = re.compile(r"\((.*?)(?::\d+)?\)$")
_PACKAGE = re.compile(r"(?:site-packages|dist-packages)/([A-Za-z0-9_]+)")
INCLUSIVE = ("app", "sqlalchemy", "psycopg", "marshmallow", "flask_smorest", "webargs")


def package(frame: str) -> str:
    """The package a frame's code belongs to: app, sqlalchemy, werkzeug, stdlib, ..."""
    match = _FRAME_FILE.search(frame)
    path = match.group(1) if match else frame
    if found := _PACKAGE.search(path):
        return found.group(1)
    if "/app/" in path or path.startswith("app/"):
        return "app"
    return "stdlib" if path.endswith(".py") else "native"


def shares(samples: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Samples in all, then per package: self samples and inclusive samples."""
    total, own, on_stack = 0, Counter[str](), Counter[str]()
    for line in samples.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        own[package(frames[-1])] += count
        for name in {package(frame) for frame in frames}:
            on_stack[name] += count
    return total, own, on_stack


def summary(samples: Path, top: int = 6) -> str:
    """One line: the biggest self shares, then the inclusive ones of INCLUSIVE."""
    if not samples.exists():
        return f"no samples in {samples}"
    total, own, on_stack = shares(samples)
    if not total:
        return "no samples"
    mine = ", ".join(f"{name} {count / total:.0%}" for name, count in own.most_common(top))
    within = ", ".join(f"{name} {on_stack[name] / total:.0%}" for name in INCLUSIVE)
    return f"{total} samples; self: {mine}; inclusive: {within}"


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{name}: {summary(Path(name), top=12)}")
