"""The schedules API: private to the device's owner, next runs in UTC and local time, 422s
naming the field, and the jobs it plans visible in /api/jobs."""

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import create_device, user_headers

WEEKDAYS_7 = {"action": "switch_on", "cron": "0 7 * * 1-5", "timezone": "Europe/Paris"}


def schedules_url(device_id: int) -> str:
    return f"/api/devices/{device_id}/schedules"


def add(client: FlaskClient, headers: dict, device_id: int, **fields: object) -> dict:
    response = client.post(schedules_url(device_id), json={**WEEKDAYS_7, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def schedule_jobs(client: FlaskClient, headers: dict, schedule_id: int) -> list[dict]:
    url = f"/api/jobs?kind=device.schedule&subject_id={schedule_id}&per_page=100"
    return client.get(url, headers=headers).get_json()["items"]


@pytest.fixture
def owner(client: FlaskClient) -> tuple[dict, int]:
    headers = user_headers(client)
    return headers, create_device(client, headers, paused=True)["id"]


def test_a_new_schedule_shows_its_next_runs_and_plans_one_job(
    client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    response = client.post(schedules_url(device_id), json=WEEKDAYS_7, headers=headers)
    assert response.status_code == 201
    made = response.get_json()
    assert response.headers["Location"].endswith(f"/schedules/{made['id']}")
    assert (made["nonexistent"], made["ambiguous"], made["missed"]) == ("shift", "first", "skip")
    assert len(made["next_runs"]) == 5
    for run in made["next_runs"]:
        assert run["at"].endswith("Z")
        assert run["local"][11:19] == "07:00:00" and run["local"][-6:] in ("+01:00", "+02:00")

    jobs = schedule_jobs(client, headers, made["id"])
    assert [(job["state"], job["subject_id"]) for job in jobs] == [("scheduled", made["id"])]
    assert jobs[0]["due_at"].replace(".000Z", "Z") == made["next_runs"][0]["at"]
    listed = client.get(schedules_url(device_id), headers=headers).get_json()["items"]
    assert [schedule["id"] for schedule in listed] == [made["id"]]


def test_runs_on_a_dst_day_in_utc_and_local_time(
    client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    made = add(client, headers, device_id, cron="30 2 * * *")
    url = f"{schedules_url(device_id)}/{made['id']}/runs?from=2027-03-27T00:00:00Z&count=3"
    assert client.get(url, headers=headers).get_json() == {
        "items": [
            {"at": "2027-03-27T01:30:00Z", "local": "2027-03-27T02:30:00+01:00"},
            {"at": "2027-03-28T01:00:00Z", "local": "2027-03-28T03:00:00+02:00"},
            {"at": "2027-03-29T00:30:00Z", "local": "2027-03-29T02:30:00+02:00"},
        ]
    }
    too_many = client.get(f"{url[: url.index('count=')]}count=101", headers=headers)
    assert too_many.status_code == 422 and "count" in too_many.get_json()["errors"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timezone": "Europe/Nowhere"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"cron": "0 0 31 2 *"}, "cron"),
        ({"cron": "0 7 * *"}, "cron"),
        ({"cron": "0 7 * * * *"}, "cron"),
        ({"action": "explode"}, "action"),
        ({"nonexistent": "later"}, "nonexistent"),
        ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "ends_at"),
        ({"ends_at": "2020-01-01T00:00:00Z"}, "ends_at"),
        ({"cron": 7}, "cron"),
        ({"paused": "yes"}, "paused"),
    ],
)
def test_bad_schedules_get_422_naming_the_field(
    client: FlaskClient, owner: tuple[dict, int], fields: dict, field: str
) -> None:
    headers, device_id = owner
    response = client.post(schedules_url(device_id), json={**WEEKDAYS_7, **fields}, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]


def test_a_rule_firing_more_often_than_the_minimum_interval_is_refused(
    app: Flask, client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    app.config["DEVICE_MIN_INTERVAL"] = 300
    response = client.post(
        schedules_url(device_id), json={**WEEKDAYS_7, "cron": "*/2 * * * *"}, headers=headers
    )
    assert response.status_code == 422 and "cron" in response.get_json()["errors"]
    add(client, headers, device_id, cron="*/5 * * * *")


def test_a_device_has_at_most_the_limit_of_schedules(
    app: Flask, client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    app.config["DEVICE_SCHEDULE_LIMIT"] = 2
    add(client, headers, device_id)
    add(client, headers, device_id)
    response = client.post(schedules_url(device_id), json=WEEKDAYS_7, headers=headers)
    assert response.status_code == 422 and "device_id" in response.get_json()["errors"]


def test_malformed_bodies_are_refused_like_everywhere(
    client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    url = schedules_url(device_id)
    broken = client.post(url, data="{", content_type="application/json", headers=headers)
    assert broken.status_code == 400
    assert client.post(url, data="x", content_type="text/plain", headers=headers).status_code == 415
    assert client.post(url, json=[1], headers=headers).status_code == 422


def test_schedules_are_private_to_the_device_owner(
    client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    made = add(client, headers, device_id)
    stranger = user_headers(client)
    their_device = create_device(client, stranger, paused=True)["id"]
    one = f"{schedules_url(device_id)}/{made['id']}"
    assert client.get(one, headers=stranger).status_code == 403
    assert client.patch(one, json={"paused": True}, headers=stranger).status_code == 403
    assert client.delete(one, headers=stranger).status_code == 403
    assert (
        client.post(schedules_url(device_id), json=WEEKDAYS_7, headers=stranger).status_code == 403
    )
    # Their own device, someone else's schedule id: there is no such schedule on it.
    assert (
        client.get(f"{schedules_url(their_device)}/{made['id']}", headers=stranger).status_code
        == 404
    )
    assert client.get(schedules_url(device_id)).status_code == 401


def test_pause_zone_change_and_delete_act_on_the_pending_job(
    client: FlaskClient, owner: tuple[dict, int]
) -> None:
    headers, device_id = owner
    made = add(client, headers, device_id)
    one = f"{schedules_url(device_id)}/{made['id']}"
    [planned] = schedule_jobs(client, headers, made["id"])

    moved = client.patch(one, json={"timezone": "Australia/Sydney"}, headers=headers).get_json()
    assert moved["next_runs"][0]["local"][-6:] in ("+10:00", "+11:00")
    [again] = schedule_jobs(client, headers, made["id"])
    assert again["id"] == planned["id"] and again["due_at"] != planned["due_at"]
    refused = client.delete(f"/api/jobs/{planned['id']}", headers=headers)
    assert refused.status_code == 409 and "paused" in refused.get_json()["message"]

    paused = client.patch(one, json={"paused": True}, headers=headers).get_json()
    assert paused["paused"] is True and paused["next_runs"] == []
    assert [job["state"] for job in schedule_jobs(client, headers, made["id"])] == ["cancelled"]

    client.patch(one, json={"paused": False}, headers=headers)
    states = sorted(job["state"] for job in schedule_jobs(client, headers, made["id"]))
    assert states == ["cancelled", "scheduled"]
    assert client.delete(one, headers=headers).status_code == 204
    assert client.get(one, headers=headers).status_code == 404
    states = [job["state"] for job in schedule_jobs(client, headers, made["id"])]
    assert states == ["cancelled", "cancelled"]
