"""Devices: registration, their poll schedule, readings, commands and location fan-outs."""

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from flask import current_app
from flask_smorest import abort
from sqlalchemy import Insert, Select, and_, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute

from app.database import add_unique, insert_with_conflicts, locked, utcnow
from app.devices.models import (
    AttributeReading,
    Command,
    Device,
    LocationRefresh,
    PollFailure,
    StatusReading,
)
from app.devices.vendors import VendorError, get_vendor
from app.devices.vendors.base import AttributeReport, DeviceRef, StatusReport
from app.extensions import db
from app.scheduling import service as scheduling
from app.scheduling.models import Job

log = logging.getLogger(__name__)

POLL = "device.poll"
COMMAND = "device.command"
# A failing device is polled less often: its interval times this factor at most.
MAX_BACKOFF_FACTOR = 16


# --- registering and changing devices --------------------------------------------------------


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
        _schedule_poll(device, due_at=utcnow(), deferrable=False)
    db.session.commit()
    return device


def devices_query(*, owner_id: int, location: str | None, online: bool | None) -> Select:
    query = select(Device).where(Device.owner_id == owner_id).order_by(Device.name, Device.id)
    if location is not None:
        query = query.where(Device.location == location)
    if online is not None:
        is_online = and_(
            Device.last_seen_at.is_not(None),
            Device.consecutive_failures < current_app.config["DEVICE_OFFLINE_AFTER"],
        )
        query = query.where(is_online if online else ~is_online)
    return query


def get_device(*, device_id: int, user_id: int, lock: bool = False) -> Device:
    device = locked(Device, device_id) if lock else db.session.get(Device, device_id)
    if device is None:
        abort(404, message=f"Device {device_id} does not exist.")
    if device.owner_id != user_id:
        abort(403, message=f"Device {device_id} belongs to another user.")
    return device


def update_device(*, device_id: int, user_id: int, **changes: Any) -> Device:
    """Change a device; a new interval or pausing takes effect on the schedule at once."""
    device = get_device(device_id=device_id, user_id=user_id, lock=True)
    was_paused, old_interval = device.paused, device.interval
    for field, value in changes.items():
        setattr(device, field, value)
    pending = scheduling.find_pending(kind=POLL, subject_id=device.id)
    if device.paused and pending is not None:
        scheduling.cancel(pending)
    elif was_paused and not device.paused:
        _schedule_poll(device, due_at=utcnow(), deferrable=False)
    elif device.interval != old_interval and pending is not None:
        last = device.last_polled_at or device.created_at
        due = max(utcnow(), last + timedelta(seconds=device.interval))
        scheduling.reschedule(pending, due_at=due)
    db.session.commit()
    return device


def delete_device(*, device_id: int, user_id: int) -> None:
    """Delete a device with its readings, and cancel every job it still has pending."""
    device = get_device(device_id=device_id, user_id=user_id, lock=True)
    pending = scheduling.find_pending(kind=POLL, subject_id=device.id)
    if pending is not None:
        scheduling.cancel(pending)
    command_ids = select(Command.id).where(Command.device_id == device.id)
    for job in db.session.execute(
        select(Job).where(
            Job.kind == COMMAND,
            Job.subject_id.in_(command_ids),
            Job.state.in_(("scheduled", "queued")),
        )
    ).scalars():
        scheduling.cancel(job)
    db.session.delete(device)
    db.session.commit()


def next_poll_at(device: Device) -> datetime | None:
    job = scheduling.find_pending(kind=POLL, subject_id=device.id)
    return job.due_at if job else None


def is_online(device: Device) -> bool:
    limit = current_app.config["DEVICE_OFFLINE_AFTER"]
    return device.last_seen_at is not None and device.consecutive_failures < limit


def latest_attributes(device: Device) -> list[AttributeReading]:
    """The newest reading of each attribute of the device."""
    newest = (
        select(AttributeReading.name, func.max(AttributeReading.valid_at).label("valid_at"))
        .where(AttributeReading.device_id == device.id)
        .group_by(AttributeReading.name)
        .subquery()
    )
    return list(
        db.session.execute(
            select(AttributeReading)
            .join(
                newest,
                and_(
                    AttributeReading.name == newest.c.name,
                    AttributeReading.valid_at == newest.c.valid_at,
                ),
            )
            .where(AttributeReading.device_id == device.id)
            .order_by(AttributeReading.name)
        ).scalars()
    )


def readings(
    moment: InstrumentedAttribute[datetime],
    *,
    device: Device,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, int] | None = None,
    attribute: str | None = None,
) -> dict[str, Any]:
    """Rows of one of a device's time series (readings, failures), newest first by `moment`,
    their time column, then by id; `next_before` (the last row's time and id) pages on to
    older ones, also between rows of one instant (a thermostat's temperature and humidity)."""
    model = moment.class_
    query = select(model).where(model.device_id == device.id)
    if attribute is not None and model is AttributeReading:
        query = query.where(AttributeReading.name == attribute)
    if since is not None:
        query = query.where(moment >= since)
    if until is not None:
        query = query.where(moment < until)
    if before is not None:
        then, row_id = before
        query = query.where(or_(moment < then, and_(moment == then, model.id < row_id)))
    # One row more than asked for tells whether older ones exist: the cursor never leads to an
    # empty page, nor (with `since`) to a refused one.
    rows = db.session.execute(query.order_by(moment.desc(), model.id.desc()).limit(limit + 1))
    items = list(rows.scalars())
    older = len(items) > limit
    items = items[:limit]
    return {
        "items": items,
        "limit": limit,
        "next_before": (getattr(items[-1], moment.key), items[-1].id) if older else None,
    }


# --- polling ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PollOutcome:
    status: StatusReport | None = None
    attributes: tuple[AttributeReport, ...] = ()
    error: str | None = None


def _schedule_poll(device: Device, *, due_at: datetime, deferrable: bool) -> Job:
    return scheduling.schedule(
        kind=POLL,
        subject_id=device.id,
        due_at=due_at,
        owner_id=device.owner_id,
        deferrable=deferrable,
    )


def poll_at(*, device_id: int, user_id: int, at: datetime) -> Job:
    """Poll a device at a given time (now, or later), paused or not.

    A device never has two polls pending: the pending one is moved, and the schedule goes on
    from there.
    """
    device = get_device(device_id=device_id, user_id=user_id, lock=True)
    pending = scheduling.find_pending(kind=POLL, subject_id=device.id)
    if pending is None:
        job = _schedule_poll(device, due_at=at, deferrable=False)
    else:
        scheduling.reschedule(pending, due_at=at, deferrable=False)
        job = pending
    db.session.commit()
    return job


def fetch(device_id: int) -> PollOutcome | None:
    """Ask the vendor for a device's status and readings; holds no transaction while asking."""
    device = db.session.get(Device, device_id)
    if device is None:
        return None
    vendor_name = device.vendor
    ref = DeviceRef(vendor_id=device.vendor_id, commanded_on=device.commanded_on)
    db.session.rollback()
    try:
        vendor = get_vendor(vendor_name)
        return PollOutcome(
            status=vendor.get_status(ref), attributes=tuple(vendor.get_attributes(ref))
        )
    except VendorError as exc:
        return PollOutcome(error=str(exc))


def record(device: Device, outcome: PollOutcome) -> None:
    """Store what a poll brought back, or that it failed."""
    now = utcnow()
    device.last_polled_at = now
    if outcome.error is not None:
        device.consecutive_failures += 1
        device.last_error = outcome.error
        db.session.add(PollFailure(device_id=device.id, failed_at=now, error=outcome.error))
        log.warning(
            "device %s poll failed (%d in a row): %s",
            device.id,
            device.consecutive_failures,
            outcome.error,
        )
        return
    device.consecutive_failures = 0
    device.last_error = None
    device.last_seen_at = now
    dialect = db.session.get_bind().dialect.name
    if outcome.status is not None:
        device.is_on = outcome.status.is_on
        db.session.execute(
            _new_readings(StatusReading, dialect),
            [
                {
                    "device_id": device.id,
                    "is_on": outcome.status.is_on,
                    "valid_at": outcome.status.valid_at,
                }
            ],
        )
    if outcome.attributes:
        db.session.execute(
            _new_readings(AttributeReading, dialect),
            [
                {
                    "device_id": device.id,
                    "name": report.name,
                    "value": report.value,
                    "units": report.units,
                    "valid_at": report.valid_at,
                }
                for report in outcome.attributes
            ],
        )


@cache
def _new_readings(model: type[db.Model], dialect: str) -> Insert:
    """INSERT readings, leaving out those already stored (same device, attribute and time): a
    vendor asked again before its next measurement answers with the same one."""
    return insert_with_conflicts(model.__table__, dialect).on_conflict_do_nothing()


def next_slot(*, due_at: datetime, step: timedelta, now: datetime) -> datetime:
    """The first slot after `now` on the grid `due_at + k * step`: missed slots coalesce."""
    following = due_at + step
    if following > now:
        return following
    missed = math.floor((now - due_at) / step)
    return due_at + step * (missed + 1)


def run_poll(job: scheduling.Claim, outcome: PollOutcome | None) -> None:
    """The device.poll job: record the outcome and schedule the next poll on the grid."""
    device = locked(Device, job.subject_id)
    if device is None or outcome is None:
        return
    record(device, outcome)
    if device.paused:
        return
    factor = min(2 ** max(device.consecutive_failures - 1, 0), MAX_BACKOFF_FACTOR)
    step = timedelta(seconds=device.interval * factor)
    # Unless a poll was asked for while this one ran (poll now, a resume): that one goes on.
    scheduling.schedule_once(
        kind=POLL,
        subject_id=device.id,
        due_at=next_slot(due_at=job.due_at, step=step, now=utcnow()),
        owner_id=device.owner_id,
        deferrable=True,
    )


# --- commands --------------------------------------------------------------------------------


def send_command(*, device_id: int, user_id: int, is_on: bool) -> Job:
    """Queue an on/off command for the vendor; its job shows the outcome."""
    device = get_device(device_id=device_id, user_id=user_id)
    command = Command(device_id=device.id, is_on=is_on)
    db.session.add(command)
    db.session.flush()
    job = scheduling.schedule(
        kind=COMMAND, subject_id=command.id, due_at=utcnow(), owner_id=user_id
    )
    db.session.commit()
    return job


def deliver_command(command_id: int) -> None:
    """Send a command to the vendor; a VendorError fails the attempt (and the job retries)."""
    command = db.session.get(Command, command_id)
    if command is None:
        return
    device = db.session.get(Device, command.device_id)
    vendor_name, is_on = device.vendor, command.is_on
    ref = DeviceRef(vendor_id=device.vendor_id, commanded_on=device.commanded_on)
    db.session.rollback()
    get_vendor(vendor_name).set_status(ref, is_on)


def run_command(job: scheduling.Claim, _: None) -> None:
    """The device.command job, after the vendor accepted it: remember it and confirm soon."""
    command = db.session.get(Command, job.subject_id)
    if command is None:
        return
    device = locked(Device, command.device_id)
    if device is None:
        return
    device.commanded_on = command.is_on
    pending = scheduling.find_pending(kind=POLL, subject_id=device.id)
    if pending is not None:
        scheduling.reschedule(pending, due_at=utcnow(), deferrable=False)


# --- locations -------------------------------------------------------------------------------


def locations(*, owner_id: int) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Device.location, func.count(Device.id))
        .where(Device.owner_id == owner_id)
        .group_by(Device.location)
        .order_by(Device.location)
    )
    return [{"location": location, "devices": count} for location, count in rows]


def start_refresh(*, owner_id: int, location: str) -> LocationRefresh:
    """Record a fan-out poll of the location's devices; the caller launches the chord."""
    device_ids = list(
        db.session.execute(
            select(Device.id).where(Device.owner_id == owner_id, Device.location == location)
        ).scalars()
    )
    if not device_ids:
        abort(404, message=f"You have no devices at location {location!r}.")
    refresh = LocationRefresh(owner_id=owner_id, location=location, total=len(device_ids))
    db.session.add(refresh)
    db.session.commit()
    refresh.device_ids = device_ids
    return refresh


def poll_for_refresh(*, device_id: int, refresh_id: int) -> None:
    """Poll one device for a location refresh (outside its schedule) and count it done."""
    outcome = fetch(device_id)
    device = locked(Device, device_id)
    if device is not None and outcome is not None:
        record(device, outcome)
    db.session.execute(
        update(LocationRefresh)
        .where(LocationRefresh.id == refresh_id, LocationRefresh.polled < LocationRefresh.total)
        .values(polled=LocationRefresh.polled + 1)
    )
    db.session.commit()


def summarise(*, refresh_id: int) -> None:
    """Store the location's summary: devices online, mean of each attribute's latest value."""
    refresh = locked(LocationRefresh, refresh_id)
    if refresh is None or refresh.finished_at is not None:
        return
    devices = (
        db.session.execute(
            select(Device).where(
                Device.owner_id == refresh.owner_id, Device.location == refresh.location
            )
        )
        .scalars()
        .all()
    )
    values: dict[tuple[str, str], list[float]] = {}
    for device in devices:
        for reading in latest_attributes(device):
            values.setdefault((reading.name, reading.units), []).append(reading.value)
    refresh.summary = {
        "devices": len(devices),
        "online": sum(1 for device in devices if is_online(device)),
        "attributes": [
            {"name": name, "units": units, "mean": round(sum(v) / len(v), 3), "devices": len(v)}
            for (name, units), v in sorted(values.items())
        ],
    }
    refresh.polled = refresh.total
    refresh.finished_at = utcnow()
    db.session.commit()


def latest_refresh(*, owner_id: int, location: str) -> LocationRefresh:
    refresh = db.session.execute(
        select(LocationRefresh)
        .where(LocationRefresh.owner_id == owner_id, LocationRefresh.location == location)
        .order_by(LocationRefresh.started_at.desc(), LocationRefresh.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if refresh is None:
        abort(404, message=f"Location {location!r} has not been refreshed yet.")
    return refresh
