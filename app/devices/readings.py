"""A device's time series: storing what a poll brought back, and reading it page by page."""

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Insert, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from app.database import insert_with_conflicts, utcnow
from app.devices.models import AttributeReading, Device, PollFailure, StatusReading
from app.devices.vendors.base import AttributeReport, StatusReport
from app.extensions import db

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollOutcome:
    """What asking the vendor brought back: a status and readings, or an error."""

    status: StatusReport | None = None
    attributes: tuple[AttributeReport, ...] = ()
    error: str | None = None


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
        status = {"is_on": outcome.status.is_on, "valid_at": outcome.status.valid_at}
        db.session.execute(
            _new_readings(StatusReading, dialect), [{"device_id": device.id, **status}]
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
