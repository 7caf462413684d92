"""Location refreshes run through the job engine: written with the request, never lost."""

import uuid

import pytest
from flask.testing import FlaskClient

from devkit.waiting import wait_for
from tests.factories import create_device, user_headers

pytestmark = pytest.mark.usefixtures("worker", "beat")


def summary(client: FlaskClient, headers: dict, location: str) -> dict | None:
    refresh = client.get(f"/api/locations/{location}/summary", headers=headers).get_json()
    return refresh if refresh["state"] == "done" else None


def test_a_refresh_asked_for_while_the_broker_is_down_completes_when_it_is_back(
    broker_down_client: FlaskClient, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    broken_client = broker_down_client
    headers = user_headers(broken_client)
    shed = f"shed-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        create_device(
            broken_client, headers, location=shed, vendor_id=f"thermostat-{shed}-{i}", paused=True
        )
    started = broken_client.post(f"/api/locations/{shed}/refresh", headers=headers)
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["state"] == "running"
    assert "job(s) left for the promoter" in caplog.text

    # The promoter, on the real broker, sends the refresh's job: the fan-out runs.
    done = wait_for(lambda: summary(client, headers, shed), timeout=30, what="the summary")
    assert done["polled"] == 3 and done["total"] == 3
    assert done["summary"]["devices"] == 3 and done["summary"]["missing"] == []
    assert done["finished_at"] <= done["deadline_at"]
