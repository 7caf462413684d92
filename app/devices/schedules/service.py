"""A device's schedules: adding, listing, changing and deleting them, and their occurrences."""

from datetime import datetime
from itertools import islice, pairwise
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.database import owned, utcnow
from app.devices.models import Device
from app.devices.schedules.models import DeviceSchedule
from app.devices.schedules.occurrences import occurrences
from app.devices.schedules.planning import cancel_pending, plan
from app.errors import Invalid, NotFound
from app.extensions import db

# Occurrences looked at to tell how often a rule fires.
SAMPLE = 100


def create_schedule(*, device_id: int, user_id: int, **fields: Any) -> DeviceSchedule:
    """Save a schedule and its next occurrence's job, in one transaction."""
    device = owned(Device, device_id, owner_id=user_id, lock=True)
    limit = current_app.config["DEVICE_SCHEDULE_LIMIT"]
    count = db.session.execute(
        select(func.count()).where(DeviceSchedule.device_id == device.id)
    ).scalar_one()
    if count >= limit:
        raise Invalid("device_id", f"Device {device.id} has {count} schedules: the limit.")
    schedule = DeviceSchedule(device_id=device.id, **fields)
    check(schedule)
    db.session.add(schedule)
    db.session.flush()
    plan(schedule, owner_id=device.owner_id, after=utcnow())
    db.session.commit()
    return schedule


def list_schedules(*, device_id: int, user_id: int) -> list[DeviceSchedule]:
    device = owned(Device, device_id, owner_id=user_id)
    query = select(DeviceSchedule).where(DeviceSchedule.device_id == device.id)
    return list(db.session.execute(query.order_by(DeviceSchedule.id)).scalars())


def get_schedule(
    *, device_id: int, schedule_id: int, user_id: int, lock: bool = False
) -> DeviceSchedule:
    """One of the user's device's schedules (NotFound if the device has none of that id)."""
    device = owned(Device, device_id, owner_id=user_id, lock=lock)
    query = select(DeviceSchedule).where(
        DeviceSchedule.id == schedule_id, DeviceSchedule.device_id == device.id
    )
    if lock:
        query = query.with_for_update()
    schedule = db.session.execute(query).scalar_one_or_none()
    if schedule is None:
        raise NotFound(f"Device {device_id} has no schedule {schedule_id}.")
    return schedule


def update_schedule(
    *, device_id: int, schedule_id: int, user_id: int, **changes: Any
) -> DeviceSchedule:
    """Change a schedule; a new rule, zone or policy, or a pause, re-plans its pending job."""
    schedule = get_schedule(
        device_id=device_id, schedule_id=schedule_id, user_id=user_id, lock=True
    )
    for field, value in changes.items():
        setattr(schedule, field, value)
    check(schedule)
    plan(schedule, owner_id=user_id, after=utcnow())
    db.session.commit()
    return schedule


def delete_schedule(*, device_id: int, schedule_id: int, user_id: int) -> None:
    """Delete a schedule with its history, and cancel its pending job."""
    schedule = get_schedule(
        device_id=device_id, schedule_id=schedule_id, user_id=user_id, lock=True
    )
    cancel_pending([schedule.id])
    db.session.delete(schedule)
    db.session.commit()


def cancel_schedules(device: Device) -> None:
    """Cancel the pending jobs of the device's schedules (it is being deleted)."""
    ids = select(DeviceSchedule.id).where(DeviceSchedule.device_id == device.id)
    cancel_pending(list(db.session.execute(ids).scalars()))


def next_runs_from(
    schedule: DeviceSchedule, *, start: datetime | None, count: int
) -> list[datetime]:
    """The schedule's occurrences at or after `start` (now by default), paused or not."""
    return next_runs(schedule, start=start or utcnow(), count=count)


def next_runs(schedule: DeviceSchedule, *, start: datetime, count: int) -> list[datetime]:
    return list(islice(occurrences(schedule.rule, start=start), count))


def check(schedule: DeviceSchedule) -> None:
    """Invalid unless the rule ends after it starts, fires at all, and not too often."""
    if schedule.starts_at and schedule.ends_at and schedule.ends_at <= schedule.starts_at:
        raise Invalid("ends_at", "The schedule must end after it starts.")
    sample = next_runs(schedule, start=max(utcnow(), schedule.starts_at or utcnow()), count=SAMPLE)
    if not sample:
        field = "ends_at" if schedule.ends_at else "cron"
        raise Invalid(field, "The rule never fires (after its start and before its end).")
    minimum = current_app.config["DEVICE_MIN_INTERVAL"]
    closest = min(((b - a).total_seconds() for a, b in pairwise(sample)), default=None)
    if closest is not None and closest < minimum:
        raise Invalid("cron", f"The rule fires {closest:.0f} s apart: {minimum} s at least.")
