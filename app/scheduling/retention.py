"""Bounded history: finished jobs, and what domains register, deleted by age in small batches.

Each batch is a transaction of its own (DELETE ... WHERE id IN (SELECT id ... LIMIT n)), so
no lock is held for long and work due meanwhile runs on time. Only finished jobs are
candidates: a scheduled, queued or running job is never deleted, whatever its age. Domains
register their own histories (a device's readings) with `history`, as they register job
handlers, so the engine knows none of them.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, delete, func, select

from app.database import utcnow
from app.extensions import db
from app.scheduling.models import Job, JobState

log = logging.getLogger(__name__)

# How long a finished job is kept, by its state: the setting holding the age in seconds.
JOB_RETENTION = {
    JobState.SUCCEEDED: "JOB_RETENTION_SUCCEEDED",
    JobState.FAILED: "JOB_RETENTION_FAILED",
    JobState.CANCELLED: "JOB_RETENTION_CANCELLED",
}

# `pruner(now=..., batch_size=..., dry_run=...)`: rows deleted (or, dry, that would be) by what.
Pruner = Callable[..., dict[str, int]]
_histories: dict[str, Pruner] = {}


def history(name: str) -> Callable[[Pruner], Pruner]:
    """Register a pruner for a history (`name`, as the CLI and the log call it)."""

    def register(pruner: Pruner) -> Pruner:
        existing = _histories.get(name)
        if existing is not None and existing is not pruner:
            raise ValueError(f"two pruners for history {name!r}")
        _histories[name] = pruner
        return pruner

    return register


def cutoff(setting: str, *, now: datetime) -> datetime | None:
    """Rows older than this go; None when the setting is 0 (kept forever)."""
    age = current_app.config[setting]
    return now - timedelta(seconds=age) if age and age > 0 else None


def delete_in_batches(ids: Select, *, batch_size: int) -> int:
    """Delete the rows whose ids `ids` selects, `batch_size` at a time, committing each batch.

    On PostgreSQL the batch skips rows another transaction has locked (a failed job being
    requeued, a second pruner's batch): they are left for the next run, never waited on.
    """
    table = ids.selected_columns[0].table
    batch = ids.limit(batch_size).with_for_update(skip_locked=True)
    deleted = 0
    while True:
        count = db.session.execute(delete(table).where(table.c.id.in_(batch))).rowcount
        db.session.commit()
        deleted += count
        if count < batch_size:
            return deleted


def count_rows(ids: Select) -> int:
    return db.session.execute(select(func.count()).select_from(ids.subquery())).scalar_one()


@history("jobs")
def prune_jobs(*, now: datetime, batch_size: int, dry_run: bool) -> dict[str, int]:
    """Finished jobs older than their state's retention, aged by when they finished."""
    counts = {}
    for state, setting in JOB_RETENTION.items():
        before = cutoff(setting, now=now)
        if before is None:
            continue
        ids = select(Job.id).where(Job.state == state, Job.finished_at < before)
        counts[state.value] = (
            count_rows(ids) if dry_run else delete_in_batches(ids, batch_size=batch_size)
        )
    return counts


def prune(
    *, names: list[str] | None = None, dry_run: bool = False, now: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Prune every registered history (or those named): rows gone by history and by what."""
    unknown = set(names or ()) - set(_histories)
    if unknown:
        raise LookupError(f"no history called {', '.join(sorted(unknown))}")
    now = now or utcnow()
    batch_size = current_app.config["RETENTION_BATCH_SIZE"]
    results = {}
    for name, pruner in _histories.items():
        if names is None or name in names:
            results[name] = pruner(now=now, batch_size=batch_size, dry_run=dry_run)
            if not dry_run:
                log.info("pruned %s", name, extra={"pruned": results[name]})
    return results
