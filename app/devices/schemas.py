from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import current_app

from app.database import MAX_ID
from app.devices.aggregates import BUCKETS, MAX_BUCKETS
from app.devices.polling import next_poll_at
from app.devices.readings import latest_attributes
from app.devices.vendors import vendor_names
from app.schemas import PageArgsSchema, TrimmedString, UTCDateTime, not_in_the_past, page_of

MAX_INTERVAL = 7 * 24 * 3600
MAX_READINGS = 1000
STRICT_BOOLEAN = {"truthy": {True}, "falsy": {False}}


def _text(required: bool = False) -> TrimmedString:
    return TrimmedString(required=required, validate=ma.validate.Length(min=1, max=100))


def interval_in_range(value: int) -> None:
    minimum = current_app.config["DEVICE_MIN_INTERVAL"]
    if not minimum <= value <= MAX_INTERVAL:
        raise ma.ValidationError(f"Poll every {minimum} to {MAX_INTERVAL} seconds.")


def _interval(**kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=interval_in_range,
        metadata={"description": "Seconds between polls (at least 5 by default)."},
        **kwargs,
    )


class DeviceCreateSchema(ma.Schema):
    name = _text(required=True)
    location = _text(required=True)
    vendor = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(vendor_names(), error="Unknown vendor: use one of {choices}."),
    )
    vendor_id = _text(required=True)
    interval = _interval(load_default=60)
    paused = ma.fields.Boolean(load_default=False, **STRICT_BOOLEAN)


class DeviceUpdateSchema(ma.Schema):
    name = _text()
    location = _text()
    interval = _interval()
    paused = ma.fields.Boolean(**STRICT_BOOLEAN)


class AttributeReadingSchema(ma.Schema):
    name = ma.fields.String()
    value = ma.fields.Float()
    units = ma.fields.String()
    valid_at = UTCDateTime()
    created_at = UTCDateTime()


class StatusReadingSchema(ma.Schema):
    is_on = ma.fields.Boolean()
    valid_at = UTCDateTime()
    created_at = UTCDateTime()


class PollFailureSchema(ma.Schema):
    failed_at = UTCDateTime()
    error = ma.fields.String()


class DeviceSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    location = ma.fields.String()
    vendor = ma.fields.String()
    vendor_id = ma.fields.String()
    interval = ma.fields.Integer()
    paused = ma.fields.Boolean()
    created_at = UTCDateTime()
    online = ma.fields.Function(lambda device: device.online)
    is_on = ma.fields.Boolean(allow_none=True)
    last_seen_at = UTCDateTime(allow_none=True)
    last_polled_at = UTCDateTime(allow_none=True)
    consecutive_failures = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)


class DeviceDetailSchema(DeviceSchema):
    next_poll_at = ma.fields.Function(
        lambda device: UTCDateTime()._serialize(next_poll_at(device), None, None)
    )
    attributes = ma.fields.Function(
        lambda device: AttributeReadingSchema(many=True).dump(latest_attributes(device))
    )


class DeviceQueryArgsSchema(PageArgsSchema):
    location = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    online = ma.fields.Boolean()


class Cursor(ma.fields.Field):
    """Where a page of a time series ended: its last row's time and id (rows of one instant
    are told apart by id), as `2026-11-22T10:00:00.000000Z~41`."""

    default_error_messages = {"invalid": "Not a cursor: pass the `next_before` of a page."}

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        moment, row_id = value
        return f"{moment.astimezone(UTC).isoformat(timespec='microseconds')}~{row_id}"

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> tuple:
        if not isinstance(value, str) or len(value) > 64:
            raise self.make_error("invalid")
        moment, _, row_id = value.partition("~")
        try:
            parsed = datetime.fromisoformat(moment)
            number = int(row_id)
        except ValueError as exc:
            raise self.make_error("invalid") from exc
        if parsed.tzinfo is None or not 0 < number <= MAX_ID:
            raise self.make_error("invalid")
        return parsed.astimezone(UTC), number


class ReadingQueryArgsSchema(ma.Schema):
    since = UTCDateTime()
    until = UTCDateTime()
    before = Cursor(metadata={"description": "The `next_before` of the previous page."})
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=MAX_READINGS))

    @ma.validates_schema
    def since_before_until(self, data: dict, **kwargs: object) -> None:
        if "since" in data and "until" in data and data["since"] >= data["until"]:
            raise ma.ValidationError("since must be before until.", field_name="since")


class AttributeQueryArgsSchema(ReadingQueryArgsSchema):
    attribute = ma.fields.String(validate=ma.validate.Length(min=1, max=100))


class ObservationQueryArgsSchema(AttributeQueryArgsSchema):
    """The raw readings' arguments, or with `bucket` the aggregated form's."""

    bucket = ma.fields.String(
        validate=ma.validate.OneOf(BUCKETS, error="Unknown bucket: use one of {choices}."),
        metadata={
            "description": "Aggregate instead: min, max, mean and count of each attribute per "
            f"bucket of this width, over [from, to), at most {MAX_BUCKETS} buckets. Buckets "
            "start at UTC minutes, 5-minute marks, hours or midnights; empty ones are left "
            "out. Every stored value is numeric (non-numeric ones are refused when a poll is "
            "read), so every reading counts. Takes from and to, not since, until or before."
        },
    )
    start = UTCDateTime(data_key="from", metadata={"description": "With bucket: inclusive."})
    end = UTCDateTime(data_key="to", metadata={"description": "With bucket: exclusive."})

    @ma.validates_schema
    def bucket_takes_a_range(self, data: dict, **kwargs: object) -> None:
        """from and to with bucket, and none of since, until and before; neither without."""
        aggregated = "bucket" in data
        for field in ("start", "end"):
            name = self.fields[field].data_key
            if aggregated and field not in data:
                raise ma.ValidationError("Give the range to aggregate.", field_name=name)
            if not aggregated and field in data:
                raise ma.ValidationError(
                    "from and to go with bucket; raw readings take since and until.",
                    field_name=name,
                )
        if aggregated and (raw := [f for f in ("since", "until", "before") if f in data]):
            raise ma.ValidationError("With bucket, give the range as from and to.", raw[0])


def readings_page(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema)),
            "limit": ma.fields.Integer(),
            "next_before": Cursor(
                allow_none=True,
                metadata={
                    "type": "string",
                    "description": "Pass as `before` for the next, older page; null on the last.",
                },
            ),
        },
    )


class ObservationBucketSchema(ma.Schema):
    attribute = ma.fields.String()
    start = UTCDateTime(metadata={"description": "When the bucket starts (UTC)."})
    min = ma.fields.Float()
    max = ma.fields.Float()
    mean = ma.fields.Float()
    count = ma.fields.Integer(metadata={"description": "Readings in the bucket."})


class ObservationBucketsSchema(ma.Schema):
    bucket = ma.fields.String()
    start = UTCDateTime(data_key="from")
    end = UTCDateTime(data_key="to")
    items = ma.fields.List(
        ma.fields.Nested(ObservationBucketSchema),
        metadata={"description": "By attribute, then oldest bucket first."},
    )


AttributeReadingPageSchema = readings_page(AttributeReadingSchema)
StatusReadingPageSchema = readings_page(StatusReadingSchema)
PollFailurePageSchema = readings_page(PollFailureSchema)
DevicePageSchema = page_of(DeviceSchema)


class ScheduleSchema(ma.Schema):
    at = UTCDateTime(required=True, validate=not_in_the_past)


class CommandCreateSchema(ma.Schema):
    is_on = ma.fields.Boolean(required=True, **STRICT_BOOLEAN)


class LocationSchema(ma.Schema):
    location = ma.fields.String()
    devices = ma.fields.Integer()


class LocationRefreshSchema(ma.Schema):
    id = ma.fields.Integer()
    location = ma.fields.String()
    total = ma.fields.Integer()
    polled = ma.fields.Integer()
    started_at = UTCDateTime()
    deadline_at = UTCDateTime(
        metadata={"description": "When it is summarised from the devices that answered by then."}
    )
    finished_at = UTCDateTime(allow_none=True)
    state = ma.fields.Function(lambda refresh: "done" if refresh.finished_at else "running")
    summary = ma.fields.Dict(
        allow_none=True,
        metadata={
            "description": "Of the devices that answered: how many, how many online, the mean "
            "of each attribute; `missing` names those that had not answered by the deadline."
        },
    )
