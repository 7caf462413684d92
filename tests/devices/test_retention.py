"""A device's readings kept for READING_RETENTION, on a private database no worker touches:
older rows go, but never a device's latest reading of an attribute nor its latest status."""

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.devices.models import AttributeReading, Device, PollFailure, StatusReading
from app.devices.readings import PollOutcome, record
from app.devices.schedules.models import ScheduleRun
from app.devices.vendors.base import AttributeReport, StatusReport
from app.extensions import db
from app.scheduling import retention
from tests.factories import create_device, user_headers

NOW = datetime.now(UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def poll(device_id: int, days: float, *, status: bool = True, **values: float) -> None:
    """Store a poll's answer measured `days` ago, as the poll job does."""
    at = days_ago(days)
    device = db.session.get(Device, device_id)
    record(
        device,
        PollOutcome(
            status=StatusReport(is_on=True, valid_at=at) if status else None,
            attributes=tuple(AttributeReport(name, v, "u", at) for name, v in values.items()),
        ),
    )
    db.session.commit()


def failed_poll(device_id: int, days: float) -> None:
    db.session.add(PollFailure(device_id=device_id, failed_at=days_ago(days), error="timeout"))
    db.session.commit()


def readings(device_id: int) -> set[tuple[str, float]]:
    rows = db.session.execute(
        select(AttributeReading.name, AttributeReading.valid_at).where(
            AttributeReading.device_id == device_id
        )
    )
    return {(name, round((NOW - at).total_seconds() / 86400)) for name, at in rows}


def statuses(device_id: int) -> list[float]:
    rows = db.session.execute(
        select(StatusReading.valid_at).where(StatusReading.device_id == device_id)
    ).scalars()
    return sorted(round((NOW - at).total_seconds() / 86400) for at in rows)


def failures(device_id: int) -> list[float]:
    rows = db.session.execute(
        select(PollFailure.failed_at).where(PollFailure.device_id == device_id)
    ).scalars()
    return sorted(round((NOW - at).total_seconds() / 86400) for at in rows)


@pytest.fixture
def devices(private_app: Flask) -> tuple[int, int]:
    private_app.config.update(READING_RETENTION=30 * 24 * 3600, RETENTION_BATCH_SIZE=2)
    client: FlaskClient = private_app.test_client()
    headers = user_headers(client)
    first = create_device(client, headers, paused=True)["id"]
    second = create_device(client, headers, paused=True)["id"]
    with private_app.app_context():
        for days in (40, 39, 38, 1):
            poll(first, days, temperature=20 + days)
        poll(first, 45, status=False, humidity=50)  # its only humidity: the latest, if old
        failed_poll(first, 41)
        failed_poll(first, 2)
        for days in (60, 50):  # a device silent for 50 days keeps what it last said
            poll(second, days, temperature=days)
    with private_app.app_context():
        yield first, second


def test_old_readings_go_but_each_latest_stays(devices: tuple[int, int]) -> None:
    first, second = devices
    result = retention.prune(names=["readings"])
    assert result == {"readings": {"attribute_reading": 4, "status_reading": 4, "poll_failure": 1}}
    assert readings(first) == {("temperature", 1), ("humidity", 45)}
    assert statuses(first) == [1]
    assert failures(first) == [2]
    assert readings(second) == {("temperature", 50)}
    assert statuses(second) == [50]


def test_a_dry_run_counts_what_would_go(devices: tuple[int, int]) -> None:
    first, _ = devices
    before = readings(first)
    dry = retention.prune(names=["readings"], dry_run=True)
    assert readings(first) == before and len(statuses(first)) == 4
    assert dry == retention.prune(names=["readings"])


def test_a_retention_of_zero_keeps_readings_forever(
    private_app: Flask, devices: tuple[int, int]
) -> None:
    private_app.config["READING_RETENTION"] = 0
    assert retention.prune(names=["readings"]) == {"readings": {}}
    assert len(readings(devices[0])) == 5


def test_a_schedules_old_occurrences_go(private_app: Flask) -> None:
    private_app.config.update(SCHEDULE_HISTORY_RETENTION=30 * 24 * 3600, RETENTION_BATCH_SIZE=2)
    client: FlaskClient = private_app.test_client()
    headers = user_headers(client)
    device_id = create_device(client, headers, paused=True)["id"]
    body = {"action": "poll", "cron": "0 7 * * *", "timezone": "Europe/Paris"}
    schedule_id = client.post(
        f"/api/devices/{device_id}/schedules", json=body, headers=headers
    ).get_json()["id"]
    with private_app.app_context():
        for days, outcome in ((45, "ran"), (40, "skipped"), (31, "caught_up"), (2, "ran")):
            db.session.add(
                ScheduleRun(schedule_id=schedule_id, occurrence_at=days_ago(days), outcome=outcome)
            )
        db.session.commit()
        assert retention.prune(names=["schedule_runs"], dry_run=True) == {
            "schedule_runs": {"schedule_run": 3}
        }
        assert retention.prune(names=["schedule_runs"]) == {"schedule_runs": {"schedule_run": 3}}
        left = db.session.execute(select(ScheduleRun.outcome)).scalars().all()
        assert left == ["ran"]
