"""Polls made in bulk through the real service, and the exactly-once checks made on them."""

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from app.auth import service as auth
from app.database import utcnow
from app.extensions import db
from app.polls import service as polls
from app.polls.models import Poll
from app.scheduling.models import Job
from devkit.stats import percentiles
from devkit.waiting import wait_for
from tests.faults.fleet import Fleet

_owners = itertools.count(1)


def make_polls(app: Flask, offsets: list[float]) -> list[int]:
    """One poll per offset, closing that many seconds from now, each with its close job."""
    with app.app_context():
        owner = auth.register(username=f"faulty{next(_owners)}", password="correct horse battery")
        now = utcnow()
        return [
            polls.create_poll(
                owner_id=owner.id,
                owner_name=owner.username,
                title=f"Poll {i}",
                options=["Yes", "No"],
                close_date=now + timedelta(seconds=offset),
            ).id
            for i, offset in enumerate(offsets)
        ]


@dataclass
class Closed:
    poll_id: int
    close_date: datetime
    closed_at: datetime | None
    job_id: int
    job_state: str
    results_jobs: int


def outcomes(app: Flask, poll_ids: list[int]) -> list[Closed]:
    with app.app_context():
        rows = db.session.execute(
            select(Poll.id, Poll.close_date, Poll.closed_at, Job.id, Job.state)
            .join(Job, (Job.subject_id == Poll.id) & (Job.kind == polls.CLOSE))
            .where(Poll.id.in_(poll_ids))
        ).all()
        results = dict(
            db.session.execute(
                select(Job.subject_id, func.count(Job.id))
                .where(Job.kind == polls.RESULTS, Job.subject_id.in_(poll_ids))
                .group_by(Job.subject_id)
            ).all()
        )
        db.session.rollback()
    return [Closed(*row, results_jobs=results.get(row[0], 0)) for row in rows]


def wait_all_closed(app: Flask, poll_ids: list[int], timeout: float) -> list[Closed]:
    def closed() -> list[Closed] | None:
        found = outcomes(app, poll_ids)
        done = len(found) == len(poll_ids) and all(c.closed_at and c.results_jobs for c in found)
        return found if done else None

    return wait_for(closed, timeout=timeout, interval=0.25, what=f"{len(poll_ids)} polls to close")


def assert_exactly_once(closed: list[Closed], fleet: Fleet) -> dict[str, int]:
    """Every poll closed, by one successful run of its job, with one results computation.

    Returns what was counted, for the measured lines: polls closed and results jobs in the
    database, runs and starts of their close jobs in the workers' logs (a start beyond the
    runs is an attempt cut short, by a killed worker say).
    """
    runs, starts = fleet.runs(), fleet.starts()
    counts = {
        "polls": len(closed),
        "closed_in_db": sum(c.closed_at is not None for c in closed),
        "results_jobs_in_db": sum(c.results_jobs for c in closed),
        "runs_in_logs": sum(runs[c.job_id] for c in closed),
        "starts_in_logs": sum(starts[c.job_id] for c in closed),
    }
    lost = [c for c in closed if c.closed_at is None or c.job_state != "succeeded"]
    assert not lost, (counts, lost)
    not_once = {c.job_id: runs[c.job_id] for c in closed if runs[c.job_id] != 1}
    assert not not_once, (counts, "runs per job", not_once)
    assert all(c.results_jobs == 1 for c in closed), counts
    return counts


def waited_after(closed: list[Closed], recovered: datetime) -> float:
    """The longest a poll stayed open past both its close date and the end of the fault."""
    return round(
        max((c.closed_at - max(c.close_date, recovered)).total_seconds() for c in closed), 3
    )


# How far a poll's closed_at may fall before its close date: closed_at is the worker's estimate
# of the database's clock, good to a few milliseconds (half the round trip it is measured with,
# about a millisecond here; a VM's clock corrections add some). A close 2 ms "early" was seen.
CLOCK_PRECISION = 0.005


def lateness(closed: list[Closed]) -> dict[str, float]:
    """How long after its close date each poll closed: the median, p99, the worst, the best."""
    seconds = [(c.closed_at - c.close_date).total_seconds() for c in closed]
    return {**percentiles(seconds, points=(50, 99), digits=3), "min": round(min(seconds), 3)}
