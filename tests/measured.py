"""Measured facts (server start times, fault counts, lateness) printed at the end of the run."""

FACTS: list[str] = []


def report(line: str) -> None:
    """Keep a line for the "measured" section of pytest's summary."""
    FACTS.append(line)
