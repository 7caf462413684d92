"""A device's recurring poll: one job pending per device, each scheduling the next on its grid."""

import math
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select

from app.database import locked, owned, utcnow
from app.devices.models import Device
from app.devices.readings import PollOutcome, record
from app.devices.vendors import VendorError, get_vendor
from app.devices.vendors.base import DeviceRef
from app.extensions import db
from app.scheduling import service as scheduling
from app.scheduling.models import Claim, Job
from app.scheduling.retry import backoff

POLL = "device.poll"
# A failing device is polled less often: its interval times this factor at most.
MAX_BACKOFF_FACTOR = 16


def schedule_poll(device: Device, *, due_at: datetime, deferrable: bool) -> Job:
    return scheduling.schedule(
        kind=POLL,
        subject_id=device.id,
        due_at=due_at,
        owner_id=device.owner_id,
        deferrable=deferrable,
    )


def pending_poll(device: Device) -> Job | None:
    return scheduling.find_pending(kind=POLL, subject_id=device.id)


def next_poll_at(device: Device) -> datetime | None:
    job = pending_poll(device)
    return job.due_at if job else None


def poll_soon(device: Device, *, at: datetime) -> Job:
    """Move the device's pending poll to `at` (never held back), or schedule one then."""
    pending = pending_poll(device)
    if pending is None:
        return schedule_poll(device, due_at=at, deferrable=False)
    scheduling.reschedule(pending, due_at=at, deferrable=False)
    return pending


def poll_at(*, device_id: int, user_id: int, at: datetime) -> Job:
    """Poll a device at a given time (now, or later), paused or not.

    A device never has two polls pending: the pending one is moved, and the schedule goes on
    from there.
    """
    device = owned(Device, device_id, owner_id=user_id, lock=True)
    job = poll_soon(device, at=at)
    db.session.commit()
    return job


def fetch(device_id: int) -> PollOutcome | None:
    """Ask the vendor for a device's status and readings; holds no transaction while asking."""
    # Three columns, not the ORM's whole Device: this runs for every poll of every device,
    # and the io worker's CPU (one process, the GIL) is what limits how many run on time.
    device = db.session.execute(_TO_ASK, {"device_id": device_id}).one_or_none()
    db.session.rollback()
    if device is None:
        return None
    vendor_name = device.vendor
    ref = DeviceRef(vendor_id=device.vendor_id, commanded_on=device.commanded_on)
    try:
        status, attributes = get_vendor(vendor_name).read(ref)
        return PollOutcome(status=status, attributes=tuple(attributes))
    except VendorError as exc:
        return PollOutcome(error=str(exc))


_device = Device.__table__
_TO_ASK = select(_device.c.vendor, _device.c.vendor_id, _device.c.commanded_on).where(
    _device.c.id == bindparam("device_id")
)


def next_slot(*, due_at: datetime, step: timedelta, now: datetime) -> datetime:
    """The first slot after `now` on the grid `due_at + k * step`: missed slots coalesce."""
    following = due_at + step
    if following > now:
        return following
    missed = math.floor((now - due_at) / step)
    return due_at + step * (missed + 1)


def run_poll(job: Claim, outcome: PollOutcome | None) -> None:
    """The device.poll job: record the outcome and schedule the next poll on the grid."""
    device = locked(Device, job.subject_id)
    if device is None or outcome is None:
        return
    record(device, outcome)
    if device.paused:
        return
    interval = device.interval
    seconds = backoff(device.consecutive_failures, base=interval, cap=interval * MAX_BACKOFF_FACTOR)
    # Unless a poll was asked for while this one ran (poll now, a resume): that one goes on.
    scheduling.schedule_once(
        kind=POLL,
        subject_id=device.id,
        due_at=next_slot(due_at=job.due_at, step=timedelta(seconds=seconds), now=utcnow()),
        owner_id=device.owner_id,
        deferrable=True,
    )
