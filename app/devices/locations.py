"""Locations: a user's devices grouped by place, polled together and summarised.

A refresh is two jobs of the engine, written with it: `location.refresh` launches the fan-out
(a chord of chunks, see tasks.py) and `location.summary` is its deadline. The chord's callback
summarises as soon as every device answered; at the deadline, the summary is made from those
that did, naming the others. Both are no-ops once the refresh is finished.
"""

from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update

from app.database import locked, utcnow
from app.devices.models import Device, LocationRefresh, RefreshMember
from app.devices.polling import fetch
from app.devices.readings import latest_attributes, record
from app.errors import NotFound
from app.extensions import db
from app.scheduling import service as scheduling

REFRESH = "location.refresh"
SUMMARY = "location.summary"


def locations(*, owner_id: int) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(Device.location, func.count(Device.id))
        .where(Device.owner_id == owner_id)
        .group_by(Device.location)
        .order_by(Device.location)
    )
    return [{"location": location, "devices": count} for location, count in rows]


def start_refresh(*, owner_id: int, location: str) -> LocationRefresh:
    """Record a fan-out poll of the location's devices with its two jobs, in one transaction:
    the fan-out starts once the broker has the first job, however late that is."""
    device_ids = list(
        db.session.execute(
            select(Device.id).where(Device.owner_id == owner_id, Device.location == location)
        ).scalars()
    )
    if not device_ids:
        raise NotFound(f"You have no devices at location {location!r}.")
    now = utcnow()
    refresh = LocationRefresh(
        owner_id=owner_id,
        location=location,
        total=len(device_ids),
        started_at=now,
        deadline_at=now + timedelta(seconds=current_app.config["LOCATION_REFRESH_DEADLINE"]),
        members=[RefreshMember(device_id=device_id) for device_id in device_ids],
    )
    db.session.add(refresh)
    db.session.flush()
    for kind, due_at in ((REFRESH, now), (SUMMARY, refresh.deadline_at)):
        scheduling.schedule(kind=kind, subject_id=refresh.id, due_at=due_at, owner_id=owner_id)
    db.session.commit()
    return refresh


def devices_to_poll(refresh_id: int) -> list[int]:
    """The refresh's devices that have not answered yet (all of them, the first time)."""
    return list(
        db.session.execute(
            select(RefreshMember.device_id)
            .join(LocationRefresh)
            .where(
                RefreshMember.refresh_id == refresh_id,
                RefreshMember.polled_at.is_(None),
                LocationRefresh.finished_at.is_(None),
            )
            .order_by(RefreshMember.device_id)
        ).scalars()
    )


def poll_for_refresh(*, device_id: int, refresh_id: int) -> None:
    """Poll one device for a location refresh (outside its schedule) and count it done, once
    however often its task is delivered."""
    outcome = fetch(device_id)
    device = locked(Device, device_id)
    if device is not None and outcome is not None:
        record(device, outcome)
    answered = db.session.execute(
        update(RefreshMember)
        .where(
            RefreshMember.refresh_id == refresh_id,
            RefreshMember.device_id == device_id,
            RefreshMember.polled_at.is_(None),
        )
        .values(polled_at=utcnow())
    ).rowcount
    if answered:
        db.session.execute(
            update(LocationRefresh)
            .where(LocationRefresh.id == refresh_id, LocationRefresh.finished_at.is_(None))
            .values(polled=LocationRefresh.polled + 1)
        )
    db.session.commit()


def summarise(*, refresh_id: int) -> None:
    """Store the location's summary from the devices that answered (all, unless the deadline
    came first): devices online, the mean of each attribute's latest value, who is missing.
    Runs in the caller's transaction."""
    refresh = locked(LocationRefresh, refresh_id)
    if refresh is None or refresh.finished_at is not None:
        return
    rows = db.session.execute(
        select(Device, RefreshMember.polled_at)
        .join(RefreshMember, RefreshMember.device_id == Device.id)
        .where(RefreshMember.refresh_id == refresh_id)
        .order_by(Device.name, Device.id)
    ).all()
    answered = [device for device, polled_at in rows if polled_at is not None]
    values: dict[tuple[str, str], list[float]] = {}
    for device in answered:
        for reading in latest_attributes(device):
            values.setdefault((reading.name, reading.units), []).append(reading.value)
    refresh.summary = {
        "devices": len(answered),
        "online": sum(1 for device in answered if device.online),
        "attributes": [
            {"name": name, "units": units, "mean": round(sum(v) / len(v), 3), "devices": len(v)}
            for (name, units), v in sorted(values.items())
        ],
        "missing": [
            {"id": device.id, "name": device.name} for device, polled_at in rows if not polled_at
        ],
    }
    refresh.polled = len(answered)
    refresh.finished_at = utcnow()


def latest_refresh(*, owner_id: int, location: str) -> LocationRefresh:
    refresh = db.session.execute(
        select(LocationRefresh)
        .where(LocationRefresh.owner_id == owner_id, LocationRefresh.location == location)
        .order_by(LocationRefresh.started_at.desc(), LocationRefresh.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if refresh is None:
        raise NotFound(f"Location {location!r} has not been refreshed yet.")
    return refresh
