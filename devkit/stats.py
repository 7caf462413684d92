"""Percentiles and counts of repeats, as every measured line reports them."""

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence


def percentiles(
    values: Iterable[float], points: Sequence[int] = (50, 95, 99), digits: int = 4
) -> dict[str, float]:
    """{"p50": ..., "p95": ..., "p99": ..., "max": ...} of the values (NaN for none)."""
    data = sorted(values)
    if not data:
        return {**{f"p{p}": float("nan") for p in points}, "max": float("nan")}
    # inclusive: the exclusive default extrapolates past the largest value for a few samples
    cuts = statistics.quantiles(data, n=100, method="inclusive") if len(data) > 1 else data * 99
    found = {f"p{p}": statistics.median(data) if p == 50 else cuts[p - 1] for p in points}
    return {**{k: round(v, digits) for k, v in found.items()}, "max": round(data[-1], digits)}


def surplus(counts: Counter) -> int:
    """How many beyond the first of each key: runs of a job after its first, second closes..."""
    return sum(n - 1 for n in counts.values() if n > 1)
