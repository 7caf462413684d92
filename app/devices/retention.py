"""A device's time series kept for READING_RETENTION: older readings are pruned, never the
latest of each attribute nor the latest status (the device page shows them)."""

from collections import Counter
from datetime import datetime

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import aliased

from app.devices.models import AttributeReading, Device, PollFailure, StatusReading
from app.devices.schedules.models import DeviceSchedule, ScheduleRun
from app.extensions import db
from app.scheduling.retention import count_rows, cutoff, delete_in_batches, history

TABLES = ("attribute_reading", "status_reading", "poll_failure")


def expired(device_id: int, *, before: datetime) -> dict[str, Select]:
    """The ids of the device's rows measured before `before` that a newer one supersedes.

    Each reads the device's range of an index it already has (device, time), so a run costs
    the rows it deletes, not the size of the table.
    """
    newer_reading = aliased(AttributeReading)
    newer_status = aliased(StatusReading)
    return {
        "attribute_reading": select(AttributeReading.id).where(
            AttributeReading.device_id == device_id,
            AttributeReading.valid_at < before,
            exists().where(
                newer_reading.device_id == device_id,
                newer_reading.name == AttributeReading.name,
                newer_reading.valid_at > AttributeReading.valid_at,
            ),
        ),
        "status_reading": select(StatusReading.id).where(
            StatusReading.device_id == device_id,
            StatusReading.valid_at < before,
            exists().where(
                newer_status.device_id == device_id,
                newer_status.valid_at > StatusReading.valid_at,
            ),
        ),
        # The device keeps its last error; old failures only explained gaps in old readings.
        "poll_failure": select(PollFailure.id).where(
            PollFailure.device_id == device_id, PollFailure.failed_at < before
        ),
    }


@history("readings")
def prune_readings(*, now: datetime, batch_size: int, dry_run: bool) -> dict[str, int]:
    """Every device's readings, statuses and failed polls older than READING_RETENTION."""
    before = cutoff("READING_RETENTION", now=now)
    if before is None:
        return {}
    counts: Counter[str] = Counter()
    device_ids = db.session.execute(select(Device.id).order_by(Device.id)).scalars().all()
    db.session.rollback()  # no transaction held open across the devices' batches
    for device_id in device_ids:
        for table, ids in expired(device_id, before=before).items():
            if dry_run:
                counts[table] += count_rows(ids)
            else:
                counts[table] += delete_in_batches(ids, batch_size=batch_size)
    return {table: counts[table] for table in TABLES}


@history("schedule_runs")
def prune_schedule_runs(*, now: datetime, batch_size: int, dry_run: bool) -> dict[str, int]:
    """Every schedule's occurrences (run, caught up, skipped) older than
    SCHEDULE_HISTORY_RETENTION, schedule by schedule on their (schedule, occurrence) index.

    An occurrence that old is never run again, so its row no longer guards against it."""
    before = cutoff("SCHEDULE_HISTORY_RETENTION", now=now)
    if before is None:
        return {}
    schedule_ids = db.session.execute(select(DeviceSchedule.id)).scalars().all()
    db.session.rollback()
    gone = 0
    for schedule_id in schedule_ids:
        ids = select(ScheduleRun.id).where(
            ScheduleRun.schedule_id == schedule_id, ScheduleRun.occurrence_at < before
        )
        gone += count_rows(ids) if dry_run else delete_in_batches(ids, batch_size=batch_size)
    return {"schedule_run": gone}
