"""What every vendor client offers: a device's status, its readings, and an on/off command."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class VendorError(Exception):
    """The vendor could not answer (timeout, refusal, garbage): recorded, never a crash."""


@dataclass(frozen=True)
class DeviceRef:
    """What a vendor needs to know of a device; plain values, no database session."""

    vendor_id: str
    commanded_on: bool | None = None


@dataclass(frozen=True)
class StatusReport:
    is_on: bool
    valid_at: datetime


@dataclass(frozen=True)
class AttributeReport:
    name: str
    value: float
    units: str
    valid_at: datetime


class Vendor(Protocol):
    def get_status(self, device: DeviceRef) -> StatusReport: ...

    def get_attributes(self, device: DeviceRef) -> list[AttributeReport]: ...

    def read(self, device: DeviceRef) -> tuple[StatusReport, list[AttributeReport]]:
        """Status and readings, both: what a poll asks (concurrently where the vendor can)."""
        ...

    def set_status(self, device: DeviceRef, is_on: bool) -> None: ...
