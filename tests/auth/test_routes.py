from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from config import Config
from tests.factories import create_poll, in_seconds, user_headers

CREDENTIALS = {"username": "Ada", "password": "correct horse battery"}


def test_register_then_sign_in(client: FlaskClient) -> None:
    response = client.post("/api/auth/register", json=CREDENTIALS)
    assert response.status_code == 201
    assert response.get_json()["username"] == "ada"
    assert "password" not in response.get_json()

    token = client.post("/api/auth/token", json=CREDENTIALS).get_json()
    assert token["token_type"] == "Bearer" and token["expires_at"].endswith("Z")
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token['token']}"})
    assert me.get_json()["username"] == "ada"


def test_password_is_stored_hashed(client: FlaskClient, app: Flask) -> None:
    client.post("/api/auth/register", json=CREDENTIALS)
    from app.auth.models import User
    from app.extensions import db

    with app.app_context():
        stored = db.session.execute(db.select(User.password_hash)).scalar_one()
    assert CREDENTIALS["password"] not in stored
    assert stored.startswith("pbkdf2:sha256:1000$")  # the tests' cheap method (FAST_HASH)


def test_passwords_are_hashed_with_scrypt_unless_configured() -> None:
    assert Config.PASSWORD_HASH_METHOD == "scrypt"


def test_duplicate_username_is_409_whatever_the_case(client: FlaskClient) -> None:
    client.post("/api/auth/register", json=CREDENTIALS)
    response = client.post("/api/auth/register", json={**CREDENTIALS, "username": "ADA"})
    assert response.status_code == 409


def test_bad_credentials_are_422_naming_the_field(client: FlaskClient) -> None:
    response = client.post("/api/auth/register", json={"username": "a", "password": "short"})
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"username", "password"}


def test_wrong_password_and_unknown_user_are_the_same_401(client: FlaskClient) -> None:
    client.post("/api/auth/register", json=CREDENTIALS)
    wrong = client.post("/api/auth/token", json={**CREDENTIALS, "password": "wrong password"})
    unknown = client.post("/api/auth/token", json={**CREDENTIALS, "username": "nobody"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["message"] == unknown.get_json()["message"]


def test_missing_forged_and_expired_tokens_are_401(client: FlaskClient, app: Flask) -> None:
    user_headers(client, "grace")
    assert client.get("/api/auth/me").status_code == 401
    forged = URLSafeTimedSerializer("not-the-key", salt="punctual-auth-token").dumps({"uid": 1})
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )

    app.config["TOKEN_TTL"] = -1
    expired = client.post(
        "/api/auth/token", json={"username": "grace", "password": "correct horse battery"}
    ).get_json()["token"]
    response = client.get("/api/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]


def test_a_token_already_used_still_expires(client: FlaskClient, app: Flask) -> None:
    # Its signature is checked once and remembered; its age, on every request.
    headers = user_headers(client, "hopper")
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    app.config["TOKEN_TTL"] = -1
    response = client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"]


def test_passwords_never_reach_the_logs(client: FlaskClient, caplog) -> None:
    caplog.set_level("DEBUG")
    client.post("/api/auth/register", json=CREDENTIALS)
    client.post("/api/auth/token", json=CREDENTIALS)
    client.post("/api/auth/token", json={**CREDENTIALS, "password": "a wrong password"})
    assert caplog.records, "requests are logged"
    assert CREDENTIALS["password"] not in caplog.text
    assert "a wrong password" not in caplog.text


def test_a_deleted_users_token_is_refused_and_writes_nothing(
    client: FlaskClient, app: Flask
) -> None:
    """Poll creation, votes and poll reads trust the token's user id without reading the user
    first (their own statements check it); every route still refuses a deleted user."""
    from app.auth.models import User
    from app.extensions import db
    from app.polls.models import Poll, Vote
    from app.scheduling.models import Job

    leaving = user_headers(client, "leaving")
    poll = create_poll(client, user_headers(client))
    with app.app_context():
        db.session.execute(db.delete(User).where(User.username == "leaving"))
        db.session.commit()

    body = {"title": "Still here?", "options": ["Yes", "No"], "close_date": in_seconds(3600)}
    vote = {"option_id": poll["options"][0]["id"]}
    answers = {
        "create": client.post("/api/polls", json=body, headers=leaving),
        "vote": client.post(f"/api/polls/{poll['id']}/votes", json=vote, headers=leaving),
        "read": client.get(f"/api/polls/{poll['id']}", headers=leaving),
        "list": client.get("/api/polls", headers=leaving),
        "me": client.get("/api/auth/me", headers=leaving),
    }
    for name, answer in answers.items():
        assert answer.status_code == 401, (name, answer.get_json())
        assert answer.get_json()["message"] == "The token's user no longer exists.", name
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Poll.id))).scalar_one() == 1
        assert db.session.execute(db.select(db.func.count(Vote.id))).scalar_one() == 0
        assert db.session.execute(db.select(db.func.count(Job.id))).scalar_one() == 1  # its close
    assert client.get(f"/api/polls/{poll['id']}").get_json()["total_votes"] == 0
