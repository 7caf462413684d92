from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from app.database import UTCDateTime, utcnow
from app.extensions import db


class Device(db.Model):
    __table_args__ = (
        UniqueConstraint("vendor", "vendor_id", name="uq_device_vendor_id"),
        # The floor; the configured minimum (DEVICE_MIN_INTERVAL) is checked on input.
        CheckConstraint("interval >= 1", name="ck_device_interval"),
        Index("ix_device_owner_location", "owner_id", "location"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(100))
    vendor: Mapped[str] = mapped_column(String(32))
    vendor_id: Mapped[str] = mapped_column(String(100))
    interval: Mapped[int]  # seconds between polls
    paused: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Kept up to date by each poll, so lists and filters need no scan of the readings.
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    is_on: Mapped[bool | None]
    # The last command the vendor accepted; the simulated vendor follows it.
    commanded_on: Mapped[bool | None]

    @hybrid_property
    def online(self) -> bool:
        """Seen at least once, and not DEVICE_OFFLINE_AFTER failed polls in a row since."""
        limit = current_app.config["DEVICE_OFFLINE_AFTER"]
        return self.last_seen_at is not None and self.consecutive_failures < limit

    @online.inplace.expression
    @classmethod
    def _online(cls) -> ColumnElement[bool]:
        limit = current_app.config["DEVICE_OFFLINE_AFTER"]
        return and_(cls.last_seen_at.is_not(None), cls.consecutive_failures < limit)


class AttributeReading(db.Model):
    __table_args__ = (
        Index("ix_attribute_reading_device_valid_at", "device_id", "valid_at"),
        # One reading per measurement: a vendor asked again before its next measurement
        # answers with the same one.
        Index(
            "uq_attribute_reading_device_name_valid_at",
            "device_id",
            "name",
            "valid_at",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float]
    units: Mapped[str] = mapped_column(String(100))
    valid_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the device measured it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatusReading(db.Model):
    __table_args__ = (
        Index("uq_status_reading_device_valid_at", "device_id", "valid_at", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    is_on: Mapped[bool]
    valid_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PollFailure(db.Model):
    """A poll that got no answer: kept so that gaps in the readings are explainable."""

    __table_args__ = (Index("ix_poll_failure_device_failed_at", "device_id", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    error: Mapped[str] = mapped_column(Text)


class Command(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id", ondelete="CASCADE"), index=True)
    is_on: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LocationRefresh(db.Model):
    """One fan-out poll of a location's devices, and the summary it ended with."""

    __table_args__ = (Index("ix_location_refresh_owner_location", "owner_id", "location"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    location: Mapped[str] = mapped_column(String(100))
    total: Mapped[int]
    polled: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the summary is made from the devices that answered, if some have not by then.
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    members: Mapped[list["RefreshMember"]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class RefreshMember(db.Model):
    """A device a refresh polls, and when its poll came back (None: not yet)."""

    refresh_id: Mapped[int] = mapped_column(
        ForeignKey("location_refresh.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[int] = mapped_column(
        ForeignKey("device.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
