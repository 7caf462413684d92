"""The jobs API: each user's own jobs, listed with filters and pages, and who may cancel which.

Each test runs on a private database that no worker or promoter touches, so it knows every
job there is and none of them runs or moves behind its back.
"""

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.database import utcnow
from app.extensions import db
from app.scheduling import service as scheduling
from app.scheduling.models import Job, JobState
from tests.factories import create_device, create_poll, user_headers
from tests.plans import job_scans, job_statements, plans, unbounded


@pytest.fixture
def client(private_app: Flask) -> FlaskClient:
    return private_app.test_client()


@pytest.fixture
def headers(client: FlaskClient) -> dict[str, str]:
    return user_headers(client)


def user_id(client: FlaskClient, headers: dict[str, str]) -> int:
    return client.get("/api/auth/me", headers=headers).get_json()["id"]


def make_jobs(
    app: Flask, states: list[JobState], *, owner_id: int | None, kind: str = "test.listed"
) -> list[int]:
    """One job per state, due a day and i hours ahead: the last is due latest."""
    with app.app_context():
        jobs = []
        for hours, state in enumerate(states):
            due = utcnow() + timedelta(days=1, hours=hours)
            job = scheduling.schedule(
                kind=kind, subject_id=hours + 1, due_at=due, owner_id=owner_id
            )
            job.state = state
            jobs.append(job)
        db.session.commit()
        return [job.id for job in jobs]


def listing(client: FlaskClient, headers: dict[str, str], query: str) -> dict:
    response = client.get(f"/api/jobs?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(page: dict) -> list[int]:
    return [job["id"] for job in page["items"]]


def test_list_filters_by_state(private_app: Flask, client: FlaskClient, headers: dict) -> None:
    states = [JobState.SCHEDULED, JobState.FAILED, JobState.SUCCEEDED, JobState.FAILED]
    made = make_jobs(private_app, states, owner_id=user_id(client, headers))
    failed = listing(client, headers, "state=failed")
    assert ids(failed) == [made[3], made[1]] and failed["total"] == 2  # latest due first
    assert {job["state"] for job in failed["items"]} == {"failed"}
    assert ids(listing(client, headers, "state=scheduled")) == [made[0]]
    assert listing(client, headers, "state=cancelled")["items"] == []
    assert ids(listing(client, headers, "state=failed&subject_id=2")) == [made[1]]
    assert listing(client, headers, "state=failed&kind=poll.close")["total"] == 0
    refused = client.get("/api/jobs?state=lost", headers=headers)
    assert refused.status_code == 422 and "state" in refused.get_json()["errors"]


def test_list_is_paginated_latest_due_first(
    private_app: Flask, client: FlaskClient, headers: dict
) -> None:
    made = make_jobs(private_app, [JobState.SCHEDULED] * 5, owner_id=user_id(client, headers))
    first = listing(client, headers, "per_page=2")
    assert ids(first) == [made[4], made[3]]
    assert (first["page"], first["per_page"], first["total"], first["pages"]) == (1, 2, 5, 3)
    assert ids(listing(client, headers, "per_page=2&page=2")) == [made[2], made[1]]
    assert ids(listing(client, headers, "per_page=2&page=3")) == [made[0]]
    assert listing(client, headers, "per_page=2&page=4")["items"] == []
    everything = listing(client, headers, "")
    assert ids(everything) == made[::-1] and everything["per_page"] == 20
    for bad in ("per_page=0", "per_page=101", "page=0"):
        assert client.get(f"/api/jobs?{bad}", headers=headers).status_code == 422, bad


def test_reading_jobs_needs_a_token(private_app: Flask, client: FlaskClient) -> None:
    (job,) = make_jobs(private_app, [JobState.FAILED], owner_id=None)
    for path in ("/api/jobs", f"/api/jobs/{job}"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.get_json()["code"] == 401 and response.get_json()["message"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_each_user_lists_only_their_own_jobs(private_app: Flask, client: FlaskClient) -> None:
    alice, bob = user_headers(client), user_headers(client)
    (hers,) = make_jobs(private_app, [JobState.FAILED], owner_id=user_id(client, alice))
    (his,) = make_jobs(private_app, [JobState.FAILED], owner_id=user_id(client, bob))
    # No one's: a poll's results job written before jobs had owners.
    make_jobs(private_app, [JobState.SUCCEEDED], owner_id=None, kind="poll.results")

    assert ids(listing(client, alice, "")) == [hers]
    assert ids(listing(client, bob, "")) == [his]
    assert listing(client, bob, "state=failed&subject_id=1")["total"] == 1  # filters still apply
    assert listing(client, alice, "kind=poll.results")["total"] == 0


def test_another_users_job_is_403_and_an_unknown_one_404(
    private_app: Flask, client: FlaskClient, headers: dict
) -> None:
    (job,) = make_jobs(private_app, [JobState.FAILED], owner_id=user_id(client, headers))
    assert client.get(f"/api/jobs/{job}", headers=headers).get_json()["id"] == job

    refused = client.get(f"/api/jobs/{job}", headers=user_headers(client))
    assert refused.status_code == 403
    assert refused.get_json()["message"] == f"Job {job} belongs to another user."
    unknown = client.get(f"/api/jobs/{job + 1}", headers=headers)
    assert unknown.status_code == 404 and unknown.get_json()["code"] == 404


def test_the_spec_says_reading_jobs_needs_the_bearer_token(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert paths["/api/jobs"]["get"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/jobs/{job_id}"]["get"]["security"] == [{"bearerAuth": []}]


def test_owner_cancels_a_command_job(private_app: Flask, client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    command = f"/api/devices/{device['id']}/commands"
    job = client.post(command, json={"is_on": True}, headers=headers).get_json()
    assert job["kind"] == "device.command" and job["cancellable"] is True
    assert client.delete(f"/api/jobs/{job['id']}", headers=user_headers(client)).status_code == 403

    cancelled = client.delete(f"/api/jobs/{job['id']}", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["state"] == "cancelled"
    assert cancelled.get_json()["cancellable"] is False
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).get_json()["state"] == "cancelled"


def test_a_finished_job_is_not_cancelled(private_app: Flask, client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, paused=True)
    command = f"/api/devices/{device['id']}/commands"
    job = client.post(command, json={"is_on": False}, headers=headers).get_json()
    with private_app.app_context():
        done = db.session.get(Job, job["id"])
        done.state, done.finished_at = JobState.SUCCEEDED, utcnow()
        db.session.commit()
    url = f"/api/jobs/{job['id']}"
    assert client.get(url, headers=headers).get_json()["cancellable"] is False

    refused = client.delete(url, headers=headers)
    assert refused.status_code == 409
    assert refused.get_json()["message"] == f"Job {job['id']} has already succeeded."
    assert client.get(url, headers=headers).get_json()["state"] == "succeeded"


def test_a_polls_close_job_is_not_cancelled_on_its_own(client: FlaskClient) -> None:
    headers = user_headers(client)
    poll = create_poll(client, headers)
    (job,) = listing(client, headers, f"kind=poll.close&subject_id={poll['id']}")["items"]
    assert job["state"] == "scheduled" and job["cancellable"] is False

    refused = client.delete(f"/api/jobs/{job['id']}", headers=headers)
    assert refused.status_code == 409
    message = refused.get_json()["message"]
    assert message.startswith(f"Job {job['id']} (poll.close) cannot be cancelled on its own.")
    assert f"close poll {poll['id']} now (POST /api/polls/{poll['id']}/close)" in message
    assert "change its close date" in message and "delete it" in message
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).get_json()["state"] == "scheduled"
    # Another user still learns only that it is not theirs.
    assert client.delete(f"/api/jobs/{job['id']}", headers=user_headers(client)).status_code == 403


def test_a_devices_poll_job_is_not_cancelled_on_its_own(client: FlaskClient) -> None:
    headers = user_headers(client)
    device = create_device(client, headers, interval=3600)
    (job,) = listing(client, headers, f"kind=device.poll&subject_id={device['id']}")["items"]
    assert job["cancellable"] is False

    refused = client.delete(f"/api/jobs/{job['id']}", headers=headers)
    assert refused.status_code == 409
    assert f"pause device {device['id']}" in refused.get_json()["message"]
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).get_json()["state"] == job["state"]


def test_the_total_is_counted_up_to_a_cap(
    private_app: Flask, client: FlaskClient, headers: dict
) -> None:
    """Beyond JOBS_TOTAL_CAP the total says 'at least': a page never counts millions."""
    private_app.config["JOBS_TOTAL_CAP"] = 5
    owner = user_id(client, headers)
    make_jobs(private_app, [JobState.SUCCEEDED] * 5, owner_id=owner)
    exact = listing(client, headers, "per_page=2")
    assert (exact["total"], exact["pages"], exact["total_capped"]) == (5, 3, False)
    make_jobs(private_app, [JobState.FAILED] * 2, owner_id=owner, kind="test.more")
    capped = listing(client, headers, "per_page=2")
    assert (capped["total"], capped["pages"], capped["total_capped"]) == (5, 3, True)
    assert len(listing(client, headers, "per_page=2&page=4")["items"]) == 1  # the 7th: shown
    failed = listing(client, headers, "state=failed")
    assert (failed["total"], failed["total_capped"]) == (2, False)  # counted after filters


def test_a_page_reads_the_owners_jobs_by_due_time(
    private_app: Flask, client: FlaskClient, headers: dict
) -> None:
    """Served by (owner_id, due_at) ranges; the whole table is never read."""
    if not private_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the plans checked are PostgreSQL's")
    make_jobs(private_app, [JobState.SUCCEEDED] * 3, owner_id=user_id(client, headers))
    with private_app.app_context():
        statements = job_statements(db.engine, lambda: listing(client, headers, "per_page=2"))
        page, count = [plan for _, plan in plans(db.engine, statements)]
        assert unbounded(page) == [] and unbounded(count) == []
        assert {node.get("Index Name") for node in job_scans(page)} == {"ix_job_owner_due_at"}
