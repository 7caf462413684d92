"""How long to wait before trying again: one doubling backoff for every retry in the service."""


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """`base` seconds after the first failure, doubling with each one after it, at most `cap`."""
    return min(base * 2 ** max(attempt - 1, 0), cap)
