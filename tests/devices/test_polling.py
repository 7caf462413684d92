"""Devices polled by a real worker: on a grid, paused, deleted, failing, coalesced, fanned out."""

import itertools
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from devkit.fake_vendor import FakeVendor
from devkit.waiting import wait_for
from tests.factories import create_device, user_headers

pytestmark = pytest.mark.usefixtures("worker", "beat")


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def poll_jobs(
    client: FlaskClient, headers: dict, device_id: int, state: str | None = None
) -> list[dict]:
    query = f"/api/jobs?kind=device.poll&subject_id={device_id}&per_page=100"
    query += f"&state={state}" if state else ""
    jobs = client.get(query, headers=headers).get_json()["items"]
    return sorted(jobs, key=lambda job: job["due_at"])


def job_now(client: FlaskClient, headers: dict, job_id: int) -> dict:
    return client.get(f"/api/jobs/{job_id}", headers=headers).get_json()


def observations(client: FlaskClient, headers: dict, device_id: int) -> list[dict]:
    url = f"/api/devices/{device_id}/observations?limit=1000"
    return client.get(url, headers=headers).get_json()["items"]


def device(client: FlaskClient, headers: dict, device_id: int) -> dict:
    return client.get(f"/api/devices/{device_id}", headers=headers).get_json()


def test_polls_every_interval_on_a_grid_that_does_not_drift(client: FlaskClient) -> None:
    headers = user_headers(client)
    made = create_device(client, headers, interval=2, vendor_id="thermostat-grid")

    done = wait_for(
        lambda: len(jobs := poll_jobs(client, headers, made["id"], "succeeded")) >= 3 and jobs,
        timeout=20,
        what="three polls",
    )
    dues = [parse(job["due_at"]) for job in done]
    gaps = [later - earlier for earlier, later in itertools.pairwise(dues)]
    assert gaps == [timedelta(seconds=2)] * len(gaps)
    assert all(0 <= job["lateness"] < 1.5 for job in done), [job["lateness"] for job in done]
    pending = [
        job
        for job in poll_jobs(client, headers, made["id"])
        if job["state"] in ("scheduled", "queued", "running")
    ]
    assert len(pending) <= 1

    shown = device(client, headers, made["id"])
    assert shown["online"] is True and shown["last_seen_at"]
    assert {reading["name"] for reading in shown["attributes"]} == {"temperature", "humidity"}
    assert len(observations(client, headers, made["id"])) >= 6


def test_pause_stops_polling_and_delete_cancels(client: FlaskClient) -> None:
    headers = user_headers(client)
    made = create_device(client, headers, interval=1, vendor_id="plug-pause")
    url = f"/api/devices/{made['id']}"
    wait_for(
        lambda: poll_jobs(client, headers, made["id"], "succeeded"), timeout=10, what="a first poll"
    )

    assert client.patch(url, json={"paused": True}, headers=headers).status_code == 200

    def settled() -> bool:
        states = {job["state"] for job in poll_jobs(client, headers, made["id"])}
        return not states & {"scheduled", "queued", "running"}

    # Nothing pending, queued or running: nothing is left that could poll it.
    wait_for(settled, timeout=10, what="no poll left pending after pausing")
    assert device(client, headers, made["id"])["next_poll_at"] is None

    assert client.patch(url, json={"paused": False}, headers=headers).status_code == 200
    assert client.delete(url, headers=headers).status_code == 204
    wait_for(settled, timeout=10, what="the deleted device's poll to be cancelled")


def test_command_reaches_the_vendor_and_the_next_poll_confirms(
    client: FlaskClient, vendor: FakeVendor
) -> None:
    headers = user_headers(client)
    made = create_device(client, headers, vendor="http", vendor_id="lamp-1", interval=3600)
    wait_for(lambda: device(client, headers, made["id"])["last_seen_at"], what="a first poll")
    assert device(client, headers, made["id"])["is_on"] is False

    job = client.post(
        f"/api/devices/{made['id']}/commands", json={"is_on": True}, headers=headers
    ).get_json()
    done = wait_for(
        lambda: (j := job_now(client, headers, job["id"]))["state"] == "succeeded" and j,
        what="the command's job",
    )
    assert done["attempts"] == 1 and vendor.status["lamp-1"] is True
    wait_for(
        lambda: device(client, headers, made["id"])["is_on"] is True, what="the confirming poll"
    )


def test_command_refused_by_the_vendor_shows_its_error(
    client: FlaskClient, vendor: FakeVendor, app: Flask
) -> None:
    headers = user_headers(client)
    made = create_device(client, headers, vendor="http", vendor_id="lamp-404", paused=True)
    vendor.set_behaviour("lamp-404", "404")
    job = client.post(
        f"/api/devices/{made['id']}/commands", json={"is_on": True}, headers=headers
    ).get_json()
    failed = wait_for(
        lambda: (j := job_now(client, headers, job["id"]))["state"] == "failed" and j,
        timeout=30,
        what="the command to fail for good",
    )
    assert "404" in failed["last_error"]


def test_failing_vendor_is_recorded_and_the_device_goes_offline(
    client: FlaskClient, vendor: FakeVendor
) -> None:
    headers = user_headers(client)
    vendor.set_behaviour("slow-1", "slow", delay=2)
    vendor.set_behaviour("broken-1", "error500")
    vendor.set_behaviour("missing-1", "404")
    vendor.set_behaviour("garbage-1", "garbage")
    ids = {
        name: create_device(client, headers, vendor="http", vendor_id=name, interval=1)["id"]
        for name in ("slow-1", "broken-1", "missing-1", "garbage-1")
    }
    healthy = create_device(client, headers, vendor="simulated", vendor_id="plug-fine", interval=1)

    def offline(device_id: int) -> bool:
        shown = device(client, headers, device_id)
        return shown["consecutive_failures"] >= 3 and not shown["online"]

    for name, device_id in ids.items():
        wait_for(lambda d=device_id: offline(d), timeout=60, what=f"{name} to go offline")
    errors = {
        name: device(client, headers, device_id)["last_error"] for name, device_id in ids.items()
    }
    assert "timed out" in errors["slow-1"]
    assert "500" in errors["broken-1"] or "503" in errors["broken-1"]
    assert "404" in errors["missing-1"]
    assert "JSON" in errors["garbage-1"]
    # 5xx and timeouts are retried (3 requests a poll); a 404 is not (1 request a poll).
    assert vendor.count("broken-1") % 3 == 0 or vendor.count("broken-1") >= 9
    assert (
        vendor.count("missing-1")
        <= device(client, headers, ids["missing-1"])["consecutive_failures"] * 2
    )
    # A failing vendor does not hold up the others.
    assert device(client, headers, healthy["id"])["online"] is True


def test_location_refresh_runs_as_a_chord_and_stores_one_summary(client: FlaskClient) -> None:
    headers = user_headers(client)
    for i in range(20):
        kind = "plug" if i % 2 else "thermostat"
        create_device(client, headers, location="lab", vendor_id=f"{kind}-lab-{i}", paused=True)
    started = client.post("/api/locations/lab/refresh", headers=headers)
    assert started.status_code == 202
    assert started.get_json()["total"] == 20

    def summarised() -> dict | None:
        summary = client.get("/api/locations/lab/summary", headers=headers).get_json()
        return summary if summary["state"] == "done" else None

    done = wait_for(summarised, timeout=60, what="the chord's summary")
    assert done["polled"] == 20 and done["summary"]["devices"] == 20
    assert done["summary"]["online"] == 20
    names = {attribute["name"]: attribute for attribute in done["summary"]["attributes"]}
    assert set(names) == {"temperature", "humidity", "power"}
    assert names["temperature"]["devices"] == 10
