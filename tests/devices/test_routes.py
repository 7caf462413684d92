"""The devices API without waiting for a worker: validation, ownership, schedule bookkeeping.

The session's worker may be running while these run (pytest orders tests around its session
fixtures), so nothing here depends on a poll not having run yet.
"""

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.database import utcnow
from app.devices.models import Device
from app.devices.polling import POLL
from app.devices.readings import PollOutcome, record
from app.devices.vendors.base import StatusReport
from app.extensions import db
from app.scheduling import registry, runner
from app.scheduling.models import Job
from app.scheduling.registry import JobKind, kind_of
from tests.factories import create_device, in_seconds, user_headers

NOW = "2026-03-01T12:00:00Z"
HOUR_AGO = "2026-03-01T11:00:00Z"


def test_register_schedules_the_first_poll(client: FlaskClient) -> None:
    headers = user_headers(client)
    response = client.post(
        "/api/devices",
        json={
            "name": " Hall plug ",
            "location": "home",
            "vendor": "simulated",
            "vendor_id": "plug-a",
        },
        headers=headers,
    )
    assert response.status_code == 201
    device = response.get_json()
    assert response.headers["Location"].endswith(f"/api/devices/{device['id']}")
    assert device["name"] == "Hall plug" and device["interval"] == 60
    assert device["online"] is False and device["last_seen_at"] is None
    jobs_url = f"/api/jobs?kind=device.poll&subject_id={device['id']}"
    jobs = client.get(jobs_url, headers=headers).get_json()
    first = min(jobs["items"], key=lambda job: job["id"])
    # The first poll goes at once; its successors are deferrable (held back under overload).
    assert first["deferrable"] is False and first["state"] != "scheduled"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": "10"}, "interval"),
        ({"interval": 10**9}, "interval"),
        ({"vendor": "acme"}, "vendor"),
        ({"vendor_id": ""}, "vendor_id"),
        ({"name": "x" * 101}, "name"),
        ({"location": None}, "location"),
        ({"paused": "yes"}, "paused"),
    ],
)
def test_invalid_device_is_422_naming_the_field(client: FlaskClient, changes, field) -> None:
    headers = user_headers(client)
    body = {"name": "d", "location": "l", "vendor": "simulated", "vendor_id": "v1", **changes}
    response = client.post("/api/devices", json=body, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_vendor_id_is_unique_per_vendor(client: FlaskClient) -> None:
    headers = user_headers(client)
    create_device(client, headers, vendor_id="plug-7")
    again = client.post(
        "/api/devices",
        json={"name": "d", "location": "l", "vendor": "simulated", "vendor_id": "plug-7"},
        headers=headers,
    )
    assert again.status_code == 409
    create_device(client, headers, vendor="http", vendor_id="plug-7")  # other vendor: fine


def test_devices_are_their_owners(client: FlaskClient) -> None:
    device = create_device(client, user_headers(client))
    other = user_headers(client)
    url = f"/api/devices/{device['id']}"
    assert client.get(url).status_code == 401
    for method, path, body in [
        ("get", url, None),
        ("patch", url, {"paused": True}),
        ("delete", url, None),
        ("get", f"{url}/observations", None),
        ("get", f"{url}/observations?bucket=1h&from={HOUR_AGO}&to={NOW}", None),
        ("get", f"{url}/statuses", None),
        ("get", f"{url}/failures", None),
        ("post", f"{url}/poll", None),
        ("post", f"{url}/schedule", {"at": in_seconds(60)}),
        ("post", f"{url}/commands", {"is_on": True}),
    ]:
        response = getattr(client, method)(path, json=body, headers=other)
        assert response.status_code == 403, (method, path)
    assert client.get("/api/devices", headers=other).get_json()["total"] == 0
    assert client.get("/api/devices/99999", headers=other).status_code == 404
    missing = f"/api/devices/99999/observations?bucket=1h&from={HOUR_AGO}&to={NOW}"
    assert client.get(missing, headers=other).status_code == 404


def test_list_filters_by_location(client: FlaskClient) -> None:
    headers = user_headers(client)
    create_device(client, headers, location="home", paused=True)
    create_device(client, headers, location="office", paused=True)
    page = client.get("/api/devices?location=office", headers=headers).get_json()
    assert [device["location"] for device in page["items"]] == ["office"]
    assert client.get("/api/devices?online=false", headers=headers).get_json()["total"] == 2
    assert client.get("/api/devices?online=maybe", headers=headers).status_code == 422
    locations = client.get("/api/locations", headers=headers).get_json()
    assert locations == [{"location": "home", "devices": 1}, {"location": "office", "devices": 1}]


def test_list_filters_by_online_state(private_app: Flask) -> None:
    client = private_app.test_client()
    headers = user_headers(client)
    made = {
        name: create_device(client, headers, name=name, paused=True)["id"]
        for name in ("answering", "failing", "never polled")
    }
    answered = PollOutcome(status=StatusReport(is_on=True, valid_at=utcnow()))
    failed = PollOutcome(error="vendor said no")
    with private_app.app_context():
        record(db.session.get(Device, made["answering"]), answered)
        failing = db.session.get(Device, made["failing"])
        for outcome in (answered, failed, failed, failed):  # offline after 3 failures
            record(failing, outcome)
        db.session.commit()

    def names(query: str) -> list[str]:
        page = client.get(f"/api/devices?{query}", headers=headers).get_json()
        return [device["name"] for device in page["items"]]

    assert names("online=true") == ["answering"]
    assert names("online=false") == ["failing", "never polled"]
    assert names("") == ["answering", "failing", "never polled"]
    shown = client.get(f"/api/devices/{made['answering']}", headers=headers).get_json()
    assert shown["online"] is True and shown["is_on"] is True


def test_list_is_paginated_by_name(client: FlaskClient) -> None:
    headers = user_headers(client)
    for name in ("e", "c", "a", "d", "b"):
        create_device(client, headers, name=name, paused=True)

    def page(query: str) -> dict:
        response = client.get(f"/api/devices?{query}", headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    first = page("per_page=2")
    assert [device["name"] for device in first["items"]] == ["a", "b"]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 5, 3)
    assert [device["name"] for device in page("per_page=2&page=3")["items"]] == ["e"]
    beyond = page("per_page=2&page=4")
    assert beyond["items"] == [] and beyond["total"] == 5
    assert [device["name"] for device in page("")["items"]] == ["a", "b", "c", "d", "e"]
    assert page("")["per_page"] == 20
    for bad in ("per_page=0", "per_page=101", "page=0"):
        assert client.get(f"/api/devices?{bad}", headers=headers).status_code == 422, bad


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=-1", "limit"),
        ("limit=100000", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-01-01T00:00:00", "until"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("before=2026-01-01T00:00:00Z", "before"),
        ("before=2026-01-01T00:00:00~7", "before"),
        ("before=2026-01-01T00:00:00Z~-1", "before"),
        ("before=yesterday~x", "before"),
    ],
)
def test_bad_reading_queries_are_422(client: FlaskClient, query: str, field: str) -> None:
    headers = user_headers(client)
    device = create_device(client, headers)
    response = client.get(f"/api/devices/{device['id']}/observations?{query}", headers=headers)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


@pytest.mark.parametrize(
    ("query", "field", "reason"),
    [
        ("bucket=2m&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", "bucket", "Unknown"),
        ("bucket=1h&from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "from", "before to"),
        ("bucket=1h&from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z", "from", "before to"),
        # 1,441 minutes; a day of minutes (1,440) would be too, 1,000 is the most.
        ("bucket=1m&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:01Z", "to", "1441 buckets"),
        ("bucket=1d&from=2026-03-01T00:00:00Z&to=2029-01-01T00:00:00Z", "to", "at most 1000"),
        ("bucket=1h&from=yesterday&to=2026-03-02T00:00:00Z", "from", "Not a valid"),
        ("bucket=1h&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00", "to", "no UTC offset"),
        ("bucket=1h&to=2026-03-02T00:00:00Z", "from", "Give the range"),
        ("bucket=1h&from=2026-03-01T00:00:00Z", "to", "Give the range"),
        (
            "bucket=1h&from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&since=2026-03-01T00:00:00Z",
            "since",
            "from and to",
        ),
        ("from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z", "from", "go with bucket"),
    ],
)
def test_bad_bucket_queries_are_422(
    client: FlaskClient, query: str, field: str, reason: str
) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    response = client.get(f"/api/devices/{device['id']}/observations?{query}", headers=headers)
    body = response.get_json()
    assert response.status_code == 422 and body["code"] == 422, body
    assert list(body["errors"]) == [field] and reason in body["errors"][field][0], body
    assert body["message"] == f"Some fields are invalid: {field}"


def test_a_thousand_buckets_are_allowed(client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    # 1,000 minutes, the first starting at 10:00:30: the range touches 1,000 minute buckets.
    url = f"/api/devices/{device['id']}/observations?bucket=1m"
    query = "&from=2026-03-01T10:00:30Z&to=2026-03-02T02:40:00Z"
    response = client.get(url + query, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["items"] == []
    late = "&from=2026-03-01T10:00:30Z&to=2026-03-02T02:40:00.000001Z"
    assert client.get(url + late, headers=headers).status_code == 422


def test_pause_cancels_the_pending_poll_and_resume_schedules_one(private_app: Flask) -> None:
    # No worker here: with one, the first poll may be running when the pause comes, and a
    # running poll is not cancelled (it finishes, sees the pause and schedules no successor).
    client = private_app.test_client()
    headers = user_headers(client)
    device = create_device(client, headers, interval=3600)
    url = f"/api/devices/{device['id']}"
    jobs_url = f"/api/jobs?kind=device.poll&subject_id={device['id']}"
    paused = client.patch(url, json={"paused": True}, headers=headers).get_json()
    assert paused["paused"] is True and paused["next_poll_at"] is None
    after_pause = client.get(jobs_url, headers=headers).get_json()["items"]
    assert not {job["state"] for job in after_pause} & {"scheduled", "queued"}
    assert "cancelled" in {job["state"] for job in after_pause}

    resumed = client.patch(url, json={"paused": False}, headers=headers).get_json()
    assert resumed["paused"] is False
    assert len(client.get(jobs_url, headers=headers).get_json()["items"]) == len(after_pause) + 1


@pytest.mark.parametrize(
    "meanwhile",
    [
        [("post", "/poll", None)],
        [("post", "/schedule", {"at": "later"})],
        [("patch", "", {"paused": True}), ("patch", "", {"paused": False})],
    ],
    ids=["poll-now", "schedule", "pause-resume"],
)
def test_a_poll_asked_for_while_one_runs_goes_on_alone(
    private_app: Flask, monkeypatch: pytest.MonkeyPatch, meanwhile: list
) -> None:
    """The running poll records its readings and leaves the schedule to the newer poll."""
    client = private_app.test_client()
    headers = user_headers(client)
    device = create_device(client, headers, interval=3600)
    url = f"/api/devices/{device['id']}"
    jobs_url = f"/api/jobs?kind=device.poll&subject_id={device['id']}"
    (first,) = client.get(jobs_url, headers=headers).get_json()["items"]
    poll = kind_of(POLL)

    def fetch_while_the_user_acts(device_id: int):
        outcome = poll.prepare(device_id)
        for method, path, body in meanwhile:
            if body == {"at": "later"}:
                body = {"at": in_seconds(600)}
            response = getattr(client, method)(url + path, json=body, headers=headers)
            assert response.status_code < 300, response.get_json()
        return outcome

    monkeypatch.setitem(
        registry._kinds, POLL, JobKind(run=poll.run, prepare=fetch_while_the_user_acts)
    )
    with private_app.app_context():
        token = db.session.get(Job, first["id"]).token
        db.session.rollback()
        runner.run(job_id=first["id"], token=token)

    jobs = {job["id"]: job for job in client.get(jobs_url, headers=headers).get_json()["items"]}
    assert jobs[first["id"]]["state"] == "succeeded"
    assert [job["state"] for job in jobs.values() if job["state"] != "succeeded"] in (
        ["queued"],
        ["scheduled"],
    ), jobs
    readings = client.get(f"{url}/statuses", headers=headers).get_json()["items"]
    assert len(readings) == 1


def test_poll_now_and_schedule_move_the_one_pending_poll(client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, interval=3600, paused=True)
    url = f"/api/devices/{device['id']}"
    later = client.post(f"{url}/schedule", json={"at": in_seconds(600)}, headers=headers)
    assert later.status_code == 202 and later.get_json()["state"] == "scheduled"
    now = client.post(f"{url}/poll", headers=headers)
    assert now.status_code == 202 and now.get_json()["id"] == later.get_json()["id"]
    assert (
        client.post(
            f"{url}/schedule", json={"at": "2001-01-01T00:00:00Z"}, headers=headers
        ).status_code
        == 422
    )


def test_delete_cancels_the_devices_jobs(client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, interval=3600, paused=True)
    url = f"/api/devices/{device['id']}"
    job = client.post(f"{url}/schedule", json={"at": in_seconds(600)}, headers=headers).get_json()
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).get_json()["state"] == "cancelled"


def test_refresh_of_an_unknown_location_is_404(client: FlaskClient) -> None:
    headers = user_headers(client)
    assert client.post("/api/locations/nowhere/refresh", headers=headers).status_code == 404
    assert client.get("/api/locations/nowhere/summary", headers=headers).status_code == 404
