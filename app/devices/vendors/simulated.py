"""A built-in vendor whose devices answer from a formula of their vendor id and the time.

`thermostat-...` devices report a temperature curve and humidity, `plug-...` devices the power
they draw (none when off); any other id reports a temperature. An id containing `offline` never
answers, to show what a failing device looks like. A device follows the last command sent to it.
"""

import hashlib
import math
from datetime import UTC, datetime

from app.devices.vendors.base import AttributeReport, DeviceRef, StatusReport, VendorError

PERIOD = 600.0  # seconds of one simulated daily cycle


def _phase(vendor_id: str) -> float:
    digest = hashlib.sha256(vendor_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class SimulatedVendor:
    def _check(self, device: DeviceRef) -> None:
        if "offline" in device.vendor_id:
            raise VendorError("simulated device is unreachable")

    def _is_on(self, device: DeviceRef, at: datetime) -> bool:
        if device.commanded_on is not None:
            return device.commanded_on
        return (at.timestamp() / PERIOD + _phase(device.vendor_id)) % 1 < 0.5

    def get_status(self, device: DeviceRef) -> StatusReport:
        self._check(device)
        at = _now()
        return StatusReport(is_on=self._is_on(device, at), valid_at=at)

    def get_attributes(self, device: DeviceRef) -> list[AttributeReport]:
        self._check(device)
        at = _now()
        angle = 2 * math.pi * (at.timestamp() / PERIOD + _phase(device.vendor_id))
        if device.vendor_id.startswith("plug"):
            watts = 60 + 40 * math.sin(angle) if self._is_on(device, at) else 0.0
            return [AttributeReport("power", round(watts, 2), "W", at)]
        readings = [AttributeReport("temperature", round(21 + 3 * math.sin(angle), 2), "°C", at)]
        if device.vendor_id.startswith("thermostat"):
            humidity = round(45 + 10 * math.cos(angle), 1)
            readings.append(AttributeReport("humidity", humidity, "%", at))
        return readings

    def read(self, device: DeviceRef) -> tuple[StatusReport, list[AttributeReport]]:
        return self.get_status(device), self.get_attributes(device)

    def set_status(self, device: DeviceRef, is_on: bool) -> None:
        self._check(device)
