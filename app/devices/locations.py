"""Locations: a user's devices grouped by place, polled together and summarised."""

from typing import Any

from sqlalchemy import func, select, update

from app.database import locked, utcnow
from app.devices.models import Device, LocationRefresh
from app.devices.polling import fetch
from app.devices.readings import latest_attributes, record
from app.errors import NotFound
from app.extensions import db


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
        raise NotFound(f"You have no devices at location {location!r}.")
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
        "online": sum(1 for device in devices if device.online),
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
        raise NotFound(f"Location {location!r} has not been refreshed yet.")
    return refresh
