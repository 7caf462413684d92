"""Waiting for conditions with a deadline, instead of sleeping and hoping."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T], *, timeout: float = 15, interval: float = 0.05, what: str = ""
) -> T:
    """Return the first truthy value of condition(); fail the test if the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


# Measured facts (server start times, fault counts, lateness) printed at the end of the run.
FACTS: list[str] = []
