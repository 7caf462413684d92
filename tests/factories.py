"""Users and polls made through the API, as a client would; history rows written directly."""

import itertools
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from app.scheduling.models import Job

_names = itertools.count(1)


def user_headers(client: FlaskClient, username: str | None = None) -> dict[str, str]:
    """Register a user and return the Authorization header of a fresh token."""
    username = username or f"user{next(_names)}"
    credentials = {"username": username, "password": "correct horse battery"}
    assert client.post("/api/auth/register", json=credentials).status_code == 201
    token = client.post("/api/auth/token", json=credentials).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def create_poll(
    client: FlaskClient,
    headers: dict[str, str],
    *,
    closes_in: float = 3600,
    options: tuple[str, ...] = ("Red", "Green", "Blue"),
    title: str = "Favourite colour?",
) -> dict:
    response = client.post(
        "/api/polls",
        json={"title": title, "options": list(options), "close_date": in_seconds(closes_in)},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_device(client: FlaskClient, headers: dict[str, str], **fields: object) -> dict:
    body = {
        "name": "Living room thermostat",
        "location": "home",
        "vendor": "simulated",
        "vendor_id": f"thermostat-{next(_names)}",
        "interval": 60,
        **fields,
    }
    response = client.post("/api/devices", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


_subjects = itertools.count(1)


def finished_job(state: str, *, days_ago: float, **fields: object) -> Job:
    """A job row written directly, as history is: in `state`, finished `days_ago` days ago
    (pending and running jobs get that finished_at too, as a trap for retention); `fields`
    override the rest."""
    when = datetime.now(UTC) - timedelta(days=days_ago)
    defaults = {
        "kind": "test.history",
        "subject_id": next(_subjects),
        "due_at": when - timedelta(seconds=1),
        "started_at": when - timedelta(seconds=0.5),
        "finished_at": when,
    }
    return Job(state=state, **{**defaults, **fields})
