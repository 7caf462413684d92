"""Devices: registering, listing, changing and deleting them, with their poll schedule."""

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, select

from app.database import add_unique, owned, utcnow
from app.devices.commands import cancel_commands
from app.devices.models import Device
from app.devices.polling import pending_poll, schedule_poll
from app.devices.schedules.service import cancel_schedules
from app.extensions import db
from app.scheduling import service as scheduling


def register_device(
    *,
    owner_id: int,
    name: str,
    location: str,
    vendor: str,
    vendor_id: str,
    interval: int,
    paused: bool = False,
) -> Device:
    """Save a device and schedule its first poll, in one transaction."""
    device = Device(
        owner_id=owner_id,
        name=name,
        location=location,
        vendor=vendor,
        vendor_id=vendor_id,
        interval=interval,
        paused=paused,
    )
    add_unique(
        device, conflict=f"A {vendor} device with vendor id {vendor_id!r} is registered already."
    )
    if not paused:
        # Someone is waiting to see it answer: the first poll is not held back.
        schedule_poll(device, due_at=utcnow(), deferrable=False)
    db.session.commit()
    return device


def devices_query(*, owner_id: int, location: str | None, online: bool | None) -> Select:
    query = select(Device).where(Device.owner_id == owner_id).order_by(Device.name, Device.id)
    if location is not None:
        query = query.where(Device.location == location)
    if online is not None:
        query = query.where(Device.online if online else ~Device.online)
    return query


def get_device(*, device_id: int, user_id: int) -> Device:
    return owned(Device, device_id, owner_id=user_id)


def update_device(*, device_id: int, user_id: int, **changes: Any) -> Device:
    """Change a device; a new interval or pausing takes effect on the schedule at once."""
    device = owned(Device, device_id, owner_id=user_id, lock=True)
    was_paused, old_interval = device.paused, device.interval
    for field, value in changes.items():
        setattr(device, field, value)
    pending = pending_poll(device)
    if device.paused and pending is not None:
        scheduling.cancel(pending)
    elif was_paused and not device.paused:
        schedule_poll(device, due_at=utcnow(), deferrable=False)
    elif device.interval != old_interval and pending is not None:
        last = device.last_polled_at or device.created_at
        due = max(utcnow(), last + timedelta(seconds=device.interval))
        scheduling.reschedule(pending, due_at=due)
    db.session.commit()
    return device


def delete_device(*, device_id: int, user_id: int) -> None:
    """Delete a device with its readings and schedules, and cancel every job it still has
    pending."""
    device = owned(Device, device_id, owner_id=user_id, lock=True)
    pending = pending_poll(device)
    if pending is not None:
        scheduling.cancel(pending)
    cancel_commands(device)
    cancel_schedules(device)
    db.session.delete(device)
    db.session.commit()
