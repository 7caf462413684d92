"""On/off commands: a job each, sent to the vendor outside the transaction, then confirmed."""

from sqlalchemy import select

from app.database import locked, owned, utcnow
from app.devices.models import Command, Device
from app.devices.polling import pending_poll
from app.devices.vendors import get_vendor
from app.devices.vendors.base import DeviceRef
from app.extensions import db
from app.scheduling import service as scheduling
from app.scheduling.models import PENDING, Claim, Job

COMMAND = "device.command"


def send_command(*, device_id: int, user_id: int, is_on: bool) -> Job:
    """Queue an on/off command for the vendor; its job shows the outcome."""
    device = owned(Device, device_id, owner_id=user_id)
    job = queue_command(device, is_on=is_on)
    db.session.commit()
    return job


def queue_command(device: Device, *, is_on: bool) -> Job:
    """Add a command for the device and its job, due now, to the caller's transaction: what a
    user's request does, and a schedule's occurrence too."""
    command = Command(device_id=device.id, is_on=is_on)
    db.session.add(command)
    db.session.flush()
    return scheduling.schedule(
        kind=COMMAND, subject_id=command.id, due_at=utcnow(), owner_id=device.owner_id
    )


def cancel_commands(device: Device) -> None:
    """Cancel the device's commands that have not been sent yet (it is being deleted)."""
    command_ids = select(Command.id).where(Command.device_id == device.id)
    for job in db.session.execute(
        select(Job).where(
            Job.kind == COMMAND, Job.subject_id.in_(command_ids), Job.state.in_(PENDING)
        )
    ).scalars():
        scheduling.cancel(job)


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


def run_command(job: Claim, _: None) -> None:
    """The device.command job, after the vendor accepted it: remember it and confirm soon."""
    command = db.session.get(Command, job.subject_id)
    if command is None:
        return
    device = locked(Device, command.device_id)
    if device is None:
        return
    device.commanded_on = command.is_on
    pending = pending_poll(device)
    if pending is not None:
        scheduling.reschedule(pending, due_at=utcnow(), deferrable=False)
