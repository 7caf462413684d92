from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from app.auth.models import User
from app.database import add_unique, utcnow
from app.errors import NotSignedIn
from app.extensions import db


@dataclass(frozen=True)
class Identity:
    """Who a valid token says the caller is: a user's id and username (neither ever changes)."""

    id: int
    username: str


def user_gone() -> NotSignedIn:
    """What a request of a deleted user's (still signed, unexpired) token gets."""
    return NotSignedIn("The token's user no longer exists.")


def _hash(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@cache
def _dummy_hash(method: str) -> str:
    """A real hash to compare against for unknown users, so a wrong username costs as long as
    a wrong password and does not reveal which usernames exist."""
    return generate_password_hash("not-a-real-password", method=method)


def _serializer() -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"])


@lru_cache(maxsize=4)
def _serializer_for(secret_key: str) -> URLSafeTimedSerializer:
    """One per key, made once: every signed-in request checks a token."""
    return URLSafeTimedSerializer(secret_key, salt="punctual-auth-token")


def register(*, username: str, password: str) -> User:
    user = User(username=username.lower(), password_hash=_hash(password))
    add_unique(user, conflict=f"The username {username!r} is taken.")
    db.session.commit()
    return user


def issue_token(*, username: str, password: str) -> dict[str, Any]:
    user = db.session.execute(
        db.select(User).where(User.username == username.lower())
    ).scalar_one_or_none()
    stored = user.password_hash if user else _dummy_hash(current_app.config["PASSWORD_HASH_METHOD"])
    if not check_password_hash(stored, password) or not user:
        raise NotSignedIn("Wrong username or password.")
    ttl = current_app.config["TOKEN_TTL"]
    return {
        "token": _serializer().dumps({"uid": user.id, "name": user.username}),
        "token_type": "Bearer",
        "expires_at": utcnow() + timedelta(seconds=ttl),
    }


def _payload(token: str) -> dict[str, Any]:
    try:
        data, signed_at = _verified(current_app.config["SECRET_KEY"], token)
    except BadSignature:
        raise NotSignedIn("The token is not valid.") from None
    if (utcnow() - signed_at).total_seconds() > current_app.config["TOKEN_TTL"]:
        raise NotSignedIn("The token has expired: ask for a new one.")
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        raise NotSignedIn("The token is not valid.")
    return data


@lru_cache(maxsize=4096)
def _verified(secret_key: str, token: str) -> tuple[Any, datetime]:
    """A token's payload and signing time, once its signature checked out with this key.

    A signature is checked once per token, not once per request: a client sends the same
    token for an hour. Its age is checked on every use (_payload); a bad token is never kept.
    """
    return _serializer_for(secret_key).loads(token, return_timestamp=True)


def user_from_token(token: str) -> User:
    """The token's user, read from the database: a deleted user's token is refused here."""
    user = db.session.get(User, _payload(token)["uid"])
    if user is None:
        raise user_gone()
    return user


def identity_from_token(token: str) -> Identity:
    """Who the token's signature says the caller is, without reading the database.

    The signature (this server's key) and the age make the id and username trustworthy, but
    not the user's existence: a route that takes this instead of user_from_token must refuse
    a deleted user in its own statements (a foreign key on the row it writes, or a check in
    the statement it reads with). Tokens issued before they carried the username are read.
    """
    data = _payload(token)
    if isinstance(data.get("name"), str):
        return Identity(data["uid"], data["name"])
    user = user_from_token(token)
    return Identity(user.id, user.username)
