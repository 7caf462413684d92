"""Polls closed by a real worker, on time, exactly once, whatever happens to their schedule."""

from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.scheduling.models import Job
from devkit.waiting import wait_for
from tests.factories import create_poll, in_seconds, user_headers

pytestmark = pytest.mark.usefixtures("worker", "beat")


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def jobs(client: FlaskClient, headers: dict, kind: str, poll_id: int) -> dict:
    url = f"/api/jobs?kind={kind}&subject_id={poll_id}"
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def close_job(client: FlaskClient, headers: dict, poll_id: int) -> dict:
    found = jobs(client, headers, "poll.close", poll_id)["items"]
    assert len(found) == 1, found
    return found[0]


def wait_closed(client: FlaskClient, poll_id: int, timeout: float = 20) -> dict:
    def closed() -> dict | None:
        poll = client.get(f"/api/polls/{poll_id}").get_json()
        return poll if poll["results"] is not None else None

    return wait_for(closed, timeout=timeout, what=f"poll {poll_id} to close with results")


def test_poll_closes_on_time_and_gets_results(client: FlaskClient) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=2, options=("Tea", "Coffee"))
    voter = user_headers(client)
    tea = poll["options"][0]["id"]
    vote = client.post(f"/api/polls/{poll['id']}/votes", json={"option_id": tea}, headers=voter)
    assert vote.status_code == 201

    closed = wait_closed(client, poll["id"])
    lateness = (parse(closed["closed_at"]) - parse(closed["close_date"])).total_seconds()
    assert 0 <= lateness < 2, lateness
    assert closed["results"]["winners"] == [tea]
    assert closed["results"]["options"][0]["share"] == 1.0

    job = close_job(client, owner, poll["id"])
    assert job["state"] == "succeeded" and job["attempts"] == 1
    assert 0 <= job["lateness"] < 2
    assert jobs(client, owner, "poll.results", poll["id"])["total"] == 1


def test_a_closed_polls_results_job_belongs_to_the_polls_owner(client: FlaskClient) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=3600)
    assert client.post(f"/api/polls/{poll['id']}/close", headers=owner).status_code == 200
    wait_closed(client, poll["id"], timeout=10)

    (results,) = jobs(client, owner, "poll.results", poll["id"])["items"]
    assert results["owner_id"] == client.get("/api/auth/me", headers=owner).get_json()["id"]
    assert results["state"] == "succeeded"
    assert client.get(f"/api/jobs/{results['id']}", headers=owner).status_code == 200
    # Another user, who may read the poll itself, sees none of its jobs.
    voter = user_headers(client)
    assert jobs(client, voter, "poll.results", poll["id"])["total"] == 0
    assert client.get(f"/api/jobs/{results['id']}", headers=voter).status_code == 403


def test_rescheduled_later_the_old_message_does_not_close_it(client: FlaskClient) -> None:
    owner = user_headers(client)
    # Within the 3 s horizon, so its message is sent at once; far enough that a slow machine
    # still moves it before it comes due (1.5 s was not, once, in a fresh-clone CI run).
    poll = create_poll(client, owner, closes_in=2.8)
    assert close_job(client, owner, poll["id"])["state"] == "queued"  # within the horizon: sent
    moved = client.patch(
        f"/api/polls/{poll['id']}", json={"close_date": in_seconds(6)}, headers=owner
    )
    assert moved.status_code == 200

    closed = wait_closed(client, poll["id"])
    assert parse(closed["closed_at"]) >= parse(moved.get_json()["close_date"])
    assert close_job(client, owner, poll["id"])["attempts"] == 1


def test_rescheduled_earlier_it_closes_at_the_new_date(client: FlaskClient) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=3600)
    moved = client.patch(
        f"/api/polls/{poll['id']}", json={"close_date": in_seconds(1)}, headers=owner
    ).get_json()

    closed = wait_closed(client, poll["id"])
    lateness = (parse(closed["closed_at"]) - parse(moved["close_date"])).total_seconds()
    assert 0 <= lateness < 2, lateness


def test_close_now(client: FlaskClient) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=3600)
    assert client.post(f"/api/polls/{poll['id']}/close", headers=owner).status_code == 200
    closed = wait_closed(client, poll["id"], timeout=10)
    assert closed["status"] == "closed"


def test_deleted_poll_cancels_its_job(client: FlaskClient) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=1)
    job = close_job(client, owner, poll["id"])
    assert client.delete(f"/api/polls/{poll['id']}", headers=owner).status_code == 204
    assert client.get(f"/api/polls/{poll['id']}").status_code == 404
    job_url = f"/api/jobs/{job['id']}"
    assert client.get(job_url, headers=owner).get_json()["state"] == "cancelled"

    # Its message still arrives; it must stay a no-op.
    other = create_poll(client, owner, closes_in=1.5)
    wait_closed(client, other["id"])
    assert client.get(job_url, headers=owner).get_json()["state"] == "cancelled"


def test_job_beyond_the_horizon_waits_in_the_database(client: FlaskClient) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=5)  # horizon is 3 s in the tests
    job = close_job(client, owner, poll["id"])
    assert job["state"] == "scheduled" and job["queued_at"] is None

    queued = wait_for(
        lambda: (j := close_job(client, owner, poll["id"]))["queued_at"] and j,
        timeout=10,
        what="the promoter to queue the job",
    )
    # Queued once it entered the 3 s horizon, not before (plus one promoter interval of slack).
    assert parse(queued["queued_at"]) >= parse(queued["due_at"]) - timedelta(seconds=3.5)
    closed = wait_closed(client, poll["id"])
    assert (parse(closed["closed_at"]) - parse(closed["close_date"])).total_seconds() < 2


def test_broker_down_when_creating_still_closes_on_time(
    broker_down_client: FlaskClient, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    broken_client = broker_down_client
    owner = user_headers(broken_client)
    poll = create_poll(broken_client, owner, closes_in=2)
    # Its job went back to the promoter (not its state: the promoter, every 0.5 s here, may
    # already have sent it again).
    assert "1 job(s) left for the promoter" in caplog.text

    closed = wait_closed(client, poll["id"])
    lateness = (parse(closed["closed_at"]) - parse(closed["close_date"])).total_seconds()
    assert 0 <= lateness < 2, lateness


def test_redelivered_close_message_is_a_no_op(app: Flask, client: FlaskClient, worker) -> None:
    owner = user_headers(client)
    poll = create_poll(client, owner, closes_in=1)
    closed = wait_closed(client, poll["id"])
    job = close_job(client, owner, poll["id"])
    with app.app_context():
        token = db.session.get(Job, job["id"]).token
        celery = app.extensions["celery"]
        for _ in range(2):  # the broker delivers the same message again, twice
            celery.send_task("scheduling.run_job", args=(job["id"], token))

    def ignored_twice() -> bool:
        return worker.log().count(f"job {job['id']} is succeeded: duplicate message ignored") >= 2

    wait_for(ignored_twice, timeout=10, what="the worker to ignore both duplicates")
    again = client.get(f"/api/polls/{poll['id']}").get_json()
    assert again["closed_at"] == closed["closed_at"]
    assert again["results_computed_at"] == closed["results_computed_at"]
    assert close_job(client, owner, poll["id"])["attempts"] == 1
    assert jobs(client, owner, "poll.results", poll["id"])["total"] == 1
