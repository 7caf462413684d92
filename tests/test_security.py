"""Who may change what, rate limits on sign-in, and the headers every response carries."""

import time

import pytest
from flask import Flask
from flask.globals import request_ctx
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app import create_app
from tests.factories import create_device, create_poll, in_seconds, user_headers
from tests.stacks import Stack

# Every route that changes something, with what another (signed-in) user gets for it.
MUTATING = {
    ("POST", "/api/polls"): None,  # anyone signed in may create
    ("PATCH", "/api/polls/{poll}"): 403,
    ("DELETE", "/api/polls/{poll}"): 403,
    ("POST", "/api/polls/{poll}/close"): 403,
    ("POST", "/api/polls/{poll}/votes"): None,  # anyone signed in may vote
    ("DELETE", "/api/jobs/{job}"): 403,
    ("POST", "/api/devices"): None,
    ("PATCH", "/api/devices/{device}"): 403,
    ("DELETE", "/api/devices/{device}"): 403,
    ("POST", "/api/devices/{device}/poll"): 403,
    ("POST", "/api/devices/{device}/schedule"): 403,
    ("POST", "/api/devices/{device}/commands"): 403,
    ("POST", "/api/devices/{device}/schedules"): 403,
    ("PATCH", "/api/devices/{device}/schedules/{schedule}"): 403,
    ("DELETE", "/api/devices/{device}/schedules/{schedule}"): 403,
    ("POST", "/api/locations/{location}/refresh"): 404,  # locations are per user
}
PUBLIC = {("POST", "/api/auth/register"), ("POST", "/api/auth/token"), ("POST", "/api/pings")}
# Reads of private data checked here too (the devices' reads are checked in tests/devices), with
# what another user gets: None for a list, which shows them only their own.
PRIVATE_READS = {
    ("GET", "/api/jobs"): None,
    ("GET", "/api/jobs/{job}"): 403,
    ("GET", "/api/devices/{device}/schedules"): 403,
    ("GET", "/api/devices/{device}/schedules/{schedule}"): 403,
    ("GET", "/api/devices/{device}/schedules/{schedule}/runs"): 403,
}
BODIES = {
    "/api/polls": {"title": "t", "options": ["a", "b"], "close_date": in_seconds(3600)},
    "/api/polls/{poll}": {"close_date": in_seconds(7200)},
    "/api/polls/{poll}/votes": {"option_id": 1},
    "/api/devices": {"name": "d", "location": "l", "vendor": "simulated", "vendor_id": "x"},
    "/api/devices/{device}": {"paused": True},
    "/api/devices/{device}/schedule": {"at": in_seconds(600)},
    "/api/devices/{device}/commands": {"is_on": True},
    "/api/devices/{device}/schedules": {
        "action": "switch_on",
        "cron": "0 7 * * 1-5",
        "timezone": "Europe/Paris",
    },
    "/api/devices/{device}/schedules/{schedule}": {"paused": True},
}


class SignedLongAgo(TimestampSigner):
    """Signs with the right key, two days ago: a token past its TOKEN_TTL."""

    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 24 * 3600


def mutating_routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", "{{{}}}".format(name.removesuffix("_id")))
            path = path.replace(f"<string:{name}>", f"{{{name}}}").replace(
                f"<{name}>", f"{{{name}}}"
            )
        for method in rule.methods & {"POST", "PATCH", "PUT", "DELETE"}:
            routes.add((method, path))
    return routes


def test_the_matrix_covers_every_mutating_route(app: Flask) -> None:
    assert mutating_routes(app) == set(MUTATING) | PUBLIC


@pytest.fixture
def owned(client: FlaskClient) -> dict:
    owner = user_headers(client)
    poll = create_poll(client, owner)
    device = create_device(client, owner, location="attic", paused=True)
    job = client.post(
        f"/api/devices/{device['id']}/schedule", json={"at": in_seconds(900)}, headers=owner
    )
    schedule = client.post(
        f"/api/devices/{device['id']}/schedules",
        json={"action": "switch_on", "cron": "0 7 * * 1-5", "timezone": "Europe/Paris"},
        headers=owner,
    )
    return {
        "owner_id": client.get("/api/auth/me", headers=owner).get_json()["id"],
        "schedule": schedule.get_json()["id"],
        "poll": poll["id"],
        "device": device["id"],
        "job": job.get_json()["id"],
        "location": "attic",
    }


def call(client: FlaskClient, method: str, template: str, ids: dict, headers: dict):
    path = template.format(**ids)
    return client.open(path, method=method, json=BODIES.get(template), headers=headers)


@pytest.mark.parametrize(("method", "template"), sorted(MUTATING) + sorted(PRIVATE_READS))
def test_private_routes_refuse_missing_expired_forged_and_foreign_tokens(
    client: FlaskClient, app: Flask, owned: dict, method: str, template: str
) -> None:
    forged = URLSafeTimedSerializer("guessed-key", salt="punctual-auth-token").dumps({"uid": 1})
    other = user_headers(client)
    expired = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="punctual-auth-token", signer=SignedLongAgo
    ).dumps({"uid": owned["owner_id"]})

    for token in (None, expired, forged):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = call(client, method, template, owned, headers)
        assert response.status_code == 401, (token, response.get_json())
        assert response.get_json()["code"] == 401
    expected = {**MUTATING, **PRIVATE_READS}[(method, template)]
    if expected is not None:
        assert call(client, method, template, owned, other).status_code == expected


def test_sign_in_is_rate_limited_with_retry_after(migrated: Stack) -> None:
    app = create_app({**migrated.config(), "AUTH_RATE_LIMIT": "3 per minute"})
    client = app.test_client()
    wrong = {"username": "nobody", "password": "wrong password"}
    statuses = [client.post("/api/auth/token", json=wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = client.post("/api/auth/token", json=wrong)
    assert limited.status_code == 429 and limited.get_json()["code"] == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-RateLimit-Limit"] == "3"


def test_routes_without_a_limit_skip_the_limiter(migrated: Stack) -> None:
    app = create_app({**migrated.config(), "AUTH_RATE_LIMIT": "1 per minute"})
    client = app.test_client()
    responses = [client.get("/api/polls") for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert not any("X-RateLimit-Limit" in response.headers for response in responses)
    # Its hooks did not run at all (they were a tenth of a read's CPU): Flask-Limiter keeps
    # its state on the request's context, made by its first hook.
    for path, ran in (("/api/polls", False), ("/api/auth/token", True)):
        with client:
            client.open(path, method="POST" if ran else "GET", json={} if ran else None)
            assert hasattr(request_ctx._get_current_object(), "_limiter_request_context") == ran


def test_api_and_ui_responses_carry_security_headers(client: FlaskClient) -> None:
    for path in ("/api/polls", "/api/nothing", "/healthz", "/"):
        with client.get(path) as response:
            headers = response.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in client.get("/api/polls").headers["Content-Security-Policy"]
    with client.get("/") as page:
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_cors_is_off_unless_configured(migrated: Stack, client: FlaskClient) -> None:
    origin = {"Origin": "https://evil.example"}
    assert "Access-Control-Allow-Origin" not in client.get("/api/polls", headers=origin).headers
    allowed = create_app({**migrated.config(), "CORS_ORIGINS": ["https://ui.example"]})
    response = allowed.test_client().get("/api/polls", headers={"Origin": "https://ui.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    other = allowed.test_client().get("/api/polls", headers=origin)
    assert "Access-Control-Allow-Origin" not in other.headers
