"""What a vendor's JSON must say: a status and readings checked field by field, so a vendor
that breaks its contract is a recorded VendorError, never a crash or a bad row."""

import json
import math
from datetime import UTC, datetime
from typing import Any

from app.devices.vendors.base import AttributeReport, StatusReport, VendorError

MAX_ATTRIBUTES = 100
MAX_TEXT = 100
MAX_TIMESTAMP = 64


class _Invalid(Exception):
    """A payload field that breaks the vendor contract."""


def decode(content: bytes) -> Any:
    """The JSON document in the body."""
    try:
        return json.loads(content)
    # RecursionError: deeply nested arrays are valid JSON that the parser cannot take.
    except (ValueError, RecursionError) as error:
        raise VendorError("vendor sent invalid JSON") from error


def parse_status(payload: Any) -> StatusReport:
    """A StatusReport from {"is_on": bool, "valid_at": ISO}."""
    try:
        fields = _object(payload)
        is_on = fields.get("is_on")
        if not isinstance(is_on, bool):
            raise _Invalid("is_on must be a boolean")
        return StatusReport(is_on=is_on, valid_at=_timestamp(fields.get("valid_at")))
    except _Invalid as error:
        raise VendorError(f"vendor sent an invalid status: {error}") from None


def parse_attributes(payload: Any) -> list[AttributeReport]:
    """AttributeReports from {"attributes": [{"name", "value", "units", "valid_at"}, ...]}."""
    try:
        items = _object(payload).get("attributes")
        if not isinstance(items, list):
            raise _Invalid("attributes must be a list")
        if len(items) > MAX_ATTRIBUTES:
            raise _Invalid(f"more than {MAX_ATTRIBUTES} attributes")
        return [_attribute(index, item) for index, item in enumerate(items)]
    except _Invalid as error:
        raise VendorError(f"vendor sent invalid attributes: {error}") from None


def _attribute(index: int, item: Any) -> AttributeReport:
    """One AttributeReport, naming its position when it is invalid."""
    try:
        fields = _object(item)
        return AttributeReport(
            name=_text(fields.get("name"), "name"),
            value=_number(fields.get("value")),
            units=_text(fields.get("units"), "units", allow_empty=True),
            valid_at=_timestamp(fields.get("valid_at")),
        )
    except _Invalid as error:
        raise _Invalid(f"attribute {index}: {error}") from None


def _object(value: Any) -> dict[str, Any]:
    """The value as a JSON object."""
    if not isinstance(value, dict):
        raise _Invalid("expected a JSON object")
    return value


def _text(value: Any, field: str, allow_empty: bool = False) -> str:
    """A string of at most MAX_TEXT characters."""
    if not isinstance(value, str):
        raise _Invalid(f"{field} must be a string")
    if not value and not allow_empty:
        raise _Invalid(f"{field} must not be empty")
    if len(value) > MAX_TEXT:
        raise _Invalid(f"{field} is longer than {MAX_TEXT} characters")
    return value


def _number(value: Any) -> float:
    """A finite number; JSON true/false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("value must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid("value is out of range") from None
    if not math.isfinite(number):
        raise _Invalid("value must be finite")
    return number


def _timestamp(value: Any) -> datetime:
    """An aware UTC datetime from an ISO 8601 string that carries its offset."""
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP:
        raise _Invalid("valid_at must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"valid_at is not an ISO 8601 date-time: {value!r}") from None
    if moment.utcoffset() is None:
        raise _Invalid("valid_at must carry a UTC offset")
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _Invalid("valid_at is out of range") from None
