from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from app.devices.schedules import occurrences
from app.devices.schedules.execution import history
from app.devices.schedules.models import ACTIONS, MISSED, DeviceSchedule
from app.devices.schedules.service import next_runs
from app.schemas import TrimmedString, UTCDateTime

NEXT_RUNS = 5
MAX_RUNS = 100
RUNS = ("next_runs", "history")
STRICT_BOOLEAN = {"truthy": {True}, "falsy": {False}}


def one_of(choices: tuple[str, ...]) -> ma.validate.OneOf:
    return ma.validate.OneOf(choices, error="Use one of {choices}.")


def valid_cron(value: str) -> None:
    try:
        occurrences.check_cron(value)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


def known_zone(value: str) -> None:
    try:
        occurrences.zone(value)
    except ValueError as exc:
        raise ma.ValidationError(str(exc)) from None


def occurrence(at: datetime, timezone: str) -> dict[str, str]:
    """An occurrence as the API shows it: in UTC with Z, and in the schedule's local time."""
    return {
        "at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "local": occurrences.local(at, timezone).isoformat(),
    }


def _action(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=one_of(ACTIONS), **kwargs)


def _cron(**kwargs: Any) -> TrimmedString:
    return TrimmedString(
        validate=[ma.validate.Length(min=1, max=100), valid_cron],
        metadata={"description": "5 fields, read in the zone's wall-clock time: 0 7 * * 1-5."},
        **kwargs,
    )


def _zone(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=[ma.validate.Length(min=1, max=64), known_zone],
        metadata={"description": "An IANA time zone: Europe/Paris."},
        **kwargs,
    )


class DeviceScheduleUpdateSchema(ma.Schema):
    action = _action()
    cron = _cron()
    timezone = _zone()
    starts_at = UTCDateTime(allow_none=True)
    ends_at = UTCDateTime(allow_none=True)
    paused = ma.fields.Boolean(**STRICT_BOOLEAN)
    nonexistent = ma.fields.String(
        validate=one_of(occurrences.NONEXISTENT),
        metadata={
            "description": "A local time skipped by the clock: run at the gap's end "
            "(shift) or not at all (skip)."
        },
    )
    ambiguous = ma.fields.String(
        validate=one_of(occurrences.AMBIGUOUS),
        metadata={"description": "A local time shown twice: run at the first or at both."},
    )
    missed = ma.fields.String(
        validate=one_of(MISSED),
        metadata={
            "description": "Occurrences missed while the service was down: skip them, "
            "or run the latest once."
        },
    )

    @ma.validates_schema
    def ends_after_start(self, data: dict, **kwargs: object) -> None:
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            raise ma.ValidationError("The schedule must end after it starts.", "ends_at")


class DeviceScheduleCreateSchema(DeviceScheduleUpdateSchema):
    action = _action(required=True)
    cron = _cron(required=True)
    timezone = _zone(required=True)


class OccurrenceSchema(ma.Schema):
    at = ma.fields.String(metadata={"description": "In UTC: 2027-03-28T01:00:00Z."})
    local = ma.fields.String(metadata={"description": "Local: 2027-03-28T03:00:00+02:00."})


class OccurrencesSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OccurrenceSchema))


class ScheduleRunSchema(ma.Schema):
    occurrence_at = UTCDateTime()
    outcome = ma.fields.String(metadata={"description": "ran, caught_up or skipped."})
    job_id = ma.fields.Integer(allow_none=True)


class DeviceScheduleSchema(ma.Schema):
    id = ma.fields.Integer()
    device_id = ma.fields.Integer()
    action = ma.fields.String()
    cron = ma.fields.String()
    timezone = ma.fields.String()
    starts_at = UTCDateTime(allow_none=True)
    ends_at = UTCDateTime(allow_none=True)
    paused = ma.fields.Boolean()
    nonexistent = ma.fields.String()
    ambiguous = ma.fields.String()
    missed = ma.fields.String()
    skipped_count = ma.fields.Integer()
    last_run_at = UTCDateTime(allow_none=True)
    created_at = UTCDateTime()
    next_runs = ma.fields.List(
        ma.fields.Nested(OccurrenceSchema),
        metadata={"description": f"The next {NEXT_RUNS} occurrences (none while paused)."},
    )
    history = ma.fields.List(
        ma.fields.Nested(ScheduleRunSchema),
        metadata={"description": "The latest occurrences run, caught up or skipped."},
    )

    @ma.pre_dump
    def add_runs(self, schedule: DeviceSchedule, **kwargs: Any) -> dict[str, Any]:
        fields = {name: getattr(schedule, name) for name in self.fields if name not in RUNS}
        start = datetime.now(UTC)
        upcoming = [] if schedule.paused else next_runs(schedule, start=start, count=NEXT_RUNS)
        fields["next_runs"] = [occurrence(at, schedule.timezone) for at in upcoming]
        fields["history"] = history(schedule)
        return fields


class DeviceScheduleListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DeviceScheduleSchema))


class RunsArgsSchema(ma.Schema):
    start = UTCDateTime(data_key="from", metadata={"description": "Inclusive; now by default."})
    count = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=MAX_RUNS))
