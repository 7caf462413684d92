from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.database import UTCDateTime, utcnow
from app.devices.schedules.occurrences import Rule
from app.extensions import db

ACTIONS = ("switch_on", "switch_off", "poll")
MISSED = ("skip", "once")


class DeviceSchedule(db.Model):
    """When to switch or poll a device, by a cron rule read in a time zone's wall-clock time."""

    __table_args__ = (
        CheckConstraint("action IN ('switch_on', 'switch_off', 'poll')", name="ck_schedule_action"),
        CheckConstraint("nonexistent IN ('shift', 'skip')", name="ck_schedule_nonexistent"),
        CheckConstraint("ambiguous IN ('first', 'both')", name="ck_schedule_ambiguous"),
        CheckConstraint("missed IN ('skip', 'once')", name="ck_schedule_missed"),
        CheckConstraint("ends_at > starts_at", name="ck_schedule_ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused: Mapped[bool] = mapped_column(default=False)
    nonexistent: Mapped[str] = mapped_column(String(8), default="shift")
    ambiguous: Mapped[str] = mapped_column(String(8), default="first")
    missed: Mapped[str] = mapped_column(String(8), default="skip")
    # The occurrence the pending job is for, and that job: a job the schedule no longer points
    # at (re-planned while it ran) does nothing. Retries move a job's due time, never this.
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[int | None]
    skipped_count: Mapped[int] = mapped_column(default=0)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def rule(self) -> Rule:
        return Rule(
            cron=self.cron,
            timezone=self.timezone,
            nonexistent=self.nonexistent,
            ambiguous=self.ambiguous,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


class ScheduleRun(db.Model):
    """An occurrence of a schedule that was run, caught up or skipped: one row per occurrence,
    written in the job's transaction, so the database refuses a second run of it."""

    __table_args__ = (
        UniqueConstraint("schedule_id", "occurrence_at", name="uq_schedule_run_occurrence"),
        CheckConstraint("outcome IN ('ran', 'caught_up', 'skipped')", name="ck_schedule_run"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("device_schedule.id", ondelete="CASCADE"))
    occurrence_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    # The command's or poll's job it started (None when skipped).
    job_id: Mapped[int | None]
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
