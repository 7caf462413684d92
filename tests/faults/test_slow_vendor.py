"""Devices on a vendor that answers in 250 ms, run as `make run` runs them: a prefork worker for
closes and the promoter, a worker on the threads pool for vendor I/O, on SQLite and the
filesystem broker. Polls keep their schedule, a device that hangs costs only its own polls,
and a command does not wait behind the polls."""

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from app import create_app
from app.database import utcnow
from app.devices.models import Device
from app.extensions import db
from app.scheduling.models import Job, JobState
from devkit import processes
from devkit.fake_vendor import FakeVendor
from devkit.waiting import wait_for
from tests.factories import create_device, user_headers
from tests.faults.fleet import Fleet, embedded_stack
from tests.stacks import Stack

DEVICES = 12
INTERVAL = 2  # seconds: 6 polls a second, 12 requests of 250 ms each
DELAY = 0.25
WINDOW = 10.0  # seconds measured, after the first round


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    with FakeVendor(delay=DELAY) as fake:
        yield fake


@pytest.fixture
def embedded(tmp_path: Path, vendor: FakeVendor) -> Stack:
    return embedded_stack(tmp_path / "embedded", VENDOR_HTTP_BASE_URL=vendor.url)


@pytest.fixture
def embedded_app(embedded: Stack) -> Iterator[Flask]:
    app = create_app(embedded.config())
    yield app
    with app.app_context():
        db.engine.dispose()


def start_fleet(fleet: Fleet, stack: Stack, log_dir: Path) -> None:
    """The Procfile's worker, io and beat."""
    env = stack.env(LOG_CELERY_TASKS="1")
    fleet.started.append(processes.worker(env, log_dir, queues="celery,punctual.promoter"))
    fleet.started.append(processes.io_worker(env, log_dir, concurrency=16))
    fleet.beat()


def polls_due_between(app: Flask, start: datetime, end: datetime) -> dict[int, int]:
    """Successful polls per device among those due in [start, end)."""
    with app.app_context():
        rows = db.session.execute(
            select(Job.subject_id, func.count(Job.id))
            .where(
                Job.kind == "device.poll",
                Job.state == JobState.SUCCEEDED,
                Job.due_at >= start,
                Job.due_at < end,
            )
            .group_by(Job.subject_id)
        ).all()
        db.session.rollback()
    return dict(rows)


def test_slow_vendor_polls_keep_their_schedule_and_commands_do_not_wait(
    embedded: Stack,
    embedded_app: Flask,
    vendor: FakeVendor,
    tmp_path: Path,
    report: Callable[[str], None],
) -> None:
    client = embedded_app.test_client()
    headers = user_headers(client)
    vendor.set_behaviour("hanging-0", "slow", delay=5.0)  # past the 0.5 s read timeout
    ids = [
        create_device(client, headers, vendor="http", vendor_id=f"slow-{i}", interval=INTERVAL)[
            "id"
        ]
        for i in range(DEVICES)
    ]
    hanging = create_device(client, headers, vendor="http", vendor_id="hanging-0", interval=1)
    fleet = Fleet(embedded, tmp_path)
    try:
        start_fleet(fleet, embedded, tmp_path)
        start = utcnow() + timedelta(seconds=INTERVAL)  # the first round, at start-up, aside
        end = start + timedelta(seconds=WINDOW)
        wait_for(lambda: utcnow() > end, timeout=WINDOW + 10, what="the window to pass")
        command = client.post(
            f"/api/devices/{ids[0]}/commands", json={"is_on": True}, headers=headers
        ).get_json()

        def sent() -> dict | None:
            job = client.get(f"/api/jobs/{command['id']}", headers=headers).get_json()
            return job if job["state"] == "succeeded" else None

        command_job = wait_for(sent, timeout=10, what="the command")
        polls = polls_due_between(embedded_app, start, end)
    finally:
        for process in reversed(fleet.started):
            process.kill()
    expected = int(WINDOW / INTERVAL)
    counts = [polls.get(device_id, 0) for device_id in ids]
    with embedded_app.app_context():
        stuck = db.session.get(Device, hanging["id"])
        stuck_online = stuck.online
    report(
        f"{DEVICES} devices every {INTERVAL} s on a {DELAY} s vendor, {WINDOW} s: polls per "
        f"device {min(counts)}-{max(counts)} of {expected} expected ({sum(counts)} in all); "
        f"the hanging device failed {stuck.consecutive_failures} in a row; a command started "
        f"{command_job['lateness']:.3f} s after it was sent"
    )
    assert min(counts) >= expected - 1, counts
    assert stuck.consecutive_failures >= 1 and not stuck_online
    assert command_job["lateness"] < 1.0
