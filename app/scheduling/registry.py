"""Which function runs a job of each kind."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobKind:
    run: Callable[..., None]
    # Slow I/O (a vendor's API) done before the job's transaction, so no lock is held during it.
    prepare: Callable[[int], Any] | None = None


_kinds: dict[str, JobKind] = {}


def handler(kind: str, *, prepare: Callable[[int], Any] | None = None) -> Callable:
    """Register the function that runs jobs of `kind`: `function(job)`, `job` a `Claim`.

    It runs inside the job's transaction: it must not commit, and everything it writes
    commits together with the job's success, or not at all (a duplicate delivery running
    alongside has its writes rolled back). It should lock the rows it changes. With
    `prepare`, the runner first calls `prepare(subject_id)` outside any transaction (for slow
    I/O) and passes its result as the function's second argument: `function(job, prepared)`.
    """

    def register(function: Callable[..., None]) -> Callable[..., None]:
        existing = _kinds.get(kind)
        if existing is not None and existing.run is not function:
            raise ValueError(f"two handlers for job kind {kind!r}")
        _kinds[kind] = JobKind(run=function, prepare=prepare)
        return function

    return register


def kind_of(name: str) -> JobKind:
    try:
        return _kinds[name]
    except KeyError:
        raise LookupError(f"no handler registered for job kind {name!r}") from None
