"""Only a schedule's next occurrence is a job: planning it, and moving it when the rule changes."""

from datetime import datetime, timedelta

from sqlalchemy import select

from app.devices.schedules.models import DeviceSchedule
from app.devices.schedules.occurrences import occurrences
from app.extensions import db
from app.scheduling import service as scheduling
from app.scheduling.models import PENDING, Job

SCHEDULE = "device.schedule"
# Occurrences fall on whole minutes: "after" is "at or after" a microsecond later.
_TICK = timedelta(microseconds=1)


def next_occurrence(schedule: DeviceSchedule, *, after: datetime) -> datetime | None:
    """The schedule's first occurrence strictly after `after`, or None if it has ended."""
    return next(occurrences(schedule.rule, start=after + _TICK), None)


def plan(schedule: DeviceSchedule, *, owner_id: int, after: datetime) -> None:
    """Make the schedule's pending job the one for its next occurrence after `after`, or
    cancel it if the schedule is paused or has no occurrence left.

    A pending job is moved (a new token: a message already sent for it becomes a no-op), so
    a schedule never has two. The caller holds the schedule's row locked.
    """
    pending = scheduling.find_pending(kind=SCHEDULE, subject_id=schedule.id)
    upcoming = None if schedule.paused else next_occurrence(schedule, after=after)
    schedule.next_at = upcoming
    if upcoming is None:
        if pending is not None:
            scheduling.cancel(pending)
        schedule.job_id = None
        return
    if pending is None:
        pending = scheduling.schedule(
            kind=SCHEDULE, subject_id=schedule.id, due_at=upcoming, owner_id=owner_id
        )
        db.session.flush()
    else:
        scheduling.reschedule(pending, due_at=upcoming)
    schedule.job_id = pending.id


def cancel_pending(schedule_ids: list[int]) -> None:
    """Cancel the schedules' pending jobs (the schedules or their device are being deleted)."""
    for job in db.session.execute(
        select(Job).where(
            Job.kind == SCHEDULE, Job.subject_id.in_(schedule_ids), Job.state.in_(PENDING)
        )
    ).scalars():
        scheduling.cancel(job)
