"""A schedule run by a real worker and beat: each occurrence reaches the vendor exactly once."""

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.database import locked, utcnow
from app.devices.schedules.models import DeviceSchedule
from app.devices.schedules.planning import SCHEDULE
from app.extensions import db
from app.scheduling import service as scheduling
from devkit.fake_vendor import FakeVendor
from devkit.waiting import wait_for
from tests.factories import create_device, user_headers

pytestmark = pytest.mark.usefixtures("worker", "beat")


def bring_forward(app: Flask, schedule_id: int, *, at: datetime) -> None:
    """Make the schedule's next occurrence `at` (as if its rule said so), moving its job."""
    with app.app_context():
        schedule = locked(DeviceSchedule, schedule_id)
        job = scheduling.find_pending(kind=SCHEDULE, subject_id=schedule_id)
        schedule.next_at = at
        scheduling.reschedule(job, due_at=at)
        db.session.commit()


def test_every_minute_each_occurrence_reaches_the_vendor_once(
    app: Flask, client: FlaskClient, vendor: FakeVendor
) -> None:
    """Two near occurrences (each brought 2 s away), run by the promoter and the worker: two
    commands, one per occurrence, each planning the rule's next minute."""
    headers = user_headers(client)
    device = create_device(client, headers, vendor="http", vendor_id="heater-live", paused=True)
    url = f"/api/devices/{device['id']}/schedules"
    body = {"action": "switch_on", "cron": "* * * * *", "timezone": "Europe/Paris"}
    made = client.post(url, json=body, headers=headers).get_json()
    one = f"{url}/{made['id']}"
    near = (utcnow() + timedelta(seconds=2)).replace(microsecond=0)
    bring_forward(app, made["id"], at=near)

    def history() -> list[dict]:
        return client.get(one, headers=headers).get_json()["history"]

    first = wait_for(lambda: history(), timeout=15, what="the near occurrence")
    assert [(run["occurrence_at"], run["outcome"]) for run in first] == [
        (near.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "ran")
    ]
    wait_for(lambda: vendor.count("heater-live", "PUT") == 1, what="its command at the vendor")
    assert vendor.status["heater-live"] is True

    # The successor is planned at the rule's next minute; brought forward too, so that the
    # test waits seconds, not a minute, for a second occurrence.
    following = (near + timedelta(minutes=1)).replace(second=0)
    with app.app_context():
        planned = scheduling.find_pending(kind=SCHEDULE, subject_id=made["id"])
        assert planned is not None and planned.due_at == following
    second = (utcnow() + timedelta(seconds=2)).replace(microsecond=0)
    bring_forward(app, made["id"], at=second)
    runs = wait_for(
        lambda: len(runs := history()) == 2 and runs, timeout=15, what="the second occurrence"
    )
    assert runs[0]["occurrence_at"] == second.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    command_jobs = [run["job_id"] for run in runs]
    for job_id in command_jobs:
        wait_for(
            lambda j=job_id: (
                client.get(f"/api/jobs/{j}", headers=headers).get_json()["state"] == "succeeded"
            ),
            what=f"command job {job_id}",
        )
    assert vendor.count("heater-live", "PUT") == 2  # one per occurrence
    jobs = client.get(
        f"/api/jobs?kind=device.schedule&subject_id={made['id']}&per_page=100", headers=headers
    ).get_json()["items"]
    states = sorted(job["state"] for job in jobs)
    assert states.count("succeeded") == 2 and len(jobs) == 3  # and the third minute, planned
