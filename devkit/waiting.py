"""Waiting for conditions with a deadline, instead of sleeping and hoping."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """A condition still false at its deadline (an AssertionError: in a test, a failure)."""


def until(condition: Callable[[], T], *, timeout: float, interval: float = 0.05) -> T | None:
    """The first truthy value of condition(), or None if the deadline passes first.

    condition() runs once more at the deadline, so a slow check still gets its last look.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_for(
    condition: Callable[[], T], *, timeout: float = 15, interval: float = 0.05, what: str = ""
) -> T:
    """The first truthy value of condition(); TimedOut if the deadline passes first."""
    value = until(condition, timeout=timeout, interval=interval)
    if not value:
        raise TimedOut(f"timed out after {timeout} s waiting for {what or condition}")
    return value
