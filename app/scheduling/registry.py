"""Which function runs a job of each kind, and whether a user may cancel such a job directly."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobKind:
    run: Callable[..., None]
    # Slow I/O (a vendor's API) done before the job's transaction, so no lock is held during it.
    prepare: Callable[[int], Any] | None = None
    # Set for jobs their domain relies on (a recurring schedule, a poll's close): they may not
    # be cancelled on their own, and this tells the user what to do instead. `{subject_id}` is
    # replaced by the job's subject.
    instead_of_cancelling: str | None = None
    # Mostly waiting on I/O (a vendor's API): sent to the I/O queue, whose worker runs tens at
    # once on threads, instead of the prefork queue that runs one per process.
    io: bool = False
    # Set-based: `run` takes a list of claims (close many polls in one UPDATE). Jobs of the
    # kind due close together travel in one message and run in one transaction (batches.py).
    batch: bool = False
    # The start committed on its own before `run` (as with `prepare`): the job is then no longer
    # pending, so its handler may schedule the kind's next job for the same subject (a
    # schedule's next occurrence), and an attempt that kills its worker counts.
    starts_first: bool = False

    @property
    def commits_start(self) -> bool:
        return self.starts_first or self.prepare is not None

    def run_one(self, claim: Any, *prepared: Any) -> None:
        if self.batch:
            self.run([claim])
        else:
            self.run(claim, *prepared)


_kinds: dict[str, JobKind] = {}


def handler(
    kind: str,
    *,
    prepare: Callable[[int], Any] | None = None,
    instead_of_cancelling: str | None = None,
    io: bool = False,
    batch: bool = False,
    starts_first: bool = False,
) -> Callable:
    """Register the function that runs jobs of `kind`: `function(job)`, `job` a `Claim`.

    It runs inside the job's transaction: it must not commit, and everything it writes
    commits together with the job's success, or not at all (a duplicate delivery running
    alongside has its writes rolled back). It should lock the rows it changes. With
    `prepare`, the runner first calls `prepare(subject_id)` outside any transaction (for slow
    I/O) and passes its result as the function's second argument: `function(job, prepared)`.
    With `instead_of_cancelling`, a user's request to cancel such a job is refused with it.
    With `io`, its messages go to the I/O queue (see JobKind.io). With `starts_first`, the start
    is committed before the function runs (see JobKind.starts_first). With `batch`, the function
    is `function(jobs)`, `jobs` a list of `Claim`s, and must do for each what it would alone:
    a job it cannot do raises, and the runner then runs the jobs one by one.
    """
    if batch and (prepare is not None or starts_first):
        raise ValueError(f"job kind {kind!r}: a batched kind starts with its transaction")

    def register(function: Callable[..., None]) -> Callable[..., None]:
        existing = _kinds.get(kind)
        if existing is not None and existing.run is not function:
            raise ValueError(f"two handlers for job kind {kind!r}")
        _kinds[kind] = JobKind(
            run=function,
            prepare=prepare,
            instead_of_cancelling=instead_of_cancelling,
            io=io,
            batch=batch,
            starts_first=starts_first,
        )
        return function

    return register


def kind_of(name: str) -> JobKind:
    try:
        return _kinds[name]
    except KeyError:
        raise LookupError(f"no handler registered for job kind {name!r}") from None


def instead_of_cancelling(name: str, *, subject_id: int) -> str | None:
    """What to do instead of cancelling a job of this kind, or None if it may be cancelled."""
    spec = _kinds.get(name)
    if spec is None or spec.instead_of_cancelling is None:
        return None
    return spec.instead_of_cancelling.format(subject_id=subject_id)


def is_io(name: str) -> bool:
    """Whether jobs of this kind go to the I/O queue (an unknown kind does not)."""
    spec = _kinds.get(name)
    return spec is not None and spec.io


def is_batched(name: str) -> bool:
    """Whether jobs of this kind due close together share a message (an unknown kind does not)."""
    spec = _kinds.get(name)
    return spec is not None and spec.batch
