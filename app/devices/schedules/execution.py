"""The device.schedule job: run its occurrence once (or apply the missed-run policy), then plan
the next one, like a device's poll schedules its successor."""

from datetime import datetime, timedelta
from itertools import islice, takewhile

from sqlalchemy import select, update

from app.database import insert_with_conflicts, locked, utcnow
from app.devices.commands import queue_command
from app.devices.models import Device
from app.devices.polling import poll_soon
from app.devices.schedules.models import DeviceSchedule, ScheduleRun
from app.devices.schedules.occurrences import occurrences
from app.devices.schedules.planning import plan
from app.extensions import db
from app.scheduling.models import Claim, Job
from app.scheduling.service import seconds

# Missed occurrences counted after an outage, at most (a rule every minute down for a week is
# 10,080); the latest few of them are listed in the schedule's history.
MAX_COUNTED = 100_000
MAX_LISTED = 20
_TICK = timedelta(microseconds=1)


def run_schedule(job: Claim) -> None:
    """Run the occurrence the schedule's pending job was for, then plan the next."""
    schedule = db.session.get(DeviceSchedule, job.subject_id)
    if schedule is None:
        return
    device = locked(Device, schedule.device_id)  # the device's row first, as its routes do
    schedule = locked(DeviceSchedule, job.subject_id)
    if device is None or schedule is None or schedule.job_id != job.id or schedule.paused:
        return  # re-planned, paused or deleted since this job was made
    due, now = schedule.next_at, job.started_at
    if due is None:
        return
    if now - due <= seconds("DEVICE_SCHEDULE_GRACE"):
        occur(schedule, device, due, outcome="ran")
        after = due
    else:
        catch_up(schedule, device, due, now=now)
        after = now
    plan(schedule, owner_id=device.owner_id, after=after)


def catch_up(schedule: DeviceSchedule, device: Device, due: datetime, *, now: datetime) -> None:
    """The service was down across `due` and perhaps more: never a burst. With missed="once"
    the latest missed occurrence runs; the others are counted as skipped."""
    later = takewhile(lambda at: at <= now, occurrences(schedule.rule, start=due + _TICK))
    missed = [due, *islice(later, MAX_COUNTED)]
    if schedule.missed == "once":
        occur(schedule, device, missed.pop(), outcome="caught_up")
    schedule.skipped_count += len(missed)
    record(schedule, missed[-MAX_LISTED:], outcome="skipped")


def occur(schedule: DeviceSchedule, device: Device, at: datetime, *, outcome: str) -> None:
    """Do the schedule's action for the occurrence at `at`, unless it was done already.

    The occurrence's row goes in first: if the database already has one, this occurrence ran
    (from another job of the schedule) and nothing is done again.
    """
    if not record(schedule, [at], outcome=outcome):
        return
    if schedule.action == "poll":
        job: Job = poll_soon(device, at=utcnow())
    else:
        job = queue_command(device, is_on=schedule.action == "switch_on")
    db.session.flush()
    db.session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.schedule_id == schedule.id, ScheduleRun.occurrence_at == at)
        .values(job_id=job.id)
    )
    schedule.last_run_at = at


def record(schedule: DeviceSchedule, moments: list[datetime], *, outcome: str) -> bool:
    """Write one row per occurrence, skipping those the database has; whether any was new."""
    if not moments:
        return False
    table = ScheduleRun.__table__
    insert = insert_with_conflicts(table, db.session.get_bind().dialect.name)
    rows = db.session.execute(
        insert.on_conflict_do_nothing(
            index_elements=[table.c.schedule_id, table.c.occurrence_at]
        ).returning(table.c.id),
        [{"schedule_id": schedule.id, "occurrence_at": at, "outcome": outcome} for at in moments],
    ).all()
    return bool(rows)


def history(schedule: DeviceSchedule, *, limit: int = 10) -> list[ScheduleRun]:
    """The schedule's latest occurrences run, caught up or skipped, newest first."""
    return list(
        db.session.execute(
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == schedule.id)
            .order_by(ScheduleRun.occurrence_at.desc())
            .limit(limit)
        ).scalars()
    )
